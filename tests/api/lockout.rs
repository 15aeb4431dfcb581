//! Lockout: database-held, atomic under concurrency, shared by replicas, and
//! never fed by database errors.

use std::time::Duration;

use crate::authenticate::{add_employee, argon2id};
use crate::helpers::{json_body, url_socket_addr, Proxy, TestApp, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

async fn status_at(app: &TestApp, base_url: &str, username: &str, password: &str) -> String {
    let response = app
        .client
        .post(format!("{base_url}/authenticate"))
        .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    json_body(response).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn status(app: &TestApp, username: &str, password: &str) -> String {
    status_at(app, &app.base_url, username, password).await
}

fn reasons(audit: &[(String, String, String, Option<String>)]) -> Vec<&str> {
    audit
        .iter()
        .map(|(_, _, reason, _)| reason.as_str())
        .collect()
}

on_all_backends!(
    lockout_engages_at_the_limit_and_expires,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 3;
        settings.auth.lockout_secs = 900;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        for _ in 0..3 {
            assert_eq!(status(&app, "alice", "wrong").await, "fail");
        }
        // Locked: even the right password fails, with the same message.
        let body = json_body(app.post_authenticate("alice", "right").await).await;
        assert_eq!(body["message"], "invalid username or password");
        // Still locked a second before the end (the test's clock moves only when
        // told, so this is exact whatever the machine's load).
        app.clock.advance(Duration::from_secs(899));
        assert_eq!(status(&app, "alice", "right").await, "fail");
        assert_eq!(
            reasons(&app.audit().await),
            [
                "bad_password",
                "bad_password",
                "bad_password",
                "locked",
                "locked"
            ]
        );
        app.clock.advance(Duration::from_secs(1));
        assert_eq!(status(&app, "alice", "right").await, "success");
    }
);

on_all_backends!(success_resets_the_failure_count, |db: TestDb| async move {
    let mut settings = db.settings();
    settings.auth.max_failures = 3;
    let app = db.spawn_with(settings).await;
    add_employee(&app, "alice", Some(&argon2id("right")), true).await;
    for _ in 0..2 {
        assert_eq!(status(&app, "alice", "wrong").await, "fail");
    }
    assert_eq!(status(&app, "alice", "right").await, "success");
    for _ in 0..2 {
        assert_eq!(status(&app, "alice", "wrong").await, "fail");
    }
    assert_eq!(status(&app, "alice", "right").await, "success");
});

on_all_backends!(lockout_zero_disables_it, |db: TestDb| async move {
    let mut settings = db.settings();
    settings.auth.max_failures = 0;
    let app = db.spawn_with(settings).await;
    add_employee(&app, "alice", Some(&argon2id("right")), true).await;
    for _ in 0..8 {
        assert_eq!(status(&app, "alice", "wrong").await, "fail");
    }
    assert_eq!(status(&app, "alice", "right").await, "success");
});

on_all_backends!(
    concurrent_wrong_attempts_lock_exactly_at_the_limit,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 5;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        let attempts = (0..20).map(|_| status(&app, "alice", "wrong"));
        let statuses = futures_util::future::join_all(attempts).await;
        assert!(statuses.iter().all(|s| s == "fail"));
        let audit = app.audit().await;
        let bad = audit.iter().filter(|r| r.2 == "bad_password").count();
        let locked = audit.iter().filter(|r| r.2 == "locked").count();
        assert_eq!((bad, locked), (5, 15), "{audit:?}");
        assert_eq!(status(&app, "alice", "right").await, "fail");
    }
);

on_all_backends!(
    two_servers_on_one_database_share_the_lockout,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 3;
        let mut app = db.spawn_with(settings.clone()).await;
        let other = app.spawn_sibling(settings).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        assert_eq!(status(&app, "alice", "wrong").await, "fail");
        assert_eq!(status_at(&app, &other, "alice", "wrong").await, "fail");
        assert_eq!(status(&app, "alice", "wrong").await, "fail");
        assert_eq!(status_at(&app, &other, "alice", "right").await, "fail");
        assert_eq!(reasons(&app.audit().await).last(), Some(&"locked"));
    }
);

on_all_backends!(
    database_errors_are_never_counted_as_failures,
    |db: TestDb| async move {
        if db.backend == Backend::Sqlite {
            return; // an embedded file cannot become unreachable
        }
        let proxy = Proxy::start(url_socket_addr(&db.url)).await;
        let mut settings = db.settings_through(&proxy);
        settings.auth.max_failures = 1;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        proxy.cut();
        for _ in 0..3 {
            let response = app.post_authenticate("alice", "wrong").await;
            assert_eq!(response.status(), 503);
        }
        proxy.restore();
        let mut answered = None;
        for _ in 0..20 {
            let response = app.post_authenticate("alice", "right").await;
            if response.status() == 200 {
                answered = Some(json_body(response).await["status"].clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(answered, Some(serde_json::json!("success")));
    }
);
