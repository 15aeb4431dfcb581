//! Notifications against a real local receiver (an axum server on port 0): one
//! that is up, one that is down, one that answers errors, one that is slower than
//! the timeout; and two notifiers sharing one state database, as two replicas do,
//! on every backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hr_bridge::db::{Db, PoolSettings, Schema};
use hr_bridge::notify::store::{Claim, Missed, Prior};
use hr_bridge::notify::{
    Database, Event, Format, Notifier, NotifySettings, Options, Refusal, Stats, Tuning,
};
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::helpers::{url_socket_addr, Proxy, TestDb};
use crate::on_all_backends;

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

/// What the receiver does with a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Behaviour {
    Accept,
    Answer(StatusCode),
    /// Never answers the first `n` requests (slower than any timeout), then accepts.
    HangFirst(usize),
}

#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) at: Instant,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Value,
}

#[derive(Clone)]
struct Hook {
    behaviour: Behaviour,
    hits: Arc<AtomicUsize>,
    tx: mpsc::UnboundedSender<Received>,
}

async fn hook(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = hook.hits.fetch_add(1, Ordering::SeqCst) + 1;
    if let Behaviour::HangFirst(hang) = hook.behaviour {
        if n <= hang {
            std::future::pending::<()>().await;
        }
    }
    let received = Received {
        at: Instant::now(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let _ = hook.tx.send(received);
    match hook.behaviour {
        Behaviour::Answer(status) => status,
        Behaviour::Accept | Behaviour::HangFirst(_) => StatusCode::OK,
    }
}

/// A webhook receiver on a free port.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) hits: Arc<AtomicUsize>,
    rx: mpsc::UnboundedReceiver<Received>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub(crate) async fn start(behaviour: Behaviour) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/hook/{token}", post(hook))
            .with_state(Hook {
                behaviour,
                hits: hits.clone(),
                tx,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hook/t0ken-5ecret-0123456789abcdef"),
            hits,
            rx,
            _server: server,
        }
    }

    /// The next message, waiting for it.
    pub(crate) async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.rx.recv())
            .await
            .expect("a message in time")
            .expect("receiver running")
    }

    /// The next message's `event` (json format).
    pub(crate) async fn next_event(&mut self) -> String {
        let received = self.next().await;
        received.body["event"]
            .as_str()
            .unwrap_or_else(|| panic!("an event name in {}", received.body))
            .to_owned()
    }

    /// Every message received so far and not yet taken.
    pub(crate) fn rest(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(received) = self.rx.try_recv() {
            out.push(received.body);
        }
        out
    }
}

/// An address where nothing listens.
pub(crate) async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}/hook/t0ken-5ecret-0123456789abcdef")
}

fn settings(url: &str, format: Format) -> NotifySettings {
    NotifySettings {
        webhook_url: Some(SecretString::from(url.to_owned())),
        format,
        after_secs: 1,
        console_url: Some("https://hr.example.com/console".into()),
    }
}

/// Short waits, so that retries and timeouts play out in a test's time.
pub(crate) fn quick() -> Tuning {
    Tuning {
        timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_millis(400),
        attempts: 3,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(2),
        claim_timeout: Duration::from_secs(5),
        lockout_window: Duration::from_millis(300),
        probe_every: Some(Duration::from_millis(100)),
        ..Tuning::default()
    }
}

fn alone(tuning: Tuning) -> Options {
    Options {
        state: None,
        one_database: false,
        tuning,
    }
}

fn guard_refusal() -> Refusal {
    Refusal::DeletionGuard {
        users: 7,
        departments: 1,
        usernames: (0..7).map(|i| format!("user{i}")).collect(),
        approval_id: Some("42".into()),
    }
}

