//! The audit trail: one row per attempt with the true reason and client address,
//! never a password; pruned after the retention period.

use std::time::Duration;

use crate::authenticate::{add_employee, argon2id};
use crate::helpers::{OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

const SECRET: &str = "Sup3r-Secret-Pa55";

on_all_backends!(
    audit_records_every_outcome_without_passwords,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 2;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id(SECRET)), true).await;
        add_employee(&app, "ex", Some(&argon2id(SECRET)), false).await;
        add_employee(&app, "nohash", None, true).await;
        add_employee(&app, "bob", Some(&argon2id(SECRET)), true).await;
        app.post_authenticate("alice", SECRET).await;
        app.post_authenticate("ghost", SECRET).await;
        app.post_authenticate("ex", SECRET).await;
        app.post_authenticate("nohash", SECRET).await;
        for _ in 0..3 {
            app.post_authenticate("bob", &format!("{SECRET}!")).await;
        }
        let audit = app.audit().await;
        let summary: Vec<(&str, &str, &str)> = audit
            .iter()
            .map(|(u, o, r, _)| (u.as_str(), o.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("alice", "success", "success"),
                ("ghost", "failure", "unknown_user"),
                ("ex", "failure", "inactive"),
                ("nohash", "failure", "no_hash"),
                ("bob", "failure", "bad_password"),
                ("bob", "failure", "bad_password"),
                ("bob", "failure", "locked"),
            ]
        );
        assert!(audit.iter().all(|r| r.3.as_deref() == Some("127.0.0.1")));
        let everything = app
            .rows("SELECT occurred_at, username, outcome, reason, client_addr FROM auth_audit")
            .await;
        let dump = format!("{everything:?}");
        assert!(!dump.contains(SECRET), "a password reached the audit table");
    }
);

on_all_backends!(
    forwarded_for_is_believed_only_from_trusted_proxies,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.trusted_proxies = vec!["127.0.0.0/8".into()];
        let mut app = db.spawn_with(settings.clone()).await;
        let mut untrusting = settings;
        untrusting.auth.trusted_proxies = vec![];
        let direct = app.spawn_sibling(untrusting).await;
        for base in [app.base_url.clone(), direct] {
            app.client
                .post(format!("{base}/authenticate"))
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .header("x-forwarded-for", "198.51.100.23, 127.0.0.1")
                .json(&serde_json::json!({"username": "ghost", "password": "x"}))
                .send()
                .await
                .unwrap();
        }
        let clients: Vec<Option<String>> = app.audit().await.into_iter().map(|r| r.3).collect();
        assert_eq!(
            clients,
            [
                Some("198.51.100.23".to_owned()),
                Some("127.0.0.1".to_owned())
            ]
        );
    }
);

on_all_backends!(
    forwarded_hops_with_ports_are_read_and_an_unreadable_hop_is_not_skipped,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.trusted_proxies = vec!["127.0.0.0/8".into(), "10.0.0.0/8".into()];
        let app = db.spawn_with(settings).await;
        // The first hop of each is what a client wrote itself; the proxies (the
        // trusted 10.1.2.3 and the peer) appended the rest.
        for xff in [
            "198.51.100.23, 203.0.113.9:51234",
            "198.51.100.23, [2001:db8::7]:443, 10.1.2.3:8080",
            "198.51.100.23, unknown, 10.1.2.3",
        ] {
            app.client
                .post(format!("{}/authenticate", app.base_url))
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .header("x-forwarded-for", xff)
                .json(&serde_json::json!({"username": "ghost", "password": "x"}))
                .send()
                .await
                .unwrap();
        }
        let clients: Vec<Option<String>> = app.audit().await.into_iter().map(|r| r.3).collect();
        assert_eq!(
            clients,
            [
                Some("203.0.113.9".to_owned()),
                Some("2001:db8::7".to_owned()),
                // The proxy that wrote the hop nobody can read.
                Some("10.1.2.3".to_owned()),
            ]
        );
    }
);

on_all_backends!(
    audit_rows_past_retention_are_pruned,
    |db: TestDb| async move {
        let app = db.spawn().await;
        app.exec(
            "INSERT INTO auth_audit (occurred_at, username, outcome, reason, client_addr) \
         VALUES ('2020-01-01T00:00:00.000Z', 'old', 'failure', 'bad_password', NULL)",
        )
        .await;
        app.post_authenticate("recent", "x").await;
        let removed = hr_bridge::password::prune_auth_state(&app.db, 90, Duration::from_secs(900))
            .await
            .unwrap();
        assert_eq!(removed, 1);
        let users: Vec<String> = app.audit().await.into_iter().map(|r| r.0).collect();
        assert_eq!(users, ["recent"]);
    }
);
