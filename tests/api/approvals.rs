//! Approvals of deletion-guard refusals: a refusal records the exact set of
//! drops as pending, `accept-deletions` approves exactly that set (refused after
//! the data changed), and the next sync that serves it consumes it, once.

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use hr_bridge::ops::approvals::{self, DroppedName, DropsPage, PendingApproval};
use hr_bridge::ops::history::Kind;

use crate::guard::seed_people;
use crate::helpers::{binary, fail_message, TestApp};
use crate::on_all_backends;

/// Waits until the history holds a pending approval whose drops number
/// `dropped` (users plus departments); the history is written in the background.
pub async fn wait_for_pending(app: &TestApp, dropped: i64) -> PendingApproval {
    for _ in 0..300 {
        if let Some(pending) = approvals::pending(&app.db).await.expect("reads") {
            if pending.users_dropped + pending.departments_dropped == dropped {
                return pending;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no pending approval of {dropped} drop(s) was recorded");
}

/// `hr-bridge <args>` against the app's database, stdin closed (not a terminal).
pub fn cli(app: &TestApp, args: &[&str]) -> Output {
    binary()
        .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
        .env("USER", "hr-lead")
        .env_remove("SUDO_USER")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

/// Waits for the pending set of `dropped` drops and approves it by id with `--yes`.
pub async fn accept(app: &TestApp, dropped: i64) -> Output {
    let pending = wait_for_pending(app, dropped).await;
    let id = pending.id.to_string();
    let output = cli(app, &["accept-deletions", &id, "--yes"]);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn deactivate(app: &TestApp, names: &[&str]) {
    let list: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    app.exec(&format!(
        "UPDATE employees SET active = FALSE WHERE username IN ({})",
        list.join(", ")
    ))
    .await;
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

on_all_backends!(
    a_guard_refusal_records_a_pending_set_naming_exactly_who_goes,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 2;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 20).await;
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, &["e003", "e011", "e017"]).await;
        app.exec("UPDATE departments SET active = FALSE WHERE group_no = 'SUB'")
            .await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(message.contains("hr-bridge accept-deletions"), "{message}");
        let pending = wait_for_pending(&app, 4).await;
        assert_eq!(pending.users_dropped, 3);
        assert_eq!(pending.departments_dropped, 1);
        assert_eq!(pending.previous_total, 22);
        assert_eq!(pending.guard.max_deletions, 2);
        assert!(
            pending.guard.reasons.contains("sync.max_deletions = 2"),
            "{}",
            pending.guard.reasons
        );
        let drops = approvals::pending_drops(&app.db, pending.id, None, DropsPage::First, 100)
            .await
            .unwrap();
        let user = |name: &str| DroppedName {
            kind: Kind::User,
            name: name.into(),
        };
        assert_eq!(
            drops,
            vec![
                DroppedName {
                    kind: Kind::Department,
                    name: "SUB".into()
                },
                user("e003"),
                user("e011"),
                user("e017"),
            ]
        );
        // Search and pages.
        let found =
            approvals::pending_drops(&app.db, pending.id, Some("01"), DropsPage::First, 100)
                .await
                .unwrap();
        assert_eq!(found, vec![user("e011"), user("e017")]);
        // Pages by key, both ways, and from the end.
        let department = DroppedName {
            kind: Kind::Department,
            name: "SUB".into(),
        };
        let (e003, e011, e017) = (user("e003"), user("e011"), user("e017"));
        let cases = [
            (None, DropsPage::After(&e003), 1, vec![e011.clone()]),
            (
                None,
                DropsPage::After(&department),
                2,
                vec![e003.clone(), e011.clone()],
            ),
            (
                None,
                DropsPage::Before(&e017),
                2,
                vec![e003.clone(), e011.clone()],
            ),
            (None, DropsPage::Before(&e003), 5, vec![department.clone()]),
            (None, DropsPage::Last, 2, vec![e011.clone(), e017.clone()]),
            (Some("01"), DropsPage::After(&e011), 5, vec![e017.clone()]),
        ];
        for (search, from, limit, expected) in cases {
            let page = approvals::pending_drops(&app.db, pending.id, search, from, limit)
                .await
                .unwrap();
            assert_eq!(page, expected, "{from:?}");
        }
        // The same refusal again keeps the same pending set.
        assert_eq!(app.post_sync().await.status(), 409);
        for _ in 0..100 {
            let again = approvals::pending(&app.db).await.unwrap().unwrap();
            if again.refusals == 2 {
                assert_eq!(again.id, pending.id);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            approvals::pending(&app.db).await.unwrap().unwrap().refusals,
            2
        );
        // accept-deletions lists the set (counts, then names) before anything else.
        let output = cli(&app, &["accept-deletions"]);
        assert!(!output.status.success(), "approved without a terminal");
        let shown = text(&output);
        assert!(
            shown.contains("drops 3 user(s) and 1 department(s) of the 22"),
            "{shown}"
        );
        assert!(
            shown.contains("departments dropped:\n  SUB\nusers dropped:\n  e003\n  e011\n  e017\n"),
            "{shown}"
        );
        assert!(shown.contains("--yes"), "{shown}");
        assert_eq!(app.post_sync().await.status(), 409, "it approved anyway");
    }
);

on_all_backends!(
    accept_deletions_by_id_lets_the_next_sync_pass_once_and_records_who,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 2;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 20).await;
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, &["e001", "e002", "e003"]).await;
        assert_eq!(app.post_sync().await.status(), 409);
        let pending = wait_for_pending(&app, 3).await;
        let id = pending.id.to_string();
        let output = cli(
            &app,
            &[
                "accept-deletions",
                &id,
                "--yes",
                "--reason",
                "three leavers, ticket HR-42",
            ],
        );
        let shown = text(&output);
        assert!(output.status.success(), "{shown}");
        assert!(shown.contains(&format!("approved set {id}")), "{shown}");
        assert!(shown.contains("by hr-lead"), "{shown}");
        assert!(
            shown.contains("may drop 3 user(s) and 0 department(s)"),
            "{shown}"
        );
        assert!(approvals::pending(&app.db).await.unwrap().is_none());
        // Approved twice? It is no longer pending.
        let again = cli(&app, &["accept-deletions", &id, "--yes"]);
        assert!(!again.status.success(), "{}", text(&again));

        let response = app.post_sync().await;
        assert_eq!(response.status(), 200);
        let approval = app.db.approval(pending.id).await.unwrap().unwrap();
        assert_eq!(approval.status, "consumed");
        assert_eq!(approval.approved_by.as_deref(), Some("hr-lead"));
        assert_eq!(
            approval.reason.as_deref(),
            Some("three leavers, ticket HR-42")
        );
        assert!(approval.approved_ms.is_some() && approval.consumed_ms.is_some());
        let activity = hr_bridge::ops::activity::list(&app.db, 10, 0)
            .await
            .unwrap();
        let approved: Vec<_> = activity
            .iter()
            .filter(|a| a.action == "approve_deletions")
            .collect();
        assert_eq!(approved.len(), 1, "{activity:?}");
        assert_eq!(approved[0].actor, "hr-lead");
        assert_eq!(approved[0].subject, id);
        assert!(
            approved[0].detail.contains("three leavers, ticket HR-42"),
            "{activity:?}"
        );

        // Valid once: the same three dropped again from the new snapshot (they
        // come back, then go again) need a new approval.
        app.exec("UPDATE employees SET active = TRUE WHERE username IN ('e001', 'e002', 'e003')")
            .await;
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, &["e001", "e002", "e003"]).await;
        assert_eq!(app.post_sync().await.status(), 409);

        // The history shows who approved, and which sync used it.
        let history = cli(&app, &["history"]);
        let shown = text(&history);
        assert!(history.status.success(), "{shown}");
        assert!(shown.contains(&format!("used approval {id}")), "{shown}");
        assert!(
            shown.contains("approved by hr-lead") && shown.contains("three leavers, ticket HR-42"),
            "{shown}"
        );
    }
);

