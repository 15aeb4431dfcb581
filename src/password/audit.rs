//! The audit trail of `/authenticate`: the row of a checked attempt is written
//! before its answer, and an answer whose row cannot be written is a 503 (fail
//! closed); the rows of busy answers, which must not cost database work on the
//! request's path, are written in the background, in batches, by one writer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::outcome::AuthOutcome;
use crate::db::{AuditEntry, Db, DbError, MAX_AUDIT_BATCH};

/// Busy answers whose rows may wait for the writer. A flood beyond that is
/// counted (`hr_bridge_auth_busy_unaudited_total`) and logged, not queued, so a
/// flood costs at most this much memory and one statement at a time.
pub const MAX_WAITING_BUSY_ROWS: usize = 4096;

/// Retries of [`AuditTrail::forget_attempt`], the first after this pause, each
/// after twice the last: 0.25 s to 16 s, 31.75 s in all.
const FORGET_RETRIES: usize = 7;
const FORGET_FIRST_PAUSE: Duration = Duration::from_millis(250);

/// The audit reason of a busy answer.
const BUSY: &str = "busy";

/// One attempt as the audit trail records it, whatever its outcome.
#[derive(Debug, Clone)]
pub(super) struct AuditRecord {
    /// When the attempt began, RFC 3339 UTC.
    pub occurred_at: String,
    /// The username as given, already clipped to what the column holds.
    pub username: String,
    pub client_addr: Option<String>,
    /// `omflow` or `console` (see [`super::LoginChannel`]).
    pub channel: &'static str,
}

impl AuditRecord {
    fn entry(&self, outcome: &'static str, reason: &'static str) -> AuditEntry<'_> {
        AuditEntry {
            occurred_at: &self.occurred_at,
            username: &self.username,
            outcome,
            reason,
            client_addr: self.client_addr.as_deref(),
            channel: self.channel,
        }
    }
}

/// Why an attempt's row is not in the audit trail; its answer is then a 503.
#[derive(Debug, thiserror::Error)]
pub enum Unrecorded {
    #[error("the audit row could not be written: {0}")]
    Failed(#[source] DbError),
    /// The request's deadline came before the row was committed; nothing was
    /// written.
    #[error("the audit row was not written before the request's deadline")]
    Late,
}

/// Writes audit rows to hr-bridge's state database.
#[derive(Debug, Clone)]
pub(super) struct AuditTrail {
    db: Db,
    busy: Arc<BusyRows>,
}

#[derive(Debug, Default)]
struct BusyRows {
    /// Started on the first busy answer (inside the runtime, by definition).
    queue: OnceLock<mpsc::Sender<AuditRecord>>,
    /// Rows turned away since the writer last said so in the log.
    dropped: Arc<AtomicU64>,
}

impl AuditTrail {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            busy: Arc::default(),
        }
    }

    /// Writes the row of a checked attempt. A success's row is committed before
    /// `commit_by` or not at all, and the same commit ends the run of failures
    /// counted under `clear_failures_of`. A failure's single statement is given
    /// up at `commit_by`; it may still land, which does no harm (the attempt is
    /// answered 503 and its row says it failed).
    pub async fn record(
        &self,
        record: &AuditRecord,
        outcome: AuthOutcome,
        clear_failures_of: Option<&str>,
        commit_by: Option<Instant>,
    ) -> Result<(), Unrecorded> {
        let column = match outcome {
            AuthOutcome::Success => "success",
            AuthOutcome::Failure(_) => "failure",
        };
        let entry = record.entry(column, outcome.reason());
        if outcome == AuthOutcome::Success {
            // A transaction whose commit is only sent in time: a success is
            // answered exactly when its row is written.
            return match self
                .db
                .record_success(&entry, clear_failures_of, commit_by)
                .await
            {
                Ok(true) => Ok(()),
                Ok(false) => Err(Unrecorded::Late),
                Err(e) => Err(Unrecorded::Failed(e)),
            };
        }
        let write = self.db.record_login(&entry);
        let written = match commit_by {
            Some(by) => tokio::time::timeout_at(by, write)
                .await
                .map_err(|_| Unrecorded::Late)?,
            None => write.await,
        };
        written.map_err(Unrecorded::Failed)
    }

    /// Takes back the lockout count of an attempt answered 503 because its row
    /// could not be written. When the database is away (an outage caught the
    /// attempt between its count and its row), it is tried again in the
    /// background for about half a minute. Only attempts counted before the
    /// outage began can need that, so these retries are few.
    pub async fn forget_attempt(&self, counted_as: &str, max_failures: u32) {
        let max_failures = i64::from(max_failures);
        let Err(e) = self.db.forget_login_attempt(counted_as, max_failures).await else {
            return;
        };
        tracing::warn!(
            error = %e,
            "could not take back the failure count of an attempt answered 503; retrying"
        );
        let (db, counted_as) = (self.db.clone(), counted_as.to_owned());
        tokio::spawn(async move {
            let mut pause = FORGET_FIRST_PAUSE;
            for _ in 0..FORGET_RETRIES {
                tokio::time::sleep(pause).await;
                if db
                    .forget_login_attempt(&counted_as, max_failures)
                    .await
                    .is_ok()
                {
                    tracing::info!("took back the failure count of an attempt answered 503");
                    return;
                }
                pause *= 2;
            }
            tracing::error!(
                username = %crate::escape::escape(&counted_as),
                "gave up taking back the failure count of an attempt answered 503: \
                 the account counts one failure more than it had"
            );
        });
    }

    /// Queues the row of a busy answer for the background writer, at once and
    /// without database work; counted and dropped when too many wait already.
    pub fn busy(&self, record: AuditRecord) {
        let queue = self.busy.queue.get_or_init(|| {
            let (queue, rows) = mpsc::channel(MAX_WAITING_BUSY_ROWS);
            tokio::spawn(write_busy_rows(
                self.db.clone(),
                rows,
                self.busy.dropped.clone(),
            ));
            queue
        });
        if queue.try_send(record).is_err() {
            self.busy.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("hr_bridge_auth_busy_unaudited_total").increment(1);
        }
    }
}

/// Writes busy rows as they come, up to [`MAX_AUDIT_BATCH`] a statement, one
/// statement at a time; ends when every sender is gone.
async fn write_busy_rows(db: Db, mut rows: mpsc::Receiver<AuditRecord>, dropped: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(MAX_AUDIT_BATCH);
    while rows.recv_many(&mut batch, MAX_AUDIT_BATCH).await > 0 {
        let entries: Vec<AuditEntry<'_>> = batch.iter().map(|r| r.entry("failure", BUSY)).collect();
        if let Err(e) = db.record_logins(&entries).await {
            metrics::counter!("hr_bridge_auth_busy_unaudited_total")
                .increment(entries.len() as u64);
            tracing::error!(
                rows = entries.len(),
                error = %e,
                "could not write the audit rows of busy answers"
            );
        }
        drop(entries);
        batch.clear();
        let missed = dropped.swap(0, Ordering::Relaxed);
        if missed > 0 {
            tracing::warn!(
                rows = missed,
                "busy answers left out of the audit trail: more than {MAX_WAITING_BUSY_ROWS} \
                 were waiting to be written"
            );
        }
    }
}
