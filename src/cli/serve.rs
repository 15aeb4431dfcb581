//! `hr-bridge serve [--demo]`: runs the HTTP(S) server until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::app::{Application, Options};
use crate::config::{PublicOrigin, Settings};
use crate::server::reload::Loader;

pub async fn run(
    settings: Settings,
    demo: bool,
    config: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    // SIGHUP re-reads the settings from the same file and environment.
    let reload: Loader = Arc::new(move || Settings::load(config.as_deref()));
    let public_origin = settings.admin.public_origin.clone();
    let app = Application::build(
        settings,
        Options {
            demo,
            reload: Some(reload),
            ..Options::default()
        },
    )
    .await?;
    if demo {
        print_demo_banner(&app, public_origin.as_ref());
    }
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

fn print_demo_banner(app: &Application, public_origin: Option<&PublicOrigin>) {
    let notes = app.demo();
    for line in &notes.lines {
        println!("{line}");
    }
    let mut addr = app.local_addr();
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let scheme = if app.base_url().starts_with("https") {
        "https"
    } else {
        "http"
    };
    let insecure = if scheme == "https" { "-k " } else { "" };
    // Only a generated password is printed; a configured one is the operator's.
    if let Some(password) = &notes.generated_password {
        let user = "omflow";
        println!(
            "demo: OMFLOW Basic Auth is {user} / {} (generated for this run only)",
            password.expose_secret()
        );
        println!(
            "try:  curl {insecure}-u '{user}:{}' -X POST {scheme}://{addr}/sync",
            password.expose_secret()
        );
    }
    // The console answers only to its own address (and localhost), or to
    // admin.public_origin when that is set: print the URL it accepts.
    if let Some(admin) = app.admin_addr() {
        let url = match public_origin {
            Some(public) => format!("{public}/"),
            None => format!("{scheme}://{admin}/"),
        };
        println!("demo: the web console is at {url} (sign in with an operator's HR login)");
    }
    println!("demo: serving on {scheme}://{addr}; stop with Ctrl-C");
}
