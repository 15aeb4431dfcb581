//! The schema HR staff edit refuses values that `/sync` would misread.

use hr_bridge::db::{Backend, Db, PoolSettings};
use std::time::Duration;

use crate::on_all_backends;

/// Statements HR staff might run that must fail, per backend. PostgreSQL's boolean
/// reads `'true'` as true, so only a number is wrong there; MySQL in strict mode
/// already refused the text, not the number.
fn bad_writes(backend: Backend) -> Vec<&'static str> {
    let mut writes = vec![
        "INSERT INTO employees (username, email, nick_name, active) VALUES ('n2', 'n2@e.com', 'N', 2)",
        "UPDATE employees SET active = 2 WHERE username = 'ok'",
        "INSERT INTO departments (group_no, display_name, active) VALUES ('D2', 'D', 2)",
        "UPDATE departments SET active = 2 WHERE group_no = 'OK'",
    ];
    if backend != Backend::Postgres {
        writes.extend([
            "INSERT INTO employees (username, email, nick_name, active) VALUES ('nt', 'nt@e.com', 'N', 'true')",
            "UPDATE employees SET active = 'true' WHERE username = 'ok'",
            "INSERT INTO departments (group_no, display_name, active) VALUES ('DT', 'D', 'true')",
            "UPDATE departments SET active = 'yes' WHERE group_no = 'OK'",
        ]);
    }
    writes
}

on_all_backends!(
    schema_refuses_active_values_that_are_not_booleans,
    |db: TestDb| async move {
        let app = db.spawn().await;
        app.exec(
            "INSERT INTO employees (username, email, nick_name, active) VALUES ('ok', 'ok@e.com', 'Ok', TRUE);
             INSERT INTO employees (username, email, nick_name) VALUES ('dflt', 'dflt@e.com', 'Default');
             INSERT INTO departments (group_no, display_name, active) VALUES ('OK', 'Ok', FALSE);
             UPDATE employees SET active = FALSE WHERE username = 'ok';
             UPDATE employees SET active = TRUE WHERE username = 'ok';
             UPDATE employees SET nick_name = 'Renamed' WHERE username = 'ok';",
        )
        .await;
        for sql in bad_writes(app.backend()) {
            assert!(
                app.db.execute_script(sql).await.is_err(),
                "{} accepted: {sql}",
                app.backend().name()
            );
        }
        let body = crate::helpers::json_body(app.post_sync().await).await;
        assert_eq!(
            body["user_info_list"].as_array().map(Vec::len),
            Some(2),
            "{body}"
        );
    }
);

/// A pool of the test database for stepping through migrations by hand.
pub fn upgrade_pool(settings: &hr_bridge::config::Settings) -> Db {
    Db::connect_lazy(
        &settings.database.url,
        &PoolSettings {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: None,
            read_only: false,
        },
    )
    .unwrap()
}

/// Every migration file of `backend`, of both sets.
fn release_migrations(backend: Backend) -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend.name());
    let mut files = Vec::new();
    for set in ["directory", "state"] {
        for entry in std::fs::read_dir(root.join(set)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    files
}

/// Applies only the migrations numbered below `version`, all from one folder
/// into one `_sqlx_migrations`, as an older release did.
pub async fn migrate_below(db: &Db, backend: Backend, version: i64) {
    let older = tempfile::tempdir().unwrap();
    for path in release_migrations(backend) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let number: i64 = name.split('_').next().unwrap().parse().unwrap();
        if number < version {
            std::fs::copy(&path, older.path().join(&name)).unwrap();
        }
    }
    // One folder, as releases before the directory/state split shipped them.
    let migrator = sqlx::migrate::Migrator::new(older.path()).await.unwrap();
    match db {
        Db::Postgres(pool) => migrator.run(pool).await.unwrap(),
        Db::MySql(pool) => migrator.run(pool).await.unwrap(),
        Db::Sqlite(pool) => migrator.run(pool).await.unwrap(),
    }
}

