//! HTTPS with rustls: serving, and reloading the certificate when its files change
//! (in-process) or on SIGHUP (the real binary).

use std::path::Path;
use std::time::Duration;

use crate::on_all_backends;

/// A self-signed certificate for `localhost`, as PEM (cert, key).
pub fn self_signed() -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (certified.cert.pem(), certified.key_pair.serialize_pem())
}

/// A client that trusts only `cert_pem` and resolves localhost to `addr`.
pub fn client_trusting(cert_pem: &str, addr: std::net::SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .resolve("localhost", addr)
        // A new handshake per request, so that a reload is seen at once.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub async fn healthz_over_tls(client: &reqwest::Client, port: u16) -> bool {
    client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

pub fn write_pair(dir: &Path, (cert, key): &(String, String)) {
    // Write the key first and the cert last, as an operator's copy would.
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
}

/// Settings for HTTPS with a fresh certificate, its files polled every second.
pub fn tls_settings(
    db: &crate::helpers::TestDb,
) -> (
    tempfile::TempDir,
    (String, String),
    hr_bridge::config::Settings,
) {
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed();
    write_pair(dir.path(), &first);
    let mut settings = db.settings();
    settings.server.tls_cert = Some(dir.path().join("cert.pem"));
    settings.server.tls_key = Some(dir.path().join("key.pem"));
    settings.server.tls_reload_poll_secs = 1;
    (dir, first, settings)
}

on_all_backends!(
    https_serves_and_reloads_a_changed_certificate,
    |db: TestDb| async move {
        let (dir, first, settings) = tls_settings(&db);
        let app = db.spawn_with(settings).await;
        assert!(app.base_url.starts_with("https://"));
        let port = app.addr.port();

        let old_client = client_trusting(&first.0, app.addr);
        assert!(healthz_over_tls(&old_client, port).await);
        let sync = old_client
            .post(format!("https://localhost:{port}/sync"))
            .basic_auth(
                crate::helpers::OMFLOW_USER,
                Some(crate::helpers::OMFLOW_PASSWORD),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(sync.status(), 200);

        let second = self_signed();
        let new_client = client_trusting(&second.0, app.addr);
        assert!(!healthz_over_tls(&new_client, port).await);
        // Let the modification time move on, then swap the files.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        write_pair(dir.path(), &second);
        let mut reloaded = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if healthz_over_tls(&new_client, port).await {
                reloaded = true;
                break;
            }
        }
        assert!(reloaded, "the new certificate was not picked up");
        assert!(!healthz_over_tls(&old_client, port).await);
    }
);

on_all_backends!(
    https_keeps_the_old_certificate_when_the_new_one_is_broken,
    |db: TestDb| async move {
        let (dir, first, settings) = tls_settings(&db);
        let app = db.spawn_with(settings).await;
        let client = client_trusting(&first.0, app.addr);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(healthz_over_tls(&client, app.addr.port()).await);
    }
);
