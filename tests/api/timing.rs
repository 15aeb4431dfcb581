//! A failed `/authenticate` takes the same time whether the user exists or not,
//! whatever the stored hash format or cost: every failure is held until the
//! failure floor. This test is about timing by nature, so it compares medians of
//! 20 rounds, one request at a time (concurrent ones would queue behind each
//! other's hashing).
//!
//! The floor must cover the costliest hash, as an operator sets it to (the
//! default, 1 s, covers the caps' worst case in release builds). On a debug
//! build sharing its cores with other jobs, a hash can take many times its
//! usual time, beyond any fixed floor short enough for a test: then the hash
//! shows through, as it would on a production server so overloaded. So the
//! test first times the costliest failures here and now, without a floor, and
//! sets the floor at twice the slowest (300 ms at least), and the medians may
//! differ by 10 ms or by the spread of one case's own times, whichever is larger
//! (a few ms on an idle machine; see `noise`). What it proves is unchanged:
//! under a floor that covers the hashes, no failure can be told apart by its
//! time from the noise of the machine it runs on.

use std::time::{Duration, Instant};

use crate::authenticate::{add_employee, argon2id};
use crate::hash_formats::ODOO_25K;
use crate::helpers::{json_body, TestApp, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;
use hr_bridge::config::limits::MAX_FAILURE_FLOOR_MS;
use hr_bridge::config::Settings;

/// From Python's bcrypt 4 at cost 12 (0.2 s per check, the example).
pub const BCRYPT_12: (&str, &str) = (
    "$2b$12$uLKXFsU4RkEIoOCg42WVs.jjXbL68qNub9kzd.XOywFcBtaIYZ5wW",
    "bcrypt-twelve",
);
/// From Python's bcrypt 4 at cost 11 (0.1 s per check, four times the dummy's).
const BCRYPT_11: &str = "$2b$11$/Y0CLfAORxB.ayCDQZqdy..pISyWBMis0AGerjRSi2XOu5MRx5FaG";
/// The least floor: three times the costliest of these failures on an unloaded
/// debug build (about 100 ms, BCRYPT_11); a loaded machine raises it (see below).
const FLOOR_MS: u64 = 300;

const ROUNDS: usize = 20;
/// Largest gap allowed between two medians, unless the machine's own noise is
/// larger (see [`noise`]).
const TOLERANCE: Duration = Duration::from_millis(10);

async fn failed_login_time(
    app: &TestApp,
    base_url: &str,
    username: &str,
    password: &str,
) -> Duration {
    let started = Instant::now();
    let response = app
        .client
        .post(format!("{base_url}/authenticate"))
        .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .expect("request sent");
    let body = json_body(response).await;
    let took = started.elapsed();
    assert_eq!(body["status"], "fail", "{username}: {body}");
    took
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The interquartile range of `times`: how much the same failure's time varies
/// from round to round here and now. The difference of two medians of 20 rounds
/// drawn from the same spread has a standard error of about 0.3 of this range,
/// so a larger gap is over three standard errors: a difference, not noise. An
/// idle machine's range is a few milliseconds, and [`TOLERANCE`] holds.
fn noise(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() * 3 / 4] - sorted[sorted.len() / 4]
}

on_all_backends!(
    failed_logins_take_the_same_time_whoever_and_whatever_the_hash,
    |db: TestDb| async move {
        let db_backend = db.backend;
        let mut settings = db.settings();
        assert!(Settings::default().auth.failure_floor_ms >= FLOOR_MS);
        settings.auth.failure_floor_ms = 0;
        settings.auth.max_failures = 0;
        // Without a floor first: how long the failures take on this machine now.
        let mut app = db.spawn_with(settings.clone()).await;
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
        let unfloored = app.base_url.clone();
        let mut slowest = Duration::ZERO;
        for _ in 0..3 {
            for (user, password) in &cases {
                slowest = slowest.max(failed_login_time(&app, &unfloored, user, password).await);
            }
        }
        let floor = FLOOR_MS.max(u64::try_from(slowest.as_millis() * 2).unwrap_or(u64::MAX));
        assert!(
            floor <= MAX_FAILURE_FLOOR_MS,
            "failures take {slowest:?} without a floor: too loaded to time anything"
        );
        // The same database behind a second server with that floor.
        settings.auth.failure_floor_ms = floor;
        let base_url = app.spawn_sibling(settings).await;
        // Warm the connection so that the first sample pays no handshake.
        failed_login_time(&app, &base_url, "ghost", "wrong").await;
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
        for _ in 0..ROUNDS {
            for (i, (user, password)) in cases.iter().enumerate() {
                times[i].push(failed_login_time(&app, &base_url, user, password).await);
            }
        }
        let tolerance = TOLERANCE.max(noise(&times[0]));
        let medians: Vec<(&str, Duration)> = cases
            .iter()
            .zip(times)
            .map(|((user, _), t)| (*user, median(t)))
            .collect();
        eprintln!(
            "{db_backend:?}: floor {floor} ms (slowest unfloored failure {slowest:?}), \
             tolerance {tolerance:?}; medians: {medians:?}"
        );
        let unknown = medians[0].1;
        assert!(
            unknown >= Duration::from_millis(floor),
            "the floor did not hold: {medians:?}"
        );
        for (user, took) in &medians {
            let gap = took.abs_diff(unknown);
            assert!(
                gap <= tolerance,
                "{user} differs by {gap:?} (tolerance {tolerance:?}): {medians:?}"
            );
        }
    }
);
