//! `hr-bridge history`: the calls `/sync` answered (`[--limit N] [--json]`),
//! one call's changes (`show ID`), and what happened to one person
//! (`person USERNAME`): when added, changed, dropped, by which sync, and who
//! approved a drop.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::stores;
use crate::config::Settings;
use crate::db::{ApprovalRow, Db};
use crate::escape::escape;
use crate::ops::approvals::short;
use crate::ops::history::{self, rfc3339_ms, Change, Kind, SyncCall};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub what: Option<HistoryCommand>,
    /// Calls listed, newest first
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// One call: what it answered and the names it added, changed and dropped
    Show {
        /// The call's id (first column of `hr-bridge history`)
        id: i64,
    },
    /// When a person (or department) was added, changed and dropped, and by which sync
    Person {
        /// The username (or group_no), exactly
        username: String,
    },
}

pub async fn run(settings: &Settings, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let (db, _) = stores::open(settings)?;
    match args.what {
        None => list(&db, args.limit, args.json).await,
        Some(HistoryCommand::Show { id }) => show(&db, id, args.json).await,
        Some(HistoryCommand::Person { username }) => person(&db, &username, args.json).await,
    }
}

fn counts(call: &SyncCall) -> String {
    match call.changes {
        Some(c) => format!(
            "users +{} ~{} -{}, departments +{} ~{} -{}",
            c.users_added,
            c.users_changed,
            c.users_dropped,
            c.groups_added,
            c.groups_changed,
            c.groups_dropped
        ),
        None if call.names == "pending" => "changes being computed".to_owned(),
        None => "changes unknown".to_owned(),
    }
}

fn call_line(call: &SyncCall) -> String {
    let mut line = format!(
        "{:>6}  {}  {:<13} {}  {:>6} ms",
        call.id, call.occurred_at, call.outcome, call.status, call.duration_ms
    );
    if let (Some(users), Some(departments)) = (call.users, call.departments) {
        let _ = write!(line, "  {users} users, {departments} departments");
    }
    if call.outcome == "served" || call.outcome == "refused_guard" {
        let _ = write!(line, "  ({})", counts(call));
    }
    if let Some(addr) = &call.client_addr {
        let _ = write!(line, "  from {}", escape(addr));
    }
    if let Some(approval) = call.approval_id {
        let verb = if call.outcome == "served" {
            "used approval"
        } else {
            "pending approval"
        };
        let _ = write!(line, "  {verb} {approval}");
    }
    line
}

fn approval_line(a: &ApprovalRow) -> String {
    let mut line = format!(
        "{:>6}  {:<10} set {}  {} user(s), {} department(s)",
        a.id,
        a.status,
        short(&a.set_digest),
        a.users_dropped,
        a.groups_dropped
    );
    if let (Some(by), Some(at)) = (&a.approved_by, a.approved_ms) {
        let _ = write!(line, "  approved by {} at {}", escape(by), rfc3339_ms(at));
    }
    if let Some(reason) = &a.reason {
        let _ = write!(line, "  reason: {}", escape(reason));
    }
    if let Some(at) = a.consumed_ms {
        let _ = write!(line, "  used at {}", rfc3339_ms(at));
    }
    line
}

async fn list(db: &Db, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    let calls = history::list(db, limit, None).await?;
    let approvals = history::approvals(db, limit).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"calls": calls, "approvals": approvals})
        );
        return Ok(ExitCode::SUCCESS);
    }
    if calls.is_empty() {
        println!("no /sync call recorded yet");
    }
    for call in &calls {
        println!("{}", call_line(call));
    }
    if !approvals.is_empty() {
        println!("\napprovals:");
        for approval in &approvals {
            println!("{}", approval_line(approval));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "user",
        Kind::Department => "department",
    }
}

fn change_word(change: Change) -> &'static str {
    match change {
        Change::Added => "added",
        Change::Changed => "changed",
        Change::Dropped => "dropped",
    }
}

async fn show(db: &Db, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    let Some(detail) = history::show(db, id, None).await? else {
        bail!("no /sync call {id} in the history");
    };
    if json {
        println!("{}", serde_json::to_string(&detail)?);
        return Ok(ExitCode::SUCCESS);
    }
    let call = &detail.call;
    println!("{}", call_line(call));
    if let Some(request) = &call.request_id {
        println!("request id: {}", escape(request));
    }
    if let Some(digest) = &call.digest {
        println!(
            "payload {} bytes, digest {}; compared with snapshot {}",
            call.bytes.unwrap_or_default(),
            short(digest),
            call.base_digest
                .as_deref()
                .map_or("(none: first sync)", short)
        );
    }
    if let Some(detail) = &call.detail {
        println!("detail: {}", escape(detail));
    }
    if let Some(approval) = &detail.approval {
        println!("approval: {}", approval_line(approval).trim_start());
    }
    if call.names == "same_as" {
        if let Some(of) = call.names_of {
            println!("the same answer as call {of}; its names:");
        }
    }
    if call.changes.is_some() {
        println!("{}", counts(call));
    }
    let mut section = None;
    for name in &detail.names {
        if section != Some((name.kind, name.change)) {
            section = Some((name.kind, name.change));
            println!("{}s {}:", kind_word(name.kind), change_word(name.change));
        }
        if name.fields.is_empty() {
            println!("  {}", escape(&name.name));
        } else {
            println!("  {} ({})", escape(&name.name), name.fields.join(", "));
        }
    }
    if let Some(c) = call.changes {
        let shown = detail.names.len() as i64;
        let total = c.users_added
            + c.users_changed
            + c.users_dropped
            + c.groups_added
            + c.groups_changed
            + c.groups_dropped;
        if total > shown && !detail.names.is_empty() {
            println!(
                "(names kept: the first {} of each kind and change; {} more not kept)",
                history::NAMES_KEPT,
                total - shown
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn person(db: &Db, username: &str, json: bool) -> anyhow::Result<ExitCode> {
    let events = history::person(db, username).await?;
    if json {
        println!("{}", serde_json::to_string(&events)?);
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        println!(
            "{} is named by no /sync call in the history (it keeps \
             sync.history_retention_days days, and at most {} names of each sort per call)",
            escape(username),
            history::NAMES_KEPT
        );
        return Ok(ExitCode::SUCCESS);
    }
    for event in &events {
        let mut line = format!(
            "{}  call {}  {} {}",
            event.occurred_at,
            event.call_id,
            kind_word(event.kind),
            change_word(event.change)
        );
        if !event.fields.is_empty() {
            let _ = write!(line, " ({})", event.fields.join(", "));
        }
        if event.outcome == "served" {
            line.push_str("  served to OMFLOW");
        } else {
            let _ = write!(line, "  {}: OMFLOW changed nothing", event.outcome);
        }
        if let Some(addr) = &event.client_addr {
            let _ = write!(line, " (from {})", escape(addr));
        }
        if let Some(a) = &event.approval {
            if event.outcome == "served" {
                if let (Some(by), Some(at)) = (&a.approved_by, a.approved_ms) {
                    let _ = write!(
                        line,
                        "  approved by {} at {} (approval {})",
                        escape(by),
                        rfc3339_ms(at),
                        a.id
                    );
                }
                if let Some(reason) = &a.reason {
                    let _ = write!(line, ", reason: {}", escape(reason));
                }
            }
        }
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
