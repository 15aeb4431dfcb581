//! The web console for HR and IT staff (`admin.listen`): server-rendered pages
//! over the same operations as the command line (`crate::ops`), on a listener
//! of its own, never on OMFLOW's port.
//!
//! Security model: people sign in with their own HR credentials (the same check
//! as `/authenticate`, audited with channel `console`) and are authorised by
//! `admin.viewers` / `admin.operators`; the session lives in the state database
//! (see [`crate::ops::sessions`]) and is checked on every request, with the
//! person's role and whether the source still serves them. Every request must
//! name the console in `Host` (see [`origin`]: `admin.public_origin`, or the
//! listener's own address); every state-changing request carries the session's
//! CSRF token (derived from the session token, never stored) and a same-origin
//! `Origin`. Messages after an action are one-time flashes held in the session.
//! Every answer, axum's own refusals included, is HTML with a strict
//! Content-Security-Policy (no inline script or style) and the other headers in
//! [`security_headers`]. Templates escape everything.
//! While OMFLOW's `/sync` is being answered the console yields to it: requests
//! are served one at a time with a rest after each (see [`pace`]), taken when
//! the session is checked.

mod assets;
mod chart;
mod checks;
mod error;
mod history;
mod logins;
mod origin;
mod pace;
mod pages;
mod pending;
mod session;
mod sign_in;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::AdminSettings;
use crate::http::AppState;
use crate::ops::sessions::SessionPolicy;

pub use checks::{ProblemChecks, CHECK_INTERVAL};
pub use error::ConsoleError;
pub use origin::OriginPolicy;
pub use pace::Pace;
pub use session::{Role, COOKIE_PLAIN, COOKIE_TLS};

/// What every console handler can reach.
#[derive(Debug, Clone)]
pub struct ConsoleState {
    /// The OMFLOW side's state: stores, the authenticator, the guard's limits.
    pub app: AppState,
    pub admin: Arc<AdminSettings>,
    /// Served over HTTPS: the cookie is `__Host-` prefixed and `Secure`.
    pub tls: bool,
    /// The host names and origins this console accepts.
    pub origins: Arc<OriginPolicy>,
    /// The Data problems page's checks, kept between visits.
    pub problems: ProblemChecks,
    /// The console's pace while a `/sync` is answered.
    pub pace: pace::Pace,
}

impl ConsoleState {
    pub fn policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle: self.admin.session_idle(),
            max: self.admin.session_max(),
        }
    }

    /// The role configured for `username`, if any; operators first.
    pub fn role_of(&self, username: &str) -> Option<Role> {
        if self.admin.operators.iter().any(|u| u == username) {
            Some(Role::Operator)
        } else if self.admin.viewers.iter().any(|u| u == username) {
            Some(Role::Viewer)
        } else {
            None
        }
    }
}

/// The Content-Security-Policy of every answer: nothing but our own stylesheet
/// and images, no script at all, forms posting only to us, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's application: every page, the sign-in, the assets, and the
/// layers that guard them.
pub fn router(state: ConsoleState) -> Router {
    let routes = Router::new()
        .route("/", get(pages::overview))
        .route("/problems", get(pages::problems))
        .route("/history", get(history::list))
        .route("/history/{id}", get(history::show))
        .route("/activity", get(history::activity))
        .route("/pending", get(pending::show))
        .route("/pending/approve", post(pending::approve))
        .route("/logins", get(logins::show))
        .route("/logins.csv", get(logins::csv))
        .route("/logins/unlock", post(logins::unlock))
        .route("/sign-in", get(sign_in::form).post(sign_in::sign_in))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/assets/console.css", get(assets::stylesheet))
        .fallback(|| async { ConsoleError::NotFound });
    security_headers(
        routes
            .layer(DefaultBodyLimit::max(
                crate::config::limits::CONSOLE_BODY_LIMIT_BYTES,
            ))
            .layer(from_fn_with_state(state.clone(), origin::guard))
            .layer(axum::middleware::from_fn(error::html_errors))
            .layer(CatchPanicLayer::custom(|_| {
                axum::response::IntoResponse::into_response(ConsoleError::Internal)
            }))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                    tracing::info_span!(
                        "console",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                }),
            ),
    )
    .with_state(state)
}

/// The headers every console answer carries, errors included.
fn security_headers<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    routes
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
