//! The OpenAPI document's own part: title, description, licence, tags and the
//! security scheme. The paths and schemas come from the handlers' annotations,
//! collected by the route list ([`routes`](super::routes)), which alone uses
//! this module.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The name the OMFLOW endpoints' `security` requirement refers to.
const BASIC_AUTH: &str = "omflow_basic_auth";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hr-bridge",
        description = "Serves a company's HR database to OMFLOW's Custom HR integration. \
            `/sync` and `/authenticate` require HTTP Basic Auth with OMFLOW's credentials; \
            every failure carries the fail envelope `{\"status\":\"fail\",\"message\":\"…\"}`. \
            Any path answers 404 and any other method on a known path 405, both with the \
            fail envelope.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&BasicAuthScheme),
    tags(
        (name = "omflow", description = "What OMFLOW calls (HTTP Basic Auth)"),
        (name = "operations", description = "Probes, metrics and this description (no authentication)")
    )
)]
struct ApiDoc;

/// The document without paths: what the route list adds its routes to.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Declares the HTTP Basic scheme the OMFLOW endpoints require.
struct BasicAuthScheme;

impl Modify for BasicAuthScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Basic);
        scheme.description = Some(
            "OMFLOW's user name and password (`omflow.username`, `omflow.password_hash`); \
             a missing or wrong header is answered 401 with `WWW-Authenticate: Basic realm=\"hr-bridge\"`"
                .to_owned(),
        );
        components.add_security_scheme(BASIC_AUTH, SecurityScheme::Http(scheme));
    }
}
