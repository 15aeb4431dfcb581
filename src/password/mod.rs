//! Password hashes: recognising stored formats, verifying, and making new Argon2id
//! hashes. Everything here is CPU-bound and synchronous; callers run it on the
//! bounded [`HashingPool`] so that the async workers never hash.

mod audit;
mod authenticator;
pub mod caps;
mod omflow;
mod outcome;
mod pool;
mod refusals;
mod throttle;

pub use audit::MAX_WAITING_BUSY_ROWS;
pub use authenticator::{
    costly_hashes, prune_auth_state, unix_now, AuthError, AuthPolicy, Authenticator, LoginChannel,
};
pub use omflow::{OmflowCredential, OmflowHash, Verdict};
pub use outcome::{AuthOutcome, FailureReason};
pub use pool::{Busy, HashingPool};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

pub use caps::MAX_PASSWORD_BYTES;

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
    /// Checks that Argon2 accepts these parameters.
    pub fn validate(&self) -> Result<(), String> {
        self.hasher().map(|_| ()).map_err(|e| e.to_string())
    }

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
    /// A recognised format whose cost is beyond the caps of [`caps`]: never run.
    #[error("the password hash asks for more work than the caps allow")]
    TooCostly,
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// A stored password hash, parsed once so that verification knows its format.
/// Parsing enforces the caps of [`caps`], so a parsed hash is always cheap enough
/// to run.
#[derive(Debug, Clone)]
pub enum StoredHash {
    /// An Argon2 (id, i or d) PHC string.
    Argon2 {
        phc: String,
        algorithm: Algorithm,
        version: u32,
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
    },
    /// bcrypt: `$2a$`, `$2b$` or `$2y$`.
    Bcrypt(String),
    /// PBKDF2-SHA256 as a PHC string: `$pbkdf2-sha256$i=…,l=…$salt$hash`.
    Pbkdf2Phc(String),
    /// PBKDF2-HMAC in a non-PHC layout: Django's
    /// `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` or passlib's
    /// `$pbkdf2-sha256$` / `$pbkdf2-sha512$<rounds>$<ab64 salt>$<ab64 hash>`
    /// (the latter is Odoo's format).
    Pbkdf2 {
        style: Pbkdf2Style,
        digest: Pbkdf2Digest,
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

/// Which framework wrote a non-PHC PBKDF2 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbkdf2Style {
    Django,
    Passlib,
}

/// The HMAC digest of a PBKDF2 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbkdf2Digest {
    Sha256,
    Sha512,
}

impl Pbkdf2Digest {
    fn output_bytes(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    fn max_iterations(self) -> u32 {
        match self {
            Self::Sha256 => caps::MAX_PBKDF2_SHA256_ITERATIONS,
            Self::Sha512 => caps::MAX_PBKDF2_SHA512_ITERATIONS,
        }
    }

    /// Checks the work a PBKDF2 hash asks for: each output block beyond the
    /// first costs another full run of iterations.
    fn check_cost(self, iterations: u32, output_len: usize) -> Result<(), PasswordError> {
        if iterations == 0 || output_len == 0 {
            return Err(PasswordError::Unrecognised);
        }
        let blocks = output_len.div_ceil(self.output_bytes()) as u64;
        if output_len > caps::MAX_PBKDF2_OUTPUT
            || u64::from(iterations) * blocks > u64::from(self.max_iterations())
        {
            return Err(PasswordError::TooCostly);
        }
        Ok(())
    }
}

/// Decodes passlib's "adapted base64": `.` for `+`, no padding.
fn decode_ab64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    STANDARD_NO_PAD
        .decode(text.replace('.', "+").trim_end_matches('='))
        .ok()
}

/// A decimal iteration count; numbers too large for `u32` are beyond every cap.
fn pbkdf2_iterations(text: &str) -> Result<u32, PasswordError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PasswordError::Unrecognised);
    }
    text.parse::<u32>().map_err(|_| PasswordError::TooCostly)
}

/// Parses passlib's `<rounds>$<ab64 salt>$<ab64 hash>` (after the `$pbkdf2-…$`).
fn parse_passlib(rest: &str, digest: Pbkdf2Digest) -> Option<Result<StoredHash, PasswordError>> {
    let parts: Vec<&str> = rest.split('$').collect();
    let [rounds, salt, hash] = parts[..] else {
        return None;
    };
    if rounds.is_empty() || !rounds.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((|| {
        let (Some(salt), Some(hash)) = (decode_ab64(salt), decode_ab64(hash)) else {
            return Err(PasswordError::Unrecognised);
        };
        if salt.is_empty() {
            return Err(PasswordError::Unrecognised);
        }
        let iterations = pbkdf2_iterations(rounds)?;
        digest.check_cost(iterations, hash.len())?;
        Ok(StoredHash::Pbkdf2 {
            style: Pbkdf2Style::Passlib,
            digest,
            iterations,
            salt,
            hash,
        })
    })())
}

