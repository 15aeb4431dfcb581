//! Statements over the HR directory tables.

use sqlx::postgres::{PgPool, Postgres};
use sqlx::{Acquire, QueryBuilder, Transaction};

use super::auth::EXACT_USERNAME;
use super::Credentials;
use super::{on_pool, Db, DbError, DepartmentRow, DirectoryRows, EmployeeRow, MembershipRow};

const ACTIVE_EMPLOYEES: &str =
    "SELECT username, email, nick_name, ad_no, company, phone1, phone2, \
     extension_no, gender, active FROM employees WHERE active";
const ALL_DEPARTMENTS: &str =
    "SELECT group_no, display_name, parent_group_no, active FROM departments";
// Every membership: filtering by active employee and department in memory, against
// the two sets already read, is cheaper than a three-way join in the database.
const ALL_MEMBERSHIPS: &str = "SELECT group_no, username FROM department_members";

/// The three directory reads one after another on one connection (inside the
/// caller's transaction), for backends or moments where they cannot overlap.
macro_rules! read_in_turn {
    ($conn:expr) => {{
        let employees = sqlx::query_as::<_, EmployeeRow>(ACTIVE_EMPLOYEES)
            .fetch_all($conn)
            .await?;
        let departments = sqlx::query_as::<_, DepartmentRow>(ALL_DEPARTMENTS)
            .fetch_all($conn)
            .await?;
        let memberships = sqlx::query_as::<_, MembershipRow>(ALL_MEMBERSHIPS)
            .fetch_all($conn)
            .await?;
        (employees, departments, memberships)
    }};
}

/// Rows per multi-row INSERT: well under every backend's bind-parameter limit.
const INSERT_CHUNK: usize = 1000;

impl Db {
    /// Reads the whole directory with three set-based queries that see one
    /// consistent snapshot, so the payload is a true picture even while HR staff
    /// edit. On PostgreSQL the queries overlap on three connections sharing an
    /// exported snapshot; elsewhere they run in turn inside one transaction.
    pub async fn directory(&self) -> Result<DirectoryRows, DbError> {
        let (employees, departments, memberships) = match self {
            Db::Postgres(pool) => postgres_directory(pool).await?,
            Db::Sqlite(pool) => sqlite_directory(pool).await?,
            Db::MySql(pool) => {
                let mut tx = pool.begin().await?;
                let tables = read_in_turn!(&mut *tx);
                tx.commit().await?;
                tables
            }
        };
        Ok(DirectoryRows::new(employees, departments, memberships))
    }

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

