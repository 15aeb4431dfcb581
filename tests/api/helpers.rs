//! `TestDb::spawn`: the application started as `serve` starts it
//! (`Application::build`) on a free port over a fresh database of the chosen
//! backend, plus helpers to talk to it over HTTP.
//!
//! PostgreSQL and MariaDB come from `HR_BRIDGE_TEST_POSTGRES_URL` /
//! `HR_BRIDGE_TEST_MYSQL_URL` (defaults: the local servers). When one is down the
//! test says SKIPPED loudly, unless `HR_BRIDGE_REQUIRE_DBS=1` (CI) makes it fail.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hr_bridge::app::{Application, Options};
use hr_bridge::clock::{ClockHandle, ManualClock};
use hr_bridge::config::Settings;
use hr_bridge::db::{Backend, Db};
use secrecy::SecretString;
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};

pub const OMFLOW_USER: &str = "omflow";
pub const OMFLOW_PASSWORD: &str = "omflow-test-password";
/// Longest wait for an application's start-up work (migrations on a loaded
/// machine take seconds); beyond it the test fails rather than hangs.
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// `127.0.0.1:0`: a free port on the loopback interface.
pub const LOCAL_FREE_PORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Runs one async test body on PostgreSQL, MariaDB and SQLite.
#[macro_export]
macro_rules! on_all_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use hr_bridge::db::Backend;
            use $crate::helpers::TestDb;

            async fn run(backend: Backend) {
                if let Some(db) = TestDb::create(backend).await {
                    let body = $body;
                    body(db).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Backend::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                run(Backend::MySql).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await
            }
        }
    };
}

