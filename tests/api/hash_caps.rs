//! Stored hashes beyond the cost caps never match, are never run, answer at once
//! with their own audit reason, leave other logins alone, and `hr-bridge check`
//! lists them. The measurements behind the caps are `examples/hash_cap_costs.rs`.

use std::time::{Duration, Instant};

use crate::authenticate::{add_employee, argon2id};
use crate::helpers::{json_body, TestApp};
use crate::on_all_backends;

const REAL_BCRYPT_04: &str = "$2b$04$ol1arZDoiYXKY.ONksA7IO..LfjoFIKz8eLQBDwxB928D7Ma7Dux2";
const REAL_ARGON2ID: &str = "$argon2id$v=19$m=19456,t=2,p=1$UROqH9eegsl1pWdvt+ijEA$5+96yN9snLq2zJ4qAkRSlmuUEb8Hv8mSus3o15OpnKk";
const REAL_DJANGO: &str =
    "pbkdf2_sha256$1000$S4ltS4ltS4lt$iohFPzzDJse1iZi+1ZFU2VScFmCj40SnAdUB6OdkYt4=";

/// Planted hashes: each would hold a hashing slot for seconds (or hours) if run.
fn planted() -> Vec<(&'static str, String)> {
    vec![
        ("bcrypt16", REAL_BCRYPT_04.replacen("$04$", "$16$", 1)),
        (
            "argon256m",
            REAL_ARGON2ID.replacen("m=19456,t=2", "m=262144,t=1", 1),
        ),
        (
            "argon2t64",
            REAL_ARGON2ID.replacen("m=19456,t=2", "m=19456,t=64", 1),
        ),
        ("pbkdf10m", REAL_DJANGO.replacen("$1000$", "$10000000$", 1)),
    ]
}

async fn login(app: &TestApp, username: &str, password: &str) -> (String, Duration) {
    let started = Instant::now();
    let body = json_body(app.post_authenticate(username, password).await).await;
    (
        body["status"].as_str().unwrap_or("").to_owned(),
        started.elapsed(),
    )
}

on_all_backends!(
    costly_stored_hashes_fail_at_once_without_blocking_other_logins,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_concurrent_checks = 1;
        settings.auth.max_failures = 0;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        let planted = planted();
        for (user, hash) in &planted {
            add_employee(&app, user, Some(hash), true).await;
        }
        // Every planted account at once, then another user's login behind them on
        // the single hashing slot.
        let attacks = planted.iter().map(|(user, _)| login(&app, user, "guess"));
        let attacks = futures_util::future::join_all(attacks);
        let alice = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            login(&app, "alice", "right").await
        };
        let (attacks, alice) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(attacks, alice)
        })
        .await
        .expect("answered within 30 s");
        for ((user, _), (status, took)) in planted.iter().zip(&attacks) {
            assert_eq!(status, "fail", "{user}");
            assert!(took < &Duration::from_secs(1), "{user} took {took:?}");
        }
        assert_eq!(alice.0, "success");
        assert!(
            alice.1 < Duration::from_secs(1),
            "alice waited {:?}",
            alice.1
        );
        let reasons: Vec<(String, String)> = app
            .audit()
            .await
            .into_iter()
            .map(|(user, _, reason, _)| (user, reason))
            .filter(|(user, _)| user != "alice")
            .collect();
        assert_eq!(reasons.len(), planted.len(), "{reasons:?}");
        assert!(
            reasons
                .iter()
                .all(|(_, reason)| reason == "hash_too_costly"),
            "{reasons:?}"
        );
    }
);

on_all_backends!(
    check_lists_accounts_with_costly_hashes,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;
        add_employee(&app, "nohash", None, true).await;
        let cost31 = REAL_BCRYPT_04.replacen("$04$", "$31$", 1);
        add_employee(&app, "cost31", Some(&cost31), true).await;
        for (user, hash) in planted() {
            add_employee(&app, user, Some(&hash), true).await;
        }
        let output = crate::helpers::binary()
            .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
            .arg("check")
            .output()
            .expect("hr-bridge runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let costly: Vec<&str> = stdout
            .lines()
            .filter(|line| line.contains("beyond the cost caps"))
            .collect();
        assert_eq!(costly.len(), 5, "{stdout}");
        for user in ["cost31", "bcrypt16", "argon256m", "argon2t64", "pbkdf10m"] {
            assert!(
                costly
                    .iter()
                    .any(|line| line.contains(&format!("\"{user}\""))),
                "{user} missing: {stdout}"
            );
        }
        // The data itself is fine for /sync, so the exit code stays 0.
        assert!(output.status.success(), "{stdout}");
    }
);
