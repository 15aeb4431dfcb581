//! The console's one error type: each becomes a small HTML page with its status
//! (or, for a page that needs a session, a redirect to the sign-in). Causes are
//! logged, never shown.

use askama::Template;
use axum::http::{header, StatusCode};
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
        let page = ErrorPage {
            title,
            message: &message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message,
            )
                .into_response(),
        }
    }
}
