//! `hr-bridge import`: upserts CSV files in one transaction; on any error prints
//! each bad row and writes nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use super::stores;
use crate::config::Settings;
use crate::directory::import::{self, ImportError, ImportRequest};
use crate::escape::escape;

pub async fn run(
    settings: &Settings,
    request: ImportRequest,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let (_, source) = stores::writable(settings, "import")?;
    let db = source.db().clone();
    let plan = match import::plan(&db, &request).await {
        Ok(plan) => plan,
        Err(ImportError::Invalid(problems)) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!("{} problem(s); nothing was written", problems.len());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => {
            eprintln!("error: {}", escape(&e.to_string()));
            return Ok(ExitCode::FAILURE);
        }
    };
    // Written first, described after: a refused write prints no plan that
    // did not happen, only its one-line reason.
    let written = if dry_run {
        import::rehearse(&db, &plan).await
    } else {
        import::apply(&db, &plan).await
    };
    if let Err(e) = written {
        eprintln!("error: {}", escape(&e.to_string()));
        return Ok(ExitCode::FAILURE);
    }
    print_plan(&plan);
    if dry_run {
        println!("dry run: nothing was written");
    } else {
        println!("imported in one transaction; run `hr-bridge preview` to see what /sync will do");
    }
    Ok(ExitCode::SUCCESS)
}

/// The files of one import, as given on the command line.
pub fn request(
    employees: Option<PathBuf>,
    departments: Option<PathBuf>,
    members: Option<PathBuf>,
    replace: bool,
) -> ImportRequest {
    ImportRequest {
        employees,
        departments,
        members,
        replace,
    }
}

/// The added/updated/unchanged/deleted counts and keys of an import, per table.
fn print_plan(plan: &import::ImportPlan) {
    for (name, change) in [
        ("employees", &plan.employees),
        ("departments", &plan.departments),
        ("department_members", &plan.members),
    ] {
        println!(
            "{name}: {} added, {} updated, {} unchanged, {} deleted",
            change.added.len(),
            change.updated.len(),
            change.unchanged,
            change.deleted.len()
        );
        for (what, keys) in [
            ("added", &change.added),
            ("updated", &change.updated),
            ("deleted", &change.deleted),
        ] {
            if !keys.is_empty() {
                let shown: Vec<String> = keys
                    .iter()
                    .take(20)
                    .map(|k| escape(k).to_string())
                    .collect();
                let more = keys.len().saturating_sub(shown.len());
                let tail = if more > 0 {
                    format!(" … and {more} more")
                } else {
                    String::new()
                };
                println!("  {what}: {}{tail}", shown.join(", "));
            }
        }
    }
}
