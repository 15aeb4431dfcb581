//! OMFLOW's own Basic Auth credential. OMFLOW sends one fixed machine secret, so a
//! keyed fast hash (HMAC-SHA256 under a random per-process key) compared in
//! constant time is enough to check it. A configured Argon2 hash is verified only
//! until the right password has been seen once, on its own small budget (never the
//! employee checks' pool), after which the password's HMAC is checked instead.
//! Failures are throttled per client address, so wrong Basic Auth can neither
//! starve `/authenticate` nor burn CPU without bound.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::refusals::RefusalLog;
use super::throttle::FailureThrottle;
use super::{caps, HashingPool, PasswordError, StoredHash};

/// OMFLOW's Basic Auth password hash from the configuration (Argon2 PHC only,
/// within the caps).
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

/// What a Basic Auth attempt gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Wrong credentials: 401.
    Rejected,
    /// Too many failures from this client, or too many unproven checks at once:
    /// 429, to retry after this long.
    Throttled(Duration),
}

/// The credential OMFLOW must present.
#[derive(Debug)]
pub struct OmflowCredential {
    key: [u8; 32],
    username_mac: [u8; 32],
    /// HMAC of the password: from the plain configured password, or learned from
    /// the first attempt that matched the configured Argon2 hash.
    password_mac: RwLock<Option<[u8; 32]>>,
    hash: Option<OmflowHash>,
    argon2: HashingPool,
    throttle: Arc<FailureThrottle>,
    refusals: RefusalLog,
}

impl OmflowCredential {
    /// From the configured hash (preferred) or plain password.
    pub fn new(
        username: &str,
        password_hash: Option<&SecretString>,
        password: Option<&SecretString>,
    ) -> Result<Self, PasswordError> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let (hash, password_mac) = match (password_hash, password) {
            (Some(hash), _) => (Some(OmflowHash::parse(hash.expose_secret())?), None),
            (None, Some(plain)) => (None, Some(mac(&key, plain.expose_secret().as_bytes()))),
            (None, None) => return Err(PasswordError::Unrecognised),
        };
        Ok(Self {
            username_mac: mac(&key, username.as_bytes()),
            key,
            password_mac: RwLock::new(password_mac),
            hash,
            argon2: HashingPool::new(caps::OMFLOW_ARGON2_CONCURRENT, caps::OMFLOW_ARGON2_QUEUED),
            throttle: Arc::new(FailureThrottle::default()),
            refusals: RefusalLog::default(),
        })
    }

    /// Checks an attempt from `client`. Right credentials are accepted even from a
    /// throttled address (only failures are throttled).
    pub async fn check(&self, client: IpAddr, username: &str, password: SecretString) -> Verdict {
        let user_ok = mac(&self.key, username.as_bytes()).ct_eq(&self.username_mac);
        let attempt = mac(&self.key, password.expose_secret().as_bytes());
        let known = self.password_mac.read().ok().and_then(|known| *known);
        if let Some(expected) = known {
            return if bool::from(user_ok & attempt.ct_eq(&expected)) {
                Verdict::Accepted
            } else {
                self.failed(client)
            };
        }
        let Some(OmflowHash(hash)) = self.hash.clone() else {
            return Verdict::Rejected;
        };
        if let Some(retry) = self.throttle.blocked(client) {
            return Verdict::Throttled(retry);
        }
        match self.argon2.run(move || hash.verify(&password)).await {
            Err(_busy) => Verdict::Throttled(Duration::from_secs(1)),
            Ok(true) if bool::from(user_ok) => {
                if let Ok(mut known) = self.password_mac.write() {
                    *known = Some(attempt);
                }
                Verdict::Accepted
            }
            Ok(_) => self.failed(client),
        }
    }

    /// Notes a 429 answered to `client`: counted each time, logged once per
    /// address per minute.
    pub fn refused(&self, client: IpAddr, why: &'static str) {
        self.refusals.refused(client, why);
    }

    fn failed(&self, client: IpAddr) -> Verdict {
        match self.throttle.record_failure(client) {
            Some(retry) => Verdict::Throttled(retry),
            None => Verdict::Rejected,
        }
    }
}

fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}
