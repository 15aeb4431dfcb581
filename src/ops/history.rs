//! The sync history: what every `/sync` call answered, when and to whom, and what
//! it added, changed and dropped against the snapshot served before. Written by
//! the [`Recorder`] in the background; read by `hr-bridge history` and the console.

mod record;

pub use record::{CallRecord, RecordedOutcome, Recorder, NAMES_KEPT};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::db::{ApprovalRow, Db, DbError, DiffCounts, NameRow, SyncCallRow};

/// One `/sync` call.
#[derive(Debug, Clone, Serialize)]
pub struct SyncCall {
    pub id: i64,
    /// RFC 3339, UTC.
    pub occurred_at: String,
    pub occurred_ms: i64,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    /// served | refused_data | refused_guard | unavailable | failed
    pub outcome: String,
    pub status: i32,
    pub duration_ms: i64,
    pub bytes: Option<i64>,
    pub users: Option<i64>,
    pub departments: Option<i64>,
    pub digest: Option<String>,
    /// The snapshot this call was compared with.
    pub base_digest: Option<String>,
    /// Against that snapshot; `None` when not known.
    pub changes: Option<DiffCounts>,
    /// Whether the names behind the counts are kept: none | pending | kept |
    /// same_as (those of call `names_of`) | skipped | failed.
    pub names: String,
    pub names_of: Option<i64>,
    /// The approval this call created (a guard refusal) or consumed (served).
    pub approval_id: Option<i64>,
    pub detail: Option<String>,
}

impl From<SyncCallRow> for SyncCall {
    fn from(row: SyncCallRow) -> Self {
        Self {
            id: row.id,
            occurred_at: rfc3339_ms(row.occurred_ms),
            occurred_ms: row.occurred_ms,
            client_addr: row.client_addr,
            request_id: row.request_id,
            outcome: row.outcome,
            status: row.status,
            duration_ms: row.duration_ms,
            bytes: row.bytes,
            users: row.user_count,
            departments: row.group_count,
            digest: row.digest,
            base_digest: row.base_digest,
            changes: row.counts,
            names: row.names,
            names_of: row.names_of,
            approval_id: row.approval_id,
            detail: row.detail,
        }
    }
}

/// A user or a department.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    User,
    Department,
}

/// What happened to a name in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Changed,
    Dropped,
}

impl Kind {
    pub(crate) fn letter(self) -> char {
        match self {
            Kind::User => 'u',
            Kind::Department => 'g',
        }
    }

    pub(crate) fn from_letter(letter: char) -> Self {
        if letter == 'g' {
            Kind::Department
        } else {
            Kind::User
        }
    }
}

impl Change {
    pub(crate) fn letter(self) -> char {
        match self {
            Change::Added => 'a',
            Change::Changed => 'c',
            Change::Dropped => 'd',
        }
    }

    fn from_letter(letter: char) -> Self {
        match letter {
            'a' => Change::Added,
            'c' => Change::Changed,
            _ => Change::Dropped,
        }
    }
}

/// A name kept for a call.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedName {
    pub kind: Kind,
    pub change: Change,
    pub name: String,
    /// For a change: the fields that changed.
    pub fields: Vec<String>,
}

