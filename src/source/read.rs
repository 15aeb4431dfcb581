//! The directory read: the three wrapped queries, streamed in batches of packed
//! rows ([`Value`] cells, see [`super::decode`]) to the payload builder.
//!
//! PostgreSQL and MySQL rows stream through sqlx on one connection inside one
//! repeatable-read, read-only transaction. PostgreSQL sends them as binary COPY
//! (`COPY (<query>) TO STDOUT (FORMAT binary)`, read by [`super::pgcopy`]): the
//! cells arrive as length-prefixed bytes and go straight into the batch, with
//! no per-cell decoding by the driver. SQLite rows are read with `rusqlite` on
//! a blocking thread from a read-only connection (sqlx hands SQLite rows across a
//! thread one at a time, which would dominate a large read).

use std::path::PathBuf;
use std::str::FromStr;

use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, Postgres};
use sqlx::{Column, TypeInfo};
use tokio::sync::mpsc::Sender;

use super::decode::{decode_row, raw_kind, RawKind};
use super::pgcopy::{CopyFormatError, CopyReader, FeedError, Tuple};
use super::{sql, Queries, ReadError, Shape, SourceError, DEPARTMENTS, EMPLOYEES, MEMBERSHIPS};
use crate::db::{Backend, Db, DbCause, DbError};
use crate::fields::{self, EmployeeField, MembershipField};

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

/// The three wrapped directory queries and the columns each returns.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub departments: String,
    pub employees: String,
    pub memberships: String,
    /// Columns each of the three returns, in order: its fields (as text), then
    /// `active` when the query has it.
    pub columns: [&'static [&'static str]; 3],
}

/// One of the three reads: its query, the batch kind its rows go in, the
/// columns it returns, and how many of them lead as text.
struct Step<'a> {
    sql: &'a str,
    make: MakeBatch,
    columns: &'static [&'static str],
    text: usize,
}

impl ReadPlan {
    /// Departments, employees, memberships: the order the builder needs them in.
    fn steps(&self) -> [Step<'_>; 3] {
        [
            Step {
                sql: &self.departments,
                make: Batch::Departments,
                columns: self.columns[0],
                text: DEPARTMENTS.required.len(),
            },
            Step {
                sql: &self.employees,
                make: Batch::Employees,
                columns: self.columns[1],
                text: EMPLOYEES.required.len(),
            },
            Step {
                sql: &self.memberships,
                make: Batch::Memberships,
                columns: self.columns[2],
                text: MEMBERSHIPS.required.len(),
            },
        ]
    }

    pub fn new(backend: Backend, queries: &Queries, shape: &Shape, order: sql::Order) -> Self {
        let active = |has: bool| -> &'static [&'static str] {
            if has {
                &[fields::ACTIVE]
            } else {
                &[]
            }
        };
        let departments: &'static [&'static str] = if shape.departments_active {
            &fields::DEPARTMENT_TABLE
        } else {
            &fields::DEPARTMENT_COLUMNS
        };
        let employees: &'static [&'static str] = if shape.employees_active {
            &fields::EMPLOYEE_COLUMNS_ACTIVE
        } else {
            &fields::EMPLOYEE_COLUMNS
        };
        Self {
            columns: [departments, employees, &fields::MEMBERSHIP_COLUMNS],
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
                &[EmployeeField::Username.name()],
                order,
                None,
            ),
            memberships: sql::wrap_in(
                backend,
                &queries.memberships,
                MEMBERSHIPS.required,
                &[],
                &[
                    MembershipField::GroupNo.name(),
                    MembershipField::Username.name(),
                ],
                order,
                None,
            ),
        }
    }
}

/// Sends rows in batches; a closed channel means the builder gave up.
struct Batcher<'a> {
    sink: &'a Sender<Batch>,
    make: MakeBatch,
    columns: &'static [&'static str],
    rows: Rows,
}

