//! `/healthz` and `/readyz`, including a database outage and recovery.

use crate::helpers::{fail_message, url_socket_addr, Proxy};
use crate::on_all_backends;

on_all_backends!(
    healthz_and_readyz_answer_200_when_all_is_well,
    |db: TestDb| async move {
        let app = db.spawn().await;
        for path in ["/healthz", "/readyz"] {
            let response = app
                .client
                .get(format!("{}{path}", app.base_url))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
        }
    }
);

on_all_backends!(
    readyz_is_503_until_migrations_are_applied,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.database.auto_migrate = false;
        let app = db.spawn_with(settings).await;
        let url = format!("{}/readyz", app.base_url);
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 503);
        assert!(fail_message(response).await.contains("migrat"));
        app.db.migrate().await.unwrap();
        assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
    }
);

on_all_backends!(
    readyz_and_sync_report_a_database_outage_and_recover,
    |db: TestDb| async move {
        if db.backend == Backend::Sqlite {
            return; // an embedded file cannot become unreachable; see the migration test
        }
        let proxy = Proxy::start(url_socket_addr(&db.url)).await;
        let settings = db.settings_through(&proxy);
        let app = db.spawn_with(settings).await;
        let ready = format!("{}/readyz", app.base_url);
        assert_eq!(app.client.get(&ready).send().await.unwrap().status(), 200);

        proxy.cut();
        let response = app.client.get(&ready).send().await.unwrap();
        assert_eq!(response.status(), 503);
        fail_message(response).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 503);
        assert_eq!(fail_message(response).await, "database unavailable");
        // /healthz is about the process, not the database.
        let health = app
            .client
            .get(format!("{}/healthz", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);

        proxy.restore();
        let mut recovered = false;
        for _ in 0..20 {
            if app.client.get(&ready).send().await.unwrap().status() == 200 {
                recovered = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        assert!(
            recovered,
            "/readyz did not recover after the database came back"
        );
        assert_eq!(app.post_sync().await.status(), 200);
    }
);
