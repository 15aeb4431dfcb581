//! The audit trail: one row per attempt with the true reason and client address,
//! never a password; pruned after the retention period.

use std::time::{Duration, Instant};

use hr_bridge::db::Backend;
use sqlx::Connection;

use crate::authenticate::{add_employee, argon2id};
use crate::helpers::{
    fail_message, json_body, url_socket_addr, Proxy, TestApp, OMFLOW_PASSWORD, OMFLOW_USER,
};
use crate::on_all_backends;

const SECRET: &str = "Sup3r-Secret-Pa55";

on_all_backends!(
    audit_records_every_outcome_without_passwords,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 2;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id(SECRET)), true).await;
        add_employee(&app, "ex", Some(&argon2id(SECRET)), false).await;
        add_employee(&app, "nohash", None, true).await;
        add_employee(&app, "bob", Some(&argon2id(SECRET)), true).await;
        app.post_authenticate("alice", SECRET).await;
        app.post_authenticate("ghost", SECRET).await;
        app.post_authenticate("ex", SECRET).await;
        app.post_authenticate("nohash", SECRET).await;
        for _ in 0..3 {
            app.post_authenticate("bob", &format!("{SECRET}!")).await;
        }
        let audit = app.audit().await;
        let summary: Vec<(&str, &str, &str)> = audit
            .iter()
            .map(|(u, o, r, _)| (u.as_str(), o.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("alice", "success", "success"),
                ("ghost", "failure", "unknown_user"),
                ("ex", "failure", "inactive"),
                ("nohash", "failure", "no_hash"),
                ("bob", "failure", "bad_password"),
                ("bob", "failure", "bad_password"),
                ("bob", "failure", "locked"),
            ]
        );
        assert!(audit.iter().all(|r| r.3.as_deref() == Some("127.0.0.1")));
        let everything = app
            .rows("SELECT occurred_at, username, outcome, reason, client_addr FROM auth_audit")
            .await;
        let dump = format!("{everything:?}");
        assert!(!dump.contains(SECRET), "a password reached the audit table");
    }
);

on_all_backends!(
    forwarded_for_is_believed_only_from_trusted_proxies,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        let mut app = db.spawn_with(settings.clone()).await;
        let mut untrusting = settings;
        untrusting.auth.trusted_proxies = vec![];
        let direct = app.spawn_sibling(untrusting).await;
        for base in [app.base_url.clone(), direct] {
            app.client
                .post(format!("{base}/authenticate"))
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .header("x-forwarded-for", "198.51.100.23, 127.0.0.1")
                .json(&serde_json::json!({"username": "ghost", "password": "x"}))
                .send()
                .await
                .unwrap();
        }
        let clients: Vec<Option<String>> = app.audit().await.into_iter().map(|r| r.3).collect();
        assert_eq!(
            clients,
            [
                Some("198.51.100.23".to_owned()),
                Some("127.0.0.1".to_owned())
            ]
        );
    }
);

on_all_backends!(
    forwarded_hops_with_ports_are_read_and_an_unreadable_hop_is_not_skipped,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.trusted_proxies = vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let app = db.spawn_with(settings).await;
        // The first hop of each is what a client wrote itself; the proxies (the
        // trusted 10.1.2.3 and the peer) appended the rest.
        for xff in [
            "198.51.100.23, 203.0.113.9:51234",
            "198.51.100.23, [2001:db8::7]:443, 10.1.2.3:8080",
            "198.51.100.23, unknown, 10.1.2.3",
        ] {
            app.client
                .post(format!("{}/authenticate", app.base_url))
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .header("x-forwarded-for", xff)
                .json(&serde_json::json!({"username": "ghost", "password": "x"}))
                .send()
                .await
                .unwrap();
        }
        let clients: Vec<Option<String>> = app.audit().await.into_iter().map(|r| r.3).collect();
        assert_eq!(
            clients,
            [
                Some("203.0.113.9".to_owned()),
                Some("2001:db8::7".to_owned()),
                // The proxy that wrote the hop nobody can read.
                Some("10.1.2.3".to_owned()),
            ]
        );
    }
);

