//! A flood of wrong Basic Auth credentials from many addresses, before OMFLOW's
//! password has been proven (so each wrong guess would cost an Argon2 hash),
//! must not keep OMFLOW's own `/sync` from being answered in normal time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::helpers::{OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

/// Attacking tasks, each from its own forwarded address.
const ATTACKERS: usize = 200;
/// Failure floor of the test: every rejection takes at least this long.
const FLOOR: Duration = Duration::from_millis(300);
/// What "answered in normal time" means on a loaded test machine.
const IN_TIME: Duration = Duration::from_secs(2);

on_all_backends!(
    omflow_is_answered_in_time_under_a_flood_of_wrong_basic_auth,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.omflow.password = None;
        settings.omflow.password_hash = Some(SecretString::from(crate::authenticate::argon2id(
            OMFLOW_PASSWORD,
        )));
        settings.auth.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        settings.auth.failure_floor_ms = FLOOR.as_millis() as u64;
        let app = db.spawn_with(settings).await;
        let url = format!("{}/sync", app.base_url);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for n in 0..ATTACKERS {
            let (client, url, stop, sent) = (
                reqwest::Client::new(),
                url.clone(),
                stop.clone(),
                sent.clone(),
            );
            tasks.push(tokio::spawn(async move {
                // A dictionary attack: every address tries the same few guesses.
                let from = format!("198.51.{}.{}", n / 250, n % 250 + 1);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let guess = ["123456", "password", "omflow"][i % 3];
                    i += 1;
                    let _ = client
                        .post(&url)
                        .header("x-forwarded-for", &from)
                        .basic_auth(OMFLOW_USER, Some(guess))
                        .send()
                        .await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        // OMFLOW's own calls, while the flood goes on.
        let omflow = reqwest::Client::new();
        for call in 0..5 {
            let started = Instant::now();
            let response = tokio::time::timeout(
                IN_TIME,
                omflow
                    .post(&url)
                    .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                    .send(),
            )
            .await
            .unwrap_or_else(|_| panic!("OMFLOW's call {call} got no answer within {IN_TIME:?}"))
            .unwrap();
            assert_eq!(
                response.status(),
                200,
                "OMFLOW's call {call} after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // A repeated wrong guess costs no hash, but is answered after the same
        // floor as one that was hashed: timing does not show the cache.
        let started = Instant::now();
        let repeated = app
            .client
            .post(&url)
            .header("x-forwarded-for", "203.0.113.77")
            .basic_auth(OMFLOW_USER, Some("password"))
            .send()
            .await
            .unwrap();
        assert_eq!(repeated.status(), 401);
        assert!(started.elapsed() >= FLOOR, "{:?}", started.elapsed());
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.unwrap();
        }
        assert!(
            sent.load(Ordering::Relaxed) >= ATTACKERS,
            "the flood did not run"
        );
    }
);

on_all_backends!(
    one_address_holds_one_place_in_the_basic_auth_hash_queue,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.omflow.password = None;
        settings.omflow.password_hash = Some(SecretString::from(crate::authenticate::argon2id(
            OMFLOW_PASSWORD,
        )));
        let app = db.spawn_with(settings).await;
        let url = format!("{}/sync", app.base_url);
        // Distinct guesses at once from one address: about one at a time is
        // hashed, the rest are answered 429 at once rather than taking the
        // queue's other places (there are five).
        let statuses: Vec<u16> = futures_util::future::join_all((0..20).map(|i| {
            app.client
                .post(&url)
                .basic_auth(OMFLOW_USER, Some(format!("guess-{i}")))
                .send()
        }))
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
        let hashed = statuses.iter().filter(|s| **s == 401).count();
        assert!((1..5).contains(&hashed), "{statuses:?}");
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            20 - hashed,
            "{statuses:?}"
        );
    }
);
