//! Where the HR data comes from. A source is four SQL queries over one database:
//! employees, departments, memberships, and one user's credentials (plus an
//! optional compare-and-set UPDATE for rehash-on-login). hr-bridge's own tables are
//! simply the default mapping; a company's existing HR schema is another one,
//! configured in `[source]` and read through a SELECT-only user.
//!
//! Every query is wrapped so that its columns arrive as text (except `active`,
//! which keeps its boolean or integer type) and, for the large ones, in the byte
//! order the payload is written in, so that `/sync` can stream rows instead of
//! holding them.

mod decode;
mod lookup;
pub mod pgcopy;
mod read;
pub mod rows;
pub mod sql;
mod write;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sqlx::{Column, Executor};
use tokio::sync::OnceCell;

use crate::db::{Backend, Db, DbError, Schema};
use crate::fields::{self, EmployeeField};
pub use read::{Batch, RawRow, Rows, Value};

/// A query's place in the configuration and the columns it must return.
#[derive(Debug, Clone, Copy)]
pub struct QuerySpec {
    /// The configuration key, for messages.
    pub key: &'static str,
    /// Columns the query must return, read as text.
    pub required: &'static [&'static str],
    /// Columns it may return; `active` keeps its own type, others are text.
    pub optional: &'static [&'static str],
}

pub const EMPLOYEES: QuerySpec = QuerySpec {
    key: "source.employees",
    required: &fields::EMPLOYEE_COLUMNS,
    optional: &[fields::ACTIVE],
};
pub const DEPARTMENTS: QuerySpec = QuerySpec {
    key: "source.departments",
    required: &fields::DEPARTMENT_COLUMNS,
    optional: &[fields::ACTIVE],
};
pub const MEMBERSHIPS: QuerySpec = QuerySpec {
    key: "source.memberships",
    required: &fields::MEMBERSHIP_COLUMNS,
    optional: &[],
};
/// `username` is required: hr-bridge keeps only the rows whose name is byte for
/// byte the one typed, whatever the database's collation thinks (without it,
/// MySQL's `_ci` collations let `ALICE` or `alice ` log in as `alice`).
pub const CREDENTIALS: QuerySpec = QuerySpec {
    key: "source.credentials",
    required: &["password_hash", "username"],
    optional: &["active"],
};

/// The name the credentials query is run with when checking it: no user has it.
const PROBE_USERNAME: &str = "hr-bridge check: no such user";

/// The parameters `source.update_password` may use.
const UPDATE_PARAMS: [&str; 3] = ["username", "old_hash", "new_hash"];

/// The built-in schema, written as the mapping a user could have written; the
/// column lists come from [`crate::fields`].
pub mod built_in {
    use crate::fields::{DEPARTMENT_TABLE, EMPLOYEE_COLUMNS_ACTIVE, MEMBERSHIP_COLUMNS};

    pub fn employees() -> String {
        format!(
            "SELECT {} FROM employees",
            EMPLOYEE_COLUMNS_ACTIVE.join(", ")
        )
    }
    pub fn departments() -> String {
        format!("SELECT {} FROM departments", DEPARTMENT_TABLE.join(", "))
    }
    pub fn memberships() -> String {
        format!(
            "SELECT {} FROM department_members",
            MEMBERSHIP_COLUMNS.join(", ")
        )
    }
    pub const CREDENTIALS: &str =
        "SELECT username, password_hash, active FROM employees WHERE username = :username";
    pub const UPDATE_PASSWORD: &str = "UPDATE employees SET password_hash = :new_hash \
        WHERE username = :username AND password_hash = :old_hash";
}

/// What the credentials lookup reads: the hash, the name (compared again byte
/// for byte), then `active` when the query has it.
const CREDENTIALS_COLUMNS: [&str; 2] = [fields::PASSWORD_HASH, EmployeeField::Username.name()];
const CREDENTIALS_COLUMNS_ACTIVE: [&str; 3] = fields::join(CREDENTIALS_COLUMNS, [fields::ACTIVE]);
/// What the "does /sync serve this name" lookup reads.
const SERVES_COLUMNS: [&str; 1] = [EmployeeField::Username.name()];
const SERVES_COLUMNS_ACTIVE: [&str; 2] = fields::join(SERVES_COLUMNS, [fields::ACTIVE]);

