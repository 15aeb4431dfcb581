//! `/metrics` exposes request, authentication and sync figures after traffic.

use crate::on_all_backends;

on_all_backends!(
    metrics_expose_counters_after_traffic,
    |db: TestDb| async move {
        let app = db.spawn().await;
        crate::guard::seed_people(&app, 3).await;
        assert_eq!(app.post_sync().await.status(), 200);
        app.post_authenticate("nobody", "x").await;
        let response = app
            .client
            .get(format!("{}/metrics", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = response.text().await.unwrap();
        for expected in [
            "hr_bridge_http_requests_total{route=\"/sync\",status=\"200\"}",
            "hr_bridge_http_request_duration_seconds_bucket{route=\"/sync\",status=\"200\"",
            "hr_bridge_auth_attempts_total{reason=\"unknown_user\"}",
            "hr_bridge_sync_users ",
            "hr_bridge_sync_bytes ",
            "hr_bridge_db_pool_connections ",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
    }
);

on_all_backends!(
    every_response_carries_a_request_id,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let response = app
            .client
            .get(format!("{}/healthz", app.base_url))
            .send()
            .await
            .unwrap();
        let id = response.headers().get("x-request-id").expect("request id");
        assert_eq!(id.len(), 36);
    }
);