fn admin_url(backend: Backend) -> String {
    match backend {
        Backend::Postgres => std::env::var("HR_BRIDGE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        Backend::MySql => std::env::var("HR_BRIDGE_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into()),
        Backend::Sqlite => String::new(),
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
}

/// A fresh, empty database that is dropped when the test ends.
pub struct TestDb {
    pub backend: Backend,
    /// URL of the fresh database.
    pub url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Creates the database, or returns `None` (after a loud SKIPPED line) when
    /// its server is not reachable and CI did not require it.
    pub async fn create(backend: Backend) -> Option<Self> {
        let name = format!("hrb_test_{}", uuid::Uuid::new_v4().simple());
        let created = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/hr.db?mode=rwc", dir.path().display());
                return Some(Self {
                    backend,
                    url,
                    name,
                    _dir: Some(dir),
                });
            }
            Backend::Postgres => match sqlx::PgConnection::connect(&admin_url(backend)).await {
                Ok(mut conn) => sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            },
            Backend::MySql => match sqlx::MySqlConnection::connect(&admin_url(backend)).await {
                Ok(mut conn) => sqlx::raw_sql(&format!(
                    "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ))
                .execute(&mut conn)
                .await
                .map(|_| ()),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = created {
            let required = std::env::var("HR_BRIDGE_REQUIRE_DBS").is_ok_and(|v| v == "1");
            if required {
                panic!(
                    "{} is required (HR_BRIDGE_REQUIRE_DBS=1) but unreachable: {e}",
                    backend.name()
                );
            }
            eprintln!(
                "\n!!!!! SKIPPED: {} server not reachable ({e}); this test did NOT run on {} !!!!!\n",
                backend.name(),
                backend.name()
            );
            return None;
        }
        Some(Self {
            backend,
            url: replace_database(&admin_url(backend), &name),
            name,
            _dir: None,
        })
    }

    /// A fresh PostgreSQL database in LATIN1 (as older installations were
    /// created), or `None` as [`TestDb::create`] when the server is down.
    pub async fn create_postgres_latin1() -> Option<Self> {
        let db = Self::create(Backend::Postgres).await?;
        let mut conn = sqlx::PgConnection::connect(&admin_url(Backend::Postgres))
            .await
            .expect("connect");
        for sql in [
            format!("DROP DATABASE {}", db.name),
            format!(
                "CREATE DATABASE {} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' \
                 TEMPLATE template0",
                db.name
            ),
        ] {
            sqlx::raw_sql(&sql)
                .execute(&mut conn)
                .await
                .expect("LATIN1 database");
        }
        Some(db)
    }

    /// Settings whose database URL goes through `proxy` (see [`Proxy`]), with a
    /// short acquire timeout so that an outage shows at once.
    pub fn settings_through(&self, proxy: &Proxy) -> Settings {
        let target = url_socket_addr(&self.url);
        let mut settings = self.settings();
        let proxied = self
            .url
            .replacen(&target.to_string(), &proxy.addr.to_string(), 1);
        settings.database.url = SecretString::from(proxied);
        settings.database.acquire_timeout_secs = 1;
        settings
    }

    /// Settings for a server over this database, on a free port, with plain
    /// OMFLOW credentials.
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::default();
        settings.server.listen = LOCAL_FREE_PORT;
        settings.database.url = SecretString::from(self.url.clone());
        settings.database.max_connections = 4;
        settings.database.acquire_timeout_secs = 2;
        settings.omflow.username = Some(OMFLOW_USER.into());
        settings.omflow.password = Some(SecretString::from(OMFLOW_PASSWORD));
        // Failed logins answer at once in tests; tests/api/timing.rs sets a floor.
        settings.auth.failure_floor_ms = 0;
        settings
    }

    /// Starts the app with default test settings.
    pub async fn spawn(self) -> TestApp {
        let settings = self.settings();
        self.spawn_with(settings).await
    }

    /// Starts the app with `settings` as `serve` does ([`Application::build`]:
    /// the database prepared in the background, migrated when
    /// `database.auto_migrate` says so, the audit trail pruned), and waits until
    /// that start-up work is done.
    pub async fn spawn_with(self, settings: Settings) -> TestApp {
        let app = self.spawn_unprepared(settings).await;
        app.wait_for_startup().await;
        app
    }

    /// [`TestDb::spawn_with`] with start options of the test's own (the
    /// notifier's shortened timeouts, say).
    pub async fn spawn_with_options(self, settings: Settings, options: Options) -> TestApp {
        let app = self.spawn_unprepared_with(settings, options).await;
        app.wait_for_startup().await;
        app
    }

    /// [`TestDb::spawn_with`] without waiting for the database: for a database
    /// that is down (or refuses) at start-up, where the server listens anyway.
    pub async fn spawn_unprepared(self, settings: Settings) -> TestApp {
        self.spawn_unprepared_with(settings, Options::default())
            .await
    }

    /// [`TestDb::spawn_unprepared`] with start options; lockouts are timed by
    /// the test's own clock.
    pub async fn spawn_unprepared_with(self, settings: Settings, options: Options) -> TestApp {
        let clock = ManualClock::default();
        let options = Options {
            clock: ClockHandle::new(clock.clone()),
            ..options
        };
        let app = start_with(settings, options).await;
        TestApp {
            clock,
            base_url: app.base_url(),
            addr: app.local_addr(),
            metrics_addr: app.metrics_addr(),
            client: reqwest::Client::new(),
            db: app.db().clone(),
            app: Some(app),
            siblings: Vec::new(),
            test_db: self,
        }
    }
}

/// Starts an application as `serve` does, with the settings given in-process,
/// without waiting for its database.
pub async fn start(settings: Settings) -> Application {
    start_with(settings, Options::default()).await
}

/// [`start`] with lockouts timed by `clock` instead of the system clock.
pub async fn start_with_clock(settings: Settings, clock: &ManualClock) -> Application {
    let options = Options {
        clock: ClockHandle::new(clock.clone()),
        ..Options::default()
    };
    start_with(settings, options).await
}

/// [`start`] with start options.
pub async fn start_with(settings: Settings, options: Options) -> Application {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::var_os("TEST_LOG").is_some() {
        hr_bridge::telemetry::init(&settings.log);
    }
    Application::build(settings, options)
        .await
        .expect("the application starts")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (backend, name) = (self.backend, self.name.clone());
        if backend == Backend::Sqlite {
            return;
        }
        // Drop is not async: use a short-lived runtime on another thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let sql = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                let result = match backend {
                    Backend::Postgres => {
                        match sqlx::PgConnection::connect(&admin_url(backend)).await {
                            Ok(mut c) => sqlx::raw_sql(&sql).execute(&mut c).await.map(|_| ()),
                            Err(e) => Err(e),
                        }
                    }
                    _ => match sqlx::MySqlConnection::connect(&admin_url(backend)).await {
                        Ok(mut c) => sqlx::raw_sql(&sql).execute(&mut c).await.map(|_| ()),
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = result {
                    eprintln!("warning: could not drop test database {name}: {e}");
                }
            });
        })
        .join();
    }
}

