//! `POST /authenticate`: does this username/password belong to an active employee?

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use secrecy::SecretString;
use serde_json::Value;

use super::client_addr::client_ip;
use super::schema::{self, LoginAnswer};
use super::{AppState, RequestDeadline};
use crate::error::{ApiError, BadRequest, FailEnvelope};
use crate::password::AuthOutcome;

/// The one message every failed check gets, whatever the true reason.
pub const FAILED_MESSAGE: &str = "invalid username or password";

/// A parsed request. The password is a secret from the moment it is read.
struct LoginRequest {
    username: String,
    password: SecretString,
}

/// Parses the body by hand rather than with `Json<T>`: a missing Content-Type must
/// be accepted, and serde's messages would echo a non-string password's value.
fn parse(body: &[u8]) -> Result<LoginRequest, BadRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|_| BadRequest::NotJson)?;
    let Value::Object(mut fields) = value else {
        return Err(BadRequest::NotAnObject);
    };
    // `Value` keeps one value per key; the body itself says whether there were two.
    if let Ok(Repeated(Some(name))) = serde_json::from_slice::<Repeated>(body) {
        return Err(BadRequest::Duplicate(name));
    }
    let mut take = |name: &'static str| match fields.remove(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(BadRequest::NotAString(name)),
        None => Err(BadRequest::Missing(name)),
    };
    let username = take("username")?;
    let password = SecretString::from(take("password")?);
    Ok(LoginRequest { username, password })
}

/// The first of `username` and `password` that an object names twice (after
/// JSON unescaping, so `"user\u006eame"` counts as `username`).
struct Repeated(Option<&'static str>);

impl<'de> serde::Deserialize<'de> for Repeated {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = Repeated;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Repeated, A::Error> {
                let (mut username, mut password, mut repeated) = (false, false, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let (seen, name) = match key.as_ref() {
                        "username" => (&mut username, "username"),
                        "password" => (&mut password, "password"),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    if std::mem::replace(seen, true) {
                        repeated = repeated.or(Some(name));
                    }
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Ok(Repeated(repeated))
            }
        }
        d.deserialize_map(Keys)
    }
}

/// Is this the right password of an active, unlocked employee?
#[utoipa::path(
    post,
    path = "/authenticate",
    tag = "omflow",
    summary = "Check a username and password",
    description = "Answers 200 either way: `{\"status\":\"success\"}` for the right password of an \
        active, unlocked employee, else the fail envelope with the same message whatever the reason \
        (the true one goes to the audit trail).",
    request_body(content = schema::LoginRequest, content_type = "application/json"),
    security(("omflow_basic_auth" = [])),
    responses(
        (status = 200, description = "Checked: success, or the fail envelope", content_type = "application/json",
            body = LoginAnswer,
            examples(
                ("success" = (value = json!({"status": "success"}))),
                ("fail" = (value = json!({"status": "fail", "message": "invalid username or password"}))),
            )),
        (status = 400, description = "Malformed request: not JSON, not an object, a missing or non-string field", content_type = "application/json", body = FailEnvelope,
            example = json!({"status": "fail", "message": "field \"password\" is missing"})),
        (status = 401, description = "Missing or wrong Basic Auth", content_type = "application/json", body = FailEnvelope,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"hr-bridge\"`")),
            example = json!({"status": "fail", "message": "authentication required"})),
        (status = 413, description = "Body larger than `server.body_limit_bytes`", content_type = "application/json", body = FailEnvelope,
            example = json!({"status": "fail", "message": "request body is larger than 65536 bytes"})),
        (status = 503, description = "Too many password checks queued, the database is unreachable, or the attempt could not be recorded in the audit trail (no answer goes out without its audit row)", content_type = "application/json", body = FailEnvelope,
            headers(("Retry-After" = String, description = "Seconds to wait")),
            example = json!({"status": "fail", "message": "too many password checks in progress; retry shortly"})),
    )
)]
pub async fn authenticate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    deadline: Option<Extension<RequestDeadline>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<LoginAnswer>, ApiError> {
    let request = parse(&body)?;
    let client = client_ip(peer.ip(), &headers, &state.trusted_proxies);
    // Run the check as its own task: a client that hangs up must not cancel it
    // half-way, between counting the attempt and recording its outcome. The
    // request's deadline goes with it: the check stops in time to answer, and no
    // audit row may claim a success nobody received.
    let authenticator = state.authenticator.clone();
    let deadline = deadline.map(|Extension(RequestDeadline(at))| at);
    let outcome = tokio::spawn(async move {
        authenticator
            .authenticate(&request.username, request.password, Some(client), deadline)
            .await
    })
    .await
    .map_err(ApiError::TaskFailed)??;
    Ok(Json(match outcome {
        AuthOutcome::Success => LoginAnswer::success(),
        AuthOutcome::Failure(_) => LoginAnswer::fail(FAILED_MESSAGE),
    }))
}
