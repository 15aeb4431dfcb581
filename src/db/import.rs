//! Whole-table reads and the one-transaction writes behind `hr-bridge import`.

use std::collections::BTreeMap;

use sqlx::QueryBuilder;

use super::{on_pool, Backend, Db, DbError, DepartmentRow, EmployeeRow, MembershipRow};

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
    /// Insert or update rows; `columns` are the ones the file has.
    Upsert {
        table: &'static str,
        key: &'static [&'static str],
        columns: Vec<&'static str>,
        rows: Vec<Vec<Cell>>,
    },
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

#[derive(sqlx::FromRow)]
struct EmployeeWithHash {
    #[sqlx(flatten)]
    employee: EmployeeRow,
    password_hash: Option<String>,
}

fn text(value: &Option<String>) -> Cell {
    Cell::Text(value.clone())
}

impl Db {
    /// Every employee (with hash), department and membership, active or not.
    pub async fn directory_tables(&self) -> Result<DirectoryTables, DbError> {
        let employees_sql = "SELECT username, email, nick_name, ad_no, company, phone1, phone2, \
                             extension_no, gender, active, password_hash FROM employees";
        let departments_sql =
            "SELECT group_no, display_name, parent_group_no, active FROM departments";
        let members_sql = "SELECT group_no, username FROM department_members";
        let (employees, departments, members) = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let e = sqlx::query_as::<_, EmployeeWithHash>(employees_sql)
                .fetch_all(&mut *tx)
                .await?;
            let d = sqlx::query_as::<_, DepartmentRow>(departments_sql)
                .fetch_all(&mut *tx)
                .await?;
            let m = sqlx::query_as::<_, MembershipRow>(members_sql)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            (e, d, m)
        });
        Ok(DirectoryTables {
            employees: employees
                .into_iter()
                .map(|row| {
                    let e = row.employee;
                    BTreeMap::from([
                        ("username", Cell::Text(Some(e.username))),
                        ("email", Cell::Text(Some(e.email))),
                        ("nick_name", Cell::Text(Some(e.nick_name))),
                        ("ad_no", text(&e.ad_no)),
                        ("company", text(&e.company)),
                        ("phone1", text(&e.phone1)),
                        ("phone2", text(&e.phone2)),
                        ("extension_no", text(&e.extension_no)),
                        ("gender", text(&e.gender)),
                        ("password_hash", text(&row.password_hash)),
                        ("active", Cell::Bool(e.active)),
                    ])
                })
                .collect(),
            departments: departments
                .into_iter()
                .map(|d| {
                    BTreeMap::from([
                        ("group_no", Cell::Text(Some(d.group_no))),
                        ("display_name", Cell::Text(Some(d.display_name))),
                        ("parent_group_no", text(&d.parent_group_no)),
                        ("active", Cell::Bool(d.active)),
                    ])
                })
                .collect(),
            members: members
                .into_iter()
                .map(|m| {
                    BTreeMap::from([
                        ("group_no", Cell::Text(Some(m.group_no))),
                        ("username", Cell::Text(Some(m.username))),
                    ])
                })
                .collect(),
        })
    }

    /// Runs every step in one transaction: all of it lands, or none.
    pub async fn apply_import(&self, steps: &[TableWrite]) -> Result<(), DbError> {
        let backend = self.backend();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for step in steps {
                match step {
                    TableWrite::Upsert {
                        table,
                        key,
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
                            qb.push(upsert_clause(backend, key, columns));
                            qb.build().execute(&mut *tx).await?;
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
            tx.commit().await?;
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
