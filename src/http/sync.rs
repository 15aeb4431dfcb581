//! `POST /sync`: every active employee and department in OMFLOW's shape.

use std::io::Read;
use std::net::SocketAddr;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::client_addr::client_ip;
use super::schema::SyncSuccess;
use super::AppState;
use crate::directory::{self, SyncFailure};
use crate::error::{ApiError, FailEnvelope};
use crate::notify::{Event, Notifier, Refusal};
use crate::ops::history::{CallRecord, RecordedOutcome, Recorder};

/// Bytes decompressed per chunk of the answer.
const CHUNK: usize = 64 * 1024;

/// Where payload gauge values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A `/sync` just served them.
    Served,
    /// The last recorded snapshot, read at start-up: never over a served value.
    Restored,
}

/// Sets `hr_bridge_sync_users`, `_groups` and `_bytes`. A restored value is
/// dropped once a `/sync` has set them, since it is older.
pub fn set_payload_gauges(users: usize, groups: usize, bytes: usize, origin: Origin) {
    static SERVED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut served = SERVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if origin == Origin::Restored && *served {
        return;
    }
    *served |= origin == Origin::Served;
    metrics::gauge!("hr_bridge_sync_users").set(users as f64);
    metrics::gauge!("hr_bridge_sync_groups").set(groups as f64);
    metrics::gauge!("hr_bridge_sync_bytes").set(bytes as f64);
}

/// Tells the notifier how a build ended: served, refused (with counts and the
/// first few usernames only), or neither (a database or query problem, which
/// the database watch reports).
fn tell(notifier: &Notifier, outcome: &Result<directory::Served, SyncFailure>) {
    let event = match outcome {
        Ok(_) => Event::SyncServed,
        Err(SyncFailure::GuardTripped(refusal)) => {
            let drops = refusal.drops.as_ref();
            // The history writer records the pending approval after the answer;
            // the message waits (bounded) for its id, never the request.
            Event::GuardRefused {
                approval: refusal.approval.watch(),
                refusal: Refusal::DeletionGuard {
                    users: drops.map_or(0, |d| d.users as u64),
                    departments: drops.map_or(0, |d| d.groups as u64),
                    usernames: drops
                        .map(|d| {
                            d.user_sample
                                .iter()
                                .take(crate::notify::event::MAX_NAMES)
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default(),
                    approval_id: None,
                },
            }
        }
        Err(SyncFailure::Invalid(problems)) => Event::SyncRefused(Refusal::InvalidData {
            problems: problems.len() as u64,
            keys: first_keys(problems),
        }),
        Err(_) => return,
    };
    notifier.notify(event);
}

/// The first few keys (usernames, group_nos) at fault, each once, in the order
/// the problems are listed (as in the 409 and `hr-bridge check`): the
/// notification's only personal data, capped as a guard refusal's usernames are.
fn first_keys(problems: &[directory::Problem]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for key in problems.iter().flat_map(directory::Problem::keys) {
        if keys.len() == crate::notify::event::MAX_NAMES {
            break;
        }
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_owned());
        }
    }
    keys
}

