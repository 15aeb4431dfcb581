//! What an operator sees from the real binary: log lines without colour codes
//! when stderr is not a terminal, and SIGHUP re-reading the configuration (saying
//! so when a change, such as switching HTTP and HTTPS, needs a restart).

use std::io::BufRead;
use std::process::{Child, Stdio};

use crate::helpers::free_port;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `hr-bridge serve` whose log lines are read as they come.
pub struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Where the lines after the last signal start.
    mark: usize,
}

impl Served {
    /// Starts `serve` with `config` as its file and `env` on top of a cleared
    /// environment; `NO_COLOR` is not set.
    pub fn start(config: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut command = crate::helpers::binary();
        command.env_remove("NO_COLOR");
        let mut child = command
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .args(["--config", config.to_str().unwrap(), "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
            mark: 0,
        }
    }

    /// The first log line since the last signal (or start) that contains `needle`,
    /// waiting for it if need be.
    pub fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen[self.mark..].iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?}; the log was:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    pub(crate) fn signal(&mut self, signal: i32) {
        self.mark = self.seen.len();
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const CREDENTIALS: &[(&str, &str)] = &[
    ("HR_BRIDGE__OMFLOW__USERNAME", "omflow"),
    ("HR_BRIDGE__OMFLOW__PASSWORD", "pw"),
];

/// A config file for a server on `port` over SQLite in `dir`, with `extra` lines
/// in its `[server]` section.
fn write_config(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    let file = dir.join("hr-bridge.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n{extra}\n\
             [database]\nurl = \"sqlite://{}/hr.db?mode=rwc\"\n",
            dir.display()
        ),
    )
    .unwrap();
    file
}

fn tls_lines(dir: &std::path::Path) -> String {
    format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\ntls_reload_poll_secs = 0",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    )
}

#[test]
fn log_lines_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port.port(), "");
    let mut served = Served::start(&config, CREDENTIALS);
    served.wait_for("listening");
    served.wait_for("database ready");
    for line in &served.seen {
        assert!(!line.contains('\u{1b}'), "colour codes in a pipe: {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_after_adding_tls_to_a_plain_server_says_a_restart_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let reserved = free_port();
    let port = reserved.port();
    let config = write_config(dir.path(), port, "");
    let mut served = Served::start(&config, CREDENTIALS);
    served.wait_for("listening");
    let healthz = format!("http://127.0.0.1:{port}/healthz");

    crate::tls::write_pair(dir.path(), &crate::tls::self_signed());
    write_config(dir.path(), port, &tls_lines(dir.path()));
    served.signal(libc::SIGHUP);
    served.wait_for("SIGHUP: re-read the configuration");
    let line = served.wait_for("needs a restart");
    assert!(line.contains("from HTTP to HTTPS"), "{line}");
    let response = reqwest::get(&healthz)
        .await
        .expect("still serving plain HTTP");
    assert_eq!(response.status(), 200);

    // A file that no longer loads is named, and the server keeps running.
    std::fs::write(&config, "[server\n").unwrap();
    served.signal(libc::SIGHUP);
    served.wait_for("the configuration does not load; keeping the running settings");
    let response = reqwest::get(&healthz).await.expect("still serving");
    assert_eq!(response.status(), 200);
    for line in &served.seen {
        assert!(!line.contains('\u{1b}'), "colour codes in a pipe: {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_after_removing_tls_says_a_restart_is_needed_and_still_reloads_the_certificate() {
    use crate::tls::{client_trusting, healthz_over_tls, self_signed, write_pair};
    let dir = tempfile::tempdir().unwrap();
    let reserved = free_port();
    let port = reserved.port();
    let first = self_signed();
    write_pair(dir.path(), &first);
    let config = write_config(dir.path(), port, &tls_lines(dir.path()));
    let mut served = Served::start(&config, CREDENTIALS);
    served.wait_for("listening");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // The certificate is renewed and TLS taken out of the file at once.
    let second = self_signed();
    write_pair(dir.path(), &second);
    write_config(dir.path(), port, "");
    served.signal(libc::SIGHUP);
    let line = served.wait_for("needs a restart");
    assert!(line.contains("from HTTPS to HTTP"), "{line}");
    served.wait_for("reloaded TLS certificate");
    assert!(healthz_over_tls(&client_trusting(&second.0, addr), port).await);
    assert!(!healthz_over_tls(&client_trusting(&first.0, addr), port).await);
}

/// A URL to the test database's server that the database refuses: a wrong
/// password (MariaDB), a role that does not exist (PostgreSQL, which trusts
/// local users), a file that cannot be opened (SQLite); and the words of the
/// refusal.
fn refused_url(db: &crate::helpers::TestDb) -> (String, &'static str) {
    use hr_bridge::db::Backend;
    let mut url = url::Url::parse(&db.url).unwrap();
    match db.backend {
        Backend::MySql => {
            url.set_password(Some("hrb-wrong-password")).unwrap();
            (url.to_string(), "Access denied")
        }
        Backend::Postgres => {
            url.set_username("hrb_no_such_role").unwrap();
            (url.to_string(), "does not exist")
        }
        Backend::Sqlite => (
            "sqlite:///hrb-no-such-directory/hr.db".to_owned(),
            "unable to open database file",
        ),
    }
}

crate::on_all_backends!(
    a_refused_database_login_is_said_once_by_every_command,
    |db: TestDb| async move {
        let (url, refusal) = refused_url(&db);
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("employees.csv");
        std::fs::write(
            &csv,
            "username,email,nick_name\nalice,a@example.com,Alice\n",
        )
        .unwrap();
        let csv = csv.to_str().unwrap();
        let commands: &[&[&str]] = &[
            &["migrate"],
            &["check"],
            &["preview"],
            &["accept-deletions"],
            &["set-password", "alice"],
            &["seed-demo", "--employees", "1", "--departments", "1"],
            &["import", "--employees", csv],
            &["import", "--employees", csv, "--dry-run"],
        ];
        for args in commands {
            let mut command = crate::helpers::binary();
            command.env("HR_BRIDGE__DATABASE__URL", &url).args(*args);
            let output = crate::helpers::run_with_stdin(&mut command, "pw\n");
            assert!(!output.status.success(), "{args:?} succeeded");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert_eq!(stderr.matches(refusal).count(), 1, "{args:?}: {stderr}");
            assert!(!stderr.contains("hrb-wrong-password"), "{args:?}: {stderr}");
        }

        // And `serve`'s log, while it waits for the database.
        let config = dir.path().join("empty.toml");
        std::fs::write(&config, "").unwrap();
        let port = free_port();
        let listen = port.addr();
        let mut env = CREDENTIALS.to_vec();
        env.extend([
            ("HR_BRIDGE__DATABASE__URL", url.as_str()),
            ("HR_BRIDGE__SERVER__LISTEN", listen.as_str()),
        ]);
        let mut served = Served::start(&config, &env);
        let line = served.wait_for("database unavailable at start-up");
        assert_eq!(line.matches(refusal).count(), 1, "{line}");
        assert!(!line.contains("hrb-wrong-password"), "{line}");
    }
);
