//! Statements over hr-bridge's own authentication state: lockout counters, the
//! audit trail, and the compare-and-set that upgrades a stored hash.
//!
//! Usernames match byte for byte on every backend. PostgreSQL and SQLite compare
//! text exactly; MySQL/MariaDB collations fold case and width and ignore trailing
//! spaces, so there `auth_lockouts.username` is VARBINARY (migration 0004) and
//! employee lookups add a byte comparison (see [`Db::exact_username`]).

use futures_util::TryStreamExt;

use super::{on_pool, Db, DbError};

/// The username predicate of credential statements; [`Db::exact_username`] makes
/// it exact on MySQL.
pub(crate) const EXACT_USERNAME: &str = "username = ?";
/// MySQL's exact form: the key comparison still uses the primary key's index (the
/// collation makes at most one row match), the byte comparison then refuses
/// `ALICE`, `alice ` or full-width `ａｌｉｃｅ` for `alice`. CAST(… AS BINARY) is
/// VARBINARY, which (unlike `utf8mb4_bin` on MariaDB) does not pad.
const MYSQL_EXACT_USERNAME: &str = "username = ? AND CAST(username AS BINARY) = CAST(? AS BINARY)";

/// One login attempt as the audit trail records it.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// RFC 3339 UTC time.
    pub occurred_at: &'a str,
    pub username: &'a str,
    pub outcome: &'a str,
    pub reason: &'a str,
    pub client_addr: Option<&'a str>,
    /// Which door the attempt came through: `omflow` (`/authenticate`) or
    /// `console` (the web console's sign-in).
    pub channel: &'a str,
}

const CLEAR_FAILURES: &str = "DELETE FROM auth_lockouts WHERE username = ?";
const INSERT_AUDIT: &str = "INSERT INTO auth_audit (occurred_at, username, outcome, reason, \
                            client_addr, channel) VALUES (?, ?, ?, ?, ?, ?)";

/// Most rows [`Db::record_logins`] writes in one statement: 6 parameters a row
/// stay far below every backend's limit on bound parameters.
pub const MAX_AUDIT_BATCH: usize = 256;

/// Retries of a statement that lost a deadlock or serialization race.
const RACE_RETRIES: usize = 5;

pub(super) fn lost_race(e: &sqlx::Error) -> bool {
    match e {
        // 40001 serialization failure / deadlock (MySQL 1213 maps to it), 40P01
        // PostgreSQL deadlock.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code == "40001" || code == "40P01" || code == "1213"),
        _ => false,
    }
}

// PostgreSQL and SQLite share the upsert; written with SQLite's numbered `?N`
// placeholders, which become `$N` for PostgreSQL (the parameters repeat, so the
// sequential `?` rewriting of `Db::dialect` does not fit here).
const BEGIN_ATTEMPT: &str = "INSERT INTO auth_lockouts \
    (username, failures, locked_until, updated_at) \
    VALUES (?1, 1, CASE WHEN 1 >= ?2 THEN ?3 ELSE NULL END, ?4) \
    ON CONFLICT (username) DO UPDATE SET \
      failures = CASE WHEN auth_lockouts.locked_until IS NOT NULL \
                       AND auth_lockouts.locked_until <= ?4 THEN 1 \
                      ELSE auth_lockouts.failures + 1 END, \
      locked_until = CASE \
        WHEN auth_lockouts.locked_until IS NOT NULL AND auth_lockouts.locked_until > ?4 \
          THEN auth_lockouts.locked_until \
        WHEN (CASE WHEN auth_lockouts.locked_until IS NOT NULL \
                    AND auth_lockouts.locked_until <= ?4 THEN 1 \
                   ELSE auth_lockouts.failures + 1 END) >= ?2 THEN ?3 \
        ELSE NULL END, \
      updated_at = ?4 \
    RETURNING failures";

// MySQL evaluates ON DUPLICATE KEY UPDATE assignments left to right, so
// `locked_until` below sees the new `failures` and the old `locked_until`.
const MYSQL_BEGIN_ATTEMPT: &str = "INSERT INTO auth_lockouts \
    (username, failures, locked_until, updated_at) \
    VALUES (?, 1, CASE WHEN 1 >= ? THEN ? ELSE NULL END, ?) \
    ON DUPLICATE KEY UPDATE \
      failures = CASE WHEN locked_until IS NOT NULL AND locked_until <= ? THEN 1 \
                      ELSE failures + 1 END, \
      locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until > ? THEN locked_until \
                          WHEN failures >= ? THEN ? ELSE NULL END, \
      updated_at = ?";

