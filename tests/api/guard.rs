//! The deletion guard, `preview` and `accept-deletions`.

use std::process::Command;

use hr_bridge::db::Backend;

use crate::helpers::{fail_message, json_body, TestApp};
use crate::on_all_backends;

/// Adds `n` active employees `e000…` and two departments holding some of them.
pub async fn seed_people(app: &TestApp, n: usize) {
    let rows: Vec<String> = (0..n)
        .map(|i| format!("('e{i:03}', 'e{i:03}@example.com', 'Person {i}', TRUE)"))
        .collect();
    app.exec(&format!(
        "INSERT INTO employees (username, email, nick_name, active) VALUES {};
         INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES ('ROOT', 'Root', NULL, TRUE);
         INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES ('SUB', 'Sub', 'ROOT', TRUE);
         INSERT INTO department_members (group_no, username) VALUES ('SUB', 'e000'), ('SUB', 'e001');",
        rows.join(", ")
    ))
    .await;
}

/// Deactivates employees `e{from}` up to (not including) `e{to}`.
async fn deactivate(app: &TestApp, from: usize, to: usize) {
    let names: Vec<String> = (from..to).map(|i| format!("'e{i:03}'")).collect();
    app.exec(&format!(
        "UPDATE employees SET active = FALSE WHERE username IN ({})",
        names.join(", ")
    ))
    .await;
}

fn hr_bridge(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hr-bridge"))
        .env("HR_BRIDGE__DATABASE__URL", url)
        // The same limit the preview test's server runs with.
        .env("HR_BRIDGE__SYNC__MAX_DELETIONS", "1")
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .unwrap()
}

on_all_backends!(
    guard_allows_the_limit_and_trips_above_it,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 3;
        settings.sync.max_deletion_ratio = 0.0;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 20).await;
        assert_eq!(
            app.post_sync().await.status(),
            200,
            "the first sync is never refused"
        );
        deactivate(&app, 10, 13).await;
        assert_eq!(
            app.post_sync().await.status(),
            200,
            "dropping exactly the limit passes"
        );

        deactivate(&app, 13, 17).await;
        let before = app.db.snapshot_digest().await.unwrap();
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(
            message.contains("would drop 4 user(s) and 0 department(s)"),
            "{message}"
        );
        assert!(message.contains("\"e013\""), "{message}");
        assert!(message.contains("hr-bridge accept-deletions"), "{message}");
        // A refusal records nothing: the same refusal again, the snapshot untouched.
        assert_eq!(app.post_sync().await.status(), 409);
        assert_eq!(app.db.snapshot_digest().await.unwrap(), before);
    }
);

on_all_backends!(
    guard_ratio_applies_only_beyond_ten_objects,
    |db: TestDb| async move {
        let mut settings = db.settings();
        // The count rule out of the way (0 would now refuse every deletion).
        settings.sync.max_deletions = 1000;
        settings.sync.max_deletion_ratio = 0.2;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 28).await; // 28 users + 2 departments = 30 objects
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 2, 12).await; // 10 of 30 (33%), but not more than 10
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 12, 16).await; // 4 of 20 = 20%: at the ratio, allowed
        assert_eq!(app.post_sync().await.status(), 200);
        app.exec("UPDATE departments SET active = FALSE WHERE group_no = 'SUB'")
            .await;
        deactivate(&app, 16, 26).await; // 11 of 16: over the ratio and over 10
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(
            message.contains("10 user(s) and 1 department(s)"),
            "{message}"
        );
        assert!(
            message.contains("departments dropped: \"SUB\""),
            "{message}"
        );
        assert!(
            message.contains("sync.max_deletion_ratio = 0.2")
                && message.contains("sync.guard_min_objects = 10"),
            "{message}"
        );
    }
);

on_all_backends!(
    guard_min_objects_moves_the_floor_of_the_ratio,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 1000;
        settings.sync.max_deletion_ratio = 0.1;
        settings.sync.guard_min_objects = 2;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 18).await; // 20 objects
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 10, 12).await; // 2 of 20 = 10%: at the ratio, allowed
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 12, 15).await; // 3 of 18: more than 2 and over 10%
        assert_eq!(app.post_sync().await.status(), 409);
    }
);

