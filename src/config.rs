//! Typed settings, loaded in layers (built-in defaults → TOML file → environment)
//! and validated once at start-up so that the rest of the program can trust them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Environment variable that names the TOML file when `--config` is not given.
pub const CONFIG_ENV: &str = "HR_BRIDGE_CONFIG";
/// Prefix of the per-key environment variables: `HR_BRIDGE__SECTION__KEY`.
pub const ENV_PREFIX: &str = "HR_BRIDGE";

/// A configuration problem, worded as one line that names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub omflow: OmflowSettings,
    #[serde(default)]
    pub sync: SyncSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub body_limit_bytes: usize,
    /// How long in-flight requests may run on after SIGTERM before they are cut.
    pub shutdown_grace_secs: u64,
    /// How often the TLS files are checked for changes; 0 reloads on SIGHUP only.
    pub tls_reload_poll_secs: u64,
    /// A separate address for `/metrics`; when set, the main port answers 404 there.
    pub metrics_listen: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            body_limit_bytes: 64 * 1024,
            shutdown_grace_secs: 30,
            tls_reload_poll_secs: 2,
            metrics_listen: None,
        }
    }
}

impl ServerSettings {
    /// The listen address; valid once [`Settings::validate`] has passed.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError(format!(
                "server.listen = {:?} is not an address like 0.0.0.0:8080",
                self.listen
            ))
        })
    }

    /// The separate `/metrics` address, when configured; valid once
    /// [`Settings::validate`] has passed.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        self.metrics_listen
            .as_deref()
            .map(|text| {
                text.parse().map_err(|_| {
                    ConfigError(format!(
                        "server.metrics_listen = {text:?} is not an address like 127.0.0.1:9100"
                    ))
                })
            })
            .transpose()
    }

    /// Both TLS files, when HTTPS is configured.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// May carry a password, hence secret.
    pub url: SecretString,
    pub max_connections: u32,
    pub auto_migrate: bool,
    /// How long a request waits for a pool connection before answering 503.
    pub acquire_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://hr-bridge.db?mode=rwc"),
            max_connections: 10,
            auto_migrate: true,
            acquire_timeout_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OmflowSettings {
    pub username: Option<String>,
    pub password_hash: Option<SecretString>,
    pub password: Option<SecretString>,
}

impl OmflowSettings {
    /// True when OMFLOW's Basic Auth credentials are configured.
    pub fn is_configured(&self) -> bool {
        self.username.is_some() && (self.password_hash.is_some() || self.password.is_some())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    pub max_deletions: u64,
    pub max_deletion_ratio: f64,
}

impl SyncSettings {
    /// The deletion guard's limits.
    pub fn guard_limits(&self) -> crate::directory::GuardLimits {
        crate::directory::GuardLimits {
            max_deletions: self.max_deletions,
            max_ratio: self.max_deletion_ratio,
        }
    }
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            max_deletions: 500,
            max_deletion_ratio: 0.2,
        }
    }
}

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
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed. In the
    /// environment: a comma-separated list.
    #[serde(deserialize_with = "string_or_list")]
    pub trusted_proxies: Vec<String>,
}

/// Accepts a TOML list or one comma-separated string (as environment values are).
fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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

impl AuthSettings {
    /// The Argon2id parameters new hashes are made with.
    pub fn argon2(&self) -> crate::password::Argon2Settings {
        crate::password::Argon2Settings {
            m_cost_kib: self.argon2_m_cost_kib,
            t_cost: self.argon2_t_cost,
            p_cost: self.argon2_p_cost,
        }
    }

