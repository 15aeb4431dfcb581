//! Liveness and readiness probes for orchestrators; no authentication.

use std::time::Duration;

use axum::extract::State;
use axum::Json;

use super::schema::Success;
use super::AppState;
use crate::error::{ApiError, FailEnvelope, NotReady};

/// How long `/readyz` waits for the database before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs", content_type = "application/json", body = Success)),
)]
pub async fn healthz() -> Json<Success> {
    Json(Success::SUCCESS)
}

/// 200 when the database answers and every migration is applied, else 503.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers and every migration is applied", content_type = "application/json", body = Success),
        (status = 503, description = "Database down, slow, or not migrated", content_type = "application/json", body = FailEnvelope,
            example = json!({"status": "fail", "message": "database unavailable"})),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Success>, ApiError> {
    if !state.startup.is_open() {
        return Err(ApiError::NotReady(NotReady::Starting));
    }
    match tokio::time::timeout(READY_TIMEOUT, state.db.is_ready()).await {
        Ok(Ok(true)) => Ok(Json(Success::SUCCESS)),
        Ok(Ok(false)) => Err(ApiError::NotReady(NotReady::NotMigrated)),
        Ok(Err(e)) => Err(ApiError::NotReady(NotReady::Unavailable(e))),
        Err(_) => Err(ApiError::NotReady(NotReady::Slow)),
    }
}
