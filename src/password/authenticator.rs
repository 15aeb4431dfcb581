//! The employee password check behind `/authenticate`: look the employee up, verify
//! the stored hash on the hashing pool, and tell success from the (private) reason
//! of a failure. Unknown users, wrong passwords and inactive employees all cost one
//! full hash, so the answer time does not reveal which it was.

use secrecy::{ExposeSecret, SecretString};

use super::{DummyHash, HashingPool, StoredHash, MAX_PASSWORD_BYTES};
use crate::db::{Db, DbError};
use crate::password::Busy;

/// Longest username looked up; longer ones cannot exist in any backend's schema.
const MAX_USERNAME_BYTES: usize = 255;

/// Why a check failed. Never shown to the caller, who gets one message for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    UnknownUser,
    BadPassword,
    Inactive,
    /// The stored hash is NULL, empty or of no recognised format.
    NoHash,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::BadPassword => "bad_password",
            Self::Inactive => "inactive",
            Self::NoHash => "no_hash",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Success,
    Failure(FailureReason),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Checks employee passwords.
#[derive(Debug, Clone)]
pub struct Authenticator {
    db: Db,
    pool: HashingPool,
    dummy: DummyHash,
}

impl Authenticator {
    pub fn new(db: Db, pool: HashingPool, dummy: DummyHash) -> Self {
        Self { db, pool, dummy }
    }

    #[tracing::instrument(skip(self, password), fields(outcome))]
    pub async fn authenticate(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<AuthOutcome, AuthError> {
        // Turn a storm away before it costs a database lookup.
        let admission = self.pool.admit()?;
        if password.expose_secret().len() > MAX_PASSWORD_BYTES {
            return Ok(AuthOutcome::Failure(FailureReason::BadPassword));
        }
        let credentials = if username.is_empty() || username.len() > MAX_USERNAME_BYTES {
            None
        } else {
            self.db.credentials(username).await?
        };
        let outcome = match credentials {
            None => {
                let dummy = self.dummy.clone();
                admission.run(move || dummy.burn(&password)).await?;
                AuthOutcome::Failure(FailureReason::UnknownUser)
            }
            Some(credentials) => {
                let stored = credentials
                    .password_hash
                    .as_deref()
                    .and_then(|h| StoredHash::parse(h).ok());
                match stored {
                    None => {
                        let dummy = self.dummy.clone();
                        admission.run(move || dummy.burn(&password)).await?;
                        AuthOutcome::Failure(FailureReason::NoHash)
                    }
                    Some(stored) => {
                        let matches = admission.run(move || stored.verify(&password)).await?;
                        match (matches, credentials.active) {
                            (false, _) => AuthOutcome::Failure(FailureReason::BadPassword),
                            (true, false) => AuthOutcome::Failure(FailureReason::Inactive),
                            (true, true) => AuthOutcome::Success,
                        }
                    }
                }
            }
        };
        let label = match outcome {
            AuthOutcome::Success => "success",
            AuthOutcome::Failure(reason) => reason.as_str(),
        };
        tracing::Span::current().record("outcome", label);
        Ok(outcome)
    }
}