    /// Inserts a whole organisation in one transaction with multi-row INSERTs.
    /// Departments must come parents first.
    pub async fn insert_directory(
        &self,
        departments: &[DepartmentRow],
        employees: &[(EmployeeRow, Option<String>)],
        memberships: &[MembershipRow],
    ) -> Result<(), DbError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let conn = tx.acquire().await?;
            for chunk in departments.chunks(INSERT_CHUNK) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO departments (group_no, display_name, parent_group_no, active) ",
                );
                qb.push_values(chunk, |mut b, d| {
                    b.push_bind(&d.group_no)
                        .push_bind(&d.display_name)
                        .push_bind(&d.parent_group_no)
                        .push_bind(d.active);
                });
                qb.build().execute(&mut *conn).await?;
            }
            for chunk in employees.chunks(INSERT_CHUNK) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO employees (username, email, nick_name, ad_no, company, phone1, \
                     phone2, extension_no, gender, password_hash, active) ",
                );
                qb.push_values(chunk, |mut b, (e, hash)| {
                    b.push_bind(&e.username)
                        .push_bind(&e.email)
                        .push_bind(&e.nick_name)
                        .push_bind(&e.ad_no)
                        .push_bind(&e.company)
                        .push_bind(&e.phone1)
                        .push_bind(&e.phone2)
                        .push_bind(&e.extension_no)
                        .push_bind(&e.gender)
                        .push_bind(hash)
                        .push_bind(e.active);
                });
                qb.build().execute(&mut *conn).await?;
            }
            for chunk in memberships.chunks(INSERT_CHUNK) {
                let mut qb =
                    QueryBuilder::new("INSERT INTO department_members (group_no, username) ");
                qb.push_values(chunk, |mut b, m| {
                    b.push_bind(&m.group_no).push_bind(&m.username);
                });
                qb.build().execute(&mut *conn).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

type Tables = (Vec<EmployeeRow>, Vec<DepartmentRow>, Vec<MembershipRow>);

/// Opens a read-only repeatable-read transaction, importing `snapshot` if given.
async fn snapshot_transaction(
    conn: sqlx::pool::PoolConnection<Postgres>,
    snapshot: Option<&str>,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = Transaction::begin(conn, None).await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    if let Some(id) = snapshot {
        // SET cannot take a bind parameter; the id comes from the server and is
        // checked to be hex digits and dashes.
        if !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(sqlx::Error::Protocol(format!(
                "unexpected snapshot id {id:?}"
            )));
        }
        sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{id}'"))
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// The three reads overlapped on three connections that share one snapshot
/// (`pg_export_snapshot`). When the pool cannot spare the extra connections at
/// once, the lead connection runs them in turn instead of waiting for others.
async fn postgres_directory(pool: &PgPool) -> Result<Tables, sqlx::Error> {
    let lead_conn = pool.acquire().await?;
    let mut lead = snapshot_transaction(lead_conn, None).await?;
    let helpers = (pool.try_acquire(), pool.try_acquire());
    let (Some(first), Some(second)) = helpers else {
        let tables = read_in_turn!(&mut *lead);
        lead.commit().await?;
        return Ok(tables);
    };
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *lead)
        .await?;
    let employees = async {
        let mut tx = snapshot_transaction(first, Some(&snapshot)).await?;
        let rows = sqlx::query_as::<_, EmployeeRow>(ACTIVE_EMPLOYEES)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(rows)
    };
    let memberships = async {
        let mut tx = snapshot_transaction(second, Some(&snapshot)).await?;
        let rows = sqlx::query_as::<_, MembershipRow>(ALL_MEMBERSHIPS)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(rows)
    };
    let departments = async {
        let rows = sqlx::query_as::<_, DepartmentRow>(ALL_DEPARTMENTS)
            .fetch_all(&mut *lead)
            .await?;
        Ok::<_, sqlx::Error>(rows)
    };
    let (employees, departments, memberships) =
        tokio::try_join!(employees, departments, memberships)?;
    // The exported snapshot lives as long as the lead transaction.
    lead.commit().await?;
    Ok((employees, departments, memberships))
}

// SQLite hands sqlx one row at a time across a thread boundary, which dominates a
// 300,000-row read; SQLite's own JSON functions pack each large table into one
// value instead. CAST keeps a number typed into a text column readable as text.
const SQLITE_EMPLOYEES_JSON: &str = "SELECT json_group_array(json_array(CAST(username AS TEXT), \
     CAST(email AS TEXT), CAST(nick_name AS TEXT), CAST(ad_no AS TEXT), CAST(company AS TEXT), \
     CAST(phone1 AS TEXT), CAST(phone2 AS TEXT), CAST(extension_no AS TEXT), \
     CAST(gender AS TEXT))) FROM employees WHERE active";
const SQLITE_MEMBERSHIPS_JSON: &str = "SELECT json_group_array(json_array(CAST(group_no AS TEXT), \
     CAST(username AS TEXT))) FROM department_members";

#[derive(serde::Deserialize)]
struct EmployeeTuple(
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn decode_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

async fn sqlite_directory(pool: &sqlx::SqlitePool) -> Result<Tables, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let employees: String = sqlx::query_scalar(SQLITE_EMPLOYEES_JSON)
        .fetch_one(&mut *tx)
        .await?;
    let departments = sqlx::query_as::<_, DepartmentRow>(ALL_DEPARTMENTS)
        .fetch_all(&mut *tx)
        .await?;
    let memberships: String = sqlx::query_scalar(SQLITE_MEMBERSHIPS_JSON)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    // Decoding megabytes of JSON is CPU work: off the async workers.
    tokio::task::spawn_blocking(move || decode_sqlite_tables(&employees, departments, &memberships))
        .await
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
}

fn decode_sqlite_tables(
    employees: &str,
    departments: Vec<DepartmentRow>,
    memberships: &str,
) -> Result<Tables, sqlx::Error> {
    let employees = decode_json::<Vec<EmployeeTuple>>(employees)?
        .into_iter()
        .map(|e| EmployeeRow {
            username: e.0,
            email: e.1,
            nick_name: e.2,
            ad_no: e.3,
            company: e.4,
            phone1: e.5,
            phone2: e.6,
            extension_no: e.7,
            gender: e.8,
            active: true,
        })
        .collect();
    let memberships = decode_json::<Vec<(String, String)>>(memberships)?
        .into_iter()
        .map(|(group_no, username)| MembershipRow { group_no, username })
        .collect();
    Ok((employees, departments, memberships))
}
