//! The sync history: one row per `/sync` call whatever it answered, the names
//! behind the counts (bounded per call), `hr-bridge history`, `history show`,
//! `history person`, and retention.

use std::time::Duration;

use hr_bridge::ops::history::{self, SyncCall, NAMES_KEPT};

use crate::approvals::{cli, wait_for_pending};
use crate::guard::seed_people;
use crate::helpers::{url_socket_addr, Proxy, TestApp};
use crate::on_all_backends;

/// Waits until the history holds `n` calls whose names are written, and
/// returns them oldest first.
pub async fn wait_for_calls(app: &TestApp, n: usize) -> Vec<SyncCall> {
    for _ in 0..600 {
        let calls = history::list(&app.db, 1000, None).await.expect("reads");
        if calls.len() >= n && calls.iter().all(|c| c.names != "pending") {
            return calls.into_iter().rev().collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the history did not reach {n} call(s)");
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

on_all_backends!(
    every_sync_call_is_recorded_with_its_outcome_and_changes,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 2;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 10).await;
        // 1: the first sync adds everyone.
        assert_eq!(app.post_sync().await.status(), 200);
        // 2: the same data again changes nothing.
        assert_eq!(app.post_sync().await.status(), 200);
        // 3: one hire, one edit, one leaver.
        app.exec(
            "INSERT INTO employees (username, email, nick_name, active) VALUES ('newbie', 'n@example.com', 'New', TRUE);
             UPDATE employees SET email = 'x@example.com', phone1 = '1' WHERE username = 'e004';
             UPDATE employees SET active = FALSE WHERE username = 'e009';",
        )
        .await;
        assert_eq!(app.post_sync().await.status(), 200);
        // 4: invalid data.
        app.exec("UPDATE departments SET active = FALSE WHERE group_no = 'ROOT'")
            .await;
        assert_eq!(app.post_sync().await.status(), 409);
        app.exec("UPDATE departments SET active = TRUE WHERE group_no = 'ROOT'")
            .await;
        // 5: the guard.
        app.exec("UPDATE employees SET active = FALSE WHERE username IN ('e005', 'e006', 'e007')")
            .await;
        assert_eq!(app.post_sync().await.status(), 409);

        let calls = wait_for_calls(&app, 5).await;
        let outcomes: Vec<(&str, i32)> = calls
            .iter()
            .map(|c| (c.outcome.as_str(), c.status))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("served", 200),
                ("served", 200),
                ("served", 200),
                ("refused_data", 409),
                ("refused_guard", 409)
            ]
        );
        for call in &calls {
            assert_eq!(call.client_addr.as_deref(), Some("127.0.0.1"));
            assert!(call.request_id.as_deref().is_some_and(|r| !r.is_empty()));
        }
        let first = &calls[0];
        assert_eq!((first.users, first.departments), (Some(10), Some(2)));
        assert!(first.bytes.unwrap() > 0 && first.digest.is_some());
        let c = first.changes.unwrap();
        assert_eq!((c.users_added, c.groups_added, c.users_dropped), (10, 2, 0));
        let c = calls[1].changes.unwrap();
        assert_eq!(c, Default::default(), "an unchanged sync");
        let c = calls[2].changes.unwrap();
        assert_eq!((c.users_added, c.users_changed, c.users_dropped), (1, 1, 1));
        assert_eq!(calls[2].base_digest, first.digest);
        assert_eq!(calls[3].changes, None);
        assert!(calls[3].detail.as_deref().unwrap().contains("1 problem(s)"));
        let guard = &calls[4];
        assert_eq!(guard.changes.unwrap().users_dropped, 3);
        assert!(guard.approval_id.is_some());
        assert!(guard
            .detail
            .as_deref()
            .unwrap()
            .contains("sync.max_deletions = 2"));

        // `history show` lists the names and the fields that changed.
        let shown = stdout(&cli(&app, &["history", "show", &calls[2].id.to_string()]));
        assert!(shown.contains("users added:\n  newbie\n"), "{shown}");
        assert!(
            shown.contains("users changed:\n  e004 (email, phone1)\n"),
            "{shown}"
        );
        assert!(shown.contains("users dropped:\n  e009\n"), "{shown}");
        let json: serde_json::Value = serde_json::from_str(&stdout(&cli(
            &app,
            &["history", "show", &guard.id.to_string(), "--json"],
        )))
        .unwrap();
        let dropped: Vec<&str> = json["names"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["change"] == "dropped")
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert_eq!(dropped, ["e005", "e006", "e007"]);
        assert_eq!(json["approval"]["status"], "pending");

        // The list, newest first, as text and JSON.
        let listed = stdout(&cli(&app, &["history", "--limit", "2"]));
        assert_eq!(
            listed.lines().filter(|l| l.contains("refused")).count(),
            2,
            "{listed}"
        );
        assert!(!listed.contains("served"), "{listed}");
        let json: serde_json::Value =
            serde_json::from_str(&stdout(&cli(&app, &["history", "--json"]))).unwrap();
        assert_eq!(json["calls"].as_array().unwrap().len(), 5);
        assert_eq!(json["calls"][0]["outcome"], "refused_guard");

        // The same refusal again keeps no names of its own.
        assert_eq!(app.post_sync().await.status(), 409);
        let calls = wait_for_calls(&app, 6).await;
        assert_eq!(calls[5].names, "same_as");
        assert_eq!(calls[5].names_of, Some(guard.id));
        assert_eq!(calls[5].changes, guard.changes);
        assert_eq!(
            history::show(&app.db, calls[5].id, None)
                .await
                .unwrap()
                .unwrap()
                .names
                .len(),
            3
        );
    }
);

