//! `POST /sync`: every active employee and department in OMFLOW's shape.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::directory;
use crate::error::ApiError;

/// The request body is ignored (OMFLOW may send none, `{}` or anything else), but
/// taking it as `Bytes` still enforces the body limit.
pub async fn sync(State(state): State<AppState>, _body: Bytes) -> Result<Response, ApiError> {
    let payload = directory::serve_sync(&state.db, &state.guard).await?;
    metrics::gauge!("hr_bridge_sync_users").set(payload.users as f64);
    metrics::gauge!("hr_bridge_sync_groups").set(payload.groups as f64);
    metrics::gauge!("hr_bridge_sync_bytes").set(payload.json.len() as f64);
    tracing::info!(
        users = payload.users,
        groups = payload.groups,
        bytes = payload.json.len(),
        "served sync payload"
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        payload.json,
    )
        .into_response())
}