on_all_backends!(
    upgrading_keeps_rows_whose_active_is_not_a_boolean,
    |db: TestDb| async move {
        let backend = db.backend;
        let settings = db.settings();
        let settings_url = db.url.clone();
        let pool = upgrade_pool(&settings);
        migrate_below(&pool, backend, 5).await;
        let bad = match backend {
            Backend::Postgres => "FALSE",
            Backend::MySql => "2",
            Backend::Sqlite => "'true'",
        };
        pool.execute_script(&format!(
            "INSERT INTO employees (username, email, nick_name, active) VALUES ('odd', 'odd@e.com', 'Odd', {bad});
             INSERT INTO departments (group_no, display_name, active) VALUES ('ODD', 'Odd', {bad});"
        ))
        .await
        .unwrap();

        pool.migrate()
            .await
            .expect("existing rows never make the upgrade fail");

        // SQLite keeps the text for /sync and `check` to report; MySQL, which
        // served any non-zero value as active, stores it as 1 (TRUE).
        let stored = match backend {
            Backend::Postgres => "0",
            Backend::MySql => "1",
            Backend::Sqlite => "true",
        };
        for table in ["employees", "departments"] {
            let sql = match backend {
                Backend::Postgres => {
                    format!("SELECT CASE WHEN active THEN '1' ELSE '0' END FROM {table}")
                }
                Backend::MySql => format!("SELECT CAST(active AS CHAR) FROM {table}"),
                Backend::Sqlite => format!("SELECT CAST(active AS TEXT) FROM {table}"),
            };
            let values: Vec<String> = match &pool {
                Db::Postgres(p) => sqlx::query_scalar(&sql).fetch_all(p).await,
                Db::MySql(p) => sqlx::query_scalar(&sql).fetch_all(p).await,
                Db::Sqlite(p) => sqlx::query_scalar(&sql).fetch_all(p).await,
            }
            .unwrap();
            assert_eq!(values, [stored], "{table}");
        }
        // HR can repair the rows: with a real boolean, or by importing them.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("employees.csv"),
            "username,email,nick_name,active\nodd,odd@e.com,Odd,true\n",
        )
        .unwrap();
        let import = crate::helpers::binary()
            .env("HR_BRIDGE__DATABASE__URL", &settings_url)
            .args(["import", "--employees"])
            .arg(dir.path().join("employees.csv"))
            .output()
            .unwrap();
        assert!(
            import.status.success(),
            "{}",
            String::from_utf8_lossy(&import.stderr)
        );
        pool.execute_script("UPDATE departments SET active = TRUE WHERE group_no = 'ODD';")
            .await
            .expect("a boolean repairs the row");
        let active: Vec<String> = match &pool {
            Db::Postgres(p) => {
                sqlx::query_scalar("SELECT CAST(active AS TEXT) FROM employees")
                    .fetch_all(p)
                    .await
            }
            Db::MySql(p) => {
                sqlx::query_scalar("SELECT CAST(active AS CHAR) FROM employees")
                    .fetch_all(p)
                    .await
            }
            Db::Sqlite(p) => {
                sqlx::query_scalar("SELECT CAST(active AS TEXT) FROM employees")
                    .fetch_all(p)
                    .await
            }
        }
        .unwrap();
        let expected = if backend == Backend::Postgres {
            "true"
        } else {
            "1"
        };
        assert_eq!(active, [expected], "the import repaired the employee");
        pool.close().await;
    }
);

on_all_backends!(
    upgrading_keeps_the_last_served_snapshot_for_the_guard,
    |db: TestDb| async move {
        let backend = db.backend;
        let mut settings = db.settings();
        settings.sync.max_deletions = 1;
        let pool = upgrade_pool(&settings);
        migrate_below(&pool, backend, 6).await;
        // A snapshot as the one-column layout stored it: three people who are no
        // longer in the data.
        let json = r#"{"status":"success","user_info_list":[{"username":"gone1"},{"username":"gone2"},{"username":"gone3"}],"group_info_list":[]}"#;
        let mut frame = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut frame, json.as_bytes()).unwrap();
        let hex: String = frame
            .finish()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let blob = match backend {
            Backend::Postgres => format!("'\\x{hex}'::bytea"),
            _ => format!("x'{hex}'"),
        };
        pool.execute_script(&format!(
            "INSERT INTO employees (username, email, nick_name, active) VALUES ('kept', 'kept@e.com', 'Kept', TRUE);
             INSERT INTO sync_snapshot (id, taken_at, payload_digest, user_count, group_count, payload)
             VALUES (1, '2026-01-01T00:00:00.000Z', 'old', 3, 0, {blob});"
        ))
        .await
        .unwrap();

        // The server migrates at start-up; the snapshot still guards.
        let app = db.spawn_with(settings).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = crate::helpers::fail_message(response).await;
        assert!(
            message.contains("drop 3 user(s)") && message.contains("\"gone1\""),
            "{message}"
        );
    }
);

on_all_backends!(
    a_database_migrated_before_the_directory_state_split_is_up_to_date,
    |db: TestDb| async move {
        let backend = db.backend;
        let settings = db.settings();
        // Every step of the last release before the split, from one folder.
        let pool = upgrade_pool(&settings);
        migrate_below(&pool, backend, 7).await;
        pool.execute_script(
            "INSERT INTO employees (username, email, nick_name) VALUES ('kept', 'kept@e.com', 'Kept')",
        )
        .await
        .unwrap();
        let recorded = "SELECT version, checksum FROM _sqlx_migrations ORDER BY version";
        let before = match &pool {
            Db::Postgres(p) => {
                sqlx::query_as::<_, (i64, Vec<u8>)>(recorded)
                    .fetch_all(p)
                    .await
            }
            Db::MySql(p) => {
                sqlx::query_as::<_, (i64, Vec<u8>)>(recorded)
                    .fetch_all(p)
                    .await
            }
            Db::Sqlite(p) => {
                sqlx::query_as::<_, (i64, Vec<u8>)>(recorded)
                    .fetch_all(p)
                    .await
            }
        }
        .unwrap();
        assert_eq!(before.len(), 6);

        // The server migrates both sets at start-up: nothing to do, nothing lost.
        let app = db.spawn_with(settings).await;
        let ready = app
            .client
            .get(format!("{}/readyz", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        let body = crate::helpers::json_body(app.post_sync().await).await;
        assert_eq!(body["user_info_list"][0]["username"], "kept", "{body}");
        let after = match &pool {
            Db::Postgres(p) => {
                sqlx::query_as::<_, (i64, Vec<u8>)>(recorded)
                    .fetch_all(p)
                    .await
            }
            Db::MySql(p) => {
                sqlx::query_as::<_, (i64, Vec<u8>)>(recorded)
                    .fetch_all(p)
                    .await
            }
            Db::Sqlite(p) => {
                sqlx::query_as::<_, (i64, Vec<u8>)>(recorded)
                    .fetch_all(p)
                    .await
            }
        }
        .unwrap();
        // The old steps stay as recorded; only steps newer than that release are added.
        assert_eq!(before[..], after[..before.len()]);
        assert!(
            after[before.len()..].iter().all(|(v, _)| *v >= 7),
            "{after:?}"
        );
        pool.close().await;
        app.stop().await;
    }
);
