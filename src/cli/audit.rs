//! `hr-bridge audit [--username U] [--since WHEN] [--json|--csv]`: the login audit
//! trail, newest first, at most `--limit` rows.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::Serialize;

use super::stores;
use crate::config::Settings;
use crate::escape::escape;
use crate::ops::audit::{self, AuditQuery, AuditRow};

/// Rows shown when `--limit` is not given.
pub const DEFAULT_LIMIT: u32 = 1000;

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
    Csv,
}

/// What the command was asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub username: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub address: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: u32,
    pub output: Output,
}

/// `--since`/`--until`: an RFC 3339 time (`2026-11-24T18:00:00Z`,
/// `2026-11-24T19:00:00+01:00`), a date (`2026-11-24`, midnight UTC), or a time
/// ago (`90m`, `24h`, `7d`, `2w`). Returns unix milliseconds.
pub fn parse_when(text: &str, now: SystemTime) -> anyhow::Result<i64> {
    let text = text.trim();
    let at = if let Ok(ago) = humantime::parse_duration(text) {
        now.checked_sub(ago)
            .with_context(|| format!("{text:?} reaches back before 1970"))?
    } else if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        humantime::parse_rfc3339_weak(&format!("{text}T00:00:00"))
            .with_context(|| format!("{text:?} is not a date like 2026-11-24"))?
    } else {
        rfc3339(text)?
    };
    let ms = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// RFC 3339 with `Z` or a `±HH:MM` offset (humantime reads only `Z`).
fn rfc3339(text: &str) -> anyhow::Result<SystemTime> {
    let refused = || {
        format!(
            "{text:?} is not a time like 2026-11-24T18:00:00Z, a date like 2026-11-24, \
             or a time ago like 24h or 7d"
        )
    };
    let (base, offset_secs) = match text.len().checked_sub(6).map(|at| text.split_at(at)) {
        Some((base, offset))
            if base.contains('T')
                && (offset.starts_with('+') || offset.starts_with('-'))
                && offset.as_bytes().get(3) == Some(&b':') =>
        {
            let hours: i64 = offset[1..3].parse().with_context(refused)?;
            let minutes: i64 = offset[4..6].parse().with_context(refused)?;
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            (format!("{base}Z"), sign * (hours * 3600 + minutes * 60))
        }
        _ => (text.to_owned(), 0),
    };
    let local = humantime::parse_rfc3339_weak(&base).with_context(refused)?;
    // 19:00+01:00 is 18:00Z: subtract the offset.
    let shift = Duration::from_secs(offset_secs.unsigned_abs());
    let at = if offset_secs >= 0 {
        local.checked_sub(shift)
    } else {
        local.checked_add(shift)
    };
    at.with_context(refused)
}

#[derive(Serialize)]
struct JsonAnswer<'a> {
    /// The `--limit` in force.
    limit: u32,
    /// True when more rows matched than `limit`.
    truncated: bool,
    entries: &'a [AuditRow],
}

pub async fn run(settings: &Settings, request: Request) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let since = request
        .since
        .as_deref()
        .map(|text| parse_when(text, now).context("--since"))
        .transpose()?;
    let until = request
        .until
        .as_deref()
        .map(|text| parse_when(text, now).context("--until"))
        .transpose()?;
    if request.limit == 0 || request.limit > audit::MAX_LIMIT {
        bail!("--limit must be between 1 and {}", audit::MAX_LIMIT);
    }
    let db = stores::state(settings)?;
    // One row more than shown tells whether the output was cut.
    let mut rows = audit::query(
        &db,
        &AuditQuery {
            username: request.username,
            outcome: request.outcome,
            reason: request.reason,
            address: request.address,
            since,
            until,
            limit: request.limit + 1,
            offset: 0,
        },
    )
    .await?;
    let truncated = rows.len() > request.limit as usize;
    rows.truncate(request.limit as usize);
    let cut_note = || {
        format!(
            "showing the newest {} matching attempt(s) only (--limit {}); narrow with \
             --since/--username or raise --limit",
            rows.len(),
            request.limit
        )
    };
    match request.output {
        Output::Json => {
            let answer = JsonAnswer {
                limit: request.limit,
                truncated,
                entries: &rows,
            };
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
        Output::Csv => {
            let mut out = crate::ops::audit::write_csv(&rows, std::io::stdout().lock())?;
            std::io::Write::flush(&mut out)?;
            if truncated {
                eprintln!("note: {}", cut_note());
            }
        }
        Output::Text => {
            if rows.is_empty() {
                println!("no login attempt matches");
                return Ok(ExitCode::SUCCESS);
            }
            let address_width = rows
                .iter()
                .map(|r| r.client_addr.as_deref().map_or(1, str::len))
                .max()
                .unwrap_or(1)
                .max("ADDRESS".len());
            println!(
                "{:<24}  {:<7}  {:<14}  {:<address_width$}  USERNAME",
                "TIME (UTC)", "OUTCOME", "REASON", "ADDRESS"
            );
            for row in &rows {
                println!(
                    "{:<24}  {:<7}  {:<14}  {:<address_width$}  {}",
                    row.occurred_at,
                    row.outcome,
                    row.reason,
                    row.client_addr.as_deref().unwrap_or("-"),
                    escape(&row.username)
                );
            }
            if truncated {
                println!("{}", cut_note());
            } else {
                println!("{} attempt(s), newest first", rows.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_dates_or_ago() {
        let now = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        assert_eq!(
            parse_when("2025-11-24T16:00:00Z", now).ok(),
            Some(1_764_000_000_000)
        );
        assert_eq!(
            parse_when("2025-11-24T17:30:00+01:30", now).ok(),
            Some(1_764_000_000_000)
        );
        assert_eq!(
            parse_when("2025-11-24T14:00:00-02:00", now).ok(),
            Some(1_764_000_000_000)
        );
        assert_eq!(
            parse_when("2025-11-24T16:00:00.250Z", now).ok(),
            Some(1_764_000_000_250)
        );
        assert_eq!(parse_when("2025-11-24", now).ok(), Some(1_763_942_400_000));
        assert_eq!(
            parse_when("24h", now).ok(),
            Some(1_764_000_000_000 - 86_400_000)
        );
        assert_eq!(
            parse_when("7d", now).ok(),
            Some(1_764_000_000_000 - 7 * 86_400_000)
        );
        for bad in ["yesterday", "2025-13-40", "2025-11-24T16:00:00+1:00", ""] {
            let err = parse_when(bad, now).expect_err(bad).to_string();
            assert!(err.contains("24h") || err.contains("date"), "{bad}: {err}");
        }
    }
}
