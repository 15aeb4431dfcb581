//! Small reads of the source: the rows of one user (credentials, or the
//! employees query filtered to one name) and the one-row probe of a query.

use sqlx::Row;

use super::decode::decode_row;
use super::rows::Rows;
use super::SourceError;
use crate::db::{Db, DbCause, DbError};
use crate::fields;

/// Runs a wrapped one-user query (credentials, or the employees query filtered
/// to one name) returning `columns` (text ones first, then `active` if asked
/// for), with `username` bound `params` times.
pub async fn fetch_credentials(
    db: &Db,
    sql: &str,
    columns: &'static [&'static str],
    params: usize,
    username: &str,
) -> Result<Rows, SourceError> {
    let text = columns.iter().filter(|c| **c != fields::ACTIVE).count();
    macro_rules! fetch {
        ($pool:expr) => {{
            let mut query = sqlx::query(sql);
            for _ in 0..params {
                query = query.bind(username);
            }
            let found = query.fetch_all($pool).await?;
            let mut rows = Rows::new(columns, found.len());
            for row in &found {
                if row.len() != columns.len() {
                    return Err(SourceError::Db(DbError::Query(DbCause::Sqlx(
                        sqlx::Error::ColumnIndexOutOfBounds {
                            index: columns.len().saturating_sub(1),
                            len: row.len(),
                        },
                    ))));
                }
                decode_row(&mut rows, row, text);
            }
            rows
        }};
    }
    Ok(match db {
        Db::Postgres(pool) => fetch!(pool),
        Db::MySql(pool) => fetch!(pool),
        Db::Sqlite(pool) => fetch!(pool),
    })
}

/// Runs `sql` and fetches at most its first row (a probe of a wrapped query).
pub async fn execute_probe(db: &Db, sql: &str) -> Result<(), SourceError> {
    match db {
        Db::Postgres(pool) => {
            sqlx::query(sql).fetch_optional(pool).await?;
        }
        Db::MySql(pool) => {
            sqlx::query(sql).fetch_optional(pool).await?;
        }
        Db::Sqlite(pool) => {
            sqlx::query(sql).fetch_optional(pool).await?;
        }
    }
    Ok(())
}
