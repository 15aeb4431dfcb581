//! `GET /metrics`: Prometheus text format, no authentication (bind it to a private
//! network or filter it at the proxy).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::FailEnvelope;
use crate::telemetry::metrics_handle;

/// Prometheus text format. Answered 404 here when `server.metrics_listen` gives it a
/// listener of its own.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String),
        (status = 404, description = "`server.metrics_listen` is set: /metrics is served there instead", content_type = "application/json", body = FailEnvelope,
            example = json!({"status": "fail", "message": "not found"})),
    ),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (size, idle) = state.db.pool_usage();
    metrics::gauge!("hr_bridge_db_pool_connections").set(size as f64);
    metrics::gauge!("hr_bridge_db_pool_idle_connections").set(idle as f64);
    // Logins from arrival to answer, not the hashing pool's occupancy: a failure
    // is held until the failure floor, but its hash ends sooner or later by
    // format, and a figure anyone can poll must not show when.
    metrics::gauge!("hr_bridge_password_checks_in_flight")
        .set(state.authenticator.in_progress() as f64);
    // `/sync` calls waiting for the build in progress (they share one).
    metrics::gauge!("hr_bridge_sync_calls_in_flight").set(state.sync_flight.callers() as f64);
    let handle = metrics_handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}
