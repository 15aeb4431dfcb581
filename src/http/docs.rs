//! `GET /openapi.json`: the OpenAPI 3.1 description of every route. The route
//! list ([`routes`](super::routes)) builds it together with the router and hands
//! it to this handler as a request extension; `docs/openapi.json` holds the same
//! document, and a test fails when the two drift apart.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::error::ApiError;

/// The document as pretty JSON, rendered once when the router is built.
#[derive(Debug, Clone)]
pub struct ApiDocument(Result<Bytes, Arc<serde_json::Error>>);

impl ApiDocument {
    pub fn render(document: &utoipa::openapi::OpenApi) -> Self {
        Self(document.to_pretty_json().map(Bytes::from).map_err(Arc::new))
    }
}

/// This description, without authentication.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 description of every route", content_type = "application/json", body = Object),
    )
)]
pub async fn openapi_json(
    Extension(ApiDocument(document)): Extension<ApiDocument>,
) -> Result<Response, ApiError> {
    let json = document.map_err(ApiError::Document)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response())
}
