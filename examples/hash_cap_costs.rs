//! The measurements behind the cost caps (`src/password/caps.rs`): the CPU time of
//! the costliest password check each cap allows, beside common real hashes. Thread
//! CPU time, so that other load on the machine does not skew it.
//!
//! Usage: `cargo run --release --example hash_cap_costs` (the caps are set from a
//! release build; a debug build runs the hashes many times slower).

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use hr_bridge::password::{caps, StoredHash};
use secrecy::SecretString;

/// A real Argon2id hash at the default parameters (m=19456, t=2, p=1).
const ARGON2_DEFAULT: &str = "$argon2id$v=19$m=19456,t=2,p=1$UROqH9eegsl1pWdvt+ijEA$5+96yN9snLq2zJ4qAkRSlmuUEb8Hv8mSus3o15OpnKk";
/// From Python's bcrypt 4 at cost 12.
const BCRYPT_12: &str = "$2b$12$uLKXFsU4RkEIoOCg42WVs.jjXbL68qNub9kzd.XOywFcBtaIYZ5wW";
/// Recent Odoo: PBKDF2-SHA512 with 600,000 rounds.
const ODOO_600K: &str = "$pbkdf2-sha512$600000$G0No7b13rpXSeu9d651zbg$Js5UG98jrq2CQrjGkYo3YNvIShnGl2OisnpXi774LDKk6nnZ9y716mgpa6WyhSy6l0laEn2YNrHDQBNPrsKRMA";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bcrypt = bcrypt::hash_with_salt("x", caps::MAX_BCRYPT_COST, [7u8; 16])?
        .format_for_version(bcrypt::Version::TwoB);
    let argon2 = {
        let m = caps::MAX_ARGON2_M_COST_KIB;
        let t = u32::try_from(caps::MAX_ARGON2_WORK_KIB / u64::from(m))?;
        let params = argon2::Params::new(m, t, 1, None).map_err(|e| e.to_string())?;
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(
                b"x",
                &SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?
            .to_string()
    };
    let django = format!(
        "pbkdf2_sha256${}$salt$iohFPzzDJse1iZi+1ZFU2VScFmCj40SnAdUB6OdkYt4=",
        caps::MAX_PBKDF2_SHA256_ITERATIONS
    );
    let odoo = format!(
        "$pbkdf2-sha512${}$G0No7b13rpXSeu9d651zbg$Js5UG98jrq2CQrjGkYo3YNvIShnGl2OisnpXi774LDKk6nnZ9y716mgpa6WyhSy6l0laEn2YNrHDQBNPrsKRMA",
        caps::MAX_PBKDF2_SHA512_ITERATIONS
    );
    let password = SecretString::from("guess");
    for (name, hash) in [
        ("bcrypt at cap", bcrypt.as_str()),
        ("bcrypt 12", BCRYPT_12),
        ("argon2 at cap", argon2.as_str()),
        ("argon2 default", ARGON2_DEFAULT),
        ("pbkdf2-sha256 at cap", django.as_str()),
        ("pbkdf2-sha512 at cap", odoo.as_str()),
        ("pbkdf2-sha512 600k (Odoo)", ODOO_600K),
    ] {
        let parsed = StoredHash::parse(hash).map_err(|e| format!("{name}: {e}"))?;
        let mut times: Vec<(Duration, Duration)> = (0..5)
            .map(|_| {
                let (started, cpu) = (Instant::now(), thread_cpu_time());
                let matched = parsed.verify(&password);
                assert!(!matched, "{name}: the wrong password matched");
                (thread_cpu_time() - cpu, started.elapsed())
            })
            .collect();
        times.sort();
        println!(
            "{name}: CPU median {:?} max {:?}; wall median {:?}",
            times[2].0, times[4].0, times[2].1
        );
    }
    Ok(())
}

/// CPU time of this thread: what a check costs, whatever else loads the machine.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
