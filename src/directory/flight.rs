//! Single flight for `/sync`: concurrent calls share one build. The first caller
//! starts it as its own task (a caller that hangs up cannot cancel it half-way,
//! so the snapshot is recorded only for a payload that was fully built); callers
//! that arrive while it runs wait for the same answer. A caller that arrives after
//! it ended starts a new one, so nobody is served data older than their request
//! by more than one build.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{GuardRefusal, Problem, Served, SyncError};
use crate::db::DbError;

/// A failed flight, in a form every waiter can share.
#[derive(Debug, Clone)]
pub enum SyncFailure {
    Invalid(Arc<Vec<Problem>>),
    GuardTripped(Arc<GuardRefusal>),
    /// The database cannot be reached; the text is for the log.
    Unavailable(String),
    /// A mapped query that no longer fits its contract.
    Query(String),
    /// Anything else; already logged.
    Internal(String),
}

impl From<SyncError> for SyncFailure {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Invalid(problems) => Self::Invalid(Arc::new(problems)),
            SyncError::GuardTripped(refusal) => Self::GuardTripped(Arc::from(refusal)),
            SyncError::Db(DbError::Unavailable(e)) => Self::Unavailable(e.to_string()),
            SyncError::Query(q) => Self::Query(q.0),
            other => {
                tracing::error!(error = %other, "sync failed");
                Self::Internal(other.to_string())
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
    /// Joins the build in progress, or starts `start()` as a new one.
    pub async fn run<F, Fut>(&self, start: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let mut receiver = {
            let Ok(mut current) = self.current.lock() else {
                return Err(SyncFailure::Internal("sync flight lock poisoned".into()));
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
            Ok(None) | Err(_) => Err(SyncFailure::Internal(
                "the sync build stopped without an answer".into(),
            )),
        }
    }
}
