//! The database: one pool for PostgreSQL, MySQL/MariaDB or SQLite, chosen by the
//! URL scheme at run time, its migrations, and every SQL statement the service runs.
//! Callers see functions named for what they return; the dialects stay in here.

mod activity;
mod approvals;
mod audit;
mod auth;
mod console;
mod directory;
mod history;
mod import;
mod lockouts;
mod migrations;
pub mod notify;
mod rows;
mod snapshot;

pub use activity::{ActivityRow, NewActivity};
pub use approvals::{ApprovalRow, ApproveRow, DropsFrom, NewPending};
pub use audit::{AuditFilter, AuditRow};
pub use auth::{AuditEntry, MAX_AUDIT_BATCH};
pub use console::{ConsoleSessionRow, LoginHourRow};
pub use history::{DiffCounts, HourRow, NameRow, NewName, NewSyncCall, SyncCallRow};
pub use import::{Cell, DirectoryTables, KeyRow, TableWrite};
pub use lockouts::LockoutRow;
pub use migrations::Schema;
pub use rows::{Credentials, DepartmentRow, EmployeeRow, MembershipRow};
pub use snapshot::{NewSnapshot, SnapshotRow};

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::ConnectOptions;

/// Which database engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    MySql,
    Sqlite,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("mysql://") {
            Ok(Self::MySql)
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else {
            Err(DbError::Config(
                "database.url must start with postgres://, mysql:// or sqlite://".into(),
            ))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
            Self::Sqlite => "sqlite",
        }
    }
}

/// Errors of the database layer. Each message already says its cause, so none
/// of them also hands the cause on as a `source`: an error chain printed in full
/// (`{:#}`) would otherwise say it two or three times over.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (connection refused, pool timeout, server
    /// shutting down): the caller should answer 503, never count it against a user.
    #[error("database unavailable: {}", Cause(.0))]
    Unavailable(DbCause),
    #[error("database error: {}", Cause(.0))]
    Query(DbCause),
    #[error("migration failed: {}", MigrateCause(.0))]
    Migrate(sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(e)
    }
}

/// What failed under [`DbError::Unavailable`] or [`DbError::Query`]: sqlx, or
/// `rusqlite` (the directory of a SQLite source is read with it), or the reading
/// of PostgreSQL's binary COPY stream. Each is kept as its own type: no error is
/// dressed up as another library's.
#[derive(Debug)]
pub enum DbCause {
    Sqlx(sqlx::Error),
    Sqlite(rusqlite::Error),
    Copy(crate::source::pgcopy::CopyFormatError),
}

impl From<sqlx::Error> for DbCause {
    fn from(e: sqlx::Error) -> Self {
        Self::Sqlx(e)
    }
}

impl std::fmt::Display for DbCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlx(e) => write!(f, "{e}"),
            Self::Sqlite(e) => write!(f, "sqlite: {e}"),
            Self::Copy(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DbCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sqlx(e) => Some(e),
            Self::Sqlite(e) => Some(e),
            Self::Copy(e) => Some(e),
        }
    }
}

/// A driver error in one piece: the database's own message without sqlx's
/// "error returned from database:" in front of it.
struct Cause<'a, E>(&'a E);

impl std::fmt::Display for Cause<'_, sqlx::Error> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            sqlx::Error::Database(db) => write!(f, "{db}"),
            other => write!(f, "{other}"),
        }
    }
}

impl std::fmt::Display for Cause<'_, DbCause> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            DbCause::Sqlx(e) => write!(f, "{}", Cause(e)),
            other => write!(f, "{other}"),
        }
    }
}

/// A migration error, with a statement's failure shown as [`Cause`] does.
struct MigrateCause<'a>(&'a sqlx::migrate::MigrateError);

impl std::fmt::Display for MigrateCause<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use sqlx::migrate::MigrateError;
        match self.0 {
            MigrateError::Execute(e) => write!(f, "while executing migrations: {}", Cause(e)),
            MigrateError::ExecuteMigration(e, version) => {
                write!(f, "while executing migration {version}: {}", Cause(e))
            }
            other => write!(f, "{other}"),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(DbCause::Sqlx(e))
        } else {
            Self::Query(DbCause::Sqlx(e))
        }
    }
}

