//! Notifications: a POST to a webhook when a sync is refused and when syncs are
//! served again, when the source or the state database stays unreachable for
//! `notify.after_secs` (and when it is back), and when an account is locked.
//!
//! - **Never in the way.** [`Notifier::notify`] only puts the event in a bounded
//!   queue (full: the event is dropped and counted); a task decides, another posts
//!   with a timeout and bounded retries. No request waits on either.
//! - **One message per change of state.** The worker's state machine
//!   (`machine.rs`) turns events into changes (a refusal repeated every minute is
//!   one change; a database that comes back within `after_secs` is none), and each
//!   change is claimed by a
//!   compare-and-set on its row of `notify_state` in the state database: of several
//!   replicas seeing it, the one whose claim wins sends. When that database cannot
//!   answer (it is the one down, say), each replica decides from its own view and
//!   remembers what it announced, so that the way back is still announced once.
//! - **Little personal data.** At most the first [`event::MAX_NAMES`] names, each
//!   cut to [`event::MAX_NAME_CHARS`] characters and neutralised for the format.
//!
//! Counted on `/metrics`: `hr_bridge_notify_messages_total{outcome}` (`delivered`,
//! `failed`, `dropped`), `hr_bridge_notify_retries_total`,
//! `hr_bridge_notify_events_dropped_total`, `hr_bridge_notify_deduplicated_total`.

mod deliver;
pub mod event;
pub mod format;
mod machine;
pub mod message;
mod worker;

pub use crate::config::notify::{webhook_url_carries_token, Format, NotifySettings};
/// The compare-and-set statements on `notify_state`.
pub use crate::db::notify as store;
pub use event::{ApprovalWatch, Database, Event, Refusal};

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::db::Db;
use machine::Machine;
use message::DbRole;

/// The notifier's fixed working limits (not configuration: the defaults suit any
/// webhook; tests shorten them).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Events waiting for the worker; beyond this they are dropped and counted.
    pub queue: usize,
    /// Messages waiting to be posted; beyond this they are dropped and counted.
    pub outbox: usize,
    /// One POST, from connecting to the answer's head.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Attempts per message, the first included.
    pub attempts: u32,
    /// The first pause between attempts; it doubles each time, up to the cap.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// One claim on the state database; past it, the replica decides alone.
    pub claim_timeout: Duration,
    /// Lockouts within this time after a lockout message are sent as one summary
    /// at its end.
    pub lockout_window: Duration,
    /// How often [`Notifier::watch_database`] looks; unset, a quarter of
    /// `notify.after_secs` between 1 and 15 seconds.
    pub probe_every: Option<Duration>,
    /// How long a guard refusal's message waits for the id of the pending
    /// approval the history writer records; past it, the message goes without
    /// the id. The worker waits only for a message it is about to send (the
    /// first refusal of a streak), and the events behind it wait in the queue.
    pub approval_wait: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            queue: 256,
            outbox: 64,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            // 1 + 2 + 4 + 8 s of pauses (halved at least by jitter) and five
            // timeouts at most: a message is given up within about two minutes.
            attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            claim_timeout: Duration::from_secs(5),
            lockout_window: Duration::from_secs(60),
            probe_every: None,
            approval_wait: Duration::from_secs(10),
        }
    }
}

/// Where the notifier keeps its shared state, and what it is told about the
/// deployment.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The state database: replicas agree there on who announces a change (table
    /// `notify_state`). `None`: this process decides alone.
    pub state: Option<Db>,
    /// The source and the state are one database (`state.url` unset): both are
    /// reported as "the database", one condition.
    pub one_database: bool,
    pub tuning: Tuning,
}

/// Counters of one notifier (the process-wide ones are on `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events put in the queue.
    pub accepted: u64,
    /// Events the worker has finished with.
    pub decided: u64,
    /// Events dropped because the queue was full.
    pub events_dropped: u64,
    /// Messages put in the outbox.
    pub queued: u64,
    /// Messages dropped because the outbox was full.
    pub messages_dropped: u64,
    pub delivered: u64,
    /// Messages given up on (attempts exhausted, or refused by the receiver).
    pub failed: u64,
    /// Messages queued before a reload switched notifications off.
    pub discarded: u64,
    /// Attempts after a failed one.
    pub retries: u64,
    /// Changes this replica saw that another one had announced already.
    pub deduplicated: u64,
    /// Claims the state database could not answer; decided by this replica alone.
    pub unsure: u64,
}

