//! Every cap on the work an outsider can make a password check cost, in one place
//! with its reason. A stored hash beyond these caps never matches and is not run:
//! a planted row must not stall the hashing pool (or shutdown), and no check may
//! take much more than the failure floor of `/authenticate` hides.
//!
//! Budget: the worst check any cap allows costs at most 0.4 s of CPU on this
//! machine class (2-core AMD EPYC; release build; thread CPU time, so that other
//! load does not skew it; figures beside each cap), well under the default
//! failure floor of 1 s. Measured with `cargo run --release --example hash_cap_costs`.

use std::time::Duration;

/// Longest password hashed or compared; longer ones never match, and hashing them
/// would let a caller make the server do unbounded work (PBKDF2 hashes the key once
/// per block, Argon2 once per check).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Longest username looked up; longer ones cannot exist in any backend's schema
/// (MySQL keys are `VARCHAR(255)`).
pub const MAX_USERNAME_BYTES: usize = 255;

/// Highest bcrypt cost verified. Cost 12 takes 0.20 s here and each step
/// doubles it: 13 is 0.40 s, 14 would be 0.8 s. Frameworks write 10 to 12.
pub const MAX_BCRYPT_COST: u32 = 13;

/// Largest Argon2 memory (KiB) a stored hash may ask for: 64 MiB, three times
/// OWASP's 19 MiB; with one check per CPU in flight this bounds hashing memory.
pub const MAX_ARGON2_M_COST_KIB: u32 = 64 * 1024;
/// Largest Argon2 work, memory (KiB) times passes: 64 MiB × 4 passes, 0.17 s
/// here (the default 19 MiB × 2 takes 23 ms).
pub const MAX_ARGON2_WORK_KIB: u64 = 4 * 64 * 1024;
/// Most Argon2 lanes: this build runs lanes one after another, so lanes add no
/// speed, only per-lane overhead.
pub const MAX_ARGON2_P_COST: u32 = 16;

/// Highest PBKDF2-HMAC-SHA256 iteration count: 0.20 s here. Django 5.2 writes
/// 1,000,000 (0.10 s), 6.0 writes 1,200,000, and raises it every release.
pub const MAX_PBKDF2_SHA256_ITERATIONS: u32 = 2_000_000;
/// Highest PBKDF2-HMAC-SHA512 iteration count: 0.28 s here. Odoo writes 600,000
/// (0.17 s; older Odoo wrote 25,000).
pub const MAX_PBKDF2_SHA512_ITERATIONS: u32 = 1_000_000;
/// Longest PBKDF2 output accepted: one SHA-512 block, more than any framework
/// writes; each further block would cost a full run of iterations.
pub const MAX_PBKDF2_OUTPUT: usize = 64;

/// Default least answer time of a failed `/authenticate`: covers the slowest check
/// the caps above allow (0.4 s of CPU) with room for a loaded machine, so that the
/// answer time does not tell which accounts exist or how their hash is stored.
/// The configuration's default (`auth.failure_floor_ms`), defined there.
pub const DEFAULT_FAILURE_FLOOR: Duration =
    Duration::from_millis(crate::config::limits::DEFAULT_FAILURE_FLOOR_MS);

/// Failed Basic Auth attempts one client address may make per window before it
/// is answered 429 without any check; OMFLOW sends one fixed machine credential,
/// so a handful of failures is already an operator's typo or an attack.
pub const BASIC_AUTH_FAILURES_PER_WINDOW: u32 = 10;
/// The window of [`BASIC_AUTH_FAILURES_PER_WINDOW`].
pub const BASIC_AUTH_WINDOW: Duration = Duration::from_secs(60);
/// Client addresses tracked by the Basic Auth throttle (about 50 bytes each); IPv6
/// clients are tracked per /64, the block one host usually controls.
pub const BASIC_AUTH_TRACKED_CLIENTS: usize = 16_384;
/// Argon2 checks of an unproven OMFLOW Basic Auth password (a configured
/// `omflow.password_hash`) run one at a time with a short queue, apart from the
/// employee checks of `/authenticate`, so wrong Basic Auth cannot starve logins.
pub const OMFLOW_ARGON2_CONCURRENT: usize = 1;
pub const OMFLOW_ARGON2_QUEUED: usize = 4;
/// Of those five places, what one client address may hold (running or
/// waiting); its further attempts are answered 429 at once, so that one
/// address cannot keep OMFLOW's first call out.
pub const OMFLOW_ARGON2_PER_CLIENT: usize = 1;
/// How long a Basic Auth credential that failed its Argon2 check is remembered
/// (as a keyed hash): repeating it within this time costs no hash.
pub const OMFLOW_FAILED_TTL: Duration = Duration::from_secs(300);
/// Failed credentials remembered at once (about 60 bytes each).
pub const OMFLOW_FAILED_REMEMBERED: usize = 4096;
/// Refused (429) Basic Auth attempts are logged once per address per this
/// window, with their count, so that a flood cannot fill the logs.
pub const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(60);
/// Addresses the refusal log names one by one each window (about 40 bytes
/// each); refusals from further ones are summed on one line.
pub const REFUSAL_LOG_ADDRESSES: usize = 1024;