on_all_backends!(
    an_approval_is_refused_when_the_data_changed_since,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 2;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 20).await;
        assert_eq!(app.post_sync().await.status(), 200);
        deactivate(&app, &["e001", "e002", "e003"]).await;
        assert_eq!(app.post_sync().await.status(), 409);
        let pending = wait_for_pending(&app, 3).await;
        // One more leaver after the set was reviewed.
        deactivate(&app, &["e004"]).await;
        let id = pending.id.to_string();
        let output = cli(&app, &["accept-deletions", &id, "--yes"]);
        let shown = text(&output);
        assert!(!output.status.success(), "{shown}");
        assert!(
            shown.contains("the HR data changed since this set was recorded"),
            "{shown}"
        );
        assert!(
            shown.contains("would now drop 4 user(s) and 0 department(s)"),
            "{shown}"
        );
        assert_eq!(
            app.db.approval(pending.id).await.unwrap().unwrap().status,
            "pending"
        );
        // The next sync records the new set, which is the one to approve now.
        assert_eq!(app.post_sync().await.status(), 409);
        let newer = wait_for_pending(&app, 4).await;
        assert_ne!(newer.id, pending.id);
        assert_eq!(
            app.db.approval(pending.id).await.unwrap().unwrap().status,
            "superseded"
        );
        let stale = cli(&app, &["accept-deletions", &id, "--yes"]);
        assert!(!stale.status.success(), "{}", text(&stale));
        accept(&app, 4).await;
        assert_eq!(app.post_sync().await.status(), 200);
    }
);

