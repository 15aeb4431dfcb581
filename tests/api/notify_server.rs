//! Notifications wired into the real server, on every backend: a guard refusal
//! sends one message (a second refusal none), the sync served again one, a
//! lockout one; a receiver that is down or slow never delays `/sync` and is
//! counted on `/metrics`; SIGHUP switches the webhook and the format.

use std::time::{Duration, Instant};

use hr_bridge::app::Options;
use hr_bridge::config::Settings;
use hr_bridge::notify::{Format, Stats, Tuning};
use secrecy::SecretString;

use crate::authenticate::{add_employee, argon2id};
use crate::guard::seed_people;
use crate::helpers::{TestApp, TestDb};
use crate::notify::{closed_url, quick, Behaviour, Receiver};
use crate::on_all_backends;

const PATIENCE: Duration = Duration::from_secs(20);

fn notifying(db: &TestDb, url: &str) -> Settings {
    let mut settings = db.settings();
    settings.notify.webhook_url = Some(SecretString::from(url.to_owned()));
    settings.notify.format = Format::Json;
    settings.sync.max_deletions = 3;
    settings.sync.max_deletion_ratio = 0.0;
    settings
}

fn with(tuning: Tuning) -> Options {
    Options {
        notify: tuning,
        ..Options::default()
    }
}

async fn set_active(app: &TestApp, from: usize, to: usize, active: bool) {
    let names: Vec<String> = (from..to).map(|i| format!("'e{i:03}'")).collect();
    let value = if active { "TRUE" } else { "FALSE" };
    app.exec(&format!(
        "UPDATE employees SET active = {value} WHERE username IN ({})",
        names.join(", ")
    ))
    .await;
}

/// Waits until every event is decided and every message posted or given up.
async fn settled(app: &TestApp) -> Stats {
    let stats = app
        .application()
        .notifier()
        .wait_for(PATIENCE, Stats::is_idle)
        .await;
    assert!(stats.is_idle(), "still busy: {stats:?}");
    stats
}