on_all_backends!(
    history_person_says_when_someone_was_added_changed_and_dropped_and_who_approved,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 0;
        let app = db.spawn_with(settings).await;
        seed_people(&app, 5).await;
        assert_eq!(app.post_sync().await.status(), 200);
        app.exec("UPDATE employees SET nick_name = 'Robert' WHERE username = 'e002'")
            .await;
        assert_eq!(app.post_sync().await.status(), 200);
        app.exec("UPDATE employees SET active = FALSE WHERE username = 'e002'")
            .await;
        assert_eq!(app.post_sync().await.status(), 409);
        let pending = wait_for_pending(&app, 1).await;
        let id = pending.id.to_string();
        let approved = cli(
            &app,
            &[
                "accept-deletions",
                &id,
                "--yes",
                "--reason",
                "left the company",
            ],
        );
        stdout(&approved);
        assert_eq!(app.post_sync().await.status(), 200);
        let calls = wait_for_calls(&app, 4).await;

        let events = history::person(&app.db, "e002").await.unwrap();
        let seen: Vec<(i64, String, &str)> = events
            .iter()
            .map(|e| {
                let change = serde_json::to_value(e.change).unwrap();
                (
                    e.call_id,
                    change.as_str().unwrap().to_owned(),
                    e.outcome.as_str(),
                )
            })
            .collect();
        let expected = [
            (calls[0].id, "added", "served"),
            (calls[1].id, "changed", "served"),
            (calls[2].id, "dropped", "refused_guard"),
            (calls[3].id, "dropped", "served"),
        ];
        assert_eq!(
            seen,
            expected.map(|(id, change, outcome)| (id, change.to_owned(), outcome))
        );
        assert_eq!(
            events[3]
                .approval
                .as_ref()
                .and_then(|a| a.approved_by.as_deref()),
            Some("hr-lead")
        );
        let text = stdout(&cli(&app, &["history", "person", "e002"]));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].contains("user added") && lines[0].contains("served to OMFLOW"),
            "{text}"
        );
        assert!(lines[1].contains("user changed (nick_name)"), "{text}");
        assert!(
            lines[2].contains("user dropped")
                && lines[2].contains("refused_guard: OMFLOW changed nothing"),
            "{text}"
        );
        assert!(
            lines[3].contains("user dropped")
                && lines[3].contains("approved by hr-lead")
                && lines[3].contains("reason: left the company"),
            "{text}"
        );
        // Exactly that name: no prefix or case match.
        assert!(history::person(&app.db, "E002").await.unwrap().is_empty());
        assert!(history::person(&app.db, "e00").await.unwrap().is_empty());
        let none = stdout(&cli(&app, &["history", "person", "nobody"]));
        assert!(none.contains("is named by no /sync call"), "{none}");
    }
);

