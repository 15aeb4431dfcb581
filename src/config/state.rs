//! `[state]`: where hr-bridge keeps its own tables (lockouts, audit, snapshot).

use secrecy::SecretString;
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSettings {
    /// Defaults to `database.url`. May carry a password, hence secret.
    pub url: Option<SecretString>,
}

impl StateSettings {
    /// Checks what serde cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.url {
            Some(url) => super::database::check_url("state.url", url),
            None => Ok(()),
        }
    }
}
