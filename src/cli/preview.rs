//! `hr-bridge preview [--json]`: what `/sync` would serve now and what it adds,
//! changes and drops against the last served snapshot; records nothing.
//!
//! The domain (`directory::preview`) computes the preview and its diff; how it is
//! shown (text for people, JSON for scripts, spooled through temporary files) is
//! this command's output format, so it is rendered here.

use std::fmt::Write;
use std::io::{Seek, Write as _};
use std::process::ExitCode;

use serde_json::json;
use serde_json::Value;

use super::check::report_problems;
use super::stores;
use crate::config::Settings;
use crate::directory::snapshot::{diff_each, Changed, Event, FieldChange, Kind, KindSummary};
use crate::directory::GuardLimits;
use crate::directory::{self, Preview, SyncError};
use crate::escape::escape;

pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let (db, source) = stores::open(settings)?;
    stores::check_source(&source).await?;
    let limits = crate::app::guard_limits(&settings.sync);
    let preview = match directory::preview(&source, &db, &limits).await {
        Err(SyncError::Invalid(problems)) => return Ok(report_problems(&problems)),
        other => other?,
    };
    if json {
        let stdout = std::io::stdout().lock();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
        write_json(&preview, &limits, &mut out)?;
    } else {
        print!("{}", to_text(&preview));
    }
    Ok(ExitCode::SUCCESS)
}

/// Keys listed per section in the text form; `--json` lists all.
const SHOWN: usize = crate::directory::PREVIEW_SHOWN;
/// Members named per side of a changed `user_list` in the text form.
const MEMBERS_SHOWN: usize = 10;

fn list(out: &mut String, title: &str, count: usize, keys: &[String]) {
    if count == 0 {
        return;
    }
    let _ = write!(out, "  {title} ({count}):");
    for key in keys.iter().take(SHOWN) {
        let _ = write!(out, " {}", escape(key));
    }
    if count > keys.len().min(SHOWN) {
        let _ = write!(out, " … and {} more", count - keys.len().min(SHOWN));
    }
    out.push('\n');
}

fn kind(out: &mut String, name: &str, diff: &KindSummary) {
    let _ = writeln!(
        out,
        "{name}: {} added, {} changed, {} dropped",
        diff.added, diff.changed, diff.dropped
    );
    list(out, "added", diff.added, &diff.added_sample);
    if diff.changed > 0 {
        let _ = writeln!(out, "  changed ({}):", diff.changed);
        let shown = diff.changed_sample.len().min(SHOWN);
        for changed in diff.changed_sample.iter().take(shown) {
            changed_line(out, changed);
        }
        if diff.changed > shown {
            let _ = writeln!(
                out,
                "    … and {} more (`--json` lists all)",
                diff.changed - shown
            );
        }
    }
    list(out, "dropped", diff.dropped, &diff.dropped_sample);
}

/// `    key: field "old" → "new"; user_list +added −removed`
fn changed_line(out: &mut String, changed: &Changed) {
    let parts: Vec<String> = changed
        .changes
        .iter()
        .map(|(field, change)| format!("{field} {}", change_text(change)))
        .collect();
    let _ = writeln!(out, "    {}: {}", escape(&changed.key), parts.join("; "));
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
                    Value::String(s) => escape(s).to_string(),
                    other => escape(&other.to_string()).to_string(),
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
    // JSON escapes only some controls (not C1, not bidi): escape what is left.
    format!(
        "{} → {}",
        escape(&change.old.to_string()),
        escape(&change.new.to_string())
    )
}

fn to_text(preview: &Preview) -> String {
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
    kind(&mut out, "users", &preview.summary.users);
    kind(&mut out, "departments", &preview.summary.groups);
    match &preview.guard {
        Some(message) => {
            let _ = writeln!(out, "deletion guard: WOULD REFUSE. {message}");
        }
        None if !preview.guard_enabled => {
            let _ = writeln!(
                out,
                "deletion guard: OFF (sync.guard = \"off\"): /sync serves whatever it drops"
            );
        }
        None => {
            let _ = writeln!(out, "deletion guard: would pass");
        }
    }
    out
}

/// One list of the JSON form, spooled to an anonymous temporary file while the
/// diff runs: the lists come out of one pass interleaved, and at a million
/// employees they would not fit the memory a preview may use.
struct Spool {
    file: std::io::BufWriter<std::fs::File>,
    empty: bool,
}

impl Spool {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            file: std::io::BufWriter::new(tempfile::tempfile()?),
            empty: true,
        })
    }

    fn push(&mut self, item: &impl serde::Serialize) -> std::io::Result<()> {
        if !std::mem::take(&mut self.empty) {
            self.file.write_all(b",")?;
        }
        serde_json::to_writer(&mut self.file, item)?;
        Ok(())
    }

    /// Writes the list, as a JSON array, to `out`.
    fn copy_to(self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(std::io::SeekFrom::Start(0))?;
        out.write_all(b"[")?;
        std::io::copy(&mut file, out)?;
        out.write_all(b"]")
    }
}

/// The preview for scripts, written to `out` as it is made: counts, the snapshot,
/// every added, changed (with old and new values) and dropped key, the guard's
/// verdict, and under `payload` the document `/sync` would serve, byte for byte,
/// so that a script can diff it.
fn write_json(
    preview: &Preview,
    limits: &GuardLimits,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let mut lists = Vec::with_capacity(6);
    for _ in 0..6 {
        lists.push(Spool::new()?);
    }
    let mut failed = None;
    diff_each(
        preview.snapshot.as_ref(),
        &preview.payload,
        &mut |kind, event| {
            let base = match kind {
                Kind::User => 0,
                Kind::Group => 3,
            };
            let written = match &event {
                Event::Added(key) => lists[base].push(key),
                Event::Changed(changed) => lists[base + 1].push(changed),
                Event::Dropped(key) => lists[base + 2].push(key),
            };
            if let Err(e) = written {
                failed.get_or_insert(e);
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let head = json!({
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
        "guard": {
            "enabled": limits.enabled,
            "would_refuse": preview.guard.is_some(),
            "message": preview.guard,
            "max_deletions": limits.max_deletions,
            "max_deletion_ratio": limits.max_ratio,
            "min_objects": limits.min_objects,
        },
    })
    .to_string();
    out.write_all(head.strip_suffix('}').unwrap_or(&head).as_bytes())?;
    let mut lists = lists.into_iter();
    for kind in ["users", "groups"] {
        write!(out, ",\"{kind}\":{{")?;
        for (i, name) in ["added", "changed", "dropped"].iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write!(out, "\"{name}\":")?;
            if let Some(list) = lists.next() {
                list.copy_to(out)?;
            }
        }
        out.write_all(b"}")?;
    }
    // The payload is already serialized JSON: copied as it is decompressed.
    out.write_all(b",\"payload\":")?;
    std::io::copy(&mut preview.payload.reader(), out)?;
    out.write_all(b"}\n")?;
    out.flush()?;
    Ok(())
}
