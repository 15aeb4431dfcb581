//! Statements of the web console's own state: its sessions (migrations 0010 and
//! 0011: the CSRF token derived rather than stored, the one-time flash) and
//! the login figures its overview draws from the audit trail.

use super::{from_row, on_pool, Db, DbError};

from_row! {
    /// A console session as stored (the token itself is never stored, only its hash).
    #[derive(Debug, Clone)]
    pub struct ConsoleSessionRow {
        pub username: String,
        /// Unix milliseconds.
        pub created_at: i64,
        /// Unix milliseconds.
        pub last_seen: i64,
        /// A one-time message for the next page.
        pub flash: Option<String>,
    }
}

/// Logins of one hour and outcome, from the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginHourRow {
    /// The hour as the audit trail's text begins it: `2026-11-24T18`.
    pub hour: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub count: i64,
}

impl Db {
    /// Stores a new session under the hash of its token.
    pub async fn insert_console_session(
        &self,
        id_hash: &str,
        username: &str,
        now_ms: i64,
    ) -> Result<(), DbError> {
        let sql = "INSERT INTO console_sessions (id, username, created_at, last_seen) \
                   VALUES (?, ?, ?, ?)";
        on_pool!(self, |pool, sql| sqlx::query(sql)
            .bind(id_hash)
            .bind(username)
            .bind(now_ms)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The session stored under `id_hash`, if any (expired or not).
    pub async fn console_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<ConsoleSessionRow>, DbError> {
        // MySQL keeps the username as VARBINARY: read it back as text.
        let sql = match self {
            Db::MySql(_) => {
                "SELECT CONVERT(username USING utf8mb4) AS username, created_at, last_seen, \
                 flash FROM console_sessions WHERE id = ?"
            }
            _ => {
                "SELECT username, created_at, last_seen, flash FROM console_sessions \
                 WHERE id = ?"
            }
        };
        Ok(on_pool!(self, |pool, sql| sqlx::query_as::<
            _,
            ConsoleSessionRow,
        >(sql)
        .bind(id_hash)
        .fetch_optional(pool)
        .await)?)
    }

    /// Marks the session used at `now_ms`.
    pub async fn touch_console_session(&self, id_hash: &str, now_ms: i64) -> Result<(), DbError> {
        let sql = "UPDATE console_sessions SET last_seen = ? WHERE id = ? AND last_seen < ?";
        on_pool!(self, |pool, sql| sqlx::query(sql)
            .bind(now_ms)
            .bind(id_hash)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Sets (or clears) the session's one-time message.
    pub async fn set_console_flash(
        &self,
        id_hash: &str,
        flash: Option<&str>,
    ) -> Result<(), DbError> {
        let sql = "UPDATE console_sessions SET flash = ? WHERE id = ?";
        on_pool!(self, |pool, sql| sqlx::query(sql)
            .bind(flash)
            .bind(id_hash)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Clears the session's one-time message if it is still `flash`: true for
    /// the one request that did.
    pub async fn take_console_flash(&self, id_hash: &str, flash: &str) -> Result<bool, DbError> {
        let sql = "UPDATE console_sessions SET flash = NULL WHERE id = ? AND flash = ?";
        Ok(on_pool!(self, |pool, sql| sqlx::query(sql)
            .bind(id_hash)
            .bind(flash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))?)
    }

    /// Ends one session.
    pub async fn delete_console_session(&self, id_hash: &str) -> Result<(), DbError> {
        let sql = "DELETE FROM console_sessions WHERE id = ?";
        on_pool!(self, |pool, sql| sqlx::query(sql)
            .bind(id_hash)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Deletes sessions idle since before `idle_before_ms` or created before
    /// `created_before_ms`; returns how many.
    pub async fn prune_console_sessions(
        &self,
        idle_before_ms: i64,
        created_before_ms: i64,
    ) -> Result<u64, DbError> {
        let sql = "DELETE FROM console_sessions WHERE last_seen < ? OR created_at < ?";
        Ok(on_pool!(self, |pool, sql| sqlx::query(sql)
            .bind(idle_before_ms)
            .bind(created_before_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// Logins per hour and outcome since `since` (RFC 3339 UTC, as the audit
    /// trail writes it), oldest hour first. The range reads the `occurred_at`
    /// index; the text's first 13 characters are the hour.
    pub async fn login_counts_per_hour(&self, since: &str) -> Result<Vec<LoginHourRow>, DbError> {
        let sql = "SELECT SUBSTR(occurred_at, 1, 13) AS hour, outcome, COUNT(*) AS n \
                   FROM auth_audit WHERE occurred_at >= ? \
                   GROUP BY SUBSTR(occurred_at, 1, 13), outcome ORDER BY hour, outcome";
        let rows: Vec<(String, String, i64)> = on_pool!(self, |pool, sql| sqlx::query_as(sql)
            .bind(since)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(hour, outcome, count)| LoginHourRow {
                hour,
                outcome,
                count,
            })
            .collect())
    }
}
