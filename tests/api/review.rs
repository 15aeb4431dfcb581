//! Findings of an outside review (a black-box attacker and careless HR staff),
//! each fixed and kept fixed here.

use crate::guard::seed_people;
use crate::helpers::{fail_message, TestApp};
use crate::on_all_backends;
use secrecy::SecretString;

async fn set_password(app: &TestApp, username: &str, password: &str) {
    let hash = hr_bridge::password::hash_argon2id(
        &SecretString::from(password.to_owned()),
        &hr_bridge::password::Argon2Settings {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        },
    )
    .expect("hash");
    app.exec(&format!(
        "UPDATE employees SET password_hash = '{hash}' WHERE username = '{username}'"
    ))
    .await;
}

on_all_backends!(
    correct_logins_are_refused_and_never_counted_while_the_audit_cannot_be_written,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 3;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 2).await;
        set_password(&app, "e000", "right").await;
        // The audit table breaks (renamed by someone, disk full, …): no login is
        // answered without its audit row, and none piles up towards a lockout.
        app.exec("ALTER TABLE auth_audit RENAME TO auth_audit_gone")
            .await;
        for attempt in 0..6 {
            let response = app.post_authenticate("e000", "right").await;
            assert_eq!(response.status(), 503, "correct login {attempt}");
            assert!(response.headers().contains_key("retry-after"));
            assert!(fail_message(response).await.contains("audit trail"));
        }
        let left = app
            .rows("SELECT 'x' FROM auth_lockouts WHERE failures > 0")
            .await;
        assert!(
            left.is_empty(),
            "refused logins left a failure count behind"
        );
        app.exec("ALTER TABLE auth_audit_gone RENAME TO auth_audit")
            .await;
        let body = crate::helpers::json_body(app.post_authenticate("e000", "right").await).await;
        assert_eq!(body["status"], "success", "{body}");
        let audit = app.audit().await;
        assert_eq!(audit.len(), 1, "{audit:?}");
        assert_eq!(audit[0].2, "success");
    }
);

on_all_backends!(
    dropping_every_department_trips_the_guard_even_among_many_users,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_people(&app, 200).await;
        let groups: Vec<String> = (0..20)
            .map(|i| format!("('G{i:02}', 'Group {i}', 'ROOT', TRUE)"))
            .collect();
        app.exec(&format!(
            "INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES {}",
            groups.join(", ")
        ))
        .await;
        assert_eq!(app.post_sync().await.status(), 200);
        // 21 of 222 objects overall (under 20%), but every department but ROOT.
        app.exec("UPDATE departments SET active = FALSE WHERE group_no <> 'ROOT'")
            .await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(message.contains("deletion guard"), "{message}");
    }
);

on_all_backends!(
    an_unreadable_snapshot_refuses_with_409_and_accept_deletions_recovers,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_people(&app, 5).await;
        assert_eq!(app.post_sync().await.status(), 200);
        let zero = match app.backend() {
            Backend::Postgres => "'\\x00'::bytea",
            _ => "x'00'",
        };
        app.exec(&format!("UPDATE sync_snapshot_pieces SET piece = {zero}"))
            .await;
        app.exec("UPDATE employees SET nick_name = 'Changed' WHERE username = 'e000'")
            .await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(message.contains("accept-deletions"), "{message}");
        let pending = crate::approvals::wait_for_pending(&app, 0).await;
        assert!(pending.unreadable_snapshot);
        let shown = crate::approvals::accept(&app, 0).await;
        assert!(
            String::from_utf8_lossy(&shown.stdout).contains("cannot be read"),
            "{}",
            String::from_utf8_lossy(&shown.stdout)
        );
        assert_eq!(app.post_sync().await.status(), 200);
    }
);

#[test]
fn probe_refuses_credentials_in_the_url_without_echoing_them() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hr-bridge"))
        .args([
            "probe",
            "http://om:UrlSecretZZ@127.0.0.1:9/",
            "--username",
            "om",
        ])
        .env("HR_BRIDGE_PROBE_PASSWORD", "x")
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains("UrlSecretZZ"), "{all}");
    assert!(all.contains("must not carry credentials"), "{all}");
}

on_all_backends!(
    check_reads_a_password_hash_that_is_not_text,
    |db: TestDb| async move {
        if db.backend != Backend::Sqlite {
            // Only SQLite stores bytes that are not UTF-8 in a text column.
            return;
        }
        let app = db.spawn().await;
        seed_people(&app, 2).await;
        app.exec(
            "UPDATE employees SET password_hash = CAST(x'ff00' AS TEXT) WHERE username = 'e000'",
        )
        .await;
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hr-bridge"))
            .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
            .env("RUST_LOG", "warn")
            .arg("check")
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
);
