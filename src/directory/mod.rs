//! The domain: the HR directory as OMFLOW sees it. Reads the rows, checks the rules
//! of the contract, renders the `/sync` payload, and guards against mass deletion.

pub mod build;
pub mod demo;
pub mod findings;
mod flight;
pub mod import;
pub mod keys;
pub mod payload;
pub mod snapshot;
pub mod validate;

pub use build::{BuildError, Built, Outcome};
pub use findings::Findings;
pub use flight::{SyncFailure, SyncFlight};
pub use payload::SyncPayload;
pub use snapshot::{DiffSummary, Drops, GuardLimits, SnapshotError};
pub use validate::Problem;

use crate::db::{Db, DbError, SnapshotRow};
use crate::source::{Batch, QueryProblem, Source, SourceError};

/// How often a `/sync` re-reads the snapshot after losing a race to another one.
const SNAPSHOT_RACES: usize = 5;
/// Row batches in flight between the database read and the builder.
const BATCHES_IN_FLIGHT: usize = 4;

/// Why a payload could not be served.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the HR data has {} problem(s)", .0.len())]
    Invalid(Vec<Problem>),
    #[error("{}", .0.message)]
    GuardTripped(GuardRefusal),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("the sync snapshot kept changing under concurrent syncs")]
    Contended,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Query(#[from] QueryProblem),
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// A sync the deletion guard refused: the message OMFLOW is answered, and what
/// the sync would have dropped (for the notification: counts and a few names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRefusal {
    pub message: String,
    pub users: usize,
    pub departments: usize,
    /// The first dropped usernames, in byte order (a sample, not the list).
    pub usernames: Vec<String>,
}

impl From<SourceError> for SyncError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Db(db) => Self::Db(db),
            SourceError::Query(q) => Self::Query(q),
            SourceError::Cancelled => Self::Db(DbError::Config(e.to_string())),
        }
    }
}

/// Reads the directory from `source` in one snapshot and builds the payload as
/// the rows stream in (`render` false: validate only). The read runs here, the
/// building on a blocking thread, so the two overlap and the async workers stay free.
pub async fn build(source: &Source, render: bool) -> Result<Outcome, SyncError> {
    match build_once(source, render).await {
        // The database's order of the keys is not their byte order (a
        // case-insensitive collation, say): read again, sorted by bytes, and
        // keep doing so.
        Err(SyncError::Build(BuildError::OutOfOrder(kind, key, after)))
            if source.reads_in_collation_order() =>
        {
            tracing::info!(
                kind,
                key = %crate::escape::escape(&key),
                after = %crate::escape::escape(&after),
                "the database orders keys otherwise than by their bytes; reading sorted by bytes from now on"
            );
            source.read_in_byte_order();
            build_once(source, render).await
        }
        other => other,
    }
}