impl Db {
    /// `sql` (holding [`EXACT_USERNAME`] once) in this backend's own form, matching
    /// the username byte for byte. On MySQL the username must then be bound twice,
    /// in place of the one `?`.
    pub(crate) fn exact_username(&self, sql: &str) -> String {
        match self {
            Db::MySql(_) => sql.replacen(EXACT_USERNAME, MYSQL_EXACT_USERNAME, 1),
            _ => self.dialect(sql).into_owned(),
        }
    }

    /// Calls `each(username, password_hash)` for every employee of the built-in
    /// table that has a hash, streaming the rows (for `hr-bridge check`).
    pub async fn for_each_password_hash(
        &self,
        mut each: impl FnMut(&str, &str),
    ) -> Result<(), DbError> {
        const SQL: &str = "SELECT username, password_hash FROM employees \
                           WHERE password_hash IS NOT NULL ORDER BY username";
        on_pool!(self, |pool| {
            let mut rows = sqlx::query(SQL).fetch(pool);
            while let Some(row) = rows.try_next().await? {
                // Read as bytes: a hash that is not UTF-8 text (or a BLOB) is no
                // known format and cannot be costly; it must not abort `check`.
                use sqlx::Row;
                let username: Option<Vec<u8>> = row.try_get_unchecked(0).ok().flatten();
                let hash: Option<Vec<u8>> = row.try_get_unchecked(1).ok().flatten();
                if let (Some(username), Some(hash)) = (username, hash) {
                    if let (Ok(username), Ok(hash)) =
                        (std::str::from_utf8(&username), std::str::from_utf8(&hash))
                    {
                        each(username, hash);
                    }
                }
            }
        });
        Ok(())
    }

