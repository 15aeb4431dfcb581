//! A failed `/authenticate` takes the same time whether the user exists or not,
//! whatever the stored hash format or cost: every failure is held until the
//! failure floor. This test is about timing by nature, so it compares medians of
//! 20 rounds, each round sending every kind of failure at once (so that machine
//! load hits them alike), under the default floor.

use std::time::{Duration, Instant};

use crate::authenticate::{add_employee, argon2id};
use crate::hash_formats::ODOO_25K;
use crate::helpers::{json_body, TestApp};
use crate::on_all_backends;
use hr_bridge::config::Settings;

/// From Python's bcrypt 4 at cost 12 (about 0.2 s per check).
pub const BCRYPT_12: (&str, &str) = (
    "$2b$12$uLKXFsU4RkEIoOCg42WVs.jjXbL68qNub9kzd.XOywFcBtaIYZ5wW",
    "bcrypt-twelve",
);

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
        let mut settings = db.settings();
        let floor = Settings::default().auth.failure_floor_ms;
        settings.auth.failure_floor_ms = floor;
        settings.auth.max_failures = 0;
        let app = db.spawn_with(settings).await;
        let costly = BCRYPT_12.0.replacen("$12$", "$16$", 1);
        add_employee(&app, "argon", Some(&argon2id("right")), true).await;
        add_employee(&app, "inactive", Some(&argon2id("right")), false).await;
        add_employee(&app, "bcrypt12", Some(BCRYPT_12.0), true).await;
        add_employee(&app, "odoo", Some(ODOO_25K.0), true).await;
        add_employee(&app, "nohash", None, true).await;
        add_employee(&app, "costly", Some(&costly), true).await;
        let cases = [
            ("ghost", "wrong"),
            ("argon", "wrong"),
            ("inactive", "right"),
            ("bcrypt12", "wrong"),
            ("odoo", "wrong"),
            ("nohash", "wrong"),
            ("costly", "wrong"),
            ("ghost\u{0}", "wrong"),
        ];
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
        for _ in 0..ROUNDS {
            let round = cases
                .iter()
                .map(|(user, password)| failed_login_time(&app, user, password));
            for (i, took) in futures_util::future::join_all(round)
                .await
                .into_iter()
                .enumerate()
            {
                times[i].push(took);
            }
        }
        let medians: Vec<(&str, Duration)> = cases
            .iter()
            .zip(times)
            .map(|((user, _), t)| (*user, median(t)))
            .collect();
        let unknown = medians[0].1;
        assert!(
            unknown >= Duration::from_millis(floor),
            "the floor did not hold: {medians:?}"
        );
        for (user, took) in &medians {
            let gap = if *took > unknown { *took - unknown } else { unknown - *took };
            assert!(gap <= TOLERANCE, "{user} differs by {gap:?}: {medians:?}");
        }
    }
);
