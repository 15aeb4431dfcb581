//! `GET /metrics`: Prometheus text format, no authentication (bind it to a private
//! network or filter it at the proxy).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::telemetry::metrics_handle;

pub async fn metrics(State(state): State<AppState>) -> Response {
    let (size, idle) = state.db.pool_usage();
    metrics::gauge!("hr_bridge_db_pool_connections").set(size as f64);
    metrics::gauge!("hr_bridge_db_pool_idle_connections").set(idle as f64);
    metrics::gauge!("hr_bridge_password_checks_in_flight").set(state.hashing.in_flight() as f64);
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
