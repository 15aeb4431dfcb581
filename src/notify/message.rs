//! The messages hr-bridge sends, independent of the format they are posted in:
//! a title, a one-sentence summary made of our own words and of names we did not
//! write (kept apart, so that each format can neutralise the names its own way),
//! and the details as a stable JSON object.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::event::{cut, Refusal, MAX_NAMES};

/// A condition's database, as messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbRole {
    /// The HR database hr-bridge reads.
    Source,
    /// hr-bridge's own tables, in a database of their own.
    State,
    /// One database holds both.
    Both,
}

impl DbRole {
    /// Its name in `details.database` and in `notify_state.subject`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Source => "source_database",
            Self::State => "state_database",
            Self::Both => "database",
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            Self::Source => "The source database (the HR data)",
            Self::State => "The state database (lockouts, audit trail, snapshot)",
            Self::Both => "The database",
        }
    }
}

/// A piece of a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Our own words.
    Text(String),
    /// A name or key from the HR data or a client: shown escaped and quoted.
    Name(String),
    /// A command to type, shown as code.
    Command(String),
}

/// Alerts ask someone to act; recoveries say that no one needs to any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Alert,
    Recovery,
}

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Stable name: `sync_refused`, `sync_served_again`, `database_unreachable`,
    /// `database_reachable`, `account_locked`, `accounts_locked`.
    pub event: &'static str,
    pub title: &'static str,
    pub tone: Tone,
    pub summary: Vec<Segment>,
    /// The stable, documented object of the `json` format.
    pub details: Value,
    /// The console page to link to, below `notify.console_url` (`/pending`);
    /// `None` links to the console itself.
    pub console_page: Option<&'static str>,
    pub occurred_at: SystemTime,
}

fn text(s: impl Into<String>) -> Segment {
    Segment::Text(s.into())
}

/// `n thing` or `n things`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// RFC 3339 in UTC, to the second.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `names` as `a, b and 3 more` (of `total`), each one a [`Segment::Name`].
fn name_list(names: &[String], total: u64) -> Vec<Segment> {
    let shown = &names[..names.len().min(MAX_NAMES)];
    let more = total.saturating_sub(shown.len() as u64);
    let mut out = Vec::new();
    for (i, name) in shown.iter().enumerate() {
        if i > 0 {
            let last = i + 1 == shown.len() && more == 0;
            out.push(text(if last { " and " } else { ", " }));
        }
        out.push(Segment::Name(cut(name)));
    }
    if more > 0 && !shown.is_empty() {
        out.push(text(format!(" and {more} more")));
    }
    out
}

/// Names as the details show them: cut, with control characters escaped.
fn shown_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .take(MAX_NAMES)
        .map(|n| crate::escape::escape(&cut(n)).to_string())
        .collect()
}

