//! Liveness and readiness probes for orchestrators; no authentication.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::error::fail_response;

/// How long `/readyz` waits for the database before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the database has answered since start-up (and, with
/// `database.auto_migrate`, been migrated). `serve` listens at once and keeps
/// this closed until then, so a database that is down at start-up gives 503s
/// instead of a crash loop.
#[derive(Debug, Clone)]
pub struct DatabaseGate(Arc<tokio::sync::watch::Sender<bool>>);

impl DatabaseGate {
    /// A gate for a database already prepared.
    pub fn opened() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(true)))
    }

    /// A gate that waits for [`DatabaseGate::open`].
    pub fn closed() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(false)))
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }

    pub fn is_open(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the gate is open.
    pub async fn wait_open(&self) {
        let mut open = self.0.subscribe();
        // Only fails if the sender is gone, which `self` rules out.
        let _ = open.wait_for(|open| *open).await;
    }
}

/// A 503 from `/readyz`, with the same `Retry-After` as other database 503s.
fn not_ready(message: &str) -> Response {
    let mut response = fail_response(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

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
    if !state.startup.is_open() {
        return not_ready("waiting for the database at start-up");
    }
    match tokio::time::timeout(READY_TIMEOUT, state.db.is_ready()).await {
        Ok(Ok(true)) => Json(json!({"status": "success"})).into_response(),
        Ok(Ok(false)) => not_ready("database migrations are not applied; run `hr-bridge migrate`"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            not_ready("database unavailable")
        }
        Err(_) => not_ready("database did not answer in time"),
    }
}
