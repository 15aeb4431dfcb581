//! The middleware around the routes: the layer stack every request of the
//! OMFLOW-facing port passes ([`stack`]), and the pieces of it that are ours:
//! metrics by route, the fail envelope on every error answer, the request
//! deadline ([`deadline`]) and the database gate on OMFLOW's endpoints.

mod deadline;

use std::time::Instant;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{from_fn, from_fn_with_state, map_response_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::AppState;
use crate::error::ApiError;

/// Wraps `routes` (fallbacks included) in the layers of the OMFLOW-facing port,
/// innermost first: the body limit, the fail envelope, the request deadline,
/// compression, panics as 500, metrics, request ids and the request's span.
pub fn stack(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(map_response_with_state(state.clone(), envelope_errors))
        .layer(from_fn_with_state(state.clone(), deadline::enforce))
        // gzip or zstd when the client asks (a large /sync shrinks about tenfold);
        // the encoder works chunk by chunk, so no worker is held for the whole body.
        .layer(CompressionLayer::new())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Panicked.into_response()
        }))
        .layer(from_fn(track_metrics))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id,
                )
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// 503 on OMFLOW's endpoints until the database is prepared.
pub async fn require_database(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !state.startup.is_open() {
        return Err(ApiError::Starting);
    }
    Ok(next.run(request).await)
}

/// Counts requests and their latency by route and status. The route label is
/// the route's pattern from the route list, never the requested path, and every
/// path that matches no route shares one label, so that scanners cannot blow
/// up the number of series.
async fn track_metrics(request: Request<Body>, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("status", status)];
    metrics::counter!("hr_bridge_http_requests_total", &labels).increment(1);
    metrics::histogram!("hr_bridge_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Rewrites any error answer that is not already JSON (axum's own rejections, such
/// as a body over the limit, timeouts) into the fail envelope, keeping its headers.
async fn envelope_errors(State(state): State<AppState>, response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let error = match status {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(state.body_limit),
        other => ApiError::Rejected(other),
    };
    let (parts, _) = response.into_parts();
    let mut rewritten = error.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}
