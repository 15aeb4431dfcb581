//! Building the `/sync` payload from the source's rows as they stream in:
//! departments first (all of them: the tree is small and validation needs it),
//! then employees in username order, then memberships in (group_no, username)
//! order. Each employee is checked and written out as it arrives; memory keeps only
//! what the rules need (usernames, lower-cased emails in a [`StrArena`], the
//! department tree), and the JSON goes straight into the [`PayloadWriter`]. The
//! rules themselves live in [`super::validate`]; each cell is read by its field
//! ([`crate::fields`]), never by position.

use std::borrow::Cow;
use std::io::Write;

use xxhash_rust::xxh3::xxh3_64;

pub use super::arena::StrArena;
use super::findings::Findings;
use super::keys::{key_problem, shown, Key};
use super::payload::{normalise_gender, SyncPayload};
use super::validate::{self, active_reason, bad_value as bad, Problem};
use super::writer::{write_object, PayloadWriter};
use crate::db::DepartmentRow;
use crate::escape::quote;
use crate::fields::{DepartmentField, EmployeeField, Field, MembershipField};
use crate::source::rows::{text, Layout, MissingColumn};
use crate::source::{Batch, RawRow, Value};

/// A payload that passed every rule, with the keys the deletion guard compares.
#[derive(Debug)]
pub struct Built {
    pub payload: SyncPayload,
    /// Served usernames, in byte order.
    pub users: StrArena,
    /// Served group_nos, in byte order.
    pub groups: Vec<String>,
}