async fn metrics_text(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .expect("metrics answered")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the first `/metrics` line that starts with `series`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

on_all_backends!(
    a_refusal_sends_one_message_and_the_sync_served_again_one,
    |db: TestDb| async move {
        let mut receiver = Receiver::start(Behaviour::Accept).await;
        let settings = notifying(&db, &receiver.url);
        let app = db.spawn_with_options(settings, with(quick())).await;
        seed_people(&app, 20).await;
        assert_eq!(app.post_sync().await.status(), 200);
        settled(&app).await;
        assert!(receiver.rest().is_empty(), "the first sync says nothing");

        set_active(&app, 13, 17, false).await;
        assert_eq!(app.post_sync().await.status(), 409);
        let body = receiver.next().await.body;
        assert_eq!(body["event"], "sync_refused", "{body}");
        assert_eq!(body["details"]["reason"], "deletion_guard", "{body}");
        assert_eq!(body["details"]["users"], 4, "{body}");
        let names = body["details"]["usernames"].to_string();
        assert!(names.contains("e013"), "{body}");
        // No more than the first few names, ever.
        assert!(!names.contains("e017"), "{body}");

        // The same refusal again is no news.
        assert_eq!(app.post_sync().await.status(), 409);
        settled(&app).await;
        assert!(receiver.rest().is_empty());

        set_active(&app, 13, 17, true).await;
        assert_eq!(app.post_sync().await.status(), 200);
        assert_eq!(receiver.next_event().await, "sync_served_again");
        assert_eq!(app.post_sync().await.status(), 200);
        settled(&app).await;
        assert!(
            receiver.rest().is_empty(),
            "served again once, not per call"
        );

        app.stop().await;
    }
);

on_all_backends!(
    locking_an_existing_account_sends_one_message,
    |db: TestDb| async move {
        let mut receiver = Receiver::start(Behaviour::Accept).await;
        let mut settings = notifying(&db, &receiver.url);
        settings.auth.max_failures = 3;
        let app = db.spawn_with_options(settings, with(quick())).await;
        add_employee(&app, "alice", Some(&argon2id("right")), true).await;

        // A name nobody has is locked too, but that is nobody's news.
        for _ in 0..4 {
            app.post_authenticate("ghost", "x").await;
        }
        settled(&app).await;
        assert!(receiver.rest().is_empty());

        for _ in 0..3 {
            app.post_authenticate("alice", "wrong").await;
        }
        let body = receiver.next().await.body;
        assert_eq!(body["event"], "account_locked", "{body}");
        assert_eq!(body["details"]["username"], "alice", "{body}");
        // Attempts on the locked account send nothing more.
        app.post_authenticate("alice", "right").await;
        app.post_authenticate("alice", "wrong").await;
        settled(&app).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        settled(&app).await;
        assert!(receiver.rest().is_empty());
        assert_eq!(receiver.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        app.stop().await;
    }
);

/// Times a `/sync` that should answer 409 at once.
async fn timed_sync(app: &TestApp, status: u16) -> Duration {
    let began = Instant::now();
    assert_eq!(app.post_sync().await.status(), status);
    began.elapsed()
}

on_all_backends!(
    a_receiver_that_is_down_or_slow_never_delays_sync_and_is_counted,
    |db: TestDb| async move {
        // Down: every attempt is refused, then the message is given up.
        let down = closed_url().await;
        let settings = notifying(&db, &down);
        let app = db.spawn_with_options(settings, with(quick())).await;
        seed_people(&app, 20).await;
        assert_eq!(app.post_sync().await.status(), 200);
        let baseline = timed_sync(&app, 200).await;
        set_active(&app, 13, 17, false).await;
        let refused = timed_sync(&app, 409).await;
        let stats = settled(&app).await;
        assert_eq!(stats.failed, 1, "{stats:?}");
        assert!(stats.retries >= 2, "{stats:?}");
        let text = metrics_text(&app).await;
        assert!(
            metric(&text, "hr_bridge_notify_messages_total{outcome=\"failed\"}") >= 1.0,
            "{text}"
        );
        assert!(
            metric(&text, "hr_bridge_notify_retries_total") >= 2.0,
            "{text}"
        );
        assert!(
            refused < baseline + Duration::from_secs(2),
            "refused {refused:?} vs served {baseline:?}"
        );
        app.stop().await;
    }
);

on_all_backends!(a_slow_receiver_never_delays_sync, |db: TestDb| async move {
    // Slower than any timeout: each attempt hangs until it times out (3 s).
    let receiver = Receiver::start(Behaviour::HangFirst(usize::MAX)).await;
    let settings = notifying(&db, &receiver.url);
    let tuning = Tuning {
        timeout: Duration::from_secs(3),
        attempts: 2,
        ..quick()
    };
    let app = db.spawn_with_options(settings, with(tuning)).await;
    seed_people(&app, 20).await;
    assert_eq!(app.post_sync().await.status(), 200);
    set_active(&app, 13, 17, false).await;
    let refused = timed_sync(&app, 409).await;
    // Served again while the refusal's message still hangs.
    set_active(&app, 13, 17, true).await;
    let served = timed_sync(&app, 200).await;
    assert!(
        refused < Duration::from_millis(2500) && served < Duration::from_millis(2500),
        "refused in {refused:?}, served in {served:?}, while the receiver hangs"
    );
    let stats = settled(&app).await;
    assert_eq!(stats.failed, 2, "both messages time out twice: {stats:?}");
    // The receiver did get every attempt; it just never answered.
    assert_eq!(receiver.hits.load(std::sync::atomic::Ordering::SeqCst), 4);
    let text = metrics_text(&app).await;
    assert!(
        metric(&text, "hr_bridge_notify_messages_total{outcome=\"failed\"}") >= 2.0,
        "{text}"
    );
    app.stop().await;
});

/// A config file for `serve` on `port` with `[notify]` posting to `url` in `format`.
fn write_config(dir: &std::path::Path, port: u16, url: &str, format: &str) -> std::path::PathBuf {
    let file = dir.join("hr-bridge.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [sync]\nmax_deletions = 3\nmax_deletion_ratio = 0.0\n\
             [notify]\nwebhook_url = \"{url}\"\nformat = \"{format}\"\n"
        ),
    )
    .expect("config written");
    file
}

on_all_backends!(
    sighup_switches_the_webhook_and_its_format,
    |db: TestDb| async move {
        use crate::helpers::free_port;
        use crate::operator::{Served, CREDENTIALS};
        // Tokenless paths: a URL with a token may not come from the file.
        let mut first = Receiver::start(Behaviour::Accept).await;
        let mut second = Receiver::start(Behaviour::Accept).await;
        let plain = |r: &Receiver| r.url.replace("t0ken-5ecret-0123456789abcdef", "hr-bridge");
        let dir = tempfile::tempdir().expect("temp dir");
        let reserved = free_port();
        let port = reserved.port();
        let config = write_config(dir.path(), port, &plain(&first), "json");
        let mut env = CREDENTIALS.to_vec();
        env.push(("HR_BRIDGE__DATABASE__URL", &db.url));
        let mut served = Served::start(&config, &env);
        // The database can be ready before the port is bound: wait for both.
        served.wait_for("database ready");
        served.wait_for("listening");
        let client = reqwest::Client::new();
        let sync = || async {
            client
                .post(format!("http://127.0.0.1:{port}/sync"))
                .basic_auth("omflow", Some("pw"))
                .send()
                .await
                .expect("sync answered")
                .status()
                .as_u16()
        };
        let rows: Vec<String> = (0..20)
            .map(|i| format!("('e{i:03}', 'e{i:03}@example.com', 'Person {i}', TRUE)"))
            .collect();
        db.load(&format!(
            "INSERT INTO employees (username, email, nick_name, active) VALUES {}",
            rows.join(", ")
        ))
        .await;
        assert_eq!(sync().await, 200);
        db.load("UPDATE employees SET active = FALSE WHERE username IN ('e013', 'e014', 'e015', 'e016')")
            .await;
        assert_eq!(sync().await, 409);
        assert_eq!(first.next_event().await, "sync_refused");

        write_config(dir.path(), port, &plain(&second), "slack");
        served.signal(libc::SIGHUP);
        let line = served.wait_for("notification settings changed");
        assert!(line.contains("notify.webhook_url changed"), "{line}");
        assert!(line.contains("notify.format json -> slack"), "{line}");
        assert!(!line.contains("/hook/"), "the URL is never logged: {line}");

        db.load("UPDATE employees SET active = TRUE").await;
        assert_eq!(sync().await, 200);
        let received = second.next().await;
        let text = received.body["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(text.contains("again"), "a Slack message: {}", received.body);
        assert!(first.rest().is_empty(), "the old webhook gets nothing more");
    }
);

/// The command a message's summary asks to run (the text between backticks
/// that starts with `hr-bridge accept-deletions`).
fn command_in(summary: &str) -> Option<String> {
    summary
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|c| c.starts_with("hr-bridge accept-deletions"))
        .map(str::to_owned)
}

on_all_backends!(
    a_guard_refusal_message_names_the_pending_approval_and_its_command_approves_it,
    |db: TestDb| async move {
        let mut receiver = Receiver::start(Behaviour::Accept).await;
        let mut settings = notifying(&db, &receiver.url);
        settings.notify.console_url = Some("https://hr.example.com/console".into());
        let app = db.spawn_with_options(settings, with(quick())).await;
        seed_people(&app, 20).await;
        assert_eq!(app.post_sync().await.status(), 200);
        set_active(&app, 13, 17, false).await;
        assert_eq!(app.post_sync().await.status(), 409);

        let body = receiver.next().await.body;
        assert_eq!(body["details"]["reason"], "deletion_guard", "{body}");
        let id = body["details"]["approval_id"]
            .as_str()
            .unwrap_or_else(|| panic!("an approval id in {body}"))
            .to_owned();
        // The set the approvals table holds as pending, as the CLI shows it.
        let pending = hr_bridge::ops::approvals::pending(&app.db)
            .await
            .expect("reads")
            .expect("a pending set");
        assert_eq!(pending.id.to_string(), id, "{body}");
        let shown = crate::approvals::cli(&app, &["accept-deletions"]);
        let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
        assert!(shown.contains(&format!("pending set {id} (")), "{shown}");
        assert_eq!(body["link"], "https://hr.example.com/console/pending");
        let summary = body["summary"].as_str().unwrap_or_default();
        let command = command_in(summary).unwrap_or_else(|| panic!("a command in {summary}"));
        assert_eq!(command, format!("hr-bridge accept-deletions {id}"));

        // OMFLOW retrying the same refusal: no news.
        assert_eq!(app.post_sync().await.status(), 409);
        settled(&app).await;
        assert!(receiver.rest().is_empty());

        // The command as the message gives it (from a script: with --yes)
        // approves that set, and the next sync is served.
        let mut args: Vec<&str> = command.split_whitespace().skip(1).collect();
        args.push("--yes");
        let output = crate::approvals::cli(&app, &args);
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(app.post_sync().await.status(), 200);
        assert_eq!(receiver.next_event().await, "sync_served_again");
        settled(&app).await;
        assert!(receiver.rest().is_empty());
        app.stop().await;
    }
);

on_all_backends!(
    a_validation_refusal_sends_one_message_with_the_first_keys_and_served_again_one,
    |db: TestDb| async move {
        let mut receiver = Receiver::start(Behaviour::Accept).await;
        let settings = notifying(&db, &receiver.url);
        let app = db.spawn_with_options(settings, with(quick())).await;
        seed_people(&app, 20).await;
        // Seven more departments under ROOT: with SUB, eight at fault below.
        let departments: Vec<String> = (1..=7)
            .map(|i| format!("('D{i}', 'Department {i}', 'ROOT', TRUE)"))
            .collect();
        app.exec(&format!(
            "INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES {}",
            departments.join(", ")
        ))
        .await;
        assert_eq!(app.post_sync().await.status(), 200);
        settled(&app).await;
        assert!(receiver.rest().is_empty(), "the first sync says nothing");

        // Every department under ROOT now has an inactive parent.
        app.exec("UPDATE departments SET active = FALSE WHERE group_no = 'ROOT'")
            .await;
        assert_eq!(app.post_sync().await.status(), 409);
        let body = receiver.next().await.body;
        assert_eq!(body["event"], "sync_refused", "{body}");
        assert_eq!(body["details"]["reason"], "invalid_data", "{body}");
        assert_eq!(body["details"]["problems"], 8, "{body}");
        let keys: Vec<&str> = body["details"]["keys"]
            .as_array()
            .map(|keys| keys.iter().filter_map(|k| k.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 5, "the first five keys only: {body}");
        let at_fault = ["SUB", "D1", "D2", "D3", "D4", "D5", "D6", "D7"];
        assert!(keys.iter().all(|k| at_fault.contains(k)), "{body}");
        let summary = body["summary"].as_str().unwrap_or_default();
        assert!(summary.contains(&format!("\"{}\"", keys[0])), "{summary}");
        assert!(summary.contains("`hr-bridge check`"), "{summary}");
        // No other data: no display names, emails or people.
        let text = body.to_string();
        for other in ["Department ", "Root", "@example.com", "Person ", "e0"] {
            assert!(!text.contains(other), "{other:?} in {body}");
        }

        // The same refusal again is no news.
        assert_eq!(app.post_sync().await.status(), 409);
        settled(&app).await;
        assert!(receiver.rest().is_empty());

        app.exec("UPDATE departments SET active = TRUE WHERE group_no = 'ROOT'")
            .await;
        assert_eq!(app.post_sync().await.status(), 200);
        assert_eq!(receiver.next_event().await, "sync_served_again");
        assert_eq!(app.post_sync().await.status(), 200);
        settled(&app).await;
        assert!(receiver.rest().is_empty(), "served again once");
        app.stop().await;
    }
);
