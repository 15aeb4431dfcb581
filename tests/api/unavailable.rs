//! A database that refuses connections (not accepting them, no such database,
//! access denied, cannot open the file) is an outage: 503 with the envelope and
//! `Retry-After`, never a 500.
//!
//! The server starts as `serve` does, so a database refusing from the start
//! keeps the start-up gate closed (503 "waiting for the database"), and the
//! refusal is an outage to the pool (`DbError::Unavailable`); a database that
//! starts refusing while the server runs (PostgreSQL: no longer accepting
//! connections; MariaDB: access denied) is answered 503 "database unavailable".

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

/// Makes the server refuse new connections to `db` and cuts the open ones:
/// PostgreSQL stops accepting connections to the database; MariaDB drops the
/// user `user` the application logs in as. `None` for SQLite, whose open file
/// cannot start refusing.
async fn start_refusing(db: &TestDb, user: Option<&str>) -> Option<()> {
    let (base, name) = db.url.rsplit_once('/').expect("database URL has a path");
    match db.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&format!("{base}/test"))
                .await
                .unwrap();
            sqlx::raw_sql(&format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .execute(&mut conn)
            .await
            .unwrap();
        }
        Backend::MySql => {
            let user = user.expect("a user of its own");
            let mut conn = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(&format!("DROP USER '{user}'@'%'"))
                .execute(&mut conn)
                .await
                .unwrap();
            let ids: Vec<i64> =
                sqlx::query_scalar("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?")
                    .bind(user)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            for id in ids {
                // A connection may have gone already.
                let _ = sqlx::raw_sql(&format!("KILL {id}"))
                    .execute(&mut conn)
                    .await;
            }
        }
        Backend::Sqlite => return None,
    }
    Some(())
}

on_all_backends!(
    a_database_that_starts_refusing_while_serving_gives_503_not_500,
    |db: TestDb| async move {
        let mut settings = db.settings();
        // MariaDB: a user of its own, which the test can then take away.
        let user = format!("hrb_u_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        if db.backend == Backend::MySql {
            let (base, name) = db.url.rsplit_once('/').expect("database URL has a path");
            let mut conn = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(&format!(
                "CREATE USER '{user}'@'%' IDENTIFIED BY 'u-pass'; \
                 GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'%'"
            ))
            .execute(&mut conn)
            .await
            .unwrap();
            let (scheme, rest) = base.split_once("://").expect("scheme");
            let host = rest.rsplit('@').next().expect("host");
            settings.database.url =
                secrecy::SecretString::from(format!("{scheme}://{user}:u-pass@{host}/{name}"));
        }
        let app = db.spawn_with(settings).await;
        assert_eq!(app.post_sync().await.status(), 200);
        if start_refusing(&app.test_db, Some(&user)).await.is_none() {
            return;
        }
        for response in [app.post_sync().await, app.post_authenticate("a", "b").await] {
            assert_eq!(response.status(), 503);
            assert!(response.headers().contains_key("retry-after"));
            assert_eq!(fail_message(response).await, "database unavailable");
        }
        let ready = app
            .client
            .get(format!("{}/readyz", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 503);
        assert_eq!(fail_message(ready).await, "database unavailable");
    }
);
