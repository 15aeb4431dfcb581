//! `ApiError`: every failure the HTTP layer can answer, rendered as the right status
//! with OMFLOW's fail envelope. Causes are logged here; clients only ever see the
//! human-readable reason, never SQL or internals.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;
use crate::directory::{Problem, SyncFailure};

/// Problems listed in a 409 body; `hr-bridge check` prints them all.
const MAX_PROBLEMS_SHOWN: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("too many password checks in progress; retry shortly")]
    Busy,
    #[error("database unavailable")]
    DatabaseUnavailable(#[source] DbError),
    #[error("waiting for the database at start-up; retry shortly")]
    Starting,
    #[error("the request did not finish in time; retry shortly")]
    TimedOut,
    /// A login was checked but its audit row could not be written: it is never
    /// answered without one (the authenticator logged the record).
    #[error("the login could not be recorded in the audit trail; retry shortly")]
    Unrecorded,
    #[error("the request body did not arrive in time")]
    BodyTimedOut,
    #[error("sync refused: the HR data is invalid")]
    InvalidData(std::sync::Arc<Vec<Problem>>),
    /// A mapped source query no longer fits its contract (the HR schema changed).
    #[error("the HR source is misconfigured: {0}; run `hr-bridge check`")]
    SourceMisconfigured(String),
    #[error("{0}")]
    DeletionGuard(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) => Self::DatabaseUnavailable(e),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<SyncFailure> for ApiError {
    fn from(e: SyncFailure) -> Self {
        match e {
            SyncFailure::Invalid(problems) => Self::InvalidData(problems),
            SyncFailure::GuardTripped(message) => Self::DeletionGuard(message),
            SyncFailure::Unavailable(cause) => {
                Self::DatabaseUnavailable(DbError::Unavailable(sqlx::Error::Protocol(cause)))
            }
            SyncFailure::Query(problem) => Self::SourceMisconfigured(problem),
            SyncFailure::Internal(cause) => Self::Internal(anyhow::anyhow!(cause)),
        }
    }
}

impl From<crate::password::Busy> for ApiError {
    fn from(_: crate::password::Busy) -> Self {
        Self::Busy
    }
}

#[derive(Serialize)]
struct FailEnvelope<'a> {
    status: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<Vec<String>>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy
            | Self::DatabaseUnavailable(_)
            | Self::SourceMisconfigured(_)
            | Self::Starting
            | Self::TimedOut
            | Self::Unrecorded => StatusCode::SERVICE_UNAVAILABLE,
            Self::BodyTimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::InvalidData(_) | Self::DeletionGuard(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The fail envelope with a status, for answers that are not an `ApiError`
/// (such as `/authenticate`'s 200 "fail").
pub fn fail_response(status: StatusCode, message: &str) -> Response {
    envelope_response(status, message, None)
}

fn envelope_response(status: StatusCode, message: &str, problems: Option<Vec<String>>) -> Response {
    let body = serde_json::to_vec(&FailEnvelope {
        status: "fail",
        message,
        problems,
    })
    .unwrap_or_else(|_| br#"{"status":"fail","message":"internal error"}"#.to_vec());
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::DatabaseUnavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable")
            }
            Self::SourceMisconfigured(problem) => {
                tracing::error!(%problem, "HR source query does not fit its contract")
            }
            _ => {}
        }
        let mut response = match &self {
            Self::InvalidData(problems) => {
                let shown: Vec<String> = problems
                    .iter()
                    .take(MAX_PROBLEMS_SHOWN)
                    .map(ToString::to_string)
                    .collect();
                let more = problems.len().saturating_sub(shown.len());
                let mut message = format!(
                    "sync refused, OMFLOW should change nothing: {} problem(s) in the HR data: {}",
                    problems.len(),
                    shown.join("; ")
                );
                if more > 0 {
                    message.push_str(&format!(
                        "; and {more} more (run `hr-bridge check` for the full list)"
                    ));
                }
                tracing::warn!(problems = problems.len(), "sync refused: invalid HR data");
                envelope_response(status, &message, Some(shown))
            }
            other => envelope_response(status, &other.to_string(), None),
        };
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="hr-bridge""#),
                );
            }
            Self::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::DatabaseUnavailable(_)
            | Self::SourceMisconfigured(_)
            | Self::Starting
            | Self::TimedOut
            | Self::Unrecorded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}
