//! Statements over `activity`: what operators did through the command line or the
//! web console, one row per action.

use super::{from_row, on_pool, Db, DbError};

from_row! {
    /// One recorded action, as stored.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ActivityRow {
        pub id: i64,
        /// Unix milliseconds.
        pub at: i64,
        pub actor: String,
        pub channel: String,
        pub action: String,
        pub subject: String,
        pub detail: String,
    }
}

/// A row to append (the id is the database's).
#[derive(Debug, Clone, Copy)]
pub struct NewActivity<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub channel: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub detail: &'a str,
}

impl Db {
    /// Appends one action to the activity record.
    pub async fn insert_activity(&self, row: &NewActivity<'_>) -> Result<(), DbError> {
        let sql = "INSERT INTO activity (at, actor, channel, action, subject, detail) \
                   VALUES (?, ?, ?, ?, ?, ?)";
        on_pool!(self, |pool, sql| {
            sqlx::query(sql)
                .bind(row.at)
                .bind(row.actor)
                .bind(row.channel)
                .bind(row.action)
                .bind(row.subject)
                .bind(row.detail)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// The newest actions first, `limit` of them after skipping `offset`.
    pub async fn activity_page(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<ActivityRow>, DbError> {
        let sql = "SELECT id, at, actor, channel, action, subject, detail FROM activity \
                   ORDER BY at DESC, id DESC LIMIT ? OFFSET ?";
        Ok(on_pool!(self, |pool, sql| {
            sqlx::query_as::<_, ActivityRow>(sql)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(pool)
                .await
        })?)
    }
}
