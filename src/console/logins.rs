//! The login audit trail, filtered and paginated, as a page and as a CSV
//! download; and the accounts locked now, with Unlock for operators.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::pages::{render, Nav};
use super::session::{Flash, Signed};
use super::sign_in::console_actor;
use super::{ConsoleError, ConsoleState};
use crate::ops::audit::{self, AuditQuery, AuditRow};
use crate::ops::lockouts::{self, Lockout};

/// Attempts shown per page.
pub const PAGE: u32 = 100;

/// Most rows one CSV download holds.
pub const CSV_MAX_ROWS: u32 = audit::MAX_LIMIT;

/// The reasons the audit trail records, offered in the filter.
const REASONS: &[&str] = &[
    "success",
    "unknown_user",
    "bad_password",
    "inactive",
    "no_hash",
    "locked",
    "ambiguous_user",
    "hash_too_costly",
];

/// The filters, as the page's GET form sends them (empty means any).
#[derive(Deserialize, Default, Clone)]
pub struct LoginsQuery {
    #[serde(default)]
    person: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    address: String,
    /// At or after: a date (`2026-11-24`), a `datetime-local` value
    /// (`2026-11-24T18:00`) or RFC 3339; UTC unless it says otherwise.
    #[serde(default)]
    since: String,
    /// Before, in the same forms.
    #[serde(default)]
    until: String,
    #[serde(default)]
    page: u32,
}

fn filled(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// A time filter as unix milliseconds: `2026-11-24` (midnight UTC),
/// `2026-11-24T18:00` or `2026-11-24T18:00:00` (UTC, as `datetime-local`
/// inputs send it), or RFC 3339 with `Z`.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let full = match text.len() {
        10 => format!("{text}T00:00:00Z"),
        16 => format!("{text}:00Z"),
        19 => format!("{text}Z"),
        _ => text.to_owned(),
    };
    let at = humantime::parse_rfc3339(&full).map_err(|_| {
        format!("{text:?} is not a time like 2026-11-24T18:00 (UTC) or a date like 2026-11-24")
    })?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// `2026-11-24` → `2026-11-24T00:00`; `2026-11-24T18:00:00Z` →
/// `2026-11-24T18:00:00`; anything else as given.
fn local_value(text: &str) -> String {
    let text = text.trim();
    if text.len() == 10 && !text.contains('T') {
        format!("{text}T00:00")
    } else if text.contains('T') {
        text.strip_suffix('Z').unwrap_or(text).to_owned()
    } else {
        text.to_owned()
    }
}

impl LoginsQuery {
    /// The operations layer's query for these filters.
    fn audit_query(&self, limit: u32, offset: u32) -> Result<AuditQuery, ConsoleError> {
        let time = |text: &str| {
            filled(text)
                .map(|t| parse_time(&t))
                .transpose()
                .map_err(ConsoleError::BadRequest)
        };
        Ok(AuditQuery {
            username: filled(&self.person),
            outcome: filled(&self.outcome),
            reason: filled(&self.reason),
            address: filled(&self.address),
            since: time(&self.since)?,
            until: time(&self.until)?,
            limit,
            offset,
        })
    }

    /// The filters as a query string (URL-encoded, no page), to keep them in
    /// the pager's and the download's links.
    pub fn filters(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("person", &self.person),
            ("outcome", &self.outcome),
            ("reason", &self.reason),
            ("address", &self.address),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.trim().is_empty() {
                out.append_pair(name, value.trim());
            }
        }
        out.finish()
    }
}

#[derive(Template)]
#[template(path = "console/logins.html")]
struct LoginsPage {
    nav: Nav,
    operator: bool,
    query: LoginsQuery,
    filters: String,
    reasons: &'static [&'static str],
    rows: Vec<AuditRow>,
    has_next: bool,
    locked: Vec<Lockout>,
    /// Unlocked (or found not locked) just now, by this session.
    unlocked: Option<String>,
    not_locked: Option<String>,
}

impl LoginsPage {
    /// The link to page `page` with the same filters.
    fn page_link(&self, page: u32) -> String {
        if self.filters.is_empty() {
            format!("/logins?page={page}")
        } else {
            format!("/logins?{}&page={page}", self.filters)
        }
    }

    /// A time filter as a `datetime-local` input shows it (a date alone or a
    /// trailing `Z` would leave the input blank, and the next search without it).
    fn local_value(&self, text: &str) -> String {
        local_value(text)
    }

