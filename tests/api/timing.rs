//! A failed `/authenticate` takes the same time whether the user exists or not,
//! whatever the stored hash format or cost: every failure is held until the
//! failure floor. This test is about timing by nature, so it compares medians of
//! 20 rounds, one request at a time (concurrent ones would queue behind each
//! other's hashing), under a floor of 700 ms that covers these hashes even on a
//! loaded debug build (the default floor, 1 s, covers the caps' worst case in
//! release builds).

use std::time::{Duration, Instant};

use crate::authenticate::{add_employee, argon2id};
use crate::hash_formats::ODOO_25K;
use crate::helpers::{json_body, TestApp};
use crate::on_all_backends;
use hr_bridge::config::Settings;

/// From Python's bcrypt 4 at cost 12 (0.2 s per check, the example).
pub const BCRYPT_12: (&str, &str) = (
    "$2b$12$uLKXFsU4RkEIoOCg42WVs.jjXbL68qNub9kzd.XOywFcBtaIYZ5wW",
    "bcrypt-twelve",
);
/// From Python's bcrypt 4 at cost 11 (0.1 s per check, four times the dummy's).
const BCRYPT_11: &str = "$2b$11$/Y0CLfAORxB.ayCDQZqdy..pISyWBMis0AGerjRSi2XOu5MRx5FaG";
const FLOOR_MS: u64 = 700;

const ROUNDS: usize = 20;
/// Largest gap allowed between two medians.
const TOLERANCE: Duration = Duration::from_millis(10);

async fn failed_login_time(app: &TestApp, username: &str, password: &str) -> Duration {
    let started = Instant::now();
    let body = json_body(app.post_authenticate(username, password).await).await;
    let took = started.elapsed();
    assert_eq!(body["status"], "fail", "{username}: {body}");
    took
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

on_all_backends!(
    failed_logins_take_the_same_time_whoever_and_whatever_the_hash,
    |db: TestDb| async move {
        let db_backend = db.backend;
        let mut settings = db.settings();
        assert!(Settings::default().auth.failure_floor_ms >= FLOOR_MS);
        let floor = FLOOR_MS;
        settings.auth.failure_floor_ms = floor;
        settings.auth.max_failures = 0;
        let app = db.spawn_with(settings).await;
        let costly = BCRYPT_12.0.replacen("$12$", "$16$", 1);
        add_employee(&app, "inactive", Some(&argon2id("right")), false).await;
        add_employee(&app, "bcrypt11", Some(BCRYPT_11), true).await;
        add_employee(&app, "odoo", Some(ODOO_25K.0), true).await;
        add_employee(&app, "costly", Some(&costly), true).await;
        // Unknown, inactive (right password, Argon2id), legacy formats costlier than
        // the dummy, a hash over the caps, and a name no backend can hold.
        let cases = [
            ("ghost", "wrong"),
            ("inactive", "right"),
            ("bcrypt11", "wrong"),
            ("odoo", "wrong"),
            ("costly", "wrong"),
            ("ghost\u{0}", "wrong"),
        ];
        // Warm the connection so that the first sample pays no handshake.
        failed_login_time(&app, "ghost", "wrong").await;
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
        for _ in 0..ROUNDS {
            for (i, (user, password)) in cases.iter().enumerate() {
                times[i].push(failed_login_time(&app, user, password).await);
            }
        }
        let medians: Vec<(&str, Duration)> = cases
            .iter()
            .zip(times)
            .map(|((user, _), t)| (*user, median(t)))
            .collect();
        eprintln!("{:?} medians: {medians:?}", db_backend);
        let unknown = medians[0].1;
        assert!(
            unknown >= Duration::from_millis(floor),
            "the floor did not hold: {medians:?}"
        );
        for (user, took) in &medians {
            let gap = took.abs_diff(unknown);
            assert!(gap <= TOLERANCE, "{user} differs by {gap:?}: {medians:?}");
        }
    }
);
