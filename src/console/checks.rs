//! The Data problems page's check of the HR data, run in the background and
//! kept in memory (per replica), so that no visit to the page ever reads and
//! validates the whole directory itself: at 1,000,000 employees a check takes
//! seconds and much memory, and a viewer reloading the page (or several at
//! once) must not take that time from OMFLOW's `/sync`.
//!
//! At most one check runs at a time, and at most one starts per
//! [`CHECK_INTERVAL`] (timed by the application's clock, which a test moves):
//! a visit finding the latest check older than that starts a new one in a task
//! of its own and shows the latest result meanwhile.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::clock::ClockHandle;
use crate::db::DbError;
use crate::directory::SyncError;
use crate::ops::problems::{self, ProblemReport};
use crate::source::Source;

/// A visit starts a new check when the latest one started at least this long ago.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// How long a visit waits for a check in progress before answering without
/// its result: enough for a small directory's, never a large one's.
pub const SHORT_WAIT: Duration = Duration::from_millis(50);

/// A check that ended with a report.
#[derive(Debug, Clone)]
pub struct Checked {
    /// When the check started: the data is as of then.
    pub at: SystemTime,
    pub report: Arc<ProblemReport>,
}

/// A check that failed (a database down, the source's error).
#[derive(Debug, Clone)]
pub struct Failed {
    pub at: SystemTime,
    /// What to tell the person (the details are in the server log).
    pub reason: &'static str,
}

/// What the page shows.
#[derive(Debug, Clone)]
pub struct View {
    /// The latest check that ended with a report.
    pub checked: Option<Checked>,
    /// The latest check, when it failed (and so is newer than `checked`).
    pub failed: Option<Failed>,
    /// A check is running now.
    pub running: bool,
}

#[derive(Debug, Default)]
struct Latest {
    checked: Option<Checked>,
    failed: Option<Failed>,
    /// When the latest check started, finished or not.
    started: Option<SystemTime>,
    running: bool,
}

/// The checks of one replica's console; cheap to clone.
#[derive(Debug, Clone)]
pub struct ProblemChecks {
    source: Source,
    clock: ClockHandle,
    latest: Arc<Mutex<Latest>>,
    /// Bumped whenever a check ends, for visits waiting [`SHORT_WAIT`].
    ended: Arc<watch::Sender<u64>>,
}

impl ProblemChecks {
    pub fn new(source: Source, clock: ClockHandle) -> Self {
        Self {
            source,
            clock,
            latest: Arc::default(),
            ended: Arc::new(watch::channel(0).0),
        }
    }

    /// The latest result, after starting a check if one is due and waiting at
    /// most [`SHORT_WAIT`] for the one running.
    pub async fn view(&self) -> View {
        let mut ended = self.ended.subscribe();
        self.start_if_due();
        if self.snapshot().running {
            let _ = tokio::time::timeout(SHORT_WAIT, ended.changed()).await;
        }
        self.snapshot()
    }

    /// The application's clock, which times the checks.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Latest> {
        // Nothing panics while holding it; a poisoned state is still whole.
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> View {
        let latest = self.lock();
        View {
            checked: latest.checked.clone(),
            failed: latest.failed.clone(),
            running: latest.running,
        }
    }

    /// Starts a check in a task of its own unless one is running or the latest
    /// started less than [`CHECK_INTERVAL`] ago.
    fn start_if_due(&self) {
        let now = self.clock.now();
        {
            let mut latest = self.lock();
            let due = !latest.running
                && latest.started.is_none_or(|at| {
                    // A clock set back: check rather than wait for it to catch up.
                    now.duration_since(at)
                        .map_or(true, |age| age >= CHECK_INTERVAL)
                });
            if !due {
                return;
            }
            latest.running = true;
            latest.started = Some(now);
        }
        metrics::counter!("hr_bridge_console_checks_total").increment(1);
        tracing::info!("console: checking the HR data for the Data problems page");
        let ending = Ending {
            checks: self.clone(),
            at: now,
            outcome: None,
        };
        tokio::spawn(async move {
            let outcome = problems::check(&ending.checks.source).await;
            ending.record(outcome);
        });
    }
}

/// Records a check's end when its task ends, however it ends (a panic or the
/// runtime shutting down included), so that a later visit can start another.
struct Ending {
    checks: ProblemChecks,
    at: SystemTime,
    outcome: Option<Result<ProblemReport, SyncError>>,
}

impl Ending {
    fn record(mut self, outcome: Result<ProblemReport, SyncError>) {
        self.outcome = Some(outcome);
        // Dropped here: the outcome is kept.
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        let outcome = self.outcome.take();
        {
            let mut latest = self.checks.lock();
            latest.running = false;
            match outcome {
                Some(Ok(report)) => {
                    latest.checked = Some(Checked {
                        at: self.at,
                        report: Arc::new(report),
                    });
                    latest.failed = None;
                }
                Some(Err(e)) => {
                    let reason = reason(&e);
                    tracing::error!(error = %e, "console: the data check failed");
                    latest.failed = Some(Failed {
                        at: self.at,
                        reason,
                    });
                }
                None => {
                    tracing::error!("console: the data check stopped before it ended");
                    latest.failed = Some(Failed {
                        at: self.at,
                        reason: "the check stopped before it ended",
                    });
                }
            }
        }
        self.checks.ended.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn reason(e: &SyncError) -> &'static str {
    match e {
        SyncError::Db(DbError::Unavailable(_)) => "the HR database did not answer",
        SyncError::Query(_) => "a mapped query failed",
        _ => "the HR data could not be read",
    }
}
