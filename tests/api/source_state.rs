//! A mapped source keeps hr-bridge's own state in a database of its own: without
//! one (or with the HR database named twice) every command that opens the stores
//! refuses in one line, and the state database holds only hr-bridge's tables.

use hr_bridge::db::Backend;

use crate::helpers::{rows_at, TestDb};
use crate::on_all_backends;
use crate::schema::{migrate_below, upgrade_pool};
use crate::sources::{foreign_hr, out, run_mapped, HrFingerprint};

/// The tables of the database at `url`, sorted.
async fn tables(backend: Backend, url: &str) -> Vec<String> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT CAST(tablename AS TEXT) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        }
        Backend::MySql => {
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE() ORDER BY 1"
        }
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
    };
    rows_at(backend, url, sql)
        .await
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect()
}

const HR_TABLES: [&str; 3] = ["department_members", "departments", "employees"];
const STATE_TABLES: [&str; 12] = [
    "_sqlx_migrations",
    "activity",
    "auth_audit",
    "auth_lockouts",
    "console_sessions",
    "notify_state",
    "sync_approval_drops",
    "sync_approvals",
    "sync_history",
    "sync_history_names",
    "sync_snapshot",
    "sync_snapshot_pieces",
];

/// Another spelling of the database at `url`: another host name for the
/// loopback address, or other options for a SQLite file.
fn same_database_spelt_otherwise(db: &TestDb) -> String {
    match db.backend {
        Backend::Sqlite => {
            let file = db.sqlite_file();
            let folder = file.parent().expect("a folder");
            format!("sqlite://{}/./hr.db?mode=rw", folder.display())
        }
        _ => db.url.replacen("127.0.0.1", "localhost", 1),
    }
}

on_all_backends!(
    a_mapped_source_without_a_state_database_of_its_own_is_refused,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let tables_before = tables(backend, &hr.url).await;
        let before = HrFingerprint::take(&hr).await;
        let same = same_database_spelt_otherwise(&hr);
        assert_ne!(same, hr.url);
        for state_url in ["", hr.url.as_str(), same.as_str()] {
            for command in [
                &["check"][..],
                &["serve"][..],
                &["migrate"][..],
                &["preview"][..],
            ] {
                let output = run_mapped(command, backend, &hr.url, state_url, &[], "");
                let text = out(&output);
                assert!(
                    !output.status.success(),
                    "{command:?} {state_url:?}: {text}"
                );
                let lines: Vec<&str> = text.lines().filter(|l| l.contains("state.url")).collect();
                assert_eq!(lines.len(), 1, "{command:?} {state_url:?}: {text}");
                assert!(
                    lines[0].contains("[source]") && lines[0].contains("hr-bridge's own"),
                    "{}",
                    lines[0]
                );
            }
        }
        assert_eq!(tables(backend, &hr.url).await, tables_before);
        assert_eq!(before, HrFingerprint::take(&hr).await);
    }
);

on_all_backends!(
    a_mapped_sources_state_database_holds_only_hr_bridges_own_tables,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let output = run_mapped(&["migrate"], backend, &hr.url, &state.url, &[], "");
        assert!(output.status.success(), "{}", out(&output));
        assert_eq!(tables(backend, &state.url).await, STATE_TABLES);
        // Serving: ready, and a login writes its audit row there.
        let settings =
            crate::helpers::mapped_settings(&crate::sources::mapping(backend), &hr.url, &state);
        let app = state.spawn_with(settings).await;
        let ready = app
            .client
            .get(format!("{}/readyz", app.base_url))
            .send()
            .await
            .expect("request sent");
        assert_eq!(ready.status(), 200);
        assert!(crate::sources::login_succeeds(&app, "bcruz102", "pw-bcruz102").await);
        assert_eq!(app.audit().await.len(), 1);
        assert_eq!(tables(backend, &app.test_db.url).await, STATE_TABLES);
        app.stop().await;
    }
);

on_all_backends!(
    a_state_database_migrated_before_the_split_loses_its_empty_hr_tables,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        // An earlier release migrated the state database as one set: empty HR
        // tables and all six steps recorded.
        let pool = upgrade_pool(&state.settings());
        migrate_below(&pool, backend, 7).await;
        pool.close().await;
        let all = tables(backend, &state.url).await;
        assert!(
            HR_TABLES.iter().all(|t| all.iter().any(|a| a == t)),
            "{all:?}"
        );

        let output = run_mapped(&["migrate"], backend, &hr.url, &state.url, &[], "");
        assert!(output.status.success(), "{}", out(&output));
        assert_eq!(tables(backend, &state.url).await, STATE_TABLES);
        let as_text = match backend {
            Backend::MySql => "CAST(version AS CHAR)",
            _ => "CAST(version AS TEXT)",
        };
        let versions = rows_at(
            backend,
            &state.url,
            &format!("SELECT {as_text} FROM _sqlx_migrations ORDER BY _sqlx_migrations.version"),
        )
        .await;
        let versions: Vec<&str> = versions.iter().filter_map(|r| r[0].as_deref()).collect();
        assert_eq!(versions, ["2", "3", "4", "6", "7", "8", "9", "10", "11"]);
        // Migrating again changes nothing.
        let output = run_mapped(&["migrate"], backend, &hr.url, &state.url, &[], "");
        assert!(output.status.success(), "{}", out(&output));
        assert_eq!(tables(backend, &state.url).await, STATE_TABLES);
    }
);

on_all_backends!(
    hr_tables_holding_rows_in_a_state_database_are_kept,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let pool = upgrade_pool(&state.settings());
        migrate_below(&pool, backend, 7).await;
        pool.execute_script(
            "INSERT INTO departments (group_no, display_name, active) VALUES ('OLD', 'Old', TRUE)",
        )
        .await
        .expect("insert");
        pool.close().await;
        let before = tables(backend, &state.url).await;
        let output = run_mapped(&["migrate"], backend, &hr.url, &state.url, &[], "");
        let text = out(&output);
        assert!(output.status.success(), "{text}");
        assert!(text.contains("built-in HR tables with rows"), "{text}");
        // Every table kept; the only ones added are the newer releases' own.
        let after = tables(backend, &state.url).await;
        let added: Vec<&String> = after.iter().filter(|t| !before.contains(t)).collect();
        assert_eq!(
            added,
            [
                "activity",
                "console_sessions",
                "notify_state",
                "sync_approval_drops",
                "sync_approvals",
                "sync_history",
                "sync_history_names"
            ],
            "{after:?}"
        );
        assert!(before.iter().all(|t| after.contains(t)), "{after:?}");
    }
);
