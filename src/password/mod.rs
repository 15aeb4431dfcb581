//! Password hashes: recognising stored formats, verifying, and making new Argon2id
//! hashes. Everything here is CPU-bound and synchronous; callers run it on the
//! bounded [`HashingPool`] so that the async workers never hash.

mod authenticator;
mod omflow;
mod pool;

pub use authenticator::{AuthError, AuthOutcome, Authenticator, FailureReason};
pub use omflow::{OmflowCredential, OmflowHash};
pub use pool::{Busy, HashingPool};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};

/// Longest password accepted for hashing; longer ones never match, and hashing them
/// would let a caller make the server do unbounded work.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The Argon2id parameters new hashes are made with (OWASP's recommendation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self {
            m_cost_kib: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl Argon2Settings {
    fn hasher(&self) -> Result<Argon2<'static>, argon2::Error> {
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Errors of this module; none of them ever carries password text.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("not a recognised password hash")]
    Unrecognised,
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// A stored password hash, parsed once so that verification knows its format.
#[derive(Debug, Clone)]
pub enum StoredHash {
    /// An Argon2 (id, i or d) PHC string.
    Argon2(String),
}

impl StoredHash {
    /// Recognises a stored hash; NULL, empty and unknown strings are `Unrecognised`.
    pub fn parse(stored: &str) -> Result<Self, PasswordError> {
        let phc = PasswordHash::new(stored).map_err(|_| PasswordError::Unrecognised)?;
        match Algorithm::try_from(phc.algorithm) {
            Ok(_) => Ok(Self::Argon2(stored.to_owned())),
            Err(_) => Err(PasswordError::Unrecognised),
        }
    }

    /// True when the password matches. Runs the full hash; call it off the runtime.
    pub fn verify(&self, password: &SecretString) -> bool {
        let password = password.expose_secret().as_bytes();
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        match self {
            Self::Argon2(phc) => match PasswordHash::new(phc) {
                Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
                Err(_) => false,
            },
        }
    }
}

/// Hashes `password` as a fresh Argon2id PHC string with a random salt.
pub fn hash_argon2id(
    password: &SecretString,
    settings: &Argon2Settings,
) -> Result<String, PasswordError> {
    let password = password.expose_secret().as_bytes();
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let hasher = settings
        .hasher()
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    let salt = SaltString::generate(&mut OsRng);
    hasher
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// A hash of a random password, verified in place of a real one when the user is
/// unknown or has no usable hash, so that such attempts cost the same time as a
/// wrong password.
#[derive(Debug, Clone)]
pub struct DummyHash(StoredHash);

impl DummyHash {
    pub fn new(settings: &Argon2Settings) -> Result<Self, PasswordError> {
        let random = SecretString::from(SaltString::generate(&mut OsRng).as_str().to_owned());
        let phc = hash_argon2id(&random, settings)?;
        Ok(Self(StoredHash::parse(&phc)?))
    }

    /// Burns the time of a real check; never matches.
    pub fn burn(&self, password: &SecretString) {
        let _ = self.0.verify(password);
    }
}
