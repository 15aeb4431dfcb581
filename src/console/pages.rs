//! The console's pages. Each handler asks `crate::ops` and renders a template;
//! none of them reaches the database itself.

use std::time::SystemTime;

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};

use super::chart::{self, Chart, Column};
use super::session::Signed;
use super::{ConsoleError, ConsoleState};
use crate::ops::approvals::{self, PendingApproval};
use crate::ops::history::{self, SyncCall};
use crate::ops::{self, problems::ProblemReport, status::Reachability};

/// Hours the overview's charts cover: seven days.
const CHART_HOURS: u32 = 7 * 24;

/// What the layout shows of the person and the page.
pub struct Nav {
    pub username: String,
    pub role: &'static str,
    pub csrf: String,
    /// The page's path, marked as current in the menu.
    pub current: &'static str,
}

impl Nav {
    pub fn new(signed: &Signed, current: &'static str) -> Self {
        Self {
            username: signed.username.clone(),
            role: signed.role.name(),
            csrf: signed.csrf_token.clone(),
            current,
        }
    }

    /// `aria-current` for the menu entry of `path`.
    pub fn aria_current(&self, path: &str) -> &'static str {
        if self.current == path {
            "page"
        } else {
            "false"
        }
    }
}

/// Renders a page, or the error page if the template fails.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: a template failed to render");
            ConsoleError::Internal.into_response()
        }
    }
}

/// Calls the overview looks through for the last served and refused one.
const RECENT_CALLS: u32 = 200;

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Overview {
    nav: Nav,
    source: Reachability,
    state: Reachability,
    logins: Chart,
    syncs: Chart,
    failed_today: i64,
    /// Accounts locked now.
    locked: usize,
    last_served: Option<SyncCall>,
    last_refused: Option<SyncCall>,
    recent: u32,
    pending: Option<PendingApproval>,
}

/// `GET /`: is everything up, and what happened lately.
pub async fn overview(
    State(state): State<ConsoleState>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let db = &state.app.db;
    let (source, state_db) = ops::status::databases(db, &state.app.source).await;
    let hours = ops::logins::per_hour(db, CHART_HOURS).await?;
    let failed_today = hours.iter().rev().take(24).map(|h| h.failures).sum();
    let columns: Vec<Column> = hours
        .into_iter()
        .map(|h| Column {
            hour: h.hour,
            values: vec![h.successes, h.failures],
        })
        .collect();
    let logins = chart::stacked(
        &columns,
        &[("successful", "bar-ok"), ("failed", "bar-bad")],
        "Logins",
    );
    let recent = history::list(db, RECENT_CALLS, None).await?;
    let last_served = recent.iter().find(|c| c.outcome == "served").cloned();
    let last_refused = recent
        .iter()
        .find(|c| c.outcome.starts_with("refused"))
        .cloned();
    let syncs = sync_chart(db, &columns).await?;
    Ok(render(&Overview {
        nav: Nav::new(&signed, "/"),
        source,
        state: state_db,
        logins,
        syncs,
        failed_today,
        locked: ops::lockouts::locked(db).await?.len(),
        last_served,
        last_refused,
        recent: RECENT_CALLS,
        pending: approvals::pending(db).await?,
    }))
}

/// `/sync` calls per hour over the hours of `hours` (the login chart's), by
/// outcome: served, refused (guard or data), failed (database down, errors).
async fn sync_chart(db: &crate::db::Db, hours: &[Column]) -> Result<Chart, ConsoleError> {
    let first = hours.first().map(|c| c.hour.clone()).unwrap_or_default();
    let since = humantime::parse_rfc3339(&format!("{first}:00:00Z"))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let counts = history::per_hour(db, since).await?;
    let mut columns: Vec<Column> = hours
        .iter()
        .map(|c| Column {
            hour: c.hour.clone(),
            values: vec![0, 0, 0],
        })
        .collect();
    for count in counts {
        let hour: String = history::rfc3339_ms(count.hour_ms)
            .chars()
            .take(13)
            .collect();
        let series = match count.outcome.as_str() {
            "served" => 0,
            o if o.starts_with("refused") => 1,
            _ => 2,
        };
        if let Some(column) = columns.iter_mut().find(|c| c.hour == hour) {
            column.values[series] += count.calls;
        }
    }
    Ok(chart::stacked(
        &columns,
        &[
            ("served", "bar-served"),
            ("refused", "bar-refused"),
            ("failed", "bar-bad"),
        ],
        "Syncs",
    ))
}

#[derive(Template)]
#[template(path = "console/problems.html")]
struct Problems {
    nav: Nav,
    /// The latest check that ended with a report, and when it started.
    checked: Option<(When, std::sync::Arc<ProblemReport>)>,
    /// The latest check, when it failed: when, and why in a few words.
    failed: Option<(When, &'static str)>,
    /// A check is running now: reload to see it.
    running: bool,
    interval_secs: u64,
    mapped: bool,
}

/// A time as the page shows it: RFC 3339, and how long ago.
struct When {
    at: String,
    ago: String,
}

impl When {
    fn of(at: SystemTime, now: SystemTime) -> Self {
        let secs = now.duration_since(at).map_or(0, |d| d.as_secs());
        let ago = match secs {
            0..120 => format!("{secs} s ago"),
            120..7200 => format!("{} min ago", secs / 60),
            _ => format!("{} h ago", secs / 3600),
        };
        Self {
            at: humantime::format_rfc3339_millis(at).to_string(),
            ago,
        }
    }
}

/// `GET /problems`: every problem that makes `/sync` refuse, as `check` says
/// it, from the latest check kept in memory: the page never runs a whole check
/// itself (see [`super::checks`]), it starts one in the background when the
/// latest is older than [`super::CHECK_INTERVAL`].
pub async fn problems(State(state): State<ConsoleState>, signed: Signed) -> Response {
    let view = state.problems.view().await;
    let now = state.problems.now();
    render(&Problems {
        nav: Nav::new(&signed, "/problems"),
        checked: view.checked.map(|c| (When::of(c.at, now), c.report)),
        failed: view.failed.map(|f| (When::of(f.at, now), f.reason)),
        running: view.running,
        interval_secs: super::CHECK_INTERVAL.as_secs(),
        mapped: state.app.source.is_mapped(),
    })
}
