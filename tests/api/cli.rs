//! The real `hr-bridge` binary: every command, its exit codes and its messages.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::free_port;
use crate::on_all_backends;
use hr_bridge::password::StoredHash;
use secrecy::SecretString;

/// The binary with a clean environment pointing at `db_url`.
fn hr_bridge(db_url: &str) -> Command {
    let mut command = crate::helpers::binary();
    command.env("HR_BRIDGE__DATABASE__URL", db_url);
    command
}

fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    crate::helpers::run_with_stdin(&mut command, stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Lines a child prints on stdout, readable with a timeout.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the server did not stop within 10 s of SIGTERM");
}

#[test]
fn hash_password_prints_a_verifiable_argon2id_hash() {
    let mut command = hr_bridge("sqlite::memory:");
    command.arg("hash-password");
    let output = run_with_stdin(command, "pa ss:word\n");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let phc = text(&output.stdout).trim().to_owned();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let hash = StoredHash::parse(&phc).unwrap();
    assert!(hash.verify(&SecretString::from("pa ss:word")));
    assert!(!hash.verify(&SecretString::from("pa ss:word\n")));
}

#[test]
fn hash_password_refuses_an_empty_password() {
    let mut command = hr_bridge("sqlite::memory:");
    command.arg("hash-password");
    let output = run_with_stdin(command, "\n");
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("the password is empty"));
}

#[test]
fn serve_refuses_to_start_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
    let output = hr_bridge(&url).arg("serve").output().unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("omflow.username") && stderr.contains("omflow.password_hash"),
        "{stderr}"
    );
}

#[test]
fn invalid_configuration_names_the_key() {
    let output = hr_bridge("sqlite::memory:")
        .env("HR_BRIDGE__DATABASE__MAX_CONNECTIONS", "lots")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("max_connections"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr-bridge.toml");
    std::fs::write(
        &file,
        "[omflow]\nusername = \"omflow\"\npassword = \"in-a-file\"\n",
    )
    .unwrap();
    let output = hr_bridge("sqlite::memory:")
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("omflow.password") && stderr.contains("environment"),
        "{stderr}"
    );
    assert!(!stderr.contains("in-a-file"), "the secret leaked: {stderr}");

    std::fs::write(&file, "[server]\nlisten = \"nowhere\"\n").unwrap();
    let output = hr_bridge("sqlite::memory:")
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert!(text(&output.stderr).contains("server.listen"));
}

on_all_backends!(
    migrate_then_set_password_lets_the_employee_log_in,
    |db: TestDb| async move {
        let output = hr_bridge(&db.url).arg("migrate").output().unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(text(&output.stdout).contains("migrations applied"));
        let app = db.spawn().await;
        crate::authenticate::add_employee(&app, "alice", None, true).await;

        let mut command = hr_bridge(&app.test_db.url);
        command.args(["set-password", "alice"]);
        let output = run_with_stdin(command, "n3w-secret\r\n");
        assert!(output.status.success(), "{}", text(&output.stderr));
        let response = app.post_authenticate("alice", "n3w-secret").await;
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap()["status"],
            "success"
        );

        let mut command = hr_bridge(&app.test_db.url);
        command.args(["set-password", "nobody"]);
        let output = run_with_stdin(command, "whatever\n");
        assert_eq!(output.status.code(), Some(1));
        assert!(text(&output.stderr).contains("no employee with username \"nobody\""));
    }
);

on_all_backends!(
    check_lists_each_problem_and_exits_1,
    |db: TestDb| async move {
        let app = db.spawn().await;
        crate::sync::seed_basic(&app).await;
        let output = hr_bridge(&app.test_db.url).arg("check").output().unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(text(&output.stdout).contains("OK"));

        app.exec(
            "INSERT INTO departments (group_no, display_name, parent_group_no, active) \
             VALUES ('SUB', 'Sub of old', 'OLD', TRUE);
         INSERT INTO departments (group_no, display_name, parent_group_no, active) \
             VALUES ('SUB2', 'Sub two', 'OLD', TRUE);",
        )
        .await;
        let output = hr_bridge(&app.test_db.url).arg("check").output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stdout = text(&output.stdout);
        assert_eq!(stdout.lines().count(), 2, "{stdout}");
        assert!(stdout.contains("\"SUB\" has parent \"OLD\", which is inactive"));
        assert!(stdout.contains("\"SUB2\" has parent \"OLD\", which is inactive"));
    }
);