impl Stats {
    /// Nothing queued or in flight.
    pub fn is_idle(&self) -> bool {
        self.accepted == self.decided
            && self.queued == self.delivered + self.failed + self.discarded
    }
}

/// What the tasks and the handles share.
pub(crate) struct Shared {
    settings: watch::Sender<Arc<NotifySettings>>,
    stats: watch::Sender<Stats>,
    tuning: Tuning,
}

impl Shared {
    /// Called after the matching metric, so that whoever waits on these counters
    /// finds `/metrics` up to date.
    fn count(&self, change: impl FnOnce(&mut Stats)) {
        self.stats.send_modify(change);
    }

    fn after(&self) -> Duration {
        Duration::from_secs(self.settings.borrow().after_secs)
    }
}

/// An event on its way to the worker, stamped when it happened.
#[derive(Debug)]
struct Job {
    kind: JobKind,
    now: Instant,
    at: SystemTime,
}

#[derive(Debug)]
enum JobKind {
    /// A refusal, and for the deletion guard's, where its approval id comes from.
    Refused(Refusal, Option<ApprovalWatch>),
    Served,
    Database(DbRole, bool),
    Locked(String, SystemTime),
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

struct Inner {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    one_database: bool,
    /// The last look at each database passed on to the worker, so that only
    /// changes travel (a look on every request costs one atomic swap).
    seen: [AtomicU8; 3],
}

/// A handle to the notifier; cheap to clone. [`Notifier::disabled`] does nothing.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("running", &self.inner.is_some())
            .finish()
    }
}

