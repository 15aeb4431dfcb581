//! Running the wrapped queries and turning each cell into a [`Value`], forgiving
//! about types (numbers become text, `active` may be 0/1) but never about bytes:
//! text that is not UTF-8 arrives as [`Value::Invalid`] for validation to report.
//!
//! PostgreSQL and MySQL rows stream through sqlx on one connection inside one
//! repeatable-read, read-only transaction. SQLite rows are read with `rusqlite` on
//! a blocking thread from a read-only connection (sqlx hands SQLite rows across a
//! thread one at a time, which would dominate a large read).

use std::path::PathBuf;
use std::str::FromStr;

use futures_util::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{Row, TypeInfo, ValueRef};
use tokio::sync::mpsc::Sender;

use super::{sql, Queries, Shape, SourceError, DEPARTMENTS, EMPLOYEES, MEMBERSHIPS};
use crate::db::{Backend, Db, DbError};

pub use super::rows::{Row as RawRow, Rows, Value};

/// Rows on their way from the database to the payload builder, in this order:
/// every department, then employees by username, then memberships by group_no
/// and username (byte order).
#[derive(Debug)]
pub enum Batch {
    Departments(Rows),
    Employees(Rows),
    Memberships(Rows),
}

/// Makes a [`Batch`] of one kind from rows.
type MakeBatch = fn(Rows) -> Batch;

/// Rows per batch handed to the builder.
const BATCH: usize = 2048;
/// Text per batch: rows with very large cells are sent sooner, which bounds the
/// memory of the batches in flight (and keeps their offsets well within `u32`).
const BATCH_BYTES: usize = 16 << 20;

/// The three wrapped directory queries and whether each has `active`.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub departments: String,
    pub employees: String,
    pub memberships: String,
    /// Columns each of the three returns.
    pub widths: [usize; 3],
}

/// One of the three reads: its query, the batch kind its rows go in, how many
/// columns it returns, and how many of them lead as text.
struct Step<'a> {
    sql: &'a str,
    make: MakeBatch,
    width: usize,
    text: usize,
}

impl ReadPlan {
    /// Departments, employees, memberships: the order the builder needs them in.
    fn steps(&self) -> [Step<'_>; 3] {
        [
            Step {
                sql: &self.departments,
                make: Batch::Departments,
                width: self.widths[0],
                text: DEPARTMENTS.required.len(),
            },
            Step {
                sql: &self.employees,
                make: Batch::Employees,
                width: self.widths[1],
                text: EMPLOYEES.required.len(),
            },
            Step {
                sql: &self.memberships,
                make: Batch::Memberships,
                width: self.widths[2],
                text: MEMBERSHIPS.required.len(),
            },
        ]
    }

    pub fn new(backend: Backend, queries: &Queries, shape: &Shape, order: sql::Order) -> Self {
        let active = |has: bool| -> &'static [&'static str] {
            if has {
                &["active"]
            } else {
                &[]
            }
        };
        let width = |required: &[&str], has_active: bool| required.len() + usize::from(has_active);
        Self {
            widths: [
                width(DEPARTMENTS.required, shape.departments_active),
                width(EMPLOYEES.required, shape.employees_active),
                width(MEMBERSHIPS.required, false),
            ],
            departments: sql::wrap_in(
                backend,
                &queries.departments,
                DEPARTMENTS.required,
                active(shape.departments_active),
                &[],
                order,
                None,
            ),
            employees: sql::wrap_in(
                backend,
                &queries.employees,
                EMPLOYEES.required,
                active(shape.employees_active),
                &["username"],
                order,
                None,
            ),
            memberships: sql::wrap_in(
                backend,
                &queries.memberships,
                MEMBERSHIPS.required,
                &[],
                &["group_no", "username"],
                order,
                None,
            ),
        }
    }
}

