//! Who is asking: the session cookie, resolved on every request to a live
//! session of a person who still has a console role and is still served.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::Method;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use subtle::ConstantTimeEq;

use super::pace::Turn;
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
    /// The session's key in the database (the token's hash).
    session_id: String,
    /// The one-time message waiting, as stored.
    flash: Option<String>,
    /// This request's turn while a `/sync` is answered (see [`super::pace`]),
    /// given back when the handler is done with the person.
    _turn: Option<Arc<Turn>>,
}

/// A one-time message an action leaves for the page it redirects to, held in
/// the session (never in the URL, so no link can make a page claim one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    /// `/logins`: the account was unlocked.
    Unlocked(String),
    /// `/logins`: the account was not locked any more.
    NotLocked(String),
    /// `/pending`: the approval with this id was recorded.
    Approved(i64),
}

impl Flash {
    /// As stored: a kind, a colon, the subject.
    fn encode(&self) -> String {
        match self {
            Self::Unlocked(name) => format!("unlocked:{name}"),
            Self::NotLocked(name) => format!("not_locked:{name}"),
            Self::Approved(id) => format!("approved:{id}"),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        let (kind, subject) = text.split_once(':')?;
        match kind {
            "unlocked" => Some(Self::Unlocked(subject.to_owned())),
            "not_locked" => Some(Self::NotLocked(subject.to_owned())),
            "approved" => subject.parse().ok().map(Self::Approved),
            _ => None,
        }
    }

    /// The page that shows it.
    fn page(&self) -> &'static str {
        match self {
            Self::Unlocked(_) | Self::NotLocked(_) => "/logins",
            Self::Approved(_) => "/pending",
        }
    }
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

    /// Leaves `flash` for this session's next view of its page.
    pub async fn set_flash(&self, state: &ConsoleState, flash: &Flash) -> Result<(), ConsoleError> {
        Ok(sessions::set_flash(&state.app.db, &self.session_id, &flash.encode()).await?)
    }

    /// The message waiting for `page`, taken so that it shows once: `None` when
    /// there is none, it is another page's, or another request took it first.
    pub async fn take_flash(
        &self,
        state: &ConsoleState,
        page: &str,
    ) -> Result<Option<Flash>, ConsoleError> {
        let Some(stored) = &self.flash else {
            return Ok(None);
        };
        let Some(flash) = Flash::decode(stored).filter(|f| f.page() == page) else {
            return Ok(None);
        };
        let taken = sessions::take_flash(&state.app.db, &self.session_id, stored).await?;
        Ok(taken.then_some(flash))
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
        let turn = state.pace.turn(&state.app.sync_answering).await;
        Ok(Signed {
            username: session.username,
            role,
            csrf_token: session.csrf_token,
            session_id: session.id,
            flash: session.flash,
            _turn: turn.map(Arc::new),
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