/// The notifier could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start notifications: {0}")]
pub struct StartError(#[source] reqwest::Error);

impl Notifier {
    /// A notifier that sends nothing (commands other than `serve`).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Starts the worker and the sender on the current Tokio runtime. Without
    /// `notify.webhook_url` they idle until a reload sets one.
    pub fn start(settings: NotifySettings, options: Options) -> Result<Self, StartError> {
        let Options {
            state,
            one_database,
            tuning,
        } = options;
        let client = deliver::client(&tuning).map_err(StartError)?;
        let machine = Machine::new(
            Duration::from_secs(settings.after_secs),
            tuning.lockout_window,
        );
        let (jobs, job_queue) = mpsc::channel(tuning.queue.max(1));
        let (outbox, outbox_queue) = mpsc::channel(tuning.outbox.max(1));
        let shared = Arc::new(Shared {
            settings: watch::Sender::new(Arc::new(settings)),
            stats: watch::Sender::new(Stats::default()),
            tuning,
        });
        tokio::spawn(worker::decide(
            job_queue,
            machine,
            state,
            outbox,
            shared.clone(),
        ));
        tokio::spawn(deliver::run(outbox_queue, client, shared.clone()));
        Ok(Self {
            inner: Some(Arc::new(Inner {
                jobs,
                shared,
                one_database,
                seen: [
                    AtomicU8::new(UNKNOWN),
                    AtomicU8::new(UNKNOWN),
                    AtomicU8::new(UNKNOWN),
                ],
            })),
        })
    }

    /// Tells the notifier what happened. Never waits and never fails: with the
    /// queue full the event is dropped and counted.
    pub fn notify(&self, event: Event) {
        let Some(inner) = &self.inner else {
            return;
        };
        if !inner.shared.settings.borrow().is_enabled() {
            return;
        }
        let kind = match event {
            Event::SyncRefused(refusal) => JobKind::Refused(refusal.trimmed(), None),
            Event::GuardRefused { refusal, approval } => {
                JobKind::Refused(refusal.trimmed(), Some(approval))
            }
            Event::SyncServed => JobKind::Served,
            Event::AccountLocked { username, until } => {
                JobKind::Locked(event::cut(&username), until)
            }
            Event::Database { which, reachable } => {
                let role = match (inner.one_database, which) {
                    (true, _) => DbRole::Both,
                    (false, Database::Source) => DbRole::Source,
                    (false, Database::State) => DbRole::State,
                };
                let seen = &inner.seen[role_index(role)];
                let now_seen = if reachable { UP } else { DOWN };
                if seen.swap(now_seen, Ordering::AcqRel) == now_seen {
                    return;
                }
                JobKind::Database(role, reachable)
            }
        };
        let refused_look = match &kind {
            JobKind::Database(role, _) => Some(*role),
            _ => None,
        };
        let job = Job {
            kind,
            now: Instant::now(),
            at: SystemTime::now(),
        };
        match inner.jobs.try_send(job) {
            Ok(()) => inner.shared.count(|s| s.accepted += 1),
            Err(mpsc::error::TrySendError::Full(job)) => {
                // A look that was not passed on must be passed on next time.
                if let Some(role) = refused_look {
                    inner.seen[role_index(role)].store(UNKNOWN, Ordering::Release);
                }
                metrics::counter!("hr_bridge_notify_events_dropped_total").increment(1);
                inner.shared.count(|s| s.events_dropped += 1);
                tracing::warn!(
                    event = job.kind_name(),
                    "notification queue full; event dropped"
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// New `[notify]` settings (SIGHUP): the webhook, format, link and
    /// `after_secs` apply from the next event or message on.
    pub fn reload(&self, settings: NotifySettings) {
        if let Some(inner) = &self.inner {
            inner.shared.settings.send_replace(Arc::new(settings));
        }
    }

    /// This notifier's counters.
    pub fn stats(&self) -> Stats {
        self.inner
            .as_ref()
            .map(|inner| *inner.shared.stats.borrow())
            .unwrap_or_default()
    }

    /// Waits until the counters satisfy `done`, or `within` passes; returns them.
    pub async fn wait_for(&self, within: Duration, done: impl Fn(&Stats) -> bool) -> Stats {
        let Some(inner) = &self.inner else {
            return Stats::default();
        };
        let mut stats = inner.shared.stats.subscribe();
        let reached = tokio::time::timeout(within, stats.wait_for(|s| done(s))).await;
        match reached {
            Ok(Ok(stats)) => *stats,
            _ => *inner.shared.stats.borrow(),
        }
    }

    /// Looks at `db` every [`Tuning::probe_every`] and reports what it sees, so that
    /// an outage is noticed (and its end too) without a request to notice it. The
    /// look stops when the returned guard is dropped.
    pub fn watch_database(&self, which: Database, db: Db) -> Watch {
        let Some(inner) = &self.inner else {
            return Watch(None);
        };
        let notifier = self.clone();
        let shared = inner.shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let after = shared.after();
                let every = shared.tuning.probe_every.unwrap_or_else(|| {
                    (after / 4).clamp(Duration::from_secs(1), Duration::from_secs(15))
                });
                if shared.settings.borrow().is_enabled() {
                    // A look that hangs counts as a failed one.
                    let reachable = matches!(
                        tokio::time::timeout(every.max(Duration::from_secs(1)), db.ping()).await,
                        Ok(Ok(()))
                    );
                    notifier.notify(Event::Database { which, reachable });
                }
                tokio::time::sleep(every).await;
            }
        });
        Watch(Some(task))
    }
}

/// Stops a [`Notifier::watch_database`] look when dropped.
#[derive(Debug)]
pub struct Watch(Option<tokio::task::JoinHandle<()>>);

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

fn role_index(role: DbRole) -> usize {
    match role {
        DbRole::Source => 0,
        DbRole::State => 1,
        DbRole::Both => 2,
    }
}

impl Job {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            JobKind::Refused(..) => "sync_refused",
            JobKind::Served => "sync_served",
            JobKind::Database(..) => "database",
            JobKind::Locked(..) => "account_locked",
        }
    }
}
