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

on_all_backends!(
    metrics_listen_moves_metrics_off_the_omflow_port,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.server.metrics_listen = Some("127.0.0.1:0".into());
        let app = db.spawn_with(settings).await;
        assert_eq!(app.post_sync().await.status(), 200);

        let on_main = app
            .client
            .get(format!("{}/metrics", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(on_main.status(), 404);
        assert_eq!(crate::helpers::fail_message(on_main).await, "not found");

        let metrics_addr = app.metrics_addr.expect("a separate metrics listener");
        assert_ne!(metrics_addr.port(), app.addr.port());
        let separate = app
            .client
            .get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(separate.status(), 200);
        let text = separate.text().await.unwrap();
        assert!(
            text.contains("hr_bridge_http_requests_total{route=\"/sync\",status=\"200\"}"),
            "{text}"
        );
        // The metrics listener serves nothing else, OMFLOW's endpoints least of all.
        let sync = app
            .client
            .post(format!("http://{metrics_addr}/sync"))
            .basic_auth(
                crate::helpers::OMFLOW_USER,
                Some(crate::helpers::OMFLOW_PASSWORD),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(sync.status(), 404);
        assert_eq!(crate::helpers::fail_message(sync).await, "not found");
        app.stop().await;
    }
);

on_all_backends!(
    metrics_stay_on_the_main_port_by_default,
    |db: TestDb| async move {
        let app = db.spawn().await;
        assert!(app.metrics_addr.is_none());
        let response = app
            .client
            .get(format!("{}/metrics", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
);

/// The value of an unlabelled series in Prometheus text.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

on_all_backends!(
    sync_gauges_are_restored_from_the_last_snapshot_after_a_restart,
    |db: TestDb| async move {
        let app = db.spawn().await;
        crate::guard::seed_people(&app, 3).await;
        let served = app.post_sync().await;
        assert_eq!(served.status(), 200);
        let body = served.bytes().await.unwrap();

        // A new process over the same database: no /sync yet.
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("empty.toml");
        std::fs::write(&config, "").unwrap();
        let port = crate::operator::free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut env = crate::operator::CREDENTIALS.to_vec();
        env.extend([
            ("HR_BRIDGE__DATABASE__URL", app.test_db.url.as_str()),
            ("HR_BRIDGE__SERVER__LISTEN", listen.as_str()),
            ("RUST_LOG", "debug"),
        ]);
        let mut restarted = crate::operator::Served::start(&config, &env);
        restarted.wait_for("restored the sync gauges from the last snapshot");
        let text = reqwest::get(format!("http://{listen}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(series(&text, "hr_bridge_sync_users"), Some(3.0), "{text}");
        assert_eq!(series(&text, "hr_bridge_sync_groups"), Some(2.0), "{text}");
        assert_eq!(
            series(&text, "hr_bridge_sync_bytes"),
            Some(body.len() as f64),
            "{text}"
        );
        assert!(!text.contains("hr_bridge_sync_builds_total"), "{text}");
    }
);
