//! HTTP Basic Auth for the OMFLOW endpoints, as a middleware. Failed attempts are
//! throttled per client address (behind `auth.trusted_proxies`, the forwarded one):
//! a throttled client gets 429 with `Retry-After` and the fail envelope.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::SecretString;

use super::client_addr::client_ip;
use super::AppState;
use crate::error::{fail_response, ApiError};
use crate::password::Verdict;

/// Splits an `Authorization: Basic …` header into user and password.
fn parse_basic(value: &[u8]) -> Option<(String, SecretString)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), SecretString::from(password.to_owned())))
}

/// 429 with the fail envelope and whole seconds (at least 1) to wait.
fn throttled(retry_after: Duration) -> Response {
    let mut response = fail_response(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed authentication attempts from this address; retry later",
    );
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// Lets the request through only with OMFLOW's credentials; 401 otherwise.
pub async fn require_omflow(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some((user, password)) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| parse_basic(v.as_bytes()))
    else {
        return Err(ApiError::Unauthorized);
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let client = client_ip(peer, request.headers(), &state.trusted_proxies);
    match state.omflow.check(client, &user, password).await {
        Verdict::Accepted => Ok(next.run(request).await),
        Verdict::Rejected => {
            tracing::warn!(%client, "rejected OMFLOW Basic Auth credentials");
            Err(ApiError::Unauthorized)
        }
        Verdict::Throttled(retry_after) => {
            tracing::warn!(%client, "throttled failed OMFLOW Basic Auth attempts");
            Ok(throttled(retry_after))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_basic;
    use secrecy::ExposeSecret;

    #[test]
    fn parses_a_password_that_contains_colons() {
        let (user, password) = parse_basic(b"Basic b21mbG93OmE6Yjpj").expect("valid header");
        assert_eq!(user, "omflow");
        assert_eq!(password.expose_secret(), "a:b:c");
    }

    #[test]
    fn rejects_other_schemes_and_bad_base64() {
        assert!(parse_basic(b"Bearer abc").is_none());
        assert!(parse_basic(b"Basic !!!").is_none());
        assert!(parse_basic(b"Basic bm9jb2xvbg==").is_none());
    }
}