/// Appends a sqlx row to `rows`: `text` leading text columns, then the raw ones.
/// Text is copied straight from the driver's buffer into the batch's.
fn decode_row<R>(rows: &mut Rows, row: &R, text: usize)
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<&'r [u8]>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i16>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<bool>: sqlx::Decode<'r, R::Database>,
{
    for i in 0..row.len() {
        if i < text {
            rows.push_bytes(row.try_get_unchecked::<Option<&[u8]>, _>(i).ok().flatten());
        } else {
            push_raw(rows, row, i);
        }
    }
}

/// An `active` cell: booleans and integers as such, text kept for the message.
fn push_raw<R>(rows: &mut Rows, row: &R, i: usize)
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<&'r [u8]>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i16>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<bool>: sqlx::Decode<'r, R::Database>,
{
    let Ok(raw) = row.try_get_raw(i) else {
        return rows.push_null();
    };
    if raw.is_null() {
        return rows.push_null();
    }
    let type_info = raw.type_info();
    let type_name = type_info.name();
    let int = |rows: &mut Rows, v: Option<i64>| match v {
        Some(v) => rows.push_int(v),
        None => rows.push_null(),
    };
    // Driver type names are upper case; compared without allocating (once a row).
    let mut upper = [0u8; 24];
    let type_name = match type_name.as_bytes() {
        name if name.len() <= upper.len() => {
            upper[..name.len()].copy_from_slice(name);
            upper[..name.len()].make_ascii_uppercase();
            std::str::from_utf8(&upper[..name.len()]).unwrap_or(type_name)
        }
        _ => type_name,
    };
    match type_name {
        "BOOL" => match row.try_get_unchecked::<Option<bool>, _>(i).ok().flatten() {
            Some(b) => rows.push_bool(b),
            None => rows.push_null(),
        },
        "INT2" => int(
            rows,
            row.try_get_unchecked::<Option<i16>, _>(i)
                .ok()
                .flatten()
                .map(i64::from),
        ),
        "INT4" => int(
            rows,
            row.try_get_unchecked::<Option<i32>, _>(i)
                .ok()
                .flatten()
                .map(i64::from),
        ),
        "INT8" | "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT"
        | "INTEGER" | "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED"
        | "INT UNSIGNED" => int(
            rows,
            row.try_get_unchecked::<Option<i64>, _>(i).ok().flatten(),
        ),
        "TEXT" | "VARCHAR" | "CHAR" | "BPCHAR" | "NAME" | "TINYTEXT" | "MEDIUMTEXT"
        | "LONGTEXT" | "ENUM" => {
            rows.push_bytes(row.try_get_unchecked::<Option<&[u8]>, _>(i).ok().flatten())
        }
        other => rows.push_other(&other.to_lowercase()),
    }
}

/// Sends rows in batches; a closed channel means the builder gave up.
struct Batcher<'a> {
    sink: &'a Sender<Batch>,
    make: MakeBatch,
    width: usize,
    rows: Rows,
}

impl<'a> Batcher<'a> {
    fn new(sink: &'a Sender<Batch>, make: MakeBatch, width: usize) -> Self {
        Self {
            sink,
            make,
            width,
            rows: Rows::new(width, BATCH),
        }
    }

    /// Where the next row's cells go.
    fn rows(&mut self) -> &mut Rows {
        &mut self.rows
    }

    /// Whether the batch is full: by rows, or by bytes when cells are large.
    fn full(&self) -> bool {
        self.rows.len() >= BATCH || self.rows.text_bytes() >= BATCH_BYTES
    }

    /// Called after each row: sends the batch once it is full.
    async fn row_done(&mut self) -> Result<(), SourceError> {
        if self.full() {
            self.flush().await?;
        }
        Ok(())
    }

    fn take(&mut self) -> Rows {
        std::mem::replace(&mut self.rows, Rows::new(self.width, BATCH))
    }

    async fn flush(&mut self) -> Result<(), SourceError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = self.take();
        self.sink
            .send((self.make)(rows))
            .await
            .map_err(|_| SourceError::Cancelled)
    }

    fn blocking_row_done(&mut self) -> Result<(), SourceError> {
        if self.full() {
            self.blocking_flush()?;
        }
        Ok(())
    }

    fn blocking_flush(&mut self) -> Result<(), SourceError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = self.take();
        self.sink
            .blocking_send((self.make)(rows))
            .map_err(|_| SourceError::Cancelled)
    }
}

