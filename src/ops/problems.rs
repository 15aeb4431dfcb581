//! Every problem that makes `/sync` refuse the HR data, as `hr-bridge check`
//! reports it, with a SQL statement to find (or fix) the rows where one is
//! obvious (the built-in tables only: a mapped source's tables are someone
//! else's).

use crate::directory::{self, Problem, SyncError};
use crate::source::Source;

/// One problem, ready to show.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DataProblem {
    /// What sort of problem, in a word or two.
    pub kind: &'static str,
    /// The problem as `check` prints it (keys quoted and escaped).
    pub text: String,
    /// A statement over the built-in tables that finds or fixes the rows.
    pub sql_hint: Option<String>,
}

/// What a check found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProblemReport {
    pub problems: Vec<DataProblem>,
    /// Employees and departments `/sync` would serve.
    pub users: usize,
    pub groups: usize,
    /// What `/sync` leaves out or changes without refusing.
    pub warnings: Vec<String>,
}

/// Validates the HR data exactly as `/sync` would.
pub async fn check(source: &Source) -> Result<ProblemReport, SyncError> {
    let report = directory::check(source).await?;
    let built_in = !source.is_mapped();
    Ok(ProblemReport {
        problems: report
            .problems
            .iter()
            .map(|p| DataProblem {
                kind: kind(p),
                text: p.to_string(),
                sql_hint: if built_in { hint(p) } else { None },
            })
            .collect(),
        users: report.findings.users,
        groups: report.findings.groups,
        warnings: report.findings.warnings(),
    })
}

fn kind(problem: &Problem) -> &'static str {
    match problem {
        Problem::EmptyUsername { .. } => "empty username",
        Problem::EmptyGroupNo { .. } => "empty group_no",
        Problem::DuplicateEmail { .. } => "shared email",
        Problem::MissingParent { .. } => "missing parent",
        Problem::InactiveParent { .. } => "inactive parent",
        Problem::ParentCycle { .. } => "parent cycle",
        Problem::DuplicateUsername { .. } => "shared username",
        Problem::DuplicateGroupNo { .. } => "shared group_no",
        Problem::BadValue { .. } => "unreadable value",
    }
}

/// A SQL string literal, or `None` for a value a statement should not carry
/// (control characters, which a copy and paste would mangle or hide).
fn literal(value: &str) -> Option<String> {
    if value.chars().any(char::is_control) {
        return None;
    }
    Some(format!("'{}'", value.replace('\'', "''")))
}

fn literals(values: &[String]) -> Option<String> {
    let quoted: Option<Vec<String>> = values.iter().map(|v| literal(v)).collect();
    Some(quoted?.join(", "))
}

fn hint(problem: &Problem) -> Option<String> {
    Some(match problem {
        Problem::EmptyUsername { email } => format!(
            "SELECT * FROM employees WHERE username = '' AND email = {};",
            literal(email)?
        ),
        Problem::EmptyGroupNo { display_name } => format!(
            "SELECT * FROM departments WHERE group_no = '' AND display_name = {};",
            literal(display_name)?
        ),
        Problem::DuplicateEmail { usernames, .. } => format!(
            "SELECT username, email, active FROM employees WHERE username IN ({});",
            literals(usernames)?
        ),
        Problem::MissingParent { group_no, .. } => format!(
            "UPDATE departments SET parent_group_no = NULL WHERE group_no = {};",
            literal(group_no)?
        ),
        Problem::InactiveParent { group_no, parent } => format!(
            "SELECT group_no, parent_group_no, active FROM departments WHERE group_no IN ({}, {});",
            literal(group_no)?,
            literal(parent)?
        ),
        Problem::ParentCycle { group_nos } => format!(
            "SELECT group_no, parent_group_no FROM departments WHERE group_no IN ({});",
            literals(group_nos)?
        ),
        Problem::DuplicateUsername { username } => format!(
            "SELECT * FROM employees WHERE username = {};",
            literal(username)?
        ),
        Problem::DuplicateGroupNo { group_no } => format!(
            "SELECT * FROM departments WHERE group_no = {};",
            literal(group_no)?
        ),
        Problem::BadValue { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_quote_their_values_and_skip_control_characters() {
        let hint = hint(&Problem::DuplicateUsername {
            username: "o'brien".into(),
        });
        assert_eq!(
            hint.as_deref(),
            Some("SELECT * FROM employees WHERE username = 'o''brien';")
        );
        assert!(super::hint(&Problem::DuplicateUsername {
            username: "a\nb".into()
        })
        .is_none());
    }
}
