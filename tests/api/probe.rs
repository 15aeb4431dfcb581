//! `hr-bridge probe`: the real binary against the real server, plain and over TLS,
//! and against broken deployments (expired or untrusted certificate, wrong
//! password, data the server refuses, a payload that breaks the contract) and
//! hostile ones (an endless answer, control characters in what it says).

use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;

use hr_bridge::db::Backend;

use crate::authenticate::{add_employee, argon2id};
use crate::guard::seed_people;
use crate::helpers::{TestApp, TestDb, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;
use crate::tls::{self_signed, write_pair};

const LOGIN_PASSWORD: &str = "Login-Pa55-word";

/// Runs `hr-bridge probe URL --username omflow ARGS` with `password` as OMFLOW's.
async fn probe(url: &str, password: &str, args: &[&str]) -> (bool, String, String) {
    let mut command = crate::helpers::binary();
    command
        .args(["probe", url, "--username", OMFLOW_USER])
        .args(args)
        .env("HR_BRIDGE_PROBE_PASSWORD", password)
        .env("HR_BRIDGE_PROBE_LOGIN_PASSWORD", LOGIN_PASSWORD);
    let output: Output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    for secret in [OMFLOW_PASSWORD, LOGIN_PASSWORD] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a password was echoed:\n{stdout}\n{stderr}"
        );
    }
    (output.status.success(), stdout, stderr)
}

async fn sqlite_db() -> TestDb {
    TestDb::create(Backend::Sqlite).await.expect("SQLite")
}

/// A server over HTTPS with the given PEM pair; returns the app and its
/// `https://localhost:PORT` URL and the directory holding `cert.pem`.
async fn tls_app(db: TestDb, pair: &(String, String)) -> (TestApp, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), pair);
    let mut settings = db.settings();
    settings.server.tls_cert = Some(dir.path().join("cert.pem"));
    settings.server.tls_key = Some(dir.path().join("key.pem"));
    let app = db.spawn_with(settings).await;
    let url = format!("https://localhost:{}", app.addr.port());
    (app, url, dir)
}

fn certificate(
    names: &[&str],
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A self-signed certificate that is its own CA (`basicConstraints CA:TRUE`), as
/// `openssl req -x509` makes them.
fn own_ca_certificate(names: &[&str]) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Serves `router` on a free local port: a deployment that is no hr-bridge.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// 401 with a Basic challenge, as hr-bridge answers a request without credentials.
fn challenge() -> axum::response::Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic realm=\"hr-bridge\""),
            (header::CONTENT_TYPE, "application/json"),
        ],
        r#"{"status":"fail","message":"authentication required"}"#,
    )
        .into_response()
}

