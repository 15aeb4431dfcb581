//! Rendering `hr-bridge preview` for people (text) and scripts (JSON).

use std::fmt::Write;

use serde_json::json;

use serde_json::Value;

use crate::directory::snapshot::{Changed, FieldChange, KindDiff};
use crate::directory::GuardLimits;
use crate::directory::Preview;

/// Keys listed per section in the text form; `--json` lists all.
const SHOWN: usize = 50;
/// Members named per side of a changed `user_list` in the text form.
const MEMBERS_SHOWN: usize = 10;

fn list(out: &mut String, title: &str, keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    let _ = write!(out, "  {title} ({}):", keys.len());
    for key in keys.iter().take(SHOWN) {
        let _ = write!(out, " {key}");
    }
    if keys.len() > SHOWN {
        let _ = write!(out, " … and {} more", keys.len() - SHOWN);
    }
    out.push('\n');
}

fn kind(out: &mut String, name: &str, diff: &KindDiff) {
    let _ = writeln!(
        out,
        "{name}: {} added, {} changed, {} dropped",
        diff.added.len(),
        diff.changed.len(),
        diff.dropped.len()
    );
    list(out, "added", &diff.added);
    if !diff.changed.is_empty() {
        let _ = writeln!(out, "  changed ({}):", diff.changed.len());
        for changed in diff.changed.iter().take(SHOWN) {
            changed_line(out, changed);
        }
        if diff.changed.len() > SHOWN {
            let _ = writeln!(
                out,
                "    … and {} more (`--json` lists all)",
                diff.changed.len() - SHOWN
            );
        }
    }
    list(out, "dropped", &diff.dropped);
}

/// `    key: field "old" → "new"; user_list +added −removed`
fn changed_line(out: &mut String, changed: &Changed) {
    let parts: Vec<String> = changed
        .changes
        .iter()
        .map(|(field, change)| format!("{field} {}", change_text(change)))
        .collect();
    let _ = writeln!(out, "    {}: {}", changed.key, parts.join("; "));
}

/// A member list as who joins and who leaves; any other value as old → new (JSON
/// strings, so that an empty value and blanks stay visible).
fn change_text(change: &FieldChange) -> String {
    if let (Value::Array(old), Value::Array(new)) = (&change.old, &change.new) {
        let side = |sign: char, from: &[Value], other: &[Value]| {
            let names: Vec<String> = from
                .iter()
                .filter(|v| !other.contains(v))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let mut text: Vec<String> = names
                .iter()
                .take(MEMBERS_SHOWN)
                .map(|n| format!("{sign}{n}"))
                .collect();
            if names.len() > MEMBERS_SHOWN {
                text.push(format!("{sign}{} more", names.len() - MEMBERS_SHOWN));
            }
            text
        };
        let mut parts = side('+', new, old);
        parts.extend(side('−', old, new));
        return parts.join(" ");
    }
    format!("{} → {}", change.old, change.new)
}

pub fn to_text(preview: &Preview) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/sync would serve {} users and {} departments ({} bytes)",
        preview.payload.users, preview.payload.groups, preview.payload.bytes
    );
    match &preview.snapshot {
        Some(s) => {
            let _ = writeln!(
                out,
                "last served snapshot: {} ({} users, {} departments)",
                s.taken_at, s.user_count, s.group_count
            );
        }
        None => {
            let _ = writeln!(
                out,
                "no snapshot yet: the first /sync records one and is never refused"
            );
        }
    }
    kind(&mut out, "users", &preview.diff.users);
    kind(&mut out, "departments", &preview.diff.groups);
    match &preview.guard {
        Some(message) => {
            let _ = writeln!(out, "deletion guard: WOULD REFUSE. {message}");
        }
        None => {
            let _ = writeln!(out, "deletion guard: would pass");
        }
    }
    out
}

/// The preview for scripts: counts, the snapshot, every added, changed (with old and
/// new values) and dropped key, the guard's verdict, and under `payload` the
/// document `/sync` would serve, byte for byte, so that a script can diff it.
pub fn to_json(preview: &Preview, limits: &GuardLimits) -> String {
    let summary = json!({
        "serve": {
            "users": preview.payload.users,
            "groups": preview.payload.groups,
            "bytes": preview.payload.bytes,
        },
        "snapshot": preview.snapshot.as_ref().map(|s| json!({
            "taken_at": s.taken_at,
            "users": s.user_count,
            "groups": s.group_count,
        })),
        "users": preview.diff.users,
        "groups": preview.diff.groups,
        "guard": {
            "would_refuse": preview.guard.is_some(),
            "message": preview.guard,
            "max_deletions": limits.max_deletions,
            "max_deletion_ratio": limits.max_ratio,
        },
    })
    .to_string();
    // The payload is already serialized JSON: splice it in rather than parse a
    // document of 100,000 users back into a `Value` only to print it again.
    let Ok(payload) = preview.payload.json() else {
        return summary;
    };
    let payload = String::from_utf8_lossy(&payload);
    match summary.strip_suffix('}') {
        Some(head) => format!("{head},\"payload\":{payload}}}"),
        None => summary,
    }
}