/// The cost of a bcrypt string `$2x$NN$…`, checked against the cap.
fn bcrypt_cost(stored: &str) -> Result<u32, PasswordError> {
    let cost = stored
        .get(4..6)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()) && stored.get(6..7) == Some("$"))
        .and_then(|c| c.parse::<u32>().ok())
        .ok_or(PasswordError::Unrecognised)?;
    match cost {
        4..=caps::MAX_BCRYPT_COST => Ok(cost),
        c if c < 4 => Err(PasswordError::Unrecognised),
        _ => Err(PasswordError::TooCostly),
    }
}

impl StoredHash {
    /// Recognises a stored hash; NULL, empty and unknown strings are `Unrecognised`,
    /// known formats beyond the caps of [`caps`] are `TooCostly`.
    pub fn parse(stored: &str) -> Result<Self, PasswordError> {
        let stored = stored.trim();
        if stored.starts_with("$argon2") {
            let phc = PasswordHash::new(stored).map_err(|_| PasswordError::Unrecognised)?;
            let algorithm =
                Algorithm::try_from(phc.algorithm).map_err(|_| PasswordError::Unrecognised)?;
            let params = Params::try_from(&phc).map_err(|_| PasswordError::Unrecognised)?;
            phc.hash.ok_or(PasswordError::Unrecognised)?;
            if params.m_cost() > caps::MAX_ARGON2_M_COST_KIB
                || u64::from(params.m_cost()) * u64::from(params.t_cost())
                    > caps::MAX_ARGON2_WORK_KIB
                || params.p_cost() > caps::MAX_ARGON2_P_COST
            {
                return Err(PasswordError::TooCostly);
            }
            return Ok(Self::Argon2 {
                phc: stored.to_owned(),
                algorithm,
                version: phc.version.unwrap_or(0x10),
                m_cost_kib: params.m_cost(),
                t_cost: params.t_cost(),
                p_cost: params.p_cost(),
            });
        }
        if ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            if stored.len() != 60 {
                return Err(PasswordError::Unrecognised);
            }
            bcrypt_cost(stored)?;
            return Ok(Self::Bcrypt(stored.to_owned()));
        }
        if let Some(rest) = stored.strip_prefix("$pbkdf2-sha512$") {
            return parse_passlib(rest, Pbkdf2Digest::Sha512)
                .unwrap_or(Err(PasswordError::Unrecognised));
        }
        if let Some(rest) = stored.strip_prefix("$pbkdf2-sha256$") {
            if let Some(passlib) = parse_passlib(rest, Pbkdf2Digest::Sha256) {
                return passlib;
            }
            let phc = PasswordHash::new(stored).map_err(|_| PasswordError::Unrecognised)?;
            let Some(hash) = phc.hash else {
                return Err(PasswordError::Unrecognised);
            };
            let rounds = phc.params.get_decimal("i").unwrap_or(0);
            Pbkdf2Digest::Sha256.check_cost(rounds, hash.len())?;
            return Ok(Self::Pbkdf2Phc(stored.to_owned()));
        }
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
            let mut parts = rest.splitn(3, '$');
            let (Some(iterations), Some(salt), Some(hash)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(PasswordError::Unrecognised);
            };
            let hash = base64::engine::general_purpose::STANDARD
                .decode(hash)
                .map_err(|_| PasswordError::Unrecognised)?;
            if salt.is_empty() {
                return Err(PasswordError::Unrecognised);
            }
            let iterations = pbkdf2_iterations(iterations)?;
            Pbkdf2Digest::Sha256.check_cost(iterations, hash.len())?;
            return Ok(Self::Pbkdf2 {
                style: Pbkdf2Style::Django,
                digest: Pbkdf2Digest::Sha256,
                iterations,
                // Django uses the salt text itself as the PBKDF2 salt.
                salt: salt.as_bytes().to_vec(),
                hash,
            });
        }
        Err(PasswordError::Unrecognised)
    }

    /// True when the password matches. Runs the full hash; call it off the runtime.
    pub fn verify(&self, password: &SecretString) -> bool {
        let password = password.expose_secret().as_bytes();
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        match self {
            Self::Argon2 { phc, .. } => verify_argon2(phc, password),
            Self::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Self::Pbkdf2Phc(phc) => PasswordHash::new(phc)
                .is_ok_and(|parsed| pbkdf2::Pbkdf2.verify_password(password, &parsed).is_ok()),
            Self::Pbkdf2 {
                digest,
                iterations,
                salt,
                hash,
                ..
            } => verify_pbkdf2(*digest, password, salt, *iterations, hash),
        }
    }

    /// True when a successful login with `password` should replace this hash by a
    /// fresh Argon2id one: any other format, an old Argon2 version, or weaker
    /// parameters. Never for bcrypt and a password of 72 bytes or more: bcrypt
    /// ignored everything past byte 72, so such a password is only one of many that
    /// matched, and hashing it in full could lock the real owner out.
    pub fn needs_rehash(&self, target: &Argon2Settings, password: &SecretString) -> bool {
        match self {
            Self::Bcrypt(_) => password.expose_secret().len() < BCRYPT_SIGNIFICANT_BYTES,
            Self::Argon2 {
                algorithm,
                version,
                m_cost_kib,
                t_cost,
                p_cost,
                ..
            } => {
                *algorithm != Algorithm::Argon2id
                    || *version != 0x13
                    || *m_cost_kib < target.m_cost_kib
                    || *t_cost < target.t_cost
                    || *p_cost < target.p_cost
            }
            _ => true,
        }
    }

    /// The format's name, for logs.
    pub fn format(&self) -> &'static str {
        match self {
            Self::Argon2 { .. } => "argon2",
            Self::Bcrypt(_) => "bcrypt",
            Self::Pbkdf2Phc(_) => "pbkdf2-sha256",
            Self::Pbkdf2 {
                style: Pbkdf2Style::Django,
                ..
            } => "django-pbkdf2-sha256",
            Self::Pbkdf2 {
                style: Pbkdf2Style::Passlib,
                digest: Pbkdf2Digest::Sha256,
                ..
            } => "passlib-pbkdf2-sha256",
            Self::Pbkdf2 {
                style: Pbkdf2Style::Passlib,
                digest: Pbkdf2Digest::Sha512,
                ..
            } => "passlib-pbkdf2-sha512",
        }
    }
}

