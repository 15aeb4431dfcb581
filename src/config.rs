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

/// Every cap and timeout the service applies to its clients and its database, with
/// the reason for its default. The README's "Limits and timeouts" lists them too.
pub mod limits {
    /// Request bodies: OMFLOW sends at most a username and a password.
    pub const BODY_LIMIT_BYTES: usize = 64 * 1024;
    /// A request still unanswered after this long gets 503 and its work is
    /// cancelled: OMFLOW's own HTTP client gives up around then, and an answer
    /// nobody reads must not leave effects (an audited "success") behind.
    pub const REQUEST_TIMEOUT_SECS: u64 = 30;
    /// One database statement, or its wait for a lock, when
    /// `database.statement_timeout_secs` is unset: this share of the request
    /// timeout (25 s of the default 30 s), so that the database gives up first
    /// and the request still has time to answer 503 cleanly.
    pub const STATEMENT_SHARE_OF_REQUEST: (u32, u32) = (5, 6);
    /// Waiting for a pooled database connection: a pool this busy means the
    /// database is down or saturated, so answer 503 soon rather than queue.
    pub const ACQUIRE_TIMEOUT_SECS: u64 = 5;
    /// A connection must send its request head within this time, or it is
    /// closed: half-sent request lines must not hold sockets forever.
    pub const HEADER_READ_TIMEOUT_SECS: u64 = 10;
    /// Open connections at once; more wait in the kernel's listen backlog, so a
    /// flood cannot exhaust file descriptors or memory.
    pub const MAX_CONNECTIONS: usize = 1024;
    /// Open connections at once on the separate `/metrics` listener: a scraper
    /// or two need one each, and a flood there must never take the file
    /// descriptors the OMFLOW port needs.
    pub const METRICS_MAX_CONNECTIONS: usize = 64;
    /// In-flight requests may finish this long after SIGTERM.
    pub const SHUTDOWN_GRACE_SECS: u64 = 30;
}
/// Highest `auth.failure_floor_ms`: a floor longer than this only holds
/// connections open.
const MAX_FAILURE_FLOOR_MS: u64 = 10_000;

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
    #[serde(default)]
    pub source: SourceSettings,
    #[serde(default)]
    pub state: StateSettings,
}

/// `[source]`: SQL that maps an existing HR schema onto the contract's columns.
/// Unset keys keep the built-in tables' queries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    pub employees: Option<String>,
    pub departments: Option<String>,
    pub memberships: Option<String>,
    pub credentials: Option<String>,
    pub update_password: Option<String>,
}

impl SourceSettings {
    /// True when any query is configured: the HR database is then read-only to us.
    pub fn is_mapped(&self) -> bool {
        [
            &self.employees,
            &self.departments,
            &self.memberships,
            &self.credentials,
            &self.update_password,
        ]
        .iter()
        .any(|q| q.as_deref().is_some_and(|q| !q.trim().is_empty()))
    }
}

/// `[state]`: where hr-bridge keeps its own tables (lockouts, audit, snapshot).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSettings {
    /// Defaults to `database.url`. May carry a password, hence secret.
    pub url: Option<SecretString>,
}

impl Settings {
    /// Longest one database statement may run while serving:
    /// `database.statement_timeout_secs` when set, else five sixths of
    /// `server.request_timeout_secs` (25 s of the default 30 s), so that shortening
    /// the request timeout alone never stops start-up and the database still gives
    /// up first.
    pub fn statement_timeout(&self) -> std::time::Duration {
        match self.database.statement_timeout_secs {
            Some(secs) => std::time::Duration::from_secs(secs),
            None => {
                let (part, whole) = limits::STATEMENT_SHARE_OF_REQUEST;
                std::time::Duration::from_secs(self.server.request_timeout_secs) * part / whole
            }
        }
    }

    /// Pool settings for serving requests, with the statement timeout.
    pub fn pool_settings(&self) -> crate::db::PoolSettings {
        crate::db::PoolSettings {
            max_connections: self.database.max_connections,
            acquire_timeout: std::time::Duration::from_secs(self.database.acquire_timeout_secs),
            statement_timeout: Some(self.statement_timeout()),
            read_only: false,
        }
    }

