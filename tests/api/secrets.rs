//! Secrets never reach the logs or an error line: the real binary is started
//! with a secret in every setting that can hold one (database and state URLs
//! with passwords, OMFLOW's password, its hash), driven through a normal run, a
//! database that is away, and each kind of configuration error, and everything
//! it printed is searched for them.

use std::process::Command;

use base64::Engine;

use crate::hardening::LoggedServer;
use crate::helpers::{binary, OMFLOW_USER};
use crate::on_all_backends;

/// One run of the binary: its arguments and its environment.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);

const DB_PASSWORD: &str = "Db-S3cret-pw";
const OMFLOW_SECRET: &str = "Omflow-S3cret-pw";
const LOGIN_SECRET: &str = "Login-S3cret-pw";

/// Every spelling of a secret that a leak could show.
fn forbidden() -> Vec<String> {
    let header =
        base64::engine::general_purpose::STANDARD.encode(format!("{OMFLOW_USER}:{OMFLOW_SECRET}"));
    vec![
        DB_PASSWORD.to_owned(),
        OMFLOW_SECRET.to_owned(),
        LOGIN_SECRET.to_owned(),
        header,
        "S3cret".to_owned(),
    ]
}

fn assert_no_secret(output: &str, context: &str) {
    for secret in forbidden() {
        assert!(
            !output.contains(&secret),
            "{context}: {secret:?} printed:\n{output}"
        );
    }
}

/// `url` with `user:DB_PASSWORD@` as its user-info (SQLite has none).
fn with_password(url: &str, user: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if !scheme.starts_with("sqlite") => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{user}:{DB_PASSWORD}@{host}")
        }
        _ => url.to_owned(),
    }
}

/// `hr-bridge ARGS` with `env`: its exit code and everything it printed.
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command: Command = binary();
    command.args(args).env("RUST_LOG", "trace");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("hr-bridge runs");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

on_all_backends!(
    secrets_never_reach_the_logs_of_a_serving_process,
    |db: TestDb| async move {
        // PostgreSQL trusts local connections whatever the password; MariaDB's
        // root has none, so there the URL's password is refused (and logged as
        // an unavailable database, which must not show it either).
        let url = with_password(
            &db.url,
            if db.backend == Backend::MySql {
                "root"
            } else {
                "postgres"
            },
        );
        let server = LoggedServer::start(&[
            ("HR_BRIDGE__DATABASE__URL", url.as_str()),
            ("HR_BRIDGE__STATE__URL", url.as_str()),
            ("HR_BRIDGE__OMFLOW__PASSWORD", OMFLOW_SECRET),
            ("RUST_LOG", "trace"),
        ]);
        let client = reqwest::Client::new();
        for path in ["/sync", "/authenticate"] {
            for password in [OMFLOW_SECRET, "wrong-one"] {
                let _ = client
                    .post(format!("{}{path}", server.base_url))
                    .basic_auth(OMFLOW_USER, Some(password))
                    .json(&serde_json::json!({"username": "alice", "password": LOGIN_SECRET}))
                    .send()
                    .await;
            }
        }
        let _ = client
            .get(format!("{}/readyz", server.base_url))
            .send()
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let logs = server.logs();
        assert!(logs.contains("listening"), "{logs}");
        assert_no_secret(&logs, "serve");
    }
);

#[tokio::test]
async fn secrets_never_reach_the_logs_when_the_database_is_away() {
    // Nothing listens on the port: the connect error is logged at start-up.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    for url in [
        format!("postgres://hr:{DB_PASSWORD}@127.0.0.1:{port}/hr"),
        format!("mysql://hr:{DB_PASSWORD}@127.0.0.1:{port}/hr"),
        format!("postgres://hr@127.0.0.1:{port}/hr?password={DB_PASSWORD}"),
    ] {
        let server = LoggedServer::start(&[
            ("HR_BRIDGE__DATABASE__URL", url.as_str()),
            ("HR_BRIDGE__DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
            ("HR_BRIDGE__OMFLOW__PASSWORD", OMFLOW_SECRET),
            ("RUST_LOG", "trace"),
        ]);
        let _ = reqwest::Client::new()
            .post(format!("{}/sync", server.base_url))
            .basic_auth(OMFLOW_USER, Some(OMFLOW_SECRET))
            .send()
            .await;
        let logs = server.wait_for_log("database unavailable").await;
        assert_no_secret(&logs, &url.replace(DB_PASSWORD, "***"));
    }
}

#[test]
fn secrets_never_reach_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let broken_toml = dir.path().join("broken.toml");
    std::fs::write(
        &broken_toml,
        format!("[database]\nurl = \"postgres://hr:{DB_PASSWORD}@db/hr\n"),
    )
    .unwrap();
    let file_secret = dir.path().join("secret.toml");
    std::fs::write(
        &file_secret,
        format!("[database]\nurl = \"postgres://hr:{DB_PASSWORD}@db/hr\"\n"),
    )
    .unwrap();
    let broken = broken_toml.to_str().unwrap();
    let secret = file_secret.to_str().unwrap();
    let bad_port = format!("postgres://hr:{DB_PASSWORD}@127.0.0.1:notaport/hr");
    let bad_mysql = format!("mysql://hr:{DB_PASSWORD}@[::1/hr");
    let bad_scheme = format!("oracle://hr:{DB_PASSWORD}@db/hr");
    let cases: Vec<Case> = vec![
        (vec!["--config", broken, "migrate"], vec![]),
        (vec!["--config", secret, "migrate"], vec![]),
        (
            vec!["migrate"],
            vec![("HR_BRIDGE__DATABASE__URL", &bad_port)],
        ),
        (
            vec!["migrate"],
            vec![("HR_BRIDGE__DATABASE__URL", &bad_mysql)],
        ),
        (
            vec!["migrate"],
            vec![("HR_BRIDGE__DATABASE__URL", &bad_scheme)],
        ),
        (
            vec!["migrate"],
            vec![("HR_BRIDGE__STATE__URL", &bad_scheme)],
        ),
        (
            vec!["migrate"],
            vec![("HR_BRIDGE__DATABASE__MAX_CONNECTIONS", OMFLOW_SECRET)],
        ),
        (
            vec!["migrate"],
            vec![("HR_BRIDGE__SERVER__BODY_LIMIT_BYTES", OMFLOW_SECRET)],
        ),
        (
            vec!["migrate"],
            vec![("HR_BRIDGE__OMFLOW__PASSWORD_HASH", OMFLOW_SECRET)],
        ),
        (
            vec!["serve"],
            vec![
                ("HR_BRIDGE__OMFLOW__USERNAME", OMFLOW_USER),
                ("HR_BRIDGE__OMFLOW__PASSWORD", OMFLOW_SECRET),
                ("HR_BRIDGE__OMFLOW__PASSWORD_HASH", OMFLOW_SECRET),
            ],
        ),
        (
            vec!["serve"],
            vec![(
                "HR_BRIDGE__NOTIFY__WEBHOOK_URL",
                "https://hooks.example.com/services/S3cret-token",
            )],
        ),
    ];
    for (args, env) in cases {
        let (code, output) = run(&args, &env);
        assert_ne!(code, Some(0), "{args:?} {env:?}: {output}");
        assert!(output.contains("error"), "{args:?}: {output}");
        assert_no_secret(&output, &format!("{args:?}"));
    }
}
