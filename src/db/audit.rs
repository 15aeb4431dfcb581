//! Reading the authentication audit trail (`auth_audit`) for the `audit` command
//! and the console: filtered, newest first, bounded.

use super::{from_row, on_pool, Db, DbError};

from_row! {
    /// One login attempt as stored.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AuditRow {
        pub id: i64,
        /// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T18:00:00.000Z`.
        pub occurred_at: String,
        pub username: String,
        pub outcome: String,
        pub reason: String,
        pub client_addr: Option<String>,
    }
}

/// Which rows to read. Times are RFC 3339 UTC with milliseconds (the stored
/// form, which sorts as text); every filter is an exact match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    pub username: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    /// At or after.
    pub since: Option<&'a str>,
    /// Before.
    pub until: Option<&'a str>,
    pub limit: u32,
    pub offset: u32,
}

impl Db {
    /// Audit rows matching `filter`, newest first.
    pub async fn audit_rows(&self, filter: &AuditFilter<'_>) -> Result<Vec<AuditRow>, DbError> {
        let mut sql = String::from(
            "SELECT id, occurred_at, username, outcome, reason, client_addr FROM auth_audit \
             WHERE 1 = 1",
        );
        let mut binds: Vec<&str> = Vec::new();
        if let Some(username) = filter.username {
            // Byte for byte on MySQL too, whose collation folds case.
            match self {
                Db::MySql(_) => {
                    sql.push_str(
                        " AND username = ? AND CAST(username AS BINARY) = CAST(? AS BINARY)",
                    );
                    binds.push(username);
                }
                _ => sql.push_str(" AND username = ?"),
            }
            binds.push(username);
        }
        for (column, value) in [
            ("outcome", filter.outcome),
            ("reason", filter.reason),
            ("client_addr", filter.client_addr),
        ] {
            if let Some(value) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                binds.push(value);
            }
        }
        if let Some(since) = filter.since {
            sql.push_str(" AND occurred_at >= ?");
            binds.push(since);
        }
        if let Some(until) = filter.until {
            sql.push_str(" AND occurred_at < ?");
            binds.push(until);
        }
        sql.push_str(" ORDER BY occurred_at DESC, id DESC LIMIT ? OFFSET ?");
        let sql = self.dialect(&sql);
        Ok(on_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, AuditRow>(&sql);
            for value in &binds {
                query = query.bind(*value);
            }
            query
                .bind(i64::from(filter.limit))
                .bind(i64::from(filter.offset))
                .fetch_all(pool)
                .await
        })?)
    }
}
