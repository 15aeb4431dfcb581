//! Statements over the HR directory tables.

use sqlx::{Acquire, QueryBuilder};

use super::auth::EXACT_USERNAME;
use super::Credentials;
use super::{on_pool, Db, DbError, DepartmentRow, EmployeeRow, MembershipRow};
use crate::fields::{self, DepartmentField, EmployeeField, MembershipField};

/// Rows per multi-row INSERT: well under every backend's bind-parameter limit.
const INSERT_CHUNK: usize = 1000;

impl Db {
    /// The stored hash and status of one employee, if the username exists exactly,
    /// byte for byte.
    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>, DbError> {
        let sql = format!("SELECT password_hash, active FROM employees WHERE {EXACT_USERNAME}");
        let exact = self.exact_username(&sql);
        Ok(match self {
            Db::Postgres(pool) => {
                sqlx::query_as(&exact)
                    .bind(username)
                    .fetch_optional(pool)
                    .await?
            }
            Db::Sqlite(pool) => {
                sqlx::query_as(&exact)
                    .bind(username)
                    .fetch_optional(pool)
                    .await?
            }
            Db::MySql(pool) => {
                sqlx::query_as(&exact)
                    .bind(username)
                    .bind(username)
                    .fetch_optional(pool)
                    .await?
            }
        })
    }

    /// Stores a new password hash; false when there is no such employee (the
    /// username matched exactly, as for a login).
    pub async fn set_password_hash(&self, username: &str, hash: &str) -> Result<bool, DbError> {
        let sql = format!("UPDATE employees SET password_hash = ? WHERE {EXACT_USERNAME}");
        let exact = self.exact_username(&sql);
        let result = match self {
            Db::Postgres(pool) => sqlx::query(&exact)
                .bind(hash)
                .bind(username)
                .execute(pool)
                .await?
                .rows_affected(),
            Db::Sqlite(pool) => sqlx::query(&exact)
                .bind(hash)
                .bind(username)
                .execute(pool)
                .await?
                .rows_affected(),
            Db::MySql(pool) => sqlx::query(&exact)
                .bind(hash)
                .bind(username)
                .bind(username)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        if result > 0 {
            return Ok(true);
        }
        // MySQL counts only changed rows, so an identical hash reports 0: ask.
        Ok(self.credentials(username).await?.is_some())
    }

    /// True when neither employees nor departments hold a row.
    pub async fn directory_is_empty(&self) -> Result<bool, DbError> {
        let sql = "SELECT (SELECT COUNT(*) FROM employees) + (SELECT COUNT(*) FROM departments)";
        let count: i64 = on_pool!(self, |pool| sqlx::query_scalar(sql).fetch_one(pool).await)?;
        Ok(count == 0)
    }

    /// Inserts a whole organisation in one transaction with multi-row INSERTs,
    /// chunk by chunk, every employee with `hash`. Departments come parents first.
    pub async fn insert_directory(
        &self,
        departments: &[DepartmentRow],
        chunks: impl Iterator<Item = (Vec<EmployeeRow>, Vec<MembershipRow>)>,
        hash: &str,
    ) -> Result<(), DbError> {
        // Columns from the field lists: the binds below follow the same lists.
        let insert = |table: &str, columns: &[&str]| {
            format!("INSERT INTO {table} ({}) ", columns.join(", "))
        };
        let departments_sql = insert("departments", &fields::DEPARTMENT_TABLE);
        let employees_sql = insert("employees", &fields::EMPLOYEE_TABLE);
        let members_sql = insert("department_members", &fields::MEMBERSHIP_COLUMNS);
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let conn = tx.acquire().await?;
            for chunk in departments.chunks(INSERT_CHUNK) {
                let mut qb = QueryBuilder::new(&departments_sql);
                qb.push_values(chunk, |mut b, d| {
                    for field in DepartmentField::ALL {
                        b.push_bind(d.field(field));
                    }
                    b.push_bind(d.active);
                });
                qb.build().execute(&mut *conn).await?;
            }
            for (employees, memberships) in chunks {
                for chunk in employees.chunks(INSERT_CHUNK) {
                    let mut qb = QueryBuilder::new(&employees_sql);
                    qb.push_values(chunk, |mut b, e| {
                        for field in EmployeeField::ALL {
                            b.push_bind(e.field(field));
                        }
                        b.push_bind(hash).push_bind(e.active);
                    });
                    qb.build().execute(&mut *conn).await?;
                }
                for chunk in memberships.chunks(INSERT_CHUNK) {
                    let mut qb = QueryBuilder::new(&members_sql);
                    qb.push_values(chunk, |mut b, m| {
                        for field in MembershipField::ALL {
                            b.push_bind(match field {
                                MembershipField::GroupNo => &m.group_no,
                                MembershipField::Username => &m.username,
                            });
                        }
                    });
                    qb.build().execute(&mut *conn).await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
