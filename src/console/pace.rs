//! The console yields to OMFLOW: while a `/sync` answer is being built or sent,
//! console requests are served one at a time, and each is followed by a rest
//! of [`REST_FACTOR`] times as long as it took (at most [`REST_MAX`]) before the
//! next one starts. A browser clicking (or a script looping) through the
//! console then holds at most a twentieth of one core while the sync runs;
//! with no sync in progress the console is not paced at all.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::ConsoleState;
use crate::config::limits::{CONSOLE_REST_FACTOR as REST_FACTOR, CONSOLE_REST_MAX as REST_MAX};

/// When the next console request may start while a sync is answered.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    next_start: Arc<Mutex<Option<Instant>>>,
}

/// The rest that follows a request that took `took` while a sync ran.
fn rest_after(took: Duration) -> Duration {
    took.saturating_mul(REST_FACTOR).min(REST_MAX)
}

/// Middleware: paces console requests while any `/sync` answer is in progress.
pub async fn yield_to_sync(
    State(state): State<ConsoleState>,
    request: Request,
    next: Next,
) -> Response {
    if !state.app.sync_answering.any() {
        return next.run(request).await;
    }
    // One at a time: the others wait here, idle, in arrival order.
    let mut next_start = state.pace.next_start.lock().await;
    if let Some(at) = next_start.take() {
        tokio::time::sleep_until(at).await;
    }
    metrics::counter!("hr_bridge_console_paced_requests_total").increment(1);
    let started = Instant::now();
    let response = next.run(request).await;
    if state.app.sync_answering.any() {
        *next_start = Some(Instant::now() + rest_after(started.elapsed()));
    }
    response
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