impl<'a> Batcher<'a> {
    fn new(sink: &'a Sender<Batch>, make: MakeBatch, columns: &'static [&'static str]) -> Self {
        Self {
            sink,
            make,
            columns,
            rows: Rows::new(columns, BATCH),
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
    async fn row_done(&mut self) -> Result<(), ReadError> {
        if self.full() {
            self.flush().await?;
        }
        Ok(())
    }

    fn take(&mut self) -> Rows {
        std::mem::replace(&mut self.rows, Rows::new(self.columns, BATCH))
    }

    async fn flush(&mut self) -> Result<(), ReadError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = self.take();
        self.sink
            .send((self.make)(rows))
            .await
            .map_err(|_| ReadError::Cancelled)
    }

    fn blocking_row_done(&mut self) -> Result<(), ReadError> {
        if self.full() {
            self.blocking_flush()?;
        }
        Ok(())
    }

    fn blocking_flush(&mut self) -> Result<(), ReadError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = self.take();
        self.sink
            .blocking_send((self.make)(rows))
            .map_err(|_| ReadError::Cancelled)
    }
}

/// Streams the rows of `$rows` (a sqlx row stream of `$step`, after `$first`
/// when it holds one already fetched) into batches for `$sink`.
macro_rules! stream_rows {
    ($rows:expr, $first:expr, $step:expr, $sink:expr) => {{
        let mut batcher = Batcher::new($sink, $step.make, $step.columns);
        let mut next = $first;
        loop {
            let row = match next.take() {
                Some(row) => row,
                None => match $rows.try_next().await? {
                    Some(row) => row,
                    None => break,
                },
            };
            decode_row(batcher.rows(), &row, $step.text);
            batcher.row_done().await?;
        }
        batcher.flush().await?;
    }};
}

/// Streams each of `$steps` on `$conn`, in order, into batches for `$sink`.
macro_rules! stream_steps {
    ($conn:expr, $steps:expr, $sink:expr) => {{
        for step in $steps {
            let mut rows = sqlx::query(step.sql).fetch(&mut *$conn);
            stream_rows!(rows, None, step, $sink);
        }
    }};
}

/// A pooled PostgreSQL connection that is closed instead of going back to the
/// pool when a binary COPY on it was not read to its end. sqlx leaves the rest
/// of an abandoned COPY on the wire (and, when the COPY fails before its first
/// row, a ReadyForQuery it does not count): the next statement on that
/// connection would read someone else's answer.
struct Lease {
    conn: PoolConnection<Postgres>,
    /// Set before a COPY starts, cleared once it has been read to its end.
    copy_open: bool,
}

impl Lease {
    fn new(conn: PoolConnection<Postgres>) -> Self {
        Self {
            conn,
            copy_open: false,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.copy_open {
            self.conn.close_on_drop();
        }
    }
}

/// The statement that sends the rows of `step` as binary COPY.
fn copy_sql(step: &Step<'_>) -> String {
    format!("COPY ({}) TO STDOUT (FORMAT binary)", step.sql)
}

/// How one raw (`active`) column of a binary COPY becomes a cell: by its type,
/// as [`decode_row`] reads the same column from a sqlx row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RawCell {
    Bool,
    /// A big-endian integer of 2, 4 or 8 bytes.
    Int,
    Text,
    /// A type with no text form: its name in lower case, for the message.
    Other(String),
}

impl RawCell {
    fn of_type(type_name: &str) -> Self {
        match raw_kind(type_name) {
            RawKind::Bool => Self::Bool,
            RawKind::Int2 | RawKind::Int4 | RawKind::Int8 | RawKind::UInt8 => Self::Int,
            RawKind::Text => Self::Text,
            RawKind::Other => Self::Other(type_name.to_lowercase()),
        }
    }