/// Verifies a raw PBKDF2 hash. (The generic `pbkdf2_hmac::<D>` is instantiated
/// in this crate, so unoptimised debug builds run it about ten times slower than
/// release builds; the caps are measured on release builds.)
fn verify_pbkdf2(
    digest: Pbkdf2Digest,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    expected: &[u8],
) -> bool {
    let mut computed = vec![0u8; expected.len()];
    match digest {
        Pbkdf2Digest::Sha256 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut computed)
        }
        Pbkdf2Digest::Sha512 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations, &mut computed)
        }
    }
    computed.ct_eq(expected).into()
}

/// bcrypt hashes only the first 72 bytes of a password.
const BCRYPT_SIGNIFICANT_BYTES: usize = 72;

/// Argon2's working memory, reused while checks keep coming: allocating and
/// faulting in 19 MiB per check costs about a fifth of the check itself. Kept in
/// one shared pool rather than per thread (tokio hands each check to whichever
/// blocking thread is idle, so per-thread buffers piled up one per thread that had
/// ever checked: 58 MB after four logins), at most one per core, and only while
/// checks are running: when the last running check ends, the pool is emptied, so
/// an idle server (and the next `/sync`) does not carry them.
static ARGON2_BUFFERS: std::sync::Mutex<Argon2Buffers> = std::sync::Mutex::new(Argon2Buffers {
    running: 0,
    free: Vec::new(),
});

struct Argon2Buffers {
    /// Checks holding a buffer now.
    running: usize,
    free: Vec<Vec<argon2::Block>>,
}

/// A working buffer from the pool, or a new empty one.
fn take_argon2_buffer() -> Vec<argon2::Block> {
    match ARGON2_BUFFERS.lock() {
        Ok(mut pool) => {
            pool.running += 1;
            pool.free.pop().unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

/// Returns a buffer after a check: kept for the next one while others run (at
/// most one per core, and only of the default size), freed with the whole pool
/// when this was the last check running.
fn give_back_argon2_buffer(memory: Vec<argon2::Block>) {
    let Ok(mut pool) = ARGON2_BUFFERS.lock() else {
        return;
    };
    pool.running = pool.running.saturating_sub(1);
    if pool.running == 0 {
        pool.free = Vec::new();
        return;
    }
    let kept = std::thread::available_parallelism().map_or(2, |n| n.get());
    if memory.len() <= 2 * Argon2Settings::default().m_cost_kib as usize && pool.free.len() < kept {
        pool.free.push(memory);
    }
}

/// Verifies an Argon2 PHC string, reusing pooled block memory.
fn verify_argon2(phc: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    // Parsing already refused these; checked again because a PHC string is
    // re-read here.
    if params.m_cost() > caps::MAX_ARGON2_M_COST_KIB
        || u64::from(params.m_cost()) * u64::from(params.t_cost()) > caps::MAX_ARGON2_WORK_KIB
    {
        return false;
    }
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut computed = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    let mut memory = take_argon2_buffer();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let hashed = hasher
        .hash_password_into_with_memory(password, salt, &mut computed, &mut memory[..blocks])
        .is_ok();
    give_back_argon2_buffer(memory);
    hashed && bool::from(computed.ct_eq(expected))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks running at once share pooled buffers, and none stays allocated
    /// once the last one ends.
    #[test]
    fn argon2_buffers_are_pooled_while_checks_run_and_freed_after() {
        let settings = Argon2Settings {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        };
        let password = SecretString::from("correct horse".to_owned());
        let phc = hash_argon2id(&password, &settings).unwrap();
        let stored = StoredHash::parse(&phc).unwrap();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..5 {
                        assert!(stored.verify(&password));
                        assert!(!stored.verify(&SecretString::from("wrong".to_owned())));
                    }
                });
            }
        });
        let pool = ARGON2_BUFFERS.lock().unwrap();
        assert_eq!(pool.running, 0);
        assert!(pool.free.is_empty(), "{} buffers kept", pool.free.len());
    }
}
