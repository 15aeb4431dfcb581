//! The authentication audit trail, filtered: who tried to log in, when, from
//! where, and how it ended.

use serde::Serialize;

use crate::db::{AuditFilter, Db, DbError};

/// Most rows one query returns, whatever the caller asks.
pub const MAX_LIMIT: u32 = 100_000;

/// Which attempts to read; every filter is an exact match. Times are unix
/// milliseconds.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub username: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// `success`, `unknown_user`, `bad_password`, `inactive`, `locked`, …
    pub reason: Option<String>,
    /// The client's address as recorded.
    pub address: Option<String>,
    /// At or after.
    pub since: Option<i64>,
    /// Before.
    pub until: Option<i64>,
    /// At most [`MAX_LIMIT`].
    pub limit: u32,
    pub offset: u32,
}

/// One recorded login attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    /// RFC 3339 UTC.
    pub occurred_at: String,
    pub username: String,
    pub outcome: String,
    pub reason: String,
    pub client_addr: Option<String>,
}

/// Unix milliseconds in the audit trail's stored form (RFC 3339 UTC with
/// milliseconds), which sorts as text.
pub fn stored_time(ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// The attempts matching `q`, newest first.
pub async fn query(db: &Db, q: &AuditQuery) -> Result<Vec<AuditRow>, DbError> {
    let since = q.since.map(stored_time);
    let until = q.until.map(stored_time);
    let filter = AuditFilter {
        username: q.username.as_deref(),
        outcome: q.outcome.as_deref(),
        reason: q.reason.as_deref(),
        client_addr: q.address.as_deref(),
        since: since.as_deref(),
        until: until.as_deref(),
        limit: q.limit.min(MAX_LIMIT),
        offset: q.offset,
    };
    Ok(db
        .audit_rows(&filter)
        .await?
        .into_iter()
        .map(|row| AuditRow {
            occurred_at: row.occurred_at,
            username: row.username,
            outcome: row.outcome,
            reason: row.reason,
            client_addr: row.client_addr,
        })
        .collect())
}

/// A cell as a spreadsheet may safely open it: text someone typed (a username
/// tried at a login form, by anyone) that begins with `=`, `+`, `-`, `@`, a tab
/// or a carriage return would be run as a formula by Excel or LibreOffice, so it
/// gets a leading `'` (OWASP's advice for CSV injection). Every other cell is
/// written as it is.
fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Writes audit rows as CSV, header first, to `out` and hands `out` back: the
/// CLI's `audit --csv` and the console's download write the same columns, and
/// neither lets a typed username become a spreadsheet formula.
pub fn write_csv<W: std::io::Write>(rows: &[AuditRow], out: W) -> Result<W, csv::Error> {
    let mut out = csv::Writer::from_writer(out);
    out.write_record([
        "occurred_at",
        "username",
        "outcome",
        "reason",
        "client_addr",
    ])?;
    for row in rows {
        out.write_record([
            row.occurred_at.as_str(),
            &spreadsheet_safe(&row.username),
            row.outcome.as_str(),
            row.reason.as_str(),
            &spreadsheet_safe(row.client_addr.as_deref().unwrap_or("")),
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::{stored_time, write_csv, AuditRow};

    /// A name typed at a login form must not come back as a spreadsheet formula;
    /// everything else goes out as it was typed.
    #[test]
    fn typed_formulas_are_neutralised_in_the_csv() {
        let row = |username: &str| AuditRow {
            occurred_at: "2025-01-01T00:00:00.000Z".into(),
            username: username.into(),
            outcome: "failure".into(),
            reason: "unknown_user".into(),
            client_addr: Some("192.0.2.1".into()),
        };
        let names = [
            "=HYPERLINK(\"http://evil\",\"x\")",
            "+SUM(1,1)",
            "-2+3+cmd|' /C calc'!A0",
            "@SUM(1)",
            "\t=1",
            "\r=1",
            "alice",
            "o'neil=boss",
        ];
        let rows: Vec<AuditRow> = names.iter().map(|n| row(n)).collect();
        let bytes = write_csv(&rows, Vec::new()).expect("written");
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let got: Vec<String> = reader
            .records()
            .map(|r| r.expect("a row")[1].to_owned())
            .collect();
        let mut expected: Vec<String> = names[..6].iter().map(|n| format!("'{n}")).collect();
        expected.extend(["alice".to_owned(), "o'neil=boss".to_owned()]);
        assert_eq!(got, expected);
    }

    #[test]
    fn times_take_the_stored_form() {
        assert_eq!(stored_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(stored_time(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
    }
}
