//! Approvals of deletion-guard refusals. A refusal records its set of drops as
//! the one pending approval; approving it binds to exactly that set, taken
//! against exactly that snapshot (its digest, [`PendingApproval::digest`]), and
//! lets the next `/sync` that would serve it through once.
//!
//! "The same set" is judged by the digest of the snapshot the drops were taken
//! against together with the exact list of dropped usernames and group_nos
//! (order-independent; see `Drops::set_digest`). New hires or edits to people who
//! stay do not change it; one more or one fewer departure, or a sync served
//! meanwhile, does, and the approval is refused.

use serde::Serialize;

use crate::db::{ApprovalRow, ApproveRow, Db, DbError, DropsFrom};
use crate::directory::{self, SyncError};
use crate::source::Source;

use super::activity::{self, Actor};
use super::history::{rfc3339_ms, Kind};

/// The limits that were in force when the guard tripped.
#[derive(Debug, Clone, Serialize)]
pub struct GuardNumbers {
    pub max_deletions: i64,
    pub max_deletion_ratio: f64,
    pub guard_min_objects: i64,
    /// Which of them the drops exceeded, in the settings' words.
    pub reasons: String,
}

/// The set of drops waiting for approval.
#[derive(Debug, Clone, Serialize)]
pub struct PendingApproval {
    pub id: i64,
    /// What an approval must name: the drop set and the snapshot it was taken against.
    pub digest: String,
    pub created_at: String,
    pub created_ms: i64,
    pub last_refused_at: String,
    /// Syncs refused for this very set.
    pub refusals: i64,
    pub users_dropped: i64,
    pub departments_dropped: i64,
    /// Users plus departments served last time.
    pub previous_total: i64,
    pub previous_departments: i64,
    /// The digest of the snapshot the drops were taken against.
    pub base_digest: String,
    /// The digest of the refused payload.
    pub payload_digest: String,
    pub guard: GuardNumbers,
    /// True when the stored snapshot could not be read: approving replaces it
    /// without a list of drops.
    pub unreadable_snapshot: bool,
}

impl From<ApprovalRow> for PendingApproval {
    fn from(row: ApprovalRow) -> Self {
        Self {
            id: row.id,
            unreadable_snapshot: row.set_digest
                == directory::snapshot::unreadable_set_digest(&row.base_digest),
            digest: row.set_digest,
            created_at: rfc3339_ms(row.created_ms),
            created_ms: row.created_ms,
            last_refused_at: rfc3339_ms(row.last_refused_ms),
            refusals: row.refusals,
            users_dropped: row.users_dropped,
            departments_dropped: row.groups_dropped,
            previous_total: row.previous_total,
            previous_departments: row.previous_groups,
            base_digest: row.base_digest,
            payload_digest: row.payload_digest,
            guard: GuardNumbers {
                max_deletions: row.max_deletions,
                max_deletion_ratio: row.max_deletion_ratio,
                guard_min_objects: row.guard_min_objects,
                reasons: row.reasons,
            },
        }
    }
}

/// One drop of a pending set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedName {
    pub kind: Kind,
    pub name: String,
}

/// The pending set, if any.
pub async fn pending(db: &Db) -> Result<Option<PendingApproval>, DbError> {
    Ok(db.pending_approval().await?.map(PendingApproval::from))
}

