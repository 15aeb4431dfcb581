//! The console yields to OMFLOW: while a `/sync` answer is being built or sent,
//! signed-in console requests are served one at a time, each followed by a rest
//! of [`REST_FACTOR`] times as long as it took (at most [`REST_MAX`]) before the
//! next one starts. A browser clicking (or a script looping) through the
//! console then holds at most a twentieth of one core while the sync runs;
//! with no sync in progress the console is not paced at all.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::Instant;

use crate::config::limits::{CONSOLE_REST_FACTOR as REST_FACTOR, CONSOLE_REST_MAX as REST_MAX};
use crate::directory::Answering;

/// When the next console request may start while a sync is answered.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    next_start: Arc<Mutex<Option<Instant>>>,
}

/// The rest that follows a request that took `took` while a sync ran.
fn rest_after(took: Duration) -> Duration {
    took.saturating_mul(REST_FACTOR).min(REST_MAX)
}

/// A signed-in request's turn while a sync is answered: the other signed-in
/// requests wait until it is dropped (when the handler ends), and then for the
/// rest it earned.
#[derive(Debug)]
pub struct Turn {
    next_start: OwnedMutexGuard<Option<Instant>>,
    started: Instant,
    answering: Answering,
}

impl Pace {
    /// Waits for this request's turn if a `/sync` answer is in progress (and
    /// for the rest the previous turn earned); no turn, and no wait, otherwise.
    /// Only signed-in requests take turns: the sign-in itself is bounded by the
    /// hashing pool like `/authenticate`, so a stranger's failed sign-ins,
    /// waiting out their failure floor, never hold the console for others.
    pub async fn turn(&self, answering: &Answering) -> Option<Turn> {
        if !answering.any() {
            return None;
        }
        let mut next_start = self.next_start.clone().lock_owned().await;
        if let Some(at) = next_start.take() {
            tokio::time::sleep_until(at).await;
        }
        metrics::counter!("hr_bridge_console_paced_requests_total").increment(1);
        Some(Turn {
            next_start,
            started: Instant::now(),
            answering: answering.clone(),
        })
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.answering.any() {
            *self.next_start = Some(Instant::now() + rest_after(self.started.elapsed()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_is_nineteen_times_the_request_and_at_most_a_second() {
        assert_eq!(
            rest_after(Duration::from_millis(2)),
            Duration::from_millis(38)
        );
        assert_eq!(rest_after(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            rest_after(Duration::from_millis(60)),
            Duration::from_secs(1)
        );
        assert_eq!(rest_after(Duration::MAX), Duration::from_secs(1));
    }
}
