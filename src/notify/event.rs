//! What the rest of hr-bridge tells the notifier: plain values, cheap to build on a
//! request's path. The notifier decides whether a change of state happened and
//! whether this replica is the one to say so.

use std::time::SystemTime;

pub use crate::directory::ApprovalWatch;

/// Names and keys a message may show: the first few only, whatever the caller
/// passes, so that a message never carries more personal data than that.
pub const MAX_NAMES: usize = 5;
/// Longest name shown (in characters); a longer one is cut with `…`. A username
/// in a lockout is whatever a client typed.
pub const MAX_NAME_CHARS: usize = 64;

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// `/sync` answered 409: the deletion guard or validation refused the data.
    SyncRefused(Refusal),
    /// The deletion guard refused the data and the history writer is recording
    /// the pending approval: the message (when one is due) waits for its id, at
    /// most [`super::Tuning::approval_wait`], and goes without it after that.
    /// The id from `approval` replaces the refusal's own `approval_id`.
    GuardRefused {
        refusal: Refusal,
        approval: ApprovalWatch,
    },
    /// `/sync` served the payload. Report every one: only the first after a
    /// refusal sends a message ("served again"), whichever replica saw the refusal.
    SyncServed,
    /// One look at a database: a statement or connection that failed because the
    /// database is unavailable (`reachable: false`), or one that succeeded. Cheap to
    /// report on every request; only changes reach the notifier's task.
    Database { which: Database, reachable: bool },
    /// An account was locked by this attempt (the one that reached
    /// `auth.max_failures`; attempts that find it locked already are not reported).
    AccountLocked { username: String, until: SystemTime },
}

/// Why a sync was refused, with the counts an operator acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The deletion guard: this many users and departments would have been dropped.
    DeletionGuard {
        users: u64,
        departments: u64,
        /// Usernames that would be dropped; only the first [`MAX_NAMES`] are kept.
        usernames: Vec<String>,
        /// The pending approval recorded for this set, if approvals exist.
        approval_id: Option<String>,
    },
    /// Validation found problems in the HR data.
    InvalidData {
        problems: u64,
        /// Keys (username, group_no) of the first records at fault; only the first
        /// [`MAX_NAMES`] are kept.
        keys: Vec<String>,
    },
}

impl Refusal {
    /// The refusal with at most [`MAX_NAMES`] names of at most [`MAX_NAME_CHARS`]
    /// characters, so that a queued event stays small whatever the caller passed.
    pub(crate) fn trimmed(mut self) -> Self {
        let names = match &mut self {
            Self::DeletionGuard { usernames, .. } => usernames,
            Self::InvalidData { keys, .. } => keys,
        };
        names.truncate(MAX_NAMES);
        for name in names.iter_mut() {
            *name = cut(name);
        }
        self
    }
}

/// Which database an observation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Database {
    /// Where the HR data is read (`database.url`).
    Source,
    /// hr-bridge's own tables (`state.url`, by default the same database).
    State,
}

/// `name` cut to [`MAX_NAME_CHARS`] characters, with `…` when cut.
pub(crate) fn cut(name: &str) -> String {
    match name.char_indices().nth(MAX_NAME_CHARS - 1) {
        Some((at, _)) if name[at..].chars().nth(1).is_some() => format!("{}…", &name[..at]),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_and_lists_kept_short() {
        assert_eq!(cut("alice"), "alice");
        let exact: String = "é".repeat(MAX_NAME_CHARS);
        assert_eq!(cut(&exact), exact);
        let long: String = "é".repeat(MAX_NAME_CHARS + 1);
        let shown = cut(&long);
        assert_eq!(shown.chars().count(), MAX_NAME_CHARS);
        assert!(shown.ends_with('…'));
        let refusal = Refusal::InvalidData {
            problems: 9,
            keys: (0..9).map(|i| format!("k{i}")).collect(),
        }
        .trimmed();
        assert_eq!(
            refusal,
            Refusal::InvalidData {
                problems: 9,
                keys: vec![
                    "k0".into(),
                    "k1".into(),
                    "k2".into(),
                    "k3".into(),
                    "k4".into()
                ]
            }
        );
    }
}
