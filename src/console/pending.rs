//! The pending approval: who the refused `/sync` would drop (paginated and
//! searchable, however many), the guard's numbers, and Approve for operators,
//! with the count typed out as confirmation.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::pages::{render, Nav};
use super::session::{Flash, Signed};
use super::{ConsoleError, ConsoleState};
use crate::ops::approvals::{self, ApproveError, DroppedName, DropsPage, PendingApproval};
use crate::ops::history::Kind;

/// Drops shown per page.
pub const PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct PendingQuery {
    #[serde(default)]
    q: String,
    /// The page after this drop (`<kind letter>:<name>`, as the Next link writes it).
    #[serde(default)]
    after: Option<String>,
    /// The page before this drop.
    #[serde(default)]
    before: Option<String>,
    /// `last`: the last page.
    #[serde(default)]
    at: Option<String>,
}

/// A drop as a pager link names it: its kind letter, `:`, its name.
fn cursor(drop: &DroppedName) -> String {
    format!("{}:{}", drop.kind.letter(), drop.name)
}

/// The drop a pager link names, if it is well formed.
fn parse_cursor(text: &str) -> Option<DroppedName> {
    let (letter, name) = text.split_once(':')?;
    let kind = match letter {
        "u" => Kind::User,
        "g" => Kind::Department,
        _ => return None,
    };
    Some(DroppedName {
        kind,
        name: name.to_owned(),
    })
}

/// One row of the drops table.
pub struct Drop {
    pub kind: &'static str,
    pub name: String,
}

impl From<DroppedName> for Drop {
    fn from(d: DroppedName) -> Self {
        Self {
            kind: match d.kind {
                Kind::User => "user",
                Kind::Department => "department",
            },
            name: d.name,
        }
    }
}

#[derive(Template)]
#[template(path = "console/pending.html")]
struct PendingPage {
    nav: Nav,
    operator: bool,
    pending: Option<PendingApproval>,
    total: i64,
    drops: Vec<Drop>,
    q: String,
    /// The Previous link's cursor, when there are drops before this page.
    previous: Option<String>,
    /// The Next link's cursor, when there are drops after this page.
    next: Option<String>,
    /// Whether this is not the first page (a First link is shown).
    not_first: bool,
    /// Whether this is not the last page (a Last link is shown).
    not_last: bool,
    approved: Option<i64>,
    error: Option<String>,
}

async fn page(
    state: &ConsoleState,
    signed: &Signed,
    mut query: PendingQuery,
    error: Option<String>,
    approved: Option<i64>,
) -> Result<PendingPage, ConsoleError> {
    let db = &state.app.db;
    // No name holds a NUL, and SQLite's LIKE would end the pattern there (a
    // search for "\0" listing everything): shown, and searched, as U+FFFD.
    if query.q.contains('\0') {
        query.q = query.q.replace('\0', "\u{FFFD}");
    }
    let pending = approvals::pending(db).await?;
    let after = query.after.as_deref().and_then(parse_cursor);
    let before = query.before.as_deref().and_then(parse_cursor);
    let from = match (&after, &before, query.at.as_deref()) {
        (Some(drop), _, _) => DropsPage::After(drop),
        (None, Some(drop), _) => DropsPage::Before(drop),
        (None, None, Some("last")) => DropsPage::Last,
        _ => DropsPage::First,
    };
    let mut drops = match &pending {
        Some(p) => approvals::pending_drops(db, p.id, Some(&query.q), from, PAGE + 1).await?,
        None => Vec::new(),
    };
    // One drop more than a page tells whether there is more in the direction
    // read; the other direction is known from how the page was reached.
    let more = drops.len() > PAGE as usize;
    let (not_first, not_last) = match from {
        DropsPage::First => {
            drops.truncate(PAGE as usize);
            (false, more)
        }
        DropsPage::After(_) => {
            drops.truncate(PAGE as usize);
            (true, more)
        }
        DropsPage::Before(_) => {
            if more {
                drops.remove(0);
            }
            (more, true)
        }
        DropsPage::Last => {
            if more {
                drops.remove(0);
            }
            (more, false)
        }
    };
    let previous = drops.first().filter(|_| not_first).map(cursor);
    let next = drops.last().filter(|_| not_last).map(cursor);
    let drops = drops.into_iter().map(Drop::from).collect();
    Ok(PendingPage {
        nav: Nav::new(signed, "/pending"),
        operator: signed.is_operator(),
        total: pending
            .as_ref()
            .map_or(0, |p| p.users_dropped + p.departments_dropped),
        pending,
        drops,
        q: query.q,
        previous,
        next,
        not_first,
        not_last,
        approved,
        error,
    })
}

/// `GET /pending`.
pub async fn show(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(query): Query<PendingQuery>,
) -> Result<Response, ConsoleError> {
    let approved = match signed.take_flash(&state, "/pending").await? {
        Some(Flash::Approved(id)) => Some(id),
        _ => None,
    };
    Ok(render(&page(&state, &signed, query, None, approved).await?))
}

#[derive(Deserialize)]
pub struct ApproveForm {
    #[serde(default)]
    csrf: String,
    id: i64,
    digest: String,
    /// The number of drops, typed by the operator.
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    reason: String,
}

/// `POST /pending/approve`: operators only; the typed count must be the set's.
pub async fn approve(
    State(state): State<ConsoleState>,
    signed: Signed,
    Form(form): Form<ApproveForm>,
) -> Result<Response, ConsoleError> {
    signed.check_csrf(&form.csrf)?;
    signed.require_operator()?;
    let db = &state.app.db;
    let refuse = |message: String| async {
        let page = page(
            &state,
            &signed,
            PendingQuery::default(),
            Some(message),
            None,
        )
        .await?;
        Ok::<_, ConsoleError>(match page.render() {
            Ok(html) => (StatusCode::CONFLICT, axum::response::Html(html)).into_response(),
            Err(_) => ConsoleError::Internal.into_response(),
        })
    };
    let Some(pending) = approvals::pending(db).await? else {
        return refuse("Nothing is pending any more.".into()).await;
    };
    let total = pending.users_dropped + pending.departments_dropped;
    if pending.id != form.id || pending.digest != form.digest {
        return refuse(
            "The pending set changed since this page was shown; review it again.".into(),
        )
        .await;
    }
    // The count exactly as written in decimal: not `03`, `+3` or `3.0`.
    if form.confirm.trim() != total.to_string() {
        return refuse(format!(
            "Type the number of objects to drop ({total}) to confirm the approval."
        ))
        .await;
    }
    let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
    match approvals::approve(
        db,
        &state.app.source,
        form.id,
        &form.digest,
        &crate::console::sign_in::console_actor(&signed.username),
        reason,
    )
    .await
    {
        Ok(approved) => {
            tracing::info!(
                approver = %signed.username, id = approved.id,
                users = approved.users_dropped, departments = approved.departments_dropped,
                "console: deletions approved"
            );
            signed
                .set_flash(&state, &Flash::Approved(approved.id))
                .await?;
            Ok(Redirect::to("/pending").into_response())
        }
        Err(ApproveError::NotPending(m) | ApproveError::Changed(m)) => refuse(m).await,
        Err(ApproveError::Db(e)) => Err(e.into()),
        Err(ApproveError::Sync(e)) => {
            tracing::error!(error = %e, "console: approval could not check the HR data");
            Err(ConsoleError::Internal)
        }
    }
}