/// True for errors that say "the database cannot serve now, try later" rather than
/// "this statement is wrong": the caller answers 503, never 500, and never counts
/// it against a user. This covers refused connections (too many clients, shutting
/// down, not accepting connections, unknown database, access denied: an operator
/// or a failover fixes those, not the client) and statement or lock timeouts.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        // Garbage on the wire: a connection cut half-way through its handshake.
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                return MYSQL_UNAVAILABLE.contains(&mysql.number());
            }
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended codes carry the primary code in their low byte.
                let primary = db
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .map(|code| code & 0xff);
                return primary.is_some_and(|code| SQLITE_UNAVAILABLE.contains(&code));
            }
            db.code().is_some_and(|code| {
                POSTGRES_UNAVAILABLE_CLASSES
                    .iter()
                    .any(|class| code.starts_with(class))
                    || POSTGRES_UNAVAILABLE.contains(&code.as_ref())
            })
        }
        _ => false,
    }
}

/// SQLSTATE classes: 08 connection exception, 53 insufficient resources (53300
/// too many connections), 57P0x shutting down / cannot connect now / dropped,
/// 28 invalid authorization (the password changed under us).
const POSTGRES_UNAVAILABLE_CLASSES: &[&str] = &["08", "53", "57P0", "28"];
/// 55000 (database not accepting connections, `ALLOW_CONNECTIONS false`), 3D000
/// (no such database), 57014 (statement_timeout), 55P03 (lock_timeout).
const POSTGRES_UNAVAILABLE: &[&str] = &["55000", "3D000", "57014", "55P03"];
/// MySQL/MariaDB error numbers: 1040 too many connections, 1044/1045 access
/// denied, 1698 access denied without a password check (MariaDB answers it when
/// the account was dropped while the pool reconnects), 1049 unknown database, 1053 server shutdown, 1129/1130 host blocked or
/// not allowed, 1203/1226 user connection or resource limit, 1205 lock wait
/// timeout, 1927 connection killed, 1969 MariaDB max_statement_time, 3024 MySQL
/// max_execution_time.
const MYSQL_UNAVAILABLE: &[u16] = &[
    1040, 1044, 1045, 1049, 1053, 1129, 1130, 1203, 1226, 1205, 1698, 1927, 1969, 3024,
];
/// SQLite primary codes: 5 busy (busy_timeout passed), 6 locked, 10 I/O error,
/// 14 cannot open the file.
const SQLITE_UNAVAILABLE: &[i32] = &[5, 6, 10, 14];

/// Where a database URL's data lives, as far as the URL tells: the backend, the
/// server (loopback names made one) and port, and the database; for SQLite the
/// file. User, password and options are not part of it. `None` for a URL that
/// names no shared place (SQLite in memory) or that cannot be read.
fn database_identity(url: &str) -> Option<String> {
    let loopback = |host: &str| match host.trim_matches(['[', ']']) {
        "localhost" | "127.0.0.1" | "::1" => "localhost".to_owned(),
        other => other.to_ascii_lowercase(),
    };
    Some(match Backend::from_url(url).ok()? {
        Backend::Postgres => {
            let o = PgConnectOptions::from_str(url).ok()?;
            // PostgreSQL's default database is the user's name.
            let database = o.get_database().unwrap_or(o.get_username());
            let place = match o.get_socket() {
                Some(socket) => socket.display().to_string(),
                None => loopback(o.get_host()),
            };
            format!("postgres://{place}:{}/{database}", o.get_port())
        }
        Backend::MySql => {
            let o = MySqlConnectOptions::from_str(url).ok()?;
            let place = match o.get_socket() {
                Some(socket) => socket.display().to_string(),
                None => loopback(o.get_host()),
            };
            let database = o.get_database().unwrap_or("");
            format!("mysql://{place}:{}/{database}", o.get_port())
        }
        Backend::Sqlite => {
            let o = SqliteConnectOptions::from_str(url).ok()?;
            let file = o.get_filename();
            if file.as_os_str().is_empty() || file == std::path::Path::new(":memory:") {
                return None;
            }
            // The file may not exist yet; its folder usually does.
            let resolved = std::fs::canonicalize(file).ok().or_else(|| {
                let folder = match file.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => std::path::Path::new("."),
                };
                Some(std::fs::canonicalize(folder).ok()?.join(file.file_name()?))
            })?;
            format!("sqlite:{}", resolved.display())
        }
    })
}

