//! `hr-bridge set-password USERNAME`: stores the Argon2id hash of a password read
//! from stdin for an employee of the built-in tables.

use std::process::ExitCode;

use anyhow::bail;

use super::input::read_password;
use super::stores;
use crate::config::Settings;
use crate::directory::keys::{self, key_problem, Key};
use crate::escape::{escape, quote};

pub async fn run(settings: &Settings, username: &str) -> anyhow::Result<ExitCode> {
    // The rule import and /sync apply: a name they refuse never gets a password.
    if let Some(reason) = key_problem(Key::Username, username) {
        bail!("username {} {reason}", keys::shown(username));
    }
    let password = read_password(&format!("New password for {}: ", escape(username)))?;
    let (_, source) = stores::writable(settings, "set-password")?;
    let hash = crate::app::hash_password(password, crate::app::argon2(&settings.auth)).await?;
    if source.db().set_password_hash(username, &hash).await? {
        println!("password set for {}", escape(username));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: no employee with username {}", quote(username));
        Ok(ExitCode::FAILURE)
    }
}