on_all_backends!(
    a_limit_of_zero_needs_approval_for_every_deletion,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 0;
        settings.sync.max_deletion_ratio = 0.0;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 30).await;
        assert_eq!(app.post_sync().await.status(), 200);
        // Additions and changes pass: only deletions need approval.
        app.exec("UPDATE employees SET nick_name = 'Renamed' WHERE username = 'e005'")
            .await;
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 0, 1).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409, "one deletion went through");
        let message = fail_message(response).await;
        assert!(
            message.contains("sync.max_deletions = 0: every deletion needs approval"),
            "{message}"
        );
        crate::approvals::accept(&app, 1).await;
        assert_eq!(app.post_sync().await.status(), 200);
    }
);

on_all_backends!(
    a_ratio_of_zero_refuses_any_share_beyond_the_floor,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 1000;
        settings.sync.max_deletion_ratio = 0.0;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 40).await;
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 0, 10).await; // 10: not more than guard_min_objects
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 10, 21).await; // 11: any share is too much
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(message.contains("sync.max_deletion_ratio = 0"), "{message}");
    }
);

on_all_backends!(
    accept_deletions_lets_the_next_sync_pass,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 2;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 20).await;
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 0, 15).await;
        assert_eq!(app.post_sync().await.status(), 409);
        let output = crate::approvals::accept(&app, 15).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("drop 15 user(s) and 0 department(s)"),
            "{stdout}"
        );
        let response = app.post_sync().await;
        assert_eq!(response.status(), 200);
        let body = json_body(response).await;
        assert_eq!(body["user_info_list"].as_array().unwrap().len(), 5);
    }
);

on_all_backends!(
    only_sync_guard_off_turns_the_guard_off,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.guard = hr_bridge::config::GuardSwitch::Off;
        settings.sync.max_deletions = 0;
        settings.sync.max_deletion_ratio = 0.0;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 30).await;
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 0, 30).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 200);
        let body = json_body(response).await;
        assert_eq!(body["user_info_list"], serde_json::json!([]));
    }
);

on_all_backends!(
    concurrent_syncs_leave_one_consistent_snapshot,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_people(&app, 30).await;
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, 0, 3).await;
        let syncs = (0..8).map(|_| app.post_sync());
        for response in futures_util::future::join_all(syncs).await {
            assert_eq!(response.status(), 200);
        }
        let output = hr_bridge(&app.test_db.url, &["preview", "--json"]);
        assert!(output.status.success());
        let preview: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        for kind in ["users", "groups"] {
            for change in ["added", "changed", "dropped"] {
                assert_eq!(
                    preview[kind][change],
                    serde_json::json!([]),
                    "{kind} {change}"
                );
            }
        }
    }
);

on_all_backends!(
    preview_lists_adds_changes_and_drops_and_records_nothing,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 1;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 20).await;
        let output = hr_bridge(&app.test_db.url, &["preview"]);
        assert!(String::from_utf8_lossy(&output.stdout).contains("no snapshot yet"));
        assert_eq!(app.post_sync().await.status(), 200);
        app.exec(
        "INSERT INTO employees (username, email, nick_name, active) VALUES ('new1', 'new1@example.com', 'New', TRUE);
         UPDATE employees SET email = 'changed@example.com', phone1 = '123' WHERE username = 'e005';
         UPDATE departments SET display_name = 'Renamed' WHERE group_no = 'SUB';
         DELETE FROM department_members WHERE username = 'e001';
         INSERT INTO department_members (group_no, username) VALUES ('SUB', 'e003');
         INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES ('NEW', 'New dept', 'ROOT', TRUE);",
    )
    .await;
        deactivate(&app, 7, 10).await;
        let before = app.db.snapshot_digest().await.unwrap();
        let output = hr_bridge(&app.test_db.url, &["preview", "--json"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let preview: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(preview["users"]["added"], serde_json::json!(["new1"]));
        assert_eq!(
            preview["users"]["changed"],
            serde_json::json!([{
                "key": "e005",
                "fields": ["email", "phone1"],
                "changes": {
                    "email": {"old": "e005@example.com", "new": "changed@example.com"},
                    "phone1": {"old": "", "new": "123"},
                },
            }])
        );
        assert_eq!(
            preview["users"]["dropped"],
            serde_json::json!(["e007", "e008", "e009"])
        );
        assert_eq!(preview["groups"]["added"], serde_json::json!(["NEW"]));
        assert_eq!(
            preview["groups"]["changed"],
            serde_json::json!([{
                "key": "SUB",
                "fields": ["display_name", "user_list"],
                "changes": {
                    "display_name": {"old": "Sub", "new": "Renamed"},
                    "user_list": {"old": ["e000", "e001"], "new": ["e000", "e003"]},
                },
            }])
        );
        assert_eq!(preview["guard"]["would_refuse"], true);
        let text = hr_bridge(&app.test_db.url, &["preview"]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("users: 1 added, 1 changed, 3 dropped"),
            "{text}"
        );
        assert!(
            text.contains(
                "    e005: email \"e005@example.com\" → \"changed@example.com\"; phone1 \"\" → \"123\"\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("    SUB: display_name \"Sub\" → \"Renamed\"; user_list +e003 −e001\n"),
            "{text}"
        );
        assert!(text.contains("WOULD REFUSE"), "{text}");
        assert_eq!(
            app.db.snapshot_digest().await.unwrap(),
            before,
            "preview recorded something"
        );
        // `payload` is exactly what /sync serves once the drops are approved.
        assert_eq!(app.post_sync().await.status(), 409);
        crate::approvals::accept(&app, 3).await;
        let served = json_body(app.post_sync().await).await;
        assert_eq!(preview["payload"], served);
    }
);

