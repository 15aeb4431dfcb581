//! `/sync` against HR data typed wrong and against many callers at once: bad
//! `active` values and invalid UTF-8 are refused by name (never a silent drop or a
//! 500), and concurrent calls share one build.

use crate::helpers::{fail_message, TestApp};
use crate::on_all_backends;
use crate::sync::seed_basic;
use hr_bridge::db::Backend;

/// Writes `active = <value>` for `username` past the schema's own checks, as an
/// old table or a hand-edited one may hold it.
async fn force_active(app: &TestApp, username: &str, value: &str) {
    let sql = match app.backend() {
        // As a database from before the triggers of migration 0005 may hold it.
        Backend::Sqlite => format!(
            "DROP TRIGGER IF EXISTS employees_active_is_boolean_update; \
             UPDATE employees SET active = {value} WHERE username = '{username}';"
        ),
        Backend::MySql => format!(
            "SET SESSION check_constraint_checks = 0; \
             UPDATE employees SET active = {value} WHERE username = '{username}'; \
             SET SESSION check_constraint_checks = 1;"
        ),
        Backend::Postgres => unreachable!("PostgreSQL booleans hold only true and false"),
    };
    app.exec(&sql).await;
}

on_all_backends!(
    sync_names_an_active_value_that_is_neither_true_nor_false,
    |db: TestDb| async move {
        if db.backend == Backend::Postgres {
            // A PostgreSQL boolean column cannot hold anything else.
            return;
        }
        let app = db.spawn().await;
        seed_basic(&app).await;
        let value = if app.backend() == Backend::Sqlite {
            "'true'"
        } else {
            "2"
        };
        force_active(&app, "zoe", value).await;
        let check = check_output(&app);
        assert!(!check.status.success(), "check must exit non-zero");
        let listed = String::from_utf8_lossy(&check.stdout);
        assert!(listed.contains("employee \"zoe\": active is"), "{listed}");
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(message.contains("employee \"zoe\": active is"), "{message}");
        assert!(message.contains("neither true nor false"), "{message}");
        // Nothing was recorded: fixing the row makes the next sync serve zoe.
        force_active(&app, "zoe", "1").await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("json");
        assert!(body["user_info_list"]
            .as_array()
            .expect("users")
            .iter()
            .any(|u| u["username"] == "zoe"));
    }
);

on_all_backends!(sync_names_text_that_is_not_utf8, |db: TestDb| async move {
    if db.backend != Backend::Sqlite {
        // PostgreSQL and MariaDB refuse invalid UTF-8 on the way in.
        return;
    }
    let app = db.spawn().await;
    seed_basic(&app).await;
    app.exec("UPDATE employees SET phone1 = CAST(x'41ff42' AS TEXT) WHERE username = 'adam'")
        .await;
    let response = app.post_sync().await;
    assert_eq!(response.status(), 409);
    let message = fail_message(response).await;
    assert!(
        message.contains("employee \"adam\": phone1 is not valid UTF-8"),
        "{message}"
    );
    let check = check_output(&app);
    assert!(!check.status.success(), "check must exit non-zero");
    let listed = String::from_utf8_lossy(&check.stdout);
    assert!(
        listed.contains("employee \"adam\": phone1 is not valid UTF-8"),
        "{listed}"
    );
    app.exec("UPDATE departments SET display_name = CAST(x'c3' AS TEXT) WHERE group_no = 'ENG'")
        .await;
    let message = fail_message(app.post_sync().await).await;
    assert!(
        message.contains("department \"ENG\": display_name is not valid UTF-8"),
        "{message}"
    );
});

on_all_backends!(concurrent_syncs_share_one_build, |db: TestDb| async move {
    let app = db.spawn().await;
    seed_basic(&app).await;
    let first = app.post_sync().await;
    assert_eq!(first.status(), 200);
    let expected = first.bytes().await.expect("body");
    // Hold a lock that makes the next build wait, so that every caller below
    // arrives while it is in progress. (SQLite readers in WAL mode never wait
    // for a writer, so there only the answers are compared.)
    let lock = match app.backend() {
        Backend::Sqlite => None,
        _ => Some(hold_directory_lock(&app).await),
    };
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.base_url.clone());
            tokio::spawn(async move {
                let response = client
                    .post(format!("{url}/sync"))
                    .basic_auth(
                        crate::helpers::OMFLOW_USER,
                        Some(crate::helpers::OMFLOW_PASSWORD),
                    )
                    .send()
                    .await
                    .expect("sent");
                (response.status(), response.bytes().await.expect("body"))
            })
        })
        .collect();
    let mut waiting = 0;
    if let Some(lock) = lock {
        // Wait until every caller has arrived (the build they wait for is stuck on
        // the lock), then count the connections waiting: one shared build means
        // one waiter, whatever the number of callers.
        crate::metrics::wait_for_gauge(&app, "hr_bridge_sync_calls_in_flight", 20.0).await;
        // The callers are in; the build may not have reached the lock yet: wait
        // until something waits on it, then look again a moment later, so that a
        // second build starting late would be counted too.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while waiting == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            waiting = waiters(&app).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        waiting = waiting.max(waiters(&app).await);
        lock.release().await;
    }
    for call in calls {
        let (status, body) = call.await.expect("joined");
        assert_eq!(status, 200);
        assert_eq!(body, expected);
    }
    if app.backend() != Backend::Sqlite {
        assert_eq!(
            waiting, 1,
            "20 concurrent /sync calls should share one build (one reader waiting on the lock)"
        );
    }
});

