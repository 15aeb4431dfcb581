//! The console's one error type: each becomes a small HTML page with its status
//! (or, for a page that needs a session, a redirect to the sign-in). Causes are
//! logged, never shown.

use askama::Template;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::db::DbError;
use crate::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session (or no longer allowed): pages redirect to the sign-in.
    #[error("sign-in needed")]
    SignIn,
    /// No live session on a state-changing request: refused outright.
    #[error("no session")]
    NoSession,
    /// The request names a host this console is not (see `admin.public_origin`).
    #[error("misdirected: not this console's host name")]
    MisdirectedHost,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("internal error")]
    Internal,
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message): (StatusCode, &str, String) = match &self {
            Self::SignIn => return Redirect::to("/sign-in").into_response(),
            Self::NoSession => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Your session has ended. Sign in again.".into(),
            ),
            Self::Forbidden(why) => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("Refused: {why}."),
            ),
            Self::MisdirectedHost => (
                StatusCode::MISDIRECTED_REQUEST,
                "Wrong address",
                "This console does not answer to that host name. Open it at its own \
                 address (the one your administrators gave you)."
                    .into(),
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such page.".into(),
            ),
            Self::BadRequest(why) => (StatusCode::BAD_REQUEST, "Bad request", why.clone()),
            Self::Db(DbError::Unavailable(_))
            | Self::Source(SourceError::Db(DbError::Unavailable(_))) => {
                tracing::warn!(error = %self, "console: a database is unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "A database does not answer; try again shortly.".into(),
                )
            }
            Self::Db(_) | Self::Source(_) | Self::Internal => {
                tracing::error!(error = %self, "console: request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "Something went wrong; the server log says what.".into(),
                )
            }
        };
        error_page(status, title, &message)
    }
}

/// The console's HTML error page with `status`.
fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    match (ErrorPage { title, message }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message.to_owned(),
        )
            .into_response(),
    }
}

/// What axum answers by itself (a form or query it cannot read, a method a
/// route does not take, a body over the limit) is plain text: this gives such
/// answers the console's own HTML error page, keeping their status and headers
/// such as `Allow` (the security headers are set around it). The text axum
/// wrote is not shown: the log has the request.
pub async fn html_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || html {
        return response;
    }
    let (title, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "Method not allowed",
            "This page does not take that kind of request.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("Too large", "The form sent is too large."),
        StatusCode::NOT_FOUND => ("Not found", "There is no such page."),
        s if s.is_client_error() => (
            "Bad request",
            "The request could not be read: use the console's own pages and forms.",
        ),
        _ => ("Error", "Something went wrong; the server log says what."),
    };
    tracing::info!(
        status = status.as_u16(),
        "console: answered with an error page"
    );
    let (mut parts, _) = response.into_parts();
    let page = error_page(status, title, message);
    let (page_parts, body) = page.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(kind) = page_parts.headers.get(header::CONTENT_TYPE) {
        parts.headers.insert(header::CONTENT_TYPE, kind.clone());
    }
    Response::from_parts(parts, body)
}
