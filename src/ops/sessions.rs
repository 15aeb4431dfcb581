//! Web console sessions: a random 256-bit token in the browser, only its SHA-256
//! in the state database (so replicas share sessions and a copy of the table
//! signs no one in), a per-session CSRF token, an idle timeout and an absolute
//! lifetime. Whether the person may still use the console (role, still served)
//! is the caller's check, on every request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
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
    pub csrf_token: String,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    pub csrf_token: String,
    /// Unix milliseconds.
    pub created_at: i64,
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

/// Starts a session for `username` (who has just proved their password).
pub async fn start(db: &Db, username: &str) -> Result<NewSession, DbError> {
    let session = NewSession {
        token: random_token(),
        csrf_token: random_token(),
    };
    db.insert_console_session(
        &token_hash(&session.token),
        username,
        &session.csrf_token,
        now_ms(),
    )
    .await?;
    Ok(session)
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
        username: row.username,
        csrf_token: row.csrf_token,
        created_at: row.created_at,
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
}
