//! The rules a directory must satisfy before it may be served to OMFLOW. A broken
//! row makes `/sync` refuse as a whole: OMFLOW deletes whatever a payload lacks, so
//! serving "the good part" could delete good people.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::db::DirectoryRows;

/// One thing wrong with the HR data, named by the keys an operator can look up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// An active employee's username is empty.
    EmptyUsername { email: String },
    /// An active department's group_no is empty.
    EmptyGroupNo { display_name: String },
    /// Several active employees share an email (compared case-insensitively).
    DuplicateEmail {
        email: String,
        usernames: Vec<String>,
    },
    /// An active department names a parent that does not exist.
    MissingParent { group_no: String, parent: String },
    /// An active department names a parent that is inactive.
    InactiveParent { group_no: String, parent: String },
    /// Active departments whose parent chain loops, each followed by its parent,
    /// starting from the smallest key.
    ParentCycle { group_nos: Vec<String> },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyUsername { email } => {
                write!(f, "employee with email {email:?} has an empty username")
            }
            Self::EmptyGroupNo { display_name } => {
                write!(f, "department {display_name:?} has an empty group_no")
            }
            Self::DuplicateEmail { email, usernames } => write!(
                f,
                "email {email:?} is shared by employees {}",
                quoted_list(usernames)
            ),
            Self::MissingParent { group_no, parent } => write!(
                f,
                "department {group_no:?} has parent {parent:?}, which does not exist"
            ),
            Self::InactiveParent { group_no, parent } => write!(
                f,
                "department {group_no:?} has parent {parent:?}, which is inactive"
            ),
            Self::ParentCycle { group_nos } => {
                let mut chain = quoted_list(group_nos).replace(", ", " → ");
                if let Some(first) = group_nos.first() {
                    chain.push_str(&format!(" → {first:?}"));
                }
                write!(f, "departments form a parent cycle: {chain}")
            }
        }
    }
}

fn quoted_list(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every problem in `rows`, sorted so that the report is stable.
pub fn problems(rows: &DirectoryRows) -> Vec<Problem> {
    let mut found = Vec::new();
    employee_problems(rows, &mut found);
    department_problems(rows, &mut found);
    found.sort();
    found
}

fn employee_problems(rows: &DirectoryRows, found: &mut Vec<Problem>) {
    // Most emails are lower case already: borrow those, allocate only the rest.
    let mut first_owner: HashMap<Cow<'_, str>, &str> = HashMap::with_capacity(rows.employees.len());
    let mut shared: BTreeMap<Cow<'_, str>, Vec<&str>> = BTreeMap::new();
    for employee in &rows.employees {
        if employee.username.is_empty() {
            found.push(Problem::EmptyUsername {
                email: employee.email.clone(),
            });
        }
        let email = if employee.email.chars().any(char::is_uppercase) {
            Cow::Owned(employee.email.to_lowercase())
        } else {
            Cow::Borrowed(employee.email.as_str())
        };
        match first_owner.get(&email) {
            Some(first) => shared
                .entry(email)
                .or_insert_with(|| vec![first])
                .push(&employee.username),
            None => {
                first_owner.insert(email, &employee.username);
            }
        }
    }
    for (email, mut usernames) in shared {
        usernames.sort_unstable();
        found.push(Problem::DuplicateEmail {
            email: email.into_owned(),
            usernames: usernames.into_iter().map(str::to_owned).collect(),
        });
    }
}

fn department_problems(rows: &DirectoryRows, found: &mut Vec<Problem>) {
    let all: HashMap<&str, (Option<&str>, bool)> = rows
        .departments
        .iter()
        .map(|d| {
            (
                d.group_no.as_str(),
                (d.parent_group_no.as_deref(), d.active),
            )
        })
        .collect();
    for department in rows.departments.iter().filter(|d| d.active) {
        if department.group_no.is_empty() {
            found.push(Problem::EmptyGroupNo {
                display_name: department.display_name.clone(),
            });
        }
        let Some(parent) = department.parent_group_no.as_deref() else {
            continue;
        };
        match all.get(parent) {
            None => found.push(Problem::MissingParent {
                group_no: department.group_no.clone(),
                parent: parent.to_owned(),
            }),
            Some((_, false)) => found.push(Problem::InactiveParent {
                group_no: department.group_no.clone(),
                parent: parent.to_owned(),
            }),
            Some((_, true)) => {}
        }
    }
    found.extend(parent_cycles(&all));
}

/// Finds each loop in the parent links among active departments once.
fn parent_cycles(all: &HashMap<&str, (Option<&str>, bool)>) -> Vec<Problem> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath(usize),
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::with_capacity(all.len());
    let mut cycles = Vec::new();
    // Walk in key order so that the outcome does not depend on hash order.
    let starts: BTreeMap<&str, ()> = all
        .iter()
        .filter(|(_, (_, active))| *active)
        .map(|(k, _)| (*k, ()))
        .collect();
    for (&start, ()) in &starts {
        let mut path: Vec<&str> = Vec::new();
        let mut current = Some(start);
        while let Some(node) = current {
            match marks.get(node) {
                Some(Mark::Done) => break,
                Some(Mark::OnPath(at)) => {
                    let mut members: Vec<String> =
                        path[*at..].iter().map(|s| (*s).to_owned()).collect();
                    let min = members
                        .iter()
                        .enumerate()
                        .min_by(|a, b| a.1.cmp(b.1))
                        .map_or(0, |(i, _)| i);
                    members.rotate_left(min);
                    cycles.push(Problem::ParentCycle { group_nos: members });
                    break;
                }
                None => {}
            }
            let Some((parent, true)) = all.get(node).copied() else {
                break;
            };
            marks.insert(node, Mark::OnPath(path.len()));
            path.push(node);
            current = parent;
        }
        for node in path {
            marks.insert(node, Mark::Done);
        }
    }
    cycles
}
