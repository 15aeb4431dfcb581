//! The domain: the HR directory as OMFLOW sees it. Reads the rows, checks the rules
//! of the contract, renders the `/sync` payload, and guards against mass deletion.

pub mod demo;
pub mod import;
pub mod payload;
pub mod snapshot;
pub mod validate;

pub use payload::SyncPayload;
pub use snapshot::{Diff, Drops, GuardLimits, SnapshotError};
pub use validate::Problem;

use crate::db::{Db, DbError, SnapshotRow};

/// How often a `/sync` re-reads the snapshot after losing a race to another one.
const SNAPSHOT_RACES: usize = 5;

/// Why a payload could not be served.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the HR data has {} problem(s)", .0.len())]
    Invalid(Vec<Problem>),
    #[error("{0}")]
    GuardTripped(String),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("the sync snapshot kept changing under concurrent syncs")]
    Contended,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("could not serialize the payload: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Builds the `/sync` payload from the current data, or the list of problems that
/// forbid serving it. Records nothing.
#[tracing::instrument(skip_all)]
pub async fn sync_payload(db: &Db) -> Result<SyncPayload, SyncError> {
    let rows = db.directory().await?;
    // Validating and writing 100,000 employees takes tens of milliseconds of CPU:
    // keep it off the async workers so that other requests are not held up.
    off_runtime(move || {
        let problems = validate::problems(&rows);
        if !problems.is_empty() {
            metrics::counter!("hr_bridge_sync_refusals_total", "reason" => "invalid_data")
                .increment(1);
            return Err(SyncError::Invalid(problems));
        }
        Ok(payload::render(rows)?)
    })
    .await
}

/// Runs CPU-bound work on tokio's blocking threads; a panic in it is re-raised.
async fn off_runtime<T, F>(work: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// What `/sync` answers: a valid payload that passes the deletion guard, recorded
/// as the new snapshot. A refusal records nothing.
#[tracing::instrument(skip_all)]
pub async fn serve_sync(db: &Db, limits: &GuardLimits) -> Result<SyncPayload, SyncError> {
    let mut payload = sync_payload(db).await?;
    for _ in 0..SNAPSHOT_RACES {
        let Some(digest) = db.snapshot_digest().await? else {
            // The first sync is never refused.
            if db
                .replace_snapshot(None, &snapshot::snapshot_of(&payload))
                .await?
            {
                return Ok(payload);
            }
            continue;
        };
        if digest == payload.digest {
            return Ok(payload);
        }
        let Some(previous) = db.snapshot().await? else {
            continue;
        };
        if previous.payload_digest != digest {
            continue;
        }
        let (drops, next, payload_back) = off_runtime(move || {
            let drops = snapshot::drops(&previous, &payload);
            let next = snapshot::snapshot_of(&payload);
            (drops, next, payload)
        })
        .await;
        payload = payload_back;
        let drops = drops?;
        if drops.exceeds(limits).is_some() {
            metrics::counter!("hr_bridge_sync_refusals_total", "reason" => "deletion_guard")
                .increment(1);
            tracing::warn!(
                users = drops.users.len(),
                departments = drops.groups.len(),
                "deletion guard tripped"
            );
            return Err(SyncError::GuardTripped(drops.refusal_message(limits)));
        }
        if db.replace_snapshot(Some(&digest), &next).await? {
            return Ok(payload);
        }
    }
    Err(SyncError::Contended)
}

/// Every problem `/sync` would refuse for; empty when the data can be served.
pub async fn check(db: &Db) -> Result<Vec<Problem>, DbError> {
    Ok(validate::problems(&db.directory().await?))
}

/// What the next `/sync` would do, for `hr-bridge preview`. Records nothing.
#[derive(Debug)]
pub struct Preview {
    pub payload: SyncPayload,
    pub snapshot: Option<SnapshotRow>,
    pub diff: Diff,
    /// The guard's refusal message, when it would trip.
    pub guard: Option<String>,
}

pub async fn preview(db: &Db, limits: &GuardLimits) -> Result<Preview, SyncError> {
    let payload = sync_payload(db).await?;
    let snapshot = db.snapshot().await?;
    let diff = snapshot::diff(snapshot.as_ref(), &payload)?;
    // The diff already names every drop: no second parse of the snapshot.
    let guard = snapshot.as_ref().and_then(|previous| {
        let drops = Drops {
            users: diff.users.dropped.clone(),
            groups: diff.groups.dropped.clone(),
            previous_total: usize::try_from(previous.user_count + previous.group_count)
                .unwrap_or(usize::MAX),
        };
        drops.exceeds(limits).map(|_| drops.refusal_message(limits))
    });
    Ok(Preview {
        payload,
        snapshot,
        diff,
        guard,
    })
}

/// Records the current data as the snapshot, approving whatever it drops.
pub async fn accept_deletions(db: &Db) -> Result<(SyncPayload, Drops), SyncError> {
    let payload = sync_payload(db).await?;
    let drops = match db.snapshot().await? {
        Some(previous) => snapshot::drops(&previous, &payload)?,
        None => Drops::default(),
    };
    db.force_snapshot(&snapshot::snapshot_of(&payload)).await?;
    Ok((payload, drops))
}