/// A running server and a client for it.
pub struct TestApp {
    pub base_url: String,
    pub addr: SocketAddr,
    /// The separate `/metrics` listener, when `server.metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    /// The clock lockouts are timed by, here and in every sibling: it stands
    /// still until the test moves it ([`ManualClock::advance`]).
    pub clock: ManualClock,
    /// The app's own pool, for fixtures.
    pub db: Db,
    app: Option<Application>,
    siblings: Vec<Application>,
    pub test_db: TestDb,
}

impl TestApp {
    pub fn backend(&self) -> Backend {
        self.test_db.backend
    }

    /// Waits until the application's start-up work is done.
    async fn wait_for_startup(&self) {
        let started = self.application().startup_finished();
        tokio::time::timeout(STARTUP_LIMIT, started)
            .await
            .expect("the application's start-up work did not finish");
    }

    /// The running application (its notifier's counters, say).
    pub fn application(&self) -> &Application {
        self.app.as_ref().expect("running")
    }

    /// Where the web console listens (`admin.listen`), when it does.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.app.as_ref().and_then(Application::admin_addr)
    }

    /// Runs fixture SQL (`INSERT …; UPDATE …`) as HR staff would.
    pub async fn exec(&self, sql: &str) {
        self.db.execute_script(sql).await.expect("fixture SQL runs");
    }

    /// Runs fixture SQL with foreign-key checks off, to build data our schema
    /// forbids but a hand-made HR database may hold.
    pub async fn exec_without_foreign_keys(&self, sql: &str) {
        let (off, on) = match self.backend() {
            Backend::Postgres => (
                "SET session_replication_role = replica;",
                "SET session_replication_role = DEFAULT;",
            ),
            Backend::MySql => ("SET FOREIGN_KEY_CHECKS = 0;", "SET FOREIGN_KEY_CHECKS = 1;"),
            Backend::Sqlite => ("PRAGMA foreign_keys = OFF;", "PRAGMA foreign_keys = ON;"),
        };
        self.exec(&format!("{off} {sql} {on}")).await;
    }

    pub async fn post_sync(&self) -> reqwest::Response {
        self.client
            .post(format!("{}/sync", self.base_url))
            .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_authenticate(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/authenticate", self.base_url))
            .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("request sent")
    }

    /// Starts a second server (its own pool, as another replica would have) over
    /// the same database, and returns its base URL.
    pub async fn spawn_sibling(&mut self, settings: Settings) -> String {
        let sibling = start_with_clock(settings, &self.clock).await;
        tokio::time::timeout(STARTUP_LIMIT, sibling.startup_finished())
            .await
            .expect("the sibling's start-up work did not finish");
        let url = sibling.base_url();
        self.siblings.push(sibling);
        url
    }

    /// Every row of `sql` with each column read as optional text.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        use sqlx::Row;
        let url = &self.test_db.url;
        macro_rules! collect {
            ($conn:ty) => {{
                let mut conn = <$conn>::connect(url).await.expect("connect");
                sqlx::query(sql)
                    .fetch_all(&mut conn)
                    .await
                    .expect("query runs")
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| row.try_get::<Option<String>, _>(i).expect("text column"))
                            .collect()
                    })
                    .collect()
            }};
        }
        match self.backend() {
            Backend::Postgres => collect!(sqlx::PgConnection),
            Backend::MySql => collect!(sqlx::MySqlConnection),
            Backend::Sqlite => collect!(sqlx::SqliteConnection),
        }
    }

    /// The audit trail as (username, outcome, reason, client_addr), oldest first.
    pub async fn audit(&self) -> Vec<(String, String, String, Option<String>)> {
        self.rows("SELECT username, outcome, reason, client_addr FROM auth_audit ORDER BY id")
            .await
            .into_iter()
            .map(|r| {
                let text = |i: usize| r[i].clone().unwrap_or_default();
                (text(0), text(1), text(2), r[3].clone())
            })
            .collect()
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown(Duration::from_secs(5))
                .await
                .expect("clean shutdown");
        }
    }
}

