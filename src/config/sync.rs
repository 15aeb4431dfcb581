//! `[sync]`: the deletion guard of `/sync`.

use serde::Deserialize;

use super::ConfigError;

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

/// A hundred years: beyond that a retention is a typo.
const MAX_HISTORY_RETENTION_DAYS: u32 = 36_500;

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
    /// Days the sync history (and finished approvals) are kept.
    pub history_retention_days: u32,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            guard: GuardSwitch::On,
            max_deletions: 500,
            max_deletion_ratio: 0.2,
            guard_min_objects: 10,
            history_retention_days: 400,
        }
    }
}

impl SyncSettings {
    /// Checks what serde cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.max_deletion_ratio) {
            return Err(ConfigError::new(
                "sync.max_deletion_ratio must be between 0.0 and 1.0",
            ));
        }
        if !(1..=MAX_HISTORY_RETENTION_DAYS).contains(&self.history_retention_days) {
            return Err(ConfigError::new(format!(
                "sync.history_retention_days must be between 1 and {MAX_HISTORY_RETENTION_DAYS}"
            )));
        }
        Ok(())
    }
}
