//! Locked accounts, and lifting a lockout (recorded in the activity record).

use serde::Serialize;

use super::activity::{now_ms, Actor};
use crate::db::{Db, DbError, LockoutRow, NewActivity};

/// One account locked now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lockout {
    pub username: String,
    /// Failed attempts in the run that locked it.
    pub failures: i64,
    /// Unix seconds.
    pub locked_until: i64,
    /// `locked_until` as RFC 3339 UTC.
    pub locked_until_rfc3339: String,
}

impl From<LockoutRow> for Lockout {
    fn from(row: LockoutRow) -> Self {
        Self {
            locked_until_rfc3339: rfc3339_secs(row.locked_until),
            username: row.username,
            failures: row.failures,
            locked_until: row.locked_until,
        }
    }
}

/// Unix seconds as RFC 3339 UTC (`1970-01-01T00:00:00Z` for a value before 1970).
pub fn rfc3339_secs(secs: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Accounts locked now, the one whose lock ends first first.
pub async fn locked(db: &Db) -> Result<Vec<Lockout>, DbError> {
    Ok(db
        .locked_accounts(now_secs())
        .await?
        .into_iter()
        .map(Lockout::from)
        .collect())
}

/// Lifts `username`'s lockout, so that the next login with the right password
/// succeeds, and records it as `unlock` in the activity record (both or neither).
/// False when the account is not locked now (nothing is changed or recorded).
pub async fn unlock(db: &Db, username: &str, actor: &Actor) -> Result<bool, DbError> {
    let now = now_secs();
    let Some(lockout) = db.locked_account(username, now).await? else {
        return Ok(false);
    };
    let detail = format!(
        "{} failed attempt(s); was locked until {}",
        lockout.failures,
        rfc3339_secs(lockout.locked_until)
    );
    let activity = super::activity::bounded(actor, "unlock", username, &detail);
    db.lift_lockout(
        username,
        now,
        &NewActivity {
            at: now_ms(),
            ..activity
        },
    )
    .await
}
