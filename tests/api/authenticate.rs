//! `POST /authenticate`: outcomes, one message for every failure, input errors and
//! the bounded hashing queue.

use crate::helpers::{fail_message, json_body, TestApp, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use hr_bridge::password::{hash_argon2id, Argon2Settings};
use secrecy::SecretString;

const FAILED: &str = "invalid username or password";

/// Adds an employee with a hash of `password` (or no hash).
pub async fn add_employee(app: &TestApp, username: &str, hash: Option<&str>, active: bool) {
    let hash = hash.map_or("NULL".to_owned(), |h| format!("'{h}'"));
    let active = if active { "TRUE" } else { "FALSE" };
    app.exec(&format!(
        "INSERT INTO employees (username, email, nick_name, password_hash, active) \
         VALUES ('{username}', '{username}@example.com', '{username}', {hash}, {active})"
    ))
    .await;
}

pub fn argon2id(password: &str) -> String {
    hash_argon2id(&SecretString::from(password), &Argon2Settings::default()).unwrap()
}

fn argon2_variant(algorithm: Algorithm, password: &str) -> String {
    let params = Params::new(8192, 1, 1, None).unwrap();
    let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
    Argon2::new(algorithm, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

async fn assert_success(response: reqwest::Response) {
    assert_eq!(response.status(), 200);
    assert_eq!(
        json_body(response).await,
        serde_json::json!({"status": "success"})
    );
}

async fn assert_failed(response: reqwest::Response) {
    assert_eq!(response.status(), 200);
    assert_eq!(fail_message(response).await, FAILED);
}

on_all_backends!(
    authenticate_accepts_the_right_password,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(&app, "alice", Some(&argon2id("correct horse")), true).await;
        assert_success(app.post_authenticate("alice", "correct horse").await).await;
    }
);

on_all_backends!(
    authenticate_accepts_argon2i_and_argon2d_hashes,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(
            &app,
            "ivy",
            Some(&argon2_variant(Algorithm::Argon2i, "pw-i")),
            true,
        )
        .await;
        add_employee(
            &app,
            "dan",
            Some(&argon2_variant(Algorithm::Argon2d, "pw-d")),
            true,
        )
        .await;
        assert_success(app.post_authenticate("ivy", "pw-i").await).await;
        assert_success(app.post_authenticate("dan", "pw-d").await).await;
        assert_failed(app.post_authenticate("dan", "pw-i").await).await;
    }
);

on_all_backends!(
    authenticate_gives_one_message_for_every_failure,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(&app, "alice", Some(&argon2id("correct horse")), true).await;
        add_employee(&app, "ex", Some(&argon2id("still valid")), false).await;
        add_employee(&app, "nohash", None, true).await;
        add_employee(&app, "plain", Some("plaintext-password"), true).await;
        // Wrong password, unknown user, inactive employee, NULL hash, and a plaintext
        // "hash" that must never be compared as text.
        assert_failed(app.post_authenticate("alice", "wrong").await).await;
        assert_failed(app.post_authenticate("nobody", "correct horse").await).await;
        assert_failed(app.post_authenticate("ex", "still valid").await).await;
        assert_failed(app.post_authenticate("nohash", "").await).await;
        assert_failed(app.post_authenticate("plain", "plaintext-password").await).await;
        assert_failed(app.post_authenticate("", "x").await).await;
        assert_failed(app.post_authenticate("alice", &"x".repeat(2000)).await).await;
    }
);

on_all_backends!(
    authenticate_rejects_malformed_requests_with_400,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let url = format!("{}/authenticate", app.base_url);
        let cases = [
            ("{not json", "not valid JSON"),
            ("[1,2]", "must be a JSON object"),
            (r#"{"username":"alice"}"#, "field \"password\" is missing"),
            (r#"{"password":"x"}"#, "field \"username\" is missing"),
            (
                r#"{"username":"alice","password":987654321}"#,
                "field \"password\" must be a string",
            ),
            (
                r#"{"username":null,"password":"x"}"#,
                "field \"username\" must be a string",
            ),
        ];
        for (body, expected) in cases {
            let response = app
                .client
                .post(&url)
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{body}");
            let message = fail_message(response).await;
            assert!(message.contains(expected), "{body}: {message}");
            assert!(
                !message.contains("987654321"),
                "the password leaked: {message}"
            );
        }
    }
);

on_all_backends!(
    authenticate_accepts_a_body_without_content_type,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(&app, "alice", Some(&argon2id("pw")), true).await;
        let response = app
            .client
            .post(format!("{}/authenticate", app.base_url))
            .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
            .body(r#"{"username":"alice","password":"pw","extra":1}"#)
            .send()
            .await
            .unwrap();
        assert_success(response).await;
    }
);

on_all_backends!(
    authenticate_answers_503_when_the_hashing_queue_is_full,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_concurrent_checks = 1;
        settings.auth.max_queued_checks = 0;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("pw")), true).await;
        let requests = (0..24).map(|_| app.post_authenticate("alice", "wrong"));
        let responses = futures_util::future::join_all(requests).await;
        let mut busy = 0;
        let mut answered = 0;
        for response in responses {
            match response.status().as_u16() {
                503 => {
                    assert!(response.headers().contains_key("retry-after"));
                    assert!(fail_message(response)
                        .await
                        .contains("too many password checks"));
                    busy += 1;
                }
                200 => answered += 1,
                other => panic!("unexpected status {other}"),
            }
        }
        assert!(busy > 0, "no request was turned away");
        assert!(answered > 0, "no request was served");
    }
);

on_all_backends!(
    graceful_shutdown_lets_in_flight_checks_finish,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_concurrent_checks = 1;
        let app = db.spawn_with(settings).await;
        add_employee(&app, "alice", Some(&argon2id("pw")), true).await;
        // Several checks queue behind one hashing slot, so they are still running when
        // the shutdown starts.
        let clients: Vec<reqwest::Client> = (0..4).map(|_| reqwest::Client::new()).collect();
        let url = format!("{}/authenticate", app.base_url);
        let in_flight: Vec<_> = clients
            .iter()
            .map(|client| {
                let request = client
                    .post(&url)
                    .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                    .json(&serde_json::json!({"username": "alice", "password": "pw"}))
                    .send();
                tokio::spawn(request)
            })
            .collect();
        // Shut down once every check has reached the server: each is either
        // answered or counted in flight. (Answers are counted first: one answered
        // after that is no longer in flight, so none is counted twice.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let answered = in_flight.iter().filter(|r| r.is_finished()).count();
            let checking = crate::metrics::gauge(&app, "hr_bridge_password_checks_in_flight").await;
            if answered + checking as usize == in_flight.len() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the checks did not all arrive"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let addr = app.addr;
        app.stop().await;
        for request in in_flight {
            let response = request.await.unwrap().expect("in-flight request answered");
            assert_success(response).await;
        }
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "still accepting"
        );
    }
);
