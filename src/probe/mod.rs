//! `hr-bridge probe URL`: checks a deployment exactly as OMFLOW will call it, from
//! any machine (TLS, Basic Auth, a contract-valid `/sync`, optionally one login),
//! prints a ✓/✗ checklist (or JSON for monitoring) and fails on any ✗.

mod body;
mod client;
mod entry;
pub mod payload;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::http::{header, HeaderValue, Method, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::escape::escape;
use body::Verdict;
use client::{Answer, Client, Reading, Target};

/// OMFLOW's Basic Auth password.
pub const PASSWORD_ENV: &str = "HR_BRIDGE_PROBE_PASSWORD";
/// The `--login` test user's password.
pub const LOGIN_PASSWORD_ENV: &str = "HR_BRIDGE_PROBE_LOGIN_PASSWORD";

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The URL OMFLOW is configured with, e.g. https://hr-bridge.example.com:8080
    pub url: String,
    /// OMFLOW's Basic Auth user name (password from $HR_BRIDGE_PROBE_PASSWORD, or
    /// prompted without echo)
    #[arg(long)]
    pub username: String,
    /// Also log in once as this employee (password from
    /// $HR_BRIDGE_PROBE_LOGIN_PASSWORD, or prompted); counts as a real attempt
    #[arg(long, value_name = "USER")]
    pub login: Option<String>,
    /// Print the results as JSON
    #[arg(long)]
    pub json: bool,
    /// Trust the certificates in this PEM file instead of the built-in web roots
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Fail when the certificate expires in fewer days than this
    #[arg(long, value_name = "DAYS", default_value_t = 14)]
    pub min_days: i64,
    /// Seconds to wait for each answer
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Stop reading the /sync answer past this many MiB (about 235 MB serve a
    /// million employees)
    #[arg(long, value_name = "MIB", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_body_mib: u64,
    /// Send the passwords over a plain http:// URL too (they travel in clear text)
    #[arg(long)]
    pub allow_http: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pass,
    Fail,
    /// Not applicable (plain HTTP) or not reachable after an earlier failure.
    Skip,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    status: Status,
    detail: String,
}

/// Figures for monitoring.
#[derive(Debug, Default, Serialize)]
struct Figures {
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_days_left: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    departments: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Report {
    url: String,
    ok: bool,
    checks: Vec<Check>,
    figures: Figures,
}

impl Report {
    fn push(&mut self, name: impl Into<String>, status: Status, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            status,
            detail: detail.into(),
        });
    }

    fn pass(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.push(name, Status::Pass, detail);
    }

    fn fail(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.push(name, Status::Fail, detail);
    }

    fn skip(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.push(name, Status::Skip, detail);
    }

    fn judge(&mut self, name: &str, result: Result<String, String>) -> bool {
        match result {
            Ok(detail) => {
                self.pass(name, detail);
                true
            }
            Err(detail) => {
                self.fail(name, detail);
                false
            }
        }
    }
}

const SYNC_OK: &str = "/sync answers 200";
const SYNC_VALID: &str = "/sync payload follows the contract";
const AUTH_REFUSED: &str = "Basic Auth refused without credentials";
const AUTH_ACCEPTED: &str = "Basic Auth accepted";

/// How far the TLS items let the probe go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// A plain `http://` URL.
    Plain,
    /// Chain, hostname and validity check out: credentials may be sent.
    Trusted,
    /// A TLS connection, but its certificate is not trusted: only requests that
    /// carry no secret.
    Untrusted,
    /// No TLS connection at all.
    Unreachable,
}

/// The secrets, read only when they may be sent.
struct Credentials {
    password: SecretString,
    login: Option<(String, SecretString)>,
}

