//! The employee password check behind `/authenticate`: look the employee up, count
//! the attempt against the lockout, verify the stored hash on the hashing pool,
//! record the attempt in the audit trail, and upgrade an old hash after a success.
//!
//! Unknown users, wrong passwords and inactive employees all cost one lookup, one
//! counted attempt, one full hash and one audit row. Locked accounts and hashes
//! beyond the caps answer without hashing. Every failure is then held until the
//! failure floor has passed since the attempt began (without a hashing slot or a
//! database connection), so the answer time does not reveal which it was, nor how
//! the account's hash is stored; its audit row is written after that hold, so the
//! moment of that write (seen in the pool's figures) reveals nothing either.
//!
//! No answer goes out before its audit row is committed: an attempt whose row
//! cannot be written (by the request's deadline) is answered 503, held like a
//! failure, and its lockout count is taken back (see [`super::audit`]).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;
use tokio::time::Instant;

use super::audit::{AuditRecord, AuditTrail, Unrecorded};
use super::caps::MAX_USERNAME_BYTES;
use super::outcome::{AuthOutcome, FailureReason};
use super::{hash_argon2id, Argon2Settings, DummyHash, HashingPool, PasswordError, StoredHash};
use crate::clock::{unix_seconds, ClockHandle};
use crate::db::{Credentials, Db, DbError};
use crate::password::Busy;
use crate::source::{CredentialLookup, Source, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Db(#[from] DbError),
    /// The mapped credentials query does not fit its contract.
    #[error(transparent)]
    Source(crate::source::QueryProblem),
    /// The request's deadline came before the attempt was checked.
    #[error("the password check did not finish in time")]
    TimedOut,
    /// The attempt was checked but its audit row could not be written: it must
    /// be answered 503, whatever its outcome.
    #[error(transparent)]
    Unrecorded(Unrecorded),
}

impl From<SourceError> for AuthError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Db(db) => Self::Db(db),
            SourceError::Query(q) => Self::Source(q),
        }
    }
}

/// Which door a login attempt came through, kept in the audit trail's `channel`
/// column. Both doors share the same check, floor, lockout and audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginChannel {
    /// OMFLOW's `/authenticate`.
    Omflow,
    /// The web console's sign-in.
    Console,
}

impl LoginChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Omflow => "omflow",
            Self::Console => "console",
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

/// Time kept between the commit of an attempt's audit row and the request's
/// deadline, so that an answer whose row is written reaches the client before the
/// deadline cuts the request off (and a success is never audited for a request
/// that was answered 503 instead).
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// Checks employee passwords.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// hr-bridge's own state: lockouts and the audit trail.
    db: Db,
    audit: AuditTrail,
    /// `/authenticate` requests between arrival and answer.
    in_progress: Arc<AtomicUsize>,
    /// Where the stored hashes come from.
    source: Source,
    pool: HashingPool,
    dummy: DummyHash,
    policy: AuthPolicy,
    /// Told when an attempt locks an existing account.
    notifier: crate::notify::Notifier,
    /// What lockouts are set and expired by.
    clock: ClockHandle,
}

