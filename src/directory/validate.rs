//! The rules a directory must satisfy before it may be served to OMFLOW. A broken
//! row makes `/sync` refuse as a whole: OMFLOW deletes whatever a payload lacks, so
//! serving "the good part" could delete good people.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::arena::StrArena;
use crate::db::DepartmentRow;
use crate::escape::{escape, quote};
use crate::source::Value;

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
    /// Several active employees share a username (a mapped source can return that).
    DuplicateUsername { username: String },
    /// Several active departments share a group_no.
    DuplicateGroupNo { group_no: String },
    /// A value that cannot be served: not UTF-8, an `active` that is neither true
    /// nor false, a type with no text form.
    BadValue {
        record: String,
        column: String,
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyUsername { email } => {
                write!(
                    f,
                    "employee with email {} has an empty username",
                    quote(email)
                )
            }
            Self::EmptyGroupNo { display_name } => {
                write!(
                    f,
                    "department {} has an empty group_no",
                    quote(display_name)
                )
            }
            // NULL is served as "": employees without an email all share that one.
            Self::DuplicateEmail { email, usernames } if email.is_empty() => write!(
                f,
                "email \"\" is shared by employees {}: they have no email (NULL or empty), \
                 and OMFLOW needs a unique one for each; give them one in the HR data, or \
                 have a mapped source make one up, e.g. \
                 COALESCE(email, CONCAT(username, '@no-mail.example.com')) AS email",
                quoted_list(usernames)
            ),
            Self::DuplicateEmail { email, usernames } => write!(
                f,
                "email {} is shared by employees {}",
                quote(email),
                quoted_list(usernames)
            ),
            Self::MissingParent { group_no, parent } => write!(
                f,
                "department {} has parent {}, which does not exist",
                quote(group_no),
                quote(parent)
            ),
            Self::InactiveParent { group_no, parent } => write!(
                f,
                "department {} has parent {}, which is inactive",
                quote(group_no),
                quote(parent)
            ),
            Self::DuplicateUsername { username } => {
                write!(
                    f,
                    "username {} belongs to several active employees",
                    quote(username)
                )
            }
            Self::DuplicateGroupNo { group_no } => {
                write!(
                    f,
                    "group_no {} belongs to several active departments",
                    quote(group_no)
                )
            }
            // The reason may quote the value itself (bytes that are not UTF-8).
            Self::BadValue {
                record,
                column,
                reason,
            } => write!(f, "{record}: {column} {}", escape(reason)),
            Self::ParentCycle { group_nos } => {
                let chain: Vec<String> = group_nos
                    .iter()
                    .chain(group_nos.first())
                    .map(|k| quote(k).to_string())
                    .collect();
                write!(f, "departments form a parent cycle: {}", chain.join(" → "))
            }
        }
    }
}

impl Problem {
    /// The keys (usernames, group_nos) of the records at fault, when the problem
    /// names them: never an email or a display name, which are personal data or
    /// not keys. An empty key or an unreadable value names none.
    pub fn keys(&self) -> Vec<&str> {
        let keys: Vec<&str> = match self {
            Self::EmptyUsername { .. } | Self::EmptyGroupNo { .. } | Self::BadValue { .. } => {
                Vec::new()
            }
            Self::DuplicateEmail { usernames, .. } => {
                usernames.iter().map(String::as_str).collect()
            }
            Self::MissingParent { group_no, .. }
            | Self::InactiveParent { group_no, .. }
            | Self::DuplicateGroupNo { group_no } => vec![group_no],
            Self::ParentCycle { group_nos } => group_nos.iter().map(String::as_str).collect(),
            Self::DuplicateUsername { username } => vec![username],
        };
        keys.into_iter().filter(|k| !k.is_empty()).collect()
    }
}

/// A value of `record`'s `column` that cannot be served, and why.
pub fn bad_value(record: String, column: &str, reason: String) -> Problem {
    Problem::BadValue {
        record,
        column: column.to_owned(),
        reason,
    }
}

/// Why an `active` cell is neither true nor false, showing the value.
pub fn active_reason(value: &Value) -> String {
    let shown = match value {
        Value::Null => "NULL".to_owned(),
        Value::Text(s) => quote(s).to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Invalid(bytes) => quote(&String::from_utf8_lossy(bytes)).to_string(),
        Value::Other(t) => format!("a value of type {t}"),
    };
    format!("is {shown}, which is neither true nor false (use a boolean or 0/1)")
}

/// Emails shared by several served employees, compared case-insensitively.
/// `emails` holds (hash of the lower-cased email, ordinal) for each served
/// employee; `email_text` and `users` hold the lower-cased email and the
/// username at each ordinal. Sorting the hashes finds candidates without
/// holding a map of a million strings; equal hashes are then grouped by the
/// text itself, so a hash collision is never reported.
pub fn duplicate_emails(
    mut emails: Vec<(u64, u32)>,
    email_text: &StrArena,
    users: &StrArena,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    emails.sort_unstable();
    for same_hash in emails.chunk_by(|a, b| a.0 == b.0) {
        if same_hash.len() < 2 {
            continue;
        }
        let mut same: Vec<(&str, &str)> = same_hash
            .iter()
            .map(|&(_, o)| (email_text.get(o as usize), users.get(o as usize)))
            .collect();
        same.sort_unstable();
        for group in same.chunk_by(|a, b| a.0 == b.0) {
            if group.len() > 1 {
                problems.push(Problem::DuplicateEmail {
                    email: group[0].0.to_owned(),
                    usernames: group.iter().map(|(_, u)| (*u).to_owned()).collect(),
                });
            }
        }
    }
    problems
}

fn quoted_list(keys: &[String]) -> String {
    keys.iter()
        .map(|k| quote(k).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every problem of the department tree. `departments` holds every department,
/// active or not, so that an inactive parent can be told from a missing one; where
/// a group_no appears twice, the first row (sorted active first) is the one used.
pub fn department_problems(departments: &[DepartmentRow]) -> Vec<Problem> {
    let mut found = Vec::new();
    let mut all: HashMap<&str, (Option<&str>, bool)> = HashMap::with_capacity(departments.len());
    let mut duplicates: BTreeMap<&str, ()> = BTreeMap::new();
    for d in departments {
        match all.entry(d.group_no.as_str()) {
            std::collections::hash_map::Entry::Occupied(first) => {
                if first.get().1 && d.active {
                    duplicates.insert(d.group_no.as_str(), ());
                }
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert((d.parent_group_no.as_deref(), d.active));
            }
        }
    }
    found.extend(duplicates.into_keys().map(|g| Problem::DuplicateGroupNo {
        group_no: g.to_owned(),
    }));
    for department in departments.iter().filter(|d| d.active) {
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
    found
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
