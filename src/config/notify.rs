//! `[notify]`: where and how hr-bridge posts its notifications.
//!
//! Plain data with its own validation, like every section; a webhook URL that
//! [`webhook_url_carries_token`] is on the list of values the TOML file may not
//! hold (`FILE_SECRETS`).
//!
//! `notify.webhook_url` and `notify.format` are the keys OMFLOW's operators know
//! from elsewhere; `notify.after_secs` and `notify.console_url` are hr-bridge's own.
//!
//! ## The secret rule
//!
//! A webhook URL usually *is* the credential: whoever has Slack's
//! `https://hooks.slack.com/services/T…/B…/…` or a Teams workflow URL with its
//! `sig=` can post into the channel. So, read from the TOML file (likely committed
//! or world-readable), `notify.webhook_url` is accepted only when it carries
//! nothing secret: no user or password, no query string, and no path segment that
//! looks like a token (16 or more characters with a digit among them, or 32 or
//! more characters of any kind); a `hooks.slack.com` URL always counts as secret.
//! Anything else comes from the environment only (`HR_BRIDGE__NOTIFY__WEBHOOK_URL`).
//! The rule errs on the side of "secret": a harmless URL that looks like a token
//! merely has to move to the environment.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ConfigError as SettingsError;

/// How long a database must stay unreachable before a message, when unset: long
/// enough that a restart or a failover does not page anyone.
pub const DEFAULT_AFTER_SECS: u64 = 60;
/// Longest `notify.after_secs`: an outage noticed a day late is not noticed.
pub const MAX_AFTER_SECS: u64 = 86_400;

/// The body posted to the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// hr-bridge's own object (`event`, `summary`, `details`, `occurred_at`,
    /// `console_url`), for a relay or an alerting system.
    #[default]
    Json,
    /// A Slack incoming webhook: `{"text": …}` in Slack's mrkdwn.
    Slack,
    /// A Microsoft Teams workflow ("When a Teams webhook request is received"): a
    /// message carrying one Adaptive Card.
    Teams,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
            Self::Teams => "teams",
        }
    }
}

/// `[notify]`. Without `webhook_url` nothing is sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// Where to POST. Often carries a token, hence secret (see the module's rule).
    pub webhook_url: Option<SecretString>,
    pub format: Format,
    /// How long the source or the state database must stay unreachable before a
    /// message (and a shorter outage sends nothing).
    pub after_secs: u64,
    /// A link put into every message (the web console, a runbook).
    pub console_url: Option<String>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            webhook_url: None,
            format: Format::Json,
            after_secs: DEFAULT_AFTER_SECS,
            console_url: None,
        }
    }
}