/// Waits until every event handed over has been decided and every message posted.
async fn settled(notifier: &Notifier) -> Stats {
    let stats = notifier.wait_for(PATIENCE, Stats::is_idle).await;
    assert!(stats.is_idle(), "still busy: {stats:?}");
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_up_gets_one_message_per_change_of_state() {
    let mut receiver = Receiver::start(Behaviour::Accept).await;
    let notifier =
        Notifier::start(settings(&receiver.url, Format::Json), alone(quick())).expect("starts");
    // The first sync after start-up is served: nothing to say.
    notifier.notify(Event::SyncServed);
    for _ in 0..3 {
        notifier.notify(Event::SyncRefused(guard_refusal()));
    }
    for _ in 0..3 {
        notifier.notify(Event::SyncServed);
    }
    notifier.notify(Event::SyncRefused(Refusal::InvalidData {
        problems: 2,
        keys: vec!["HR-01".into(), "bob".into()],
    }));
    notifier.notify(Event::SyncRefused(guard_refusal()));
    notifier.notify(Event::SyncServed);
    let stats = settled(&notifier).await;
    assert_eq!(stats.accepted, 10);
    // Refused, served again, refused for another reason, and for the first reason
    // again, served again.
    assert_eq!(stats.delivered, 5, "{stats:?}");

    let first = receiver.next().await;
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    let body = first.body;
    assert_eq!(body["event"], "sync_refused", "{body}");
    assert_eq!(body["details"]["reason"], "deletion_guard");
    assert_eq!(body["details"]["users"], 7);
    assert_eq!(body["details"]["departments"], 1);
    assert_eq!(
        body["details"]["usernames"],
        serde_json::json!(["user0", "user1", "user2", "user3", "user4"]),
        "at most five names"
    );
    assert_eq!(body["details"]["approval_id"], "42");
    assert_eq!(body["console_url"], "https://hr.example.com/console");
    let summary = body["summary"].as_str().expect("summary");
    assert!(summary.contains("and 2 more"), "{summary}");
    assert!(
        summary.contains("hr-bridge accept-deletions 42"),
        "{summary}"
    );
    assert!(body["occurred_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let events: Vec<String> = receiver
        .rest()
        .iter()
        .map(|b| b["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        events,
        [
            "sync_served_again",
            "sync_refused",
            "sync_refused",
            "sync_served_again"
        ]
    );

    // Lockouts: the first at once, a burst after it as one summary.
    let until = SystemTime::now() + Duration::from_secs(900);
    for name in ["alice", "bob", "carol"] {
        notifier.notify(Event::AccountLocked {
            username: name.into(),
            until,
        });
    }
    let locked = receiver.next().await.body;
    assert_eq!(locked["event"], "account_locked");
    assert_eq!(locked["details"]["username"], "alice");
    let burst = receiver.next().await.body;
    assert_eq!(burst["event"], "accounts_locked");
    assert_eq!(burst["details"]["count"], 2);
    assert_eq!(
        burst["details"]["usernames"],
        serde_json::json!(["bob", "carol"])
    );

    // A reload switches it off: events are not even queued.
    let before = settled(&notifier).await;
    notifier.reload(NotifySettings::default());
    notifier.notify(Event::SyncRefused(guard_refusal()));
    assert_eq!(notifier.stats().accepted, before.accepted);
    assert_eq!(receiver.hits.load(Ordering::SeqCst), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_teams_receivers_get_their_own_format() {
    let mut slack = Receiver::start(Behaviour::Accept).await;
    let notifier =
        Notifier::start(settings(&slack.url, Format::Slack), alone(quick())).expect("starts");
    notifier.notify(Event::AccountLocked {
        username: "<!channel> *boss*".into(),
        until: SystemTime::now(),
    });
    let body = slack.next().await.body;
    let text = body["text"].as_str().expect("slack text");
    assert!(text.starts_with("*hr-bridge: Account locked*\n"), "{text}");
    assert!(text.contains("`&lt;!channel&gt; *boss*`"), "{text}");
    assert!(
        text.ends_with("<https://hr.example.com/console|Open hr-bridge>"),
        "{text}"
    );

    let mut teams = Receiver::start(Behaviour::Accept).await;
    notifier.reload(settings(&teams.url, Format::Teams));
    notifier.notify(Event::SyncRefused(guard_refusal()));
    let body = teams.next().await.body;
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    // A guard refusal links to the page where its set is approved.
    assert_eq!(
        attachment["content"]["actions"][0]["url"],
        "https://hr.example.com/console/pending"
    );
    settled(&notifier).await;
    assert_eq!(slack.hits.load(Ordering::SeqCst), 1);
}

/// A guard refusal as `/sync` reports it: without an id, which the history
/// writer publishes in `slot` once the pending approval is recorded.
fn refused_awaiting(slot: &hr_bridge::directory::ApprovalSlot) -> Event {
    Event::GuardRefused {
        refusal: Refusal::DeletionGuard {
            users: 7,
            departments: 1,
            usernames: vec!["user0".into()],
            approval_id: None,
        },
        approval: slot.watch(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_refusal_waits_a_bounded_time_for_its_approval_id() {
    use hr_bridge::directory::ApprovalSlot;
    let mut receiver = Receiver::start(Behaviour::Accept).await;
    let tuning = Tuning {
        approval_wait: Duration::from_millis(1500),
        ..quick()
    };
    let notifier =
        Notifier::start(settings(&receiver.url, Format::Json), alone(tuning)).expect("starts");

    // Recorded after the event (as the history writer does, after the answer):
    // the message names it.
    let slot = ApprovalSlot::default();
    notifier.notify(refused_awaiting(&slot));
    tokio::time::sleep(Duration::from_millis(200)).await;
    slot.publish(Some(17));
    let body = receiver.next().await.body;
    assert_eq!(body["details"]["approval_id"], "17", "{body}");
    assert!(
        body["summary"]
            .as_str()
            .is_some_and(|s| s.contains("`hr-bridge accept-deletions 17`")),
        "{body}"
    );
    assert_eq!(body["link"], "https://hr.example.com/console/pending");

    // The same refusal again sends nothing, so it waits for nothing either: the
    // event behind it is decided at once.
    let never = ApprovalSlot::default();
    notifier.notify(refused_awaiting(&never));
    notifier.notify(Event::SyncServed);
    assert_eq!(receiver.next_event().await, "sync_served_again");

    // Never recorded (the writer is stuck): the message goes without the id once
    // the bound has passed, and says how to find the set.
    let stuck = ApprovalSlot::default();
    let began = Instant::now();
    notifier.notify(refused_awaiting(&stuck));
    let received = receiver.next().await;
    let waited = received.at.duration_since(began);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert_eq!(received.body["details"]["approval_id"], Value::Null);
    assert!(
        received.body["summary"]
            .as_str()
            .is_some_and(|s| s.contains("`hr-bridge preview`")),
        "{}",
        received.body
    );

    // Recording failed (or every record of the refusal is gone): at once, without it.
    notifier.notify(Event::SyncServed);
    assert_eq!(receiver.next_event().await, "sync_served_again");
    let failed = ApprovalSlot::default();
    let began = Instant::now();
    notifier.notify(refused_awaiting(&failed));
    drop(failed);
    let received = receiver.next().await;
    assert!(received.at.duration_since(began) < Duration::from_millis(1500));
    assert_eq!(received.body["details"]["approval_id"], Value::Null);
    drop((never, stuck));
    settled(&notifier).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_is_retried_then_given_up_and_counted() {
    hr_bridge::telemetry::metrics_handle();
    let tuning = Tuning {
        backoff_base: Duration::from_millis(500),
        ..quick()
    };
    let notifier = Notifier::start(settings(&closed_url().await, Format::Json), alone(tuning))
        .expect("starts");
    let started = Instant::now();
    notifier.notify(Event::SyncRefused(guard_refusal()));
    // Handed over, not waited for: three attempts with pauses of at least 250 and
    // 500 ms lie ahead.
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(notifier.stats().failed, 0);
    let stats = notifier.wait_for(PATIENCE, |s| s.failed == 1).await;
    assert_eq!(
        (stats.failed, stats.retries, stats.delivered),
        (1, 2, 0),
        "{stats:?}"
    );
    let metrics = hr_bridge::telemetry::metrics_handle().render();
    assert!(
        metrics.contains("hr_bridge_notify_messages_total{outcome=\"failed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hr_bridge_notify_retries_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_retried_with_growing_pauses_and_refusals_are_not() {
    let mut failing = Receiver::start(Behaviour::Answer(StatusCode::SERVICE_UNAVAILABLE)).await;
    let tuning = Tuning {
        attempts: 4,
        backoff_base: Duration::from_millis(200),
        ..quick()
    };
    let notifier =
        Notifier::start(settings(&failing.url, Format::Json), alone(tuning)).expect("starts");
    notifier.notify(Event::SyncRefused(guard_refusal()));
    let mut arrivals = Vec::new();
    for _ in 0..4 {
        arrivals.push(failing.next().await.at);
    }
    let stats = notifier.wait_for(PATIENCE, |s| s.failed == 1).await;
    assert_eq!((stats.failed, stats.retries), (1, 3), "{stats:?}");
    // Pause k is at least half of 200 ms · 2^(k-1): 100, 200, 400 ms.
    for (k, pair) in arrivals.windows(2).enumerate() {
        let gap = pair[1].duration_since(pair[0]);
        let least = Duration::from_millis(100 << k);
        assert!(gap >= least, "pause {k}: {gap:?} < {least:?}");
    }
    assert_eq!(failing.hits.load(Ordering::SeqCst), 4);

    // A 4xx (a revoked token) will not pass later: one attempt.
    let mut refusing = Receiver::start(Behaviour::Answer(StatusCode::FORBIDDEN)).await;
    notifier.reload(settings(&refusing.url, Format::Json));
    notifier.notify(Event::SyncServed);
    refusing.next().await;
    let stats = notifier.wait_for(PATIENCE, |s| s.failed == 2).await;
    assert_eq!((stats.failed, stats.retries), (2, 3), "{stats:?}");
    assert_eq!(refusing.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_times_out_is_retried_and_never_holds_up_notify() {
    let mut slow = Receiver::start(Behaviour::HangFirst(2)).await;
    let tuning = Tuning {
        timeout: Duration::from_millis(300),
        attempts: 4,
        queue: 4,
        outbox: 1,
        ..quick()
    };
    let notifier =
        Notifier::start(settings(&slow.url, Format::Json), alone(tuning)).expect("starts");
    notifier.notify(Event::SyncRefused(guard_refusal()));
    // While the first message waits on the slow receiver, a flood of changes
    // neither waits nor grows memory: the queues are bounded and drop.
    let flood = Instant::now();
    for i in 0..2_000 {
        notifier.notify(if i % 2 == 0 {
            Event::SyncServed
        } else {
            Event::SyncRefused(guard_refusal())
        });
    }
    assert!(
        flood.elapsed() < Duration::from_secs(1),
        "2000 notify() calls took {:?}",
        flood.elapsed()
    );
    let first = slow.next().await;
    assert_eq!(first.body["event"], "sync_refused");
    let stats = notifier
        .wait_for(PATIENCE, |s| s.delivered >= 1 && s.is_idle())
        .await;
    assert!(stats.retries >= 2, "two timeouts, two retries: {stats:?}");
    assert!(
        stats.events_dropped + stats.messages_dropped > 0,
        "the flood overflowed a queue: {stats:?}"
    );
    assert_eq!(stats.failed, 0, "{stats:?}");
}

/// A log writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread, so that the notifier's tasks log into this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn failures_are_logged_without_the_webhook_token() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let url = closed_url().await;
    let notifier = Notifier::start(settings(&url, Format::Json), alone(quick())).expect("starts");
    notifier.notify(Event::SyncRefused(guard_refusal()));
    notifier.wait_for(PATIENCE, |s| s.failed == 1).await;
    let text = String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("utf-8");
    assert!(
        text.contains("notification not delivered; retrying"),
        "{text}"
    );
    assert!(
        text.contains("notification not delivered; giving up"),
        "{text}"
    );
    let origin = url.split("/hook/").next().expect("origin");
    assert!(text.contains(origin), "the endpoint is named: {text}");
    assert!(!text.contains("5ecret"), "{text}");
    assert!(!text.contains("/hook/"), "{text}");
}

/// A fresh pool of `url` (one replica's own connections).
fn pool(url: &str) -> Db {
    Db::connect_lazy(
        &SecretString::from(url.to_owned()),
        &PoolSettings {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(1),
            statement_timeout: Some(Duration::from_secs(5)),
            read_only: false,
        },
    )
    .expect("valid URL")
}

fn replica(db: Db, receiver: &Receiver) -> Notifier {
    Notifier::start(
        settings(&receiver.url, Format::Json),
        Options {
            state: Some(db),
            one_database: false,
            tuning: quick(),
        },
    )
    .expect("starts")
}

on_all_backends!(
    two_replicas_sharing_a_state_database_announce_each_change_once,
    |state: TestDb| async move {
        let db = pool(&state.url);
        db.migrate_schemas(&[Schema::State])
            .await
            .expect("migrates");
        let mut receiver = Receiver::start(Behaviour::Accept).await;
        let a = replica(pool(&state.url), &receiver);
        let b = replica(pool(&state.url), &receiver);

        // Both refuse the same sync at the same moment, then again and again.
        for _ in 0..3 {
            a.notify(Event::SyncRefused(guard_refusal()));
            b.notify(Event::SyncRefused(guard_refusal()));
        }
        settled(&a).await;
        settled(&b).await;
        assert_eq!(receiver.next_event().await, "sync_refused");
        // Served again, by either replica first.
        b.notify(Event::SyncServed);
        settled(&b).await;
        a.notify(Event::SyncServed);
        settled(&a).await;
        assert_eq!(receiver.next_event().await, "sync_served_again");
        assert_eq!(receiver.rest(), Vec::<Value>::new());

        // Both lose the source database for longer than after_secs (1 s), then
        // both see it back.
        let before = [a.stats(), b.stats()];
        for r in [&a, &b] {
            r.notify(Event::Database {
                which: Database::Source,
                reachable: false,
            });
        }
        let down = receiver.next().await.body;
        assert_eq!(down["event"], "database_unreachable");
        assert_eq!(down["details"]["database"], "source_database");
        for (r, before) in [&a, &b].into_iter().zip(before) {
            // Each replica either sent or found the change announced.
            let seen = before.queued + before.deduplicated;
            r.wait_for(PATIENCE, |s| s.queued + s.deduplicated > seen)
                .await;
        }
        for r in [&a, &b] {
            r.notify(Event::Database {
                which: Database::Source,
                reachable: true,
            });
        }
        settled(&a).await;
        settled(&b).await;
        assert_eq!(receiver.next_event().await, "database_reachable");
        assert_eq!(receiver.rest(), Vec::<Value>::new());
        let (sa, sb) = (a.stats(), b.stats());
        assert_eq!(sa.delivered + sb.delivered, 4, "{sa:?} {sb:?}");
        // Each change was seen by both; the one that did not send says so.
        assert_eq!(sa.deduplicated + sb.deduplicated, 4, "{sa:?} {sb:?}");
        assert_eq!(sa.unsure + sb.unsure, 0, "{sa:?} {sb:?}");

        // A replica started later knows what was announced: a served sync says
        // nothing new, a refusal still does.
        let c = replica(pool(&state.url), &receiver);
        c.notify(Event::SyncServed);
        c.notify(Event::Database {
            which: Database::Source,
            reachable: true,
        });
        settled(&c).await;
        assert_eq!(receiver.rest(), Vec::<Value>::new());
        c.notify(Event::SyncRefused(Refusal::InvalidData {
            problems: 1,
            keys: vec!["HR-07".into()],
        }));
        settled(&c).await;
        let refused = receiver.next().await.body;
        assert_eq!(refused["details"]["reason"], "invalid_data");
        assert_eq!(
            db.notify_state("sync")
                .await
                .expect("reads")
                .map(|(s, _)| s),
            Some("refused_data".into())
        );
    }
);

on_all_backends!(
    claims_on_notify_state_follow_their_rules,
    |state: TestDb| async move {
        let owned = pool(&state.url);
        let db = &owned;
        db.migrate_schemas(&[Schema::State])
            .await
            .expect("migrates");
        const WAS_DOWN: Prior = Prior::OneOf(&["down"]);
        let claim = |subject, to, from, missed, now_ms| async move {
            db.notify_claim(&Claim {
                subject,
                to,
                from,
                missed,
                now_ms,
            })
            .await
            .expect("claims")
        };
        let row = |subject| async move { db.notify_state(subject).await.expect("reads") };
        // No row: "from down" finds nothing, "from any other" creates it, once.
        assert!(!claim("c", "up", WAS_DOWN, Missed::Nothing, 10).await);
        assert!(claim("c", "down", Prior::AnyOther, Missed::Nothing, 10).await);
        assert!(!claim("c", "down", Prior::AnyOther, Missed::Nothing, 11).await);
        assert_eq!(row("c").await, Some(("down".into(), 10)));
        assert!(claim("c", "up", WAS_DOWN, Missed::Nothing, 20).await);
        assert!(!claim("c", "up", WAS_DOWN, Missed::Nothing, 21).await);
        // An outage announced at 25 that the table missed: its end is ours, since
        // the row has not changed since; another replica's (announced at 28) is not,
        // once the row changed at 30.
        assert!(claim("c", "up", WAS_DOWN, Missed::OrUnchangedSince(25), 30).await);
        assert!(!claim("c", "up", WAS_DOWN, Missed::OrUnchangedSince(28), 31).await);
        assert_eq!(row("c").await, Some(("up".into(), 30)));
        // Catching up on a state announced at 35: written while nobody changed the
        // row since, not after.
        assert!(
            claim(
                "c",
                "down",
                Prior::AnyOther,
                Missed::RecordIfUnchangedSince(35),
                40
            )
            .await
        );
        assert!(
            !claim(
                "c",
                "up",
                Prior::AnyOther,
                Missed::RecordIfUnchangedSince(35),
                41
            )
            .await
        );
        assert_eq!(row("c").await, Some(("down".into(), 40)));
        // A missed announcement with no row at all: the row is created.
        assert!(claim("d", "up", WAS_DOWN, Missed::OrUnchangedSince(5), 6).await);
        assert_eq!(row("d").await, Some(("up".into(), 6)));
    }
);

/// The database at `state.url`, reached through a TCP proxy the test can cut.
async fn proxied(state: &TestDb) -> (Proxy, Db) {
    let target = url_socket_addr(&state.url);
    let proxy = Proxy::start(target).await;
    let url = state
        .url
        .replacen(&target.to_string(), &proxy.addr.to_string(), 1);
    (proxy, pool(&url))
}

async fn outage_is_announced_once_and_so_is_its_end(state: TestDb) {
    let direct = pool(&state.url);
    direct
        .migrate_schemas(&[Schema::State])
        .await
        .expect("migrates");
    let (proxy, through_proxy) = proxied(&state).await;
    // A: the source is cut off, the state database (where it claims) is not.
    let mut to_a = Receiver::start(Behaviour::Accept).await;
    let a = replica(direct, &to_a);
    let _watch_a = a.watch_database(Database::Source, through_proxy.clone());
    // B: one database for both, and it is the one cut off: B decides alone.
    let mut to_b = Receiver::start(Behaviour::Accept).await;
    let b = Notifier::start(
        settings(&to_b.url, Format::Json),
        Options {
            state: Some(through_proxy.clone()),
            one_database: true,
            tuning: quick(),
        },
    )
    .expect("starts");
    let _watch_b = b.watch_database(Database::State, through_proxy.clone());
    // Looked at, up: nothing to say.
    a.wait_for(PATIENCE, |s| s.decided >= 1).await;
    b.wait_for(PATIENCE, |s| s.decided >= 1).await;

    proxy.cut();
    let down = to_a.next().await.body;
    assert_eq!(down["event"], "database_unreachable");
    assert_eq!(down["details"]["database"], "source_database");
    assert_eq!(down["details"]["after_secs"], 1);
    let down = to_b.next().await.body;
    assert_eq!(down["event"], "database_unreachable");
    assert_eq!(down["details"]["database"], "database");
    assert!(b.stats().unsure >= 1, "{:?}", b.stats());

    proxy.restore();
    let up = to_a.next().await.body;
    assert_eq!(up["event"], "database_reachable");
    assert!(up["details"]["unreachable_since"].is_string(), "{up}");
    let up = to_b.next().await.body;
    assert_eq!(up["event"], "database_reachable");
    assert_eq!(up["details"]["database"], "database");
    settled(&a).await;
    settled(&b).await;
    assert_eq!(to_a.rest(), Vec::<Value>::new());
    assert_eq!(to_b.rest(), Vec::<Value>::new());
    // B's outage, which the table never saw, is recorded as over.
    let row = pool(&state.url)
        .notify_state("database")
        .await
        .expect("reads");
    assert_eq!(row.map(|(s, _)| s), Some("up".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_announced_once_and_so_is_its_end_postgres() {
    if let Some(state) = TestDb::create(hr_bridge::db::Backend::Postgres).await {
        outage_is_announced_once_and_so_is_its_end(state).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_announced_once_and_so_is_its_end_mysql() {
    if let Some(state) = TestDb::create(hr_bridge::db::Backend::MySql).await {
        outage_is_announced_once_and_so_is_its_end(state).await;
    }
}
