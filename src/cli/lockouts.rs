//! `hr-bridge lockouts [--json]`: the accounts locked now.

use std::process::ExitCode;

use super::stores;
use crate::config::Settings;
use crate::escape::escape;
use crate::ops::lockouts;

pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let db = stores::state(settings)?;
    let locked = lockouts::locked(&db).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&locked)?);
        return Ok(ExitCode::SUCCESS);
    }
    if locked.is_empty() {
        println!("no account is locked");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<20}  {:>8}  USERNAME", "LOCKED UNTIL (UTC)", "FAILURES");
    for lockout in &locked {
        println!(
            "{:<20}  {:>8}  {}",
            lockout.locked_until_rfc3339,
            lockout.failures,
            escape(&lockout.username)
        );
    }
    println!(
        "{} account(s) locked; `hr-bridge unlock USERNAME` lifts one",
        locked.len()
    );
    Ok(ExitCode::SUCCESS)
}