/// The four queries (and the optional update), as configured or built in.
#[derive(Debug, Clone)]
pub struct Queries {
    pub employees: String,
    pub departments: String,
    pub memberships: String,
    pub credentials: String,
    pub update_password: Option<String>,
    /// True when any query was configured: the HR database is then someone
    /// else's, read-only to hr-bridge.
    pub mapped: bool,
}

impl Queries {
    pub fn built_in() -> Self {
        Self {
            employees: built_in::employees(),
            departments: built_in::departments(),
            memberships: built_in::memberships(),
            credentials: built_in::CREDENTIALS.into(),
            update_password: Some(built_in::UPDATE_PASSWORD.into()),
            mapped: false,
        }
    }

    /// From `[source]`: unset keys keep the built-in query. With any key set the
    /// source counts as mapped, and rehash-on-login needs `update_password`.
    pub fn from_settings(settings: &crate::config::SourceSettings) -> Self {
        let mapped = settings.is_mapped();
        let pick = |value: &Option<String>, default: fn() -> String| match value
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            Some(query) => query.to_owned(),
            None => default(),
        };
        Self {
            employees: pick(&settings.employees, built_in::employees),
            departments: pick(&settings.departments, built_in::departments),
            memberships: pick(&settings.memberships, built_in::memberships),
            credentials: pick(&settings.credentials, || built_in::CREDENTIALS.into()),
            update_password: if mapped {
                settings.update_password.clone()
            } else {
                Some(built_in::UPDATE_PASSWORD.into())
            },
            mapped,
        }
    }
}

/// Which optional columns each query returns, learnt by describing it.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    pub employees_active: bool,
    pub departments_active: bool,
    pub credentials_active: bool,
}

/// A query that does not fit its contract, worded as one line naming the key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct QueryProblem(pub String);

/// Errors of the source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Query(#[from] QueryProblem),
}

impl From<sqlx::Error> for SourceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Errors of a directory read: the source's own, or the end of the read for a
/// reason of its consumer's or its thread's (never a database error).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The consumer of the rows went away (the build was abandoned).
    #[error("the directory read was abandoned")]
    Cancelled,
    /// The thread reading a SQLite file ended without finishing (it panicked,
    /// or the runtime is shutting down).
    #[error("the directory read stopped: {0}")]
    Stopped(#[source] tokio::task::JoinError),
}

impl From<sqlx::Error> for ReadError {
    fn from(e: sqlx::Error) -> Self {
        Self::Source(e.into())
    }
}

impl From<DbError> for ReadError {
    fn from(e: DbError) -> Self {
        Self::Source(e.into())
    }
}

/// What a password check learns about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialLookup {
    NotFound,
    /// The credentials query returned several rows: never guess which.
    Ambiguous,
    Found {
        password_hash: Option<String>,
        active: bool,
    },
}

/// The HR data source: its database and queries.
#[derive(Debug, Clone)]
pub struct Source {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    queries: Queries,
    shape: OnceCell<Shape>,
    /// For SQLite, the file `rusqlite` opens read-only for the large reads.
    sqlite_path: Option<std::path::PathBuf>,
    /// For a mapped SQLite source, the URL `update_password` opens (the pool
    /// itself is read-only).
    sqlite_url: Option<SecretString>,
    /// Whether the database's order of the keys has so far been their byte
    /// order, so that reads can take it from an index instead of a sort.
    collation_is_byte_order: AtomicBool,
}