on_all_backends!(
    history_keeps_a_bounded_number_of_names_with_the_true_counts,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 5;
        let app = db.spawn_with(settings).await;
        let n = NAMES_KEPT + 7;
        for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|i| format!("('p{i:06}', 'p{i:06}@example.com', 'P', TRUE)"))
                .collect();
            app.exec(&format!(
                "INSERT INTO employees (username, email, nick_name, active) VALUES {}",
                rows.join(", ")
            ))
            .await;
        }
        assert_eq!(app.post_sync().await.status(), 200);
        app.exec("UPDATE employees SET active = FALSE").await;
        assert_eq!(app.post_sync().await.status(), 409);
        let calls = wait_for_calls(&app, 2).await;
        let n = i64::try_from(n).unwrap();
        assert_eq!(calls[0].changes.unwrap().users_added, n);
        assert_eq!(calls[1].changes.unwrap().users_dropped, n);
        for call in &calls {
            let detail = history::show(&app.db, call.id, None)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(detail.names.len(), NAMES_KEPT, "call {}", call.id);
        }
        // The pending approval lists every drop, not only the names kept.
        let pending = wait_for_pending(&app, n).await;
        let last = hr_bridge::ops::approvals::pending_drops(
            &app.db,
            pending.id,
            None,
            hr_bridge::ops::approvals::DropsPage::Last,
            2,
        )
        .await
        .unwrap();
        let names: Vec<&str> = last.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["p010005", "p010006"]);
    }
);

on_all_backends!(
    history_older_than_the_retention_is_pruned_at_start_up,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.history_retention_days = 30;
        let url = db.url.clone();
        let app = db.spawn_with(settings.clone()).await;
        seed_people(&app, 3).await;
        assert_eq!(app.post_sync().await.status(), 200);
        app.exec("UPDATE employees SET nick_name = 'x' WHERE username = 'e001'")
            .await;
        assert_eq!(app.post_sync().await.status(), 200);
        let calls = wait_for_calls(&app, 2).await;
        // The first call is made 31 days old, the second 29.
        let day = 86_400_000i64;
        let now = hr_bridge::directory::unix_ms();
        app.exec(&format!(
            "UPDATE sync_history SET occurred_ms = {} WHERE id = {};
             UPDATE sync_history SET occurred_ms = {} WHERE id = {};",
            now - 31 * day,
            calls[0].id,
            now - 29 * day,
            calls[1].id
        ))
        .await;
        let removed = history::prune(&app.db, 30).await.unwrap();
        assert_eq!(removed, 1);
        let left = history::list(&app.db, 10, None).await.unwrap();
        assert_eq!(left.iter().map(|c| c.id).collect::<Vec<_>>(), [calls[1].id]);
        assert!(history::show(&app.db, calls[0].id, None)
            .await
            .unwrap()
            .is_none());
        assert!(
            history::person(&app.db, "e000").await.unwrap().is_empty(),
            "the pruned call's names are gone"
        );
        // And a server started with that retention prunes at start-up.
        app.exec(&format!(
            "UPDATE sync_history SET occurred_ms = {} WHERE id = {}",
            now - 40 * day,
            calls[1].id
        ))
        .await;
        let _ = url;
        let again = crate::helpers::start(settings).await;
        again.startup_finished().await;
        assert!(history::list(&app.db, 10, None).await.unwrap().is_empty());
        let _ = again.shutdown(Duration::from_secs(1)).await;
    }
);

on_all_backends!(
    a_sync_answered_503_is_recorded_once_the_database_is_back,
    |db: TestDb| async move {
        if db.backend == Backend::Sqlite {
            // A file cannot be cut like a connection; PostgreSQL and MariaDB
            // play the outage through a proxy.
            return;
        }
        let proxy = Proxy::start(url_socket_addr(&db.url)).await;
        let settings = db.settings_through(&proxy);
        let app = db.spawn_with(settings).await;
        seed_people(&app, 3).await;
        assert_eq!(app.post_sync().await.status(), 200);
        wait_for_calls(&app, 1).await;
        proxy.cut();
        assert_eq!(app.post_sync().await.status(), 503);
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.restore();
        let calls = wait_for_calls(&app, 2).await;
        assert_eq!(calls[1].outcome, "unavailable");
        assert_eq!(calls[1].status, 503);
        assert_eq!(calls[1].changes, None);
    }
);
