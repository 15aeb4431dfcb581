//! Posting messages: one task that takes them from a bounded outbox in order,
//! POSTs each with a timeout, and retries failures with exponential backoff and
//! jitter, a bounded number of times. Nothing here ever waits on a request's path.
//! Failures are logged with the endpoint's scheme, host and port only: the rest
//! of a webhook URL is usually its token.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use secrecy::ExposeSecret;
use tokio::sync::mpsc;

use super::format;
use super::message::Message;
use super::{Shared, Tuning};

/// The HTTP client all messages go through: a connection pool, a timeout per
/// attempt, no redirects (a webhook that redirects is misconfigured, and
/// following it would re-send the message, token and all, elsewhere), and the
/// proxy the environment names (`HTTPS_PROXY`, `NO_PROXY`).
pub fn client(tuning: &Tuning) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(tuning.timeout)
        .connect_timeout(tuning.timeout.min(tuning.connect_timeout))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hr-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why one attempt failed.
#[derive(Debug)]
struct Failure {
    reason: String,
    /// Worth another attempt (a timeout, a refused connection, a 5xx, a 429).
    retry: bool,
    /// How long the receiver asked us to wait (`Retry-After` in seconds).
    wait: Option<Duration>,
}

/// The sender task: runs until every handle to the outbox is gone.
pub(crate) async fn run(
    mut outbox: mpsc::Receiver<Message>,
    client: reqwest::Client,
    shared: Arc<Shared>,
) {
    while let Some(message) = outbox.recv().await {
        let settings = shared.settings.borrow().clone();
        let Some(url) = settings.webhook_url.as_ref() else {
            // Switched off by a reload since it was queued.
            shared.count(|s| s.discarded += 1);
            continue;
        };
        let body = format::render(&message, settings.format, settings.console_url.as_deref());
        let body = match serde_json::to_vec(&body) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(event = message.event, error = %e, "cannot encode a notification");
                metrics::counter!("hr_bridge_notify_messages_total", "outcome" => "failed")
                    .increment(1);
                shared.count(|s| s.failed += 1);
                continue;
            }
        };
        let endpoint = endpoint(url.expose_secret());
        let tuning = &shared.tuning;
        let mut attempt = 1;
        loop {
            match post(&client, url.expose_secret(), &body).await {
                Ok(()) => {
                    tracing::info!(event = message.event, %endpoint, attempt, "notification delivered");
                    metrics::counter!("hr_bridge_notify_messages_total", "outcome" => "delivered")
                        .increment(1);
                    shared.count(|s| s.delivered += 1);
                    break;
                }
                Err(failure) => {
                    let reason = failure.reason.replace(url.expose_secret(), &endpoint);
                    if !failure.retry || attempt >= tuning.attempts {
                        tracing::error!(
                            event = message.event, %endpoint, attempt, error = %reason,
                            "notification not delivered; giving up"
                        );
                        metrics::counter!("hr_bridge_notify_messages_total", "outcome" => "failed")
                            .increment(1);
                        shared.count(|s| s.failed += 1);
                        break;
                    }
                    let pause = backoff(tuning, attempt, failure.wait, &mut rand::thread_rng());
                    tracing::warn!(
                        event = message.event, %endpoint, attempt, of = tuning.attempts,
                        error = %reason, retry_in = ?pause,
                        "notification not delivered; retrying"
                    );
                    metrics::counter!("hr_bridge_notify_retries_total").increment(1);
                    shared.count(|s| s.retries += 1);
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// One POST; any 2xx is success.
async fn post(client: &reqwest::Client, url: &str, body: &[u8]) -> Result<(), Failure> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| Failure {
            reason: describe(&e),
            retry: true,
            wait: None,
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let wait = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // 408 and 429 say "later"; 5xx may pass; any other 4xx will fail the same way
    // again (a revoked token, a wrong URL) and 3xx is not followed.
    let retry = status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
    Err(Failure {
        reason: format!("the receiver answered {status}"),
        retry,
        wait,
    })
}

/// A client error in one line, without the URL reqwest keeps in it.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // The innermost cause says what happened (connection refused, a TLS error).
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    match last {
        Some(cause) if !e.is_timeout() => format!("{kind}: {cause}"),
        _ => kind.to_owned(),
    }
}

/// The pause before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped, with
/// "equal jitter" (half fixed, half random) so that replicas and retries spread
/// out yet each pause is at least half its step; never shorter than what the
/// receiver asked for, up to the cap.
pub fn backoff(
    tuning: &Tuning,
    attempt: u32,
    asked: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    let step = tuning
        .backoff_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(tuning.backoff_max);
    let half = step / 2;
    let jitter = rng.gen_range(0..=half.as_millis().min(u128::from(u64::MAX)) as u64);
    let pause = half + Duration::from_millis(jitter);
    match asked {
        Some(asked) => pause.max(asked.min(tuning.backoff_max)),
        None => pause,
    }
}

/// Scheme, host and port of a URL: what a log line may show of a webhook.
pub fn endpoint(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", parsed.scheme()),
            (Some(host), None) => format!("{}://{host}", parsed.scheme()),
            _ => format!("{}://", parsed.scheme()),
        },
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_endpoint_never_shows_path_query_or_user() {
        assert_eq!(
            endpoint("https://user:pw@hooks.slack.com/services/T0/B0/SECRET?x=1"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:9000/hook/token"),
            "http://127.0.0.1:9000"
        );
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter_and_a_cap() {
        let tuning = Tuning {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            ..Tuning::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..=12u32 {
            let step = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(30));
            for _ in 0..50 {
                let pause = backoff(&tuning, attempt, None, &mut rng);
                assert!(pause >= step / 2 && pause <= step, "{attempt}: {pause:?}");
            }
        }
        // Retry-After is honoured, up to the cap.
        let asked = backoff(&tuning, 1, Some(Duration::from_secs(20)), &mut rng);
        assert_eq!(asked, Duration::from_secs(20));
        let capped = backoff(&tuning, 1, Some(Duration::from_secs(3600)), &mut rng);
        assert_eq!(capped, Duration::from_secs(30));
    }
}
