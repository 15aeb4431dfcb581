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