/// Runs every check and prints the checklist; exit 1 on any ✗.
pub async fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let target = Target::parse(&args.url)?;
    if args.username.contains(':') {
        bail!("--username must not contain ':'");
    }
    // Over plain http:// the passwords would travel in clear text: without
    // --allow-http they are neither asked for nor sent.
    let credentials = if target.https || args.allow_http {
        let password = secret(
            PASSWORD_ENV,
            &format!("OMFLOW Basic Auth password for {}: ", args.username),
        )?;
        let login = match &args.login {
            Some(user) => Some((
                user.clone(),
                secret(
                    LOGIN_PASSWORD_ENV,
                    &format!("Password of test user {user}: "),
                )?,
            )),
            None => None,
        };
        Some(Credentials { password, login })
    } else {
        None
    };
    let client = Client::new(
        target.clone(),
        args.ca_cert.as_deref(),
        Duration::from_secs(args.timeout),
    )?;
    let mut report = Report {
        url: args.url.clone(),
        ok: false,
        checks: Vec::new(),
        figures: Figures::default(),
    };
    let channel = if target.https {
        check_tls(&client, &mut report, args.min_days).await
    } else {
        report.skip(
            "TLS",
            "plain http:// URL, nothing to check; OMFLOW should reach hr-bridge over HTTPS \
             (hr-bridge's own TLS or a proxy in front)",
        );
        Channel::Plain
    };
    let not_run = |report: &mut Report, names: &[&str], why: &str| {
        for name in names {
            report.skip(*name, format!("not run: {why}"));
        }
        if let Some(user) = &args.login {
            report.skip(format!("/authenticate {user}"), format!("not run: {why}"));
        }
    };
    match (channel, credentials) {
        (Channel::Unreachable, _) => not_run(
            &mut report,
            &[AUTH_REFUSED, AUTH_ACCEPTED, SYNC_OK, SYNC_VALID],
            "no TLS connection",
        ),
        (Channel::Untrusted, _) => {
            // This request sends no secret, so an untrusted server may see it.
            check_refused(&client, &mut report, false).await;
            not_run(
                &mut report,
                &[AUTH_ACCEPTED, SYNC_OK, SYNC_VALID],
                "credentials are only sent over a trusted TLS connection",
            );
        }
        (_, None) => {
            check_refused(&client, &mut report, true).await;
            report.fail(
                AUTH_ACCEPTED,
                "not sent: over http:// the passwords would travel in clear text; use the \
                 https:// URL, or pass --allow-http when the path to the server is trusted \
                 (the same host, or a private link to a TLS proxy)",
            );
            not_run(
                &mut report,
                &[SYNC_OK, SYNC_VALID],
                "no credentials were sent",
            );
        }
        (_, Some(credentials)) => {
            check_refused(&client, &mut report, true).await;
            let limit = args.max_body_mib.saturating_mul(1 << 20);
            check_http(&client, &mut report, &args.username, credentials, limit).await;
        }
    }
    report.ok = report.checks.iter().all(|c| c.status != Status::Fail);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("cannot render the report")?
        );
    } else {
        print_checklist(&report);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The TLS items, and whether credentials may be sent.
async fn check_tls(client: &Client, report: &mut Report, min_days: i64) -> Channel {
    let tls = match client.inspect_tls().await {
        Ok(tls) => tls,
        Err(e) => {
            report.fail("TLS handshake", format!("{e:#}"));
            return Channel::Unreachable;
        }
    };
    report.pass("TLS handshake", format!("{}, {}", tls.version, tls.suite));
    report.judge(
        "TLS version ≥ 1.2",
        if tls.version_ok {
            Ok(tls.version.clone())
        } else {
            Err(format!("{} is older than TLS 1.2", tls.version))
        },
    );
    let chain = report.judge(
        "certificate chain",
        tls.chain
            .clone()
            .map(|()| {
                if tls.pinned {
                    "trusted (the server's own certificate, given with --ca-cert)".to_owned()
                } else {
                    "trusted".to_owned()
                }
            })
            .map_err(|e| format!("not trusted: {e}")),
    );
    let hostname = report.judge(
        "certificate hostname",
        tls.hostname.clone().map(|()| "matches the URL".to_owned()),
    );
    let days = tls.seconds_left.div_euclid(86_400);
    report.figures.certificate_days_left = Some(days);
    let expiry = report.judge(
        "certificate expiry",
        if tls.seconds_left <= 0 {
            Err(format!(
                "expired on {} ({} day(s) ago)",
                tls.not_after, -days
            ))
        } else if days < min_days {
            Err(format!(
                "expires on {} in {days} day(s), fewer than {min_days}",
                tls.not_after
            ))
        } else {
            Ok(format!("{days} day(s) left (until {})", tls.not_after))
        },
    );
    // A certificate close to expiry still carries credentials safely.
    if chain && hostname && (expiry || tls.seconds_left > 0) {
        Channel::Trusted
    } else {
        Channel::Untrusted
    }
}

/// `/sync` without credentials must be refused with a Basic challenge.
async fn check_refused(client: &Client, report: &mut Report, verified: bool) {
    let over = if verified {
        ""
    } else {
        " (asked over the untrusted connection; nothing secret was sent)"
    };
    let result = match client
        .request_without_secrets(Method::POST, "/sync", verified)
        .await
    {
        Ok(answer) => {
            let challenge = answer
                .headers
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if answer.status != StatusCode::UNAUTHORIZED {
                Err(format!(
                    "answered {} without credentials (expected 401){over}",
                    answer.status
                ))
            } else if !challenge.to_ascii_lowercase().starts_with("basic") {
                Err(format!(
                    "401 without a Basic WWW-Authenticate challenge ({challenge:?}){over}"
                ))
            } else {
                Ok(format!("401 with WWW-Authenticate: {challenge}{over}"))
            }
        }
        Err(e) => Err(format!("{e:#}")),
    };
    report.judge(AUTH_REFUSED, result);
}

async fn check_http(
    client: &Client,
    report: &mut Report,
    username: &str,
    credentials: Credentials,
    max_body: u64,
) {
    let credential = format!("{username}:{}", credentials.password.expose_secret());
    let Ok(authorization) =
        HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(credential)))
    else {
        report.fail(AUTH_ACCEPTED, "the credentials cannot be sent in a header");
        return;
    };
    let sync = match client
        .request(
            Method::POST,
            "/sync",
            &authorization,
            None,
            Reading::Payload { limit: max_body },
        )
        .await
    {
        Ok(answer) => answer,
        Err(e) => {
            report.fail(AUTH_ACCEPTED, format!("{e:#}"));
            report.skip(SYNC_OK, "not run");
            report.skip(SYNC_VALID, "not run");
            return;
        }
    };
    if sync.status == StatusCode::UNAUTHORIZED {
        report.fail(
            AUTH_ACCEPTED,
            format!(
                "401 for user {username:?}: the user name or password is wrong ({})",
                message_of(&sync)
            ),
        );
        report.skip(SYNC_OK, "not run: Basic Auth was refused");
        report.skip(SYNC_VALID, "not run: Basic Auth was refused");
    } else {
        report.pass(AUTH_ACCEPTED, format!("user {username:?}"));
        check_sync(report, &sync);
    }

    if let Some((user, password)) = credentials.login {
        let name = format!("/authenticate {user}");
        let body = serde_json::json!({"username": user, "password": password.expose_secret()});
        let result = match client
            .request(
                Method::POST,
                "/authenticate",
                &authorization,
                Some(body.to_string().into_bytes()),
                Reading::Short,
            )
            .await
        {
            Ok(answer) => {
                let verdict = serde_json::from_slice::<serde_json::Value>(&answer.short.bytes)
                    .ok()
                    .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned));
                if answer.status == StatusCode::OK && verdict.as_deref() == Some("success") {
                    Ok(format!("success in {:.3} s", answer.elapsed.as_secs_f64()))
                } else {
                    Err(format!("{}: {}", answer.status, message_of(&answer)))
                }
            }
            Err(e) => Err(format!("{e:#}")),
        };
        report.judge(&name, result);
    }
}

