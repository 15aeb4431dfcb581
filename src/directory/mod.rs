//! The domain: the HR directory as OMFLOW sees it. Reads the rows, checks the rules
//! of the contract, renders the `/sync` payload, and guards against mass deletion.

mod approval_slot;
mod arena;
pub mod build;
#[cfg(test)]
mod build_tests;
pub mod demo;
pub mod findings;
mod flight;
#[cfg(test)]
mod guard_tests;
pub mod import;
pub mod keys;
pub mod payload;
pub mod snapshot;
pub mod validate;
#[cfg(test)]
mod validate_tests;
mod writer;

pub use approval_slot::{ApprovalSlot, ApprovalWatch};
pub use build::{BuildError, Built, Outcome};
pub use findings::Findings;
pub use flight::{AnswerGuard, Answering, Outcome as SyncOutcome, SyncFailure, SyncFlight};
pub use payload::SyncPayload;
pub use snapshot::{DiffSummary, Drops, GuardLimits, SnapshotError};
pub use validate::Problem;

use crate::db::{Db, DbError, SnapshotRow};
use crate::source::{Batch, QueryProblem, ReadError, Source, SourceError};

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
    GuardTripped(Box<GuardRefusal>),
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
    /// The read ended because the builder stopped taking rows; reported only
    /// when the builder had no error of its own.
    #[error("the directory read was abandoned")]
    Cancelled,
    /// The thread reading the directory ended without finishing.
    #[error("the directory read stopped: {0}")]
    ReadStopped(#[source] tokio::task::JoinError),
}

impl From<SourceError> for SyncError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Db(db) => Self::Db(db),
            SourceError::Query(q) => Self::Query(q),
        }
    }
}

impl From<ReadError> for SyncError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Source(source) => source.into(),
            ReadError::Cancelled => Self::Cancelled,
            ReadError::Stopped(join) => Self::ReadStopped(join),
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

/// A payload `/sync` serves, with what it was compared against (for the history).
#[derive(Debug, Clone)]
pub struct Served {
    pub payload: SyncPayload,
    /// The digest of the snapshot it was compared with; `None` for the first sync.
    pub base_digest: Option<String>,
    /// The snapshot it replaced, when the payload differs from it and it could be read.
    pub previous: Option<SnapshotRow>,
    /// The approval this sync consumed.
    pub approval: Option<i64>,
}

/// A sync the deletion guard refused, with what the history and the pending
/// approval need.
#[derive(Debug, Clone)]
pub struct GuardRefusal {
    /// The 409 message.
    pub message: String,
    /// The payload that was refused.
    pub payload: SyncPayload,
    /// The digest of the snapshot it was compared with.
    pub base_digest: String,
    /// That snapshot; `None` when it cannot be read.
    pub previous: Option<SnapshotRow>,
    /// What it would drop; `None` when the snapshot cannot be read.
    pub drops: Option<Drops>,
    /// What an approval of this refusal binds to (see [`Drops::set_digest`]).
    pub set_digest: String,
    /// Which limits the drops exceed, in the settings' words.
    pub reasons: String,
    pub limits: GuardLimits,
    /// The id of the pending approval the history writer records for it.
    pub approval: ApprovalSlot,
}

