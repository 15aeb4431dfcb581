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
    /// The URL people open the console at (`https://hr-console.example.com`:
    /// scheme, host, optional port, no path). When set, a state-changing
    /// request's `Origin` must be exactly this, and every request's `Host` its
    /// authority; unset, only the listener's own address (and `localhost` for a
    /// loopback listener) is accepted. Required when `listen` is a wildcard.
    #[serde(deserialize_with = "public_origin")]
    pub public_origin: Option<PublicOrigin>,
    /// Usernames (HR logins) who may read every console page.
    #[serde(deserialize_with = "super::string_list")]
    pub viewers: Vec<String>,
    /// Usernames who may also approve deletions and unlock accounts.
    #[serde(deserialize_with = "super::string_list")]
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
            public_origin: None,
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

/// `admin.public_origin`, checked and put in the form browsers send in
/// `Origin`: lowercase scheme and host, no default port, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin {
    /// `https://hr-console.example.com` or `http://10.0.0.5:8081`.
    origin: String,
    /// The `Host` values naming it: `hr-console.example.com` (and, when the
    /// port is the scheme's default, `hr-console.example.com:443` too).
    hosts: Vec<String>,
}

impl PublicOrigin {
    /// Parses `text`, saying what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "admin.public_origin = {text:?} {why}: give the URL people open the console \
                 at, like https://hr-console.example.com (scheme, host, optional port, no path)"
            )
        };
        let url = url::Url::parse(text.trim()).map_err(|_| bad("is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("is neither http nor https"));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(bad("names no host"));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("holds a user name or password"));
        }
        // `Url` gives a bare origin the path `/`; anything more is a path.
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("has a path, query or fragment"));
        }
        let origin = url.origin().ascii_serialization();
        let host = host.to_ascii_lowercase();
        let hosts = match (url.port(), url.port_or_known_default()) {
            (Some(port), _) => vec![format!("{host}:{port}")],
            (None, Some(default)) => vec![host.clone(), format!("{host}:{default}")],
            (None, None) => vec![host],
        };
        Ok(Self { origin, hosts })
    }

    /// As browsers send it in `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `Host` values (lowercase) that name it.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }
}

impl std::fmt::Display for PublicOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin)
    }
}

/// `admin.public_origin`, refused at start-up unless it is a bare origin.
fn public_origin<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PublicOrigin>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    PublicOrigin::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
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
        self.check_wildcard()?;
        Ok(())
    }

    /// A console listening on every address (`0.0.0.0`, `[::]`) answers to any
    /// host name a client or proxy puts in `Host`, so it cannot tell its own
    /// name from an attacker's (DNS rebinding): it must be told its public URL.
    pub fn check_wildcard(&self) -> Result<(), ConfigError> {
        match self.listen {
            Some(listen) if listen.ip().is_unspecified() && self.public_origin.is_none() => {
                Err(ConfigError::new(format!(
                    "admin.listen = {listen} listens on every address: set \
                     admin.public_origin to the URL people open the console at (e.g. \
                     https://hr-console.example.com), so that requests naming any other host \
                     are refused; or listen on one address"
                )))
            }
            _ => Ok(()),
        }
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