    fn push(&self, rows: &mut Rows, cell: Option<&[u8]>) {
        let Some(bytes) = cell else {
            return rows.push_null();
        };
        match self {
            Self::Bool => match bytes {
                [b] => rows.push_bool(*b != 0),
                _ => rows.push_null(),
            },
            Self::Int => {
                let value = match bytes.len() {
                    2 => bytes
                        .try_into()
                        .ok()
                        .map(|b| i64::from(i16::from_be_bytes(b))),
                    4 => bytes
                        .try_into()
                        .ok()
                        .map(|b| i64::from(i32::from_be_bytes(b))),
                    8 => bytes.try_into().ok().map(i64::from_be_bytes),
                    _ => None,
                };
                match value {
                    Some(v) => rows.push_int(v),
                    None => rows.push_null(),
                }
            }
            Self::Text => rows.push_bytes(Some(bytes)),
            Self::Other(name) => rows.push_other(name),
        }
    }
}

/// How the cells of one step's binary COPY become [`Rows`]: the leading text
/// columns as bytes, then each raw column by its type.
#[derive(Debug)]
struct CopyLayout {
    text: usize,
    raw: Vec<RawCell>,
}

impl CopyLayout {
    /// Binary COPY says nothing of its columns' types: the raw ones are learnt
    /// by preparing the query (sqlx keeps the statement in its cache) on the
    /// connection that runs it, so a mapped `active` of any type is read as
    /// before. A step with only text columns needs no look-up.
    async fn learn(conn: &mut PgConnection, step: &Step<'_>) -> Result<Self, ReadError> {
        let mut raw = Vec::new();
        if step.columns.len() > step.text {
            let statement = sqlx::Executor::prepare(&mut *conn, step.sql).await?;
            raw = sqlx::Statement::columns(&statement)
                .iter()
                .skip(step.text)
                .map(|column| RawCell::of_type(column.type_info().name()))
                .collect();
        }
        Ok(Self {
            text: step.text,
            raw,
        })
    }

