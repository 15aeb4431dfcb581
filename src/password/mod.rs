//! Password hashes: recognising stored formats, verifying, and making new Argon2id
//! hashes. Everything here is CPU-bound and synchronous; callers run it on the
//! bounded [`HashingPool`] so that the async workers never hash.

mod authenticator;
mod omflow;
mod pool;

pub use authenticator::{
    prune_auth_state, unix_now, AuthError, AuthOutcome, AuthPolicy, Authenticator, FailureReason,
};
pub use omflow::{OmflowCredential, OmflowHash};
pub use pool::{Busy, HashingPool};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

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
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// Highest PBKDF2 iteration count accepted from a stored hash, so that one planted
/// row cannot make a single login burn seconds of CPU.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Longest PBKDF2 output accepted: two SHA-256 blocks, more than any framework writes.
const MAX_PBKDF2_OUTPUT: usize = 64;

/// A stored password hash, parsed once so that verification knows its format.
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
    /// PBKDF2-HMAC-SHA256 in a non-PHC layout: Django's
    /// `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` or passlib's
    /// `$pbkdf2-sha256$<rounds>$<ab64 salt>$<ab64 hash>`.
    Pbkdf2 {
        style: Pbkdf2Style,
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

/// Decodes passlib's "adapted base64": `.` for `+`, no padding.
fn decode_ab64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    STANDARD_NO_PAD
        .decode(text.replace('.', "+").trim_end_matches('='))
        .ok()
}

fn pbkdf2_iterations(text: &str) -> Result<u32, PasswordError> {
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_PBKDF2_ITERATIONS).contains(&n) => Ok(n),
        _ => Err(PasswordError::Unrecognised),
    }
}

impl StoredHash {
    /// Recognises a stored hash; NULL, empty and unknown strings are `Unrecognised`.
    pub fn parse(stored: &str) -> Result<Self, PasswordError> {
        let stored = stored.trim();
        if stored.starts_with("$argon2") {
            let phc = PasswordHash::new(stored).map_err(|_| PasswordError::Unrecognised)?;
            let algorithm =
                Algorithm::try_from(phc.algorithm).map_err(|_| PasswordError::Unrecognised)?;
            let params = Params::try_from(&phc).map_err(|_| PasswordError::Unrecognised)?;
            phc.hash.ok_or(PasswordError::Unrecognised)?;
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
            return match stored.len() {
                60 => Ok(Self::Bcrypt(stored.to_owned())),
                _ => Err(PasswordError::Unrecognised),
            };
        }
        if let Some(rest) = stored.strip_prefix("$pbkdf2-sha256$") {
            let parts: Vec<&str> = rest.split('$').collect();
            if let [rounds, salt, hash] = parts[..] {
                if rounds.bytes().all(|b| b.is_ascii_digit()) {
                    let (Some(salt), Some(hash)) = (decode_ab64(salt), decode_ab64(hash)) else {
                        return Err(PasswordError::Unrecognised);
                    };
                    if salt.is_empty() || hash.is_empty() || hash.len() > MAX_PBKDF2_OUTPUT {
                        return Err(PasswordError::Unrecognised);
                    }
                    return Ok(Self::Pbkdf2 {
                        style: Pbkdf2Style::Passlib,
                        iterations: pbkdf2_iterations(rounds)?,
                        salt,
                        hash,
                    });
                }
            }
            let phc = PasswordHash::new(stored).map_err(|_| PasswordError::Unrecognised)?;
            let rounds = phc.params.get_decimal("i").unwrap_or(0);
            if rounds == 0 || rounds > MAX_PBKDF2_ITERATIONS || phc.hash.is_none() {
                return Err(PasswordError::Unrecognised);
            }
            return Ok(Self::Pbkdf2Phc(stored.to_owned()));
        }
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
            let mut parts = rest.splitn(3, '$');
            let (Some(iterations), Some(salt), Some(hash)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(PasswordError::Unrecognised);
            };
            let iterations = pbkdf2_iterations(iterations)?;
            let hash = base64::engine::general_purpose::STANDARD
                .decode(hash)
                .map_err(|_| PasswordError::Unrecognised)?;
            if salt.is_empty() || hash.is_empty() || hash.len() > MAX_PBKDF2_OUTPUT {
                return Err(PasswordError::Unrecognised);
            }
            return Ok(Self::Pbkdf2 {
                style: Pbkdf2Style::Django,
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
                iterations,
                salt,
                hash,
                ..
            } => {
                let mut computed = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, *iterations, &mut computed);
                computed.ct_eq(hash).into()
            }
        }
    }

    /// True when a successful login should replace this hash by a fresh Argon2id
    /// one: any other format, an old Argon2 version, or weaker parameters.
    pub fn needs_rehash(&self, target: &Argon2Settings) -> bool {
        match self {
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
                ..
            } => "passlib-pbkdf2-sha256",
        }
    }
}

/// Largest Argon2 memory (KiB) and passes a stored hash may ask for; beyond them
/// it never matches, so one planted row cannot exhaust memory or CPU.
const MAX_ARGON2_M_COST_KIB: u32 = 256 * 1024;
const MAX_ARGON2_T_COST: u32 = 64;

thread_local! {
    /// Argon2's working memory, kept per hashing thread: allocating and faulting in
    /// 19 MiB per check costs about a fifth of the check itself.
    static ARGON2_BLOCKS: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Verifies an Argon2 PHC string, reusing this thread's block memory.
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
    if params.m_cost() > MAX_ARGON2_M_COST_KIB || params.t_cost() > MAX_ARGON2_T_COST {
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
    ARGON2_BLOCKS.with(|cell| {
        let Ok(mut memory) = cell.try_borrow_mut() else {
            return false;
        };
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        let hashed = hasher
            .hash_password_into_with_memory(password, salt, &mut computed, &mut memory[..blocks])
            .is_ok();
        // Keep a default-sized buffer for the next check; give back anything larger.
        if memory.len() > 2 * Argon2Settings::default().m_cost_kib as usize {
            *memory = Vec::new();
        }
        hashed && bool::from(computed.ct_eq(expected))
    })
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
