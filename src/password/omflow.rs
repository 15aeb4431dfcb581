//! OMFLOW's own Basic Auth credential. OMFLOW sends one fixed machine secret, so a
//! keyed fast hash (HMAC-SHA256 under a random per-process key) compared in
//! constant time is enough to check it. A configured Argon2 hash is verified only
//! until the right password has been seen once, on its own small budget (never the
//! employee checks' pool), after which the password's HMAC is checked instead.
//! Failures are throttled per client address, so wrong Basic Auth can neither
//! starve `/authenticate` nor burn CPU without bound.
//!
//! Until the password is proven, a flood of wrong credentials must not keep
//! OMFLOW's own first call out of the small Argon2 budget: each client address
//! may hold [`caps::OMFLOW_ARGON2_PER_CLIENT`] checks in it (more are answered
//! 429 at once), and a credential that just failed is remembered (as a keyed
//! hash, in a bounded table, for [`caps::OMFLOW_FAILED_TTL`]) so that repeating
//! it costs no hash. Every rejection is answered no sooner than the failure
//! floor, so timing tells neither whether the hash ran nor whether the
//! password is proven yet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::refusals::RefusalLog;
use super::throttle::{client_key, FailureThrottle};
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
    /// Attempts answered 429 and 401, logged per address per minute.
    throttled: RefusalLog,
    rejected: RefusalLog,
    /// Argon2 checks admitted (running or waiting) per client address.
    checking: Arc<Mutex<HashMap<u128, usize>>>,
    /// Keyed hashes of credentials that failed their Argon2 check, until when
    /// they are remembered.
    failed: Mutex<HashMap<[u8; 32], Instant>>,
    /// Credentials being hashed right now, each with the signal its waiters
    /// wake on, so that one credential sent many times at once is hashed once.
    hashing: Mutex<HashMap<[u8; 32], tokio::sync::watch::Sender<bool>>>,
    /// Least answer time of a rejection (`auth.failure_floor_ms`).
    floor: Duration,
}

/// The check hashing one credential; its end (however it ends) wakes the
/// checks waiting for the same credential.
struct Leading<'a> {
    credential: [u8; 32],
    owner: &'a OmflowCredential,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if let Ok(mut hashing) = self.owner.hashing.lock() {
            if let Some(done) = hashing.remove(&self.credential) {
                done.send_replace(true);
            }
        }
    }
}

/// One Argon2 check of a client address; given back when it ends.
struct Checking {
    key: u128,
    checking: Arc<Mutex<HashMap<u128, usize>>>,
}

