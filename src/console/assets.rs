//! The console's stylesheet, compiled into the binary (no CDN, nothing to deploy
//! beside it).

use axum::http::header;
use axum::response::IntoResponse;

/// The stylesheet, as written in `assets/console/console.css`.
const STYLESHEET: &str = include_str!("../../assets/console/console.css");

/// `GET /assets/console.css`, cacheable for an hour.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}
