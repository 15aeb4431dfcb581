//! Two replicas (two servers, each with its own pool) over one database behave as
//! one service: the lockout count, the deletion guard and the audit trail are the
//! same whichever replica answers, also when both answer at once.

use crate::authenticate::{add_employee, argon2id};
use crate::guard::seed_people;
use crate::helpers::{json_body, TestApp, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

/// The `status` of an `/authenticate` answer from the replica at `base`.
async fn login_at(app: &TestApp, base: &str, username: &str, password: &str) -> String {
    let response = app
        .client
        .post(format!("{base}/authenticate"))
        .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json_body(response).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Status and body of a `/sync` at the replica at `base`.
async fn sync_at(app: &TestApp, base: &str) -> (u16, axum::body::Bytes) {
    let response = app
        .client
        .post(format!("{base}/sync"))
        .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap())
}

async fn deactivate(app: &TestApp, names: &[&str]) {
    let list: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    app.exec(&format!(
        "UPDATE employees SET active = FALSE WHERE username IN ({})",
        list.join(", ")
    ))
    .await;
}

on_all_backends!(replicas_share_one_lockout_count, |db: TestDb| async move {
    let mut settings = db.settings();
    settings.auth.max_failures = 4;
    let mut app = db.spawn_with(settings.clone()).await;
    let other = app.spawn_sibling(settings).await;
    let replicas = [app.base_url.clone(), other];
    add_employee(&app, "alice", Some(&argon2id("right")), true).await;

    // Twelve simultaneous guesses spread over both replicas: exactly four are
    // checked, the rest meet the lock, whichever replica took them.
    let guesses = (0..12).map(|i| login_at(&app, &replicas[i % 2], "alice", "wrong"));
    let answers = futures_util::future::join_all(guesses).await;
    assert!(answers.iter().all(|s| s == "fail"));
    let audit = app.audit().await;
    let bad = audit.iter().filter(|r| r.2 == "bad_password").count();
    let locked = audit.iter().filter(|r| r.2 == "locked").count();
    assert_eq!((bad, locked), (4, 8), "{audit:?}");
    for base in &replicas {
        assert_eq!(login_at(&app, base, "alice", "right").await, "fail");
    }

    // An operator's unlock is seen by both, and a success on one resets the
    // count the other one reads.
    app.exec("DELETE FROM auth_lockouts WHERE username = 'alice'")
        .await;
    for i in 0..3 {
        assert_eq!(
            login_at(&app, &replicas[i % 2], "alice", "wrong").await,
            "fail"
        );
    }
    assert_eq!(
        login_at(&app, &replicas[1], "alice", "right").await,
        "success"
    );
    for i in 0..3 {
        assert_eq!(
            login_at(&app, &replicas[i % 2], "alice", "wrong").await,
            "fail"
        );
    }
    assert_eq!(
        login_at(&app, &replicas[0], "alice", "right").await,
        "success"
    );
});

on_all_backends!(
    replicas_write_one_audit_trail_in_order,
    |db: TestDb| async move {
        let mut app = db.spawn().await;
        let other = app.spawn_sibling(app.test_db.settings()).await;
        let replicas = [app.base_url.clone(), other];
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        let attempts = [
            ("alice", "right", "success"),
            ("ghost", "x", "unknown_user"),
            ("alice", "wrong", "bad_password"),
            ("alice", "right", "success"),
        ];
        for (i, (user, password, _)) in attempts.iter().enumerate() {
            login_at(&app, &replicas[i % 2], user, password).await;
        }
        let audit: Vec<(String, String)> = app
            .audit()
            .await
            .into_iter()
            .map(|(user, _, reason, _)| (user, reason))
            .collect();
        let expected: Vec<(String, String)> = attempts
            .iter()
            .map(|(user, _, reason)| ((*user).to_owned(), (*reason).to_owned()))
            .collect();
        assert_eq!(audit, expected);
    }
);

on_all_backends!(
    replicas_enforce_one_deletion_guard,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.sync.max_deletions = 3;
        settings.sync.max_deletion_ratio = 0.0;
        let mut app = db.spawn_with(settings.clone()).await;
        let other = app.spawn_sibling(settings).await;
        let (a, b) = (app.base_url.clone(), other);
        seed_people(&app, 20).await;

        let (status, first) = sync_at(&app, &a).await;
        assert_eq!(status, 200);
        assert_eq!(sync_at(&app, &b).await, (200, first.clone()));

        // A drop over the limit is refused by both replicas, and neither records
        // anything, so the refusal stands.
        deactivate(&app, &["e010", "e011", "e012", "e013"]).await;
        let before = app.db.snapshot_digest().await.unwrap();
        assert_eq!(sync_at(&app, &b).await.0, 409);
        assert_eq!(sync_at(&app, &a).await.0, 409);
        assert_eq!(sync_at(&app, &b).await.0, 409);
        assert_eq!(app.db.snapshot_digest().await.unwrap(), before);

        // Approved once, served by both.
        let pending = crate::approvals::wait_for_pending(&app, 4).await;
        let source = hr_bridge::source::Source::new(
            app.db.clone(),
            hr_bridge::source::Queries::built_in(),
            &secrecy::SecretString::from(app.test_db.url.clone()),
        )
        .unwrap();
        hr_bridge::ops::approvals::approve(
            &app.db,
            &source,
            pending.id,
            &pending.digest,
            "test",
            None,
        )
        .await
        .unwrap();
        let (status, approved) = sync_at(&app, &b).await;
        assert_eq!(status, 200);
        assert_eq!(sync_at(&app, &a).await, (200, approved.clone()));

        // A change within the limit, synced by both at once: every answer is the
        // same 200, and the snapshot both will compare against is that payload.
        deactivate(&app, &["e014", "e015"]).await;
        let syncs = (0..8).map(|i| {
            let base = if i % 2 == 0 { a.clone() } else { b.clone() };
            let app = &app;
            async move { sync_at(app, &base).await }
        });
        let answers = futures_util::future::join_all(syncs).await;
        let (_, body) = answers[0].clone();
        assert_ne!(body, approved);
        assert!(
            answers.iter().all(|answer| *answer == (200, body.clone())),
            "{:?}",
            answers
                .iter()
                .map(|(s, b)| (*s, b.len()))
                .collect::<Vec<_>>()
        );
        // The next drop is measured against what either replica served last.
        deactivate(&app, &["e016", "e017", "e018"]).await;
        assert_eq!(sync_at(&app, &a).await.0, 200);
        deactivate(&app, &["e003", "e004", "e005", "e006"]).await;
        assert_eq!(sync_at(&app, &b).await.0, 409);
        assert_eq!(sync_at(&app, &a).await.0, 409);
    }
);
