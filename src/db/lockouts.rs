//! Statements for the IT commands over `auth_lockouts`: which accounts are locked
//! now, and lifting one lockout together with its activity row.
//!
//! On MySQL/MariaDB `auth_lockouts.username` is VARBINARY (exact matches, see
//! `auth.rs`): it is read back as utf8mb4 text.

use super::{from_row, on_pool, Db, DbError, NewActivity};

from_row! {
    /// One locked account.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LockoutRow {
        pub username: String,
        /// Failed attempts in the run that locked it.
        pub failures: i64,
        /// Unix seconds.
        pub locked_until: i64,
    }
}

impl Db {
    fn lockout_select(&self) -> &'static str {
        match self {
            Db::MySql(_) => {
                "SELECT CONVERT(username USING utf8mb4) AS username, failures, locked_until \
                 FROM auth_lockouts"
            }
            _ => "SELECT username, failures, locked_until FROM auth_lockouts",
        }
    }

    /// Accounts locked at `now` (unix seconds), the longest-locked last to end first.
    pub async fn locked_accounts(&self, now: i64) -> Result<Vec<LockoutRow>, DbError> {
        let sql = format!(
            "{} WHERE locked_until IS NOT NULL AND locked_until > ? \
             ORDER BY locked_until, username",
            self.lockout_select()
        );
        let sql = sql.as_str();
        Ok(on_pool!(self, |pool, sql| {
            sqlx::query_as::<_, LockoutRow>(sql)
                .bind(now)
                .fetch_all(pool)
                .await
        })?)
    }

    /// `username`'s lockout, if it is locked at `now` (unix seconds).
    pub async fn locked_account(
        &self,
        username: &str,
        now: i64,
    ) -> Result<Option<LockoutRow>, DbError> {
        let sql = format!(
            "{} WHERE username = ? AND locked_until IS NOT NULL AND locked_until > ?",
            self.lockout_select()
        );
        let sql = sql.as_str();
        Ok(on_pool!(self, |pool, sql| {
            sqlx::query_as::<_, LockoutRow>(sql)
                .bind(username)
                .bind(now)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Lifts `username`'s lockout (its run of failures starts again from zero) if
    /// it is still locked at `now`, and appends `activity`, in one transaction:
    /// a lockout is never lifted without its record. False when it was not locked.
    pub async fn lift_lockout(
        &self,
        username: &str,
        now: i64,
        activity: &NewActivity<'_>,
    ) -> Result<bool, DbError> {
        let delete = self.dialect(
            "DELETE FROM auth_lockouts WHERE username = ? \
             AND locked_until IS NOT NULL AND locked_until > ?",
        );
        let insert = self.dialect(
            "INSERT INTO activity (at, actor, channel, action, subject, detail) \
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        let lifted: Result<bool, sqlx::Error> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let removed = sqlx::query(&delete)
                .bind(username)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if removed == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(&insert)
                .bind(activity.at)
                .bind(activity.actor)
                .bind(activity.channel)
                .bind(activity.action)
                .bind(activity.subject)
                .bind(activity.detail)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await);
        Ok(lifted?)
    }
}
