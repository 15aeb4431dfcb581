//! `hr-bridge hash-password`: reads a password from stdin and prints its Argon2id
//! PHC string, made with the configured `auth.argon2_*` parameters.
//!
//! It uses nothing but those parameters, yet it loads and checks the whole
//! configuration as `serve` would, so a broken key elsewhere stops it: the hash
//! it prints is meant for that configuration's `omflow.password_hash`, and an
//! operator learns there and then that the file would not start the server
//! (a plain password left in it, say) rather than at the next restart.

use std::process::ExitCode;

use super::input::read_password;
use crate::config::AuthSettings;

pub async fn run(auth: &AuthSettings) -> anyhow::Result<ExitCode> {
    let password = read_password("Password: ")?;
    println!(
        "{}",
        crate::app::hash_password(password, crate::app::argon2(auth)).await?
    );
    Ok(ExitCode::SUCCESS)
}