on_all_backends!(
    probe_passes_a_healthy_deployment_with_a_login,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_people(&app, 3).await;
        add_employee(&app, "alice", Some(&argon2id(LOGIN_PASSWORD)), true).await;
        let (ok, stdout, stderr) = probe(
            &app.base_url,
            OMFLOW_PASSWORD,
            &["--login", "alice", "--allow-http"],
        )
        .await;
        assert!(ok, "{stdout}\n{stderr}");
        for expected in [
            "- TLS: plain http:// URL",
            "✓ Basic Auth refused without credentials: 401 with WWW-Authenticate: Basic realm=\"hr-bridge\"",
            "✓ Basic Auth accepted",
            "✓ /sync answers 200: ",
            "✓ /sync payload follows the contract: 4 user(s), 2 department(s)",
            "✓ /authenticate alice: success",
            "OK: the deployment answers as OMFLOW expects",
        ] {
            assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
        }
        assert!(!stdout.contains('✗'), "{stdout}");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_checks_tls_against_a_custom_ca_and_reports_json() {
    let pair = self_signed();
    let (app, url, dir) = tls_app(sqlite_db().await, &pair).await;
    seed_people(&app, 2).await;
    let ca = dir.path().join("cert.pem");
    let (ok, stdout, stderr) = probe(
        &url,
        OMFLOW_PASSWORD,
        &["--json", "--ca-cert", ca.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["ok"], true);
    let status_of = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"].as_str().unwrap().to_owned())
    };
    for name in [
        "TLS handshake",
        "TLS version ≥ 1.2",
        "certificate chain",
        "certificate hostname",
        "certificate expiry",
        "Basic Auth refused without credentials",
        "Basic Auth accepted",
        "/sync answers 200",
        "/sync payload follows the contract",
    ] {
        assert_eq!(status_of(name).as_deref(), Some("pass"), "{name}: {stdout}");
    }
    assert!(report["figures"]["certificate_days_left"].as_i64().unwrap() > 300);
    assert_eq!(report["figures"]["users"], 2);
    assert!(report["figures"]["sync_bytes"].as_u64().unwrap() > 100);

    // Without the CA the chain is untrusted, and no credentials are sent; the
    // check without credentials still runs, since it sends no secret.
    let (ok, stdout, _) = probe(&url, OMFLOW_PASSWORD, &[]).await;
    assert!(!ok);
    assert!(
        stdout.contains(
            "✗ certificate chain: not trusted: the issuer is unknown: not one of the built-in \
             public roots; use --ca-cert FILE"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "✓ Basic Auth refused without credentials: 401 with WWW-Authenticate: Basic \
             realm=\"hr-bridge\" (asked over the untrusted connection; nothing secret was sent)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("- Basic Auth accepted: not run"),
        "{stdout}"
    );
}

/// `openssl req -x509` makes a certificate that is its own CA; given with
/// `--ca-cert`, it is trusted as the server's own (webpki alone refuses it as an
/// end entity), while the hostname is still checked and any other certificate is
/// still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_trusts_a_self_signed_certificate_that_is_its_own_ca() {
    let own = own_ca_certificate(&["localhost"]);
    let (app, url, dir) = tls_app(sqlite_db().await, &own).await;
    seed_people(&app, 2).await;
    add_employee(&app, "alice", Some(&argon2id(LOGIN_PASSWORD)), true).await;
    let ca = dir.path().join("cert.pem");
    let ca = ca.to_str().unwrap();
    let (ok, stdout, stderr) = probe(
        &url,
        OMFLOW_PASSWORD,
        &["--ca-cert", ca, "--login", "alice"],
    )
    .await;
    assert!(ok, "{stdout}\n{stderr}");
    for expected in [
        "✓ certificate chain: trusted (the server's own certificate, given with --ca-cert)",
        "✓ certificate hostname: matches the URL",
        "✓ Basic Auth accepted",
        "✓ /sync payload follows the contract: 3 user(s)",
        "✓ /authenticate alice: success",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    // Another self-signed certificate for the same name is not the pinned one.
    let other = own_ca_certificate(&["localhost"]);
    let (_other_app, other_url, _other_dir) = tls_app(sqlite_db().await, &other).await;
    let (ok, stdout, _) = probe(&other_url, OMFLOW_PASSWORD, &["--ca-cert", ca]).await;
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains(
            "✗ certificate chain: not trusted: the server presents a CA certificate (a \
             self-signed one, as `openssl req -x509` makes them?), not among the certificates \
             of --ca-cert; use --ca-cert FILE with that certificate itself"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ Basic Auth refused without credentials"),
        "{stdout}"
    );
    assert!(
        stdout.contains("- Basic Auth accepted: not run"),
        "{stdout}"
    );

    // The pinned certificate must still name the host.
    let elsewhere = own_ca_certificate(&["hr.example.com"]);
    let (_app, url, dir) = tls_app(sqlite_db().await, &elsewhere).await;
    let ca = dir.path().join("cert.pem");
    let (ok, stdout, _) = probe(&url, OMFLOW_PASSWORD, &["--ca-cert", ca.to_str().unwrap()]).await;
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("✓ certificate chain: trusted"), "{stdout}");
    assert!(
        stdout.contains("✗ certificate hostname: the certificate is not valid for \"localhost\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("- Basic Auth accepted: not run"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_an_expired_certificate_and_a_wrong_hostname() {
    let expired = certificate(&["localhost"], (2020, 1, 1), (2021, 1, 1));
    let (_app, url, dir) = tls_app(sqlite_db().await, &expired).await;
    let ca = dir.path().join("cert.pem");
    let (ok, stdout, _) = probe(&url, OMFLOW_PASSWORD, &["--ca-cert", ca.to_str().unwrap()]).await;
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("✓ certificate chain: trusted"), "{stdout}");
    assert!(stdout.contains("✓ certificate hostname"), "{stdout}");
    assert!(
        stdout.contains("✗ certificate expiry: expired on 2021-01-01"),
        "{stdout}"
    );
    assert!(stdout.contains("FAILED"), "{stdout}");

    let elsewhere = certificate(&["hr.example.com"], (2025, 1, 1), (2099, 1, 1));
    let (_app, url, dir) = tls_app(sqlite_db().await, &elsewhere).await;
    let ca = dir.path().join("cert.pem");
    let (ok, stdout, _) = probe(&url, OMFLOW_PASSWORD, &["--ca-cert", ca.to_str().unwrap()]).await;
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("✗ certificate hostname: the certificate is not valid for \"localhost\""),
        "{stdout}"
    );
    assert!(stdout.contains("✓ certificate expiry"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_a_wrong_password_and_a_failed_login() {
    let app = sqlite_db().await.spawn().await;
    add_employee(&app, "alice", Some(&argon2id("another password")), true).await;
    let (ok, stdout, _) = probe(&app.base_url, "not-the-password", &["--allow-http"]).await;
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("✓ Basic Auth refused without credentials"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ Basic Auth accepted: 401 for user \"omflow\""),
        "{stdout}"
    );
    assert!(!stdout.contains("not-the-password"), "{stdout}");

    let (ok, stdout, _) = probe(
        &app.base_url,
        OMFLOW_PASSWORD,
        &["--login", "alice", "--allow-http"],
    )
    .await;
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("✓ /sync payload follows the contract"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ /authenticate alice: 200 OK: invalid username or password"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_when_the_server_refuses_invalid_data() {
    let app = sqlite_db().await.spawn().await;
    app.exec(
        "INSERT INTO employees (username, email, nick_name) VALUES \
         ('a', 'same@example.com', 'A'), ('b', 'SAME@example.com', 'B')",
    )
    .await;
    let (ok, stdout, _) = probe(&app.base_url, OMFLOW_PASSWORD, &["--allow-http"]).await;
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("✗ /sync answers 200: 409 Conflict: sync refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("- /sync payload follows the contract: not run"),
        "{stdout}"
    );
}

/// A deployment that is no hr-bridge: open without credentials, and serving a
/// payload that breaks the contract.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_a_payload_that_breaks_the_contract() {
    let payload = r#"{"status":"success",
        "user_info_list":[
          {"username":"a","email":"X@example.com","nick_name":"A","ad_no":1,"company":"","phone1":"","phone2":"","extension_no":"","gender":""},
          {"username":"b","email":"x@example.com","nick_name":"B","ad_no":"","company":"","phone1":"","phone2":"","extension_no":"","gender":"m"}],
        "group_info_list":[
          {"display_name":"R","group_no":"R","parent_group_no":"GONE","user_list":["a","zed"]}]}"#;
    let router = axum::Router::new().route(
        "/sync",
        axum::routing::post(
            move || async move { ([("content-type", "application/json")], payload) },
        ),
    );
    let addr = serve(router).await;
    let (ok, stdout, _) = probe(
        &format!("http://{addr}"),
        OMFLOW_PASSWORD,
        &["--allow-http"],
    )
    .await;
    assert!(!ok, "{stdout}");
    for expected in [
        "✗ Basic Auth refused without credentials: answered 200 OK without credentials",
        "✓ /sync answers 200",
        "✗ /sync payload follows the contract: 5 problem(s)",
        "user \"a\": \"ad_no\" is not a string",
        "gender \"m\" is not",
        "email \"x@example.com\" is shared by users \"a\" and \"b\"",
        "parent \"GONE\", which is not in group_info_list",
        "user_list names \"zed\"",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

/// Over plain http:// the passwords are not sent (nor asked for) without
/// `--allow-http`; the check without credentials still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_sends_no_password_over_http_without_allow_http() {
    let credentialed = Arc::new(AtomicU64::new(0));
    let seen = credentialed.clone();
    let router = axum::Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            if headers.contains_key(header::AUTHORIZATION) {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            challenge()
        }
    });
    let url = format!("http://{}", serve(router).await);
    let (ok, stdout, _) = probe(&url, OMFLOW_PASSWORD, &["--login", "alice"]).await;
    assert!(!ok, "{stdout}");
    assert_eq!(credentialed.load(Ordering::SeqCst), 0, "{stdout}");
    for expected in [
        "✓ Basic Auth refused without credentials: 401",
        "✗ Basic Auth accepted: not sent: over http:// the passwords would travel in clear \
         text; use the https:// URL, or pass --allow-http",
        "- /sync answers 200: not run: no credentials were sent",
        "- /authenticate alice: not run: no credentials were sent",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    // Nor are they asked for: no password in the environment and no terminal.
    let output = crate::helpers::binary()
        .args(["probe", &url, "--username", OMFLOW_USER])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("✗ Basic Auth accepted: not sent"),
        "{stdout}"
    );

    // With --allow-http they are sent.
    let (_, stdout, _) = probe(&url, OMFLOW_PASSWORD, &["--allow-http"]).await;
    assert!(credentialed.load(Ordering::SeqCst) > 0, "{stdout}");
}

/// A server whose /sync answer never ends (here: 256 MiB, so that a regression
/// cannot take the machine's memory): the probe stops reading at its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_stops_reading_an_endless_answer() {
    const SENT_AT_MOST: u64 = 256 << 20;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let router = axum::Router::new().route(
        "/sync",
        axum::routing::post(move |headers: HeaderMap| {
            let counter = counter.clone();
            async move {
                if !headers.contains_key(header::AUTHORIZATION) {
                    return challenge();
                }
                // A valid start, then users without end: only the bound stops it.
                let user = r#"{"username":"u","email":"u@x","nick_name":"U","ad_no":"","company":"","phone1":"","phone2":"","extension_no":"","gender":""},"#;
                let chunk = axum::body::Bytes::from(user.repeat(64 * 1024 / user.len()));
                let head = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(
                        br#"{"status":"success","user_info_list":["#,
                    ))
                });
                let endless = futures_util::stream::unfold((), move |()| {
                    let chunk = chunk.clone();
                    let counter = counter.clone();
                    async move {
                        let total = counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                        (total < SENT_AT_MOST).then_some((Ok(chunk), ()))
                    }
                });
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    axum::body::Body::from_stream(futures_util::StreamExt::chain(head, endless)),
                )
                    .into_response()
            }
        }),
    );
    let url = format!("http://{}", serve(router).await);
    let (ok, stdout, stderr) = probe(
        &url,
        OMFLOW_PASSWORD,
        &["--allow-http", "--max-body-mib", "4", "--timeout", "30"],
    )
    .await;
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "✗ /sync answers 200: the answer is larger than 4 MiB: stopped reading there"
        ),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("- /sync payload follows the contract: not run"),
        "{stdout}"
    );
    // What the server managed to send: the bound, plus what socket buffers hold.
    let sent = sent.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "{sent} bytes were sent");
}

