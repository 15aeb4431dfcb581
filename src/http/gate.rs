//! The database gate: closed until the database has answered at start-up.

use std::sync::Arc;

/// Whether the database has answered since start-up (and, with
/// `database.auto_migrate`, been migrated). `serve` listens at once and keeps
/// this closed until then, so a database that is down at start-up gives 503s
/// instead of a crash loop.
#[derive(Debug, Clone)]
pub struct DatabaseGate(Arc<tokio::sync::watch::Sender<bool>>);

impl DatabaseGate {
    /// A gate for a database already prepared.
    pub fn opened() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(true)))
    }

    /// A gate that waits for [`DatabaseGate::open`].
    pub fn closed() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(false)))
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }

    pub fn is_open(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the gate is open.
    pub async fn wait_open(&self) {
        let mut open = self.0.subscribe();
        // Only fails if the sender is gone, which `self` rules out.
        let _ = open.wait_for(|open| *open).await;
    }
}