/// Reads a JSON body, checking the content type on the way.
pub async fn json_body(response: reqwest::Response) -> serde_json::Value {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    assert_eq!(content_type.as_deref(), Some("application/json"));
    response.json().await.expect("JSON body")
}

/// Asserts the OMFLOW fail envelope and returns its message.
pub async fn fail_message(response: reqwest::Response) -> String {
    let body = json_body(response).await;
    assert_eq!(body["status"], "fail", "body: {body}");
    body["message"]
        .as_str()
        .expect("message is a string")
        .to_owned()
}

/// A TCP proxy in front of a database that a test can cut and restore, to play an
/// outage without touching the shared server.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
        }
    }

    /// Refuses new connections and cuts every open one.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The host:port of a database URL.
pub fn url_socket_addr(url: &str) -> SocketAddr {
    let after_scheme = url.split_once("://").expect("scheme").1;
    let host_port = after_scheme
        .split(['/', '?'])
        .next()
        .expect("authority")
        .rsplit('@')
        .next()
        .expect("host");
    host_port.parse().expect("numeric host:port in test URL")
}

/// A file of the repository (fixtures, shipped mappings), as text.
pub fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// A repository path, absolute.
pub fn repo_path(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

impl TestDb {
    /// The SQLite file behind this database (SQLite only).
    pub fn sqlite_file(&self) -> std::path::PathBuf {
        let dir = self._dir.as_ref().expect("a SQLite test database");
        dir.path().join("hr.db")
    }

    /// Loads an HR product's own schema and rows (one multi-statement script) as
    /// its owner would, on a connection that is closed afterwards. SQLite is left
    /// in its default rollback journal, so that a read-only open changes nothing.
    pub async fn load(&self, sql: &str) {
        macro_rules! load {
            ($conn:ty) => {{
                let mut conn = <$conn>::connect(&self.url).await.expect("connect");
                sqlx::raw_sql(sql)
                    .execute(&mut conn)
                    .await
                    .expect("fixture loads");
                conn.close().await.expect("close");
            }};
        }
        match self.backend {
            Backend::Postgres => load!(sqlx::PgConnection),
            Backend::MySql => load!(sqlx::MySqlConnection),
            Backend::Sqlite => load!(sqlx::SqliteConnection),
        }
    }

    /// Every row of `sql` with each column read as optional text, on a fresh
    /// connection as this database's owner.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        rows_at(self.backend, &self.url, sql).await
    }

    /// A URL for a user that may only read `tables` (PostgreSQL: a role with
    /// only these GRANTs; MariaDB: a user with SELECT only; SQLite: the file
    /// opened `?mode=ro`). `extra` grants are run as given, with `{user}` and
    /// `{db}` replaced.
    pub async fn read_only_user(&self, tables: &[&str], extra: &[&str]) -> ReadOnlyUser {
        let user = format!(
            "hrb_ro_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let db = self.name.clone();
        let fill = |s: &str| s.replace("{user}", &user).replace("{db}", &db);
        let mut script = Vec::new();
        match self.backend {
            Backend::Sqlite => {
                return ReadOnlyUser {
                    url: format!("sqlite://{}?mode=ro", self.sqlite_file().display()),
                    user: None,
                    backend: self.backend,
                    owner_url: self.url.clone(),
                };
            }
            Backend::Postgres => {
                script.push(format!("CREATE ROLE {user} LOGIN PASSWORD 'ro-pass'"));
                script.push(format!("GRANT CONNECT ON DATABASE {db} TO {user}"));
                script.push(format!("GRANT USAGE ON SCHEMA public TO {user}"));
                script.push(format!("GRANT SELECT ON {} TO {user}", tables.join(", ")));
            }
            Backend::MySql => {
                script.push(format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'ro-pass'"));
                for table in tables {
                    script.push(format!("GRANT SELECT ON `{db}`.`{table}` TO '{user}'@'%'"));
                }
            }
        }
        script.extend(extra.iter().map(|s| fill(s)));
        for statement in &script {
            execute_at(self.backend, &self.url, statement).await;
        }
        let (scheme, rest) = self.url.split_once("://").expect("scheme");
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        ReadOnlyUser {
            url: format!("{scheme}://{user}:ro-pass@{host}"),
            user: Some(user),
            backend: self.backend,
            owner_url: self.url.clone(),
        }
    }
}

/// Every row of `sql` at `url`, each column read as optional text.
pub async fn rows_at(backend: Backend, url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::Row;
    macro_rules! collect {
        ($conn:ty) => {{
            let mut conn = <$conn>::connect(url).await.expect("connect");
            let rows = sqlx::query(sql)
                .fetch_all(&mut conn)
                .await
                .expect("query runs")
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<Option<String>, _>(i).expect("text column"))
                        .collect()
                })
                .collect();
            let _ = conn.close().await;
            rows
        }};
    }
    match backend {
        Backend::Postgres => collect!(sqlx::PgConnection),
        Backend::MySql => collect!(sqlx::MySqlConnection),
        Backend::Sqlite => collect!(sqlx::SqliteConnection),
    }
}

