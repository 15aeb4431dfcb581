//! Typed settings, loaded in layers (built-in defaults → TOML file → environment)
//! and validated once at start-up so that the rest of the program can trust them.
//!
//! Plain data at the bottom of the crate: this module imports nothing of
//! hr-bridge (only serde, config, secrecy, ipnet, url, argon2's parameter and PHC
//! parsing and tracing-subscriber's filter syntax, for validation). One file per
//! section, each with its own `validate`; once [`Settings::load`] has succeeded,
//! every value is typed and every accessor infallible.

mod admin;
mod auth;
mod database;
pub mod limits;
mod log;
pub mod notify;
mod omflow;
mod server;
mod source;
mod state;
mod sync;

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

pub use admin::{AdminSettings, PublicOrigin};
pub use auth::AuthSettings;
pub use database::DatabaseSettings;
pub use log::{LogFormat, LogSettings};
pub use notify::NotifySettings;
pub use omflow::OmflowSettings;
pub use server::ServerSettings;
pub use source::SourceSettings;
pub use state::StateSettings;
pub use sync::{GuardSwitch, SyncSettings};

/// Environment variable that names the TOML file when `--config` is not given.
pub const CONFIG_ENV: &str = "HR_BRIDGE_CONFIG";
/// Prefix of the per-key environment variables: `HR_BRIDGE__SECTION__KEY`.
pub const ENV_PREFIX: &str = "HR_BRIDGE";

