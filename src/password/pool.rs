//! The bounded hashing pool: password checks run on tokio's blocking threads, at
//! most `max_concurrent` at once, with at most `max_queued` more waiting. Beyond
//! that a caller is told [`Busy`] at once instead of piling up work.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

/// Every hashing slot and queue place is taken; answer 503 and ask to retry.
#[derive(Debug, thiserror::Error)]
#[error("too many password checks in progress")]
pub struct Busy;

#[derive(Debug, Clone)]
pub struct HashingPool {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    capacity: usize,
}

/// A place in the queue, taken before any other work (such as a database lookup)
/// is spent on a request that would then be turned away.
#[derive(Debug)]
pub struct Admission {
    running: Arc<Semaphore>,
    place: OwnedSemaphorePermit,
}

impl HashingPool {
    pub fn new(max_concurrent: usize, max_queued: usize) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Self {
            running: Arc::new(Semaphore::new(max_concurrent)),
            admitted: Arc::new(Semaphore::new(max_concurrent + max_queued)),
            capacity: max_concurrent + max_queued,
        }
    }

    /// Checks admitted right now, hashing or waiting.
    pub fn in_flight(&self) -> usize {
        self.capacity
            .saturating_sub(self.admitted.available_permits())
    }

    /// Takes a queue place, or fails at once when the queue is full.
    pub fn admit(&self) -> Result<Admission, Busy> {
        let place = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        Ok(Admission {
            running: self.running.clone(),
            place,
        })
    }

    /// [`HashingPool::admit`] then [`Admission::run`].
    pub async fn run<T, F>(&self, work: F) -> Result<T, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.admit()?.run(work).await
    }
}

impl Admission {
    /// Runs `work` on a blocking thread once a slot is free.
    ///
    /// The permits move into the blocking closure, so a request that is cancelled
    /// while its hash runs still holds its slot until the hash really ends: the
    /// bound is on CPU work, not on waiting futures.
    pub async fn run<T, F>(self, work: F) -> Result<T, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let running = self.running.acquire_owned().await.map_err(|_| Busy)?;
        let place = self.place;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _slots = (place, running);
            span.in_scope(work)
        })
        .in_current_span()
        .await
        .map_err(|e| match e.try_into_panic() {
            // A panic inside a hash is a bug; let the catch-panic layer answer 500.
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Busy,
        })
    }
}