async fn build_once(source: &Source, render: bool) -> Result<Outcome, SyncError> {
    let shape = source.shape().await?;
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Batch>(BATCHES_IN_FLIGHT);
    let builder = tokio::task::spawn_blocking(move || {
        let mut builder =
            build::Builder::new(shape.employees_active, shape.departments_active, render);
        while let Some(batch) = batches.blocking_recv() {
            builder.push(batch)?;
        }
        builder.finish()
    });
    let read = source.read_directory(sender).await;
    let built = match builder.await {
        Ok(built) => built,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    // A builder that stopped early made the read see a closed channel: its own
    // error is the one to report.
    let built = built?;
    read?;
    Ok(built)
}

/// Builds the payload, or the list of problems that forbid serving it. Records nothing.
#[tracing::instrument(skip_all)]
pub async fn sync_payload(source: &Source) -> Result<Built, SyncError> {
    let outcome = build(source, true).await?;
    log_findings(&outcome.findings);
    match outcome.result {
        Ok(built) => Ok(built),
        Err(problems) => {
            metrics::counter!("hr_bridge_sync_refusals_total", "reason" => "invalid_data")
                .increment(1);
            Err(SyncError::Invalid(problems))
        }
    }
}

/// Says in the log what a build left out that an operator would want to know:
/// memberships naming nobody the source has (a typo, another spelling).
fn log_findings(findings: &Findings) {
    if findings.unknown_employees.count > 0 {
        tracing::warn!(
            count = findings.unknown_employees.count,
            first = %findings.unknown_employees.listed(),
            "memberships name an employee the source does not have; they are left out \
             (`hr-bridge check` lists them)"
        );
    }
    if findings.unknown_departments.count > 0 {
        tracing::warn!(
            count = findings.unknown_departments.count,
            first = %findings.unknown_departments.listed(),
            "memberships name a department the source does not have; they are left out \
             (`hr-bridge check` lists them)"
        );
    }
    if findings.unreadable_memberships > 0 {
        tracing::warn!(
            count = findings.unreadable_memberships,
            "memberships with a NULL or unreadable group_no or username are left out"
        );
    }
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
/// in `state` as the new snapshot. A refusal records nothing.
#[tracing::instrument(skip_all)]
pub async fn serve_sync(
    source: &Source,
    state: &Db,
    limits: &GuardLimits,
) -> Result<SyncPayload, SyncError> {
    let mut built = sync_payload(source).await?;
    for _ in 0..SNAPSHOT_RACES {
        let Some(digest) = state.snapshot_digest().await? else {
            // The first sync is never refused.
            if state
                .replace_snapshot(None, &snapshot::snapshot_of(&built.payload))
                .await?
            {
                return Ok(built.payload);
            }
            continue;
        };
        if digest == built.payload.digest {
            return Ok(built.payload);
        }
        let Some(previous) = state.snapshot().await? else {
            continue;
        };
        if previous.payload_digest != digest {
            continue;
        }
        let (drops, built_back) = off_runtime(move || {
            let drops = snapshot::drops(&previous, &built);
            (drops, built)
        })
        .await;
        built = built_back;
        let drops = match drops {
            Ok(drops) => drops,
            Err(e) => {
                // Without the last snapshot the guard cannot tell what would be
                // dropped: refuse rather than guess, and say how to recover.
                tracing::error!(error = %e, "deletion guard cannot read the stored snapshot");
                return Err(SyncError::GuardTripped(GuardRefusal {
                    message: format!(
                        "sync refused by the deletion guard, OMFLOW should change nothing: {e}; \
                         check the HR data with `hr-bridge check`, then record the current \
                         data as the new snapshot with `hr-bridge accept-deletions`"
                    ),
                    users: 0,
                    departments: 0,
                    usernames: Vec::new(),
                }));
            }
        };
        if drops.exceeds(limits).is_some() {
            metrics::counter!("hr_bridge_sync_refusals_total", "reason" => "deletion_guard")
                .increment(1);
            tracing::warn!(
                users = drops.users,
                departments = drops.groups,
                "deletion guard tripped"
            );
            return Err(SyncError::GuardTripped(GuardRefusal {
                message: drops.refusal_message(limits),
                users: drops.users,
                departments: drops.groups,
                usernames: drops.user_sample,
            }));
        }
        let next = snapshot::snapshot_of(&built.payload);
        if state.replace_snapshot(Some(&digest), &next).await? {
            drop(next);
            return Ok(built.payload);
        }
    }
    Err(SyncError::Contended)
}

/// What `hr-bridge check` reports.
#[derive(Debug)]
pub struct CheckReport {
    /// Every problem `/sync` would refuse for; empty when the data can be served.
    pub problems: Vec<Problem>,
    /// What it would serve and what it would leave out or change.
    pub findings: Findings,
}

/// Validates the data as `/sync` would, without building the payload.
pub async fn check(source: &Source) -> Result<CheckReport, SyncError> {
    let outcome = build(source, false).await?;
    Ok(CheckReport {
        problems: outcome.result.err().unwrap_or_default(),
        findings: outcome.findings,
    })
}

/// What the next `/sync` would do, for `hr-bridge preview`. Records nothing.
#[derive(Debug)]
pub struct Preview {
    pub payload: SyncPayload,
    pub snapshot: Option<SnapshotRow>,
    /// Counts, and the first keys of each sort of difference.
    pub summary: DiffSummary,
    /// The guard's refusal message, when it would trip.
    pub guard: Option<String>,
    /// False when `sync.guard = "off"`: nothing is refused, whatever it drops.
    pub guard_enabled: bool,
}

/// Keys of each sort of difference a preview keeps to show.
pub const PREVIEW_SHOWN: usize = 50;

pub async fn preview(
    source: &Source,
    state: &Db,
    limits: &GuardLimits,
) -> Result<Preview, SyncError> {
    let payload = sync_payload(source).await?.payload;
    let snapshot = state.snapshot().await?;
    let (summary, payload, snapshot) = off_runtime(move || {
        let summary = snapshot::diff_summary(snapshot.as_ref(), &payload, PREVIEW_SHOWN);
        (summary, payload, snapshot)
    })
    .await;
    let summary = summary?;
    // The diff already counts every drop: no second read of the snapshot.
    let guard = snapshot.as_ref().and_then(|previous| {
        let drops = summary.drops(
            usize::try_from(previous.user_count).unwrap_or(usize::MAX),
            usize::try_from(previous.group_count).unwrap_or(usize::MAX),
        );
        drops.exceeds(limits).map(|_| drops.refusal_message(limits))
    });
    Ok(Preview {
        payload,
        snapshot,
        summary,
        guard,
        guard_enabled: limits.enabled,
    })
}

/// Records the current data as the snapshot, approving whatever it drops.
pub async fn accept_deletions(
    source: &Source,
    state: &Db,
) -> Result<(SyncPayload, Drops), SyncError> {
    let built = sync_payload(source).await?;
    let previous = state.snapshot().await?;
    let (drops, built) = off_runtime(move || {
        let drops = previous.map(|previous| snapshot::drops(&previous, &built));
        (drops, built)
    })
    .await;
    let drops = match drops {
        Some(Ok(drops)) => drops,
        // An unreadable snapshot is exactly what an approval replaces.
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the stored snapshot cannot be read; replacing it");
            Drops::default()
        }
        None => Drops::default(),
    };
    let payload = built.payload;
    state
        .force_snapshot(&snapshot::snapshot_of(&payload))
        .await?;
    Ok((payload, drops))
}