impl NotifySettings {
    /// True when a webhook is configured.
    pub fn is_enabled(&self) -> bool {
        self.webhook_url.is_some()
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if let Some(url) = &self.webhook_url {
            check_webhook_url(url.expose_secret())?;
        }
        if self.after_secs == 0 || self.after_secs > MAX_AFTER_SECS {
            return Err(SettingsError(format!(
                "notify.after_secs must be between 1 and {MAX_AFTER_SECS} (a database \
                 unreachable for less than this sends nothing)"
            )));
        }
        if let Some(link) = &self.console_url {
            let parsed = url::Url::parse(link).map_err(|_| {
                SettingsError(format!(
                    "notify.console_url = {link:?} is not a URL like https://hr-bridge.example.com/console"
                ))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(SettingsError(format!(
                    "notify.console_url = {link:?} must be an http:// or https:// URL"
                )));
            }
        }
        Ok(())
    }
}

/// The webhook URL's own checks. The value is never quoted: it may be a secret.
fn check_webhook_url(text: &str) -> Result<(), SettingsError> {
    let url = url::Url::parse(text).map_err(|e| {
        SettingsError(format!(
            "notify.webhook_url is not a URL ({e}); it must be an https:// address"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SettingsError(format!(
            "notify.webhook_url must start with https:// or http://, not {}://",
            url.scheme()
        )));
    }
    let Some(host) = url.host() else {
        return Err(SettingsError("notify.webhook_url names no host".into()));
    };
    if url.fragment().is_some() {
        return Err(SettingsError(
            "notify.webhook_url has a #fragment, which is never sent; remove it".into(),
        ));
    }
    let loopback = match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    if url.scheme() == "http" && !loopback && webhook_url_carries_token(text) {
        return Err(SettingsError(
            "notify.webhook_url would send its token in clear text over http://; use https://"
                .into(),
        ));
    }
    Ok(())
}

/// True when a webhook URL carries a secret, and so may not come from the TOML
/// file (see the module's rule). An unparsable URL is left to
/// [`NotifySettings::validate`], which refuses it wherever it comes from.
pub fn webhook_url_carries_token(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return true;
    }
    if url.query().is_some_and(|q| !q.is_empty()) {
        return true;
    }
    if url
        .host_str()
        .is_some_and(|host| host.eq_ignore_ascii_case("hooks.slack.com"))
    {
        return true;
    }
    url.path_segments()
        .into_iter()
        .flatten()
        .any(looks_like_token)
}

/// A path segment that is probably a generated secret rather than a name.
fn looks_like_token(segment: &str) -> bool {
    let length = segment.chars().count();
    (length >= 16 && segment.chars().any(|c| c.is_ascii_digit())) || length >= 32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> NotifySettings {
        NotifySettings {
            webhook_url: Some(SecretString::from(url)),
            ..NotifySettings::default()
        }
    }

    #[test]
    fn webhook_urls_with_tokens_are_recognised() {
        for secret in [
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/anything",
            "https://prod-01.westeurope.logic.azure.com:443/workflows/0a1b/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig=abc",
            "https://relay.example.com/hook?token=x",
            "https://user:pass@relay.example.com/hook",
            "https://bot@relay.example.com/hook",
            "https://discord.com/api/webhooks/123456789012345678/abcDEF",
            "https://relay.example.com/hooks/3f2c1d9e-8b7a-4c6d-9e8f-0a1b2c3d4e5f",
            "https://relay.example.com/hooks/abcdefghijklmnopqrstuvwxyzabcdefgh",
        ] {
            assert!(webhook_url_carries_token(secret), "{secret}");
        }
        for plain in [
            "https://alerts.example.com/hr-bridge",
            "https://alerts.example.com/notifications/hr-bridge-production",
            "http://127.0.0.1:9000/",
            "https://alerts.example.com",
            "https://alerts.example.com/?",
        ] {
            assert!(!webhook_url_carries_token(plain), "{plain}");
        }
    }

    #[test]
    fn the_defaults_send_nothing_and_are_valid() {
        let settings = NotifySettings::default();
        assert!(!settings.is_enabled());
        assert_eq!(settings.format, Format::Json);
        assert_eq!(settings.after_secs, DEFAULT_AFTER_SECS);
        settings.validate().expect("defaults are valid");
    }

    #[test]
    fn bad_values_name_their_key_and_never_show_the_url() {
        for (url, key) in [
            ("hooks.example.com/x", "notify.webhook_url"),
            ("ftp://hooks.example.com/x", "notify.webhook_url"),
            ("https://hooks.example.com/x#frag", "notify.webhook_url"),
            (
                "http://hooks.example.com/services/T0/B0/SECRET1234567890abcd",
                "notify.webhook_url",
            ),
        ] {
            let err = with_url(url).validate().expect_err(url).to_string();
            assert!(err.contains(key), "{err}");
            assert!(!err.contains("SECRET"), "{err}");
            assert!(!err.contains("hooks.example.com"), "{err}");
        }
        // Plain http is fine for a loopback relay, token or not.
        with_url("http://127.0.0.1:9000/hook/abcdef0123456789")
            .validate()
            .expect("loopback");
        for after_secs in [0, MAX_AFTER_SECS + 1] {
            let err = NotifySettings {
                after_secs,
                ..NotifySettings::default()
            }
            .validate()
            .expect_err("out of range");
            assert!(err.to_string().contains("notify.after_secs"), "{err}");
        }
        let err = NotifySettings {
            console_url: Some("console".into()),
            ..NotifySettings::default()
        }
        .validate()
        .expect_err("not a URL");
        assert!(err.to_string().contains("notify.console_url"), "{err}");
    }

    #[test]
    fn the_section_reads_from_toml_and_refuses_unknown_keys_and_formats() {
        let settings: NotifySettings = toml::from_str(
            "webhook_url = \"https://alerts.example.com/hr\"\nformat = \"teams\"\nafter_secs = 30\n",
        )
        .expect("valid section");
        assert_eq!(settings.format, Format::Teams);
        assert_eq!(settings.after_secs, 30);
        assert!(!format!("{settings:?}").contains("alerts.example.com"));
        assert!(toml::from_str::<NotifySettings>("format = \"email\"").is_err());
        assert!(toml::from_str::<NotifySettings>("webhook = \"x\"").is_err());
    }
}