/// Streams each of `$steps` on `$conn`, in order, into batches for `$sink`.
macro_rules! stream_steps {
    ($conn:expr, $steps:expr, $sink:expr) => {{
        for step in $steps {
            let mut batcher = Batcher::new($sink, step.make, step.width);
            let mut rows = sqlx::query(step.sql).fetch(&mut *$conn);
            while let Some(row) = rows.try_next().await? {
                decode_row(batcher.rows(), &row, step.text);
                batcher.row_done().await?;
            }
            batcher.flush().await?;
        }
    }};
}

/// The directory through sqlx (PostgreSQL, MySQL): one connection, one snapshot.
pub async fn sqlx_directory(
    db: &Db,
    plan: &ReadPlan,
    sink: Sender<Batch>,
) -> Result<(), SourceError> {
    let [departments, employees, memberships] = plan.steps();
    match db {
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            // With a second connection free, the memberships query runs on it in
            // the same snapshot while the employees stream: the database sorts
            // one while we build the other. Its rows wait in the database until
            // the employees are done, so memory does not grow.
            let second = pool.try_acquire();
            // A hot standby (a read replica is a natural HR source) cannot export
            // a snapshot: it is read sequentially, as when no connection is free.
            let snapshot: Option<String> = match second {
                Some(_) => {
                    sqlx::query_scalar(
                        "SELECT CASE WHEN pg_is_in_recovery() THEN NULL \
                         ELSE pg_export_snapshot() END",
                    )
                    .fetch_one(&mut *tx)
                    .await?
                }
                None => None,
            };
            let (Some(mut second), Some(snapshot)) = (second, snapshot) else {
                stream_steps!(tx, [departments, employees, memberships], &sink);
                tx.commit().await?;
                return Ok(());
            };
            let mut members_tx = sqlx::Connection::begin(&mut *second).await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *members_tx)
                .await?;
            sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))
                .execute(&mut *members_tx)
                .await?;
            let (employees_done, may_send) = tokio::sync::oneshot::channel::<()>();
            let first = async {
                stream_steps!(tx, [departments, employees], &sink);
                let _ = employees_done.send(());
                Ok::<_, SourceError>(())
            };
            let members = async {
                let mut rows = sqlx::query(memberships.sql).fetch(&mut *members_tx);
                // The first row arrives once the database has sorted them all.
                let first_row = rows.try_next().await?;
                if may_send.await.is_err() {
                    // The employees read failed; its error is the one to report.
                    return Ok(());
                }
                let mut b = Batcher::new(&sink, memberships.make, memberships.width);
                if let Some(row) = first_row {
                    decode_row(b.rows(), &row, memberships.text);
                    b.row_done().await?;
                }
                while let Some(row) = rows.try_next().await? {
                    decode_row(b.rows(), &row, memberships.text);
                    b.row_done().await?;
                }
                b.flush().await?;
                Ok::<_, SourceError>(())
            };
            let (first, members) = tokio::join!(first, members);
            first?;
            members?;
            members_tx.commit().await?;
            tx.commit().await?;
        }
        Db::MySql(pool) => {
            let mut conn = pool.acquire().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *conn)
                .await?;
            sqlx::query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .execute(&mut *conn)
                .await?;
            let read = async {
                stream_steps!(conn, [departments, employees, memberships], &sink);
                Ok::<_, SourceError>(())
            }
            .await;
            // End the transaction either way before the connection goes back.
            let ended = sqlx::query(if read.is_ok() { "COMMIT" } else { "ROLLBACK" })
                .execute(&mut *conn)
                .await;
            read?;
            ended?;
        }
        Db::Sqlite(_) => {
            return Err(SourceError::Db(DbError::Config(
                "SQLite directory reads go through the read-only file connection".into(),
            )))
        }
    }
    Ok(())
}