/// Runs one trusted statement at `url` on a fresh connection.
async fn execute_at(backend: Backend, url: &str, sql: &str) {
    macro_rules! run {
        ($conn:ty) => {{
            let mut conn = <$conn>::connect(url).await.expect("connect");
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = conn.close().await;
        }};
    }
    match backend {
        Backend::Postgres => run!(sqlx::PgConnection),
        Backend::MySql => run!(sqlx::MySqlConnection),
        Backend::Sqlite => run!(sqlx::SqliteConnection),
    }
}

/// A database user that may only read the HR tables; dropped with the test.
pub struct ReadOnlyUser {
    pub url: String,
    user: Option<String>,
    backend: Backend,
    owner_url: String,
}

impl ReadOnlyUser {
    /// The database user's name (none for SQLite, which has no users).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

impl Drop for ReadOnlyUser {
    fn drop(&mut self) {
        let (Some(user), backend, owner_url) =
            (self.user.take(), self.backend, self.owner_url.clone())
        else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let result = match backend {
                    // The role's grants live in the HR database: drop them there
                    // first, then the role itself.
                    Backend::Postgres => match sqlx::PgConnection::connect(&owner_url).await {
                        Ok(mut c) => sqlx::raw_sql(&format!(
                            "DROP OWNED BY {user}; DROP ROLE IF EXISTS {user}"
                        ))
                        .execute(&mut c)
                        .await
                        .map(|_| ()),
                        Err(e) => Err(e),
                    },
                    _ => match sqlx::MySqlConnection::connect(&owner_url).await {
                        Ok(mut c) => sqlx::raw_sql(&format!("DROP USER IF EXISTS '{user}'@'%'"))
                            .execute(&mut c)
                            .await
                            .map(|_| ()),
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = result {
                    eprintln!("warning: could not drop test user {user}: {e}");
                }
            });
        })
        .join();
    }
}

