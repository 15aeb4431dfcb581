//! Who is asking: the session cookie, resolved on every request to a live
//! session of a person who still has a console role and is still served.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::Method;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use subtle::ConstantTimeEq;

use super::{ConsoleError, ConsoleState};
use crate::ops::sessions;

/// The session cookie over HTTPS: `__Host-` makes browsers refuse it unless it
/// is `Secure`, has `Path=/` and no `Domain`, so no sibling host can set or
/// shadow it.
pub const COOKIE_TLS: &str = "__Host-hrb_session";
/// The session cookie over plain HTTP. Browsers refuse a `__Host-` cookie that
/// is not `Secure`, and a `Secure` one set over plain HTTP outside localhost, so
/// plain HTTP (meant for a loopback demo or behind a TLS-terminating proxy) uses
/// an unprefixed name.
pub const COOKIE_PLAIN: &str = "hrb_session";

/// What a person may do on the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads every page.
    Viewer,
    /// Also approves deletions and unlocks accounts.
    Operator,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
        }
    }
}

/// A signed-in person, checked on this request.
#[derive(Debug, Clone)]
pub struct Signed {
    pub username: String,
    pub role: Role,
    /// To put in every form, and to compare with what a POST carries.
    pub csrf_token: String,
}

impl Signed {
    /// 403 unless `given` is this session's CSRF token (compared in constant time).
    pub fn check_csrf(&self, given: &str) -> Result<(), ConsoleError> {
        if bool::from(given.as_bytes().ct_eq(self.csrf_token.as_bytes())) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden("missing or wrong form token"))
        }
    }

    /// 403 unless an operator.
    pub fn require_operator(&self) -> Result<(), ConsoleError> {
        match self.role {
            Role::Operator => Ok(()),
            Role::Viewer => Err(ConsoleError::Forbidden("operators only")),
        }
    }

    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }
}

/// The cookie this console reads and writes.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls {
        COOKIE_TLS
    } else {
        COOKIE_PLAIN
    }
}

/// The session cookie for `token`: HttpOnly, Path=/, SameSite=Strict, Secure
/// over HTTPS; no expiry (the server ends sessions, and a closed browser drops it).
pub fn session_cookie(tls: bool, token: String) -> Cookie<'static> {
    Cookie::build((cookie_name(tls), token))
        .http_only(true)
        .path("/")
        .same_site(SameSite::Strict)
        .secure(tls)
        .build()
}

/// The session token the request carries, if any.
pub fn token(jar: &CookieJar, tls: bool) -> Option<String> {
    jar.get(cookie_name(tls)).map(|c| c.value().to_owned())
}

impl FromRequestParts<ConsoleState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let reading = matches!(parts.method, Method::GET | Method::HEAD);
        let refused = || {
            if reading {
                ConsoleError::SignIn
            } else {
                ConsoleError::NoSession
            }
        };
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(token) = token(&jar, state.tls) else {
            return Err(refused());
        };
        let db = &state.app.db;
        let Some(session) = sessions::resume(db, &token, state.policy()).await? else {
            return Err(refused());
        };
        // Taken out of admin.* or no longer served: the session ends now.
        let Some(role) = state.role_of(&session.username) else {
            tracing::info!(username = %session.username, "console: no role any more; session ended");
            sessions::end(db, &token).await?;
            return Err(refused());
        };
        if !sessions::still_served(&state.app.source, &session.username).await? {
            tracing::info!(username = %session.username, "console: no longer served; session ended");
            sessions::end(db, &token).await?;
            return Err(refused());
        }
        Ok(Signed {
            username: session.username,
            role,
            csrf_token: session.csrf_token,
        })
    }
}

/// `Option<Signed>`: `None` without a live session (the sign-in page asks
/// whether someone is signed in already); database errors still fail.
impl OptionalFromRequestParts<ConsoleState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Signed as FromRequestParts<ConsoleState>>::from_request_parts(parts, state).await {
            Ok(signed) => Ok(Some(signed)),
            Err(ConsoleError::SignIn | ConsoleError::NoSession) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
