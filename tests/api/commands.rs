//! The IT commands through the real binary against each backend: `lockouts`,
//! `unlock` (recorded in the activity record, and the person can log in again),
//! and `audit` in text, JSON and CSV.

use std::process::{Command, Output};

use hr_bridge::ops::activity;

use crate::authenticate::{add_employee, argon2id};
use crate::helpers::TestApp;
use crate::on_all_backends;

/// The binary over the app's database, run as operator `ops-admin`.
fn hr_bridge(app: &TestApp, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hr-bridge"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HR_BRIDGE") {
            command.env_remove(key);
        }
    }
    command
        .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .env_remove("SUDO_USER")
        .env("USER", "ops-admin")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn both(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn login(app: &TestApp, username: &str, password: &str) -> String {
    crate::helpers::json_body(app.post_authenticate(username, password).await).await["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const HOSTILE: &str = "evil\u{1b}[2J\nname";

on_all_backends!(
    a_locked_person_is_listed_unlocked_and_can_log_in_again,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 3;
        settings.auth.lockout_secs = 3600;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;

        let none = hr_bridge(&app, &["lockouts"]);
        assert!(none.status.success(), "{}", both(&none));
        assert!(
            stdout(&none).contains("no account is locked"),
            "{}",
            both(&none)
        );

        for _ in 0..3 {
            assert_eq!(login(&app, "alice", "wrong").await, "fail");
            assert_eq!(login(&app, HOSTILE, "x").await, "fail");
        }
        assert_eq!(login(&app, "alice", "right").await, "fail", "locked");

        let listed = hr_bridge(&app, &["lockouts", "--json"]);
        assert!(listed.status.success(), "{}", both(&listed));
        let json: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
        let names: Vec<&str> = json
            .as_array()
            .expect("an array")
            .iter()
            .filter_map(|l| l["username"].as_str())
            .collect();
        assert_eq!(names.len(), 2, "{json}");
        assert!(
            names.contains(&"alice") && names.contains(&HOSTILE),
            "{json}"
        );
        let alice = json
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["username"] == "alice")
            .expect("alice listed");
        // Three failures and the attempt refused while locked.
        assert_eq!(alice["failures"], 4);
        assert!(alice["locked_until"].as_i64().unwrap_or(0) > 1_700_000_000);

        // Text: a hostile name is shown escaped, never as terminal commands.
        let text = hr_bridge(&app, &["lockouts"]);
        let shown = stdout(&text);
        assert!(shown.contains("alice"), "{shown}");
        assert!(shown.contains("evil\\u{1b}[2J\\nname"), "{shown}");
        assert!(!shown.contains('\u{1b}'), "{shown}");
        assert!(shown.contains("2 account(s) locked"), "{shown}");

        // Names match exactly: ALICE is not alice.
        let wrong = hr_bridge(&app, &["unlock", "ALICE"]);
        assert_eq!(wrong.status.code(), Some(1), "{}", both(&wrong));
        assert!(
            both(&wrong).contains("\"ALICE\" is not locked"),
            "{}",
            both(&wrong)
        );

        let unlocked = hr_bridge(&app, &["unlock", "alice"]);
        assert!(unlocked.status.success(), "{}", both(&unlocked));
        assert!(
            stdout(&unlocked).contains("unlocked \"alice\""),
            "{}",
            both(&unlocked)
        );
        assert_eq!(login(&app, "alice", "right").await, "success");

        let again = hr_bridge(&app, &["unlock", "alice"]);
        assert_eq!(again.status.code(), Some(1), "{}", both(&again));
        assert!(both(&again).contains("is not locked"), "{}", both(&again));

        // Recorded once, as the operator, through the command line.
        let record = activity::list(&app.db, 10, 0).await.expect("listed");
        assert_eq!(record.len(), 1, "{record:?}");
        assert_eq!(
            (
                record[0].actor.as_str(),
                record[0].channel.as_str(),
                record[0].action.as_str(),
                record[0].subject.as_str()
            ),
            ("ops-admin", "cli", "unlock", "alice")
        );
        assert!(
            record[0].detail.contains("4 failed attempt(s)"),
            "{record:?}"
        );

        // The hostile name is still locked and listed alone.
        let rest = hr_bridge(&app, &["lockouts", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&rest.stdout).expect("JSON");
        assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
        app.stop().await;
    }
);

on_all_backends!(
    audit_filters_and_prints_text_json_and_csv,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(&app, "bob", Some(&argon2id("pw")), true).await;
        assert_eq!(login(&app, "bob", "wrong").await, "fail");
        assert_eq!(login(&app, "bob", "pw").await, "success");
        assert_eq!(login(&app, HOSTILE, "x").await, "fail");
        // One old row, outside --since 24h.
        app.exec(
            "INSERT INTO auth_audit (occurred_at, username, outcome, reason, client_addr) \
             VALUES ('2020-01-01T00:00:00.000Z', 'bob', 'failure', 'bad_password', '192.0.2.9')",
        )
        .await;

        let csv_out = hr_bridge(&app, &["audit", "--username", "bob", "--csv"]);
        assert!(csv_out.status.success(), "{}", both(&csv_out));
        let mut reader = csv::Reader::from_reader(csv_out.stdout.as_slice());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            header,
            [
                "occurred_at",
                "username",
                "outcome",
                "reason",
                "client_addr"
            ]
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        let reasons: Vec<&str> = rows.iter().filter_map(|r| r.get(3)).collect();
        assert_eq!(
            reasons,
            ["success", "bad_password", "bad_password"],
            "newest first"
        );
        assert!(rows.iter().all(|r| r.get(1) == Some("bob")));
        assert_eq!(rows[2].get(0), Some("2020-01-01T00:00:00.000Z"));

        let recent = hr_bridge(&app, &["audit", "--since", "24h", "--json"]);
        assert!(recent.status.success(), "{}", both(&recent));
        let json: serde_json::Value = serde_json::from_slice(&recent.stdout).expect("JSON");
        assert_eq!(json["limit"], 1000);
        assert_eq!(json["truncated"], false);
        let entries = json["entries"].as_array().expect("entries");
        assert_eq!(entries.len(), 3, "{json}");
        assert_eq!(entries[0]["username"], HOSTILE, "exact in JSON");
        assert_eq!(entries[0]["reason"], "unknown_user");
        assert!(entries
            .iter()
            .all(|e| e["occurred_at"] != "2020-01-01T00:00:00.000Z"));

        let until = hr_bridge(
            &app,
            &["audit", "--until", "2021-01-01T01:00:00+01:00", "--json"],
        );
        let json: serde_json::Value = serde_json::from_slice(&until.stdout).expect("JSON");
        assert_eq!(json["entries"].as_array().map(Vec::len), Some(1), "{json}");
        assert_eq!(json["entries"][0]["client_addr"], "192.0.2.9");

        // Bounded, and says so.
        let cut = hr_bridge(&app, &["audit", "--limit", "2"]);
        let text = stdout(&cut);
        assert!(cut.status.success(), "{}", both(&cut));
        assert!(text.contains("showing the newest 2"), "{text}");
        assert!(text.contains("evil\\u{1b}[2J\\nname"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert_eq!(
            text.lines().count(),
            4,
            "header, two rows, the note: {text}"
        );

        let failures = hr_bridge(&app, &["audit", "--outcome", "failure", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&failures.stdout).expect("JSON");
        assert_eq!(json["entries"].as_array().map(Vec::len), Some(3), "{json}");

        let bad = hr_bridge(&app, &["audit", "--since", "yesterday"]);
        assert_eq!(bad.status.code(), Some(1));
        assert!(both(&bad).contains("--since"), "{}", both(&bad));
        let both_formats = hr_bridge(&app, &["audit", "--json", "--csv"]);
        assert!(!both_formats.status.success());
        app.stop().await;
    }
);
