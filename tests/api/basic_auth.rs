//! Basic Auth on OMFLOW's endpoints.

use crate::helpers::{fail_message, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;
use secrecy::SecretString;

async fn assert_unauthorized(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Basic realm=\"hr-bridge\""
    );
    assert_eq!(fail_message(response).await, "authentication required");
}

on_all_backends!(
    omflow_endpoints_require_basic_auth,
    |db: TestDb| async move {
        let app = db.spawn().await;
        for path in ["/sync", "/authenticate"] {
            let url = format!("{}{path}", app.base_url);
            assert_unauthorized(app.client.post(&url).send().await.unwrap()).await;
            let wrong_password = app.client.post(&url).basic_auth(OMFLOW_USER, Some("nope"));
            assert_unauthorized(wrong_password.send().await.unwrap()).await;
            let wrong_user = app
                .client
                .post(&url)
                .basic_auth("intruder", Some(OMFLOW_PASSWORD));
            assert_unauthorized(wrong_user.send().await.unwrap()).await;
            let bearer = app.client.post(&url).bearer_auth(OMFLOW_PASSWORD);
            assert_unauthorized(bearer.send().await.unwrap()).await;
        }
    }
);

on_all_backends!(
    basic_auth_accepts_a_configured_argon2_hash,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.omflow.password = None;
        settings.omflow.password_hash = Some(SecretString::from(crate::authenticate::argon2id(
            "hashed-omflow-secret",
        )));
        let app = db.spawn_with(settings).await;
        let url = format!("{}/sync", app.base_url);
        // The second call is served from the verified-header cache; both must pass.
        for _ in 0..2 {
            let response = app
                .client
                .post(&url)
                .basic_auth(OMFLOW_USER, Some("hashed-omflow-secret"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let wrong = app
            .client
            .post(&url)
            .basic_auth(OMFLOW_USER, Some("hashed-omflow-secreT"));
        assert_unauthorized(wrong.send().await.unwrap()).await;
        // A cached header must not let a different user name through.
        let other_user = app
            .client
            .post(&url)
            .basic_auth("other", Some("hashed-omflow-secret"));
        assert_unauthorized(other_user.send().await.unwrap()).await;
    }
);

/// Sends `count` requests at once with wrong Basic Auth from `client`, each with
/// its own password, and returns their statuses.
async fn flood(client: &reqwest::Client, url: &str, count: usize) -> Vec<u16> {
    let requests = (0..count).map(|i| {
        let request = client
            .post(url)
            .basic_auth(OMFLOW_USER, Some(format!("guess-{i}")))
            .json(&serde_json::json!({"username": "alice", "password": "x"}))
            .send();
        async move {
            let response = request.await.expect("flood request answered");
            let status = response.status().as_u16();
            if status == 429 {
                let retry: u64 = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .expect("429 carries Retry-After in seconds");
                assert!((1..=60).contains(&retry), "Retry-After {retry}");
                assert!(fail_message(response).await.contains("too many"));
            }
            status
        }
    });
    futures_util::future::join_all(requests).await
}

on_all_backends!(
    wrong_basic_auth_floods_cannot_starve_omflow_logins,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.omflow.password = None;
        settings.omflow.password_hash = Some(SecretString::from(crate::authenticate::argon2id(
            "hashed-omflow-secret",
        )));
        settings.auth.max_concurrent_checks = 2;
        settings.auth.max_failures = 0;
        let app = db.spawn_with(settings).await;
        crate::authenticate::add_employee(
            &app,
            "alice",
            Some(&crate::authenticate::argon2id("right")),
            true,
        )
        .await;
        let url = format!("{}/authenticate", app.base_url);
        let login = || async {
            let response = app
                .client
                .post(&url)
                .basic_auth(OMFLOW_USER, Some("hashed-omflow-secret"))
                .json(&serde_json::json!({"username": "alice", "password": "right"}))
                .send()
                .await
                .expect("login answered");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body["status"].as_str().unwrap_or("").to_owned())
        };
        assert_eq!(login().await, (200, "success".to_owned()));
        // The flood comes from another address, with no valid credential.
        let attacker = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .build()
            .expect("client");
        let flood = tokio::spawn({
            let url = url.clone();
            async move {
                let mut statuses = flood(&attacker, &url, 200).await;
                statuses.extend(flood(&attacker, &url, 200).await);
                statuses
            }
        });
        let mut logins = Vec::new();
        while !flood.is_finished() || logins.len() < 5 {
            logins.push(login().await);
        }
        let statuses = tokio::time::timeout(std::time::Duration::from_secs(60), flood)
            .await
            .expect("the flood ends")
            .expect("flood task");
        assert!(
            logins.iter().all(|l| l == &(200, "success".to_owned())),
            "{logins:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 401 || *s == 429),
            "flood got {:?}",
            statuses
                .iter()
                .filter(|s| **s != 401 && **s != 429)
                .collect::<Vec<_>>()
        );
        assert!(statuses.contains(&429), "the flood was never throttled");
    }
);

on_all_backends!(
    basic_auth_throttle_keys_on_the_forwarded_client,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        let app = db.spawn_with(settings).await;
        let url = format!("{}/sync", app.base_url);
        let attempt = |from: &'static str, password: &'static str| {
            app.client
                .post(&url)
                .header("x-forwarded-for", from)
                .basic_auth(OMFLOW_USER, Some(password))
                .send()
        };
        let mut statuses = Vec::new();
        for _ in 0..12 {
            statuses.push(
                attempt("203.0.113.9", "nope")
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        assert_eq!(statuses[..9], [401; 9], "{statuses:?}");
        assert_eq!(statuses[10..], [429, 429], "{statuses:?}");
        // Another client behind the same proxy is not throttled, and the right
        // credential passes even from the throttled one.
        let other = attempt("198.51.100.1", "nope").await.unwrap();
        assert_eq!(other.status(), 401);
        let right = attempt("203.0.113.9", OMFLOW_PASSWORD).await.unwrap();
        assert_eq!(right.status(), 200);
    }
);

on_all_backends!(
    basic_auth_throttle_reads_a_forwarded_hop_with_a_port,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        let app = db.spawn_with(settings).await;
        let url = format!("{}/sync", app.base_url);
        // One client guesses from one address; it forges a new first hop each
        // time, and its load balancer appends the real address with a port.
        let mut statuses = Vec::new();
        for n in 0..12 {
            let response = app
                .client
                .post(&url)
                .header(
                    "x-forwarded-for",
                    format!("198.51.100.{n}, 203.0.113.9:4711"),
                )
                .basic_auth(OMFLOW_USER, Some("nope"))
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
        }
        assert_eq!(statuses[..9], [401; 9], "{statuses:?}");
        assert_eq!(statuses[10..], [429, 429], "{statuses:?}");
    }
);