/// What a server says reaches the operator's terminal escaped: it cannot clear
/// the screen, move the cursor or forge a line of the checklist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_escapes_control_characters_from_the_server() {
    const HOSTILE: &str = "\u{1b}[2J\u{1b}[H\r✓ everything is fine\nOK: the deployment answers as OMFLOW expects\n\u{202e}";
    let fail = move || serde_json::json!({"status": "fail", "message": HOSTILE}).to_string();
    let router = axum::Router::new()
        .route(
            "/sync",
            axum::routing::post(move |headers: HeaderMap| async move {
                if !headers.contains_key(header::AUTHORIZATION) {
                    return challenge();
                }
                (
                    StatusCode::CONFLICT,
                    [(header::CONTENT_TYPE, "application/json")],
                    fail(),
                )
                    .into_response()
            }),
        )
        .route(
            "/authenticate",
            axum::routing::post(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], fail()).into_response()
            }),
        );
    let url = format!("http://{}", serve(router).await);
    let (ok, stdout, _) = probe(&url, OMFLOW_PASSWORD, &["--allow-http", "--login", "alice"]).await;
    assert!(!ok, "{stdout}");
    assert!(
        !stdout.contains(['\u{1b}', '\r', '\u{202e}']),
        "raw control characters in:\n{stdout:?}"
    );
    for line in stdout.lines() {
        assert!(
            ["hr-bridge probe ", "✓ ", "✗ ", "- ", "FAILED: "]
                .iter()
                .any(|start| line.starts_with(start))
                && !line.starts_with("✓ everything"),
            "forged line {line:?} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(
            "✗ /sync answers 200: 409 Conflict: \\u{1b}[2J\\u{1b}[H\\r✓ everything is fine\\nOK: "
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ /authenticate alice: 200 OK: \\u{1b}[2J"),
        "{stdout}"
    );

    // JSON escapes them by its own rules.
    let (_, stdout, _) = probe(
        &url,
        OMFLOW_PASSWORD,
        &["--allow-http", "--login", "alice", "--json"],
    )
    .await;
    assert!(!stdout.contains(['\u{1b}', '\r']), "{stdout:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        report["checks"].to_string().contains("\\u001b[2J"),
        "{stdout}"
    );
}
