//! THE route list. Each route is named once, in [`list`], with `routes!`: that
//! one entry routes requests to the handler and adds the handler's
//! `#[utoipa::path]` description (and the schemas it names) to the OpenAPI
//! document served at `/openapi.json`, so the router and its description cannot
//! drift apart. Adding a route is one line here.

use axum::middleware::from_fn_with_state;
use axum::{Extension, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::ApiDocument;
use super::{authenticate, basic_auth, docs, health, metrics, middleware, openapi, sync, AppState};
use crate::error::ApiError;

/// The OMFLOW-facing application: every route, Basic Auth and the database
/// gate on OMFLOW's endpoints, and the layers that make every failure an OMFLOW
/// fail envelope. `/metrics` is left out when it has a listener of its own
/// (`serve_metrics` false, `server.metrics_listen` set), so that this port
/// answers 404 there; the document describes it either way.
pub fn router(state: AppState, serve_metrics: bool) -> Router {
    let (routes, document) = list(&state, serve_metrics).split_for_parts();
    let routes = refuse_the_rest(routes.layer(Extension(ApiDocument::render(&document))));
    middleware::stack(routes, &state).with_state(state)
}

/// The separate metrics listener's router: `/metrics` and nothing else.
pub fn metrics_router(state: AppState) -> Router {
    let (routes, _) = metrics_routes().split_for_parts();
    refuse_the_rest(routes).with_state(state)
}

/// Every route, with its description.
fn list(state: &AppState, serve_metrics: bool) -> OpenApiRouter<AppState> {
    // What OMFLOW calls: Basic Auth first, then the database gate.
    let omflow = OpenApiRouter::default()
        .routes(routes!(sync::sync))
        .routes(routes!(authenticate::authenticate))
        .route_layer(from_fn_with_state(
            state.clone(),
            middleware::require_database,
        ))
        .route_layer(from_fn_with_state(
            state.clone(),
            basic_auth::require_omflow,
        ));
    // Probes and this description, without authentication.
    let open = OpenApiRouter::default()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(docs::openapi_json));
    let metrics = if serve_metrics {
        metrics_routes()
    } else {
        // Described, not routed: it is served on its own listener.
        OpenApiRouter::with_openapi(metrics_routes().into_openapi())
    };
    OpenApiRouter::with_openapi(openapi::document())
        .merge(omflow)
        .merge(open)
        .merge(metrics)
}

/// `/metrics`, without authentication (bind it to a private network, or give
/// it a listener of its own).
fn metrics_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(metrics::metrics))
}

/// 404 for a path that is no route, 405 for a method a route does not take,
/// both with the fail envelope.
fn refuse_the_rest(routes: Router<AppState>) -> Router<AppState> {
    routes
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}