/// Seconds since the Unix epoch, by the system clock.
pub fn unix_now() -> i64 {
    unix_seconds(SystemTime::now())
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

/// Counts one request in [`Authenticator::in_progress`] until dropped.
struct InProgress(Arc<AtomicUsize>);

impl InProgress {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What [`Authenticator::check`] found, to be recorded before it is answered.
struct Checked {
    outcome: AuthOutcome,
    /// Unix seconds: this failed attempt locked an existing account until then.
    locked_until: Option<i64>,
    /// After a success: the hash upgrade to start once the success is recorded.
    rehash: Option<Rehash>,
}

/// A stored hash to replace by a fresh Argon2id one.
struct Rehash {
    username: String,
    old: String,
    password: SecretString,
    format: &'static str,
}

/// `work` if it ends before `by` (when there is one), else `None`.
async fn within<F: std::future::Future>(by: Option<Instant>, work: F) -> Option<F::Output> {
    match by {
        Some(by) => tokio::time::timeout_at(by, work).await.ok(),
        None => Some(work.await),
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
        clock: ClockHandle,
    ) -> Self {
        Self {
            audit: AuditTrail::new(db.clone()),
            in_progress: Arc::default(),
            db,
            source,
            pool,
            dummy,
            policy,
            notifier: crate::notify::Notifier::disabled(),
            clock,
        }
    }

    /// The same authenticator, telling `notifier` when an attempt locks an
    /// account that exists (an unknown name being locked tells nobody anything).
    pub fn with_notifier(mut self, notifier: crate::notify::Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// `/authenticate` requests being checked, held or recorded right now. A
    /// failure counts until its answer (the failure floor included), so this
    /// figure, unlike the hashing pool's, shows nothing of how long the hash took.
    pub fn in_progress(&self) -> usize {
        self.in_progress.load(Ordering::Relaxed)
    }

    /// Checks one login attempt from `client` and records it in the audit trail
    /// before answering. A failure is answered no sooner than the failure floor
    /// after the attempt began. An attempt whose audit row cannot be written (by
    /// `deadline`, less a margin to answer in) is [`AuthError::Unrecorded`] or
    /// [`AuthError::TimedOut`], never an outcome.
    pub async fn authenticate(
        &self,
        username: &str,
        password: SecretString,
        client: Option<IpAddr>,
        deadline: Option<Instant>,
    ) -> Result<AuthOutcome, AuthError> {
        self.authenticate_via(LoginChannel::Omflow, username, password, client, deadline)
            .await
    }

    /// [`Self::authenticate`] for an attempt that came through `channel` (the
    /// console's sign-in): the same check, floor, lockout and audit trail, the
    /// audit row naming the channel.
    #[tracing::instrument(skip(self, password, client, deadline), fields(outcome))]
    pub async fn authenticate_via(
        &self,
        channel: LoginChannel,
        username: &str,
        password: SecretString,
        client: Option<IpAddr>,
        deadline: Option<Instant>,
    ) -> Result<AuthOutcome, AuthError> {
        let _in_progress = InProgress::enter(&self.in_progress);
        let began = Instant::now();
        let record = AuditRecord {
            occurred_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            username: clip(username).into_owned(),
            client_addr: client.map(|ip| ip.to_string()),
            channel: channel.as_str(),
        };
        let write_by = deadline.map(|at| at.checked_sub(ANSWER_MARGIN).unwrap_or(at));
        let mut counted_as = None;
        let checked = within(write_by, self.check(username, password, &mut counted_as))
            .await
            .unwrap_or(Err(AuthError::TimedOut));
        let checked = match checked {
            Ok(checked) => checked,
            Err(e) => {
                // Answered 503 without a verdict: if the attempt was counted
                // already, it must not count against the account.
                if let Some(counted_as) = &counted_as {
                    self.audit
                        .forget_attempt(counted_as, self.policy.max_failures)
                        .await;
                }
                if matches!(e, AuthError::Busy(_)) {
                    Self::count("busy");
                    self.audit.busy(record);
                }
                return Err(e);
            }
        };
        let outcome = checked.outcome;
        let floor = began + self.policy.failure_floor;
        let hold_until = |at: Instant| write_by.map_or(at, |by| at.min(by));
        if outcome != AuthOutcome::Success {
            tokio::time::sleep_until(hold_until(floor)).await;
        }
        let writing = Instant::now();
        let clear = match outcome {
            AuthOutcome::Success => counted_as.as_deref(),
            AuthOutcome::Failure(_) => None,
        };
        if let Err(unrecorded) = self.audit.record(&record, outcome, clear, write_by).await {
            tracing::error!(
                error = %unrecorded,
                occurred_at = %record.occurred_at,
                username = %crate::escape::escape(&record.username),
                reason = outcome.reason(),
                client_addr = record.client_addr.as_deref().unwrap_or("-"),
                "could not write the audit row; the attempt was answered 503"
            );
            if let Some(counted_as) = &counted_as {
                self.audit
                    .forget_attempt(counted_as, self.policy.max_failures)
                    .await;
            }
            // A success's row was written straight after the hash, a failure's
            // after the floor: release both when a failure would have come back,
            // so that this 503 does not tell them apart.
            tokio::time::sleep_until(hold_until(floor + writing.elapsed())).await;
            metrics::counter!("hr_bridge_auth_unrecorded_total").increment(1);
            return Err(AuthError::Unrecorded(unrecorded));
        }
        if deadline.is_some_and(|at| Instant::now() >= at) {
            tracing::warn!(
                username = %crate::escape::escape(&record.username),
                reason = outcome.reason(),
                "the attempt was recorded, but its answer missed the request deadline: \
                 the client was answered 503"
            );
        }
        Self::count(match outcome {
            AuthOutcome::Success => "success",
            AuthOutcome::Failure(_) => "failure",
        });
        if let Some(rehash) = checked.rehash {
            self.spawn_rehash(rehash);
        }
        if let Some(until) = checked.locked_until {
            let until =
                SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(until).unwrap_or(0));
            self.notifier.notify(crate::notify::Event::AccountLocked {
                username: username.to_owned(),
                until,
            });
        }
        tracing::Span::current().record("outcome", outcome.reason());
        Ok(outcome)
    }

    /// Counts and checks the attempt; records nothing. `counted_as` is set to the
    /// lockout key as soon as the attempt is counted, so that a caller who gives
    /// up on the check can take the count back.
    async fn check(
        &self,
        username: &str,
        password: SecretString,
        counted_as: &mut Option<String>,
    ) -> Result<Checked, AuthError> {
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
                username = %crate::escape::escape(&clip(username)),
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
        let mut locks_until = None;
        // Count the attempt before checking it. Unknown names are counted too, so
        // that a lockout's fast answer cannot tell an existing account apart.
        if self.policy.max_failures > 0 && plausible {
            let now = self.clock.unix_seconds();
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
            *counted_as = Some(username.to_owned());
            // The attempt that reaches the limit locks the account, unless it
            // succeeds (a success clears the run).
            if attempt == i64::from(self.policy.max_failures) && credentials.is_some() {
                locks_until = Some(lock_until);
            }
            if attempt > i64::from(self.policy.max_failures) {
                drop(admission);
                return Ok(Checked {
                    outcome: AuthOutcome::Failure(FailureReason::Locked),
                    locked_until: None,
                    rehash: None,
                });
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
        let mut rehash = None;
        if outcome == AuthOutcome::Success {
            if let (Some(hash), Some(old)) = (stored, credentials.and_then(|c| c.password_hash)) {
                if hash.needs_rehash(&self.policy.argon2, &password)
                    && self.source.queries().update_password.is_some()
                {
                    rehash = Some(Rehash {
                        username: username.to_owned(),
                        old,
                        password,
                        format: hash.format(),
                    });
                }
            }
        }
        let locked_until = locks_until.filter(|_| outcome != AuthOutcome::Success);
        Ok(Checked {
            outcome,
            locked_until,
            rehash,
        })
    }

    /// `/metrics` counts answers by outcome only (`success`, `failure`, `busy`):
    /// it needs no credentials, so it must not tell an unknown user from a wrong
    /// password or a leaver's right one. The audit trail keeps the reason.
    fn count(outcome: &'static str) {
        metrics::counter!("hr_bridge_auth_attempts_total", "outcome" => outcome).increment(1);
    }

    /// Replaces an old-format or weak hash by a fresh Argon2id one in the
    /// background, as a compare-and-set on the old value. Any failure is logged and
    /// retried at the next login; it never affects this one.
    fn spawn_rehash(&self, rehash: Rehash) {
        let Rehash {
            username,
            old,
            password,
            format,
        } = rehash;
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
                    tracing::info!(username = %crate::escape::escape(&username), from = format, "upgraded password hash to argon2id")
                }
                Ok(false) => {
                    tracing::info!(username = %crate::escape::escape(&username), "hash changed meanwhile; rehash skipped")
                }
                Err(e) => {
                    tracing::warn!(username = %crate::escape::escape(&username), error = %e, "could not store the upgraded hash")
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
    let retention = Duration::from_secs(u64::from(retention_days).saturating_mul(86_400));
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
