//! Request, statement, body and header timeouts, and the connection cap: every
//! answer a timeout produces carries the fail envelope, and a request abandoned
//! at its deadline leaves no audited success behind.

use std::time::{Duration, Instant};

use base64::Engine;
use hr_bridge::db::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::authenticate::{add_employee, argon2id};
use crate::helpers::{fail_message, TestApp, TestDb, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

/// A second connection that holds the row lock `alice`'s next login attempt
/// needs, as an HR tool in the middle of a transaction would.
async fn hold_alice_lockout_row(app: &TestApp) -> Box<dyn std::any::Any + Send> {
    use sqlx::Connection;
    let insert = "INSERT INTO auth_lockouts (username, failures, locked_until, updated_at) \
                  VALUES ('alice', 0, NULL, 0)";
    match app.backend() {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.test_db.url).await.unwrap();
            sqlx::raw_sql(&format!("BEGIN; {insert}"))
                .execute(&mut conn)
                .await
                .unwrap();
            Box::new(conn)
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(&app.test_db.url)
                .await
                .unwrap();
            sqlx::raw_sql(&format!("BEGIN; {insert}"))
                .execute(&mut conn)
                .await
                .unwrap();
            Box::new(conn)
        }
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.test_db.url)
                .await
                .unwrap();
            sqlx::raw_sql(&format!("BEGIN IMMEDIATE; {insert}"))
                .execute(&mut conn)
                .await
                .unwrap();
            Box::new(conn)
        }
    }
}

on_all_backends!(
    a_login_past_the_request_timeout_answers_503_and_audits_no_success,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.server.request_timeout_secs = 2;
        // The database would wait longer than the request: the deadline acts.
        settings.database.statement_timeout_secs = Some(60);
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        let lock = hold_alice_lockout_row(&app).await;

        let started = Instant::now();
        let response = app.post_authenticate("alice", "right").await;
        assert_eq!(response.status(), 503);
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(response.headers().contains_key("retry-after"));
        assert!(response.headers().contains_key("x-request-id"));
        assert!(fail_message(response)
            .await
            .contains("did not finish in time"));

        // The lock goes away; the abandoned check must not carry on to a success.
        drop(lock);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let audit = app.audit().await;
        assert!(
            audit.iter().all(|(_, outcome, _, _)| outcome != "success"),
            "{audit:?}"
        );
        // And the next login works.
        let response = app.post_authenticate("alice", "right").await;
        assert_eq!(response.status(), 200);
    }
);

on_all_backends!(
    a_statement_held_by_a_lock_gives_up_in_the_database_with_503,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.server.request_timeout_secs = 20;
        settings.database.statement_timeout_secs = Some(1);
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        let _lock = hold_alice_lockout_row(&app).await;

        let started = Instant::now();
        let response = app.post_authenticate("alice", "right").await;
        assert_eq!(response.status(), 503);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the database did not give up before the request timeout"
        );
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(fail_message(response).await, "database unavailable");
    }
);

fn basic_auth() -> String {
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{OMFLOW_USER}:{OMFLOW_PASSWORD}"));
    format!("Basic {token}")
}

/// Everything the server sends until it closes, or what came within `wait`.
async fn read_until_close(stream: &mut TcpStream, wait: Duration) -> Result<String, String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(wait, stream.read_to_end(&mut received)).await;
    let text = String::from_utf8_lossy(&received).into_owned();
    match read {
        Ok(_) => Ok(text),
        Err(_) => Err(text),
    }
}

/// Non-database behaviour: one backend is enough.
async fn sqlite_app(configure: impl FnOnce(&mut hr_bridge::config::Settings)) -> TestApp {
    let db = TestDb::create(Backend::Sqlite).await.expect("sqlite");
    let mut settings = db.settings();
    configure(&mut settings);
    db.spawn_with(settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_gets_408_with_the_envelope() {
    let app = sqlite_app(|s| s.server.request_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /authenticate HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user",
        basic_auth()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_close(&mut stream, Duration::from_secs(10))
        .await
        .unwrap_or_else(|partial| partial);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""status":"fail""#), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_line_is_closed_after_the_header_read_timeout() {
    let app = sqlite_app(|s| s.server.header_read_timeout_secs = 1).await;
    for partial in ["GET /hea", ""] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(partial.as_bytes()).await.unwrap();
        let started = Instant::now();
        let closed = read_until_close(&mut stream, Duration::from_secs(10)).await;
        assert!(
            closed.is_ok(),
            "connection with {partial:?} still open after 10 s"
        );
        assert!(started.elapsed() >= Duration::from_millis(500));
    }
    // A complete request on a new connection is still served.
    let response = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Sends one keep-alive GET and returns the first bytes of the answer.
async fn get_healthz(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
}

async fn read_some(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_wait_until_one_closes() {
    let app = sqlite_app(|s| s.server.max_connections = 2).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        get_healthz(&mut stream).await;
        let answer = read_some(&mut stream, Duration::from_secs(10)).await;
        assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
        open.push(stream);
    }
    // The third waits in the backlog while two are open...
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    get_healthz(&mut third).await;
    assert_eq!(read_some(&mut third, Duration::from_secs(1)).await, None);
    // ...and is served once one closes.
    drop(open.remove(0));
    let answer = read_some(&mut third, Duration::from_secs(10)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
}