/// Settings as `hr-bridge` would load them from the mapping file `mapping` with
/// the HR data at `hr_url` and hr-bridge's own state in `state`, for a server on
/// a free port.
pub fn mapped_settings(mapping: &std::path::Path, hr_url: &str, state: &TestDb) -> Settings {
    let env = std::collections::HashMap::from([
        ("HR_BRIDGE__DATABASE__URL".to_owned(), hr_url.to_owned()),
        ("HR_BRIDGE__STATE__URL".to_owned(), state.url.clone()),
        (
            "HR_BRIDGE__OMFLOW__USERNAME".to_owned(),
            OMFLOW_USER.to_owned(),
        ),
        (
            "HR_BRIDGE__OMFLOW__PASSWORD".to_owned(),
            OMFLOW_PASSWORD.to_owned(),
        ),
    ]);
    let mut settings = Settings::load_from(Some(mapping), env).expect("mapping loads");
    settings.server.listen = LOCAL_FREE_PORT;
    settings.database.max_connections = 4;
    settings.database.acquire_timeout_secs = 2;
    settings
}

/// Variables a child keeps from the test's environment: enough to find programs
/// and a temporary directory, nothing that configures hr-bridge (`HR_BRIDGE*`),
/// its logs, its proxies (`HTTPS_PROXY`) or anything else behind the test's back.
const KEPT_VARIABLES: [&str; 2] = ["PATH", "TMPDIR"];

/// `program` with a cleared environment but [`KEPT_VARIABLES`]: every spawned
/// process starts from this (or from [`binary`]), so what it sees is only what the
/// test sets.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command.env_clear();
    for key in KEPT_VARIABLES {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command
}

/// The path of the real `hr-bridge` binary.
pub const BINARY: &str = env!("CARGO_BIN_EXE_hr-bridge");

/// The real `hr-bridge` binary with a cleared environment ([`clean_command`]),
/// logging warnings without colour.
pub fn binary() -> std::process::Command {
    let mut command = clean_command(BINARY);
    command.env("RUST_LOG", "warn").env("NO_COLOR", "1");
    command
}

/// Runs `command` with `stdin` written to its standard input, and collects its
/// output. A child may exit without reading its input (a refused configuration
/// does): the pipe it closed is not an error here, its exit status tells.
pub fn run_with_stdin(command: &mut std::process::Command, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    if let Some(mut input) = child.stdin.take() {
        match input.write_all(stdin.as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => panic!("writing the child's standard input: {e}"),
        }
    }
    child.wait_with_output().expect("the binary ends")
}

/// A loopback port kept for a server the test starts as a child process, until
/// dropped. The port is bound (with `SO_REUSEADDR`) but not listening: the kernel
/// gives it to no other socket (no `bind` to port 0, no outgoing connection,
/// no other `FreePort`), while the child, whose listener sets `SO_REUSEADDR` as
/// std's and tokio's do, binds it and listens. So there is no window between
/// choosing the port and the child binding it in which anything else can take it.
///
/// Keep it in a variable for as long as the child may (re)bind the port:
/// `free_port().port()` alone gives the port back at once.
pub struct FreePort {
    _socket: tokio::net::TcpSocket,
    port: u16,
}

impl FreePort {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A free loopback port, kept until the returned [`FreePort`] is dropped.
pub fn free_port() -> FreePort {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(LOCAL_FREE_PORT)
        .expect("bind a free loopback port");
    let port = socket.local_addr().expect("the bound address").port();
    FreePort {
        _socket: socket,
        port,
    }
}