impl From<NameRow> for ChangedName {
    fn from(row: NameRow) -> Self {
        Self {
            kind: Kind::from_letter(row.kind),
            change: Change::from_letter(row.event),
            name: row.name,
            fields: row
                .fields
                .map(|f| f.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }
}

/// One call with the names behind its counts.
#[derive(Debug, Clone, Serialize)]
pub struct SyncCallDetail {
    pub call: SyncCall,
    /// The names kept (for `same_as`, those of the earlier call): at most
    /// [`NAMES_KEPT`] of each kind and change; the counts are the true ones.
    pub names: Vec<ChangedName>,
    /// How many names are kept in all (more than `names` holds when paged).
    pub names_total: u64,
    /// The approval this call created or consumed.
    pub approval: Option<ApprovalRow>,
}

/// What happened to one person (or department) in one call.
#[derive(Debug, Clone, Serialize)]
pub struct PersonEvent {
    pub call_id: i64,
    pub occurred_at: String,
    pub kind: Kind,
    pub change: Change,
    pub fields: Vec<String>,
    /// served | refused_guard: a refused call changed nothing in OMFLOW.
    pub outcome: String,
    pub client_addr: Option<String>,
    /// For a served call: the approval it consumed (who let the drop through).
    pub approval: Option<ApprovalRow>,
}

/// Calls of one outcome in one hour.
#[derive(Debug, Clone, Serialize)]
pub struct HourCount {
    pub hour_ms: i64,
    pub outcome: String,
    pub calls: i64,
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// The latest `limit` calls, newest first, older than call `before_id` when given.
pub async fn list(db: &Db, limit: u32, before_id: Option<i64>) -> Result<Vec<SyncCall>, DbError> {
    Ok(db
        .sync_calls(limit, before_id)
        .await?
        .into_iter()
        .map(SyncCall::from)
        .collect())
}

/// One call and its names: all of them, or the page of `limit` after `offset`
/// (a refusal keeps up to [`NAMES_KEPT`] of each kind and change, too many for
/// one page of the console).
pub async fn show(
    db: &Db,
    id: i64,
    page: Option<(u32, u32)>,
) -> Result<Option<SyncCallDetail>, DbError> {
    let Some(row) = db.sync_call(id).await? else {
        return Ok(None);
    };
    let names_id = if row.names == "same_as" {
        row.names_of.unwrap_or(row.id)
    } else {
        row.id
    };
    let names: Vec<ChangedName> = db
        .history_names(names_id, page)
        .await?
        .into_iter()
        .map(ChangedName::from)
        .collect();
    let names_total = match page {
        None => names.len() as u64,
        Some(_) => db.history_name_count(names_id).await?,
    };
    let approval = match row.approval_id {
        Some(approval) => db.approval(approval).await?,
        None => None,
    };
    Ok(Some(SyncCallDetail {
        call: row.into(),
        names,
        names_total,
        approval,
    }))
}

/// When `username` (or a department of that group_no) was added, changed or
/// dropped, and by which call, oldest first. A refused call is listed too (it
/// named the person) with its outcome; only served calls changed OMFLOW. Calls
/// that repeated a refusal without keeping names of their own are not repeated.
pub async fn person(db: &Db, username: &str) -> Result<Vec<PersonEvent>, DbError> {
    let mut events = Vec::new();
    for (name, call) in db.history_of_name(username).await? {
        let approval = match call.approval_id {
            Some(id) => db.approval(id).await?,
            None => None,
        };
        let name = ChangedName::from(name);
        events.push(PersonEvent {
            call_id: call.id,
            occurred_at: rfc3339_ms(call.occurred_ms),
            kind: name.kind,
            change: name.change,
            fields: name.fields,
            outcome: call.outcome,
            client_addr: call.client_addr,
            approval,
        });
    }
    Ok(events)
}

/// Calls per hour and outcome since `since_ms` (unix milliseconds).
pub async fn per_hour(db: &Db, since_ms: i64) -> Result<Vec<HourCount>, DbError> {
    Ok(db
        .sync_calls_per_hour(since_ms)
        .await?
        .into_iter()
        .map(|row| HourCount {
            hour_ms: row.hour_ms,
            outcome: row.outcome,
            calls: row.calls,
        })
        .collect())
}

/// The latest approvals given, newest first (who approved what, when, why).
pub async fn approvals(db: &Db, limit: u32) -> Result<Vec<ApprovalRow>, DbError> {
    db.approvals_given(limit).await
}

/// Deletes calls (with their names) and finished approvals older than
/// `retention_days`. Returns the calls removed.
pub async fn prune(db: &Db, retention_days: u32) -> Result<u64, DbError> {
    let retention = Duration::from_secs(u64::from(retention_days) * 86_400);
    let cutoff = SystemTime::now()
        .checked_sub(retention)
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let removed = db.prune_sync_history(cutoff).await?;
    db.prune_approvals(cutoff).await?;
    Ok(removed)
}
