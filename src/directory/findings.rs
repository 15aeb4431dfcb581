//! What a build leaves out or changes without refusing: memberships that name
//! nobody it serves, genders OMFLOW does not know. Neither stops `/sync` (OMFLOW
//! is better served without them than not at all), but an operator must be able
//! to see them: `check` prints them, `/sync` logs them.

use std::collections::BTreeMap;

use super::keys::shown;

/// Keys or values named per sort of finding.
pub const SHOWN: usize = 5;
/// Distinct unknown gender values told apart; further ones are counted together.
const GENDER_VALUES: usize = 20;

/// Memberships of one sort that were left out: how many, and the first few as
/// (group_no, username).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DroppedMemberships {
    pub count: usize,
    pub sample: Vec<(String, String)>,
}

impl DroppedMemberships {
    fn note(&mut self, group_no: &str, username: &str) {
        self.count += 1;
        if self.sample.len() < SHOWN {
            self.sample.push((group_no.to_owned(), username.to_owned()));
        }
    }

    /// `"ENG"/"alice", "HQ"/"bob", … 3 more`, escaped.
    pub fn listed(&self) -> String {
        let mut shown: Vec<String> = self
            .sample
            .iter()
            .map(|(g, u)| format!("{}/{}", shown(g), shown(u)))
            .collect();
        if self.count > self.sample.len() {
            shown.push(format!("… {} more", self.count - self.sample.len()));
        }
        shown.join(", ")
    }
}

/// A gender value OMFLOW does not know: how many served employees have it, and
/// the first few of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenderValue {
    pub count: usize,
    pub usernames: Vec<String>,
}

/// Everything a build noticed besides the problems that refuse it.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// Employees and departments the payload serves (or would, were it valid).
    pub users: usize,
    pub groups: usize,
    /// Memberships naming an employee that the source does not have at all.
    pub unknown_employees: DroppedMemberships,
    /// Memberships naming a department that the source does not have at all.
    pub unknown_departments: DroppedMemberships,
    /// Memberships whose group_no or username is NULL or unreadable.
    pub unreadable_memberships: usize,
    /// Memberships of inactive employees or departments: left out as intended.
    pub inactive_memberships: usize,
    /// Served genders other than male/female (served as `""`), by value.
    pub unknown_genders: BTreeMap<String, GenderValue>,
    /// Employees whose gender is one of the values past the first few kept.
    pub other_unknown_genders: usize,
}

impl Findings {
    pub(super) fn unknown_employee(&mut self, group_no: &str, username: &str) {
        self.unknown_employees.note(group_no, username);
    }

    pub(super) fn unknown_department(&mut self, group_no: &str, username: &str) {
        self.unknown_departments.note(group_no, username);
    }

    pub(super) fn unknown_gender(&mut self, value: &str, username: &str) {
        let known = self.unknown_genders.len();
        let entry = match self.unknown_genders.get_mut(value) {
            Some(entry) => entry,
            None if known < GENDER_VALUES => {
                self.unknown_genders.entry(value.to_owned()).or_default()
            }
            None => {
                self.other_unknown_genders += 1;
                return;
            }
        };
        entry.count += 1;
        if entry.usernames.len() < SHOWN {
            entry.usernames.push(username.to_owned());
        }
    }

    /// Memberships left out although they name a person or department the
    /// source does not serve at all: likely a typo or a different spelling.
    pub fn dropped_memberships(&self) -> usize {
        self.unknown_employees.count + self.unknown_departments.count + self.unreadable_memberships
    }

    /// One line per finding an operator should look at, escaped, for `check`.
    pub fn warnings(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.unknown_employees.count > 0 {
            lines.push(format!(
                "{} membership(s) name an employee the source does not have, and are left \
                 out: {} (group_no/username; usernames match byte for byte)",
                self.unknown_employees.count,
                self.unknown_employees.listed()
            ));
        }
        if self.unknown_departments.count > 0 {
            lines.push(format!(
                "{} membership(s) name a department the source does not have, and are left \
                 out: {} (group_no/username)",
                self.unknown_departments.count,
                self.unknown_departments.listed()
            ));
        }
        if self.unreadable_memberships > 0 {
            lines.push(format!(
                "{} membership(s) have a NULL or unreadable group_no or username, and are \
                 left out",
                self.unreadable_memberships
            ));
        }
        if !self.unknown_genders.is_empty() {
            let total: usize = self
                .unknown_genders
                .values()
                .map(|v| v.count)
                .sum::<usize>()
                + self.other_unknown_genders;
            let mut values: Vec<String> = self
                .unknown_genders
                .iter()
                .map(|(value, v)| {
                    let users: Vec<String> = v.usernames.iter().map(|u| shown(u)).collect();
                    let more = v.count - v.usernames.len();
                    let more = if more > 0 {
                        format!(", … {more} more")
                    } else {
                        String::new()
                    };
                    format!(
                        "{} × {} ({}{more})",
                        shown(value),
                        v.count,
                        users.join(", ")
                    )
                })
                .collect();
            if self.other_unknown_genders > 0 {
                values.push(format!(
                    "{} more with other values",
                    self.other_unknown_genders
                ));
            }
            lines.push(format!(
                "{total} employee(s) have a gender OMFLOW does not know, served as \"\" \
                 (OMFLOW knows male and female; m/f and any case are understood): {}",
                values.join("; ")
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_stay_small_and_count_everything() {
        let mut findings = Findings::default();
        for i in 0..8 {
            findings.unknown_employee("ENG", &format!("ghost{i}"));
        }
        for i in 0..(GENDER_VALUES + 3) {
            findings.unknown_gender(&format!("g{i}"), "u");
        }
        findings.unknown_gender("g0", "v");
        assert_eq!(findings.unknown_employees.count, 8);
        assert_eq!(findings.unknown_employees.sample.len(), SHOWN);
        assert!(findings
            .unknown_employees
            .listed()
            .ends_with("\"ENG\"/\"ghost4\", … 3 more"));
        assert_eq!(findings.unknown_genders.len(), GENDER_VALUES);
        assert_eq!(findings.unknown_genders["g0"].count, 2);
        assert_eq!(findings.other_unknown_genders, 3);
        let warnings = findings.warnings();
        assert_eq!(warnings.len(), 2);
        assert!(warnings[1].starts_with("24 employee(s)"), "{}", warnings[1]);
    }

    #[test]
    fn hostile_keys_are_shown_escaped() {
        let mut findings = Findings::default();
        findings.unknown_employee("ENG", "x\ndeletion guard: would pass");
        let line = &findings.warnings()[0];
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("x\\ndeletion guard"), "{line}");
    }
}
