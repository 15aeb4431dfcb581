//! `[database]`: the HR database, and the pool hr-bridge keeps to it.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{limits, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// May carry a password, hence secret.
    pub url: SecretString,
    pub max_connections: u32,
    pub auto_migrate: bool,
    /// How long a request waits for a pool connection before answering 503.
    pub acquire_timeout_secs: u64,
    /// Longest one statement (or its wait for a lock) may run while serving; kept
    /// below `server.request_timeout_secs` so the database gives up first. Unset:
    /// follows the request timeout (see [`super::Settings::statement_timeout`]).
    pub statement_timeout_secs: Option<u64>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://hr-bridge.db?mode=rwc"),
            max_connections: 10,
            auto_migrate: true,
            acquire_timeout_secs: limits::ACQUIRE_TIMEOUT_SECS,
            statement_timeout_secs: None,
        }
    }
}

impl DatabaseSettings {
    /// Checks what serde cannot, naming the key at fault. The statement timeout
    /// is checked against the request timeout by [`super::Settings::validate`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url("database.url", &self.url)?;
        if self.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections must be at least 1",
            ));
        }
        Ok(())
    }

    /// `database.acquire_timeout_secs`.
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_secs(self.acquire_timeout_secs)
    }
}

/// A database URL must name one of the backends hr-bridge speaks.
pub(super) fn check_url(key: &str, url: &SecretString) -> Result<(), ConfigError> {
    let url = url.expose_secret();
    if ["postgres://", "postgresql://", "mysql://", "sqlite:"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "{key} must start with postgres://, mysql:// or sqlite://"
        )))
    }
}