/// True when two database URLs name the same database (whatever user, password
/// or options each carries).
pub fn same_database(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (database_identity(a), database_identity(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A connection pool to one of the three supported databases.
#[derive(Debug, Clone)]
pub enum Db {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the concrete pool. `$sql` names a `&str`
/// written with `?` placeholders; on PostgreSQL it is rebound to the `$1, $2…` form.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::MySql($pool) => $body,
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
    ($db:expr, |$pool:ident, $sql:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($pool) => {
                let numbered = $crate::db::numbered_placeholders($sql);
                let $sql: &str = &numbered;
                $body
            }
            $crate::db::Db::MySql($pool) => $body,
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Declares a struct read from a row by column name: what `#[derive(sqlx::FromRow)]`
/// writes, without sqlx's proc-macro crate (which would compile sqlx, its drivers
/// and SQLite's C source a second time, for the compiler's host).
macro_rules! from_row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty),*
        }

        impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for $name
        where
            &'r str: sqlx::ColumnIndex<R>,
            $($ty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*
        {
            fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?),*
                })
            }
        }
    };
}
pub(crate) use from_row;

/// Rewrites `?` placeholders as PostgreSQL's `$1, $2…`. Our statements never hold a
/// literal `?`, so a plain scan is enough.
pub(crate) fn numbered_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    Cow::Owned(out)
}

/// A statement slower than this is logged as a warning. sqlx's default (1 s)
/// warned on every /sync of a large directory, whose reads stream for seconds
/// by design; a login's statements take milliseconds.
const SLOW_STATEMENT: Duration = Duration::from_secs(10);

/// Pool settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Open every connection read-only (a mapped HR database is someone else's).
    pub read_only: bool,
    /// Longest one statement (or its wait for a lock) may run; `None` for
    /// commands where only the operator waits (migrate, import).
    pub statement_timeout: Option<Duration>,
}

impl PoolSettings {
    /// The pool for serving requests: `[database]`'s size and acquire timeout,
    /// statements bounded by `statement_timeout` (see
    /// [`Settings::statement_timeout`](crate::config::Settings::statement_timeout)).
    pub fn serving(
        database: &crate::config::DatabaseSettings,
        statement_timeout: Duration,
    ) -> Self {
        Self {
            max_connections: database.max_connections,
            acquire_timeout: database.acquire_timeout(),
            statement_timeout: Some(statement_timeout),
            read_only: false,
        }
    }
}

/// Sets the session's statement and lock-wait limits; MariaDB and MySQL name the
/// statement limit differently (and MySQL's applies to SELECT only).
async fn set_mysql_statement_timeout(
    conn: &mut sqlx::MySqlConnection,
    limit: Duration,
) -> Result<(), sqlx::Error> {
    use sqlx::{Executor, Row};
    let version: String = conn.fetch_one("SELECT VERSION()").await?.try_get(0)?;
    // innodb_lock_wait_timeout counts whole seconds, at least 1.
    let lock_secs = limit.as_secs().max(1);
    let sql = if version.contains("MariaDB") {
        format!(
            "SET SESSION max_statement_time = {:.3}, innodb_lock_wait_timeout = {lock_secs}",
            limit.as_secs_f64()
        )
    } else {
        format!(
            "SET SESSION max_execution_time = {}, innodb_lock_wait_timeout = {lock_secs}",
            limit.as_millis()
        )
    };
    conn.execute(sql.as_str()).await?;
    Ok(())
}

/// True when a SQLite URL asks for the file to be created (`mode=rwc`).
fn url_creates_file(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.eq_ignore_ascii_case("mode=rwc"))
    })
}

/// Creates a missing SQLite file readable by its owner only (it holds password
/// hashes and the audit trail). SQLite gives its -wal and -shm files the same
/// mode. An existing file is left alone; a failure (no such directory) is left
/// for the connection to report.
fn create_private_file(path: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().is_empty() || path == std::path::Path::new(":memory:") {
        return;
    }
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
}

