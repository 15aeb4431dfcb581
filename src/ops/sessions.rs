//! Web console sessions: a random 256-bit token in the browser, only its SHA-256
//! in the state database (so replicas share sessions and a copy of the table
//! signs no one in), a per-session CSRF token derived from the token (so the
//! table holds nothing a request could be forged with), a one-time flash
//! message, an idle timeout and an absolute lifetime. Whether the person may still use the console (role, still served)
//! is the caller's check, on every request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::{Db, DbError};
use crate::source::{CredentialLookup, Source, SourceError};

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Unused this long, a session ends.
    pub idle: Duration,
    /// This long after sign-in, a session ends however busy.
    pub max: Duration,
}

/// A session just started: what the browser is given.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie's value (never stored).
    pub token: String,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// What the database keys it by (the token's hash).
    pub id: String,
    pub username: String,
    /// Derived from the token (see [`csrf_token`]), never stored.
    pub csrf_token: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The one-time message waiting for the next page, if any (see [`take_flash`]).
    pub flash: Option<String>,
}

/// Touching `last_seen` on every request would write on every page view; a
/// session seen within this long is not written again (far below any idle
/// timeout worth setting, which is at least a second).
const TOUCH_EVERY_MS: i64 = 1_000;

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// 256 random bits from the operating system, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keys a token by.
fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What tells a CSRF token from every other use of a session token.
const CSRF_TAG: &[u8] = b"hr-bridge console CSRF token v1";

/// The session's CSRF token: HMAC-SHA256 keyed with the session token (which
/// only the browser holds) over a fixed tag, URL-safe base64. Nothing in the
/// state database (the token's plain SHA-256 among it) gives it away, so a
/// reader of the table cannot forge a form.
pub fn csrf_token(token: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(CSRF_TAG);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Starts a session for `username` (who has just proved their password).
pub async fn start(db: &Db, username: &str) -> Result<NewSession, DbError> {
    let session = NewSession {
        token: random_token(),
    };
    db.insert_console_session(&token_hash(&session.token), username, now_ms())
        .await?;
    Ok(session)
}

/// Leaves `message` for the session's next page (replacing any waiting).
pub async fn set_flash(db: &Db, id: &str, message: &str) -> Result<(), DbError> {
    db.set_console_flash(id, Some(message)).await
}

/// Takes the waiting `message` (as [`resume`] read it): true for exactly one of
/// any requests racing for it, which alone shows it.
pub async fn take_flash(db: &Db, id: &str, message: &str) -> Result<bool, DbError> {
    db.take_console_flash(id, message).await
}

/// The live session a browser's token names, marked as used now; `None` for an
/// unknown token or an expired session (which is deleted).
pub async fn resume(
    db: &Db,
    token: &str,
    policy: SessionPolicy,
) -> Result<Option<Session>, DbError> {
    // A token is 43 characters; anything else was never issued.
    if token.len() != 43 {
        return Ok(None);
    }
    let id = token_hash(token);
    let Some(row) = db.console_session(&id).await? else {
        return Ok(None);
    };
    let now = now_ms();
    let idle = now.saturating_sub(row.last_seen) >= millis(policy.idle);
    let old = now.saturating_sub(row.created_at) >= millis(policy.max);
    if idle || old {
        db.delete_console_session(&id).await?;
        return Ok(None);
    }
    if now.saturating_sub(row.last_seen) >= TOUCH_EVERY_MS {
        db.touch_console_session(&id, now).await?;
    }
    Ok(Some(Session {
        csrf_token: csrf_token(token),
        id,
        username: row.username,
        created_at: row.created_at,
        flash: row.flash,
    }))
}

/// Ends the session a token names (sign-out); unknown tokens are ignored.
pub async fn end(db: &Db, token: &str) -> Result<(), DbError> {
    db.delete_console_session(&token_hash(token)).await
}

/// Deletes every expired session; returns how many.
pub async fn prune(db: &Db, policy: SessionPolicy) -> Result<u64, DbError> {
    let now = now_ms();
    db.prune_console_sessions(
        now.saturating_sub(millis(policy.idle)),
        now.saturating_sub(millis(policy.max)),
    )
    .await
}

/// True while `username` is an active person the source serves: a leaver loses
/// the console at the next request, not at the end of their session.
pub async fn still_served(source: &Source, username: &str) -> Result<bool, SourceError> {
    match source.credentials(username).await? {
        CredentialLookup::Found { active: true, .. } => source.serves(username).await,
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_stored_hashed() {
        let token = random_token();
        assert_eq!(token.len(), 43);
        assert_ne!(token, random_token());
        let hash = token_hash(&token);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token));
    }

    #[test]
    fn the_csrf_token_is_derived_from_the_session_token_and_not_its_hash() {
        let token = random_token();
        let csrf = csrf_token(&token);
        assert_eq!(csrf.len(), 43);
        assert_eq!(csrf, csrf_token(&token));
        assert_ne!(csrf, csrf_token(&random_token()));
        assert_ne!(csrf, token);
        assert_ne!(csrf, csrf_token(&token_hash(&token)));
    }
}