on_all_backends!(
    seed_demo_fills_an_empty_database_only,
    |db: TestDb| async move {
        let output = hr_bridge(&db.url)
            .args(["seed-demo", "--employees", "250", "--departments", "12"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        let password = stdout
            .rsplit("password is: ")
            .next()
            .unwrap()
            .trim()
            .to_owned();
        let url = db.url.clone();
        let app = db.spawn().await;
        let body: serde_json::Value = app.post_sync().await.json().await.unwrap();
        assert_eq!(body["user_info_list"].as_array().unwrap().len(), 250);
        let groups = body["group_info_list"].as_array().unwrap();
        assert_eq!(groups.len(), 12);
        let memberships: usize = groups
            .iter()
            .map(|g| g["user_list"].as_array().unwrap().len())
            .sum();
        assert_eq!(memberships, 300);
        let response = app.post_authenticate("user000", &password).await;
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap()["status"],
            "success"
        );

        let again = hr_bridge(&url)
            .args(["seed-demo", "--employees", "5", "--departments", "1"])
            .output()
            .unwrap();
        assert!(!again.status.success());
        assert!(text(&again.stderr).contains("empty"));
    }
);

on_all_backends!(
    serve_demo_prints_a_working_curl_and_stops_on_sigterm,
    |db: TestDb| async move {
        let reserved = free_port();
        let port = reserved.port();
        // The demo's console would take 127.0.0.1:8081, shared by the three
        // backends' runs: give it a free port.
        let admin_reserved = free_port();
        let admin_port = admin_reserved.port();
        let mut child = hr_bridge(&db.url)
            .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "HR_BRIDGE__ADMIN__LISTEN",
                format!("127.0.0.1:{admin_port}"),
            )
            .args(["serve", "--demo"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = stdout_lines(&mut child);
        let mut curl = None;
        let mut banner = Vec::new();
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) {
            if let Some(rest) = line.strip_prefix("try:") {
                curl = Some(rest.trim().to_owned());
            }
            banner.push(line.clone());
            if line.contains("serving on") {
                break;
            }
        }
        let curl = curl.expect("a curl example was printed");
        // No admin.* people set: the first employee runs the console.
        let banner = banner.join("\n");
        assert!(
            banner.contains(&format!(
                "the web console is at http://127.0.0.1:{admin_port}/"
            )),
            "{banner}"
        );
        assert!(
            banner.contains("alice (the first employee) is a console operator"),
            "{banner}"
        );
        // curl -u 'omflow:PASSWORD' -X POST http://127.0.0.1:PORT/sync
        let credentials = curl.split('\'').nth(1).unwrap();
        let (user, password) = credentials.split_once(':').unwrap();
        let url = curl.rsplit(' ').next().unwrap();
        assert_eq!(url, format!("http://127.0.0.1:{port}/sync"));
        let response = reqwest::Client::new()
            .post(url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["user_info_list"].as_array().unwrap().len(), 10);
        terminate(&child);
        assert!(wait_for_exit(&mut child).success());
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reloads_the_tls_certificate_on_sighup() {
    use crate::tls::{client_trusting, healthz_over_tls, self_signed, write_pair};
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed();
    write_pair(dir.path(), &first);
    let reserved = free_port();
    let port = reserved.port();
    let url = format!("sqlite://{}/hr.db?mode=rwc", dir.path().display());
    let mut child = hr_bridge(&url)
        .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HR_BRIDGE__SERVER__TLS_CERT", dir.path().join("cert.pem"))
        .env("HR_BRIDGE__SERVER__TLS_KEY", dir.path().join("key.pem"))
        .env("HR_BRIDGE__SERVER__TLS_RELOAD_POLL_SECS", "0")
        .env("HR_BRIDGE__OMFLOW__USERNAME", "omflow")
        .env("HR_BRIDGE__OMFLOW__PASSWORD", "pw")
        .arg("serve")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let old_client = client_trusting(&first.0, addr);
    let mut up = false;
    for _ in 0..100 {
        if healthz_over_tls(&old_client, port).await {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the TLS server did not come up");
    let second = self_signed();
    write_pair(dir.path(), &second);
    let new_client = client_trusting(&second.0, addr);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Polling is off: only SIGHUP may switch the certificate.
    assert!(healthz_over_tls(&old_client, port).await);
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut reloaded = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if healthz_over_tls(&new_client, port).await {
            reloaded = true;
            break;
        }
    }
    terminate(&child);
    assert!(wait_for_exit(&mut child).success());
    assert!(reloaded, "SIGHUP did not reload the certificate");
}

on_all_backends!(passwords_never_reach_the_logs, |db: TestDb| async move {
    let reserved = free_port();
    let port = reserved.port();
    let app = db.spawn().await;
    crate::authenticate::add_employee(
        &app,
        "alice",
        Some(&crate::authenticate::argon2id("Right-Pa55word")),
        true,
    )
    .await;
    let child = hr_bridge(&app.test_db.url)
        .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HR_BRIDGE__OMFLOW__USERNAME", "omflow")
        .env("HR_BRIDGE__OMFLOW__PASSWORD", "Omflow-Pa55word")
        .env("HR_BRIDGE__LOG__FORMAT", "json")
        .env("RUST_LOG", "debug")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{url}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server did not come up");
    for password in ["Right-Pa55word", "Wrong-Pa55word"] {
        let response = client
            .post(format!("{url}/authenticate"))
            .basic_auth("omflow", Some("Omflow-Pa55word"))
            .json(&serde_json::json!({"username": "alice", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let bad_auth = client
        .post(format!("{url}/sync"))
        .basic_auth("omflow", Some("Guessed-Pa55word"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_auth.status(), 401);
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let logs = text(&output.stderr);
    assert!(
        logs.contains("authenticate"),
        "debug logs were written: {logs}"
    );
    for secret in [
        "Right-Pa55word",
        "Wrong-Pa55word",
        "Omflow-Pa55word",
        "Guessed-Pa55word",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
});

#[test]
fn both_omflow_passwords_stop_start_up_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
    let hash = crate::authenticate::argon2id("hashed-secret");
    let port = free_port();
    let mut child = hr_bridge(&url)
        .env("HR_BRIDGE__SERVER__LISTEN", port.addr())
        .env("HR_BRIDGE__OMFLOW__USERNAME", "omflow")
        .env("HR_BRIDGE__OMFLOW__PASSWORD", "plain-secret")
        .env("HR_BRIDGE__OMFLOW__PASSWORD_HASH", &hash)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A server that started anyway is stopped, and the test fails, not hangs.
    let mut exited = false;
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    assert!(exited, "serve started with both passwords set");
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("both omflow.password and omflow.password_hash are set"),
        "{stderr}"
    );
    assert!(!stderr.contains("plain-secret") && !stderr.contains(&hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_warns_at_start_up_that_the_deletion_guard_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/hr.db?mode=rwc", dir.path().display());
    let reserved = free_port();
    let port = reserved.port();
    let child = hr_bridge(&url)
        .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HR_BRIDGE__OMFLOW__USERNAME", "omflow")
        .env("HR_BRIDGE__OMFLOW__PASSWORD", "pw")
        .env("HR_BRIDGE__SYNC__GUARD", "off")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        let healthz = format!("http://127.0.0.1:{port}/healthz");
        if client.get(healthz).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    assert!(up, "the server did not come up");
    assert!(output.status.success());
    let logs = text(&output.stderr);
    let warning = logs
        .lines()
        .find(|l| l.contains("the deletion guard is OFF (sync.guard = \"off\")"))
        .unwrap_or_else(|| panic!("no warning in: {logs}"));
    assert!(warning.contains("WARN"), "{warning}");
}

#[test]
fn an_unknown_guard_switch_names_the_key() {
    let output = hr_bridge("sqlite::memory:")
        .env("HR_BRIDGE__SYNC__GUARD", "0")
        .arg("check")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("sync.guard must be \"on\" or \"off\", not \"0\""),
        "{stderr}"
    );
}

#[test]
fn the_example_configuration_loads_and_shows_every_documented_key() {
    let example = crate::helpers::repo_path("config/hr-bridge.example.toml");
    let output = hr_bridge("sqlite::memory:")
        .args(["--config", example.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    // Every key of the configuration reference's table (docs/configuration.md,
    // linked from the README), set or commented out, in its section of the example.
    let table = crate::helpers::repo_file("docs/configuration.md");
    let example = crate::helpers::repo_file("config/hr-bridge.example.toml");
    let mut section = String::new();
    let mut shown = std::collections::BTreeSet::new();
    for line in example.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, _)) = line.split_once('=') {
            shown.insert(format!("{section}.{}", key.trim()));
        }
    }
    let documented: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| l.split('|').nth(1).unwrap().split('`').skip(1).step_by(2))
        .collect();
    assert!(documented.len() > 30, "{documented:?}");
    let missing: Vec<&&str> = documented
        .iter()
        .filter(|key| !shown.contains(**key))
        // A secret is shown as its environment variable, the only place for it.
        .filter(|key| {
            let env = format!("HR_BRIDGE__{}", key.replace('.', "__").to_uppercase());
            !example.contains(&env)
        })
        .collect();
    assert!(missing.is_empty(), "not in the example: {missing:?}");
}

/// `probe` checks another machine: a broken local configuration (a file that
/// does not parse, named by `--config` or `HR_BRIDGE_CONFIG`, or a bad
/// `HR_BRIDGE__…` variable) is none of its business and must not stop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_ignores_a_broken_local_configuration() {
    let Some(db) = crate::helpers::TestDb::create(hr_bridge::db::Backend::Sqlite).await else {
        return;
    };
    let app = db.spawn().await;
    crate::guard::seed_people(&app, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[server\nlisten = ").unwrap();
    let base_url = app.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        hr_bridge("not-a-database-url")
            .env("HR_BRIDGE_CONFIG", &broken)
            .env("HR_BRIDGE__SERVER__LISTEN", "nowhere")
            .env("HR_BRIDGE__NO_SUCH__KEY", "x")
            .env("HR_BRIDGE_PROBE_PASSWORD", crate::helpers::OMFLOW_PASSWORD)
            .args(["--config", broken.to_str().unwrap()])
            .args([
                "probe",
                &base_url,
                "--username",
                crate::helpers::OMFLOW_USER,
            ])
            .arg("--allow-http")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("OK: the deployment answers as OMFLOW expects"),
        "{stdout}"
    );
}

/// The configuration checks an `omflow.password_hash`'s form; its cost is
/// checked against the password caps when `serve` builds the credential, and
/// refused in the same words, naming the key.
#[test]
fn an_omflow_hash_beyond_the_cost_caps_stops_serve_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
    // 1 GiB of memory: a valid Argon2 PHC string far beyond the caps.
    let hash = "$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHQ$\
                Yl7B3jLdQ2cE3BqH0dJZ1Qo5mXq2Gq0m8QmYkq6cNbk";
    let port = free_port();
    let output = hr_bridge(&url)
        .env("HR_BRIDGE__SERVER__LISTEN", port.addr())
        .env("HR_BRIDGE__OMFLOW__USERNAME", "omflow")
        .env("HR_BRIDGE__OMFLOW__PASSWORD_HASH", hash)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "configuration error: omflow.password_hash is not an Argon2 PHC string: \
             the password hash asks for more work than the caps allow"
        ),
        "{stderr}"
    );
}
