//! `[auth]`: employee logins (lockout, hashing, audit) and the proxies believed.

use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use super::{limits, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub max_failures: u32,
    pub lockout_secs: u64,
    pub max_concurrent_checks: usize,
    /// Password checks that may wait for a hashing slot; beyond this, 503.
    pub max_queued_checks: usize,
    /// Argon2id parameters for new hashes; older or weaker hashes are upgraded on login.
    pub argon2_m_cost_kib: u32,
    pub argon2_t_cost: u32,
    pub argon2_p_cost: u32,
    /// Audit rows older than this are deleted.
    pub audit_retention_days: u32,
    /// Proxies whose `X-Forwarded-For` is believed: CIDR ranges, a single address
    /// being its /32 or /128. In the environment: a comma-separated list.
    #[serde(deserialize_with = "proxy_nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// Least answer time (ms) of a failed `/authenticate`, so that timing does not
    /// reveal which accounts exist; the default covers the slowest check the hash
    /// caps allow.
    pub failure_floor_ms: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            max_failures: 5,
            lockout_secs: 900,
            max_concurrent_checks: cpus,
            max_queued_checks: 128,
            argon2_m_cost_kib: 19_456,
            argon2_t_cost: 2,
            argon2_p_cost: 1,
            audit_retention_days: 90,
            trusted_proxies: Vec::new(),
            failure_floor_ms: limits::DEFAULT_FAILURE_FLOOR_MS,
        }
    }
}

/// One proxy entry: a CIDR range, or one address as its /32 or /128.
fn parse_proxy(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
        .ok()
}

/// A TOML list or one comma-separated string (as environment values are) of
/// proxy entries, each refused by name when it is neither an address nor a range.
fn proxy_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    super::string_list(d)?
        .iter()
        .map(|entry| {
            parse_proxy(entry).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "auth.trusted_proxies: {entry:?} is not an IP address or CIDR range"
                ))
            })
        })
        .collect()
}

impl AuthSettings {
    /// Checks what serde cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_concurrent_checks == 0 {
            return Err(ConfigError::new(
                "auth.max_concurrent_checks must be at least 1",
            ));
        }
        argon2::Params::new(
            self.argon2_m_cost_kib,
            self.argon2_t_cost,
            self.argon2_p_cost,
            None,
        )
        .map_err(|e| {
            ConfigError::new(format!(
                "auth.argon2_m_cost_kib / argon2_t_cost / argon2_p_cost are not valid Argon2 parameters: {e}"
            ))
        })?;
        if self.failure_floor_ms > limits::MAX_FAILURE_FLOOR_MS {
            return Err(ConfigError::new(format!(
                "auth.failure_floor_ms must be at most {}",
                limits::MAX_FAILURE_FLOOR_MS
            )));
        }
        if self.audit_retention_days == 0 {
            return Err(ConfigError::new(
                "auth.audit_retention_days must be at least 1",
            ));
        }
        if self.audit_retention_days > limits::MAX_AUDIT_RETENTION_DAYS {
            return Err(ConfigError::new(format!(
                "auth.audit_retention_days must be at most {} (ten years)",
                limits::MAX_AUDIT_RETENTION_DAYS
            )));
        }
        Ok(())
    }

    /// `auth.lockout_secs`.
    pub fn lockout(&self) -> Duration {
        Duration::from_secs(self.lockout_secs)
    }

    /// `auth.failure_floor_ms`.
    pub fn failure_floor(&self) -> Duration {
        Duration::from_millis(self.failure_floor_ms)
    }
}
