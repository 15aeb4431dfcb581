//! `hr-bridge unlock USERNAME`: lifts one lockout, recorded in the activity
//! record as the operator running the command.

use std::process::ExitCode;

use super::stores;
use crate::config::Settings;
use crate::escape::quote;
use crate::ops::activity::Actor;
use crate::ops::lockouts;

pub async fn run(settings: &Settings, username: &str) -> anyhow::Result<ExitCode> {
    let db = stores::state(settings)?;
    let actor = Actor::from_cli();
    if lockouts::unlock(&db, username, &actor).await? {
        println!(
            "unlocked {}: the next login with the right password succeeds (recorded as {})",
            quote(username),
            quote(&actor.name)
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} is not locked (names match exactly; `hr-bridge lockouts` lists the \
             locked accounts)",
            quote(username)
        );
        Ok(ExitCode::FAILURE)
    }
}
