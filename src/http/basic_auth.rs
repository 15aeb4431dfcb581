//! HTTP Basic Auth for the OMFLOW endpoints, as a middleware. Failed attempts are
//! throttled per client address (behind `auth.trusted_proxies`, the forwarded one):
//! a throttled client gets 429 with `Retry-After` and the fail envelope.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::SecretString;

use super::client_addr::client_ip;
use super::AppState;
use crate::error::ApiError;
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

/// Lets the request through only with OMFLOW's credentials; 401 otherwise, and
/// 429 with `Retry-After` for an address that failed too often.
pub async fn require_omflow(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // Exactly one Authorization header: with two, a proxy in front may have
    // checked one and we would check the other.
    let mut presented = request.headers().get_all(header::AUTHORIZATION).iter();
    let (Some(only), None) = (presented.next(), presented.next()) else {
        return Err(ApiError::Unauthorized);
    };
    let Some((user, password)) = parse_basic(only.as_bytes()) else {
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
            state.omflow.rejected(client);
            Err(ApiError::Unauthorized)
        }
        Verdict::Throttled(retry_after) => {
            state.omflow.throttled(client, "throttled");
            Err(ApiError::Throttled(retry_after))
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
