//! `[admin]`: the web console for HR and IT staff, on a listener of its own.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{limits, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Where the console listens; unset (the default): no console. Never the
    /// OMFLOW port (`server.listen`) nor `server.metrics_listen`.
    #[serde(deserialize_with = "admin_addr")]
    pub listen: Option<SocketAddr>,
    /// Usernames (HR logins) who may read every console page.
    #[serde(deserialize_with = "usernames")]
    pub viewers: Vec<String>,
    /// Usernames who may also approve deletions and unlock accounts.
    #[serde(deserialize_with = "usernames")]
    pub operators: Vec<String>,
    /// A console session unused for this long ends.
    pub session_idle_secs: u64,
    /// A console session ends this long after sign-in, however busy.
    pub session_max_secs: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: None,
            viewers: Vec::new(),
            operators: Vec::new(),
            session_idle_secs: limits::CONSOLE_SESSION_IDLE_SECS,
            session_max_secs: limits::CONSOLE_SESSION_MAX_SECS,
        }
    }
}

/// `admin.listen`, refused with the key and an example when it is no address.
fn admin_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "admin.listen = {text:?} is not an address like 127.0.0.1:8081"
        ))
    })
}

/// A TOML list or one comma-separated string (as environment values are).
fn usernames<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

impl AdminSettings {
    /// Checks what serde cannot, naming the key at fault. The listener's
    /// distance from the other ports is checked by [`super::Settings::validate`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, list) in [
            ("admin.viewers", &self.viewers),
            ("admin.operators", &self.operators),
        ] {
            if let Some(bad) = list
                .iter()
                .find(|u| u.is_empty() || u.trim() != u.as_str() || u.contains('\0'))
            {
                return Err(ConfigError::new(format!(
                    "{key}: {bad:?} is not a username (empty, padded or holding NUL)"
                )));
            }
        }
        if self.session_idle_secs == 0 {
            return Err(ConfigError::new(
                "admin.session_idle_secs must be at least 1",
            ));
        }
        if self.session_max_secs < self.session_idle_secs {
            return Err(ConfigError::new(format!(
                "admin.session_max_secs ({}) must be at least admin.session_idle_secs ({})",
                self.session_max_secs, self.session_idle_secs
            )));
        }
        Ok(())
    }

    /// True when someone may sign in at all.
    pub fn has_people(&self) -> bool {
        !(self.viewers.is_empty() && self.operators.is_empty())
    }

    /// `admin.session_idle_secs`.
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_secs)
    }

    /// `admin.session_max_secs`.
    pub fn session_max(&self) -> Duration {
        Duration::from_secs(self.session_max_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_must_outlive_their_idle_timeout() {
        let settings = AdminSettings {
            session_idle_secs: 60,
            session_max_secs: 30,
            ..AdminSettings::default()
        };
        let err = settings.validate().expect_err("max below idle");
        assert!(err.to_string().contains("admin.session_max_secs"), "{err}");
        assert!(AdminSettings::default().validate().is_ok());
        let padded = AdminSettings {
            operators: vec![" alice".into()],
            ..AdminSettings::default()
        };
        assert!(padded
            .validate()
            .expect_err("padded")
            .to_string()
            .contains("admin.operators"));
    }
}
