//! A database that refuses connections (not accepting them, no such database,
//! access denied, cannot open the file) is an outage: 503 with the envelope and
//! `Retry-After`, never a 500.
//!
//! The server starts as `serve` does, so a database refusing from the start
//! keeps the start-up gate closed (503 "waiting for the database"); the refusal
//! itself is an outage to the pool (`DbError::Unavailable`), which a request
//! answers 503 "database unavailable" (tests/api/health.rs plays that outage
//! through HTTP with a proxy).

use hr_bridge::db::{Backend, DbError};
use sqlx::Connection;

use crate::helpers::{fail_message, TestDb};
use crate::on_all_backends;

/// A URL on the same server whose connections the server refuses.
async fn refusing_url(db: &TestDb) -> Vec<String> {
    let (base, name) = db.url.rsplit_once('/').expect("database URL has a path");
    match db.backend {
        Backend::Postgres => {
            let admin = format!("{base}/test");
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                .execute(&mut conn)
                .await
                .unwrap();
            vec![db.url.clone(), format!("{base}/{name}_missing")]
        }
        Backend::MySql => {
            let (scheme, rest) = base.split_once("://").expect("scheme");
            let host = rest.rsplit('@').next().expect("host");
            vec![
                format!("{base}/{name}_missing"),
                format!("{scheme}://hrb_no_such_user@{host}/{name}"),
            ]
        }
        Backend::Sqlite => vec!["sqlite:///nonexistent-hrb-dir/hr.db?mode=rwc".to_owned()],
    }
}

on_all_backends!(
    a_database_refusing_connections_gives_503_not_500,
    |db: TestDb| async move {
        for url in refusing_url(&db).await {
            let mut settings = db.settings();
            settings.database.url = secrecy::SecretString::from(url.clone());
            settings.database.auto_migrate = false;
            let server = crate::helpers::start(settings).await;
            assert!(
                matches!(server.db().is_ready().await, Err(DbError::Unavailable(_))),
                "{url}: the refusal is not an outage"
            );
            let client = reqwest::Client::new();
            for (path, body) in [
                ("/sync", "{}"),
                ("/authenticate", r#"{"username":"a","password":"b"}"#),
            ] {
                let response = client
                    .post(format!("{}{path}", server.base_url()))
                    .basic_auth(
                        crate::helpers::OMFLOW_USER,
                        Some(crate::helpers::OMFLOW_PASSWORD),
                    )
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 503, "{path} with {url}");
                assert!(response.headers().contains_key("retry-after"), "{path}");
                assert_eq!(
                    fail_message(response).await,
                    "waiting for the database at start-up; retry shortly"
                );
            }
            let ready = client
                .get(format!("{}/readyz", server.base_url()))
                .send()
                .await
                .unwrap();
            assert_eq!(ready.status(), 503);
            server
                .shutdown(std::time::Duration::from_secs(5))
                .await
                .unwrap();
        }
    }
);