/// Where a page of drops starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropsPage<'a> {
    /// The first page.
    First,
    /// The page after this drop.
    After(&'a DroppedName),
    /// The page before this drop.
    Before(&'a DroppedName),
    /// The last page.
    Last,
}

/// A page of the drops of approval `id`: departments first and then users,
/// each in name order, always returned in that order; `search` keeps names
/// containing it. Pages are found by key (the list is indexed in this order),
/// so any page costs what the first does, however many drops there are.
pub async fn pending_drops(
    db: &Db,
    id: i64,
    search: Option<&str>,
    from: DropsPage<'_>,
    limit: u32,
) -> Result<Vec<DroppedName>, DbError> {
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let from = match from {
        DropsPage::First => DropsFrom::First,
        DropsPage::After(d) => DropsFrom::After(d.kind.letter(), &d.name),
        DropsPage::Before(d) => DropsFrom::Before(d.kind.letter(), &d.name),
        DropsPage::Last => DropsFrom::Last,
    };
    Ok(db
        .approval_drops(id, search, from, limit)
        .await?
        .into_iter()
        .map(|(kind, name)| DroppedName {
            kind: Kind::from_letter(kind),
            name,
        })
        .collect())
}

/// An approval given.
#[derive(Debug, Clone, Serialize)]
pub struct Approved {
    pub id: i64,
    pub digest: String,
    pub approved_by: String,
    pub approved_at: String,
    pub reason: Option<String>,
    pub users_dropped: i64,
    pub departments_dropped: i64,
}

/// Why an approval was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    /// No approval has that id, or it is no longer pending.
    #[error("{0}")]
    NotPending(String),
    /// The set is not what the approver saw, or the data changed since.
    #[error("{0}")]
    Changed(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Approves pending set `id`, if its digest is still `digest` and the HR data
/// still drops exactly that set from exactly that snapshot; records who
/// (`actor`), when and why in the approval and in the activity record
/// (`approve_deletions`). Nothing is served here: the next `/sync` that would
/// serve this set consumes the approval.
pub async fn approve(
    db: &Db,
    source: &Source,
    id: i64,
    digest: &str,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<Approved, ApproveError> {
    let approver = actor.name.as_str();
    let row = db
        .approval(id)
        .await?
        .ok_or_else(|| ApproveError::NotPending(format!("there is no approval {id}")))?;
    if row.status != "pending" {
        return Err(ApproveError::NotPending(not_pending(&row)));
    }
    if row.set_digest != digest {
        return Err(ApproveError::Changed(format!(
            "approval {id} is for set {}, not {digest}: review the pending set again",
            short(&row.set_digest)
        )));
    }
    // The data as it is now must still drop exactly this set.
    let now = directory::current_drops(source, db).await?;
    if now.set_digest.as_deref() != Some(row.set_digest.as_str()) {
        let what = if now.base_digest.as_deref() != Some(row.base_digest.as_str()) {
            "a sync was served since, so the drops are no longer counted from the same snapshot"
                .to_owned()
        } else {
            format!(
                "it would now drop {} user(s) and {} department(s), not the {} user(s) and {} \
                 department(s) reviewed",
                now.drops.users, now.drops.groups, row.users_dropped, row.groups_dropped
            )
        };
        return Err(ApproveError::Changed(format!(
            "approval {id} refused: the HR data changed since this set was recorded ({what}). \
             Nothing was approved. See the new drops with `hr-bridge preview`; the next /sync \
             records them as a new pending set to review with `hr-bridge accept-deletions`"
        )));
    }
    let approved_ms = directory::unix_ms();
    match db
        .approve_pending(id, digest, approver, reason, approved_ms)
        .await?
    {
        ApproveRow::Approved => {
            tracing::info!(approval = id, approver, "deletions approved");
            let detail = format!(
                "set {}: {} user(s) and {} department(s){}",
                short(&row.set_digest),
                row.users_dropped,
                row.groups_dropped,
                reason.map(|r| format!("; reason: {r}")).unwrap_or_default()
            );
            // The approval stands whatever happens here; the approvals table
            // already says who, when and why.
            if let Err(e) =
                activity::record(db, actor, "approve_deletions", &id.to_string(), &detail).await
            {
                tracing::warn!(error = %e, approval = id, "could not record the approval in the activity record");
            }
            Ok(Approved {
                id,
                digest: row.set_digest,
                approved_by: approver.to_owned(),
                approved_at: rfc3339_ms(approved_ms),
                reason: reason.map(str::to_owned),
                users_dropped: row.users_dropped,
                departments_dropped: row.groups_dropped,
            })
        }
        ApproveRow::NotPending(Some(row)) => Err(ApproveError::NotPending(not_pending(&row))),
        ApproveRow::NotPending(None) => Err(ApproveError::NotPending(format!(
            "there is no approval {id}"
        ))),
    }
}

/// Why approval `row` cannot be given.
fn not_pending(row: &ApprovalRow) -> String {
    match row.status.as_str() {
        "approved" => format!(
            "approval {} was already given by {} at {}; the next /sync serves it",
            row.id,
            row.approved_by.as_deref().unwrap_or("?"),
            row.approved_ms.map(rfc3339_ms).unwrap_or_default()
        ),
        "consumed" => format!(
            "approval {} was given and used by a sync at {}; an approval is valid once",
            row.id,
            row.consumed_ms.map(rfc3339_ms).unwrap_or_default()
        ),
        _ => format!(
            "approval {} is no longer pending: the data changed and a newer set replaced it; \
             review the pending set with `hr-bridge accept-deletions`",
            row.id
        ),
    }
}

/// The first 12 characters of a digest, as shown to people.
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
