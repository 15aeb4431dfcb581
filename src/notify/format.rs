//! A [`Message`] as the body of a POST, in the configured [`Format`]. Names we did
//! not write are neutralised for each format: control characters escaped
//! (`crate::escape`) everywhere, and the format's own markup made inert (Slack's
//! `&`, `<`, `>` and code spans; Markdown punctuation in a Teams card), so that a
//! username cannot ping a channel, forge a link or restyle the message.

use serde_json::{json, Value};

use super::message::{rfc3339, Message, Segment, Tone};
use super::Format;

/// The Adaptive Card schema version: 1.4 renders in every current Teams client
/// (desktop, web and mobile) and has everything used here.
const ADAPTIVE_CARD_VERSION: &str = "1.4";

/// The body to POST.
pub fn render(message: &Message, format: Format, console_url: Option<&str>) -> Value {
    let link = link(message, console_url);
    match format {
        Format::Json => json!({
            "event": message.event,
            "summary": plain(&message.summary),
            "details": message.details,
            "occurred_at": rfc3339(message.occurred_at),
            "console_url": console_url,
            "link": link,
        }),
        Format::Slack => json!({ "text": slack(message, link.as_deref()) }),
        Format::Teams => teams(message, link.as_deref()),
    }
}

/// The page a message links to: `notify.console_url`, or the message's own
/// page below it (a guard refusal's `/pending`, where the set is approved).
pub fn link(message: &Message, console_url: Option<&str>) -> Option<String> {
    let base = console_url?;
    let Some(page) = message.console_page else {
        return Some(base.to_owned());
    };
    match url::Url::parse(base) {
        Ok(mut url) => {
            let path = format!("{}{page}", url.path().trim_end_matches('/'));
            url.set_path(&path);
            Some(url.to_string())
        }
        // The configuration accepts only URLs; just in case, the link as given.
        Err(_) => Some(base.to_owned()),
    }
}

/// The words of a message's link.
fn link_label(message: &Message) -> &'static str {
    match message.console_page {
        Some(_) => "Review the pending deletions",
        None => "Open hr-bridge",
    }
}

/// The summary as plain text: names quoted, with control characters escaped.
pub fn plain(summary: &[Segment]) -> String {
    let mut out = String::new();
    for segment in summary {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Name(name) => out.push_str(&crate::escape::quote(name).to_string()),
            Segment::Command(command) => {
                out.push('`');
                out.push_str(&crate::escape::escape(command).to_string());
                out.push('`');
            }
        }
    }
    out
}

/// Slack's three control characters, as its documentation asks.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` as an inline code span, where Slack applies no formatting and makes no
/// links; a backtick inside would end the span, so it is shown escaped.
fn slack_code(text: &str) -> String {
    let shown = crate::escape::escape(text)
        .to_string()
        .replace('`', "\\u{60}");
    if shown.is_empty() {
        return "`\"\"`".into();
    }
    format!("`{}`", slack_escape(&shown))
}

fn slack(message: &Message, link: Option<&str>) -> String {
    let mut summary = String::new();
    for segment in &message.summary {
        match segment {
            Segment::Text(text) => summary.push_str(&slack_escape(text)),
            Segment::Name(text) | Segment::Command(text) => summary.push_str(&slack_code(text)),
        }
    }
    let mut out = format!(
        "*hr-bridge: {}*\n{summary}\n_{}_",
        slack_escape(message.title),
        rfc3339(message.occurred_at)
    );
    if let Some(url) = link {
        // Inside `<url|label>`, `|` and `>` would end the URL early.
        let url = url
            .replace('&', "&amp;")
            .replace('<', "%3C")
            .replace('>', "%3E")
            .replace('|', "%7C");
        out.push_str(&format!("\n<{url}|{}>", link_label(message)));
    }
    out
}