impl Source {
    pub fn new(db: Db, queries: Queries, url: &SecretString) -> Result<Self, DbError> {
        let sqlite_path = match db.backend() {
            Backend::Sqlite => Some(read::sqlite_path(url)?),
            _ => None,
        };
        let sqlite_url = (sqlite_path.is_some() && queries.mapped).then(|| url.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                queries,
                shape: OnceCell::new(),
                sqlite_url,
                sqlite_path,
                collation_is_byte_order: AtomicBool::new(true),
            }),
        })
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn queries(&self) -> &Queries {
        &self.inner.queries
    }

    /// True when the HR database is a company's own schema (read-only to us).
    pub fn is_mapped(&self) -> bool {
        self.inner.queries.mapped
    }

    /// Describes every query once (without fetching rows) and checks its columns;
    /// the result is kept, so later calls cost nothing.
    pub async fn shape(&self) -> Result<Shape, SourceError> {
        self.inner
            .shape
            .get_or_try_init(|| self.describe_all())
            .await
            .cloned()
    }

    async fn describe_all(&self) -> Result<Shape, SourceError> {
        let q = &self.inner.queries;
        let employees = self.describe(&EMPLOYEES, &q.employees, &[]).await?;
        let departments = self.describe(&DEPARTMENTS, &q.departments, &[]).await?;
        self.describe(&MEMBERSHIPS, &q.memberships, &[]).await?;
        let credentials = self
            .describe(&CREDENTIALS, &q.credentials, &["username"])
            .await?;
        if let Some(update) = &q.update_password {
            let bound = sql::bind_named(update, &UPDATE_PARAMS, self.db().backend());
            for (i, name) in UPDATE_PARAMS.iter().enumerate() {
                if !bound.order.contains(&i) {
                    return Err(QueryProblem(format!(
                        "source.update_password must use :{name} (it is run as a \
                         compare-and-set: UPDATE … SET hash = :new_hash WHERE login = \
                         :username AND hash = :old_hash)"
                    ))
                    .into());
                }
            }
        }
        let has = |cols: &[String], name: &str| cols.iter().any(|c| c == name);
        Ok(Shape {
            employees_active: has(&employees, "active"),
            departments_active: has(&departments, "active"),
            credentials_active: has(&credentials, "active"),
        })
    }

    /// The column names `text` returns, checked against `spec`.
    async fn describe(
        &self,
        spec: &QuerySpec,
        text: &str,
        params: &[&str],
    ) -> Result<Vec<String>, SourceError> {
        let backend = self.db().backend();
        let bound = sql::bind_named(text, params, backend);
        if spec.key == CREDENTIALS.key && bound.order.is_empty() {
            return Err(QueryProblem(
                "source.credentials must select one user with the placeholder :username \
                 (for example `WHERE login = :username`)"
                    .into(),
            )
            .into());
        }
        let described = match self.db() {
            Db::Postgres(pool) => pool
                .describe(&bound.sql)
                .await
                .map(|d| column_names(d.columns())),
            Db::MySql(pool) => pool
                .describe(&bound.sql)
                .await
                .map(|d| column_names(d.columns())),
            Db::Sqlite(pool) => pool
                .describe(&bound.sql)
                .await
                .map(|d| column_names(d.columns())),
        };
        let columns = match described {
            Ok(columns) => columns,
            Err(e) => {
                let db = DbError::from(e);
                if matches!(db, DbError::Unavailable(_)) {
                    return Err(db.into());
                }
                return Err(QueryProblem(format!(
                    "{} fails: {}",
                    spec.key,
                    one_line(&db.to_string())
                ))
                .into());
            }
        };
        check_columns(spec, &columns)?;
        Ok(columns)
    }

    /// Checks every query as `hr-bridge check` and `serve` do before serving:
    /// describes it (columns), then runs it once fetching at most one row (the
    /// credentials query with a username that cannot exist), so that a missing
    /// table, column or SELECT right is named now rather than at the first sync.
    pub async fn check(&self) -> Result<Shape, SourceError> {
        let shape = self.shape().await?;
        let backend = self.db().backend();
        // Collation order: an index delivers it without sorting the table.
        let plan = read::ReadPlan::new(backend, &self.inner.queries, &shape, sql::Order::Collation);
        for (spec, sql) in [
            (&DEPARTMENTS, &plan.departments),
            (&EMPLOYEES, &plan.employees),
            (&MEMBERSHIPS, &plan.memberships),
        ] {
            let probe = format!(
                "SELECT * FROM ({}) AS hrb_probe LIMIT 1",
                sql::as_subquery(sql)
            );
            lookup::execute_probe(self.db(), &probe)
                .await
                .map_err(|e| name_failure(spec, e))?;
        }
        self.lookup(PROBE_USERNAME)
            .await
            .map_err(|e| name_failure(&CREDENTIALS, e))?;
        Ok(shape)
    }

    /// The stored hash and status of exactly `username` (byte for byte), or why
    /// there is none to check.
    ///
    /// A query that fails because of the name itself (one the database cannot
    /// compare with its column, such as a 4-byte character against a `utf8mb3`
    /// column on MariaDB) is an unknown user, logged once as a warning: no stored
    /// name can equal a name the database cannot even compare. It is told apart
    /// from a broken query by running the query again with a harmless name.
    pub async fn credentials(&self, username: &str) -> Result<CredentialLookup, SourceError> {
        match self.lookup(username).await {
            Err(SourceError::Db(DbError::Query(e))) => match self.lookup(PROBE_USERNAME).await {
                Ok(_) => {
                    tracing::warn!(
                        error = ?one_line(&e.to_string()),
                        "source.credentials failed for the username given (the database \
                         cannot compare it); answered as a failed login"
                    );
                    Ok(CredentialLookup::NotFound)
                }
                Err(SourceError::Db(DbError::Query(_))) => Err(name_failure(
                    &CREDENTIALS,
                    SourceError::Db(DbError::Query(e)),
                )),
                Err(other) => Err(other),
            },
            other => other,
        }
    }

    async fn lookup(&self, username: &str) -> Result<CredentialLookup, SourceError> {
        let backend = self.db().backend();
        // PostgreSQL text cannot hold NUL, so no such user can exist; asking would
        // only earn an encoding error.
        if username.contains('\0') && backend == Backend::Postgres {
            return Ok(CredentialLookup::NotFound);
        }
        let shape = self.shape().await?;
        let bound = sql::bind_named(&self.inner.queries.credentials, &["username"], backend);
        let columns: &'static [&'static str] = if shape.credentials_active {
            &CREDENTIALS_COLUMNS_ACTIVE
        } else {
            &CREDENTIALS_COLUMNS
        };
        let (text_columns, raw) = columns.split_at(CREDENTIALS_COLUMNS.len());
        // Only exact names count, compared in the database before the limit (a
        // limit first could keep `CAROL`, `Carol`, `cAROL` and cut `carol`); two
        // rows are enough to tell one from several.
        let (exact, binds) = sql::exact_match(backend, "username", bound.order.len() + 1);
        let wrapped = sql::wrap_where(backend, &bound.sql, text_columns, raw, &exact, Some(2));
        let rows = lookup::fetch_credentials(
            self.db(),
            &wrapped,
            columns,
            bound.order.len() + binds,
            username,
        )
        .await?;
        // The database compared bytes already; compared again here, so that no
        // collation rule can slip a variant through.
        let mut matching = rows
            .iter()
            .filter(|row| matches!(row.get(1), Value::Text(found) if found == username));
        let Some(first) = matching.next() else {
            return Ok(CredentialLookup::NotFound);
        };
        if matching.next().is_some() {
            return Ok(CredentialLookup::Ambiguous);
        }
        let password_hash = match first.get(0) {
            Value::Text(hash) => Some(hash.to_owned()),
            _ => None,
        };
        let active = if shape.credentials_active {
            first.get(2).as_active() == Some(true)
        } else {
            true
        };
        Ok(CredentialLookup::Found {
            password_hash,
            active,
        })
    }

    /// Whether `/sync` would serve `username` (exactly): the employees query holds
    /// one active row for the name. A login must not succeed for anyone else,
    /// whatever the credentials query says (it may miss `active`, or filter
    /// differently). The built-in tables answer both from the same row.
    pub async fn serves(&self, username: &str) -> Result<bool, SourceError> {
        if !self.is_mapped() {
            return Ok(true);
        }
        let backend = self.db().backend();
        let shape = self.shape().await?;
        let columns: &'static [&'static str] = if shape.employees_active {
            &SERVES_COLUMNS_ACTIVE
        } else {
            &SERVES_COLUMNS
        };
        let (text_columns, raw) = columns.split_at(SERVES_COLUMNS.len());
        // No limit: a rehired person may have a left record beside the active one.
        let (exact, binds) = sql::exact_match(backend, "username", 1);
        let wrapped = sql::wrap_where(
            backend,
            &self.inner.queries.employees,
            text_columns,
            raw,
            &exact,
            None,
        );
        let rows = lookup::fetch_credentials(self.db(), &wrapped, columns, binds, username)
            .await
            .map_err(|e| name_failure(&EMPLOYEES, e))?;
        let active = rows
            .iter()
            .filter(|row| matches!(row.get(0), Value::Text(found) if found == username))
            .filter(|row| !shape.employees_active || row.get(1).as_active() == Some(true))
            .count();
        // Two active rows for one name make /sync refuse everyone: serve no one.
        Ok(active == 1)
    }

    /// Replaces `old` by `new` for `username` as a compare-and-set; false when the
    /// hash changed meanwhile or no update query is configured.
    pub async fn replace_password_hash(
        &self,
        username: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, SourceError> {
        let Some(update) = &self.inner.queries.update_password else {
            return Ok(false);
        };
        if !self.is_mapped() {
            // The built-in tables: the statement of `db`, which compares the
            // name and the old hash byte for byte on every backend (MySQL's
            // collation would let a hash differing only in case pass).
            return Ok(self.db().replace_password_hash(username, old, new).await?);
        }
        let bound = sql::bind_named(update, &UPDATE_PARAMS, self.db().backend());
        let values = [username, old, new];
        let args: Vec<&str> = bound.order.iter().map(|&i| values[i]).collect();
        let sqlite_url = self.inner.sqlite_url.as_ref();
        Ok(write::execute_mapped_write(self.db(), sqlite_url, &bound.sql, &args).await? > 0)
    }

    /// Whether reads still ask for the database's own order of the keys (true
    /// until a read showed that it is not byte order).
    pub fn reads_in_collation_order(&self) -> bool {
        self.inner.collation_is_byte_order.load(Ordering::Relaxed)
    }

    /// From now on, reads ask the database to sort the keys by their bytes.
    pub fn read_in_byte_order(&self) {
        self.inner
            .collation_is_byte_order
            .store(false, Ordering::Relaxed);
    }

    /// Streams the directory (departments, then employees and memberships in
    /// byte order) into `sink`, all read in one consistent snapshot.
    pub async fn read_directory(
        &self,
        sink: tokio::sync::mpsc::Sender<Batch>,
    ) -> Result<(), ReadError> {
        let shape = self.shape().await?;
        let order = if self.inner.collation_is_byte_order.load(Ordering::Relaxed) {
            sql::Order::Collation
        } else {
            sql::Order::Bytes
        };
        let plan = read::ReadPlan::new(self.db().backend(), &self.inner.queries, &shape, order);
        match (self.db(), &self.inner.sqlite_path) {
            (Db::Sqlite(_), Some(path)) => read::sqlite_directory(path.clone(), plan, sink).await,
            (db, _) => read::sqlx_directory(db, &plan, sink).await,
        }
    }
}