on_all_backends!(
    audit_rows_past_retention_are_pruned,
    |db: TestDb| async move {
        let app = db.spawn().await;
        app.exec(
            "INSERT INTO auth_audit (occurred_at, username, outcome, reason, client_addr) \
         VALUES ('2020-01-01T00:00:00.000Z', 'old', 'failure', 'bad_password', NULL)",
        )
        .await;
        app.post_authenticate("recent", "x").await;
        let removed = hr_bridge::password::prune_auth_state(&app.db, 90, Duration::from_secs(900))
            .await
            .unwrap();
        assert_eq!(removed, 1);
        let users: Vec<String> = app.audit().await.into_iter().map(|r| r.0).collect();
        assert_eq!(users, ["recent"]);
    }
);

/// Another session holding what the next `INSERT INTO auth_audit` waits for, as a
/// DBA's maintenance or a backup tool would: PostgreSQL `LOCK TABLE … IN ACCESS
/// EXCLUSIVE MODE`, MariaDB `LOCK TABLES … WRITE` (the insert waits for the
/// table's metadata lock), SQLite a write transaction (`BEGIN IMMEDIATE`), which
/// stops every writer.
pub(crate) enum HeldLock {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl HeldLock {
    /// Locks `tables` (SQLite: the whole file) on a direct connection.
    pub(crate) async fn hold(app: &TestApp, tables: &[&str]) -> Self {
        let url = &app.test_db.url;
        let list = tables.join(", ");
        match app.backend() {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(&format!(
                    "BEGIN; LOCK TABLE {list} IN ACCESS EXCLUSIVE MODE"
                ))
                .execute(&mut conn)
                .await
                .unwrap();
                Self::Postgres(conn)
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(url).await.unwrap();
                let list: Vec<String> = tables.iter().map(|t| format!("{t} WRITE")).collect();
                sqlx::raw_sql(&format!("LOCK TABLES {}", list.join(", ")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Self::MySql(conn)
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Self::Sqlite(conn)
            }
        }
    }

    pub(crate) async fn release(self) {
        match self {
            Self::Postgres(mut conn) => {
                sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Self::MySql(mut conn) => {
                sqlx::raw_sql("UNLOCK TABLES")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
            Self::Sqlite(mut conn) => {
                sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

/// Sessions waiting for a table lock right now with a statement `LIKE query`.
async fn sessions_waiting(app: &TestApp, query: &str) -> usize {
    let sql = match app.backend() {
        Backend::Postgres => format!(
            "SELECT COUNT(*)::text FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE '{query}'"
        ),
        Backend::MySql => format!(
            "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.PROCESSLIST \
             WHERE DB = DATABASE() AND STATE LIKE 'Waiting for table metadata lock' \
             AND INFO LIKE '{query}'"
        ),
        Backend::Sqlite => unreachable!("SQLite has no sessions to look at"),
    };
    let rows = app.rows(&sql).await;
    rows[0][0].as_deref().unwrap_or("0").parse().unwrap()
}

/// Sessions whose `INSERT INTO auth_audit` waits for a lock right now.
async fn audit_inserts_waiting(app: &TestApp) -> usize {
    sessions_waiting(app, "INSERT INTO auth_audit%").await
}

/// Sessions whose credentials lookup waits for a lock on `employees`.
async fn lookups_waiting(app: &TestApp) -> usize {
    sessions_waiting(app, "SELECT%employees%").await
}

async fn busy_rows(app: &TestApp) -> usize {
    app.audit().await.iter().filter(|r| r.2 == "busy").count()
}

/// Resolves once `condition` holds, polling a database-side state that has no
/// notification; panics after `within`.
async fn until<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn failures_of(app: &TestApp, username: &str) -> i64 {
    let rows = app
        .rows(&format!(
            "SELECT CAST(failures AS CHAR(20)) FROM auth_lockouts WHERE username = '{username}'"
        ))
        .await;
    rows.first()
        .and_then(|r| r[0].as_deref())
        .map_or(0, |n| n.trim().parse().unwrap())
}

on_all_backends!(
    a_login_is_answered_503_while_its_audit_row_cannot_be_written,
    |db: TestDb| async move {
        let sqlite = db.backend == Backend::Sqlite;
        let mut settings = db.settings();
        settings.server.request_timeout_secs = 10;
        settings.database.statement_timeout_secs = Some(1);
        // SQLite's writer lock also stops the lockout counter, which would answer
        // 503 before any check; without lockouts the audit row is the only write.
        settings.auth.max_failures = if sqlite { 0 } else { 3 };
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id(SECRET)), true).await;
        add_employee(&app, "ex", Some(&argon2id(SECRET)), false).await;
        if !sqlite {
            for _ in 0..2 {
                let body = json_body(app.post_authenticate("alice", "wrong").await).await;
                assert_eq!(body["status"], "fail");
            }
        }
        let before = app.audit().await;

        // Locked past the statement timeout: every answer, the right password's
        // included, is the same 503, and none of them is a success.
        let lock = HeldLock::hold(&app, &["auth_audit"]).await;
        let mut messages = Vec::new();
        for (username, password) in [
            ("alice", SECRET),
            ("alice", "wrong"),
            ("ghost", SECRET),
            ("ex", SECRET),
        ] {
            let response = app.post_authenticate(username, password).await;
            assert_eq!(response.status(), 503, "{username}/{password}");
            assert_eq!(response.headers()["retry-after"], "5");
            messages.push(fail_message(response).await);
        }
        assert!(messages.iter().all(|m| m == &messages[0]), "{messages:?}");
        assert!(messages[0].contains("audit trail"), "{}", messages[0]);
        lock.release().await;

        // Nothing answered 503 shows up later, and the trail is as it was.
        assert_eq!(app.audit().await, before);
        // None of them counted: two failures of three allowed, the right
        // password still gets in (it would be locked had the 503s counted).
        let body = json_body(app.post_authenticate("alice", SECRET).await).await;
        assert_eq!(body["status"], "success", "{body}");
        let audit = app.audit().await;
        assert_eq!(audit.len(), before.len() + 1);
        assert_eq!(audit.last().map(|r| r.2.as_str()), Some("success"));
    }
);

on_all_backends!(
    a_login_whose_database_goes_away_before_its_audit_row_is_answered_503,
    |db: TestDb| async move {
        if db.backend == Backend::Sqlite {
            return; // an embedded file cannot become unreachable
        }
        let proxy = Proxy::start(url_socket_addr(&db.url)).await;
        let mut settings = db.settings_through(&proxy);
        settings.server.request_timeout_secs = 30;
        settings.database.statement_timeout_secs = Some(20);
        settings.auth.max_failures = 3;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id(SECRET)), true).await;
        for _ in 0..2 {
            let body = json_body(app.post_authenticate("alice", "wrong").await).await;
            assert_eq!(body["status"], "fail");
        }
        let before = app.audit().await;

        // The right password is checked and counted; its audit row waits behind a
        // lock, and then the database goes away under it.
        let lock = HeldLock::hold(&app, &["auth_audit"]).await;
        let login = {
            let (client, url) = (app.client.clone(), format!("{}/authenticate", app.base_url));
            tokio::spawn(async move {
                client
                    .post(url)
                    .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                    .json(&serde_json::json!({"username": "alice", "password": SECRET}))
                    .send()
                    .await
                    .unwrap()
            })
        };
        until(
            "the login's audit row to wait for the lock",
            Duration::from_secs(15),
            || {
                let app = &app;
                async move { audit_inserts_waiting(app).await == 1 }
            },
        )
        .await;
        proxy.cut();
        let response = login.await.unwrap();
        assert_eq!(response.status(), 503);
        assert!(fail_message(response).await.contains("audit trail"));
        lock.release().await;
        assert_eq!(app.audit().await, before, "a row appeared after the outage");

        // Back up: the refused attempt is taken back (in the background, as the
        // database was away), then the right password gets in and is recorded.
        proxy.restore();
        until(
            "the refused attempt to be taken back",
            Duration::from_secs(30),
            || {
                let app = &app;
                async move { failures_of(app, "alice").await == 2 }
            },
        )
        .await;
        let mut answered = None;
        for _ in 0..20 {
            let response = app.post_authenticate("alice", SECRET).await;
            if response.status() == 200 {
                answered = Some(json_body(response).await["status"].clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(answered, Some(serde_json::json!("success")));
        let audit = app.audit().await;
        assert_eq!(audit.len(), before.len() + 1, "{audit:?}");
        assert_eq!(audit.last().map(|r| r.2.as_str()), Some("success"));
    }
);

on_all_backends!(busy_answers_are_audited, |db: TestDb| async move {
    let mut settings = db.settings();
    settings.auth.max_concurrent_checks = 1;
    settings.auth.max_queued_checks = 0;
    let app = db.spawn_with(settings).await;
    add_employee(&app, "alice", Some(&argon2id(SECRET)), true).await;
    let requests = (0..24).map(|_| app.post_authenticate("alice", "wrong"));
    let mut busy = 0;
    for response in futures_util::future::join_all(requests).await {
        if response.status() == 503 {
            assert!(fail_message(response)
                .await
                .contains("too many password checks"));
            busy += 1;
        }
    }
    assert!(busy > 0, "no request was turned away");
    // Busy rows are written in the background, so that a busy answer costs no
    // database work on its way out.
    until("the busy rows", Duration::from_secs(10), || {
        let app = &app;
        async move {
            let audit = app.audit().await;
            audit.iter().filter(|r| r.2 == "busy").count() >= busy
        }
    })
    .await;
    let audit = app.audit().await;
    let rows: Vec<_> = audit.iter().filter(|r| r.2 == "busy").collect();
    assert_eq!(rows.len(), busy, "{audit:?}");
    for (username, outcome, _, client) in rows {
        assert_eq!(
            (username.as_str(), outcome.as_str(), client.as_deref()),
            ("alice", "failure", Some("127.0.0.1"))
        );
    }
    assert_eq!(audit.len(), 24, "one row per request: {audit:?}");
});

on_all_backends!(
    a_flood_of_busy_answers_costs_one_statement_at_a_time_and_bounded_rows,
    |db: TestDb| async move {
        if db.backend == Backend::Sqlite {
            return; // sessions waiting on a lock are visible on the servers only
        }
        let mut settings = db.settings();
        settings.auth.max_concurrent_checks = 1;
        settings.auth.max_queued_checks = 0;
        settings.server.request_timeout_secs = 60;
        settings.database.statement_timeout_secs = Some(50);
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id(SECRET)), true).await;
        // One login holds the only hashing place (its lookup waits on the
        // employees table) so that everything after it is busy, while the busy
        // rows' writer waits on the audit table.
        let lock = HeldLock::hold(&app, &["auth_audit", "employees"]).await;
        let first = {
            let (client, url) = (app.client.clone(), format!("{}/authenticate", app.base_url));
            tokio::spawn(async move {
                client
                    .post(url)
                    .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                    .json(&serde_json::json!({"username": "alice", "password": "x"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        };
        let flood = hr_bridge::password::MAX_WAITING_BUSY_ROWS + 2 * hr_bridge::db::MAX_AUDIT_BATCH;
        until(
            "the first login to wait for the lock",
            Duration::from_secs(15),
            || {
                let app = &app;
                async move { lookups_waiting(app).await == 1 }
            },
        )
        .await;
        use futures_util::StreamExt;
        let statuses: Vec<u16> = futures_util::stream::iter(0..flood)
            .map(|_| async { app.post_authenticate("ghost", "x").await.status().as_u16() })
            .buffer_unordered(32)
            .collect()
            .await;
        assert!(statuses.iter().all(|s| *s == 503), "not all busy");
        let busy = statuses.len();
        assert_eq!(audit_inserts_waiting(&app).await, 1, "one writer at a time");
        lock.release().await;
        first.await.unwrap();

        let max_rows = hr_bridge::password::MAX_WAITING_BUSY_ROWS + hr_bridge::db::MAX_AUDIT_BATCH;
        until("the queued busy rows", Duration::from_secs(30), || {
            let app = &app;
            async move { busy_rows(app).await >= hr_bridge::password::MAX_WAITING_BUSY_ROWS }
        })
        .await;
        let written = busy_rows(&app).await;
        assert!(
            written <= max_rows,
            "{written} rows for a queue of {max_rows}"
        );
        assert!(
            written < busy,
            "a flood beyond the queue is not all written"
        );
    }
);

on_all_backends!(
    attempts_answered_503_are_never_counted,
    |db: TestDb| async move {
        let mut settings = db.settings();
        // One hashing slot and slow hashes: the last of a burst wait past the
        // request's deadline, after they were counted.
        settings.auth.max_concurrent_checks = 1;
        settings.auth.max_queued_checks = 32;
        settings.auth.max_failures = 100;
        settings.server.request_timeout_secs = 2;
        settings.database.statement_timeout_secs = Some(1);
        let app = db.spawn_with(settings).await;
        add_employee(&app, "slow", Some(crate::timing::BCRYPT_12.0), true).await;
        let requests = (0..16).map(|_| app.post_authenticate("slow", "wrong"));
        let mut failed = 0;
        let mut refused = 0;
        for response in futures_util::future::join_all(requests).await {
            match response.status().as_u16() {
                200 => failed += 1,
                503 => refused += 1,
                other => panic!("unexpected status {other}"),
            }
        }
        assert!(refused > 0, "no attempt ran past the deadline");
        assert_eq!(failures_of(&app, "slow").await, failed);
    }
);
