//! The one write to a source: the operator's `update_password` on a mapped
//! source (the built-in tables use [`crate::db::Db::replace_password_hash`]).

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use super::SourceError;
use crate::db::{Db, DbError};

/// Runs the operator's `update_password` on a mapped source, whose pool opens
/// every connection read-only: PostgreSQL and MySQL lift that for this one
/// transaction (the database user's grants still decide), SQLite opens the file
/// once as the URL says (so `?mode=ro` stays read-only).
pub async fn execute_mapped_write(
    db: &Db,
    sqlite_url: Option<&SecretString>,
    sql: &str,
    args: &[&str],
) -> Result<u64, SourceError> {
    use sqlx::Connection;
    macro_rules! bind {
        ($sql:expr) => {{
            let mut query = sqlx::query($sql);
            for arg in args {
                query = query.bind(*arg);
            }
            query
        }};
    }
    Ok(match (db, sqlite_url) {
        (Db::Postgres(pool), _) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SET TRANSACTION READ WRITE")
                .execute(&mut *tx)
                .await?;
            let affected = bind!(sql).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            affected
        }
        (Db::MySql(pool), _) => {
            let mut conn = pool.acquire().await?;
            // Applies to the next transaction only: the autocommitted UPDATE.
            sqlx::query("SET TRANSACTION READ WRITE")
                .execute(&mut *conn)
                .await?;
            bind!(sql).execute(&mut *conn).await?.rows_affected()
        }
        (Db::Sqlite(_), Some(url)) => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose_secret())
                .map_err(|e| DbError::Config(format!("database.url is not valid: {e}")))?
                .busy_timeout(std::time::Duration::from_secs(5));
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
            let affected = bind!(sql).execute(&mut conn).await?.rows_affected();
            conn.close().await?;
            affected
        }
        (Db::Sqlite(pool), None) => bind!(sql).execute(pool).await?.rows_affected(),
    })
}
