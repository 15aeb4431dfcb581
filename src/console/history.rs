//! The sync history (paginated, newest first), one call's changes, one
//! person's events; and the activity log of operators.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::pages::{render, Nav};
use super::session::Signed;
use super::{ConsoleError, ConsoleState};
use crate::ops::activity::{self, Activity};
use crate::ops::history::{self, Change, Kind, PersonEvent, SyncCall, SyncCallDetail};

/// Calls, events or actions per page.
pub const PAGE: u32 = 50;

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "user",
        Kind::Department => "department",
    }
}

pub fn change_name(change: Change) -> &'static str {
    match change {
        Change::Added => "added",
        Change::Changed => "changed",
        Change::Dropped => "dropped",
    }
}

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    /// Show calls older than this one.
    before: Option<i64>,
    /// Search by person (username or group_no).
    #[serde(default)]
    person: String,
}

#[derive(Template)]
#[template(path = "console/history.html")]
struct HistoryPage {
    nav: Nav,
    calls: Vec<SyncCall>,
    next_before: Option<i64>,
    person: String,
    events: Vec<PersonEvent>,
}

/// `GET /history`: calls newest first, or one person's events.
pub async fn list(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, ConsoleError> {
    let db = &state.app.db;
    let person = query.person.trim().to_owned();
    let (calls, next_before, events) = if person.is_empty() {
        let mut calls = history::list(db, PAGE + 1, query.before).await?;
        let more = calls.len() > PAGE as usize;
        calls.truncate(PAGE as usize);
        let next = if more {
            calls.last().map(|c| c.id)
        } else {
            None
        };
        (calls, next, Vec::new())
    } else {
        (Vec::new(), None, history::person(db, &person).await?)
    };
    Ok(render(&HistoryPage {
        nav: Nav::new(&signed, "/history"),
        calls,
        next_before,
        person,
        events,
    }))
}

#[derive(Template)]
#[template(path = "console/call.html")]
struct CallPage {
    nav: Nav,
    detail: SyncCallDetail,
    /// The position of the page's first name, from 1.
    first: u64,
    page: u32,
    has_next: bool,
}

/// Names of one call per page.
pub const NAMES_PAGE: u32 = 200;

#[derive(Deserialize, Default)]
pub struct CallQuery {
    #[serde(default)]
    page: u32,
}

/// `GET /history/{id}`: one call and the names behind its counts, a page at a
/// time (a refusal keeps up to 10,000 of each kind and change).
pub async fn show(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(id): Path<i64>,
    Query(query): Query<CallQuery>,
) -> Result<Response, ConsoleError> {
    let offset = query.page.saturating_mul(NAMES_PAGE);
    let detail = history::show(&state.app.db, id, Some((offset, NAMES_PAGE)))
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let has_next = u64::from(offset) + (detail.names.len() as u64) < detail.names_total;
    Ok(render(&CallPage {
        nav: Nav::new(&signed, "/history"),
        first: u64::from(offset) + 1,
        page: query.page,
        has_next,
        detail,
    }))
}

#[derive(Deserialize, Default)]
pub struct ActivityQuery {
    #[serde(default)]
    page: u32,
}

#[derive(Template)]
#[template(path = "console/activity.html")]
struct ActivityPage {
    nav: Nav,
    actions: Vec<Activity>,
    page: u32,
    has_next: bool,
}

/// `GET /activity`: who signed in, approved, unlocked, and when.
pub async fn activity(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(query): Query<ActivityQuery>,
) -> Result<Response, ConsoleError> {
    let mut actions =
        activity::list(&state.app.db, PAGE + 1, query.page.saturating_mul(PAGE)).await?;
    let has_next = actions.len() > PAGE as usize;
    actions.truncate(PAGE as usize);
    Ok(render(&ActivityPage {
        nav: Nav::new(&signed, "/activity"),
        actions,
        page: query.page,
        has_next,
    }))
}

impl HistoryPage {
    fn kind(&self, kind: &Kind) -> &'static str {
        kind_name(*kind)
    }

    fn change(&self, change: &Change) -> &'static str {
        change_name(*change)
    }
}

impl CallPage {
    fn kind(&self, kind: &Kind) -> &'static str {
        kind_name(*kind)
    }

    fn change(&self, change: &Change) -> &'static str {
        change_name(*change)
    }
}

impl ActivityPage {
    /// Unix milliseconds as RFC 3339.
    fn time(&self, ms: &i64) -> String {
        history::rfc3339_ms(*ms)
    }
}
