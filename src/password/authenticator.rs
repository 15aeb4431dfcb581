//! The employee password check behind `/authenticate`: look the employee up, count
//! the attempt against the lockout, verify the stored hash on the hashing pool,
//! record the attempt in the audit trail, and upgrade an old hash after a success.
//!
//! Unknown users, wrong passwords and inactive employees all cost one lookup, one
//! counted attempt, one full hash and one audit row. Locked accounts and hashes
//! beyond the caps answer without hashing. Every failure is then held until the
//! failure floor has passed since the attempt began (without a hashing slot or a
//! database connection), so the answer time does not reveal which it was, nor how
//! the account's hash is stored.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

use super::caps::MAX_USERNAME_BYTES;
use super::{hash_argon2id, Argon2Settings, DummyHash, HashingPool, PasswordError, StoredHash};
use crate::db::{AuditEntry, Credentials, Db, DbError};
use crate::password::Busy;
use crate::source::{CredentialLookup, Source, SourceError};

/// Why a check failed. Never shown to the caller, who gets one message for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    UnknownUser,
    BadPassword,
    Inactive,
    /// The stored hash is NULL, empty or of no recognised format.
    NoHash,
    /// Too many consecutive failures; the password was not checked.
    Locked,
    /// The credentials query returned several rows for the name: never guess.
    Ambiguous,
    /// The stored hash asks for more work than the caps allow; it never matches
    /// and is never run.
    HashTooCostly,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::BadPassword => "bad_password",
            Self::Inactive => "inactive",
            Self::NoHash => "no_hash",
            Self::Locked => "locked",
            Self::Ambiguous => "ambiguous_user",
            Self::HashTooCostly => "hash_too_costly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Success,
    Failure(FailureReason),
}

impl AuthOutcome {
    /// The audit trail's `reason` column.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure(reason) => reason.as_str(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Db(#[from] DbError),
    /// The mapped credentials query does not fit its contract.
    #[error(transparent)]
    Source(crate::source::QueryProblem),
}

impl From<SourceError> for AuthError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Db(db) => Self::Db(db),
            SourceError::Query(q) => Self::Source(q),
            SourceError::Cancelled => Self::Db(DbError::Config(e.to_string())),
        }
    }
}

/// Lockout and hashing policy, from the `auth.*` settings.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Consecutive failures before a lockout; 0 disables lockouts.
    pub max_failures: u32,
    pub lockout: Duration,
    /// Parameters for new hashes, and the floor below which hashes are upgraded.
    pub argon2: Argon2Settings,
    /// Least time a failed check takes to answer (`auth.failure_floor_ms`).
    pub failure_floor: Duration,
}

/// Checks employee passwords.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// hr-bridge's own state: lockouts and the audit trail.
    db: Db,
    /// Where the stored hashes come from.
    source: Source,
    pool: HashingPool,
    dummy: DummyHash,
    policy: AuthPolicy,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The audit trail keeps the username as given, cut to what the column holds, with
/// NUL (which PostgreSQL text cannot hold) shown as U+FFFD.
fn clip(username: &str) -> Cow<'_, str> {
    let mut end = username.len().min(MAX_USERNAME_BYTES);
    while !username.is_char_boundary(end) {
        end -= 1;
    }
    let clipped = &username[..end];
    if clipped.contains('\0') {
        Cow::Owned(clipped.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(clipped)
    }
}

/// Whether a username could exist in any backend: not empty, not longer than the
/// key columns, no NUL (PostgreSQL text cannot hold one). Others are unknown users
/// without a database lookup.
fn plausible(username: &str) -> bool {
    !username.is_empty() && username.len() <= MAX_USERNAME_BYTES && !username.contains('\0')
}

impl Authenticator {
    pub fn new(
        db: Db,
        source: Source,
        pool: HashingPool,
        dummy: DummyHash,
        policy: AuthPolicy,
    ) -> Self {
        Self {
            db,
            source,
            pool,
            dummy,
            policy,
        }
    }