/// A query that fails to run becomes a problem naming its key (an unreachable
/// database stays an outage).
fn name_failure(spec: &QuerySpec, e: SourceError) -> SourceError {
    match e {
        SourceError::Db(DbError::Query(inner)) => QueryProblem(format!(
            "{} fails: {}",
            spec.key,
            one_line(&inner.to_string())
        ))
        .into(),
        other => other,
    }
}

fn column_names<C: Column>(columns: &[C]) -> Vec<String> {
    columns.iter().map(|c| c.name().to_owned()).collect()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Refuses a missing required column, an unknown extra one, or a duplicate.
pub fn check_columns(spec: &QuerySpec, columns: &[String]) -> Result<(), QueryProblem> {
    for required in spec.required {
        if !columns.iter().any(|c| c == required) {
            return Err(QueryProblem(format!(
                "{} returns no column {required:?} (it must return {}{})",
                spec.key,
                spec.required.join(", "),
                if spec.optional.is_empty() {
                    String::new()
                } else {
                    format!(", and optionally {}", spec.optional.join(", "))
                }
            )));
        }
    }
    for (i, column) in columns.iter().enumerate() {
        if !spec.required.contains(&column.as_str()) && !spec.optional.contains(&column.as_str()) {
            return Err(QueryProblem(format!(
                "{} returns an unknown column {column:?} (allowed: {}{}); rename it with AS \
                 or leave it out",
                spec.key,
                spec.required.join(", "),
                if spec.optional.is_empty() {
                    String::new()
                } else {
                    format!(", {}", spec.optional.join(", "))
                }
            )));
        }
        if columns[..i].contains(column) {
            return Err(QueryProblem(format!(
                "{} returns the column {column:?} twice",
                spec.key
            )));
        }
    }
    Ok(())
}

/// Why hr-bridge's own tables cannot go where `settings` put them: a mapped
/// source is someone else's database, read-only to hr-bridge, so its lockouts,
/// audit trail and snapshot need a database of their own.
pub fn state_problem(settings: &crate::config::Settings) -> Option<String> {
    if !settings.source.is_mapped() {
        return None;
    }
    const EXAMPLE: &str = "for example sqlite:///var/lib/hr-bridge/state.db?mode=rwc";
    match &settings.state.url {
        None => Some(format!(
            "[source] maps an existing HR database, which hr-bridge only reads: set state.url \
             (HR_BRIDGE__STATE__URL) to a database of hr-bridge's own, {EXAMPLE}"
        )),
        Some(state)
            if crate::db::same_database(
                state.expose_secret(),
                settings.database.url.expose_secret(),
            ) =>
        {
            Some(format!(
                "state.url names the same database as database.url, but [source] maps an \
                 existing HR database, which hr-bridge only reads: set state.url to a database \
                 of hr-bridge's own, {EXAMPLE}"
            ))
        }
        Some(_) => None,
    }
}

/// Opens the HR source for `settings`: the built-in tables share the state pool
/// when they live in the same database; a mapped source gets its own pool whose
/// connections are read-only, and is refused without a state database of its own.
pub fn open(settings: &crate::config::Settings, state: &Db) -> Result<Source, DbError> {
    if let Some(problem) = state_problem(settings) {
        return Err(DbError::Config(problem));
    }
    let queries = Queries::from_settings(&settings.source);
    let url = &settings.database.url;
    let db = if !queries.mapped && !settings.has_separate_state() {
        state.clone()
    } else {
        Db::connect_lazy(
            url,
            &crate::db::PoolSettings {
                read_only: queries.mapped,
                ..crate::db::PoolSettings::serving(&settings.database, settings.statement_timeout())
            },
        )?
    };
    Source::new(db, queries, url)
}

/// Applies the migrations each database needs: hr-bridge's own tables in the
/// state database; the built-in HR tables where the HR data is hr-bridge's own
/// (the same database by default). A mapped HR database is never migrated, and
/// its state database keeps only hr-bridge's own tables.
pub async fn migrate(state: &Db, source: &Source) -> Result<(), DbError> {
    if source.is_mapped() {
        state.migrate_schemas(&[Schema::State]).await?;
        return state.drop_unused_directory_tables().await;
    }
    source.db().migrate_schemas(&[Schema::Directory]).await?;
    state.migrate_schemas(&[Schema::State]).await
}