on_all_backends!(
    an_approval_with_nothing_pending_says_so_and_exits_0,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_people(&app, 5).await;
        assert_eq!(app.post_sync().await.status(), 200);
        let output = cli(&app, &["accept-deletions", "--yes"]);
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            text(&output).contains("nothing pending"),
            "{}",
            text(&output)
        );
        // Without --yes as well, and stdin not a terminal: nothing to confirm.
        let mut child = binary()
            .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
            .arg("accept-deletions")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(b"yes\n");
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }
);

on_all_backends!(
    replicas_recording_the_same_refusal_at_once_keep_one_pending_set,
    |db: TestDb| async move {
        use hr_bridge::db::NewPending;
        let app = db.spawn().await;
        // Several replicas' history writers recording the same refusal at once
        // (each looks for a pending set, finds none, and inserts): they must all
        // get the one id, never replace that set by an identical one (a
        // notification or an operator holding the first id would find it gone).
        for round in 0..5 {
            let new = NewPending {
                now_ms: 1_000 + round,
                set_digest: format!("set-{round}"),
                base_digest: "base".into(),
                payload_digest: "payload".into(),
                users_dropped: 1,
                groups_dropped: 0,
                previous_total: 10,
                previous_groups: 1,
                max_deletions: 0,
                max_deletion_ratio: 0.0,
                guard_min_objects: 0,
                reasons: "test".into(),
            };
            let calls = (0..6).map(|_| {
                let (db, new) = (app.db.clone(), new.clone());
                tokio::spawn(async move { db.record_refusal(&new, &[('u', "e001")]).await })
            });
            let mut ids = Vec::new();
            for call in calls.collect::<Vec<_>>() {
                ids.push(call.await.expect("joins").expect("recorded"));
            }
            ids.dedup();
            assert_eq!(ids.len(), 1, "round {round}: {ids:?}");
            let pending = approvals::pending(&app.db).await.unwrap().unwrap();
            assert_eq!(pending.id, ids[0], "round {round}");
            let superseded = app
                .rows(&format!(
                    "SELECT status FROM sync_approvals WHERE set_digest = 'set-{round}'"
                ))
                .await;
            assert_eq!(superseded, [[Some("pending".to_owned())]], "round {round}");
        }
    }
);