/// Why a build could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The source handed rows out of the order the payload needs: a bug or a
    /// collation we did not expect; never serve a payload built from it.
    #[error("the {0} rows did not arrive in byte order of their keys ({key} after {after})", key = quote(.1), after = quote(.2))]
    OutOfOrder(&'static str, String, String),
    #[error("could not write the payload: {0}")]
    Write(#[from] std::io::Error),
    #[error("could not write the payload: {0}")]
    Json(#[from] serde_json::Error),
    /// The rows lack a field the payload needs (a read that does not follow
    /// [`crate::fields`]): refused, never served as empty values.
    #[error("the {0} read holds {1}")]
    Columns(&'static str, MissingColumn),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Departments,
    Employees,
    Memberships,
}

/// The state of one build; feed it [`Batch`]es in order, then [`Builder::finish`].
pub struct Builder {
    out: Option<PayloadWriter>,
    phase: Phase,
    employees_active: bool,
    departments_active: bool,
    problems: Vec<Problem>,
    departments: Vec<DepartmentRow>,
    /// Indices into `departments` of the active ones (the served groups), sorted.
    served: Vec<usize>,
    served_keys: Vec<String>,
    next_group: usize,
    open_group: Option<OpenGroup>,
    users: StrArena,
    emails: Vec<(u64, u32)>,
    email_text: StrArena,
    last_employee: Option<String>,
    /// The previous membership (empty before the first: every pair sorts after it).
    last_membership: (String, String),
    employee_rows: usize,
    duplicate_usernames: Vec<String>,
    /// Usernames of inactive employees, in byte order: a membership naming one
    /// is left out as intended, one naming nobody is worth a warning.
    inactive_users: StrArena,
    findings: Findings,
}

/// What a build ends with: the payload or the problems that forbid it, and
/// what it noticed either way.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Built, Vec<Problem>>,
    pub findings: Findings,
}

struct OpenGroup {
    group_no: String,
    last_member: Option<String>,
}

/// Where each field sits in a batch, found by name; `active` must be there
/// when the source's query has it.
fn layout<F: Field>(
    rows: &crate::source::Rows,
    what: &'static str,
    active: bool,
) -> Result<Layout<F>, BuildError> {
    let at = rows
        .layout::<F>()
        .map_err(|missing| BuildError::Columns(what, missing))?;
    if active && !at.has_active() {
        return Err(BuildError::Columns(
            what,
            MissingColumn(crate::fields::ACTIVE),
        ));
    }
    Ok(at)
}

impl Builder {
    /// `render`: write the payload (false for `check`, which only validates).
    pub fn new(employees_active: bool, departments_active: bool, render: bool) -> Self {
        Self {
            out: render.then(PayloadWriter::new),
            phase: Phase::Departments,
            employees_active,
            departments_active,
            problems: Vec::new(),
            departments: Vec::new(),
            served: Vec::new(),
            served_keys: Vec::new(),
            next_group: 0,
            open_group: None,
            users: StrArena::default(),
            emails: Vec::new(),
            email_text: StrArena::default(),
            last_employee: None,
            last_membership: (String::new(), String::new()),
            employee_rows: 0,
            duplicate_usernames: Vec::new(),
            inactive_users: StrArena::default(),
            findings: Findings::default(),
        }
    }

    pub fn push(&mut self, batch: Batch) -> Result<(), BuildError> {
        match batch {
            Batch::Departments(rows) => {
                let at = layout(&rows, "departments", self.departments_active)?;
                for row in rows.iter() {
                    self.department(row, &at);
                }
            }
            Batch::Employees(rows) => {
                let at = layout(&rows, "employees", self.employees_active)?;
                self.advance(Phase::Employees)?;
                for row in rows.iter() {
                    self.employee(row, &at)?;
                }
            }
            Batch::Memberships(rows) => {
                let at = layout(&rows, "memberships", false)?;
                self.advance(Phase::Memberships)?;
                for row in rows.iter() {
                    self.membership(row, &at)?;
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), BuildError> {
        if let Some(out) = &mut self.out {
            out.write_all(bytes)?;
        }
        Ok(())
    }

    /// Stops writing once the payload cannot be served anyway.
    fn refuse(&mut self, problem: Problem) {
        self.out = None;
        self.problems.push(problem);
    }

    fn advance(&mut self, to: Phase) -> Result<(), BuildError> {
        if self.phase < Phase::Employees && to >= Phase::Employees {
            self.phase = Phase::Employees;
            self.departments_done();
            self.write(br#"{"status":"success","user_info_list":["#)?;
        }
        if self.phase < Phase::Memberships && to >= Phase::Memberships {
            self.phase = Phase::Memberships;
            self.write(br#"],"group_info_list":["#)?;
        }
        Ok(())
    }

    fn department(&mut self, row: RawRow<'_>, at: &Layout<DepartmentField>) {
        let n = self.departments.len() + 1;
        let group_no = match text(row.field(at, DepartmentField::GroupNo)) {
            Ok(g) => g.map(Cow::into_owned).unwrap_or_default(),
            Err(reason) => {
                self.refuse(bad(format!("department row {n}"), "group_no", reason));
                return;
            }
        };
        let record = format!("department {}", shown(&group_no));
        let active = if self.departments_active {
            let active = row.active(at).unwrap_or(Value::Null);
            match active.as_active() {
                Some(a) => a,
                None => {
                    self.refuse(bad(record, "active", active_reason(&active)));
                    return;
                }
            }
        } else {
            true
        };
        if active {
            if let Some(reason) = key_problem(Key::GroupNo, &group_no) {
                self.refuse(bad(record.clone(), "group_no", reason));
            }
        }
        let mut field = |field: DepartmentField| match text(row.field(at, field)) {
            Ok(v) => v.map(Cow::into_owned),
            Err(reason) => {
                if active {
                    self.refuse(bad(record.clone(), field.name(), reason));
                }
                None
            }
        };
        let display_name = field(DepartmentField::DisplayName);
        let parent = field(DepartmentField::ParentGroupNo);
        self.departments.push(DepartmentRow {
            group_no,
            display_name: display_name.unwrap_or_default(),
            parent_group_no: parent.filter(|p| !p.is_empty()),
            active,
        });
    }

    fn departments_done(&mut self) {
        self.departments
            .sort_by(|a, b| a.group_no.cmp(&b.group_no).then(b.active.cmp(&a.active)));
        let problems = validate::department_problems(&self.departments);
        for problem in problems {
            self.refuse(problem);
        }
        self.served = (0..self.departments.len())
            .filter(|&i| self.departments[i].active)
            .collect();
        self.served_keys = self
            .served
            .iter()
            .map(|&i| self.departments[i].group_no.clone())
            .collect();
    }

    fn employee(&mut self, row: RawRow<'_>, at: &Layout<EmployeeField>) -> Result<(), BuildError> {
        self.employee_rows += 1;
        let n = self.employee_rows;
        let username = match text(row.field(at, EmployeeField::Username)) {
            Ok(u) => u.unwrap_or_default(),
            Err(reason) => {
                self.refuse(bad(format!("employee row {n}"), "username", reason));
                return Ok(());
            }
        };
        // The previous username, kept in one reused buffer (no allocation a row).
        match &mut self.last_employee {
            Some(last) if last.as_str() > &*username => {
                return Err(BuildError::OutOfOrder(
                    "employee",
                    username.into_owned(),
                    last.clone(),
                ));
            }
            Some(last) => {
                last.clear();
                last.push_str(&username);
            }
            None => self.last_employee = Some(username.to_string()),
        }
        // Named only when there is something to say about it.
        let record = || format!("employee {}", shown(&username));
        if self.employees_active {
            let active = row.active(at).unwrap_or(Value::Null);
            match active.as_active() {
                Some(true) => {}
                Some(false) => {
                    if self.inactive_users.last() != Some(&*username) {
                        self.inactive_users.push(&username);
                    }
                    return Ok(());
                }
                None => {
                    self.refuse(bad(record(), "active", active_reason(&active)));
                    return Ok(());
                }
            }
        }
        // Every other field as text, in the slot of its field.
        let mut values: [Option<Cow<str>>; EmployeeField::ALL.len()] = Default::default();
        let mut ok = true;
        for field in EmployeeField::ALL {
            if field == EmployeeField::Username {
                continue;
            }
            match text(row.field(at, field)) {
                Ok(v) => values[field.index()] = v,
                Err(reason) => {
                    self.refuse(bad(record(), field.name(), reason));
                    ok = false;
                }
            }
        }
        let email = values[EmployeeField::Email.index()]
            .take()
            .unwrap_or_default();
        if username.is_empty() {
            self.refuse(Problem::EmptyUsername {
                email: email.to_string(),
            });
        }
        for (key, column, value) in [
            (Key::Username, "username", &*username),
            (Key::Email, "email", &*email),
        ] {
            if let Some(reason) = key_problem(key, value) {
                self.refuse(bad(record(), column, reason));
            }
        }
        if self.users.last() == Some(&*username) {
            if self.duplicate_usernames.last().map(String::as_str) != Some(&*username) {
                self.duplicate_usernames.push(username.to_string());
            }
            self.out = None;
            return Ok(());
        }
        let ordinal = u32::try_from(self.users.len()).unwrap_or(u32::MAX);
        self.users.push(&username);
        let raw_gender = values[EmployeeField::Gender.index()].as_deref();
        let gender = normalise_gender(raw_gender);
        if let Some(raw) = raw_gender {
            if gender.is_empty() && !raw.trim().is_empty() {
                self.findings.unknown_gender(raw, &username);
            }
        }
        let lower = if email.chars().any(char::is_uppercase) {
            std::borrow::Cow::Owned(email.to_lowercase())
        } else {
            std::borrow::Cow::Borrowed(&*email)
        };
        self.emails.push((xxh3_64(lower.as_bytes()), ordinal));
        self.email_text.push(&lower);
        if !ok || self.out.is_none() {
            return Ok(());
        }
        if let Some(out) = &mut self.out {
            if ordinal > 0 {
                out.write_all(b",")?;
            }
            // OMFLOW's field names, at the JSON boundary only; a NULL is "".
            write_object(
                out,
                EmployeeField::ALL.iter().map(|&field| {
                    let value = match field {
                        EmployeeField::Username => &*username,
                        EmployeeField::Email => &*email,
                        EmployeeField::Gender => gender,
                        other => values[other.index()].as_deref().unwrap_or(""),
                    };
                    (field.name(), value)
                }),
            )?;
            out.write_all(b"}")?;
        }
        Ok(())
    }

    fn membership(
        &mut self,
        row: RawRow<'_>,
        at: &Layout<MembershipField>,
    ) -> Result<(), BuildError> {
        // A membership that cannot be read names no served pair: it is left out,
        // like any membership of an unknown employee or department, and counted.
        let (Ok(Some(group_no)), Ok(Some(username))) = (
            text(row.field(at, MembershipField::GroupNo)),
            text(row.field(at, MembershipField::Username)),
        ) else {
            self.findings.unreadable_memberships += 1;
            return Ok(());
        };
        let (last_group, last_user) = &mut self.last_membership;
        if (last_group.as_str(), last_user.as_str()) > (&*group_no, &*username) {
            return Err(BuildError::OutOfOrder(
                "membership",
                format!("{group_no}/{username}"),
                format!("{last_group}/{last_user}"),
            ));
        }
        // The previous pair, in reused buffers.
        last_group.clear();
        last_group.push_str(&group_no);
        last_user.clear();
        last_user.push_str(&username);
        let served_user = self.users.contains_sorted(&username);
        let served_group = self
            .served_keys
            .binary_search_by(|k| k.as_str().cmp(&group_no))
            .is_ok();
        if served_user && served_group {
            if self.out.is_some() {
                return self.member_of(&group_no, &username);
            }
        } else if !served_user && !self.inactive_users.contains_sorted(&username) {
            self.findings.unknown_employee(&group_no, &username);
        } else if !served_group
            && self
                .departments
                .binary_search_by(|d| d.group_no.as_str().cmp(&group_no))
                .is_err()
        {
            self.findings.unknown_department(&group_no, &username);
        } else {
            self.findings.inactive_memberships += 1;
        }
        Ok(())
    }

    /// Writes every served group before `group_no`, then opens `group_no` (if it
    /// is served) and adds `username` to it.
    fn member_of(&mut self, group_no: &str, username: &str) -> Result<(), BuildError> {
        if self
            .open_group
            .as_ref()
            .is_some_and(|open| open.group_no != group_no)
        {
            self.close_group()?;
        }
        if self.open_group.is_none() {
            while self.next_group < self.served.len()
                && self.served_keys[self.next_group].as_str() < group_no
            {
                self.open_next_group()?;
                self.close_group()?;
            }
            if self.next_group < self.served.len() && self.served_keys[self.next_group] == group_no
            {
                self.open_next_group()?;
            } else {
                return Ok(());
            }
        }
        let Some(open) = &mut self.open_group else {
            return Ok(());
        };
        if open.last_member.as_deref() == Some(username) {
            return Ok(());
        }
        let first = open.last_member.is_none();
        match &mut open.last_member {
            Some(last) => {
                last.clear();
                last.push_str(username);
            }
            None => open.last_member = Some(username.to_owned()),
        }
        if let Some(out) = &mut self.out {
            if !first {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, username)?;
        }
        Ok(())
    }

    fn open_next_group(&mut self) -> Result<(), BuildError> {
        let department = &self.departments[self.served[self.next_group]];
        if let Some(out) = &mut self.out {
            if self.next_group > 0 {
                out.write_all(b",")?;
            }
            write_object(
                out,
                DepartmentField::PAYLOAD_ORDER
                    .iter()
                    .map(|&field| (field.name(), department.field(field).unwrap_or(""))),
            )?;
            out.write_all(br#","user_list":["#)?;
        }
        self.open_group = Some(OpenGroup {
            group_no: department.group_no.clone(),
            last_member: None,
        });
        self.next_group += 1;
        Ok(())
    }

    fn close_group(&mut self) -> Result<(), BuildError> {
        if self.open_group.take().is_some() {
            self.write(b"]}")?;
        }
        Ok(())
    }

    /// Ends the payload, or returns every problem found; with what was noticed.
    pub fn finish(mut self) -> Result<Outcome, BuildError> {
        self.advance(Phase::Memberships)?;
        self.close_group()?;
        while self.out.is_some() && self.next_group < self.served.len() {
            self.open_next_group()?;
            self.close_group()?;
        }
        self.write(b"]}")?;
        for username in std::mem::take(&mut self.duplicate_usernames) {
            self.problems.push(Problem::DuplicateUsername { username });
        }
        let emails = std::mem::take(&mut self.emails);
        self.problems.extend(validate::duplicate_emails(
            emails,
            &self.email_text,
            &self.users,
        ));
        let mut findings = std::mem::take(&mut self.findings);
        findings.users = self.users.len();
        findings.groups = self.served.len();
        if !self.problems.is_empty() {
            let mut problems = self.problems;
            problems.sort();
            problems.dedup();
            return Ok(Outcome {
                result: Err(problems),
                findings,
            });
        }
        let payload = match self.out {
            Some(out) => out.finish(self.users.len(), self.served.len())?,
            None => SyncPayload::empty(),
        };
        Ok(Outcome {
            result: Ok(Built {
                payload,
                users: self.users,
                groups: self.served_keys,
            }),
            findings,
        })
    }
}
