//! The activity record: what operators did through hr-bridge (a lockout lifted,
//! deletions approved, a console sign-in or sign-out), by whom, through which
//! channel, and when. The CLI and the web console write it through [`record`] and
//! read it through [`list`].

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::db::{ActivityRow, Db, DbError, NewActivity};

/// Longest actor name, subject and detail stored (in characters); longer ones
/// are cut, so that a hostile value cannot make the record refuse a row.
const MAX_FIELD_CHARS: usize = 255;
const MAX_DETAIL_CHARS: usize = 1000;
const MAX_ACTION_CHARS: usize = 64;

/// Where an action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The `hr-bridge` command line.
    Cli,
    /// The web console.
    Console,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Console => "console",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "cli" => Some(Self::Cli),
            "console" => Some(Self::Console),
            _ => None,
        }
    }
}

/// Who did something, and through which channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub name: String,
    pub channel: Channel,
}

impl Actor {
    /// The operator running this command: `$SUDO_USER` (the person behind `sudo`),
    /// else `$USER`, else `unknown`.
    pub fn from_cli() -> Actor {
        Self::cli_from(|key| std::env::var(key).ok())
    }

    fn cli_from(var: impl Fn(&str) -> Option<String>) -> Actor {
        let name = ["SUDO_USER", "USER"]
            .into_iter()
            .filter_map(&var)
            .map(|value| value.trim().to_owned())
            .find(|value| !value.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        Actor {
            name,
            channel: Channel::Cli,
        }
    }
}

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    /// `cli` or `console` (another value, written by a newer release, as it is).
    pub channel: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

impl From<ActivityRow> for Activity {
    fn from(row: ActivityRow) -> Self {
        Self {
            id: row.id,
            at: row.at,
            actor: row.actor,
            channel: Channel::parse(&row.channel)
                .map(|c| c.name().to_owned())
                .unwrap_or(row.channel),
            action: row.action,
            subject: row.subject,
            detail: row.detail,
        }
    }
}

/// Now, in unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn cut(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Records that `actor` did `action` (`unlock`, `approve_deletions`,
/// `console_sign_in`, `console_sign_out`) on `subject` (a username, an approval
/// id; `""` for none), with free-text `detail`.
pub async fn record(
    db: &Db,
    actor: &Actor,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<(), DbError> {
    db.insert_activity(&NewActivity {
        at: now_ms(),
        actor: cut(&actor.name, MAX_FIELD_CHARS),
        channel: actor.channel.name(),
        action: cut(action, MAX_ACTION_CHARS),
        subject: cut(subject, MAX_FIELD_CHARS),
        detail: cut(detail, MAX_DETAIL_CHARS),
    })
    .await
}

/// The newest actions first: `limit` of them, after skipping `offset`.
pub async fn list(db: &Db, limit: u32, offset: u32) -> Result<Vec<Activity>, DbError> {
    Ok(db
        .activity_page(limit, offset)
        .await?
        .into_iter()
        .map(Activity::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_actor_is_the_person_behind_sudo_then_the_user() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let actor = Actor::cli_from(env(&[("SUDO_USER", "alice"), ("USER", "root")]));
        assert_eq!(actor.name, "alice");
        assert_eq!(actor.channel, Channel::Cli);
        assert_eq!(Actor::cli_from(env(&[("USER", "bob")])).name, "bob");
        assert_eq!(
            Actor::cli_from(env(&[("SUDO_USER", " "), ("USER", "bob")])).name,
            "bob"
        );
        assert_eq!(Actor::cli_from(env(&[])).name, "unknown");
    }

    #[test]
    fn long_values_are_cut_on_character_boundaries() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("ééé", 2), "éé");
        assert_eq!(
            serde_json::to_value(Channel::Console).ok(),
            Some("console".into())
        );
    }
}
