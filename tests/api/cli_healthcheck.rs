//! `hr-bridge healthcheck`, the container's `HEALTHCHECK`: against the real binary
//! serving, it finds the server from the same settings as `serve` (environment or
//! file, plain or HTTPS, an unspecified listen address), exits 0 while `/healthz`
//! answers 200 and 1 with one line on stderr otherwise.

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{free_port, FreePort, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

/// The binary with a clean environment pointing at `db_url`.
fn hr_bridge(db_url: &str) -> Command {
    let mut command = crate::helpers::binary();
    command.env("HR_BRIDGE__DATABASE__URL", db_url);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `serve` child that is killed if the test fails before stopping it.
struct Server(Child);

impl Server {
    /// Starts `make(port) serve` on a reserved loopback port and waits until
    /// it accepts connections; the port stays reserved with the returned
    /// [`FreePort`]. A start that finds its port taken after all (the child's
    /// bind is refused) is tried again on another port, up to five times.
    fn start(make: impl Fn(u16) -> Command) -> (Self, FreePort) {
        for _ in 0..5 {
            let reserved = free_port();
            let port = reserved.port();
            let errors = tempfile::NamedTempFile::new().expect("a file for stderr");
            let child = make(port)
                .arg("serve")
                .env("HR_BRIDGE__OMFLOW__USERNAME", OMFLOW_USER)
                .env("HR_BRIDGE__OMFLOW__PASSWORD", OMFLOW_PASSWORD)
                .stdout(Stdio::null())
                .stderr(errors.reopen().expect("stderr file"))
                .spawn()
                .expect("serve starts");
            let mut server = Self(child);
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut taken = false;
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = server.0.try_wait().expect("wait") {
                    let stderr = std::fs::read_to_string(errors.path()).unwrap_or_default();
                    assert!(
                        stderr.contains("Address already in use"),
                        "serve exited early: {status}\n{stderr}"
                    );
                    taken = true;
                    break;
                }
                assert!(Instant::now() < deadline, "serve did not listen in 30 s");
                std::thread::sleep(Duration::from_millis(50));
            }
            if !taken {
                return (server, reserved);
            }
        }
        panic!("serve found its port taken five times");
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn assert_one_line_failure(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
}

on_all_backends!(
    healthcheck_finds_the_server_from_the_serve_settings,
    |db: TestDb| async move {
        // The container's own setting: every address, reached on loopback. The
        // port stays reserved to the end: once the server stops, nothing else
        // may answer there.
        let (server, reserved) = Server::start(|port| {
            let mut serve = hr_bridge(&db.url);
            serve.env("HR_BRIDGE__SERVER__LISTEN", format!("0.0.0.0:{port}"));
            serve
        });
        let port = reserved.port();
        let listen = format!("0.0.0.0:{port}");

        let output = hr_bridge(&db.url)
            .env("HR_BRIDGE__SERVER__LISTEN", &listen)
            .arg("healthcheck")
            .output()
            .expect("healthcheck runs");
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(
            text(&output.stdout).contains(&format!("http://127.0.0.1:{port}/healthz")),
            "{}",
            text(&output.stdout)
        );

        assert!(server.stop().success());
        let output = hr_bridge(&db.url)
            .env("HR_BRIDGE__SERVER__LISTEN", &listen)
            .arg("healthcheck")
            .output()
            .expect("healthcheck runs");
        assert_one_line_failure(&output, "cannot connect");
    }
);

#[test]
fn healthcheck_speaks_https_when_the_config_file_sets_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    crate::tls::write_pair(dir.path(), &crate::tls::self_signed());
    let file = dir.path().join("hr-bridge.toml");
    let url = format!("sqlite://{}/hr.db?mode=rwc", dir.path().display());
    let (server, reserved) = Server::start(|port| {
        std::fs::write(
            &file,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\n",
                dir.path().join("cert.pem"),
                dir.path().join("key.pem")
            ),
        )
        .expect("write config");
        let mut serve = hr_bridge(&url);
        serve.env("HR_BRIDGE_CONFIG", &file);
        serve
    });
    let port = reserved.port();

    // The same file, once through the environment (as in a container) and once
    // through --config.
    let output = hr_bridge(&url)
        .env("HR_BRIDGE_CONFIG", &file)
        .arg("healthcheck")
        .output()
        .expect("healthcheck runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains(&format!("https://127.0.0.1:{port}/healthz")));
    let output = hr_bridge(&url)
        .args([
            "--config",
            file.to_str().expect("utf-8 path"),
            "healthcheck",
        ])
        .output()
        .expect("healthcheck runs");
    assert!(output.status.success(), "{}", text(&output.stderr));

    // Plain HTTP to the TLS port is no answer: the scheme really follows the file.
    let output = hr_bridge(&url)
        .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .arg("healthcheck")
        .output()
        .expect("healthcheck runs");
    assert_one_line_failure(&output, "no HTTP answer");
    assert!(server.stop().success());
}

#[test]
fn healthcheck_fails_on_an_answer_other_than_200() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let answering = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = [0u8; 1024];
        let read = stream.read(&mut request).expect("read request");
        let request = String::from_utf8_lossy(&request[..read]).into_owned();
        stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .expect("answer");
        request
    });
    let output = hr_bridge("sqlite::memory:")
        .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .arg("healthcheck")
        .output()
        .expect("healthcheck runs");
    assert_one_line_failure(&output, "answered HTTP 503");
    let request = answering.join().expect("fake server");
    assert!(
        request.starts_with("GET /healthz HTTP/1.1\r\n"),
        "{request}"
    );
}

#[test]
fn healthcheck_refuses_a_random_port() {
    let output = hr_bridge("sqlite::memory:")
        .env("HR_BRIDGE__SERVER__LISTEN", "127.0.0.1:0")
        .arg("healthcheck")
        .output()
        .expect("healthcheck runs");
    assert_one_line_failure(&output, "port 0");
}