/// The request body is ignored (OMFLOW may send none, `{}` or anything else), but
/// taking it as `Bytes` still enforces the body limit.
#[utoipa::path(
    post,
    path = "/sync",
    tag = "omflow",
    summary = "Every active employee and department, in OMFLOW's format",
    description = "OMFLOW adds, changes and deletes its users to match the answer, so invalid data \
        or a sync that would drop more than the deletion guard allows is refused with 409 and \
        OMFLOW changes nothing. Compressed with gzip or zstd when `Accept-Encoding` asks.",
    request_body(content = Option<serde_json::Value>, description = "Ignored: none, `{}` or anything else (up to the body limit)", content_type = "application/json"),
    security(("omflow_basic_auth" = [])),
    responses(
        (status = 200, description = "The directory", content_type = "application/json", body = SyncSuccess),
        (status = 401, description = "Missing or wrong Basic Auth", content_type = "application/json", body = FailEnvelope,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"hr-bridge\"`")),
            example = json!({"status": "fail", "message": "authentication required"})),
        (status = 409, description = "Refused, OMFLOW should change nothing: the data breaks a rule, or the deletion guard tripped", content_type = "application/json", body = FailEnvelope,
            example = json!({"status": "fail", "message": "sync refused, OMFLOW should change nothing: 1 problem(s) in the HR data: email \"a@example.com\" is shared by employees \"alice\", \"bob\"", "problems": ["email \"a@example.com\" is shared by employees \"alice\", \"bob\""]})),
        (status = 413, description = "Body larger than `server.body_limit_bytes`", content_type = "application/json", body = FailEnvelope,
            example = json!({"status": "fail", "message": "request body is larger than 65536 bytes"})),
        (status = 503, description = "Database unreachable", content_type = "application/json", body = FailEnvelope,
            headers(("Retry-After" = String, description = "Seconds to wait")),
            example = json!({"status": "fail", "message": "database unavailable"})),
    )
)]
pub async fn sync(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    _body: Bytes,
) -> Result<Response, ApiError> {
    // Counted until the last byte is sent (the guard travels with the body).
    let answering = state.sync_answering.enter();
    let mut call = PendingCall {
        recorder: state.history.clone(),
        started: Instant::now(),
        record: Some(CallRecord {
            occurred_ms: directory::unix_ms(),
            client_addr: Some(client_ip(peer.ip(), &headers, &state.trusted_proxies).to_string()),
            request_id: headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            duration_ms: 0,
            outcome: RecordedOutcome::Unavailable(
                "no answer within server.request_timeout_secs".into(),
            ),
        }),
    };
    let (source, db) = (state.source.clone(), state.db.clone());
    let notifier = state.notifier.clone();
    // The guard's limits as they are now (SIGHUP may change them).
    let guard = *state.guard.borrow();
    let outcome = state
        .sync_flight
        .run(move || {
            metrics::counter!("hr_bridge_sync_builds_total").increment(1);
            async move {
                let outcome = directory::serve_sync(&source, &db, &guard)
                    .await
                    .map_err(SyncFailure::from);
                // Once per build, not per waiting caller; queued, never awaited.
                tell(&notifier, &outcome);
                outcome
            }
        })
        .await;
    call.finish(RecordedOutcome::of(&outcome));
    let payload = outcome?.payload;
    set_payload_gauges(payload.users, payload.groups, payload.bytes, Origin::Served);
    tracing::info!(
        users = payload.users,
        groups = payload.groups,
        bytes = payload.bytes,
        "served sync payload"
    );
    // The payload is held compressed and shared; each answer decompresses it as
    // it goes out, so a large directory never sits in memory uncompressed.
    let length = payload.bytes;
    let chunks = futures_util::stream::unfold(
        (payload.reader(), answering),
        |(mut reader, answering)| async move {
            let mut chunk = vec![0u8; CHUNK];
            match reader.read(&mut chunk) {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(chunk)),
                        (reader, answering),
                    ))
                }
                Err(e) => Some((Err(e), (reader, answering))),
            }
        },
    );
    // Fused: a compressing layer may poll once more after the end.
    let chunks = futures_util::StreamExt::fuse(chunks);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(length)),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

/// A call on its way to the history: recorded when the outcome is known, or, if
/// the handler is dropped first (the request deadline answered 503), as that.
struct PendingCall {
    recorder: Recorder,
    started: Instant,
    record: Option<CallRecord>,
}

impl PendingCall {
    fn finish(&mut self, outcome: RecordedOutcome) {
        if let Some(record) = self.record.as_mut() {
            record.outcome = outcome;
        }
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration_ms =
                i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
            self.recorder.record(record);
        }
    }
}