    /// Checks one login attempt from `client` and records it. A failure is answered
    /// no sooner than the failure floor after the attempt began.
    #[tracing::instrument(skip(self, password, client), fields(outcome))]
    pub async fn authenticate(
        &self,
        username: &str,
        password: SecretString,
        client: Option<IpAddr>,
    ) -> Result<AuthOutcome, AuthError> {
        let began = tokio::time::Instant::now();
        let outcome = self.check(username, password, client).await?;
        if outcome != AuthOutcome::Success {
            tokio::time::sleep_until(began + self.policy.failure_floor).await;
        }
        Ok(outcome)
    }

    async fn check(
        &self,
        username: &str,
        password: SecretString,
        client: Option<IpAddr>,
    ) -> Result<AuthOutcome, AuthError> {
        // Turn a storm away before it costs any database work.
        let admission = self.pool.admit()?;
        let plausible = plausible(username);
        let lookup = if plausible {
            self.source.credentials(username).await?
        } else {
            CredentialLookup::NotFound
        };
        let ambiguous = lookup == CredentialLookup::Ambiguous;
        if ambiguous {
            tracing::warn!(
                username = %clip(username),
                "source.credentials returned several rows for one username; login refused"
            );
        }
        let credentials = match lookup {
            CredentialLookup::Found {
                password_hash,
                active,
            } => Some(Credentials {
                password_hash,
                active,
            }),
            _ => None,
        };
        // Count the attempt before checking it. Unknown names are counted too, so
        // that a lockout's fast answer cannot tell an existing account apart.
        if self.policy.max_failures > 0 && plausible {
            let now = unix_now();
            let lock_until = now
                .saturating_add(i64::try_from(self.policy.lockout.as_secs()).unwrap_or(i64::MAX));
            let attempt = self
                .db
                .begin_login_attempt(
                    username,
                    now,
                    i64::from(self.policy.max_failures),
                    lock_until,
                )
                .await?;
            if attempt > i64::from(self.policy.max_failures) {
                drop(admission);
                let outcome = AuthOutcome::Failure(FailureReason::Locked);
                self.finish(username, outcome, client, false).await;
                return Ok(outcome);
            }
        }
        let parsed = credentials.as_ref().map(|c| {
            c.password_hash
                .as_deref()
                .map_or(Err(PasswordError::Unrecognised), StoredHash::parse)
        });
        let stored = parsed.as_ref().and_then(|p| p.as_ref().ok()).cloned();
        let outcome = match (&credentials, parsed) {
            (None, _) | (_, None) => {
                let (dummy, checked) = (self.dummy.clone(), password.clone());
                admission.run(move || dummy.burn(&checked)).await?;
                AuthOutcome::Failure(if ambiguous {
                    FailureReason::Ambiguous
                } else {
                    FailureReason::UnknownUser
                })
            }
            (Some(_), Some(Err(PasswordError::TooCostly))) => {
                drop(admission);
                tracing::warn!(
                    "the stored password hash is beyond the cost caps and never matches; \
                     `hr-bridge check` lists such accounts"
                );
                AuthOutcome::Failure(FailureReason::HashTooCostly)
            }
            (Some(_), Some(Err(_))) => {
                let (dummy, checked) = (self.dummy.clone(), password.clone());
                admission.run(move || dummy.burn(&checked)).await?;
                AuthOutcome::Failure(FailureReason::NoHash)
            }
            (Some(found), Some(Ok(hash))) => {
                let verify_with = hash.clone();
                let checked = password.clone();
                let matches = admission.run(move || verify_with.verify(&checked)).await?;
                match (matches, found.active) {
                    (false, _) => AuthOutcome::Failure(FailureReason::BadPassword),
                    (true, false) => AuthOutcome::Failure(FailureReason::Inactive),
                    // Only a person /sync serves logs in, whatever the mapped
                    // credentials query says about them.
                    (true, true) if !self.source.serves(username).await? => {
                        AuthOutcome::Failure(FailureReason::Inactive)
                    }
                    (true, true) => AuthOutcome::Success,
                }
            }
        };
        if outcome == AuthOutcome::Success {
            if let (Some(hash), Some(old)) = (stored, credentials.and_then(|c| c.password_hash)) {
                if hash.needs_rehash(&self.policy.argon2, &password)
                    && self.source.queries().update_password.is_some()
                {
                    self.spawn_rehash(username.to_owned(), old, password, hash.format());
                }
            }
        }
        let clear_failures = outcome == AuthOutcome::Success && self.policy.max_failures > 0;
        self.finish(username, outcome, client, clear_failures).await;
        tracing::Span::current().record("outcome", outcome.reason());
        Ok(outcome)
    }