    fn push(&self, rows: &mut Rows, tuple: Tuple<'_>) {
        for i in 0..tuple.len() {
            let cell = tuple.get(i);
            match i.checked_sub(self.text) {
                None => rows.push_bytes(cell),
                Some(raw) => match self.raw.get(raw) {
                    Some(kind) => kind.push(rows, cell),
                    // The statement described fewer columns than COPY sent.
                    None => rows.push_null(),
                },
            }
        }
    }
}

fn copy_format_error(e: CopyFormatError) -> ReadError {
    ReadError::Source(SourceError::Db(DbError::Query(DbCause::Copy(e))))
}

/// Streams the rows of `step` on `conn` as binary COPY into batches for `sink`.
/// `copy_open` is the connection's [`Lease::copy_open`].
async fn copy_step(
    conn: &mut PgConnection,
    copy_open: &mut bool,
    step: &Step<'_>,
    sink: &Sender<Batch>,
) -> Result<(), ReadError> {
    let layout = CopyLayout::learn(conn, step).await?;
    *copy_open = true;
    let chunks = conn.copy_out_raw(&copy_sql(step)).await?;
    copy_rows(chunks, None, step, &layout, sink).await?;
    *copy_open = false;
    Ok(())
}

/// Reads a binary COPY stream of `step`'s rows (after `first`, a chunk already
/// taken from it) to its end, into batches for `sink`.
async fn copy_rows<B: AsRef<[u8]>>(
    mut chunks: BoxStream<'_, Result<B, sqlx::Error>>,
    first: Option<B>,
    step: &Step<'_>,
    layout: &CopyLayout,
    sink: &Sender<Batch>,
) -> Result<(), ReadError> {
    let mut batcher = Batcher::new(sink, step.make, step.columns);
    let mut reader = CopyReader::new(step.columns.len());
    let mut next = first;
    loop {
        let chunk = match next.take() {
            Some(chunk) => chunk,
            None => match chunks.try_next().await? {
                Some(chunk) => chunk,
                None => break,
            },
        };
        reader
            .feed(chunk.as_ref(), |tuple| {
                layout.push(batcher.rows(), tuple);
                Ok::<_, std::convert::Infallible>(())
            })
            .map_err(|e| match e {
                FeedError::Format(e) => copy_format_error(e),
                FeedError::Row(never) => match never {},
            })?;
        batcher.row_done().await?;
    }
    reader.finish().map_err(copy_format_error)?;
    batcher.flush().await
}

/// The directory through sqlx (PostgreSQL, MySQL): one connection, one snapshot.
pub async fn sqlx_directory(
    db: &Db,
    plan: &ReadPlan,
    sink: Sender<Batch>,
) -> Result<(), ReadError> {
    let [departments, employees, memberships] = plan.steps();
    match db {
        Db::Postgres(pool) => {
            let mut lease = Lease::new(pool.acquire().await?);
            let mut tx = sqlx::Connection::begin(&mut *lease.conn).await?;
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
            let (Some(second), Some(snapshot)) = (second, snapshot) else {
                for step in [departments, employees, memberships] {
                    copy_step(&mut tx, &mut lease.copy_open, &step, &sink).await?;
                }
                tx.commit().await?;
                return Ok(());
            };
            let mut second = Lease::new(second);
            let mut members_tx = sqlx::Connection::begin(&mut *second.conn).await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *members_tx)
                .await?;
            sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))
                .execute(&mut *members_tx)
                .await?;
            let (employees_done, may_send) = tokio::sync::oneshot::channel::<()>();
            let first_open = &mut lease.copy_open;
            let first = async {
                for step in [departments, employees] {
                    copy_step(&mut tx, first_open, &step, &sink).await?;
                }
                let _ = employees_done.send(());
                Ok::<_, ReadError>(())
            };
            let members_open = &mut second.copy_open;
            let members = async {
                let layout = CopyLayout::learn(&mut members_tx, &memberships).await?;
                *members_open = true;
                let mut chunks = members_tx.copy_out_raw(&copy_sql(&memberships)).await?;
                // The first data arrives once the database has sorted them all.
                let Some(first_chunk) = chunks.try_next().await? else {
                    // Not even the header: the COPY ended, but said nothing.
                    drop(chunks);
                    *members_open = false;
                    return Err(copy_format_error(CopyFormatError::Truncated));
                };
                if may_send.await.is_err() {
                    // The employees read failed; its error is the one to report.
                    return Ok(());
                }
                copy_rows(chunks, Some(first_chunk), &memberships, &layout, &sink).await?;
                *members_open = false;
                Ok::<_, ReadError>(())
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
                Ok::<_, ReadError>(())
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
            return Err(ReadError::Source(SourceError::Db(DbError::Config(
                "SQLite directory reads go through the read-only file connection".into(),
            ))))
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
    let cause = DbCause::Sqlite(e);
    SourceError::Db(if busy {
        DbError::Unavailable(cause)
    } else {
        DbError::Query(cause)
    })
}

/// The directory from a SQLite file, read-only, in one read transaction.
pub async fn sqlite_directory(
    path: PathBuf,
    plan: ReadPlan,
    sink: Sender<Batch>,
) -> Result<(), ReadError> {
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
        for Step {
            sql, make, columns, ..
        } in plan.steps()
        {
            let mut statement = conn.prepare(sql).map_err(sqlite_error)?;
            let mut rows = statement.query([]).map_err(sqlite_error)?;
            let mut batcher = Batcher::new(&sink, make, columns);
            while let Some(row) = rows.next().map_err(sqlite_error)? {
                // Exactly the planned columns: one the statement lacks is an error.
                for i in 0..columns.len() {
                    push_sqlite(batcher.rows(), row.get_ref(i).map_err(sqlite_error)?);
                }
                batcher.blocking_row_done()?;
            }
            batcher.blocking_flush()?;
        }
        conn.execute_batch("COMMIT").map_err(sqlite_error)?;
        Ok::<(), ReadError>(())
    })
    .await
    .map_err(ReadError::Stopped)?
}
