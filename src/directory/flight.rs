//! Single flight for `/sync`: concurrent calls share one build. The first caller
//! starts it as its own task (a caller that hangs up cannot cancel it half-way,
//! so the snapshot is recorded only for a payload that was fully built); callers
//! that arrive while it runs wait for the same answer. A caller that arrives after
//! it ended starts a new one, so nobody is served data older than their request
//! by more than one build.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{GuardRefusal, Problem, Served, SyncError};
use crate::db::DbError;
use crate::source::QueryProblem;

/// A failed flight, in a form every waiter can share: the causes themselves,
/// behind `Arc`s, so that each waiter's answer and log see the typed error.
#[derive(Debug, Clone)]
pub enum SyncFailure {
    Invalid(Arc<Vec<Problem>>),
    GuardTripped(Arc<GuardRefusal>),
    /// The database cannot be reached.
    Unavailable(Arc<DbError>),
    /// A mapped query that no longer fits its contract.
    Query(QueryProblem),
    /// Anything else; already logged.
    Failed(Arc<SyncError>),
    /// The build ended without an answer (it panicked); already reported by
    /// the panic hook.
    Lost,
}

impl From<SyncError> for SyncFailure {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Invalid(problems) => Self::Invalid(Arc::new(problems)),
            SyncError::GuardTripped(refusal) => Self::GuardTripped(Arc::from(refusal)),
            SyncError::Db(db @ DbError::Unavailable(_)) => Self::Unavailable(Arc::new(db)),
            SyncError::Query(q) => Self::Query(q),
            other => {
                tracing::error!(error = %other, "sync failed");
                Self::Failed(Arc::new(other))
            }
        }
    }
}

/// What one flight answers every caller that shares it.
pub type Outcome = Result<Served, SyncFailure>;
type Slot = Arc<Mutex<Option<watch::Receiver<Option<Outcome>>>>>;

/// The one `/sync` build in progress, if any.
#[derive(Debug, Clone, Default)]
pub struct SyncFlight {
    current: Slot,
    /// Calls between arrival and answer.
    callers: Arc<AtomicUsize>,
}

/// Counts one call in [`SyncFlight::callers`] until dropped.
struct Caller(Arc<AtomicUsize>);

impl Caller {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Empties the slot when the flight ends, even by a panic.
struct ClearOnDrop(Slot);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        if let Ok(mut current) = self.0.lock() {
            *current = None;
        }
    }
}

impl SyncFlight {
    /// Calls waiting for an answer right now: the one that started the build in
    /// progress and every one that joined it.
    pub fn callers(&self) -> usize {
        self.callers.load(Ordering::Relaxed)
    }

    /// Joins the build in progress, or starts `start()` as a new one.
    pub async fn run<F, Fut>(&self, start: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let _caller = Caller::enter(&self.callers);
        let mut receiver = {
            let Ok(mut current) = self.current.lock() else {
                // Poisoned: a build panicked while holding it.
                return Err(SyncFailure::Lost);
            };
            match current.as_ref() {
                Some(receiver) => receiver.clone(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    *current = Some(receiver.clone());
                    let clear = ClearOnDrop(self.current.clone());
                    let work = start();
                    tokio::spawn(async move {
                        let outcome = work.await;
                        // Free the slot before answering, so that a later caller
                        // starts afresh rather than joining a finished flight.
                        drop(clear);
                        let _ = sender.send(Some(outcome));
                    });
                    receiver
                }
            }
        };
        let outcome = receiver
            .wait_for(Option::is_some)
            .await
            .map(|outcome| outcome.clone());
        match outcome {
            Ok(Some(outcome)) => outcome,
            Ok(None) | Err(_) => Err(SyncFailure::Lost),
        }
    }
}

/// `/sync` answers being built or sent right now, from a call's arrival until
/// its last byte is written or the client hangs up. The web console yields to
/// them (it is paced while any is counted).
#[derive(Debug, Clone, Default)]
pub struct Answering(Arc<AtomicUsize>);

/// Counts one answer in [`Answering`] until dropped.
#[derive(Debug)]
pub struct AnswerGuard(Arc<AtomicUsize>);

impl Answering {
    /// Counts an answer until the guard is dropped.
    pub fn enter(&self) -> AnswerGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        AnswerGuard(self.0.clone())
    }

    /// Whether any `/sync` answer is in progress.
    pub fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
