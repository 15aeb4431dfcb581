//! `hr-bridge migrate`: applies the migrations and exits.

use std::process::ExitCode;

use super::stores;
use crate::config::Settings;

pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let (db, source) = stores::open(settings)?;
    stores::migrate(&db, &source).await?;
    println!("migrations applied ({})", db.backend().name());
    Ok(ExitCode::SUCCESS)
}
