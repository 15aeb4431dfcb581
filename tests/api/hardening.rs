//! Defects an outside attacker found against the release binary, each proved
//! fixed through the real server: forwarded addresses written IPv4-mapped,
//! duplicate JSON keys and Authorization headers, and hostile text in log lines.

use crate::helpers::{fail_message, TestDb, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;
use hr_bridge::db::Backend;

on_all_backends!(
    an_ipv4_mapped_forwarded_hop_matches_a_trusted_ipv4_range,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        let app = db.spawn_with(settings).await;
        for (n, xff) in [
            "203.0.113.9, [::ffff:127.0.0.1]",
            "203.0.113.9, ::ffff:127.0.0.1",
            "203.0.113.9, [::ffff:127.0.0.1]:8443",
        ]
        .into_iter()
        .enumerate()
        {
            let response = app
                .client
                .post(format!("{}/authenticate", app.base_url))
                .header("x-forwarded-for", xff)
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .json(&serde_json::json!({"username": format!("u{n}"), "password": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{xff}");
        }
        let clients: Vec<Option<String>> = app.audit().await.into_iter().map(|r| r.3).collect();
        assert_eq!(clients, vec![Some("203.0.113.9".to_owned()); 3]);
    }
);

on_all_backends!(
    a_login_body_naming_a_field_twice_is_refused,
    |db: TestDb| async move {
        let app = db.spawn().await;
        app.exec(
            "INSERT INTO employees (username, email, nick_name, password_hash) \
             VALUES ('alice', 'alice@example.com', 'Alice', NULL)",
        )
        .await;
        for (body, field) in [
            (
                r#"{"username":"alice","username":"bob","password":"x"}"#,
                "username",
            ),
            (
                r#"{"username":"alice","password":"x","password":"y"}"#,
                "password",
            ),
            (
                r#"{"username":"alice","user\u006eame":"bob","password":"x"}"#,
                "username",
            ),
            (
                r#"{"username":"alice","password":1,"password":"y"}"#,
                "password",
            ),
        ] {
            let response = app
                .client
                .post(format!("{}/authenticate", app.base_url))
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{body}");
            assert_eq!(
                fail_message(response).await,
                format!("field \"{field}\" appears more than once"),
                "{body}"
            );
        }
        // Nothing was checked, so nothing was audited.
        assert!(app.audit().await.is_empty());
        // Other keys may repeat; they are ignored as before.
        let response = app
            .client
            .post(format!("{}/authenticate", app.base_url))
            .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
            .body(r#"{"x":1,"x":2,"username":"alice","password":"x"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
);

on_all_backends!(
    a_request_with_two_authorization_headers_is_refused,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let right = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{OMFLOW_USER}:{OMFLOW_PASSWORD}")
            )
        );
        let wrong = "Basic b21mbG93Om5vcGU=".to_owned(); // omflow:nope
        for path in ["/sync", "/authenticate"] {
            for (first, second) in [(&right, &wrong), (&wrong, &right), (&right, &right)] {
                let response = app
                    .client
                    .post(format!("{}{path}", app.base_url))
                    .header("authorization", first)
                    .header("authorization", second)
                    .body(r#"{"username":"a","password":"b"}"#)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 401, "{path}");
                assert_eq!(
                    response.headers().get("www-authenticate").unwrap(),
                    "Basic realm=\"hr-bridge\""
                );
                assert_eq!(fail_message(response).await, "authentication required");
            }
        }
        assert!(app.audit().await.is_empty());
        assert_eq!(app.post_sync().await.status(), 200);
    }
);

/// The real binary serving on a free port, its standard output and error both
/// written to one file for the test to read; killed when dropped.
pub struct LoggedServer {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
    pub base_url: String,
}

impl LoggedServer {
    /// `hr-bridge serve` with `env` (on top of a clean environment, OMFLOW's test
    /// credentials and `RUST_LOG=info`), once it accepts connections.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_command(&["serve"], env)
    }

    /// `hr-bridge ARGS…` as [`LoggedServer::start`], for a command that serves.
    pub fn start_command(args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let out = log.reopen().expect("log file");
        let err = log.reopen().expect("log file");
        let mut command = crate::helpers::binary();
        command
            .args(args)
            .env("RUST_LOG", "info")
            .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("HR_BRIDGE__OMFLOW__USERNAME", OMFLOW_USER)
            .env("HR_BRIDGE__OMFLOW__PASSWORD", OMFLOW_PASSWORD)
            .env("HR_BRIDGE__AUTH__FAILURE_FLOOR_MS", "0")
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("serve starts");
        let mut server = Self {
            child,
            log,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().expect("wait") {
                panic!("serve exited early: {status}\n{}", server.logs());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not listen in 60 s\n{}",
                server.logs()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }

    /// Everything the process has written so far.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.log.path()).unwrap_or_default()).into_owned()
    }

    /// Waits (up to 20 s) until the logs hold `text`, and returns them.
    pub async fn wait_for_log(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let logs = self.logs();
            if logs.contains(text) {
                return logs;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {text:?} in the logs:\n{logs}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

on_all_backends!(
    a_username_in_the_audit_failure_log_line_cannot_forge_lines,
    |db: TestDb| async move {
        let server = LoggedServer::start(&[("HR_BRIDGE__DATABASE__URL", db.url.as_str())]);
        let client = reqwest::Client::new();
        // Migrated once /readyz answers 200.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while client
            .get(format!("{}/readyz", server.base_url))
            .send()
            .await
            .map_or(true, |r| r.status() != 200)
        {
            assert!(std::time::Instant::now() < deadline, "{}", server.logs());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // The audit trail goes away under the server: the row cannot be written.
        db.load("ALTER TABLE auth_audit RENAME TO auth_audit_gone")
            .await;
        let forged = "mallory\n2026-01-01T00:00:00Z ERROR forged: \u{1b}[2Jall clear";
        let response = client
            .post(format!("{}/authenticate", server.base_url))
            .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
            .json(&serde_json::json!({"username": forged, "password": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        let logs = server.wait_for_log("could not write the audit row").await;
        assert!(
            logs.contains(r"mallory\n2026-01-01T00:00:00Z ERROR forged: \u{1b}[2Jall clear"),
            "{logs}"
        );
        assert!(!logs.lines().any(|l| l.starts_with("2026-01-01")), "{logs}");
        assert!(!logs.contains('\u{1b}'), "{logs}");
    }
);

on_all_backends!(
    a_flood_of_refused_basic_auth_logs_one_line_per_address,
    |db: TestDb| async move {
        let server = LoggedServer::start(&[("HR_BRIDGE__DATABASE__URL", db.url.as_str())]);
        let client = reqwest::Client::new();
        let mut refused = 0;
        for _ in 0..40 {
            let response = client
                .post(format!("{}/sync", server.base_url))
                .basic_auth(OMFLOW_USER, Some("wrong"))
                .send()
                .await
                .unwrap();
            if response.status() == 429 {
                refused += 1;
            }
        }
        assert!(refused >= 25, "only {refused} of 40 were throttled");
        let logs = server.logs();
        let lines = logs
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("429"))
            .count();
        assert_eq!(lines, 1, "{logs}");
        assert!(!logs.contains("throttled failed"), "{logs}");
        // The ten wrong credentials before the throttle: one line too.
        let wrong = logs
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("401"))
            .count();
        assert_eq!(wrong, 1, "{logs}");
        // The metric still counts every refused request.
        let metrics = client
            .get(format!("{}/metrics", server.base_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.lines().any(|l| l
                .starts_with("hr_bridge_basic_auth_refused_total{reason=\"throttled\"}")
                && l.ends_with(&format!(" {refused}"))),
            "{metrics}"
        );
    }
);

/// `hr-bridge serve` with `env` over a throw-away SQLite file: its exit status
/// and standard error.
fn serve_refused(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = crate::helpers::binary();
    command
        .arg("serve")
        .env(
            "HR_BRIDGE__DATABASE__URL",
            format!("sqlite://{}/hr.db?mode=rwc", dir.path().display()),
        )
        .env("HR_BRIDGE__SERVER__LISTEN", "127.0.0.1:0")
        .env("HR_BRIDGE__OMFLOW__USERNAME", OMFLOW_USER)
        .env("HR_BRIDGE__OMFLOW__PASSWORD", OMFLOW_PASSWORD);
    for (key, value) in env {
        command.env(key, value);
    }
    let err = tempfile::NamedTempFile::new().expect("stderr file");
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(err.reopen().expect("stderr file"))
        .spawn()
        .expect("hr-bridge runs");
    // A setting that is not refused lets `serve` run: stop it and say so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stderr = std::fs::read(err.path()).unwrap_or_default();
    (code, String::from_utf8_lossy(&stderr).into_owned())
}

#[test]
fn absurd_retention_and_timing_settings_are_refused_at_start_up() {
    for (env, named) in [
        (
            vec![("HR_BRIDGE__AUTH__AUDIT_RETENTION_DAYS", "3651")],
            "auth.audit_retention_days must be at most 3650",
        ),
        (
            vec![("HR_BRIDGE__AUTH__AUDIT_RETENTION_DAYS", "4294967295")],
            "auth.audit_retention_days must be at most 3650",
        ),
        (
            vec![
                ("HR_BRIDGE__SERVER__REQUEST_TIMEOUT_SECS", "2"),
                ("HR_BRIDGE__AUTH__FAILURE_FLOOR_MS", "5000"),
            ],
            "auth.failure_floor_ms (5000) must be below server.request_timeout_secs",
        ),
        (
            vec![
                ("HR_BRIDGE__SERVER__REQUEST_TIMEOUT_SECS", "1"),
                ("HR_BRIDGE__AUTH__FAILURE_FLOOR_MS", "1000"),
            ],
            "auth.failure_floor_ms (1000) must be below server.request_timeout_secs",
        ),
    ] {
        let (code, stderr) = serve_refused(&env);
        assert_eq!(code, Some(1), "{env:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{env:?}: {stderr}");
        assert!(stderr.contains(named), "{env:?}: {stderr}");
    }
}

/// A TCP connection from `source` (another loopback address plays another
/// client) to `to`.
async fn connect_from(source: &str, to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// True when the server closes `stream` within `within` without a byte.
async fn closed_at_once(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Connection handling is the same on every backend: SQLite is enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::create(Backend::Sqlite).await.expect("sqlite");
    let mut settings = db.settings();
    settings.server.max_connections = 8;
    settings.server.max_connections_per_ip = Some(4);
    settings.server.header_read_timeout_secs = 30;
    let app = db.spawn_with(settings).await;
    // The attacker opens every slot's worth and sends nothing.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.1", app.addr).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for n in 0..4 {
        let mut extra = connect_from("127.0.0.1", app.addr).await;
        assert!(
            closed_at_once(&mut extra, std::time::Duration::from_secs(3)).await,
            "connection {} from the same address was kept open",
            n + 5
        );
    }
    // The first four are still open, and another address is served at once.
    for stream in &mut held {
        assert!(!closed_at_once(stream, std::time::Duration::from_millis(50)).await);
    }
    let mut other = connect_from("127.0.0.2", app.addr).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(3),
        other.read_to_end(&mut answer),
    )
    .await
    .expect("another address was not served")
    .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    // A closed connection gives its place back.
    held.pop();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut again = connect_from("127.0.0.1", app.addr).await;
    assert!(!closed_at_once(&mut again, std::time::Duration::from_millis(300)).await);
}

#[test]
fn a_per_address_cap_above_the_total_is_refused() {
    let (code, stderr) = serve_refused(&[
        ("HR_BRIDGE__SERVER__MAX_CONNECTIONS", "100"),
        ("HR_BRIDGE__SERVER__MAX_CONNECTIONS_PER_IP", "101"),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "server.max_connections_per_ip (101) must not exceed server.max_connections (100)"
        ),
        "{stderr}"
    );
}

on_all_backends!(
    mariadb_sessions_refuse_over_long_values_whatever_the_server_sql_mode,
    |db: TestDb| async move {
        if db.backend != Backend::MySql {
            return; // PostgreSQL always refuses; SQLite has no lengths
        }
        let app = db.spawn().await;
        // The shared server's global mode cannot be emptied here; a table that
        // is not transactional shows the difference instead: STRICT_TRANS_TABLES
        // (the server default) truncates a later row of a multi-row insert there,
        // STRICT_ALL_TABLES (as with sql_mode = '', truncation) refuses it.
        app.exec("CREATE TABLE strictness (v VARCHAR(3)) ENGINE=MEMORY")
            .await;
        let insert = app
            .db
            .execute_script("INSERT INTO strictness VALUES ('ok'), ('too long')")
            .await;
        assert!(insert.is_err(), "an over-long value was truncated silently");
    }
);