/// Replaces the stored snapshot's payload with `payload`, as an older version
/// may have served it (the digest row is left as it is).
pub async fn store_snapshot(app: &TestApp, payload: &serde_json::Value) {
    let mut frame = lz4_flex::frame::FrameEncoder::new(Vec::new());
    std::io::Write::write_all(&mut frame, payload.to_string().as_bytes()).unwrap();
    let frame = frame.finish().unwrap();
    app.exec(&format!(
        "DELETE FROM sync_snapshot_pieces; \
         INSERT INTO sync_snapshot_pieces (seq, piece) VALUES (0, {})",
        blob_literal(app, &frame)
    ))
    .await;
}

/// `bytes` as an SQL literal of the backend's binary type.
fn blob_literal(app: &TestApp, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match app.backend() {
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
        _ => format!("x'{hex}'"),
    }
}

on_all_backends!(
    a_snapshot_in_pieces_and_in_another_order_still_guards_and_diffs,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 1;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 20).await;
        let served = json_body(app.post_sync().await).await;
        // What an older version stored: the records in the database's collation
        // order rather than byte order (here simply reversed), and the frame split
        // at arbitrary points into several pieces.
        let mut shuffled = served.clone();
        for list in ["user_info_list", "group_info_list"] {
            if let Some(records) = shuffled[list].as_array_mut() {
                records.reverse();
            }
        }
        let mut frame = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut frame, shuffled.to_string().as_bytes()).unwrap();
        let frame = frame.finish().unwrap();
        let cuts = [0, 7, frame.len() / 2, frame.len()];
        let mut sql = vec!["DELETE FROM sync_snapshot_pieces".to_owned()];
        for (seq, piece) in cuts.windows(2).enumerate() {
            sql.push(format!(
                "INSERT INTO sync_snapshot_pieces (seq, piece) VALUES ({seq}, {})",
                blob_literal(&app, &frame[piece[0]..piece[1]])
            ));
        }
        app.exec(&sql.join(";\n")).await;
        deactivate(&app, 7, 10).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(
            message.contains("drop 3 user(s) and 0 department(s), 3 of the 22"),
            "{message}"
        );
        let output = hr_bridge(&app.test_db.url, &["preview", "--json"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let preview: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            preview["users"]["dropped"],
            serde_json::json!(["e007", "e008", "e009"])
        );
        for (kind, change) in [
            ("users", "added"),
            ("users", "changed"),
            ("groups", "added"),
            ("groups", "changed"),
            ("groups", "dropped"),
        ] {
            assert_eq!(
                preview[kind][change],
                serde_json::json!([]),
                "{kind} {change}"
            );
        }
        // The approved sync writes the snapshot anew, in byte order and in pieces.
        crate::approvals::accept(&app, 3).await;
        assert_eq!(app.post_sync().await.status(), 200);
    }
);
