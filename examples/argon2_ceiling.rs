//! The in-process Argon2 ceiling: how many password checks per second this machine
//! can do on all cores with hr-bridge's own verification code and default
//! parameters. `scripts/bench.sh` prints `/authenticate` throughput beside it.
//!
//! Usage: `cargo run --release --example argon2_ceiling -- [SECONDS]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hr_bridge::password::{hash_argon2id, Argon2Settings, StoredHash};
use secrecy::SecretString;

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let password = SecretString::from("benchmark-password");
    let phc = hash_argon2id(&password, &Argon2Settings::default()).expect("hash");
    let stored = StoredHash::parse(&phc).expect("parse");
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stored, password, done, stop) =
                (stored.clone(), password.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert!(stored.verify(&password));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let checks = done.load(Ordering::Relaxed) as f64;
    println!(
        "{{\"threads\":{threads},\"checks\":{checks},\"seconds\":{elapsed:.2},\"checks_per_second\":{:.1},\"ms_per_check\":{:.2}}}",
        checks / elapsed,
        1000.0 * elapsed * threads as f64 / checks
    );
}