/// A sync was refused.
pub fn sync_refused(refusal: &Refusal, at: SystemTime) -> Message {
    match refusal {
        Refusal::DeletionGuard {
            users,
            departments,
            usernames,
            approval_id,
        } => {
            let mut summary = vec![text(format!(
                "hr-bridge refused a sync: it would have dropped {} and {}",
                count(*users, "user", "users"),
                count(*departments, "department", "departments"),
            ))];
            if !usernames.is_empty() {
                summary.push(text(" ("));
                summary.extend(name_list(usernames, *users));
                summary.push(text(")"));
            }
            summary.push(text(
                ". OMFLOW keeps its current data, new hires included, until someone reviews \
                 the drops and approves them",
            ));
            // Only an id made of letters, digits, `-` and `_` goes into a command
            // line an operator may paste into a shell.
            let pasteable = approval_id.as_deref().filter(|id| {
                !id.is_empty()
                    && id.len() <= 64
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
            match pasteable {
                Some(id) => {
                    summary.push(text(": "));
                    summary.push(Segment::Command(format!("hr-bridge accept-deletions {id}")));
                }
                None => {
                    summary.push(text(" ("));
                    summary.push(Segment::Command("hr-bridge preview".into()));
                    summary.push(text(", then "));
                    summary.push(Segment::Command("hr-bridge accept-deletions".into()));
                    summary.push(text(")"));
                }
            }
            summary.push(text("."));
            Message {
                event: "sync_refused",
                title: "Sync refused by the deletion guard",
                tone: Tone::Alert,
                summary,
                details: json!({
                    "reason": "deletion_guard",
                    "users": users,
                    "departments": departments,
                    "usernames": shown_names(usernames),
                    "approval_id": approval_id.as_deref().map(|id| crate::escape::escape(&cut(id)).to_string()),
                }),
                console_page: Some("/pending"),
                occurred_at: at,
            }
        }
        Refusal::InvalidData { problems, keys } => {
            let mut summary = vec![text(format!(
                "hr-bridge refused a sync: the HR data has {}",
                count(*problems, "problem", "problems"),
            ))];
            if !keys.is_empty() {
                summary.push(text(" (first records: "));
                summary.extend(name_list(keys, keys.len() as u64));
                summary.push(text(")"));
            }
            summary.push(text(
                ". OMFLOW keeps its current data, new hires included, until they are fixed; ",
            ));
            summary.push(Segment::Command("hr-bridge check".into()));
            summary.push(text(" lists them."));
            Message {
                event: "sync_refused",
                title: "Sync refused: invalid HR data",
                tone: Tone::Alert,
                summary,
                details: json!({
                    "reason": "invalid_data",
                    "problems": problems,
                    "keys": shown_names(keys),
                }),
                console_page: None,
                occurred_at: at,
            }
        }
    }
}

/// Syncs are served again after a refusal.
pub fn sync_served_again(at: SystemTime) -> Message {
    Message {
        event: "sync_served_again",
        title: "Syncs served again",
        tone: Tone::Recovery,
        summary: vec![text(
            "hr-bridge serves syncs to OMFLOW again after a refusal; OMFLOW is up to date.",
        )],
        details: json!({}),
        console_page: None,
        occurred_at: at,
    }
}

/// A database has been unreachable since `since`, for at least `after`.
pub fn database_unreachable(
    role: DbRole,
    since: SystemTime,
    after: Duration,
    at: SystemTime,
) -> Message {
    Message {
        event: "database_unreachable",
        title: "Database unreachable",
        tone: Tone::Alert,
        summary: vec![text(format!(
            "{} has been unreachable since {} (over {} s); /sync and /authenticate answer 503 \
             until it is back.",
            role.phrase(),
            rfc3339(since),
            after.as_secs(),
        ))],
        details: json!({
            "database": role.key(),
            "since": rfc3339(since),
            "after_secs": after.as_secs(),
        }),
        console_page: None,
        occurred_at: at,
    }
}

/// A database answers again; `since` is when it stopped, when known here.
pub fn database_reachable(role: DbRole, since: Option<SystemTime>, at: SystemTime) -> Message {
    let summary = match since {
        Some(since) => format!(
            "{} answers again (it was unreachable from {} to {}).",
            role.phrase(),
            rfc3339(since),
            rfc3339(at)
        ),
        None => format!("{} answers again.", role.phrase()),
    };
    Message {
        event: "database_reachable",
        title: "Database reachable again",
        tone: Tone::Recovery,
        summary: vec![text(summary)],
        details: json!({
            "database": role.key(),
            "unreachable_since": since.map(rfc3339),
        }),
        console_page: None,
        occurred_at: at,
    }
}

/// One account was locked.
pub fn account_locked(username: &str, until: SystemTime, at: SystemTime) -> Message {
    Message {
        event: "account_locked",
        title: "Account locked",
        tone: Tone::Alert,
        summary: vec![
            text("The account "),
            Segment::Name(cut(username)),
            // The name is not put into a command line: it is whatever a client
            // typed, and pasted into a shell it could run anything.
            text(format!(
                " is locked until {} after repeated failed logins; ",
                rfc3339(until)
            )),
            Segment::Command("hr-bridge unlock".into()),
            text(" with that username lifts it sooner."),
        ],
        details: json!({
            "username": crate::escape::escape(&cut(username)).to_string(),
            "locked_until": rfc3339(until),
        }),
        console_page: None,
        occurred_at: at,
    }
}

/// More accounts were locked within `window` after the last message about one.
pub fn accounts_locked(
    count_locked: u64,
    names: &[String],
    window: Duration,
    at: SystemTime,
) -> Message {
    let mut summary = vec![text(format!(
        "{} locked within {} s after repeated failed logins: ",
        count(count_locked, "more account was", "more accounts were"),
        window.as_secs()
    ))];
    summary.extend(name_list(names, count_locked));
    summary.push(text(
        ". Many lockouts at once usually mean password guessing; the audit trail has the details.",
    ));
    Message {
        event: "accounts_locked",
        title: "Accounts locked",
        tone: Tone::Alert,
        summary,
        details: json!({
            "count": count_locked,
            "usernames": shown_names(names),
            "window_secs": window.as_secs(),
        }),
        console_page: None,
        occurred_at: at,
    }
}