    /// Counts a login attempt for `username` before its password is checked, in
    /// one atomic statement, and returns the attempt's number in the current run
    /// of failures. The caller may check the password only when that number is at
    /// most `max_failures`; reaching it locks the account until `lock_until`, and
    /// an expired lock starts a new run. A success clears the run
    /// ([`Db::clear_login_failures`]). Counting before checking means concurrent
    /// guesses cannot slip past the limit.
    pub async fn begin_login_attempt(
        &self,
        username: &str,
        now: i64,
        max_failures: i64,
        lock_until: i64,
    ) -> Result<i64, DbError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let result = self
                .begin_login_attempt_once(username, now, max_failures, lock_until)
                .await;
            match result {
                Err(e) if tries < RACE_RETRIES && lost_race(&e) => continue,
                other => return other.map_err(Into::into),
            }
        }
    }

    async fn begin_login_attempt_once(
        &self,
        username: &str,
        now: i64,
        max: i64,
        lock_until: i64,
    ) -> Result<i64, sqlx::Error> {
        macro_rules! returning {
            ($pool:expr, $sql:expr) => {
                sqlx::query_scalar($sql)
                    .bind(username)
                    .bind(max)
                    .bind(lock_until)
                    .bind(now)
                    .fetch_one($pool)
                    .await
            };
        }
        match self {
            Db::Postgres(pool) => returning!(pool, &BEGIN_ATTEMPT.replace('?', "$")),
            Db::Sqlite(pool) => returning!(pool, BEGIN_ATTEMPT),
            Db::MySql(pool) => {
                // The upsert holds the row lock until commit, so reading the count
                // back in the same transaction sees exactly this attempt's number.
                let mut tx = pool.begin().await?;
                sqlx::query(MYSQL_BEGIN_ATTEMPT)
                    .bind(username)
                    .bind(max)
                    .bind(lock_until)
                    .bind(now)
                    .bind(now)
                    .bind(now)
                    .bind(max)
                    .bind(lock_until)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let failures: i64 =
                    sqlx::query_scalar("SELECT failures FROM auth_lockouts WHERE username = ?")
                        .bind(username)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(failures)
            }
        }
    }

    /// Records a successful login and, when `clear_failures_of` names its lockout
    /// key, ends that key's run of failures, in one transaction (a login is on the
    /// hot path; one commit instead of two is measurable). The commit is sent only
    /// before `commit_by`: `Ok(false)` means that instant came first, everything was
    /// rolled back and nothing was written. So a caller that answers "success" only
    /// after `Ok(true)` never answers one without its audit row, and never leaves an
    /// audited success behind a request it gave up on.
    pub async fn record_success(
        &self,
        entry: &AuditEntry<'_>,
        clear_failures_of: Option<&str>,
        commit_by: Option<tokio::time::Instant>,
    ) -> Result<bool, DbError> {
        let audit = self.dialect(INSERT_AUDIT);
        let clear = self.dialect(CLEAR_FAILURES);
        let committed: Result<bool, sqlx::Error> = on_pool!(self, |pool| async {
            // The audit row first: while it waits for a lock on auth_audit, the
            // lockout row (which concurrent attempts of this user need) stays free.
            let staged = async {
                let mut tx = pool.begin().await?;
                sqlx::query(&audit)
                    .bind(entry.occurred_at)
                    .bind(entry.username)
                    .bind(entry.outcome)
                    .bind(entry.reason)
                    .bind(entry.client_addr)
                    .bind(entry.channel)
                    .execute(&mut *tx)
                    .await?;
                if let Some(username) = clear_failures_of {
                    sqlx::query(&clear).bind(username).execute(&mut *tx).await?;
                }
                Ok::<_, sqlx::Error>(tx)
            };
            let tx = match commit_by {
                // Dropping the unfinished transaction rolls it back.
                Some(by) => match tokio::time::timeout_at(by, staged).await {
                    Ok(tx) => tx?,
                    Err(_) => return Ok(false),
                },
                None => staged.await?,
            };
            tx.commit().await.map(|()| true)
        }
        .await);
        Ok(committed?)
    }

    /// Appends one row to the audit trail.
    pub async fn record_login(&self, entry: &AuditEntry<'_>) -> Result<(), DbError> {
        let sql = INSERT_AUDIT;
        on_pool!(self, |pool, sql| {
            sqlx::query(sql)
                .bind(entry.occurred_at)
                .bind(entry.username)
                .bind(entry.outcome)
                .bind(entry.reason)
                .bind(entry.client_addr)
                .bind(entry.channel)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Appends several rows to the audit trail, [`MAX_AUDIT_BATCH`] a statement.
    pub async fn record_logins(&self, entries: &[AuditEntry<'_>]) -> Result<(), DbError> {
        for batch in entries.chunks(MAX_AUDIT_BATCH) {
            on_pool!(self, |pool| {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO auth_audit (occurred_at, username, outcome, reason, client_addr, \
                     channel) ",
                );
                insert.push_values(batch, |mut row, entry| {
                    row.push_bind(entry.occurred_at)
                        .push_bind(entry.username)
                        .push_bind(entry.outcome)
                        .push_bind(entry.reason)
                        .push_bind(entry.client_addr)
                        .push_bind(entry.channel);
                });
                insert.build().execute(pool).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    /// Takes back one attempt counted by [`Db::begin_login_attempt`] for
    /// `username`, and the lock it set if it was the one that reached
    /// `max_failures`: for an attempt that was answered 503 (its audit row could
    /// not be written), which must not count against the account.
    pub async fn forget_login_attempt(
        &self,
        username: &str,
        max_failures: i64,
    ) -> Result<(), DbError> {
        // `locked_until` first: MySQL assigns left to right, so it still sees the
        // old `failures`, as PostgreSQL and SQLite always do.
        let sql = "UPDATE auth_lockouts SET \
                   locked_until = CASE WHEN failures - 1 < ? THEN NULL ELSE locked_until END, \
                   failures = failures - 1 \
                   WHERE username = ? AND failures > 0";
        on_pool!(self, |pool, sql| {
            sqlx::query(sql)
                .bind(max_failures)
                .bind(username)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Replaces `old` by `new` only if the stored hash is still `old`; false when
    /// someone changed it meanwhile (then their change wins).
    pub async fn replace_password_hash(
        &self,
        username: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE employees SET password_hash = ? WHERE username = ? AND password_hash = ?";
        // On MySQL both the username and the old hash compare as bytes: the
        // collation would let a hash that differs only in case pass the check.
        const MYSQL: &str = "UPDATE employees SET password_hash = ? WHERE username = ? \
                             AND CAST(username AS BINARY) = CAST(? AS BINARY) \
                             AND CAST(password_hash AS BINARY) = CAST(? AS BINARY)";
        let changed = match self {
            Db::MySql(pool) => sqlx::query(MYSQL)
                .bind(new)
                .bind(username)
                .bind(username)
                .bind(old)
                .execute(pool)
                .await?
                .rows_affected(),
            _ => on_pool!(self, |pool, sql| {
                sqlx::query(sql)
                    .bind(new)
                    .bind(username)
                    .bind(old)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })?,
        };
        Ok(changed > 0)
    }

    /// Deletes audit rows older than `audit_cutoff` (RFC 3339) and lockout rows that
    /// have been idle since `lockout_cutoff` (unix seconds) and are not locked.
    /// Returns the number of audit rows removed.
    pub async fn prune_auth_state(
        &self,
        audit_cutoff: &str,
        lockout_cutoff: i64,
        now: i64,
    ) -> Result<u64, DbError> {
        let audit = "DELETE FROM auth_audit WHERE occurred_at < ?";
        let lockouts = "DELETE FROM auth_lockouts WHERE updated_at < ? \
                        AND (locked_until IS NULL OR locked_until <= ?)";
        let removed = on_pool!(self, |pool, audit| {
            sqlx::query(audit)
                .bind(audit_cutoff)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        on_pool!(self, |pool, lockouts| {
            sqlx::query(lockouts)
                .bind(lockout_cutoff)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(removed)
    }
}
