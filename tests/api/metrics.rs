//! `/metrics` exposes request, authentication and sync figures after traffic,
//! and nothing (no label, no figure) that tells apart why a login failed.

use std::time::{Duration, Instant};

use hr_bridge::db::Backend;

use crate::authenticate::{add_employee, argon2id};
use crate::helpers::{TestApp, TestDb};
use crate::on_all_backends;

const SECRET: &str = "Sup3r-Secret-Pa55";

async fn metrics_text(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

on_all_backends!(
    metrics_expose_counters_after_traffic,
    |db: TestDb| async move {
        let app = db.spawn().await;
        crate::guard::seed_people(&app, 3).await;
        assert_eq!(app.post_sync().await.status(), 200);
        app.post_authenticate("nobody", "x").await;
        let response = app
            .client
            .get(format!("{}/metrics", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = response.text().await.unwrap();
        for expected in [
            "hr_bridge_http_requests_total{route=\"/sync\",status=\"200\"}",
            "hr_bridge_http_request_duration_seconds_bucket{route=\"/sync\",status=\"200\"",
            "hr_bridge_auth_attempts_total{outcome=\"failure\"}",
            "hr_bridge_sync_users ",
            "hr_bridge_sync_bytes ",
            "hr_bridge_db_pool_connections ",
            "hr_bridge_sync_calls_in_flight 0",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
    }
);

/// A path that is no route is counted under one label, never under its own
/// name: a scanner cannot make a series per path it tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_share_one_metrics_label() {
    let Some(db) = TestDb::create(Backend::Sqlite).await else {
        return;
    };
    let app = db.spawn().await;
    let probe = format!("/scan-{}", uuid::Uuid::new_v4().simple());
    for path in [probe.as_str(), "/sync/", "/.env"] {
        let response = app
            .client
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let text = metrics_text(&app).await;
    assert!(
        text.contains("hr_bridge_http_requests_total{route=\"unmatched\",status=\"404\"}"),
        "{text}"
    );
    for path in [probe.as_str(), "/sync/", "/.env"] {
        assert!(
            !text.contains(&format!("route=\"{path}\"")),
            "{path}:\n{text}"
        );
    }
}

on_all_backends!(
    every_response_carries_a_request_id,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let response = app
            .client
            .get(format!("{}/healthz", app.base_url))
            .send()
            .await
            .unwrap();
        let id = response.headers().get("x-request-id").expect("request id");
        assert_eq!(id.len(), 36);
    }
);

on_all_backends!(
    metrics_listen_moves_metrics_off_the_omflow_port,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.server.metrics_listen = Some(crate::helpers::LOCAL_FREE_PORT);
        let app = db.spawn_with(settings).await;
        assert_eq!(app.post_sync().await.status(), 200);

        let on_main = app
            .client
            .get(format!("{}/metrics", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(on_main.status(), 404);
        assert_eq!(crate::helpers::fail_message(on_main).await, "not found");

        let metrics_addr = app.metrics_addr.expect("a separate metrics listener");
        assert_ne!(metrics_addr.port(), app.addr.port());
        let separate = app
            .client
            .get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(separate.status(), 200);
        let text = separate.text().await.unwrap();
        assert!(
            text.contains("hr_bridge_http_requests_total{route=\"/sync\",status=\"200\"}"),
            "{text}"
        );
        // The metrics listener serves nothing else, OMFLOW's endpoints least of all.
        let sync = app
            .client
            .post(format!("http://{metrics_addr}/sync"))
            .basic_auth(
                crate::helpers::OMFLOW_USER,
                Some(crate::helpers::OMFLOW_PASSWORD),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(sync.status(), 404);
        assert_eq!(crate::helpers::fail_message(sync).await, "not found");
        app.stop().await;
    }
);

on_all_backends!(
    metrics_stay_on_the_main_port_by_default,
    |db: TestDb| async move {
        let app = db.spawn().await;
        assert!(app.metrics_addr.is_none());
        let response = app
            .client
            .get(format!("{}/metrics", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
);

/// Every reason a login can fail for (what the audit trail records).
const REASONS: [&str; 7] = [
    "unknown_user",
    "bad_password",
    "inactive",
    "no_hash",
    "locked",
    "ambiguous_user",
    "hash_too_costly",
];

on_all_backends!(
    failed_logins_look_alike_in_answers_and_metrics,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 2;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id(SECRET)), true).await;
        add_employee(&app, "ex", Some(&argon2id(SECRET)), false).await;
        add_employee(&app, "nohash", None, true).await;
        let attempts = [
            ("ghost", SECRET),
            ("alice", "wrong"),
            ("ex", SECRET),
            ("nohash", SECRET),
            ("alice", "wrong"),
            ("alice", SECRET),
        ];
        let mut answers = Vec::new();
        for (username, password) in attempts {
            let response = app.post_authenticate(username, password).await;
            let status = response.status();
            let mut headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            answers.push((status, headers, response.text().await.unwrap()));
            // Scraped after every attempt: no state in between tells them apart.
            let text = metrics_text(&app).await;
            for reason in REASONS {
                assert!(!text.contains(reason), "/metrics names {reason}:\n{text}");
            }
            for line in text
                .lines()
                .filter(|l| l.starts_with("hr_bridge_auth_attempts_total"))
            {
                let labels = line.split_whitespace().next().unwrap();
                assert!(
                    [
                        "hr_bridge_auth_attempts_total{outcome=\"success\"}",
                        "hr_bridge_auth_attempts_total{outcome=\"failure\"}",
                        "hr_bridge_auth_attempts_total{outcome=\"busy\"}",
                    ]
                    .contains(&labels),
                    "{line}"
                );
            }
            assert!(text.contains("hr_bridge_auth_attempts_total{outcome=\"failure\"}"));
        }
        assert!(
            answers.iter().all(|a| a == &answers[0]),
            "answers differ: {answers:#?}"
        );
        // The audit trail keeps the detail.
        let reasons: Vec<String> = app.audit().await.into_iter().map(|r| r.2).collect();
        assert_eq!(
            reasons,
            [
                "unknown_user",
                "bad_password",
                "inactive",
                "no_hash",
                "bad_password",
                "locked"
            ]
        );
    }
);

/// The unlabelled gauge `name` as `/metrics` shows it now.
pub async fn gauge(app: &TestApp, name: &str) -> f64 {
    let text = metrics_text(app).await;
    series(&text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// Waits until the gauge `name` shows `value` (within a minute, however loaded
/// the machine): a state to wait on instead of a sleep.
pub async fn wait_for_gauge(app: &TestApp, name: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = gauge(app, name).await;
        if now == value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {now}, not {value}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `hr_bridge_password_checks_in_flight` as `/metrics` shows it now.
async fn in_flight(app: &TestApp) -> f64 {
    gauge(app, "hr_bridge_password_checks_in_flight").await
}

/// One reading of the in-flight gauge: when `/metrics` was asked, when it
/// answered, and what it showed.
struct Sample {
    asked: Instant,
    answered: Instant,
    value: f64,
}

/// Longest pause between two readings of the gauge.
const POLL: Duration = Duration::from_millis(20);
const FLOOR: Duration = Duration::from_millis(1500);

/// A hash ends sooner or later by format (or is skipped: unknown hash, locked
/// account), but the failure is held until the floor. A figure anyone can poll
/// must show the login in flight until its answer, not until its hash ended.
/// One backend: the gauge is process-wide (nextest gives each test a process of
/// its own), and the test samples it in a loop.
///
/// Judged by time, not by the number of readings: no failure can be answered
/// before the floor has passed since it was sent, so every reading taken after
/// one that saw the login, and answered before `sent + FLOOR`, must see it too.
/// A reading that ends after that point may race with the answer and is not
/// judged. A machine too loaded to read the gauge late in the hold (where a
/// gauge that followed the hash would show 0) proves nothing either way: the
/// login is tried again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_is_in_flight_until_its_answer() {
    let Some(db) = TestDb::create(Backend::Sqlite).await else {
        return;
    };
    let mut settings = db.settings();
    settings.auth.failure_floor_ms = u64::try_from(FLOOR.as_millis()).unwrap();
    let app = db.spawn_with(settings).await;
    let mut runs = Vec::new();
    for _ in 0..5 {
        let sent = Instant::now();
        let login = {
            let (client, url) = (app.client.clone(), format!("{}/authenticate", app.base_url));
            tokio::spawn(async move {
                client
                    .post(url)
                    .basic_auth(
                        crate::helpers::OMFLOW_USER,
                        Some(crate::helpers::OMFLOW_PASSWORD),
                    )
                    .json(&serde_json::json!({"username": "ghost", "password": "x"}))
                    .send()
                    .await
                    .unwrap()
            })
        };
        let mut samples = Vec::new();
        while !login.is_finished() {
            let asked = Instant::now();
            let value = in_flight(&app).await;
            samples.push(Sample {
                asked,
                answered: Instant::now(),
                value,
            });
            tokio::time::sleep(POLL).await;
        }
        let answer = login.await.unwrap();
        assert!(
            sent.elapsed() >= FLOOR,
            "answered before the floor: {:?}",
            sent.elapsed()
        );
        let body = crate::helpers::json_body(answer).await;
        assert_eq!(body["status"], "fail");

        let held_until = sent + FLOOR;
        let seen = samples.iter().position(|s| s.value > 0.0);
        let judged: Vec<&Sample> = seen
            .map(|first| {
                let since = samples[first].answered;
                samples
                    .iter()
                    .filter(|s| s.asked >= since && s.answered < held_until)
                    .collect()
            })
            .unwrap_or_default();
        let timeline: Vec<(u128, u128, f64)> = samples
            .iter()
            .map(|s| {
                let ms = |at: Instant| at.saturating_duration_since(sent).as_millis();
                (ms(s.asked), ms(s.answered), s.value)
            })
            .collect();
        let dropped: Vec<_> = judged.iter().filter(|s| s.value == 0.0).collect();
        assert!(
            dropped.is_empty(),
            "the login dropped out before its answer \
             (ms after sending: asked, answered, value): {timeline:?}"
        );
        // A reading in the last third of the hold, long after the dummy hash (tens
        // of milliseconds) ended, is what tells this gauge from the pool's.
        let late = judged.iter().any(|s| s.asked >= sent + FLOOR * 2 / 3);
        if late {
            return;
        }
        runs.push(timeline);
    }
    panic!(
        "the gauge never saw the login late in its hold, in 5 tries \
         (ms after sending: asked, answered, value): {runs:?}"
    );
}

/// The value of an unlabelled series in Prometheus text.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

on_all_backends!(
    sync_gauges_are_restored_from_the_last_snapshot_after_a_restart,
    |db: TestDb| async move {
        let app = db.spawn().await;
        crate::guard::seed_people(&app, 3).await;
        let served = app.post_sync().await;
        assert_eq!(served.status(), 200);
        let body = served.bytes().await.unwrap();

        // A new process over the same database: no /sync yet.
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("empty.toml");
        std::fs::write(&config, "").unwrap();
        let port = crate::helpers::free_port();
        let listen = port.addr();
        let mut env = crate::operator::CREDENTIALS.to_vec();
        env.extend([
            ("HR_BRIDGE__DATABASE__URL", app.test_db.url.as_str()),
            ("HR_BRIDGE__SERVER__LISTEN", listen.as_str()),
            ("RUST_LOG", "debug"),
        ]);
        let mut restarted = crate::operator::Served::start(&config, &env);
        restarted.wait_for("restored the sync gauges from the last snapshot");
        // The gauges can be restored before the port is bound: wait for both.
        restarted.wait_for("listening");
        let text = reqwest::get(format!("http://{listen}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(series(&text, "hr_bridge_sync_users"), Some(3.0), "{text}");
        assert_eq!(series(&text, "hr_bridge_sync_groups"), Some(2.0), "{text}");
        assert_eq!(
            series(&text, "hr_bridge_sync_bytes"),
            Some(body.len() as f64),
            "{text}"
        );
        assert!(!text.contains("hr_bridge_sync_builds_total"), "{text}");
    }
);