    fn selected(&self, current: &str, value: &str) -> bool {
        current == value
    }
}

/// `GET /logins`: the audit trail, newest first, filtered and paginated; the
/// accounts locked now.
pub async fn show(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(query): Query<LoginsQuery>,
) -> Result<Response, ConsoleError> {
    let db = &state.app.db;
    let audit_query = query.audit_query(PAGE + 1, query.page.saturating_mul(PAGE))?;
    let mut rows = audit::query(db, &audit_query).await?;
    let has_next = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let locked = lockouts::locked(db).await?;
    let (unlocked, not_locked) = match signed.take_flash(&state, "/logins").await? {
        Some(Flash::Unlocked(name)) => (Some(name), None),
        Some(Flash::NotLocked(name)) => (None, Some(name)),
        _ => (None, None),
    };
    Ok(render(&LoginsPage {
        nav: Nav::new(&signed, "/logins"),
        operator: signed.is_operator(),
        filters: query.filters(),
        reasons: REASONS,
        query,
        rows,
        has_next,
        locked,
        unlocked,
        not_locked,
    }))
}

/// `GET /logins.csv`: the same filters as a CSV download, at most
/// [`CSV_MAX_ROWS`] rows, newest first; a cut download says so in a last line.
pub async fn csv(
    State(state): State<ConsoleState>,
    _signed: Signed,
    Query(query): Query<LoginsQuery>,
) -> Result<Response, ConsoleError> {
    let audit_query = query.audit_query(CSV_MAX_ROWS + 1, 0)?;
    let mut rows = audit::query(&state.app.db, &audit_query).await?;
    let cut = rows.len() > CSV_MAX_ROWS as usize;
    rows.truncate(CSV_MAX_ROWS as usize);
    let body = write_csv(&rows, cut).map_err(|e| {
        tracing::error!(error = %e, "console: the CSV download could not be written");
        ConsoleError::Internal
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"logins.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

fn write_csv(rows: &[AuditRow], cut: bool) -> Result<Vec<u8>, csv::Error> {
    let mut body = crate::ops::audit::write_csv(rows, Vec::new())?;
    if cut {
        body.extend_from_slice(
            format!(
                "# cut: only the newest {CSV_MAX_ROWS} matching attempts; narrow the filters\n"
            )
            .as_bytes(),
        );
    }
    Ok(body)
}

#[derive(Deserialize)]
pub struct UnlockForm {
    #[serde(default)]
    csrf: String,
    username: String,
}

/// `POST /logins/unlock`: operators only; lifts the lockout (recorded in the
/// activity log as this person's) and goes back to the page, which says so
/// once (the message waits in the session, not in the URL).
pub async fn unlock(
    State(state): State<ConsoleState>,
    signed: Signed,
    Form(form): Form<UnlockForm>,
) -> Result<Response, ConsoleError> {
    signed.check_csrf(&form.csrf)?;
    signed.require_operator()?;
    let lifted = lockouts::unlock(
        &state.app.db,
        &form.username,
        &console_actor(&signed.username),
    )
    .await?;
    let flash = if lifted {
        tracing::info!(operator = %signed.username, username = %form.username, "console: account unlocked");
        Flash::Unlocked(form.username)
    } else {
        Flash::NotLocked(form.username)
    };
    signed.set_flash(&state, &flash).await?;
    Ok(Redirect::to("/logins").into_response())
}

#[cfg(test)]
mod tests {
    use super::{local_value, parse_time, LoginsQuery};

    #[test]
    fn time_filters_fill_datetime_local_inputs() {
        assert_eq!(local_value("2026-11-24"), "2026-11-24T00:00");
        assert_eq!(local_value("2026-11-24T18:00:00Z"), "2026-11-24T18:00:00");
        assert_eq!(local_value("2026-11-24T18:00"), "2026-11-24T18:00");
    }

    #[test]
    fn times_take_dates_datetime_local_and_rfc3339() {
        assert_eq!(parse_time("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_time("1970-01-01T01:00"), Ok(3_600_000));
        assert_eq!(parse_time("1970-01-01T00:00:01"), Ok(1_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1_000));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn filters_keep_only_what_is_set_encoded() {
        let query = LoginsQuery {
            person: "a&b c".into(),
            outcome: "failure".into(),
            ..LoginsQuery::default()
        };
        assert_eq!(query.filters(), "person=a%26b+c&outcome=failure");
    }
}
