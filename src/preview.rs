//! Rendering `hr-bridge preview` for people (text) and scripts (JSON).

use std::fmt::Write;

use serde_json::json;

use crate::directory::snapshot::KindDiff;
use crate::directory::GuardLimits;
use crate::directory::Preview;

/// Keys listed per section in the text form; `--json` lists all.
const SHOWN: usize = 50;

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
        let _ = write!(out, "  changed ({}):", diff.changed.len());
        for changed in diff.changed.iter().take(SHOWN) {
            let _ = write!(out, " {} ({})", changed.key, changed.fields.join(", "));
        }
        if diff.changed.len() > SHOWN {
            let _ = write!(out, " … and {} more", diff.changed.len() - SHOWN);
        }
        out.push('\n');
    }
    list(out, "dropped", &diff.dropped);
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

pub fn to_json(preview: &Preview, limits: &GuardLimits) -> String {
    json!({
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
    .to_string()
}
