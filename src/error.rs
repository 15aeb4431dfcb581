//! `ApiError`: every failure the HTTP layer can answer, rendered as the right status
//! with OMFLOW's fail envelope. Causes are logged here; clients only ever see the
//! human-readable reason, never SQL or internals.
//!
//! [`FailEnvelope`] is both what goes out and what the OpenAPI document describes.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::directory::{Problem, SyncFailure};
use crate::password::AuthError;

/// Problems listed in a 409 body; `hr-bridge check` prints them all.
const MAX_PROBLEMS_SHOWN: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized,
    /// Too many failed Basic Auth attempts from one address: 429, `Retry-After`.
    #[error("too many failed authentication attempts from this address; retry later")]
    Throttled(Duration),
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// An error status that axum or a layer answered without a body of ours.
    #[error("{}", rejection_message(*.0))]
    Rejected(StatusCode),
    #[error("too many password checks in progress; retry shortly")]
    Busy,
    #[error("database unavailable")]
    DatabaseUnavailable(#[source] Arc<DbError>),
    #[error("waiting for the database at start-up; retry shortly")]
    Starting,
    /// `/readyz`: not ready to serve OMFLOW.
    #[error(transparent)]
    NotReady(NotReady),
    #[error("the request did not finish in time; retry shortly")]
    TimedOut,
    /// A login was checked but its audit row could not be written: it is never
    /// answered without one (the authenticator logged the record).
    #[error("the login could not be recorded in the audit trail; retry shortly")]
    Unrecorded,
    #[error("the request body did not arrive in time")]
    BodyTimedOut,
    #[error("sync refused: the HR data is invalid")]
    InvalidData(Arc<Vec<Problem>>),
    /// A mapped source query no longer fits its contract (the HR schema changed).
    #[error("the HR source is misconfigured: {0}; run `hr-bridge check`")]
    SourceMisconfigured(String),
    #[error("{0}")]
    DeletionGuard(String),
    /// A request handler panicked (the panic itself is printed by the panic hook).
    #[error("internal error")]
    Panicked,
    /// A task a handler handed its work to ended without an answer.
    #[error("internal error")]
    TaskFailed(#[source] tokio::task::JoinError),
    /// The OpenAPI document could not be rendered as JSON.
    #[error("internal error")]
    Document(#[source] Arc<serde_json::Error>),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Why a request body was refused (400). The field is named, its value never.
#[derive(Debug, thiserror::Error)]
pub enum BadRequest {
    #[error("request body is not valid JSON")]
    NotJson,
    #[error("request body must be a JSON object with \"username\" and \"password\"")]
    NotAnObject,
    #[error("field \"{0}\" must be a string")]
    NotAString(&'static str),
    #[error("field \"{0}\" is missing")]
    Missing(&'static str),
    /// Parsers disagree on which of two values counts (the first, the last), so
    /// a body that names a field twice is refused rather than read either way.
    #[error("field \"{0}\" appears more than once")]
    Duplicate(&'static str),
}

/// Why `/readyz` answers 503.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("waiting for the database at start-up")]
    Starting,
    #[error("database migrations are not applied; run `hr-bridge migrate`")]
    NotMigrated,
    #[error("database unavailable")]
    Unavailable(#[source] DbError),
    #[error("database did not answer in time")]
    Slow,
}

/// The message of a bodiless error status: axum's own rejections (a body it
/// cannot read, say) and the layers' answers.
fn rejection_message(status: StatusCode) -> String {
    match status {
        StatusCode::BAD_REQUEST => "malformed request".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed".to_owned(),
        StatusCode::REQUEST_TIMEOUT => "request timed out".to_owned(),
        other => other
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) => Self::DatabaseUnavailable(Arc::new(e)),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<SyncFailure> for ApiError {
    fn from(e: SyncFailure) -> Self {
        match e {
            SyncFailure::Invalid(problems) => Self::InvalidData(problems),
            SyncFailure::GuardTripped(refusal) => Self::DeletionGuard(refusal.message.clone()),
            SyncFailure::Unavailable(cause) => Self::DatabaseUnavailable(cause),
            SyncFailure::Query(problem) => Self::SourceMisconfigured(problem.0),
            SyncFailure::Failed(cause) => Self::Internal(anyhow::Error::new(cause)),
            SyncFailure::Lost => Self::Panicked,
        }
    }
}

impl From<crate::password::Busy> for ApiError {
    fn from(_: crate::password::Busy) -> Self {
        Self::Busy
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Busy(busy) => busy.into(),
            AuthError::Db(db) => db.into(),
            AuthError::Source(problem) => Self::SourceMisconfigured(problem.0),
            AuthError::TimedOut => Self::TimedOut,
            // The authenticator logged the attempt the audit trail lacks.
            AuthError::Unrecorded(_) => Self::Unrecorded,
        }
    }
}

/// `"fail"`.
#[derive(ToSchema, Serialize)]
pub enum FailStatus {
    #[serde(rename = "fail")]
    Fail,
}

/// OMFLOW's fail envelope, carried by every failure of any kind.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "fail", "message": "authentication required"}))]
pub struct FailEnvelope {
    status: FailStatus,
    /// A human-readable reason.
    message: String,
    /// On a 409 for invalid data: each problem (the first 50), as in `message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<Vec<String>>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Rejected(status) => *status,
            Self::Busy
            | Self::DatabaseUnavailable(_)
            | Self::SourceMisconfigured(_)
            | Self::Starting
            | Self::NotReady(_)
            | Self::TimedOut
            | Self::Unrecorded => StatusCode::SERVICE_UNAVAILABLE,
            Self::BodyTimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::InvalidData(_) | Self::DeletionGuard(_) => StatusCode::CONFLICT,
            Self::Panicked | Self::TaskFailed(_) | Self::Document(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Logs what the client is not told.
    fn log(&self) {
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::Panicked => tracing::error!("request failed: a request handler panicked"),
            Self::TaskFailed(cause) => {
                tracing::error!(error = %cause, "request failed: its task ended without an answer")
            }
            Self::Document(cause) => {
                tracing::error!(error = %cause, "cannot render the OpenAPI document")
            }
            Self::DatabaseUnavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable")
            }
            Self::NotReady(NotReady::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "readiness check failed")
            }
            Self::SourceMisconfigured(problem) => {
                tracing::error!(%problem, "HR source query does not fit its contract")
            }
            Self::InvalidData(problems) => {
                tracing::warn!(problems = problems.len(), "sync refused: invalid HR data")
            }
            _ => {}
        }
    }

    /// The envelope's `message` and, for invalid data, its `problems`.
    fn envelope(&self) -> FailEnvelope {
        let Self::InvalidData(problems) = self else {
            return FailEnvelope::new(self.to_string());
        };
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
        FailEnvelope {
            problems: Some(shown),
            ..FailEnvelope::new(message)
        }
    }
}

impl FailEnvelope {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            status: FailStatus::Fail,
            message: message.into(),
            problems: None,
        }
    }

    /// This envelope as the body of a `status` answer.
    fn into_response(self, status: StatusCode) -> Response {
        let body = serde_json::to_vec(&self)
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
}

/// Whole seconds, at least 1, rounded up.
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let mut response = self.envelope().into_response(self.status());
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="hr-bridge""#),
                );
            }
            Self::Throttled(wait) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(wait)),
                );
            }
            Self::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::DatabaseUnavailable(_)
            | Self::SourceMisconfigured(_)
            | Self::Starting
            | Self::NotReady(_)
            | Self::TimedOut
            | Self::Unrecorded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(error: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let response = error.into_response();
        let status = response.status();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json",
            "{status}"
        );
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = futures_util::FutureExt::now_or_never(axum::body::to_bytes(
            response.into_body(),
            usize::MAX,
        ))
        .expect("the body is in memory")
        .expect("the body reads");
        let body = serde_json::from_slice(&body).expect("the body is JSON");
        (status, body, retry_after)
    }

    #[test]
    fn every_error_is_the_fail_envelope_and_hides_internals() {
        let internal = [
            ApiError::Panicked,
            ApiError::Document(Arc::new(serde_json::Error::io(std::io::Error::other(
                "secret detail",
            )))),
            ApiError::Internal(anyhow::anyhow!("secret detail")),
            ApiError::from(DbError::Config("secret detail".into())),
        ];
        for error in internal {
            let (status, body, _) = answer(error);
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(
                body,
                serde_json::json!({"status": "fail", "message": "internal error"})
            );
        }
        let (status, body, retry) = answer(ApiError::NotReady(NotReady::Unavailable(
            DbError::Unavailable(crate::db::DbCause::Sqlx(sqlx::Error::PoolTimedOut)),
        )));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["message"], "database unavailable");
        assert_eq!(retry.as_deref(), Some("5"));
    }

    #[test]
    fn bodiless_statuses_get_a_message_of_their_own() {
        for (status, message) in [
            (StatusCode::BAD_REQUEST, "malformed request"),
            (StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            (StatusCode::REQUEST_TIMEOUT, "request timed out"),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported media type"),
            (StatusCode::from_u16(599).unwrap(), "request failed"),
        ] {
            let (answered, body, retry) = answer(ApiError::Rejected(status));
            assert_eq!(answered, status);
            assert_eq!(body["message"], message);
            assert_eq!(retry, None, "{status}");
        }
    }

    #[test]
    fn a_throttled_client_waits_whole_seconds() {
        for (wait, seconds) in [
            (Duration::ZERO, "1"),
            (Duration::from_millis(1), "1"),
            (Duration::from_secs(3), "3"),
            (Duration::from_millis(3001), "4"),
        ] {
            let (status, body, retry) = answer(ApiError::Throttled(wait));
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(
                body["message"],
                "too many failed authentication attempts from this address; retry later"
            );
            assert_eq!(retry.as_deref(), Some(seconds), "{wait:?}");
        }
    }

    #[test]
    fn invalid_data_lists_at_most_fifty_problems() {
        let problems: Vec<Problem> = (0..60)
            .map(|i| Problem::EmptyGroupNo {
                display_name: format!("d{i}"),
            })
            .collect();
        let (status, body, _) = answer(ApiError::InvalidData(Arc::new(problems)));
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["problems"].as_array().map(Vec::len), Some(50));
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("sync refused, OMFLOW should change nothing: 60 problem(s)"));
        assert!(message.ends_with("; and 10 more (run `hr-bridge check` for the full list)"));
    }
}
