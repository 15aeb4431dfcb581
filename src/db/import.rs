//! Whole-table reads and the one-transaction writes behind `hr-bridge import`.

use std::collections::BTreeMap;

use sqlx::QueryBuilder;

use super::{on_pool, Backend, Db, DbError};
use crate::fields;

/// One CSV or database value: text (NULL as `None`) or a boolean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(Option<String>),
    Bool(bool),
}

/// Every row of the three directory tables, as column → value maps.
#[derive(Debug, Default)]
pub struct DirectoryTables {
    pub employees: Vec<BTreeMap<&'static str, Cell>>,
    pub departments: Vec<BTreeMap<&'static str, Cell>>,
    pub members: Vec<BTreeMap<&'static str, Cell>>,
}

/// One step of an import, in the order given.
#[derive(Debug, Clone)]
pub enum TableWrite {
    /// Insert rows; `columns` are the ones the file has. With `update_on`, a row
    /// whose key exists updates it instead (an upsert); without, any clash on a
    /// unique key is an error (on MySQL an upsert fires on every unique key, so new
    /// rows must not be upserted where a second unique key exists).
    Insert {
        table: &'static str,
        update_on: Option<&'static [&'static str]>,
        columns: Vec<&'static str>,
        rows: Vec<Vec<Cell>>,
    },
    /// Give employees (username, temporary email) pairs, so that their emails are
    /// free for others in the same transaction.
    ParkEmails { pairs: Vec<(String, String)> },
    /// Delete rows by a one-column key.
    Delete {
        table: &'static str,
        key: &'static str,
        keys: Vec<String>,
    },
    /// Delete memberships by (group_no, username).
    DeleteMembers { pairs: Vec<(String, String)> },
}

/// Rows per multi-row statement.
const CHUNK: usize = 500;

/// One key for [`Db::collation_clashes`]: its line in a file (0: a stored row),
/// what it belongs to (the key itself, or the username an email belongs to),
/// and the values of the key's columns.
#[derive(Debug, Clone)]
pub struct KeyRow<'a> {
    pub line: u64,
    pub owner: &'a str,
    pub values: Vec<&'a str>,
}

/// `active` as something every stored row can be read as. SQLite may hold rows
/// from before the schema refused non-booleans (`'true'` as text): read those as
/// NULL rather than fail the whole import, so that a file listing the row differs
/// from it and its upsert repairs it.
fn active_column(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "CASE WHEN active IN (0, 1) THEN active END AS active",
        Backend::Postgres | Backend::MySql => "active",
    }
}

/// A stored `active` as a cell: unreadable values stay distinct from both booleans.
fn active_cell(value: Option<bool>) -> Cell {
    value.map_or(Cell::Text(None), Cell::Bool)
}

