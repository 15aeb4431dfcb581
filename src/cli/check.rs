//! `hr-bridge check`: validates the HR data exactly as `/sync` would; exit 1 on
//! any problem.

use std::process::ExitCode;

use super::stores;
use crate::config::Settings;
use crate::directory::{self, keys};

pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let (_db, source) = stores::open(settings)?;
    let shape = stores::check_source(&source).await?;
    if source.is_mapped() && shape.employees_active && !shape.credentials_active {
        eprintln!(
            "warning: source.credentials returns no \"active\" column while \
             source.employees does: on its own it would let people /sync does not \
             serve (leavers) log in; hr-bridge refuses them by asking source.employees \
             at each login (audit reason inactive), but return active from \
             source.credentials as well"
        );
    }
    let report = directory::check(&source).await?;
    // Not a /sync problem (the exit code stays /sync's), but an operator
    // must see accounts that can never log in, possibly planted. Only the
    // built-in table can be listed: a mapped source looks up one user.
    if !source.is_mapped() {
        for username in crate::password::costly_hashes(source.db()).await? {
            println!(
                "warning: employee {}: stored password hash is beyond the \
                 cost caps and never matches (audit reason hash_too_costly); reset it \
                 with `hr-bridge set-password`",
                keys::shown(&username)
            );
        }
    }
    // Standard output stays one line per problem (scripts count them);
    // what /sync leaves out without refusing goes beside the summary.
    for warning in report.findings.warnings() {
        eprintln!("warning: {warning}");
    }
    if report.findings.inactive_memberships > 0 {
        eprintln!(
            "note: {} membership(s) of inactive employees or departments are left out",
            report.findings.inactive_memberships
        );
    }
    let counts = format!(
        "{} user(s) and {} department(s)",
        report.findings.users, report.findings.groups
    );
    if report.problems.is_empty() {
        println!("OK: the HR data can be served to OMFLOW: /sync would serve {counts}");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("active in the HR data: {counts}");
    Ok(report_problems(&report.problems))
}

/// Prints each problem and says /sync would refuse; exit code 1.
pub fn report_problems(problems: &[directory::Problem]) -> ExitCode {
    for problem in problems {
        println!("{problem}");
    }
    eprintln!(
        "{} problem(s): /sync would refuse to serve this data",
        problems.len()
    );
    ExitCode::FAILURE
}
