//! The retentions (`sync.history_retention_days`, `auth.audit_retention_days`)
//! follow SIGHUP: the real binary serving, its configuration file edited, SIGHUP
//! sent; the log says what changed, and rows older than the new retention are
//! pruned at once rather than within the hour.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::helpers::{free_port, TestDb};
use crate::on_all_backends;
use crate::operator::{Served, CREDENTIALS};

const DAY_MS: i64 = 86_400_000;

fn write_config(dir: &std::path::Path, port: u16, history_days: u32, audit_days: u32) {
    std::fs::write(
        dir.join("hr-bridge.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [sync]\nhistory_retention_days = {history_days}\n\
             [auth]\naudit_retention_days = {audit_days}\n"
        ),
    )
    .expect("config written");
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_millis()).expect("fits")
}

/// RFC 3339 of `days_ago` days before now, as the audit trail stores it.
fn audit_time(days_ago: u64) -> String {
    let at = SystemTime::now() - Duration::from_secs(days_ago * 86_400);
    humantime::format_rfc3339_millis(at).to_string()
}

/// The first column of each row left, in order.
async fn left(db: &TestDb, sql: &str) -> Vec<String> {
    db.rows(sql)
        .await
        .into_iter()
        .map(|row| row[0].clone().unwrap_or_default())
        .collect()
}

on_all_backends!(
    a_shorter_retention_on_sighup_is_logged_and_prunes_at_once,
    |db: TestDb| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let reserved = free_port();
        let port = reserved.port();
        write_config(dir.path(), port, 400, 400);
        let mut env = CREDENTIALS.to_vec();
        env.push(("HR_BRIDGE__DATABASE__URL", &db.url));
        let mut served = Served::start(&dir.path().join("hr-bridge.toml"), &env);
        served.wait_for("database ready");
        // Start-up's own round is done: what follows is the reload's.
        served.wait_for("pruned the sync history");
        served.wait_for("pruned the authentication audit trail");

        let now = now_ms();
        db.load(&format!(
            "INSERT INTO sync_history (occurred_ms, client_addr, outcome, status, duration_ms, names) \
             VALUES ({}, 'old', 'served', 200, 1, 'none'), ({}, 'recent', 'served', 200, 1, 'none')",
            now - 30 * DAY_MS,
            now - DAY_MS,
        ))
        .await;
        db.load(&format!(
            "INSERT INTO auth_audit (occurred_at, username, outcome, reason) \
             VALUES ('{}', 'old', 'failure', 'bad_password'), \
                    ('{}', 'recent', 'failure', 'bad_password')",
            audit_time(30),
            audit_time(1),
        ))
        .await;
        let history = "SELECT client_addr FROM sync_history ORDER BY id";
        assert_eq!(left(&db, history).await.len(), 2);

        write_config(dir.path(), port, 7, 10);
        served.signal(libc::SIGHUP);
        let line = served.wait_for("applied new retention settings");
        assert!(
            line.contains("sync.history_retention_days 400 -> 7"),
            "{line}"
        );
        assert!(
            line.contains("auth.audit_retention_days 400 -> 10"),
            "{line}"
        );
        let pruned = served.wait_for("pruned the sync history");
        assert!(pruned.contains("removed=1"), "{pruned}");
        let audit = served.wait_for("pruned the authentication audit trail");
        assert!(audit.contains("removed=1"), "{audit}");
        assert_eq!(
            left(&db, history).await,
            ["recent"],
            "only the call within 7 days is left"
        );
        assert_eq!(
            left(&db, "SELECT username FROM auth_audit ORDER BY id").await,
            ["recent"]
        );
    }
);
