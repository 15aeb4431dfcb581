//! `hr-bridge accept-deletions [ID] [--yes] [--reason TEXT] [--all]`: shows the
//! set of drops the deletion guard refused (counts, then names), asks for
//! confirmation on a terminal, and approves exactly that set, so that the next
//! `/sync` that would serve it passes the guard once. If the HR data changed
//! since the set was recorded, nothing is approved and the new set must be
//! reviewed.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::bail;

use super::check::report_problems;
use super::stores;
use crate::config::Settings;
use crate::directory::SyncError;
use crate::escape::escape;
use crate::ops::activity::Actor;
use crate::ops::approvals::{self, short, ApproveError, DroppedName, DropsPage, PendingApproval};
use crate::ops::history::Kind;

/// Names listed before the prompt unless `--all` asks for every one.
const LISTED: u32 = 200;
/// Names read per page of the pending list.
const PAGE: u32 = 5_000;

pub async fn run(
    settings: &Settings,
    id: Option<i64>,
    yes: bool,
    reason: Option<String>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let (db, source) = stores::open(settings)?;
    stores::check_source(&source).await?;
    let Some(pending) = approvals::pending(&db).await? else {
        match id {
            Some(id) => bail!("approval {id} is not pending: nothing is waiting for approval"),
            None => println!(
                "nothing pending: no /sync has been refused by the deletion guard since the \
                 last approval"
            ),
        }
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(id) = id.filter(|id| *id != pending.id) {
        bail!(
            "approval {id} is not the pending set (that is {}); review it with \
             `hr-bridge accept-deletions`",
            pending.id
        );
    }
    show(&db, &pending, all).await?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "not approved: confirmation needs a terminal; to approve from a script, pass \
                 --yes and the id: `hr-bridge accept-deletions {} --yes`",
                pending.id
            );
        }
        print!(
            "Approve exactly these deletions (set {}, {})? Type yes to approve: ",
            pending.id,
            short(&pending.digest)
        );
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            eprintln!("not approved");
            return Ok(ExitCode::FAILURE);
        }
    }
    let actor = Actor::from_cli();
    match approvals::approve(
        &db,
        &source,
        pending.id,
        &pending.digest,
        &actor,
        reason.as_deref(),
    )
    .await
    {
        Ok(approved) => {
            println!(
                "approved set {} ({}) by {} at {}: the next /sync may drop {} user(s) and {} \
                 department(s) against the last one, once",
                approved.id,
                short(&approved.digest),
                escape(&approved.approved_by),
                approved.approved_at,
                approved.users_dropped,
                approved.departments_dropped
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ApproveError::Sync(SyncError::Invalid(problems))) => Ok(report_problems(&problems)),
        Err(e @ (ApproveError::Changed(_) | ApproveError::NotPending(_))) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// Counts, then names (the first [`LISTED`], or all with `--all`).
async fn show(db: &crate::db::Db, pending: &PendingApproval, all: bool) -> anyhow::Result<()> {
    println!(
        "pending set {} ({}), recorded {}, refused {} time(s), last at {}",
        pending.id,
        short(&pending.digest),
        pending.created_at,
        pending.refusals,
        pending.last_refused_at
    );
    if pending.unreadable_snapshot {
        println!(
            "the stored snapshot cannot be read, so no drop can be named; approving replaces \
             it with the data as the next /sync serves it ({})",
            escape(&pending.guard.reasons)
        );
        return Ok(());
    }
    println!(
        "drops {} user(s) and {} department(s) of the {} served last time; refused because: {}",
        pending.users_dropped,
        pending.departments_dropped,
        pending.previous_total,
        escape(&pending.guard.reasons)
    );
    let total = pending.users_dropped + pending.departments_dropped;
    let limit = if all { u32::MAX } else { LISTED };
    let mut shown = 0u32;
    let mut kind = None;
    let mut last: Option<DroppedName> = None;
    while shown < limit {
        let from = last.as_ref().map_or(DropsPage::First, DropsPage::After);
        let page =
            approvals::pending_drops(db, pending.id, None, from, PAGE.min(limit - shown)).await?;
        if page.is_empty() {
            break;
        }
        for drop in &page {
            if kind != Some(drop.kind) {
                kind = Some(drop.kind);
                println!(
                    "{}:",
                    match drop.kind {
                        Kind::Department => "departments dropped",
                        Kind::User => "users dropped",
                    }
                );
            }
            println!("  {}", escape(&drop.name));
        }
        shown = shown.saturating_add(u32::try_from(page.len()).unwrap_or(u32::MAX));
        last = page.into_iter().last();
    }
    if i64::from(shown) < total {
        println!(
            "  … and {} more (`--all` lists every one)",
            total - i64::from(shown)
        );
    }
    Ok(())
}
