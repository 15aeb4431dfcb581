//! The deletion guard's settings follow SIGHUP: the real binary serving, its
//! configuration file edited, SIGHUP sent; the next `/sync` uses the new limits
//! and the log says what changed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{binary, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

/// A `serve` child, killed when the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn config(max_deletions: u64, min_objects: u64) -> String {
    format!(
        "[sync]\nmax_deletions = {max_deletions}\nmax_deletion_ratio = 0.2\n\
         guard_min_objects = {min_objects}\n"
    )
}

async fn sync_status(client: &reqwest::Client, port: u16) -> u16 {
    client
        .post(format!("http://127.0.0.1:{port}/sync"))
        .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

on_all_backends!(
    guard_settings_reload_on_sighup_and_the_change_is_logged,
    |db: TestDb| async move {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hr-bridge.toml");
        let log = dir.path().join("serve.log");
        std::fs::write(&file, config(1, 10)).unwrap();
        let port = free_port();
        let child = binary()
            .env("HR_BRIDGE__DATABASE__URL", &db.url)
            .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("HR_BRIDGE__OMFLOW__USERNAME", OMFLOW_USER)
            .env("HR_BRIDGE__OMFLOW__PASSWORD", OMFLOW_PASSWORD)
            .env("RUST_LOG", "info")
            .arg("--config")
            .arg(&file)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("serve starts");
        let mut server = Server(child);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                break;
            }
            assert!(server.0.try_wait().unwrap().is_none(), "serve exited");
            assert!(Instant::now() < deadline, "serve never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let pool = crate::schema::upgrade_pool(&db.settings());
        let rows: Vec<String> = (0..10)
            .map(|i| format!("('e{i:03}', 'e{i:03}@example.com', 'P', TRUE)"))
            .collect();
        pool.execute_script(&format!(
            "INSERT INTO employees (username, email, nick_name, active) VALUES {}",
            rows.join(", ")
        ))
        .await
        .unwrap();
        assert_eq!(sync_status(&client, port).await, 200);
        pool.execute_script(
            "UPDATE employees SET active = FALSE WHERE username IN ('e001', 'e002', 'e003')",
        )
        .await
        .unwrap();
        assert_eq!(sync_status(&client, port).await, 409, "max_deletions = 1");

        std::fs::write(&file, config(5, 10)).unwrap();
        let pid = server.0.id().to_string();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while sync_status(&client, port).await != 200 {
            assert!(
                Instant::now() < deadline,
                "the new limit did not apply: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Tighter again: 0 means every deletion needs approval.
        std::fs::write(&file, config(0, 10)).unwrap();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        pool.execute_script("UPDATE employees SET active = FALSE WHERE username = 'e004'")
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = 0;
        while status != 409 {
            status = sync_status(&client, port).await;
            assert!(
                Instant::now() < deadline,
                "max_deletions = 0 did not apply (last {status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            logged.contains("applied new deletion guard settings")
                && logged.contains("sync.max_deletions 1 -> 5")
                && logged.contains("sync.max_deletions 5 -> 0"),
            "{logged}"
        );
        assert!(!logged.contains("guard_min_objects 10"), "{logged}");
        pool.close().await;
        assert!(server.0.try_wait().unwrap().is_none(), "serve exited on SIGHUP");
    }
);