impl Drop for Checking {
    fn drop(&mut self) {
        if let Ok(mut checking) = self.checking.lock() {
            if let Some(count) = checking.get_mut(&self.key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    checking.remove(&self.key);
                }
            }
        }
    }
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
            throttled: RefusalLog::of("too many failures, answered 429"),
            rejected: RefusalLog::of("wrong credentials, answered 401"),
            checking: Arc::new(Mutex::new(HashMap::new())),
            failed: Mutex::new(HashMap::new()),
            hashing: Mutex::new(HashMap::new()),
            floor: Duration::ZERO,
        })
    }

    /// Rejections are answered no sooner than `floor` after the check began.
    pub fn with_failure_floor(mut self, floor: Duration) -> Self {
        self.floor = floor;
        self
    }

    /// Checks an attempt from `client`. Right credentials are accepted even from a
    /// throttled address (only failures are throttled).
    pub async fn check(&self, client: IpAddr, username: &str, password: SecretString) -> Verdict {
        let began = tokio::time::Instant::now();
        let verdict = self.verify(client, username, password).await;
        if verdict == Verdict::Rejected {
            tokio::time::sleep_until(began + self.floor).await;
        }
        verdict
    }

    async fn verify(&self, client: IpAddr, username: &str, password: SecretString) -> Verdict {
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
        let credential = self.credential_mac(username, &password);
        let mut followed = false;
        let _leading = loop {
            if self.failed_recently(&credential) {
                return self.failed(client);
            }
            if let Some(expected) = self.password_mac.read().ok().and_then(|known| *known) {
                // Proven meanwhile by a check this one waited for.
                return if bool::from(user_ok & attempt.ct_eq(&expected)) {
                    Verdict::Accepted
                } else {
                    self.failed(client)
                };
            }
            // The same credential already being hashed: wait for its result
            // instead of hashing it again (once; then hash it ourselves).
            match self.lead_or_follow(credential) {
                Ok(leading) => break leading,
                Err(mut done) if !followed => {
                    followed = true;
                    let _ = done.wait_for(|done| *done).await;
                }
                Err(_) => break None,
            }
        };
        let Some(_checking) = self.start_checking(client) else {
            return Verdict::Throttled(Duration::from_secs(1));
        };
        match self.argon2.run(move || hash.verify(&password)).await {
            Err(_busy) => Verdict::Throttled(Duration::from_secs(1)),
            Ok(true) if bool::from(user_ok) => {
                if let Ok(mut known) = self.password_mac.write() {
                    *known = Some(attempt);
                }
                Verdict::Accepted
            }
            Ok(_) => {
                self.remember_failure(credential);
                self.failed(client)
            }
        }
    }

    /// Marks `credential` as being hashed by this check (`Ok`, with a guard that
    /// ends the mark), or hands back the signal of the check already hashing it.
    fn lead_or_follow(
        &self,
        credential: [u8; 32],
    ) -> Result<Option<Leading<'_>>, tokio::sync::watch::Receiver<bool>> {
        let Ok(mut hashing) = self.hashing.lock() else {
            return Ok(None);
        };
        if let Some(done) = hashing.get(&credential) {
            return Err(done.subscribe());
        }
        hashing.insert(credential, tokio::sync::watch::Sender::new(false));
        Ok(Some(Leading {
            credential,
            owner: self,
        }))
    }

    /// The keyed hash of a whole credential (user and password), as the table
    /// of failed ones keeps it: the password itself is never kept.
    fn credential_mac(&self, username: &str, password: &SecretString) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"failed credential");
        mac.update(&(username.len() as u64).to_be_bytes());
        mac.update(username.as_bytes());
        mac.update(password.expose_secret().as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn failed_recently(&self, credential: &[u8; 32]) -> bool {
        let now = Instant::now();
        self.failed
            .lock()
            .ok()
            .and_then(|failed| failed.get(credential).map(|until| *until > now))
            .unwrap_or(false)
    }

    /// Remembers a failed credential; a full table drops its expired entries,
    /// then the one closest to expiry.
    fn remember_failure(&self, credential: [u8; 32]) {
        let Ok(mut failed) = self.failed.lock() else {
            return;
        };
        let now = Instant::now();
        if failed.len() >= caps::OMFLOW_FAILED_REMEMBERED && !failed.contains_key(&credential) {
            failed.retain(|_, until| *until > now);
            if failed.len() >= caps::OMFLOW_FAILED_REMEMBERED {
                let oldest = failed
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    failed.remove(&oldest);
                }
            }
        }
        failed.insert(credential, now + caps::OMFLOW_FAILED_TTL);
    }

    /// A place for one more Argon2 check of `client`, or `None` when it holds
    /// its share already.
    fn start_checking(&self, client: IpAddr) -> Option<Checking> {
        let key = client_key(client);
        let mut checking = self.checking.lock().ok()?;
        let count = checking.entry(key).or_insert(0);
        if *count >= caps::OMFLOW_ARGON2_PER_CLIENT {
            return None;
        }
        *count += 1;
        Some(Checking {
            key,
            checking: self.checking.clone(),
        })
    }

    /// Notes a 429 (`Verdict::Throttled`) answered to `client`: counted each
    /// time, logged once per address per minute.
    pub fn throttled(&self, client: IpAddr, why: &'static str) {
        self.throttled.refused(client, why);
    }

    /// Notes a 401 (`Verdict::Rejected`) answered to `client`, as
    /// [`OmflowCredential::throttled`].
    pub fn rejected(&self, client: IpAddr) {
        self.rejected.refused(client, "wrong_credentials");
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