/// `text` with the characters Markdown (as Teams renders it in a card) would
/// act on escaped by a backslash. Names are always inside quotes, never at the
/// start of a line, so line-start markers (`#`, `-`, `1.`) cannot act.
fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '[' | ']' | '(' | ')' | '<' | '>' | '|' | '{' | '}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn teams(message: &Message, link: Option<&str>) -> Value {
    let mut summary = String::new();
    for segment in &message.summary {
        match segment {
            Segment::Text(text) => summary.push_str(text),
            Segment::Name(name) => {
                summary.push_str(&markdown_escape(&crate::escape::quote(name).to_string()))
            }
            Segment::Command(command) => {
                summary.push_str("**");
                summary.push_str(&markdown_escape(
                    &crate::escape::escape(command).to_string(),
                ));
                summary.push_str("**");
            }
        }
    }
    let color = match message.tone {
        Tone::Alert => "Attention",
        Tone::Recovery => "Good",
    };
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "fallbackText": plain(&message.summary),
        "body": [
            {
                "type": "TextBlock",
                "text": format!("hr-bridge: {}", message.title),
                "weight": "Bolder",
                "size": "Medium",
                "color": color,
                "wrap": true,
            },
            { "type": "TextBlock", "text": summary, "wrap": true },
            {
                "type": "TextBlock",
                "text": rfc3339(message.occurred_at),
                "isSubtle": true,
                "size": "Small",
                "wrap": true,
            },
        ],
    });
    if let Some(url) = link {
        card["actions"] = json!([
            { "type": "Action.OpenUrl", "title": link_label(message), "url": url }
        ]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::notify::event::Refusal;
    use crate::notify::message;

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_000_000)
    }

    fn guard(names: &[&str]) -> Message {
        message::sync_refused(
            &Refusal::DeletionGuard {
                users: 12,
                departments: 1,
                usernames: names.iter().map(|n| (*n).to_owned()).collect(),
                approval_id: Some("a1b2".into()),
            },
            at(),
        )
    }

    #[test]
    fn json_is_the_documented_object() {
        let body = render(
            &guard(&["alice", "bob"]),
            Format::Json,
            Some("https://hr.example.com/console"),
        );
        assert_eq!(
            body,
            json!({
                "event": "sync_refused",
                "summary": "hr-bridge refused a sync: it would have dropped 12 users and \
                    1 department (\"alice\", \"bob\" and 10 more). OMFLOW keeps its current \
                    data, new hires included, until someone reviews the drops and approves \
                    them: `hr-bridge accept-deletions a1b2`.",
                "details": {
                    "reason": "deletion_guard",
                    "users": 12,
                    "departments": 1,
                    "usernames": ["alice", "bob"],
                    "approval_id": "a1b2",
                },
                "occurred_at": "2026-11-30T00:53:20Z",
                "console_url": "https://hr.example.com/console",
                "link": "https://hr.example.com/console/pending",
            })
        );
        let served = render(&message::sync_served_again(at()), Format::Json, None);
        assert_eq!(served["event"], "sync_served_again");
        assert_eq!(served["console_url"], Value::Null);
        assert_eq!(served["link"], Value::Null);
        let served = render(
            &message::sync_served_again(at()),
            Format::Json,
            Some("https://hr.example.com/console/"),
        );
        assert_eq!(served["link"], "https://hr.example.com/console/");
        assert_eq!(served["details"], json!({}));
    }

    #[test]
    fn slack_names_cannot_ping_link_or_format() {
        let hostile = ["<!channel>", "a&b `x` *y*", "evil\u{1b}[2J\n", ""];
        let body = render(&guard(&hostile), Format::Slack, Some("https://x/c?a=1|b>"));
        let text = body["text"].as_str().expect("text");
        assert!(text.starts_with("*hr-bridge: Sync refused by the deletion guard*\n"));
        assert!(text.contains("`&lt;!channel&gt;`"), "{text}");
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(text.contains("`a&amp;b \\u{60}x\\u{60} *y*`"), "{text}");
        assert!(text.contains("`evil\\u{1b}[2J\\n`"), "{text}");
        assert!(text.contains("`\"\"`"), "{text}");
        assert!(
            text.ends_with("\n<https://x/c/pending?a=1%7Cb%3E|Review the pending deletions>"),
            "{text}"
        );
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
        // Exactly one link: ours.
        assert_eq!(text.matches('<').count(), 1, "{text}");
    }

    #[test]
    fn teams_gets_an_adaptive_card_with_inert_names() {
        let body = render(
            &guard(&["[click](https://evil.example)", "**bold**"]),
            Format::Teams,
            Some("https://hr.example.com/console"),
        );
        assert_eq!(body["type"], "message");
        let attachment = &body["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], ADAPTIVE_CARD_VERSION);
        assert_eq!(
            card["body"][0]["text"],
            "hr-bridge: Sync refused by the deletion guard"
        );
        assert_eq!(card["body"][0]["color"], "Attention");
        let summary = card["body"][1]["text"].as_str().expect("summary");
        assert!(
            summary.contains(r#""\[click\]\(https://evil.example\)""#),
            "{summary}"
        );
        assert!(summary.contains(r#""\*\*bold\*\*""#), "{summary}");
        assert!(
            summary.contains("**hr-bridge accept-deletions a1b2**"),
            "{summary}"
        );
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(
            card["actions"][0]["url"],
            "https://hr.example.com/console/pending"
        );
        assert_eq!(card["actions"][0]["title"], "Review the pending deletions");
        let recovery = render(&message::sync_served_again(at()), Format::Teams, None);
        let card = &recovery["attachments"][0]["content"];
        assert_eq!(card["body"][0]["color"], "Good");
        assert!(card.get("actions").is_none());
    }

    #[test]
    fn a_guard_refusal_links_to_the_pending_page_below_the_console() {
        let refused = guard(&["alice"]);
        for (console, expected) in [
            ("https://hr.example.com", "https://hr.example.com/pending"),
            ("https://hr.example.com/", "https://hr.example.com/pending"),
            (
                "https://hr.example.com/console/",
                "https://hr.example.com/console/pending",
            ),
            (
                "https://hr.example.com/console?x=1#top",
                "https://hr.example.com/console/pending?x=1#top",
            ),
        ] {
            assert_eq!(
                link(&refused, Some(console)).as_deref(),
                Some(expected),
                "{console}"
            );
        }
        assert_eq!(link(&refused, None), None);
        let locked = message::account_locked("bob", at(), at());
        assert_eq!(
            link(&locked, Some("https://hr.example.com/console")).as_deref(),
            Some("https://hr.example.com/console")
        );
        let slack = render(&locked, Format::Slack, Some("https://hr.example.com/c"));
        assert!(slack["text"]
            .as_str()
            .is_some_and(|t| t.ends_with("<https://hr.example.com/c|Open hr-bridge>")));
    }

    #[test]
    fn control_characters_never_reach_any_format() {
        let locked = message::account_locked("mallory\u{202e}\r\nforged", at(), at());
        for format in [Format::Json, Format::Slack, Format::Teams] {
            let body = render(&locked, format, None).to_string();
            // serde_json writes control characters as \uXXXX escapes, but none
            // may be there to write: the names arrive escaped already.
            let value: Value = serde_json::from_str(&body).expect("json");
            let strings = collect_strings(&value);
            for s in strings {
                assert!(
                    !s.chars().any(|c| crate::escape::is_control(c) && c != '\n'),
                    "{format:?}: {s:?}"
                );
            }
        }
    }

    fn collect_strings(value: &Value) -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items.iter().flat_map(collect_strings).collect(),
            Value::Object(map) => map.values().flat_map(collect_strings).collect(),
            _ => Vec::new(),
        }
    }
}