fn check_sync(report: &mut Report, sync: &Answer) {
    let seconds = sync.elapsed.as_secs_f64();
    report.figures.sync_seconds = Some((seconds * 1000.0).round() / 1000.0);
    if sync.status != StatusCode::OK {
        report.fail(SYNC_OK, format!("{}: {}", sync.status, message_of(sync)));
        report.skip(SYNC_VALID, "not run: no payload");
        return;
    }
    let Some(payload) = &sync.payload else {
        let content_type = sync
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        report.fail(
            SYNC_OK,
            format!("200 with Content-Type {content_type:?}, not application/json"),
        );
        report.skip(SYNC_VALID, "not run: not JSON");
        return;
    };
    report.figures.sync_bytes = Some(payload.bytes);
    let result = match &payload.verdict {
        Verdict::TooLarge { limit } => {
            report.fail(
                SYNC_OK,
                format!(
                    "the answer is larger than {} MiB: stopped reading there (raise \
                     --max-body-mib if the directory really is that large)",
                    limit >> 20
                ),
            );
            report.skip(SYNC_VALID, "not run: the answer was not read in full");
            return;
        }
        Verdict::Checked(result) => result,
    };
    report.pass(
        SYNC_OK,
        format!("{} bytes in {seconds:.3} s", payload.bytes),
    );
    match result {
        Ok(summary) => {
            report.figures.users = Some(summary.users);
            report.figures.departments = Some(summary.groups);
            report.pass(
                SYNC_VALID,
                format!(
                    "{} user(s), {} department(s)",
                    summary.users, summary.groups
                ),
            );
        }
        Err(problems) => {
            const SHOWN: usize = 10;
            let mut detail = format!("{} problem(s): ", problems.total);
            detail.push_str(
                &problems
                    .shown
                    .iter()
                    .take(SHOWN)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            let shown = problems.shown.len().min(SHOWN);
            if problems.total > shown {
                detail.push_str(&format!("; and {} more", problems.total - shown));
            }
            report.fail(SYNC_VALID, detail);
        }
    }
}

/// The fail envelope's message, or a short description of a body without one.
fn message_of(answer: &Answer) -> String {
    let body = &answer.short;
    serde_json::from_slice::<serde_json::Value>(&body.bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| {
            format!(
                "{}{} byte(s) without a fail envelope",
                if body.truncated { "over " } else { "" },
                body.bytes.len()
            )
        })
}

fn print_checklist(report: &Report) {
    println!("hr-bridge probe {}", escape(&report.url));
    for check in &report.checks {
        let mark = match check.status {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Skip => "-",
        };
        println!("{mark} {}: {}", escape(&check.name), escape(&check.detail));
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .count();
    if failed == 0 {
        println!("OK: the deployment answers as OMFLOW expects");
    } else {
        println!("FAILED: {failed} check(s) failed");
    }
}

/// A password from `env`, else prompted without echo on a terminal.
fn secret(env: &str, prompt: &str) -> anyhow::Result<SecretString> {
    if let Some(value) = std::env::var_os(env) {
        let value = value
            .into_string()
            .map_err(|_| anyhow::anyhow!("${env} is not valid UTF-8"))?;
        return Ok(SecretString::from(value));
    }
    if !std::io::stdin().is_terminal() {
        bail!("set {env} (no terminal to prompt for the password)");
    }
    let value = rpassword::prompt_password(prompt).context("cannot read the password")?;
    Ok(SecretString::from(value))
}
