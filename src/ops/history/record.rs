//! Writing the history in the background. `/sync` hands each call to the
//! [`Recorder`] without waiting (a full queue drops the record, never the
//! answer); one worker writes the row at once, then walks the diff against the
//! snapshot served before (the same diff `hr-bridge preview` shows) on a blocking
//! thread and keeps its counts and the first [`NAMES_KEPT`] names of each sort.
//! A guard refusal also records its pending approval with every drop.
//!
//! Failures are logged and counted in `hr_bridge_sync_history_failures_total`;
//! none reaches the caller.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::db::{Db, DbError, DiffCounts, NewName, NewPending, NewSyncCall, SnapshotRow};
use crate::directory::snapshot::{diff_each, Event, Kind as DiffKind};
use crate::directory::{GuardRefusal, Served, SyncFailure, SyncPayload};

use super::{Change, Kind};

/// Names kept per call of each kind (users, departments) and change (added,
/// changed, dropped); the counts beside them are always the true ones. At a
/// million people a call keeps at most 60,000 names, and a refusal repeated
/// with the same data keeps none of its own.
pub const NAMES_KEPT: usize = 10_000;
/// Calls waiting to be written; beyond this a record is dropped (and counted).
const QUEUE: usize = 256;

/// What one call answered.
#[derive(Debug, Clone)]
pub enum RecordedOutcome {
    Served(Served),
    /// 409: the data breaks a rule; the number of problems.
    Invalid(usize),
    /// 409: the deletion guard.
    Guard(Arc<GuardRefusal>),
    /// 503: the database could not be reached, or the answer was not ready in time.
    Unavailable(String),
    /// 500.
    Failed(String),
}

impl RecordedOutcome {
    /// The outcome of a flight, as recorded.
    pub fn of(outcome: &Result<Served, SyncFailure>) -> Self {
        match outcome {
            Ok(served) => Self::Served(served.clone()),
            Err(SyncFailure::Invalid(problems)) => Self::Invalid(problems.len()),
            Err(SyncFailure::GuardTripped(refusal)) => Self::Guard(refusal.clone()),
            Err(SyncFailure::Unavailable(_)) => Self::Unavailable("database unavailable".into()),
            Err(SyncFailure::Query(problem)) => Self::Failed(problem.0.clone()),
            Err(SyncFailure::Failed(cause)) => Self::Failed(cause.to_string()),
            Err(SyncFailure::Lost) => {
                Self::Failed("the sync build stopped without an answer".into())
            }
        }
    }
}

/// One `/sync` call, as the handler saw it.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub occurred_ms: i64,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    pub duration_ms: i64,
    pub outcome: RecordedOutcome,
}

/// Hands calls to the history writer.
#[derive(Debug, Clone)]
pub struct Recorder {
    sender: mpsc::Sender<CallRecord>,
}

impl Recorder {
    /// Starts the writer over `db`; it ends when every `Recorder` is dropped or
    /// the task is aborted.
    pub fn start(db: Db) -> (Self, JoinHandle<()>) {
        let (sender, mut calls) = mpsc::channel::<CallRecord>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some(call) = calls.recv().await {
                if let Err(e) = write(&db, call).await {
                    failed("write", &e);
                }
            }
        });
        (Self { sender }, task)
    }

    /// Queues `call`; never waits.
    pub fn record(&self, call: CallRecord) {
        if let Err(e) = self.sender.try_send(call) {
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "queue_full",
                mpsc::error::TrySendError::Closed(_) => "stopped",
            };
            metrics::counter!("hr_bridge_sync_history_failures_total", "reason" => reason)
                .increment(1);
            tracing::warn!(reason, "a /sync call was not recorded in the sync history");
        }
    }
}

fn failed(stage: &'static str, e: &DbError) {
    metrics::counter!("hr_bridge_sync_history_failures_total", "reason" => stage).increment(1);
    tracing::warn!(error = %e, stage, "could not record a /sync call in the sync history");
}