/// Unix milliseconds now.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What `/sync` answers: a valid payload that passes the deletion guard (or whose
/// drops an operator approved, exactly as they are), recorded in `state` as the
/// new snapshot. A refusal records nothing here; the history records it.
#[tracing::instrument(skip_all)]
pub async fn serve_sync(
    source: &Source,
    state: &Db,
    limits: &GuardLimits,
) -> Result<Served, SyncError> {
    let mut built = sync_payload(source).await?;
    for _ in 0..SNAPSHOT_RACES {
        let Some(digest) = state.snapshot_digest().await? else {
            // The first sync is never refused.
            if state
                .replace_snapshot(None, &snapshot::snapshot_of(&built.payload))
                .await?
            {
                return Ok(Served {
                    payload: built.payload,
                    base_digest: None,
                    previous: None,
                    approval: None,
                });
            }
            continue;
        };
        if digest == built.payload.digest {
            return Ok(Served {
                payload: built.payload,
                base_digest: Some(digest),
                previous: None,
                approval: None,
            });
        }
        let Some(previous) = state.snapshot().await? else {
            continue;
        };
        if previous.payload_digest != digest {
            continue;
        }
        let (drops, built_back, previous) = off_runtime(move || {
            let drops = snapshot::drops(&previous, &built);
            (drops, built, previous)
        })
        .await;
        built = built_back;
        // Only a sync the guard would refuse looks for an approval.
        let (approval, previous) = match drops {
            Ok(drops) => match drops.exceeds(limits) {
                None => (None, Some(previous)),
                Some(reasons) => {
                    let set_digest = drops.set_digest(&digest);
                    match state.approved_set(&set_digest).await? {
                        Some(id) => (Some(id), Some(previous)),
                        None => {
                            metrics::counter!("hr_bridge_sync_refusals_total", "reason" => "deletion_guard")
                                .increment(1);
                            tracing::warn!(
                                users = drops.users,
                                departments = drops.groups,
                                "deletion guard tripped"
                            );
                            return Err(SyncError::GuardTripped(Box::new(GuardRefusal {
                                message: drops.refusal_message(limits),
                                payload: built.payload,
                                base_digest: digest,
                                previous: Some(previous),
                                drops: Some(drops),
                                set_digest,
                                reasons,
                                limits: *limits,
                                approval: ApprovalSlot::default(),
                            })));
                        }
                    }
                }
            },
            Err(e) => {
                let set_digest = snapshot::unreadable_set_digest(&digest);
                match state.approved_set(&set_digest).await? {
                    Some(id) => (Some(id), None),
                    None => {
                        // Without the last snapshot the guard cannot tell what would be
                        // dropped: refuse rather than guess, and say how to recover.
                        tracing::error!(error = %e, "deletion guard cannot read the stored snapshot");
                        return Err(SyncError::GuardTripped(Box::new(GuardRefusal {
                            message: format!(
                                "sync refused by the deletion guard, OMFLOW should change nothing: {e}; \
                                 check the HR data with `hr-bridge check`, then approve replacing the \
                                 unreadable snapshot with `hr-bridge accept-deletions`"
                            ),
                            payload: built.payload,
                            base_digest: digest,
                            previous: None,
                            drops: None,
                            set_digest,
                            reasons: e.to_string(),
                            limits: *limits,
                            approval: ApprovalSlot::default(),
                        })));
                    }
                }
            }
        };
        let next = snapshot::snapshot_of(&built.payload);
        let consume = approval.map(|id| (id, unix_ms()));
        if state
            .replace_snapshot_consuming(Some(&digest), &next, consume)
            .await?
        {
            drop(next);
            if let Some(id) = approval {
                tracing::info!(approval = id, "served the approved deletions");
            }
            return Ok(Served {
                payload: built.payload,
                base_digest: Some(digest),
                previous,
                approval,
            });
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

/// What the current data would drop against the stored snapshot, and the digest
/// an approval of exactly that would carry: `hr-bridge accept-deletions` checks
/// it against the pending set before approving.
#[derive(Debug, Clone)]
pub struct CurrentDrops {
    /// The stored snapshot's digest; `None` before the first sync.
    pub base_digest: Option<String>,
    /// `None` before the first sync.
    pub set_digest: Option<String>,
    /// Empty when the snapshot cannot be read.
    pub drops: Drops,
    /// True when the stored snapshot cannot be read.
    pub unreadable: bool,
}

/// Builds the payload as `/sync` would and compares it with the stored snapshot.
/// Records nothing.
pub async fn current_drops(source: &Source, state: &Db) -> Result<CurrentDrops, SyncError> {
    let built = sync_payload(source).await?;
    let Some(previous) = state.snapshot().await? else {
        return Ok(CurrentDrops {
            base_digest: None,
            set_digest: None,
            drops: Drops::default(),
            unreadable: false,
        });
    };
    let base = previous.payload_digest.clone();
    let drops = off_runtime(move || snapshot::drops(&previous, &built)).await;
    Ok(match drops {
        Ok(drops) => CurrentDrops {
            set_digest: Some(drops.set_digest(&base)),
            base_digest: Some(base),
            drops,
            unreadable: false,
        },
        Err(_) => CurrentDrops {
            set_digest: Some(snapshot::unreadable_set_digest(&base)),
            base_digest: Some(base),
            drops: Drops::default(),
            unreadable: true,
        },
    })
}
