//! `hr-bridge accept-deletions`: approves the current data as the new snapshot,
//! so that the next `/sync` passes the deletion guard.

use std::process::ExitCode;

use super::check::report_problems;
use super::stores;
use crate::config::Settings;
use crate::directory::{self, SyncError};

pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let (db, source) = stores::open(settings)?;
    stores::check_source(&source).await?;
    let (payload, drops) = match directory::accept_deletions(&source, &db).await {
        Err(SyncError::Invalid(problems)) => return Ok(report_problems(&problems)),
        other => other?,
    };
    println!(
        "approved: the snapshot now holds {} users and {} departments; \
         the next /sync may drop {} user(s) and {} department(s) against the last one",
        payload.users, payload.groups, drops.users, drops.groups
    );
    Ok(ExitCode::SUCCESS)
}
