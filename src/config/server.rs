//! `[server]`: where and how the HTTP(S) listeners run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{limits, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// The address to listen on; port 0 picks a free port.
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub body_limit_bytes: usize,
    /// How long in-flight requests may run on after SIGTERM before they are cut.
    pub shutdown_grace_secs: u64,
    /// How often the TLS files are checked for changes; 0 reloads on SIGHUP only.
    pub tls_reload_poll_secs: u64,
    /// A request still unanswered after this long gets 503 and its work is cancelled.
    pub request_timeout_secs: u64,
    /// A connection that has not sent a complete request head by then is closed.
    pub header_read_timeout_secs: u64,
    /// A connection with no request in progress and no response moving for this
    /// long is closed (HTTP/2 with GOAWAY first); unset: `header_read_timeout_secs`.
    pub idle_timeout_secs: Option<u64>,
    /// Open connections accepted at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64); further ones
    /// are closed at once. 0: no such cap. Unset: 256, or `max_connections` if
    /// lower. Behind a proxy the peer is the proxy, so set 0 (or the proxy's own
    /// connection count) there.
    pub max_connections_per_ip: Option<usize>,
    /// A separate address for `/metrics`; when set, the main port answers 404 there.
    #[serde(deserialize_with = "metrics_addr")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            body_limit_bytes: limits::BODY_LIMIT_BYTES,
            shutdown_grace_secs: limits::SHUTDOWN_GRACE_SECS,
            tls_reload_poll_secs: 2,
            request_timeout_secs: limits::REQUEST_TIMEOUT_SECS,
            header_read_timeout_secs: limits::HEADER_READ_TIMEOUT_SECS,
            idle_timeout_secs: None,
            max_connections: limits::MAX_CONNECTIONS,
            max_connections_per_ip: None,
            metrics_listen: None,
        }
    }
}

/// `server.listen`, refused with the key and an example when it is no address.
fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "server.listen = {text:?} is not an address like 0.0.0.0:8080"
        ))
    })
}

/// `server.metrics_listen`, as [`listen_addr`].
fn metrics_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "server.metrics_listen = {text:?} is not an address like 127.0.0.1:9100"
        ))
    })
}

impl ServerSettings {
    /// Checks what serde cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "server.tls_cert is set but server.tls_key is not; set both for HTTPS",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "server.tls_key is set but server.tls_cert is not; set both for HTTPS",
                ))
            }
            _ => {}
        }
        if self.body_limit_bytes == 0 {
            return Err(ConfigError::new(
                "server.body_limit_bytes must be greater than 0",
            ));
        }
        for (key, value) in [
            (
                "server.request_timeout_secs",
                Some(self.request_timeout_secs),
            ),
            (
                "server.header_read_timeout_secs",
                Some(self.header_read_timeout_secs),
            ),
            ("server.max_connections", Some(self.max_connections as u64)),
            ("server.idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if value == Some(0) {
                return Err(ConfigError::new(format!("{key} must be at least 1")));
            }
        }
        if let Some(per_ip) = self.max_connections_per_ip {
            if per_ip > self.max_connections {
                return Err(ConfigError::new(format!(
                    "server.max_connections_per_ip ({per_ip}) must not exceed \
                     server.max_connections ({}); 0 sets no per-address cap",
                    self.max_connections
                )));
            }
        }
        Ok(())
    }

    /// How long a connection may sit idle (see `idle_timeout_secs`); it follows the
    /// header-read timeout unless set, so that an HTTP/2 connection waiting for its
    /// next request is bounded like an HTTP/1 one waiting for its next head.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(
            self.idle_timeout_secs
                .unwrap_or(self.header_read_timeout_secs),
        )
    }

    /// Open connections one client address may hold (0: no cap): the configured
    /// value, else the default or `max_connections` if that is lower.
    pub fn max_connections_per_ip(&self) -> usize {
        self.max_connections_per_ip
            .unwrap_or_else(|| limits::MAX_CONNECTIONS_PER_IP.min(self.max_connections))
    }

    /// `server.header_read_timeout_secs`.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// `server.request_timeout_secs`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// `server.shutdown_grace_secs`.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// Both TLS files, when HTTPS is configured.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ServerSettings;

    #[test]
    fn the_per_address_cap_follows_a_lower_total_unless_set() {
        let mut settings = ServerSettings {
            max_connections: 100,
            ..ServerSettings::default()
        };
        assert!(settings.validate().is_ok());
        assert_eq!(settings.max_connections_per_ip(), 100);
        settings.max_connections = 1024;
        assert_eq!(settings.max_connections_per_ip(), 256);
        settings.max_connections_per_ip = Some(0);
        assert_eq!(settings.max_connections_per_ip(), 0);
        settings.max_connections_per_ip = Some(1025);
        assert!(settings.validate().is_err());
    }
}