/// A configuration problem, worded as one line that names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

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
    #[serde(default)]
    pub notify: NotifySettings,
    #[serde(default)]
    pub admin: AdminSettings,
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
            .map_err(|e| ConfigError(loader_message(&e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value that serde cannot, section by section, naming the key
    /// at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.database.validate()?;
        self.state.validate()?;
        // Across sections. Only an explicit value can be wrong: an unset one
        // follows the request timeout and is always below it.
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
        self.sync.validate()?;
        self.auth.validate()?;
        // A failed login is held until the floor; held past the request timeout,
        // every failed login would be answered 503 instead of "invalid".
        let timeout_ms = self.server.request_timeout_secs.saturating_mul(1000);
        if self.auth.failure_floor_ms >= timeout_ms {
            return Err(ConfigError(format!(
                "auth.failure_floor_ms ({}) must be below server.request_timeout_secs \
                 ({} s = {timeout_ms} ms), or every failed login is answered 503",
                self.auth.failure_floor_ms, self.server.request_timeout_secs
            )));
        }
        self.omflow.validate()?;
        self.log.validate()?;
        self.notify.validate()?;
        self.admin.validate()?;
        if let Some(admin) = self.admin.listen {
            let clashes = |other: std::net::SocketAddr| {
                other.port() == admin.port()
                    && (other.ip() == admin.ip()
                        || other.ip().is_unspecified()
                        || admin.ip().is_unspecified())
            };
            if admin.port() != 0 && clashes(self.server.listen) {
                return Err(ConfigError(format!(
                    "admin.listen ({admin}) must not share server.listen's port: the console \
                     never runs on OMFLOW's port"
                )));
            }
            if admin.port() != 0 && self.server.metrics_listen.is_some_and(clashes) {
                return Err(ConfigError(format!(
                    "admin.listen ({admin}) must not share server.metrics_listen's port"
                )));
            }
        }
        Ok(())
    }

    /// Longest one database statement may run while serving:
    /// `database.statement_timeout_secs` when set, else five sixths of
    /// `server.request_timeout_secs` (25 s of the default 30 s), so that shortening
    /// the request timeout alone never stops start-up and the database still gives
    /// up first.
    pub fn statement_timeout(&self) -> Duration {
        match self.database.statement_timeout_secs {
            Some(secs) => Duration::from_secs(secs),
            None => {
                let (part, whole) = limits::STATEMENT_SHARE_OF_REQUEST;
                self.server.request_timeout() * part / whole
            }
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

    /// The one-line reason `serve` refuses to start without OMFLOW credentials.
    pub fn missing_credentials_message() -> &'static str {
        "no OMFLOW credentials: set omflow.username and omflow.password_hash \
         (or HR_BRIDGE__OMFLOW__USERNAME and HR_BRIDGE__OMFLOW__PASSWORD), or run `serve --demo`"
    }
}

/// The loader's error as one line. A value refused by one of our own
/// deserializers already names its key (`server.listen = "x" is not …`); the
/// loader's " for key `server.listen`" would only repeat it.
fn loader_message(error: &config::ConfigError) -> String {
    if let config::ConfigError::At {
        error: inner,
        key: Some(key),
        origin: None,
    } = error
    {
        if let config::ConfigError::Message(message) = inner.as_ref() {
            if message.starts_with(key.as_str()) {
                return one_line(message);
            }
        }
    }
    without_quoted_strings(&one_line(&error.to_string()))
}

/// The loader's and serde's messages quote a value of the wrong type
/// (`invalid type: string "…", expected an integer`); the value may be a secret
/// set under the wrong key, so it is left out. The key is still named.
fn without_quoted_strings(text: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(QUOTED) {
        out.push_str(&rest[..at]);
        out.push_str("a string (not shown)");
        let value = &rest[at + QUOTED.len()..];
        let mut escaped = false;
        let end = value.char_indices().find_map(|(i, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes.then_some(i + 1)
        });
        rest = end.map_or("", |end| &value[end..]);
    }
    out.push_str(rest);
    out
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
    /// A webhook URL, secret when it carries a token (see
    /// [`notify::webhook_url_carries_token`]).
    WebhookWithToken,
}

/// Every key that may carry a secret, and when its value is one. A value that is
/// one is refused in the TOML file (it is likely committed or world-readable) and
/// must come from the environment instead (`HR_BRIDGE__SECTION__KEY`). A new key
/// that can carry a secret joins this list.
const FILE_SECRETS: &[(&str, FileSecret)] = &[
    (
        "omflow.password",
        FileSecret::Always(", or put an Argon2 hash in omflow.password_hash"),
    ),
    ("database.url", FileSecret::UrlWithPassword),
    ("state.url", FileSecret::UrlWithPassword),
    ("notify.webhook_url", FileSecret::WebhookWithToken),
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
            toml_error(text, &e)
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
            // The URL is never quoted: it is the secret.
            FileSecret::WebhookWithToken => value
                .into_string()
                .is_ok_and(|url| notify::webhook_url_carries_token(&url))
                .then(|| {
                    format!(
                        "{key} in {} carries a token (a Slack or Teams webhook URL, a query \
                         string, a user or password, or a long generated path segment); set it \
                         in the environment only ({env})",
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

/// Where and why a file is not TOML, without the parser's quote of the line:
/// that line may be a password or a URL that carries one.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = one_line(error.message());
    let Some(span) = error.span() else {
        return message;
    };
    let before = &text.as_bytes()[..span.start.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    format!("line {line}, column {column}: {message}")
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

/// A TOML list or one comma-separated string (as environment values are).
pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
        let nets: Vec<String> = settings
            .auth
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8"]);
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
        let nets: Vec<String> = settings
            .auth
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        // A single address is its own /32 (or /128).
        assert_eq!(nets, ["10.0.0.0/8", "192.168.1.1/32"]);
        let settings = Settings::load_from(
            None,
            env(&[("HR_BRIDGE__AUTH__TRUSTED_PROXIES", "::1, fd00::/8")]),
        )
        .expect("valid settings");
        assert_eq!(settings.auth.trusted_proxies[0].to_string(), "::1/128");
        assert_eq!(settings.auth.trusted_proxies[1].prefix_len(), 8);
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
        // One second is the default failure floor: it must be lowered with it.
        let one = Settings::load_from(
            None,
            env(&[
                ("HR_BRIDGE__SERVER__REQUEST_TIMEOUT_SECS", "1"),
                ("HR_BRIDGE__AUTH__FAILURE_FLOOR_MS", "500"),
            ]),
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

    /// The typed values are refused at load, with the same one line as when
    /// they were text checked later: the key, the value, an example.
    #[test]
    fn typed_values_are_refused_in_one_line_naming_the_key() {
        for (key, value, expected) in [
            (
                "HR_BRIDGE__SERVER__LISTEN",
                "nowhere",
                "configuration error: server.listen = \"nowhere\" is not an address \
                 like 0.0.0.0:8080",
            ),
            (
                "HR_BRIDGE__SERVER__METRICS_LISTEN",
                "localhost:9100",
                "configuration error: server.metrics_listen = \"localhost:9100\" is not an \
                 address like 127.0.0.1:9100",
            ),
            (
                "HR_BRIDGE__AUTH__TRUSTED_PROXIES",
                "10.0.0.0/8, proxy.local",
                "configuration error: auth.trusted_proxies: \"proxy.local\" is not an IP \
                 address or CIDR range",
            ),
            (
                "HR_BRIDGE__SYNC__GUARD",
                "maybe",
                "configuration error: sync.guard must be \"on\" or \"off\", not \"maybe\"",
            ),
        ] {
            let err = Settings::load_from(None, env(&[(key, value)])).expect_err(key);
            assert_eq!(err.to_string(), expected);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("hr-bridge.toml");
        std::fs::write(&file, "[auth]\ntrusted_proxies = [\"10.0.0.1\", \"x\"]\n")
            .expect("write config");
        let err = Settings::load_from(Some(&file), env(&[])).expect_err("bad entry");
        assert_eq!(
            err.to_string(),
            "configuration error: auth.trusted_proxies: \"x\" is not an IP address or CIDR range"
        );
        // Another type than the key wants still names the key (the loader's words).
        let err = Settings::load_from(None, env(&[("HR_BRIDGE__DATABASE__MAX_CONNECTIONS", "x")]))
            .expect_err("not a number");
        assert!(
            err.to_string().contains("database.max_connections"),
            "{err}"
        );
    }

    #[test]
    fn a_webhook_url_with_a_token_comes_from_the_environment_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("hr-bridge.toml");
        let secret = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX";
        std::fs::write(&file, format!("[notify]\nwebhook_url = \"{secret}\"\n"))
            .expect("write config");
        let err = Settings::load_from(Some(&file), env(&[]))
            .expect_err("a token in the file")
            .to_string();
        assert!(err.contains("notify.webhook_url"), "{err}");
        assert!(err.contains("HR_BRIDGE__NOTIFY__WEBHOOK_URL"), "{err}");
        assert!(!err.contains("XXXX"), "the URL is never shown: {err}");
        // The same URL from the environment, and a tokenless one from the file.
        let settings = Settings::load_from(
            None,
            env(&[
                ("HR_BRIDGE__NOTIFY__WEBHOOK_URL", secret),
                ("HR_BRIDGE__NOTIFY__FORMAT", "slack"),
            ]),
        )
        .expect("environment");
        assert!(settings.notify.is_enabled());
        assert_eq!(settings.notify.format, notify::Format::Slack);
        std::fs::write(
            &file,
            "[notify]\nwebhook_url = \"https://alerts.example.com/hr-bridge\"\nafter_secs = 30\n",
        )
        .expect("write config");
        let settings = Settings::load_from(Some(&file), env(&[])).expect("tokenless");
        assert_eq!(settings.notify.after_secs, 30);
        let err = Settings::load_from(None, env(&[("HR_BRIDGE__NOTIFY__AFTER_SECS", "0")]))
            .expect_err("validated with the rest");
        assert!(err.to_string().contains("notify.after_secs"), "{err}");
    }

    #[test]
    fn every_section_checks_its_own_keys() {
        for (key, value, named) in [
            (
                "HR_BRIDGE__SERVER__BODY_LIMIT_BYTES",
                "0",
                "server.body_limit_bytes",
            ),
            (
                "HR_BRIDGE__SERVER__IDLE_TIMEOUT_SECS",
                "0",
                "server.idle_timeout_secs",
            ),
            (
                "HR_BRIDGE__SERVER__MAX_CONNECTIONS",
                "0",
                "server.max_connections",
            ),
            ("HR_BRIDGE__DATABASE__URL", "oracle://x", "database.url"),
            (
                "HR_BRIDGE__DATABASE__MAX_CONNECTIONS",
                "0",
                "database.max_connections",
            ),
            ("HR_BRIDGE__STATE__URL", "redis://x", "state.url"),
            (
                "HR_BRIDGE__AUTH__MAX_CONCURRENT_CHECKS",
                "0",
                "auth.max_concurrent_checks",
            ),
            (
                "HR_BRIDGE__AUTH__ARGON2_M_COST_KIB",
                "1",
                "auth.argon2_m_cost_kib",
            ),
            (
                "HR_BRIDGE__AUTH__FAILURE_FLOOR_MS",
                "10001",
                "auth.failure_floor_ms",
            ),
            (
                "HR_BRIDGE__AUTH__AUDIT_RETENTION_DAYS",
                "0",
                "auth.audit_retention_days",
            ),
            (
                "HR_BRIDGE__SYNC__HISTORY_RETENTION_DAYS",
                "0",
                "sync.history_retention_days",
            ),
            ("HR_BRIDGE__OMFLOW__USERNAME", "a:b", "omflow.username"),
            (
                "HR_BRIDGE__OMFLOW__PASSWORD_HASH",
                "$2b$10$x",
                "omflow.password_hash",
            ),
            ("HR_BRIDGE__OMFLOW__PASSWORD", "", "omflow.password"),
            ("HR_BRIDGE__LOG__LEVEL", "[", "log.level"),
        ] {
            let err = Settings::load_from(None, env(&[(key, value)])).expect_err(key);
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
    }
}