impl Db {
    /// Builds a pool without connecting yet, so that the service can start (and
    /// report "not ready") while the database is down.
    pub fn connect_lazy(url: &SecretString, settings: &PoolSettings) -> Result<Self, DbError> {
        let url = url.expose_secret();
        let bad_url = |e: sqlx::Error| DbError::Config(format!("database.url is not valid: {e}"));
        Ok(match Backend::from_url(url)? {
            Backend::Postgres => {
                let mut options = PgConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
                let mut startup: Vec<(&str, String)> = Vec::new();
                if settings.read_only {
                    startup.push(("default_transaction_read_only", "on".into()));
                }
                if let Some(limit) = settings.statement_timeout {
                    // Startup parameters: in force from the first statement, with
                    // no extra round trip per connection.
                    let ms = limit.as_millis().to_string();
                    startup.push(("statement_timeout", ms.clone()));
                    startup.push(("lock_timeout", ms));
                }
                if !startup.is_empty() {
                    options = options.options(startup);
                }
                Self::Postgres(
                    PgPoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.acquire_timeout)
                        .connect_lazy_with(options),
                )
            }
            Backend::MySql => {
                let limit = settings.statement_timeout;
                let read_only = settings.read_only;
                Self::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.acquire_timeout)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                // A server with sql_mode = '' truncates an over-long
                                // value silently (a username cut to its column, then
                                // matching another): strict in every session.
                                sqlx::query(
                                    "SET SESSION sql_mode = \
                                     CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')",
                                )
                                .execute(&mut *conn)
                                .await?;
                                if let Some(limit) = limit {
                                    set_mysql_statement_timeout(conn, limit).await?;
                                }
                                if read_only {
                                    sqlx::query("SET SESSION TRANSACTION READ ONLY")
                                        .execute(conn)
                                        .await?;
                                }
                                Ok(())
                            })
                        })
                        .connect_lazy_with(
                            MySqlConnectOptions::from_str(url)
                                .map_err(bad_url)?
                                .charset("utf8mb4")
                                .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT),
                        ),
                )
            }
            Backend::Sqlite => {
                let mut options = SqliteConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT)
                    .foreign_keys(true)
                    // How long a write waits for another writer's lock.
                    .busy_timeout(
                        settings
                            .statement_timeout
                            .unwrap_or(settings.acquire_timeout),
                    );
                options = if settings.read_only {
                    options.read_only(true)
                } else {
                    if url_creates_file(url) {
                        create_private_file(options.get_filename());
                    }
                    // WAL lets /sync read while HR staff write; with WAL, NORMAL
                    // sync cannot corrupt the file and saves an fsync per login
                    // (a power cut may lose the last audit rows).
                    options
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                };
                Self::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.acquire_timeout)
                        .connect_lazy_with(options),
                )
            }
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::MySql(_) => Backend::MySql,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Runs trusted SQL text (one or more statements without parameters), such as
    /// fixtures or an operator's script. Never pass it user input.
    pub async fn execute_script(&self, sql: &str) -> Result<(), DbError> {
        on_pool!(self, |pool| sqlx::raw_sql(sql)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_usage(&self) -> (u32, usize) {
        on_pool!(self, |pool| (pool.size(), pool.num_idle()))
    }

    /// `sql` with `?` placeholders in this backend's own form.
    pub(crate) fn dialect<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        match self {
            Self::Postgres(_) => numbered_placeholders(sql),
            Self::MySql(_) | Self::Sqlite(_) => Cow::Borrowed(sql),
        }
    }

    /// Closes every connection; used on shutdown.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

#[cfg(test)]
mod tests {
    use super::{same_database, PoolSettings};

    #[test]
    fn the_serving_pool_follows_the_database_settings() {
        let database = crate::config::DatabaseSettings {
            max_connections: 3,
            acquire_timeout_secs: 2,
            ..Default::default()
        };
        let pool = PoolSettings::serving(&database, std::time::Duration::from_secs(7));
        assert_eq!(pool.max_connections, 3);
        assert_eq!(pool.acquire_timeout, std::time::Duration::from_secs(2));
        assert_eq!(
            pool.statement_timeout,
            Some(std::time::Duration::from_secs(7))
        );
        assert!(!pool.read_only);
    }

    #[test]
    fn the_same_database_is_recognised_through_other_users_and_options() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("hr.db");
        for (a, b) in [
            (
                "mysql://reader:x@db.example:3306/hr".to_owned(),
                "mysql://root@DB.example/hr?ssl-mode=disabled".to_owned(),
            ),
            (
                "postgres://reader@127.0.0.1/hr".to_owned(),
                "postgresql://postgres:pw@localhost:5432/hr?sslmode=disable".to_owned(),
            ),
            // PostgreSQL's default database is the user's name.
            (
                "postgres://hr@127.0.0.1/".to_owned(),
                "postgres://other@127.0.0.1/hr".to_owned(),
            ),
            (
                format!("sqlite://{}?mode=ro", file.display()),
                format!("sqlite://{}/./hr.db?mode=rwc", dir.path().display()),
            ),
        ] {
            assert!(same_database(&a, &b), "{a} / {b}");
        }
        for (a, b) in [
            ("mysql://root@db/hr", "mysql://root@db/hr_state"),
            ("mysql://root@db/hr", "mysql://root@db:3307/hr"),
            ("postgres://u@db1/hr", "postgres://u@db2/hr"),
            ("postgres://u@db/hr", "mysql://u@db/hr"),
            ("sqlite::memory:", "sqlite::memory:?cache=private"),
        ] {
            assert!(!same_database(a, b), "{a} / {b}");
        }
    }
}