impl Db {
    /// Every employee (with hash), department and membership, active or not,
    /// each row as its table's columns (from [`crate::fields`]) to values.
    pub async fn directory_tables(&self) -> Result<DirectoryTables, DbError> {
        let active = active_column(self.backend());
        let select = |table: &str, columns: &[&'static str]| {
            let list: Vec<&str> = columns
                .iter()
                .map(|c| if *c == fields::ACTIVE { active } else { c })
                .collect();
            format!("SELECT {} FROM {table}", list.join(", "))
        };
        let employees_sql = select("employees", &fields::EMPLOYEE_TABLE);
        let departments_sql = select("departments", &fields::DEPARTMENT_TABLE);
        let members_sql = select("department_members", &fields::MEMBERSHIP_COLUMNS);
        // Each row by column name: text columns as text (NULL as `None`),
        // `active` as a boolean (unreadable values as neither).
        macro_rules! cells {
            ($row:expr, $columns:expr) => {{
                let mut cells = BTreeMap::new();
                for column in $columns {
                    let cell = if column == fields::ACTIVE {
                        active_cell(sqlx::Row::try_get::<Option<bool>, _>($row, column)?)
                    } else {
                        Cell::Text(sqlx::Row::try_get::<Option<String>, _>($row, column)?)
                    };
                    cells.insert(column, cell);
                }
                cells
            }};
        }
        let tables = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let e = sqlx::query(&employees_sql).fetch_all(&mut *tx).await?;
            let d = sqlx::query(&departments_sql).fetch_all(&mut *tx).await?;
            let m = sqlx::query(&members_sql).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            let mut tables = DirectoryTables::default();
            for row in &e {
                tables.employees.push(cells!(row, fields::EMPLOYEE_TABLE));
            }
            for row in &d {
                tables
                    .departments
                    .push(cells!(row, fields::DEPARTMENT_TABLE));
            }
            for row in &m {
                tables.members.push(cells!(row, fields::MEMBERSHIP_COLUMNS));
            }
            tables
        });
        Ok(tables)
    }

    /// Pairs of `rows` (indices, the smaller first; at least one of them from a
    /// file) whose values the database holds equal although their owners differ
    /// byte for byte: keys that would clash in its unique indexes though a
    /// byte-wise comparison tells them apart.
    ///
    /// Only MySQL/MariaDB compares keys otherwise than by their bytes: its
    /// collations (ours is `utf8mb4_unicode_ci`) ignore case, accents and
    /// trailing spaces, treat full-width letters as their ASCII ones and every
    /// emoji as every other. Rather than imitate that, the database compares:
    /// the rows go into a temporary table whose columns are copied from
    /// `table`'s own (`CREATE … SELECT` keeps type, character set and collation),
    /// and a self-join uses the very `=` its indexes use. Elsewhere keys compare
    /// by bytes and the answer is empty.
    pub async fn collation_clashes(
        &self,
        table: &'static str,
        columns: &[&'static str],
        rows: &[KeyRow<'_>],
    ) -> Result<Vec<(usize, usize)>, DbError> {
        let Db::MySql(pool) = self else {
            return Ok(Vec::new());
        };
        if rows.len() < 2 || columns.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = (0..columns.len()).map(|i| format!("k{i}")).collect();
        let copied: Vec<String> = columns
            .iter()
            .zip(&keys)
            .map(|(column, key)| format!("{column} AS {key}"))
            .collect();
        let create = format!(
            "CREATE TEMPORARY TABLE hrb_import_keys (n BIGINT NOT NULL DEFAULT 0, \
             line BIGINT NOT NULL DEFAULT 0, owner VARBINARY(4096) NOT NULL DEFAULT '', \
             INDEX ({})) SELECT {} FROM {table} WHERE FALSE",
            keys.join(", "),
            copied.join(", ")
        );
        let same: Vec<String> = keys.iter().map(|k| format!("a.{k} = b.{k}")).collect();
        let join = format!(
            "SELECT a.n, b.n FROM hrb_import_keys a JOIN hrb_import_keys b \
             ON {} AND a.owner <> b.owner AND a.n < b.n \
             WHERE a.line > 0 OR b.line > 0 ORDER BY a.n, b.n",
            same.join(" AND ")
        );
        // A temporary table belongs to one connection: hold one throughout.
        let mut conn = pool.acquire().await?;
        sqlx::query("DROP TEMPORARY TABLE IF EXISTS hrb_import_keys")
            .execute(&mut *conn)
            .await?;
        sqlx::query(&create).execute(&mut *conn).await?;
        let filled = async {
            for (start, chunk) in (0..).step_by(CHUNK).zip(rows.chunks(CHUNK)) {
                let mut qb = QueryBuilder::new(format!(
                    "INSERT INTO hrb_import_keys (n, line, owner, {}) ",
                    keys.join(", ")
                ));
                qb.push_values(chunk.iter().enumerate(), |mut b, (i, row)| {
                    b.push_bind(i64::try_from(start + i).unwrap_or(i64::MAX));
                    b.push_bind(i64::try_from(row.line).unwrap_or(i64::MAX));
                    b.push_bind(row.owner.as_bytes());
                    for value in &row.values {
                        b.push_bind(*value);
                    }
                });
                qb.build().execute(&mut *conn).await?;
            }
            sqlx::query_as::<_, (i64, i64)>(&join)
                .fetch_all(&mut *conn)
                .await
        }
        .await;
        let dropped = sqlx::query("DROP TEMPORARY TABLE IF EXISTS hrb_import_keys")
            .execute(&mut *conn)
            .await;
        let pairs = filled?;
        dropped?;
        Ok(pairs
            .into_iter()
            .filter_map(|(a, b)| Some((usize::try_from(a).ok()?, usize::try_from(b).ok()?)))
            .collect())
    }

    /// Runs every step in one transaction: all of it lands (`commit`), or, for
    /// a dry run, all of it is tried and rolled back, so that the dry run meets
    /// every refusal the real run would (a constraint, a trigger, a value too
    /// long for its column) and still changes nothing.
    pub async fn apply_import(&self, steps: &[TableWrite], commit: bool) -> Result<(), DbError> {
        let backend = self.backend();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for step in steps {
                match step {
                    TableWrite::Insert {
                        table,
                        update_on,
                        columns,
                        rows,
                    } => {
                        for chunk in rows.chunks(CHUNK) {
                            let mut qb = QueryBuilder::new(format!(
                                "INSERT INTO {table} ({}) ",
                                columns.join(", ")
                            ));
                            qb.push_values(chunk, |mut b, row| {
                                for cell in row {
                                    match cell {
                                        Cell::Text(t) => b.push_bind(t.clone()),
                                        Cell::Bool(v) => b.push_bind(*v),
                                    };
                                }
                            });
                            if let Some(key) = update_on {
                                qb.push(upsert_clause(backend, key, columns));
                            }
                            qb.build().execute(&mut *tx).await?;
                        }
                    }
                    TableWrite::ParkEmails { pairs } => {
                        let sql = match backend {
                            Backend::Postgres => {
                                "UPDATE employees SET email = $1 WHERE username = $2"
                            }
                            _ => "UPDATE employees SET email = ? WHERE username = ?",
                        };
                        for (user, email) in pairs {
                            sqlx::query(sql)
                                .bind(email)
                                .bind(user)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    TableWrite::Delete { table, key, keys } => {
                        if *table == "departments" {
                            // Deleted departments may point at each other; unlink first.
                            for chunk in keys.chunks(CHUNK) {
                                let mut qb = QueryBuilder::new(
                                    "UPDATE departments SET parent_group_no = NULL WHERE group_no IN (",
                                );
                                let mut list = qb.separated(", ");
                                for k in chunk {
                                    list.push_bind(k.clone());
                                }
                                qb.push(")");
                                qb.build().execute(&mut *tx).await?;
                            }
                        }
                        for chunk in keys.chunks(CHUNK) {
                            let mut qb =
                                QueryBuilder::new(format!("DELETE FROM {table} WHERE {key} IN ("));
                            let mut list = qb.separated(", ");
                            for k in chunk {
                                list.push_bind(k.clone());
                            }
                            qb.push(")");
                            qb.build().execute(&mut *tx).await?;
                        }
                    }
                    TableWrite::DeleteMembers { pairs } => {
                        for (group, user) in pairs {
                            let sql = match backend {
                                Backend::Postgres => "DELETE FROM department_members WHERE group_no = $1 AND username = $2",
                                _ => "DELETE FROM department_members WHERE group_no = ? AND username = ?",
                            };
                            sqlx::query(sql)
                                .bind(group)
                                .bind(user)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
            }
            if commit {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(())
        })
    }
}

/// The dialect's "update on key conflict" tail for an INSERT.
fn upsert_clause(backend: Backend, key: &[&str], columns: &[&str]) -> String {
    let updates: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| !key.contains(c))
        .collect();
    match backend {
        Backend::MySql => {
            let set: Vec<String> = if updates.is_empty() {
                // Nothing to update (memberships): a no-op that keeps FK checks,
                // unlike INSERT IGNORE, which would swallow them.
                vec![format!("{0} = {0}", key[0])]
            } else {
                updates
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect()
            };
            format!(" ON DUPLICATE KEY UPDATE {}", set.join(", "))
        }
        Backend::Postgres | Backend::Sqlite => {
            if updates.is_empty() {
                format!(" ON CONFLICT ({}) DO NOTHING", key.join(", "))
            } else {
                let set: Vec<String> = updates
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    key.join(", "),
                    set.join(", ")
                )
            }
        }
    }
}