/// The file behind a `sqlite:` URL.
pub fn sqlite_path(url: &SecretString) -> Result<PathBuf, DbError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose_secret())
        .map_err(|e| DbError::Config(format!("database.url is not valid: {e}")))?;
    Ok(options.get_filename().to_path_buf())
}

fn push_sqlite(rows: &mut Rows, value: rusqlite::types::ValueRef<'_>) {
    use rusqlite::types::ValueRef as V;
    match value {
        V::Null => rows.push_null(),
        V::Integer(i) => rows.push_int(i),
        V::Real(f) => rows.push_float(f),
        V::Text(bytes) | V::Blob(bytes) => rows.push_bytes(Some(bytes)),
    }
}

fn sqlite_error(e: rusqlite::Error) -> SourceError {
    let busy = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy
                | rusqlite::ErrorCode::DatabaseLocked
                | rusqlite::ErrorCode::CannotOpen)
    );
    let message = e.to_string();
    let inner = sqlx::Error::Protocol(format!("sqlite: {message}"));
    if busy {
        SourceError::Db(DbError::Unavailable(inner))
    } else {
        SourceError::Db(DbError::Query(inner))
    }
}

/// The directory from a SQLite file, read-only, in one read transaction.
pub async fn sqlite_directory(
    path: PathBuf,
    plan: ReadPlan,
    sink: Sender<Batch>,
) -> Result<(), SourceError> {
    tokio::task::spawn_blocking(move || {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(sqlite_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite_error)?;
        conn.execute_batch("BEGIN").map_err(sqlite_error)?;
        for Step { sql, make, .. } in plan.steps() {
            let mut statement = conn.prepare(sql).map_err(sqlite_error)?;
            let width = statement.column_count();
            let mut rows = statement.query([]).map_err(sqlite_error)?;
            let mut batcher = Batcher::new(&sink, make, width);
            while let Some(row) = rows.next().map_err(sqlite_error)? {
                for i in 0..width {
                    push_sqlite(batcher.rows(), row.get_ref(i).map_err(sqlite_error)?);
                }
                batcher.blocking_row_done()?;
            }
            batcher.blocking_flush()?;
        }
        conn.execute_batch("COMMIT").map_err(sqlite_error)?;
        Ok(())
    })
    .await
    .map_err(|e| SourceError::Db(DbError::Query(sqlx::Error::Protocol(e.to_string()))))?
}

/// Runs a wrapped one-user query (credentials, or the employees query filtered
/// to one name) with `username` bound `params` times.
pub async fn fetch_credentials(
    db: &Db,
    sql: &str,
    params: usize,
    username: &str,
) -> Result<Rows, SourceError> {
    // Text columns first, then `active` if asked for.
    macro_rules! fetch {
        ($pool:expr) => {{
            let mut query = sqlx::query(sql);
            for _ in 0..params {
                query = query.bind(username);
            }
            let found = query.fetch_all($pool).await?;
            let width = found.first().map_or(0, |row| row.len());
            let mut rows = Rows::new(width, found.len());
            for row in &found {
                credential_row(&mut rows, row);
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

/// Credentials rows: text cells then, if present, `active` (the last column).
fn credential_row<R>(rows: &mut Rows, row: &R)
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<&'r [u8]>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i16>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<bool>: sqlx::Decode<'r, R::Database>,
{
    let text = row
        .columns()
        .iter()
        .filter(|c| sqlx::Column::name(*c) != "active")
        .count();
    decode_row(rows, row, text)
}

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

/// Runs a statement with text parameters; returns the rows affected.
pub async fn execute(db: &Db, sql: &str, args: &[&str]) -> Result<u64, SourceError> {
    macro_rules! run {
        ($pool:expr) => {{
            let mut query = sqlx::query(sql);
            for arg in args {
                query = query.bind(*arg);
            }
            query.execute($pool).await?.rows_affected()
        }};
    }
    Ok(match db {
        Db::Postgres(pool) => run!(pool),
        Db::MySql(pool) => run!(pool),
        Db::Sqlite(pool) => run!(pool),
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
