//! A database that refuses connections (not accepting them, no such database,
//! access denied, cannot open the file) is an outage: 503 with the envelope and
//! `Retry-After`, never a 500.

use hr_bridge::db::Backend;
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
            let state_db =
                hr_bridge::db::Db::connect_lazy(&settings.database.url, &settings.pool_settings())
                    .unwrap();
            let state = hr_bridge::server::build_state(&settings, state_db)
                .await
                .unwrap();
            let server = hr_bridge::server::RunningServer::start(&settings, state)
                .await
                .unwrap();
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
                assert_eq!(fail_message(response).await, "database unavailable");
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
