//! Start-up through the real binary: plain secrets refused in the TOML file in any
//! spelling, a private SQLite file, and `serve` coming up while the database is
//! down (503 until it answers, then migrated and serving without a restart).

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{fail_message, url_socket_addr, Proxy, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

/// The binary with a cleared environment.
fn hr_bridge() -> Command {
    crate::helpers::binary()
}

/// `hash-password` (which needs no database) with `toml` as the config file.
fn hash_password_with_config(toml: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hr-bridge.toml");
    std::fs::write(&file, toml).expect("write config");
    let mut command = hr_bridge();
    command.args([
        "--config",
        file.to_str().expect("utf-8 path"),
        "hash-password",
    ]);
    // A refused configuration exits before reading stdin: a closed pipe is fine.
    crate::helpers::run_with_stdin(&mut command, "pw\n")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_plain_omflow_password_in_the_file_is_refused_in_any_spelling() {
    for toml in [
        "\"omflow.password\" = \"in-a-file\"\n",
        "omflow = { username = \"omflow\", password = \"in-a-file\" }\n",
        "omflow.password = \"in-a-file\"\n",
        "[omflow]\n\"password\" = \"in-a-file\"\n",
    ] {
        let output = hash_password_with_config(toml);
        assert!(!output.status.success(), "accepted: {toml}");
        let err = stderr(&output);
        assert!(
            err.contains("omflow.password") && err.contains("environment"),
            "{toml}: {err}"
        );
        assert!(!err.contains("in-a-file"), "the secret leaked: {err}");
    }
}

#[test]
fn every_database_url_with_a_password_in_the_file_is_refused() {
    for section in ["database", "state"] {
        let env = format!("HR_BRIDGE__{}__URL", section.to_uppercase());
        for toml in [
            format!("[{section}]\nurl = \"postgres://hr:s3cret@127.0.0.1/hr\"\n"),
            format!("\"{section}.url\" = \"mysql://hr:s3cret@127.0.0.1/hr\"\n"),
            format!("{section} = {{ url = \"postgres://hr@127.0.0.1/hr?password=s3cret\" }}\n"),
            format!(
                "[{}]\nURL = \"mysql://hr:s3cret@127.0.0.1/hr\"\n",
                section.to_uppercase()
            ),
        ] {
            let output = hash_password_with_config(&toml);
            assert!(!output.status.success(), "accepted: {toml}");
            let err = stderr(&output);
            assert!(
                err.contains(&format!("{section}.url")) && err.contains(&env),
                "{toml}: {err}"
            );
            assert!(!err.contains("s3cret"), "the secret leaked: {err}");
        }
        // Without a password the URL may stay in the file.
        let output = hash_password_with_config(&format!(
            "[{section}]\nurl = \"postgres://hr@127.0.0.1/hr\"\n"
        ));
        assert!(output.status.success(), "{}", stderr(&output));
    }
}

#[test]
fn a_short_request_timeout_alone_is_accepted() {
    let output = hash_password_with_config("[server]\nrequest_timeout_secs = 2\n");
    assert!(output.status.success(), "{}", stderr(&output));
    // An explicit statement timeout is still checked against it.
    let output = hash_password_with_config(
        "[server]\nrequest_timeout_secs = 2\n[database]\nstatement_timeout_secs = 25\n",
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("database.statement_timeout_secs"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_sqlite_file_is_created_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hr.db");
    let output = hr_bridge()
        .env(
            "HR_BRIDGE__DATABASE__URL",
            format!("sqlite://{}?mode=rwc", path.display()),
        )
        .arg("migrate")
        .output()
        .expect("binary runs");
    assert!(output.status.success(), "{}", stderr(&output));
    for file in ["hr.db", "hr.db-wal", "hr.db-shm"] {
        let Ok(meta) = std::fs::metadata(dir.path().join(file)) else {
            continue; // SQLite removes -wal/-shm on a clean close
        };
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
    }
}

/// Stops the child however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

on_all_backends!(
    serve_listens_while_the_database_is_down_and_serves_once_it_answers,
    |db: TestDb| async move {
        if db.backend == Backend::Sqlite {
            return; // an embedded file cannot be down
        }
        let proxy = Proxy::start(url_socket_addr(&db.url)).await;
        proxy.cut();
        let target = url_socket_addr(&db.url).to_string();
        let url = db.url.replacen(&target, &proxy.addr.to_string(), 1);
        let reserved = crate::helpers::free_port();
        let port = reserved.port();
        let mut server = Server(
            hr_bridge()
                .env("HR_BRIDGE__DATABASE__URL", &url)
                .env("HR_BRIDGE__DATABASE__ACQUIRE_TIMEOUT_SECS", "1")
                .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
                .env("HR_BRIDGE__OMFLOW__USERNAME", OMFLOW_USER)
                .env("HR_BRIDGE__OMFLOW__PASSWORD", OMFLOW_PASSWORD)
                .arg("serve")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("serve starts"),
        );
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();

        // Listening at once, alive, not ready.
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.0.try_wait() {
                panic!("serve exited with the database down: {status}");
            }
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
                assert_eq!(r.status(), 200);
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "serve did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        assert!(ready.headers().contains_key("retry-after"));
        fail_message(ready).await;
        for (path, body) in [
            ("/sync", "{}"),
            ("/authenticate", r#"{"username":"a","password":"b"}"#),
        ] {
            let response = client
                .post(format!("{base}{path}"))
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 503, "{path}");
            assert!(response.headers().contains_key("retry-after"), "{path}");
            fail_message(response).await;
        }

        // The database comes back: migrated and served without a restart.
        proxy.restore();
        let started = Instant::now();
        loop {
            let status = client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .unwrap()
                .status();
            if status == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "/readyz did not turn 200 once the database answered"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let sync = client
            .post(format!("{base}/sync"))
            .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(sync.status(), 200);
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "serve restarted or exited"
        );
    }
);

on_all_backends!(
    an_in_process_start_prunes_the_audit_trail_as_serve_does,
    |db: TestDb| async move {
        let mut app = db.spawn().await;
        app.exec(
            "INSERT INTO auth_audit (occurred_at, username, outcome, reason, client_addr) \
             VALUES ('2020-01-01T00:00:00.000Z', 'old', 'failure', 'bad_password', NULL)",
        )
        .await;
        app.post_authenticate("recent", "x").await;
        // Another replica starting over the same database goes through the same
        // start-up as `serve`: by the time it has started, it has pruned.
        let settings = app.test_db.settings();
        app.spawn_sibling(settings).await;
        let users: Vec<String> = app.audit().await.into_iter().map(|r| r.0).collect();
        assert_eq!(users, ["recent"]);
    }
);
