//! OMFLOW's own Basic Auth credential. The configured Argon2 hash is verified once
//! per distinct header and the SHA-256 of an accepted header is remembered, so that
//! `/sync` does not pay an Argon2 check on every call; comparisons are constant-time.

use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{HashingPool, PasswordError, StoredHash};
use crate::password::Busy;

/// Distinct accepted headers remembered; a real deployment has one or two.
const MAX_REMEMBERED: usize = 8;

/// OMFLOW's Basic Auth password hash from the configuration (Argon2 PHC only).
#[derive(Debug, Clone)]
pub struct OmflowHash(StoredHash);

impl OmflowHash {
    pub fn parse(phc: &str) -> Result<Self, PasswordError> {
        match StoredHash::parse(phc)? {
            hash @ StoredHash::Argon2 { .. } => Ok(Self(hash)),
            _ => Err(PasswordError::Unrecognised),
        }
    }
}

#[derive(Debug, Clone)]
enum Secret {
    Hash(OmflowHash),
    /// SHA-256 of the plain password, so both sides of the comparison have one length.
    Plain([u8; 32]),
}

/// The credential OMFLOW must present.
#[derive(Debug, Clone)]
pub struct OmflowCredential {
    username_digest: [u8; 32],
    secret: Secret,
    accepted: Arc<RwLock<Vec<[u8; 32]>>>,
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

impl OmflowCredential {
    /// From the configured hash (preferred) or plain password.
    pub fn new(
        username: &str,
        password_hash: Option<&SecretString>,
        password: Option<&SecretString>,
    ) -> Result<Self, PasswordError> {
        let secret = match (password_hash, password) {
            (Some(hash), _) => Secret::Hash(OmflowHash::parse(hash.expose_secret())?),
            (None, Some(plain)) => Secret::Plain(digest(&[plain.expose_secret().as_bytes()])),
            (None, None) => return Err(PasswordError::Unrecognised),
        };
        Ok(Self {
            username_digest: digest(&[username.as_bytes()]),
            secret,
            accepted: Arc::new(RwLock::new(Vec::new())),
        })
    }

    /// True when `username`/`password` are OMFLOW's. Only a first sight of an
    /// accepted header, or a wrong password, costs a (pooled) Argon2 check.
    pub async fn check(
        &self,
        pool: &HashingPool,
        username: &str,
        password: SecretString,
    ) -> Result<bool, Busy> {
        let header_digest = digest(&[username.as_bytes(), password.expose_secret().as_bytes()]);
        if self.remembered(&header_digest) {
            return Ok(true);
        }
        let user_ok: bool = digest(&[username.as_bytes()])
            .ct_eq(&self.username_digest)
            .into();
        let password_ok = match &self.secret {
            Secret::Plain(expected) => {
                bool::from(digest(&[password.expose_secret().as_bytes()]).ct_eq(expected))
            }
            Secret::Hash(OmflowHash(hash)) => {
                let hash = hash.clone();
                pool.run(move || hash.verify(&password)).await?
            }
        };
        let ok = user_ok && password_ok;
        if ok {
            self.remember(header_digest);
        }
        Ok(ok)
    }

    fn remembered(&self, header_digest: &[u8; 32]) -> bool {
        let Ok(accepted) = self.accepted.read() else {
            return false;
        };
        // Check every entry so that the time does not depend on which one matches.
        accepted
            .iter()
            .fold(subtle::Choice::from(0), |found, known| {
                found | known.ct_eq(header_digest)
            })
            .into()
    }

    fn remember(&self, header_digest: [u8; 32]) {
        if let Ok(mut accepted) = self.accepted.write() {
            if !accepted.contains(&header_digest) {
                if accepted.len() >= MAX_REMEMBERED {
                    accepted.remove(0);
                }
                accepted.push(header_digest);
            }
        }
    }
}
