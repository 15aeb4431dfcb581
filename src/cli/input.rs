//! Reading what the operator types.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use secrecy::SecretString;

/// Reads one line from stdin without echo on a terminal; the line break is not
/// part of the password.
pub fn read_password(prompt: &str) -> anyhow::Result<SecretString> {
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("cannot read the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        line
    };
    if line.is_empty() {
        bail!("the password is empty");
    }
    Ok(SecretString::from(line))
}
