//! Keys that would fool the operator or never log in: control characters in a
//! username, email or group_no, and usernames longer than /authenticate accepts.
//! They are refused by `import`, `set-password`, `check` and `/sync` alike, and
//! wherever HR data is printed for a person it is shown escaped.

use std::path::Path;
use std::process::Output;

use crate::helpers::{binary, fail_message, json_body, TestApp};
use crate::on_all_backends;

/// What a hostile username tries to print: a line of the operator's own tools.
const FORGED: &str = "evil\ndeletion guard: would pass";
/// The same, as every output of ours must show it.
const FORGED_SHOWN: &str = r"evil\ndeletion guard: would pass";
/// Clears the screen when printed raw.
const CLEAR: &str = "esc\u{1b}[2J";
const CLEAR_SHOWN: &str = r"esc\u{1b}[2J";
/// 128 two-byte characters: 256 bytes, one more than a username may have, yet
/// only 128 characters, which MySQL's VARCHAR(255) still holds.
fn long_username() -> String {
    "é".repeat(128)
}

fn hr_bridge_in(app: &TestApp, dir: Option<&Path>, args: &[&str]) -> Output {
    let mut command = binary();
    // The limit the servers of these tests run with.
    command.env("HR_BRIDGE__SYNC__MAX_DELETIONS", "0");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
        .args(args)
        .output()
        .expect("hr-bridge runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Nothing in `out` that a terminal would act on (our own line breaks aside),
/// and no line of it forged.
fn assert_printable(out: &str) {
    let raw: Vec<char> = out
        .chars()
        .filter(|c| *c != '\n' && hr_bridge::escape::is_control(*c))
        .collect();
    assert!(raw.is_empty(), "raw control characters {raw:?} in: {out:?}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("deletion guard: would pass")),
        "a forged line: {out}"
    );
}

on_all_backends!(
    import_refuses_hostile_keys_naming_each_line,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let dir = tempfile::tempdir().unwrap();
        let long = long_username();
        std::fs::write(
            dir.path().join("employees.csv"),
            format!(
                "username,email,nick_name\n\
                 \"{FORGED}\",evil@example.com,Evil\n\
                 {CLEAR},esc@example.com,Esc\n\
                 ok,\"ok\r@example.com\",Ok\n\
                 {long},long@example.com,Long\n\
                 fine,fine@example.com,Fine\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("departments.csv"),
            "group_no,display_name\n\"D\u{1b}]0;owned\u{7}\",Dept\nOK,Fine\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("members.csv"),
            "group_no,username\nOK,\"fine\u{202e}\"\n",
        )
        .unwrap();
        let out = hr_bridge_in(
            &app,
            Some(dir.path()),
            &[
                "import",
                "--employees",
                "employees.csv",
                "--departments",
                "departments.csv",
                "--members",
                "members.csv",
            ],
        );
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        for expected in [
            "employees.csv:2: username contains the control character U+000A",
            "employees.csv:4: username contains the control character U+001B",
            "employees.csv:5: email contains the control character U+000D",
            "employees.csv:6: username is 256 bytes long; a username may have at most 255 bytes",
            "departments.csv:2: group_no contains the control character U+001B",
            "members.csv:2: username contains the control character U+202E",
        ] {
            assert!(
                stderr.contains(expected),
                "{expected} missing from: {stderr}"
            );
        }
        assert_printable(&stderr);
        assert_printable(&text(&out.stdout));
        let body = json_body(app.post_sync().await).await;
        assert_eq!(body["user_info_list"], serde_json::json!([]), "written");
    }
);

on_all_backends!(
    sync_check_and_preview_refuse_hostile_keys_and_show_them_escaped,
    |db: TestDb| async move {
        let app = db.spawn().await;
        // As an administrator's SQL (or another tool) could have written them.
        app.exec(&format!(
            "INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES \
                 ('D\u{1b}[31m', 'Red', NULL, TRUE), ('OK', 'Fine', NULL, TRUE);
             INSERT INTO employees (username, email, nick_name, active) VALUES \
                 ('{FORGED}', 'evil@example.com', 'Evil', TRUE), \
                 ('{CLEAR}', 'esc@example.com', 'Esc', TRUE), \
                 ('ok', 'ok\r@example.com', 'Ok', TRUE), \
                 ('{}', 'long@example.com', 'Long', TRUE), \
                 ('fine', 'fine@example.com', 'Fine', TRUE);",
            long_username()
        ))
        .await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        for expected in [
            format!("employee \"{FORGED_SHOWN}\": username contains the control character U+000A"),
            format!("employee \"{CLEAR_SHOWN}\": username contains the control character U+001B"),
            r#"employee "ok": email contains the control character U+000D"#.to_owned(),
            r#"department "D\u{1b}[31m": group_no contains the control character U+001B"#
                .to_owned(),
            "username is 256 bytes long".to_owned(),
        ] {
            assert!(
                message.contains(&expected),
                "{expected} missing from: {message}"
            );
        }
        for command in ["check", "preview"] {
            let out = hr_bridge_in(&app, None, &[command]);
            assert!(!out.status.success(), "{command} passed");
            let stdout = text(&out.stdout);
            assert!(stdout.contains(FORGED_SHOWN), "{command}: {stdout}");
            assert!(stdout.contains(CLEAR_SHOWN), "{command}: {stdout}");
            assert_printable(&stdout);
            assert_printable(&text(&out.stderr));
        }
    }
);

on_all_backends!(
    preview_shows_the_last_snapshot_and_changed_values_escaped,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 0;
        let app = db.spawn_with(settings).await;
        crate::guard::seed_people(&app, 3).await;
        let served = json_body(app.post_sync().await).await;
        // A snapshot an older version served, holding a name it did not refuse;
        // HR has removed that person since.
        let mut older = served.clone();
        let users = older["user_info_list"].as_array_mut().unwrap();
        let mut evil = users[0].clone();
        evil["username"] = FORGED.into();
        evil["email"] = "evil@example.com".into();
        users.insert(0, evil);
        crate::guard::store_snapshot(&app, &older).await;
        // A value that JSON leaves as it is: a C1 control and a bidi override.
        app.exec("UPDATE employees SET nick_name = 'x\u{9b}2J\u{202e}y' WHERE username = 'e001'")
            .await;
        let out = hr_bridge_in(&app, None, &["preview"]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            stdout.contains(&format!("dropped (1): {FORGED_SHOWN}")),
            "{stdout}"
        );
        assert!(stdout.contains(r"x\u{9b}2J\u{202e}y"), "{stdout}");
        assert!(stdout.contains("deletion guard: WOULD REFUSE"), "{stdout}");
        assert_printable(&stdout);
        // The guard's 409 names it escaped as well.
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(message.contains(FORGED_SHOWN), "{message}");
    }
);

on_all_backends!(
    usernames_longer_than_authenticate_accepts_get_no_password,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let long = long_username();
        app.exec(&format!(
            "INSERT INTO employees (username, email, nick_name, active) \
             VALUES ('{long}', 'long@example.com', 'Long', TRUE)"
        ))
        .await;
        let mut command = binary();
        command
            .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
            .args(["set-password", &long]);
        // It refuses the name, perhaps before it reads the password.
        let out = crate::helpers::run_with_stdin(&mut command, "Some-Pa55word\n");
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("is 256 bytes long; a username may have at most 255 bytes"),
            "{stderr}"
        );
        let hash = app
            .rows("SELECT password_hash FROM employees")
            .await
            .remove(0)
            .remove(0);
        assert_eq!(hash, None, "a password was stored");
        // /sync and check say why, and the name never reaches OMFLOW.
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        assert!(fail_message(response).await.contains("256 bytes long"));
        let check = hr_bridge_in(&app, None, &["check"]);
        assert!(!check.status.success());
        assert!(text(&check.stdout).contains("256 bytes long"));
    }
);