    fn count(outcome: AuthOutcome) {
        metrics::counter!("hr_bridge_auth_attempts_total", "reason" => outcome.reason())
            .increment(1);
    }

    /// Records the attempt in the audit trail and, after a success, ends the run
    /// of failures in the same commit. Errors are logged: the answer stands.
    async fn finish(
        &self,
        username: &str,
        outcome: AuthOutcome,
        client: Option<IpAddr>,
        clear_failures: bool,
    ) {
        Self::count(outcome);
        let occurred_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let client = client.map(|ip| ip.to_string());
        let audit_name = clip(username);
        let entry = AuditEntry {
            occurred_at: &occurred_at,
            username: &audit_name,
            outcome: if outcome == AuthOutcome::Success {
                "success"
            } else {
                "failure"
            },
            reason: outcome.reason(),
            client_addr: client.as_deref(),
        };
        let written = if clear_failures {
            self.db.record_successful_login(username, &entry).await
        } else {
            self.db.record_login(&entry).await
        };
        if let Err(e) = written {
            tracing::error!(error = %e, reason = entry.reason, "could not write the audit row");
        }
    }

    /// Replaces an old-format or weak hash by a fresh Argon2id one in the
    /// background, as a compare-and-set on the old value. Any failure is logged and
    /// retried at the next login; it never affects this one.
    fn spawn_rehash(
        &self,
        username: String,
        old: String,
        password: SecretString,
        format: &'static str,
    ) {
        let (source, pool, argon2) = (self.source.clone(), self.pool.clone(), self.policy.argon2);
        tokio::spawn(async move {
            let new = match pool.run(move || hash_argon2id(&password, &argon2)).await {
                Ok(Ok(new)) => new,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "rehash failed");
                    return;
                }
                Err(Busy) => {
                    tracing::debug!("hashing pool busy; rehash deferred to the next login");
                    return;
                }
            };
            match source.replace_password_hash(&username, &old, &new).await {
                Ok(true) => {
                    tracing::info!(%username, from = format, "upgraded password hash to argon2id")
                }
                Ok(false) => tracing::info!(%username, "hash changed meanwhile; rehash skipped"),
                Err(e) => {
                    tracing::warn!(%username, error = %e, "could not store the upgraded hash")
                }
            }
        });
    }
}

/// Deletes audit rows past their retention and lockout rows idle for a day (or a
/// lockout period, if longer) that lock nothing. Returns the audit rows removed.
pub async fn prune_auth_state(
    db: &Db,
    retention_days: u32,
    lockout: Duration,
) -> Result<u64, DbError> {
    let retention = Duration::from_secs(u64::from(retention_days) * 86_400);
    let cutoff = SystemTime::now()
        .checked_sub(retention)
        .unwrap_or(UNIX_EPOCH);
    let audit_cutoff = humantime::format_rfc3339_millis(cutoff).to_string();
    let now = unix_now();
    let idle = i64::try_from(lockout.as_secs().max(86_400)).unwrap_or(i64::MAX);
    db.prune_auth_state(&audit_cutoff, now.saturating_sub(idle), now)
        .await
}

/// Usernames of the built-in `employees` table whose stored hash is beyond the
/// caps (they can never log in), for `hr-bridge check`. Streams the table.
pub async fn costly_hashes(db: &Db) -> Result<Vec<String>, DbError> {
    let mut costly = Vec::new();
    db.for_each_password_hash(|username, hash| {
        if matches!(StoredHash::parse(hash), Err(PasswordError::TooCostly)) {
            costly.push(username.to_owned());
        }
    })
    .await?;
    Ok(costly)
}
