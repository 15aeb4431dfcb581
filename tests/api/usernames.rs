//! Usernames match exactly, byte for byte, on every backend: for the login, the
//! lockout counter and `set-password`; and any string JSON allows (NUL included)
//! gets the normal fail answer.

use crate::authenticate::{add_employee, argon2id};
use crate::helpers::{fail_message, json_body, TestApp};
use crate::on_all_backends;

/// Names MySQL's default collation folds onto `alice`.
const LOOKALIKES: [&str; 5] = ["ALICE", "Alice", "alice ", "ａｌｉｃｅ", " alice"];

async fn status(app: &TestApp, username: &str, password: &str) -> String {
    let body = json_body(app.post_authenticate(username, password).await).await;
    body["status"].as_str().unwrap_or("").to_owned()
}

on_all_backends!(
    usernames_match_byte_for_byte_for_login_and_lockout,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 2;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        for name in LOOKALIKES {
            assert_eq!(status(&app, name, "right").await, "fail", "{name:?}");
        }
        // Failures under look-alike names never counted against (or locked) alice.
        for name in LOOKALIKES {
            assert_eq!(status(&app, name, "wrong").await, "fail", "{name:?}");
        }
        assert_eq!(status(&app, "alice", "right").await, "success");
        let audit = app.audit().await;
        for (user, outcome, reason, _) in &audit {
            if user != "alice" {
                assert_eq!(outcome, "failure", "{user:?}: {audit:?}");
                assert!(
                    reason == "unknown_user" || reason == "locked",
                    "{user:?}: {audit:?}"
                );
            }
        }
        // /sync still serves the name as stored.
        let body = json_body(app.post_sync().await).await;
        assert_eq!(body["user_info_list"][0]["username"], "alice");
    }
);

on_all_backends!(
    set_password_matches_the_username_exactly,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        for name in LOOKALIKES {
            let mut command = crate::helpers::binary();
            command
                .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
                .args(["set-password", name]);
            // It may refuse the name before it reads the password.
            let output = crate::helpers::run_with_stdin(&mut command, "taken-over\n");
            assert_eq!(output.status.code(), Some(1), "{name:?}");
        }
        assert_eq!(status(&app, "alice", "right").await, "success");
        assert_eq!(status(&app, "alice", "taken-over").await, "fail");
    }
);

on_all_backends!(
    any_json_string_as_username_gets_the_normal_failure,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        for name in [
            "\u{0}",
            "alice\u{0}",
            "al\u{0}ice",
            "\u{0}alice",
            "\u{FFFF}",
            "😀",
        ] {
            let response = app.post_authenticate(name, "right").await;
            assert_eq!(response.status(), 200, "{name:?}");
            assert_eq!(fail_message(response).await, "invalid username or password");
        }
        let response = app.post_authenticate("alice", "ri\u{0}ght").await;
        assert_eq!(response.status(), 200);
        assert_eq!(status(&app, "alice", "right").await, "success");
        // Each attempt has its audit row, none as a success.
        let audit = app.audit().await;
        assert_eq!(audit.len(), 8, "{audit:?}");
        assert_eq!(
            audit
                .iter()
                .filter(|(_, outcome, ..)| outcome == "success")
                .count(),
            1
        );
    }
);
