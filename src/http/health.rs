//! Liveness and readiness probes for orchestrators; no authentication.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::error::fail_response;

/// How long `/readyz` waits for the database before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs", content_type = "application/json", body = crate::http::openapi::Success)),
)]
pub async fn healthz() -> Response {
    Json(json!({"status": "success"})).into_response()
}

/// 200 when the database answers and every migration is applied, else 503.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers and every migration is applied", content_type = "application/json", body = crate::http::openapi::Success),
        (status = 503, description = "Database down, slow, or not migrated", content_type = "application/json", body = crate::http::openapi::FailEnvelope,
            example = json!({"status": "fail", "message": "database unavailable"})),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, state.db.is_ready()).await {
        Ok(Ok(true)) => Json(json!({"status": "success"})).into_response(),
        Ok(Ok(false)) => fail_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "database migrations are not applied; run `hr-bridge migrate`",
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            fail_response(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
        Err(_) => fail_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "database did not answer in time",
        ),
    }
}