    /// The trusted proxy ranges; valid once [`Settings::validate`] has passed.
    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "auth.trusted_proxies: {entry:?} is not an IP address or CIDR range"
                        ))
                    })
            })
            .collect()
    }
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `hr_bridge=debug`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Settings {
    /// Loads defaults, then the TOML file (`file`, else `$HR_BRIDGE_CONFIG`), then
    /// `HR_BRIDGE__SECTION__KEY` variables, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env_file = std::env::var_os(CONFIG_ENV).map(PathBuf::from);
        let file = file.map(Path::to_path_buf).or(env_file);
        let env: std::collections::HashMap<String, String> = std::env::vars().collect();
        Self::load_from(file.as_deref(), env)
    }

    /// [`Settings::load`] with the environment given explicitly (used by tests).
    pub fn load_from(
        file: Option<&Path>,
        env: std::collections::HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut builder = Config::builder();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!("cannot read config file {}: {e}", path.display()))
            })?;
            forbid_file_secrets(&text, path)?;
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
        }
        let env_source = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(false)
            .source(Some(env.into_iter().collect()));
        let settings: Settings = builder
            .add_source(env_source)
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| ConfigError(one_line(&e.to_string())))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value that serde cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.listen_addr()?;
        self.server.metrics_addr()?;
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(_), None) => {
                return Err(ConfigError(
                    "server.tls_cert is set but server.tls_key is not; set both for HTTPS".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError(
                    "server.tls_key is set but server.tls_cert is not; set both for HTTPS".into(),
                ))
            }
            _ => {}
        }
        if self.server.body_limit_bytes == 0 {
            return Err(ConfigError(
                "server.body_limit_bytes must be greater than 0".into(),
            ));
        }
        let url = self.database.url.expose_secret();
        if !["postgres://", "postgresql://", "mysql://", "sqlite:"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return Err(ConfigError(
                "database.url must start with postgres://, mysql:// or sqlite://".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.sync.max_deletion_ratio) {
            return Err(ConfigError(
                "sync.max_deletion_ratio must be between 0.0 and 1.0".into(),
            ));
        }
        if self.auth.max_concurrent_checks == 0 {
            return Err(ConfigError(
                "auth.max_concurrent_checks must be at least 1".into(),
            ));
        }
        self.auth.argon2().validate().map_err(|e| {
            ConfigError(format!(
                "auth.argon2_m_cost_kib / argon2_t_cost / argon2_p_cost are not valid Argon2 parameters: {e}"
            ))
        })?;
        self.auth.trusted_proxy_nets()?;
        if self.auth.audit_retention_days == 0 {
            return Err(ConfigError(
                "auth.audit_retention_days must be at least 1".into(),
            ));
        }
        if let Some(user) = &self.omflow.username {
            if user.is_empty() || user.contains(':') {
                return Err(ConfigError(
                    "omflow.username must be non-empty and must not contain ':'".into(),
                ));
            }
        }
        if let Some(hash) = &self.omflow.password_hash {
            crate::password::OmflowHash::parse(hash.expose_secret()).map_err(|e| {
                ConfigError(format!(
                    "omflow.password_hash is not an Argon2 PHC string: {e}"
                ))
            })?;
        }
        if matches!(&self.omflow.password, Some(p) if p.expose_secret().is_empty()) {
            return Err(ConfigError("omflow.password must not be empty".into()));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|e| {
            ConfigError(format!(
                "log.level = {:?} is not a filter: {e}",
                self.log.level
            ))
        })?;
        Ok(())
    }

    /// The one-line reason `serve` refuses to start without OMFLOW credentials.
    pub fn missing_credentials_message() -> &'static str {
        "no OMFLOW credentials: set omflow.username and omflow.password_hash \
         (or HR_BRIDGE__OMFLOW__USERNAME and HR_BRIDGE__OMFLOW__PASSWORD), or run `serve --demo`"
    }
}

/// Plain-text secrets may only come from the environment, never from a file that
/// is likely to be committed or world-readable.
fn forbid_file_secrets(text: &str, path: &Path) -> Result<(), ConfigError> {
    let value: toml::Table = match text.parse() {
        Ok(value) => value,
        Err(e) => {
            return Err(ConfigError(format!(
                "{} is not valid TOML: {}",
                path.display(),
                one_line(&e.to_string())
            )))
        }
    };
    if value
        .get("omflow")
        .and_then(|o| o.get("password"))
        .is_some()
    {
        return Err(ConfigError(format!(
            "omflow.password is set in {}; plain-text passwords come from the environment only \
             (HR_BRIDGE__OMFLOW__PASSWORD), or put an Argon2 hash in omflow.password_hash",
            path.display()
        )));
    }
    Ok(())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file_and_keeps_secrets_as_text() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("hr-bridge.toml");
        std::fs::write(
            &file,
            "[database]\nmax_connections = 3\n[auth]\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        )
        .expect("write config");
        let settings = Settings::load_from(
            Some(&file),
            env(&[
                ("HR_BRIDGE__DATABASE__MAX_CONNECTIONS", "7"),
                ("HR_BRIDGE__OMFLOW__PASSWORD", "0123"),
                ("HR_BRIDGE_CONFIG", "ignored"),
            ]),
        )
        .expect("valid settings");
        assert_eq!(settings.database.max_connections, 7);
        assert_eq!(settings.auth.trusted_proxies, ["10.0.0.0/8"]);
        // A numeric-looking password stays text, leading zero included.
        let password = settings.omflow.password.expect("password set");
        assert_eq!(password.expose_secret(), "0123");
        assert!(!format!("{:?}", settings.database.url).contains("hr-bridge.db"));
    }

    #[test]
    fn a_comma_separated_proxy_list_comes_from_the_environment() {
        let settings = Settings::load_from(
            None,
            env(&[(
                "HR_BRIDGE__AUTH__TRUSTED_PROXIES",
                "10.0.0.0/8, 192.168.1.1",
            )]),
        )
        .expect("valid settings");
        assert_eq!(settings.auth.trusted_proxy_nets().expect("nets").len(), 2);
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Settings::load_from(None, env(&[("HR_BRIDGE__SYNC__MAX_DELETION_RATIO", "2")]))
            .expect_err("ratio over 1");
        assert!(err.to_string().contains("sync.max_deletion_ratio"), "{err}");
        let err = Settings::load_from(None, env(&[("HR_BRIDGE__SERVER__TLS_CERT", "/x.pem")]))
            .expect_err("cert without key");
        assert!(err.to_string().contains("server.tls_key"), "{err}");
    }
}