    /// The database that holds hr-bridge's own state.
    pub fn state_url(&self) -> &SecretString {
        self.state.url.as_ref().unwrap_or(&self.database.url)
    }

    /// True when the state lives in another database than the HR data.
    pub fn has_separate_state(&self) -> bool {
        self.state
            .url
            .as_ref()
            .is_some_and(|u| u.expose_secret() != self.database.url.expose_secret())
    }
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
    /// A request still unanswered after this long gets 503 and its work is cancelled.
    pub request_timeout_secs: u64,
    /// A connection that has not sent a complete request head by then is closed.
    pub header_read_timeout_secs: u64,
    /// A connection with no request in progress and no response moving for this
    /// long is closed (HTTP/2 with GOAWAY first); unset: `header_read_timeout_secs`.
    pub idle_timeout_secs: Option<u64>,
    /// Open connections accepted at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// A separate address for `/metrics`; when set, the main port answers 404 there.
    pub metrics_listen: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            body_limit_bytes: limits::BODY_LIMIT_BYTES,
            shutdown_grace_secs: limits::SHUTDOWN_GRACE_SECS,
            tls_reload_poll_secs: 2,
            request_timeout_secs: limits::REQUEST_TIMEOUT_SECS,
            header_read_timeout_secs: limits::HEADER_READ_TIMEOUT_SECS,
            idle_timeout_secs: None,
            max_connections: limits::MAX_CONNECTIONS,
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

    /// How long a connection may sit idle (see `idle_timeout_secs`); it follows the
    /// header-read timeout unless set, so that an HTTP/2 connection waiting for its
    /// next request is bounded like an HTTP/1 one waiting for its next head.
    pub fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.idle_timeout_secs
                .unwrap_or(self.header_read_timeout_secs),
        )
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
    /// Longest one statement (or its wait for a lock) may run while serving; kept
    /// below `server.request_timeout_secs` so the database gives up first. Unset:
    /// follows the request timeout (see [`Settings::statement_timeout`]).
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

/// `sync.guard`: the deletion guard is switched off by this setting alone, never
/// by a limit of 0 (which means "nothing goes without approval").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardSwitch {
    On,
    Off,
}

impl<'de> Deserialize<'de> for GuardSwitch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Words;
        impl serde::de::Visitor<'_> for Words {
            type Value = GuardSwitch;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"on\" or \"off\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GuardSwitch, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "on" => Ok(GuardSwitch::On),
                    "off" => Ok(GuardSwitch::Off),
                    _ => Err(E::custom(format!(
                        "sync.guard must be \"on\" or \"off\", not {v:?}"
                    ))),
                }
            }

            // A word, not a flag: switching the safety off must be spelt out.
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<GuardSwitch, E> {
                Err(E::custom(format!(
                    "sync.guard must be \"on\" or \"off\" (a word), not the boolean {v}"
                )))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<GuardSwitch, E> {
                Err(E::custom(format!(
                    "sync.guard must be \"on\" or \"off\", not the number {v}"
                )))
            }
        }
        d.deserialize_any(Words)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    pub guard: GuardSwitch,
    /// Most users+departments one sync may drop; 0: every deletion needs approval.
    pub max_deletions: u64,
    /// Most share of the last snapshot one sync may drop; 0: any share is too much.
    pub max_deletion_ratio: f64,
    /// The ratio applies only when more objects than this would go.
    pub guard_min_objects: u64,
}

