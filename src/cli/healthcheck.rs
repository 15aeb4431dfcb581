//! `hr-bridge healthcheck`: exit 0 when the local server, as configured for
//! `serve`, answers `/healthz`; for a container's `HEALTHCHECK`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::config::ServerSettings;
use crate::healthcheck::{check, Target};

pub async fn run(server: &ServerSettings, timeout: u64) -> anyhow::Result<ExitCode> {
    let target = Target::from_settings(server)?;
    let url = target.url();
    tokio::task::spawn_blocking(move || check(&target, Duration::from_secs(timeout)))
        .await
        .context("health check task failed")??;
    println!("healthy: {url} answered 200");
    Ok(ExitCode::SUCCESS)
}