/// Connections of this test's database waiting for a table lock.
async fn waiters(app: &TestApp) -> i64 {
    let name = app
        .test_db
        .url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let sql = match app.backend() {
        Backend::Postgres => format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM pg_stat_activity \
             WHERE datname = '{name}' AND wait_event_type = 'Lock'"
        ),
        _ => format!(
            "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.PROCESSLIST \
             WHERE DB = '{name}' AND STATE LIKE 'Waiting for table%'"
        ),
    };
    app.rows(&sql).await[0][0]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}

/// A transaction in another connection that blocks readers of `employees`, held
/// on its own thread until released.
struct DirectoryLock {
    release: std::sync::mpsc::Sender<()>,
    done: std::thread::JoinHandle<()>,
}

impl DirectoryLock {
    async fn release(self) {
        let _ = self.release.send(());
        tokio::task::spawn_blocking(move || self.done.join().expect("lock thread"))
            .await
            .expect("joined");
    }
}

async fn hold_directory_lock(app: &TestApp) -> DirectoryLock {
    use sqlx::Connection;
    let url = app.test_db.url.clone();
    let backend = app.backend();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let (lock, unlock) = match backend {
                Backend::Postgres => (
                    "BEGIN; LOCK TABLE employees IN ACCESS EXCLUSIVE MODE",
                    "COMMIT",
                ),
                Backend::MySql => ("LOCK TABLES employees WRITE", "UNLOCK TABLES"),
                Backend::Sqlite => unreachable!("not used on SQLite"),
            };
            macro_rules! hold {
                ($conn:ty) => {{
                    let mut conn = <$conn>::connect(&url).await.expect("connect");
                    sqlx::raw_sql(lock).execute(&mut conn).await.expect("lock");
                    let _ = locked.send(());
                    let _ = released.recv();
                    sqlx::raw_sql(unlock)
                        .execute(&mut conn)
                        .await
                        .expect("unlock");
                }};
            }
            match backend {
                Backend::Postgres => hold!(sqlx::PgConnection),
                _ => hold!(sqlx::MySqlConnection),
            }
        });
    });
    is_locked.await.expect("locked");
    DirectoryLock { release, done }
}

/// `hr-bridge check` run by the real binary over the app's database.
fn check_output(app: &TestApp) -> std::process::Output {
    crate::helpers::binary()
        .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
        .arg("check")
        .output()
        .expect("hr-bridge check runs")
}

on_all_backends!(
    cells_of_many_megabytes_are_served_whole,
    |db: TestDb| async move {
        // MariaDB's columns here are VARCHAR(255): no cell can be that large.
        if db.backend == Backend::MySql {
            return;
        }
        let app = db.spawn().await;
        // 9 MB a name: three of them overflow one read batch's text budget, so
        // the rows arrive in two batches.
        const LEN: usize = 9_000_000;
        let big = match app.backend() {
            Backend::Sqlite => format!("hex(zeroblob({}))", LEN / 2),
            _ => format!("repeat('0', {LEN})"),
        };
        for name in ["big1", "big2", "big3"] {
            app.exec(&format!(
                "INSERT INTO employees (username, email, nick_name, active) \
                 VALUES ('{name}', '{name}@example.com', {big}, TRUE)"
            ))
            .await;
        }
        let response = app.post_sync().await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        let users = body["user_info_list"].as_array().unwrap();
        assert_eq!(users.len(), 3);
        for (user, name) in users.iter().zip(["big1", "big2", "big3"]) {
            assert_eq!(user["username"], name);
            let nick = user["nick_name"].as_str().unwrap();
            assert_eq!(nick.len(), LEN);
            assert!(nick.bytes().all(|b| b == b'0'));
        }
    }
);