impl SyncSettings {
    /// The deletion guard's limits.
    pub fn guard_limits(&self) -> crate::directory::GuardLimits {
        crate::directory::GuardLimits {
            enabled: self.guard == GuardSwitch::On,
            max_deletions: self.max_deletions,
            max_ratio: self.max_deletion_ratio,
            min_objects: self.guard_min_objects,
        }
    }
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            guard: GuardSwitch::On,
            max_deletions: 500,
            max_deletion_ratio: 0.2,
            guard_min_objects: 10,
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
    /// Least answer time (ms) of a failed `/authenticate`, so that timing does not
    /// reveal which accounts exist; the default covers the slowest check the hash
    /// caps allow.
    pub failure_floor_ms: u64,
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
            failure_floor_ms: crate::password::caps::DEFAULT_FAILURE_FLOOR.as_millis() as u64,
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
        for (key, url) in [
            ("database.url", Some(&self.database.url)),
            ("state.url", self.state.url.as_ref()),
        ] {
            let Some(url) = url.map(ExposeSecret::expose_secret) else {
                continue;
            };
            if !["postgres://", "postgresql://", "mysql://", "sqlite:"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                return Err(ConfigError(format!(
                    "{key} must start with postgres://, mysql:// or sqlite://"
                )));
            }
        }
        if self.server.request_timeout_secs == 0 {
            return Err(ConfigError(
                "server.request_timeout_secs must be at least 1".into(),
            ));
        }
        if self.server.header_read_timeout_secs == 0 {
            return Err(ConfigError(
                "server.header_read_timeout_secs must be at least 1".into(),
            ));
        }
        if self.server.max_connections == 0 {
            return Err(ConfigError(
                "server.max_connections must be at least 1".into(),
            ));
        }
        if self.server.idle_timeout_secs == Some(0) {
            return Err(ConfigError(
                "server.idle_timeout_secs must be at least 1".into(),
            ));
        }
        // Only an explicit value can be wrong: an unset one follows the request
        // timeout and is always below it.
        if let Some(secs) = self.database.statement_timeout_secs {
            if secs == 0 || secs >= self.server.request_timeout_secs {
                return Err(ConfigError(format!(
                    "database.statement_timeout_secs must be at least 1 and below \
                     server.request_timeout_secs ({}), so that the database gives up first; \
                     leave it unset to follow the request timeout",
                    self.server.request_timeout_secs
                )));
            }
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
        if self.auth.failure_floor_ms > MAX_FAILURE_FLOOR_MS {
            return Err(ConfigError(format!(
                "auth.failure_floor_ms must be at most {MAX_FAILURE_FLOOR_MS}"
            )));
        }
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
        // Two passwords for one account: whichever won, the operator would not
        // know which one OMFLOW must send, nor whether the other still works.
        if self.omflow.password.is_some() && self.omflow.password_hash.is_some() {
            return Err(ConfigError(
                "both omflow.password and omflow.password_hash are set; set only one \
                 (preferably omflow.password_hash, from `hr-bridge hash-password`)"
                    .into(),
            ));
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

/// What makes a key's value a secret that the TOML file may not hold.
#[derive(Debug, Clone, Copy)]
enum FileSecret {
    /// The value is a secret whatever it is (a plain password); the text names a
    /// safe alternative that may stay in the file, if there is one.
    Always(&'static str),
    /// A URL, secret when it carries a password (in its user-info part or as a
    /// `password` query parameter).
    UrlWithPassword,
}

/// Every key that may carry a secret, and when its value is one. A value that is
/// one is refused in the TOML file (it is likely committed or world-readable) and
/// must come from the environment instead (`HR_BRIDGE__SECTION__KEY`). A new key
/// that can carry a secret (a webhook URL with a token, say) joins this list.
const FILE_SECRETS: &[(&str, FileSecret)] = &[
    (
        "omflow.password",
        FileSecret::Always(", or put an Argon2 hash in omflow.password_hash"),
    ),
    ("database.url", FileSecret::UrlWithPassword),
    ("state.url", FileSecret::UrlWithPassword),
];

/// The environment variable that sets `section.key`.
fn env_name(dotted: &str) -> String {
    format!("{ENV_PREFIX}__{}", dotted.replace('.', "__").to_uppercase())
}

/// Plain-text secrets may only come from the environment, never from a file that
/// is likely to be committed or world-readable. The file is read here the way the
/// configuration loader reads it, so that no TOML spelling (quoted dotted keys,
/// inline tables, other letter case) slips past.
fn forbid_file_secrets(text: &str, path: &Path) -> Result<(), ConfigError> {
    if let Err(e) = text.parse::<toml::Table>() {
        return Err(ConfigError(format!(
            "{} is not valid TOML: {}",
            path.display(),
            one_line(&e.to_string())
        )));
    }
    let file_only = Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .build()
        .map_err(|e| ConfigError(format!("{}: {}", path.display(), one_line(&e.to_string()))))?;
    for &(key, kind) in FILE_SECRETS {
        let Some(value) = file_value(&file_only, key) else {
            continue;
        };
        let env = env_name(key);
        let refused = match kind {
            FileSecret::Always(alternative) => Some(format!(
                "{key} is set in {}; plain-text passwords come from the environment only \
                 ({env}){alternative}",
                path.display()
            )),
            // Not a string: the loader names the key and the type it wants.
            FileSecret::UrlWithPassword => value
                .into_string()
                .is_ok_and(|url| url_has_password(&url))
                .then(|| {
                    format!(
                        "{key} in {} carries a password; set a URL with a password in the \
                         environment only ({env})",
                        path.display()
                    )
                }),
        };
        if let Some(message) = refused {
            return Err(ConfigError(message));
        }
    }
    Ok(())
}

/// The value at `section.key` of a configuration, whatever the letter case of the
/// names in the file.
fn file_value(config: &Config, dotted: &str) -> Option<config::Value> {
    let (section, key) = dotted.split_once('.')?;
    let table = config.cache.clone().into_table().ok()?;
    let (_, section) = table
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(section))?;
    let (_, value) = section
        .into_table()
        .ok()?
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(key))?;
    Some(value)
}

/// True when a database URL names a password, in its user-info part or as a
/// `password` query parameter (both of which the drivers accept).
pub fn url_has_password(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(parsed) => {
            parsed.password().is_some()
                || parsed
                    .query_pairs()
                    .any(|(name, _)| name.eq_ignore_ascii_case("password"))
        }
        // Not a URL the parser understands: look for `user:password@` by hand.
        Err(_) => url
            .split_once("://")
            .and_then(|(_, rest)| rest.split(['/', '?']).next())
            .is_some_and(|authority| {
                authority
                    .rsplit_once('@')
                    .is_some_and(|(userinfo, _)| userinfo.contains(':'))
            }),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

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
    fn an_unset_statement_timeout_follows_the_request_timeout() {
        let settings = Settings::load_from(
            None,
            env(&[("HR_BRIDGE__SERVER__REQUEST_TIMEOUT_SECS", "2")]),
        )
        .expect("a short request timeout alone is valid");
        let statement = settings.statement_timeout();
        assert!(statement < Duration::from_secs(2), "{statement:?}");
        assert!(statement >= Duration::from_secs(1), "{statement:?}");
        assert_eq!(
            Settings::default().statement_timeout(),
            Duration::from_secs(25)
        );
        let one = Settings::load_from(
            None,
            env(&[("HR_BRIDGE__SERVER__REQUEST_TIMEOUT_SECS", "1")]),
        )
        .expect("valid");
        assert!(one.statement_timeout() < Duration::from_secs(1));
        assert!(one.statement_timeout() > Duration::ZERO);
    }

    #[test]
    fn an_explicit_statement_timeout_must_stay_below_the_request_timeout() {
        let err = Settings::load_from(
            None,
            env(&[
                ("HR_BRIDGE__SERVER__REQUEST_TIMEOUT_SECS", "2"),
                ("HR_BRIDGE__DATABASE__STATEMENT_TIMEOUT_SECS", "25"),
            ]),
        )
        .expect_err("explicit 25 s over a 2 s request");
        assert!(
            err.to_string().contains("database.statement_timeout_secs"),
            "{err}"
        );
        let kept = Settings::load_from(
            None,
            env(&[
                ("HR_BRIDGE__SERVER__REQUEST_TIMEOUT_SECS", "60"),
                ("HR_BRIDGE__DATABASE__STATEMENT_TIMEOUT_SECS", "7"),
            ]),
        )
        .expect("valid");
        assert_eq!(kept.statement_timeout(), Duration::from_secs(7));
        assert_eq!(
            kept.pool_settings().statement_timeout,
            Some(Duration::from_secs(7))
        );
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