fn count(n: usize) -> Option<i64> {
    Some(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The row of a call, before its diff.
fn base_row(call: &CallRecord) -> NewSyncCall {
    let mut row = NewSyncCall {
        occurred_ms: call.occurred_ms,
        client_addr: call.client_addr.clone(),
        request_id: call.request_id.clone(),
        duration_ms: call.duration_ms,
        names: "none",
        ..NewSyncCall::default()
    };
    let payload = |row: &mut NewSyncCall, p: &SyncPayload| {
        row.bytes = count(p.bytes);
        row.user_count = count(p.users);
        row.group_count = count(p.groups);
        row.digest = Some(p.digest.clone());
    };
    match &call.outcome {
        RecordedOutcome::Served(served) => {
            row.outcome = "served";
            row.status = 200;
            payload(&mut row, &served.payload);
            row.base_digest = served.base_digest.clone();
            row.approval_id = served.approval;
        }
        RecordedOutcome::Invalid(problems) => {
            row.outcome = "refused_data";
            row.status = 409;
            row.detail = Some(format!("{problems} problem(s) in the HR data"));
        }
        RecordedOutcome::Guard(refusal) => {
            row.outcome = "refused_guard";
            row.status = 409;
            payload(&mut row, &refusal.payload);
            row.base_digest = Some(refusal.base_digest.clone());
            row.detail = Some(refusal.reasons.clone());
        }
        RecordedOutcome::Unavailable(why) => {
            row.outcome = "unavailable";
            row.status = 503;
            row.detail = Some(why.clone());
        }
        RecordedOutcome::Failed(why) => {
            row.outcome = "failed";
            row.status = 500;
            row.detail = Some(why.clone());
        }
    }
    row
}

/// Writes one call: the row, then its diff and names, then (a guard refusal)
/// its pending approval.
async fn write(db: &Db, call: CallRecord) -> Result<(), DbError> {
    let mut row = base_row(&call);
    let (previous, payload, refusal) = match &call.outcome {
        RecordedOutcome::Served(served) => {
            if served.base_digest.as_deref() == Some(served.payload.digest.as_str()) {
                // The same payload as last time: nothing changed.
                row.counts = Some(DiffCounts::default());
            }
            (served.previous.clone(), Some(served.payload.clone()), None)
        }
        RecordedOutcome::Guard(refusal) => (
            refusal.previous.clone(),
            Some(refusal.payload.clone()),
            Some(refusal.clone()),
        ),
        _ => (None, None, None),
    };
    let first_sync = matches!(&call.outcome, RecordedOutcome::Served(s) if s.base_digest.is_none());
    let diffable = payload.is_some() && row.counts.is_none() && (previous.is_some() || first_sync);
    if !diffable {
        if let Some(refusal) = &refusal {
            // The snapshot cannot be read: the approval names no drop.
            row.approval_id = pending(db, refusal, &[]).await;
        }
        insert(db, &row).await?;
        return Ok(());
    }
    let (Some(payload), digest) = (payload, row.digest.clone().unwrap_or_default()) else {
        return Ok(());
    };
    let base = row.base_digest.clone().unwrap_or_default();
    // The same answer against the same snapshot again (callers sharing one
    // build, or OMFLOW retrying a refusal): the names are those kept already.
    let earlier = db.sync_call_with_names(row.outcome, &digest, &base).await?;
    let pending_same = match &refusal {
        Some(refusal) => db
            .pending_approval()
            .await?
            .is_some_and(|p| p.set_digest == refusal.set_digest),
        None => true,
    };
    if let (Some(earlier), true) = (earlier, pending_same) {
        row.counts = earlier.counts;
        row.names = "same_as";
        row.names_of = Some(earlier.id);
        if let Some(refusal) = &refusal {
            row.approval_id = pending(db, refusal, &[]).await;
        }
        insert(db, &row).await?;
        return Ok(());
    }
    row.names = "pending";
    let id = insert(db, &row).await?;
    let all_drops = refusal.is_some();
    let diff =
        tokio::task::spawn_blocking(move || diff_names(previous.as_ref(), &payload, all_drops))
            .await;
    let diff = match diff {
        Ok(Ok(diff)) => diff,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, call = id, "could not compare a /sync call with the snapshot before it");
            metrics::counter!("hr_bridge_sync_history_failures_total", "reason" => "diff")
                .increment(1);
            db.finish_sync_call(id, None, "failed", None, None).await?;
            return Ok(());
        }
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let approval = match &refusal {
        Some(refusal) => {
            let drops: Vec<(char, &str)> = diff
                .all_drops
                .iter()
                .map(|(kind, name)| (*kind, name.as_str()))
                .collect();
            pending(db, refusal, &drops).await
        }
        None => None,
    };
    let names: Vec<NewName<'_>> = diff
        .kept
        .iter()
        .map(|(kind, change, name, fields)| NewName {
            kind: kind.letter(),
            event: change.letter(),
            name,
            fields: fields.as_deref(),
        })
        .collect();
    let state = match db.insert_history_names(id, &names).await {
        Ok(()) => "kept",
        Err(e) => {
            failed("names", &e);
            "failed"
        }
    };
    db.finish_sync_call(id, Some(diff.counts), state, None, approval)
        .await?;
    Ok(())
}

/// Attempts at writing a call's row while the database is unreachable.
const ATTEMPTS: u32 = 6;

/// Writes a call's row, retrying (with a growing pause, about half a minute in
/// all) while the database is unreachable: the call that answered 503 during a
/// short outage is then still recorded once it is back.
async fn insert(db: &Db, row: &NewSyncCall) -> Result<i64, DbError> {
    let mut pause = std::time::Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match db.insert_sync_call(row).await {
            Err(DbError::Unavailable(_)) if attempt < ATTEMPTS => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Records the refusal's set as the pending approval and publishes its id (or
/// that there is none) to whoever waits for it: the refusal's notification.
async fn pending(db: &Db, refusal: &GuardRefusal, drops: &[(char, &str)]) -> Option<i64> {
    let id = match record_pending(db, refusal, drops).await {
        Ok(id) => Some(id),
        Err(e) => {
            failed("approval", &e);
            None
        }
    };
    refusal.approval.publish(id);
    id
}

/// Records the refusal's set as the pending approval; returns its id.
async fn record_pending(
    db: &Db,
    refusal: &GuardRefusal,
    drops: &[(char, &str)],
) -> Result<i64, DbError> {
    let (users, groups, previous_total, previous_groups) = match &refusal.drops {
        Some(d) => (d.users, d.groups, d.previous_total, d.previous_groups),
        None => (0, 0, 0, 0),
    };
    let int = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let int64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let new = NewPending {
        now_ms: crate::directory::unix_ms(),
        set_digest: refusal.set_digest.clone(),
        base_digest: refusal.base_digest.clone(),
        payload_digest: refusal.payload.digest.clone(),
        users_dropped: int(users),
        groups_dropped: int(groups),
        previous_total: int(previous_total),
        previous_groups: int(previous_groups),
        max_deletions: int64(refusal.limits.max_deletions),
        max_deletion_ratio: refusal.limits.max_ratio,
        guard_min_objects: int64(refusal.limits.min_objects),
        reasons: refusal.reasons.clone(),
    };
    db.record_refusal(&new, drops).await
}

/// A name kept: kind, change, name, changed fields.
type Kept = (Kind, Change, String, Option<String>);

/// A call's diff as the history keeps it.
struct DiffNames {
    counts: DiffCounts,
    kept: Vec<Kept>,
    /// Every drop (kind letter, name), for a refusal's pending approval.
    all_drops: Vec<(char, String)>,
}

fn diff_names(
    previous: Option<&SnapshotRow>,
    payload: &SyncPayload,
    all_drops: bool,
) -> Result<DiffNames, crate::directory::SnapshotError> {
    let mut out = DiffNames {
        counts: DiffCounts::default(),
        kept: Vec::new(),
        all_drops: Vec::new(),
    };
    let mut kept_of = [[0usize; 3]; 2];
    diff_each(previous, payload, &mut |kind, event| {
        let kind = match kind {
            DiffKind::User => Kind::User,
            DiffKind::Group => Kind::Department,
        };
        let (change, name, fields) = match event {
            Event::Added(name) => (Change::Added, name, None),
            Event::Changed(changed) => {
                (Change::Changed, changed.key, Some(changed.fields.join(",")))
            }
            Event::Dropped(name) => (Change::Dropped, name, None),
        };
        let c = &mut out.counts;
        let counter = match (kind, change) {
            (Kind::User, Change::Added) => &mut c.users_added,
            (Kind::User, Change::Changed) => &mut c.users_changed,
            (Kind::User, Change::Dropped) => &mut c.users_dropped,
            (Kind::Department, Change::Added) => &mut c.groups_added,
            (Kind::Department, Change::Changed) => &mut c.groups_changed,
            (Kind::Department, Change::Dropped) => &mut c.groups_dropped,
        };
        *counter += 1;
        if all_drops && change == Change::Dropped {
            out.all_drops.push((kind.letter(), name.clone()));
        }
        let slot = &mut kept_of[usize::from(kind == Kind::Department)][change as usize];
        if *slot < NAMES_KEPT {
            *slot += 1;
            out.kept.push((kind, change, name, fields));
        }
    })?;
    Ok(out)
}
