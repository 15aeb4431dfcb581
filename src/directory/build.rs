//! Building the `/sync` payload from the source's rows as they stream in:
//! departments first (all of them: the tree is small and validation needs it),
//! then employees in username order, then memberships in (group_no, username)
//! order. Each employee is checked and written out as it arrives; memory keeps only
//! what the rules need (usernames, lower-cased emails, the department tree), and
//! the JSON goes straight into an LZ4 frame with a running XXH3 digest.

use std::io::Write;

use lz4_flex::frame::FrameEncoder;
use serde::Serialize;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::findings::Findings;
use super::keys::{key_problem, shown, Key};
use super::payload::{normalise_gender, Pieces, SyncPayload};
use super::validate::{self, Problem};
use crate::db::DepartmentRow;
use crate::escape::quote;
use crate::source::{Batch, RawRow, Value};
use std::borrow::Cow;

/// Bytes gathered before they are hashed and compressed.
const CHUNK: usize = 64 * 1024;

/// Strings stored end to end, in the order pushed: far leaner than one `String`
/// each when there are a million of them.
#[derive(Debug, Default)]
pub struct StrArena {
    text: String,
    ends: Vec<u32>,
}

impl StrArena {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    pub fn last(&self) -> Option<&str> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// For an arena pushed in sorted order: is `s` in it?
    pub fn contains_sorted(&self, s: &str) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// The JSON on its way into the compressed payload, hashed as it goes.
struct PayloadWriter {
    pending: Vec<u8>,
    hasher: Xxh3,
    encoder: FrameEncoder<Pieces>,
    len: usize,
}

impl PayloadWriter {
    fn new() -> Self {
        Self {
            pending: Vec::with_capacity(CHUNK + 1024),
            hasher: Xxh3::new(),
            encoder: FrameEncoder::new(Pieces::default()),
            len: 0,
        }
    }

    fn drain(&mut self) -> std::io::Result<()> {
        self.hasher.update(&self.pending);
        self.encoder.write_all(&self.pending)?;
        self.len += self.pending.len();
        self.pending.clear();
        Ok(())
    }

    fn finish(mut self, users: usize, groups: usize) -> std::io::Result<SyncPayload> {
        self.drain()?;
        let compressed = self.encoder.finish().map_err(std::io::Error::other)?;
        Ok(SyncPayload {
            compressed: compressed.finish(),
            bytes: self.len,
            users,
            groups,
            digest: format!("{:032x}", self.hasher.digest128()),
        })
    }
}

impl Write for PayloadWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    // The JSON serializer writes a few bytes at a time: no retry loop around them.
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// OMFLOW's field names, at the JSON boundary only.
#[derive(Serialize)]
struct UserInfo<'a> {
    username: &'a str,
    email: &'a str,
    nick_name: &'a str,
    ad_no: &'a str,
    company: &'a str,
    phone1: &'a str,
    phone2: &'a str,
    extension_no: &'a str,
    gender: &'static str,
}

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

fn bad(record: String, column: &str, reason: String) -> Problem {
    Problem::BadValue {
        record,
        column: column.to_owned(),
        reason,
    }
}

use crate::source::rows::text;

fn active_reason(value: &Value) -> String {
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
                for row in rows.iter() {
                    self.department(row);
                }
            }
            Batch::Employees(rows) => {
                self.advance(Phase::Employees)?;
                for row in rows.iter() {
                    self.employee(row)?;
                }
            }
            Batch::Memberships(rows) => {
                self.advance(Phase::Memberships)?;
                for row in rows.iter() {
                    self.membership(row)?;
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

    fn department(&mut self, row: RawRow<'_>) {
        let n = self.departments.len() + 1;
        let (group_no, display_name, parent, active) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let group_no = match text(group_no) {
            Ok(g) => g.map(Cow::into_owned).unwrap_or_default(),
            Err(reason) => {
                self.refuse(bad(format!("department row {n}"), "group_no", reason));
                return;
            }
        };
        let record = format!("department {}", shown(&group_no));
        let active = if self.departments_active {
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
        let mut field = |name: &str, value: Value| match text(value) {
            Ok(v) => Some(v.map(Cow::into_owned)),
            Err(reason) => {
                if active {
                    self.refuse(bad(record.clone(), name, reason));
                }
                None
            }
        };
        let display_name = field("display_name", display_name).flatten();
        let parent = field("parent_group_no", parent).flatten();
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

    fn employee(&mut self, row: RawRow<'_>) -> Result<(), BuildError> {
        self.employee_rows += 1;
        let n = self.employee_rows;
        let cells: [Value; 10] = std::array::from_fn(|i| row.get(i));
        let [username, email, nick_name, ad_no, company, phone1, phone2, extension_no, gender, active] =
            cells;
        let username = match text(username) {
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
        let mut fields: [Option<Cow<str>>; 8] = Default::default();
        let mut ok = true;
        for (i, (name, value)) in [
            ("email", email),
            ("nick_name", nick_name),
            ("ad_no", ad_no),
            ("company", company),
            ("phone1", phone1),
            ("phone2", phone2),
            ("extension_no", extension_no),
            ("gender", gender),
        ]
        .into_iter()
        .enumerate()
        {
            match text(value) {
                Ok(v) => fields[i] = v,
                Err(reason) => {
                    self.refuse(bad(record(), name, reason));
                    ok = false;
                }
            }
        }
        let email = fields[0].take().unwrap_or_default();
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
        let gender = normalise_gender(fields[7].as_deref());
        if let Some(raw) = fields[7].as_deref() {
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
        fn s<'a>(v: &'a Option<Cow<'_, str>>) -> &'a str {
            v.as_deref().unwrap_or("")
        }
        let info = UserInfo {
            username: &username,
            email: &email,
            nick_name: s(&fields[1]),
            ad_no: s(&fields[2]),
            company: s(&fields[3]),
            phone1: s(&fields[4]),
            phone2: s(&fields[5]),
            extension_no: s(&fields[6]),
            gender,
        };
        if let Some(out) = &mut self.out {
            if ordinal > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, &info)?;
        }
        Ok(())
    }

    fn membership(&mut self, row: RawRow<'_>) -> Result<(), BuildError> {
        // A membership that cannot be read names no served pair: it is left out,
        // like any membership of an unknown employee or department, and counted.
        let (Ok(Some(group_no)), Ok(Some(username))) = (text(row.get(0)), text(row.get(1))) else {
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
            out.write_all(br#"{"display_name":"#)?;
            serde_json::to_writer(&mut *out, &department.display_name)?;
            out.write_all(br#","group_no":"#)?;
            serde_json::to_writer(&mut *out, &department.group_no)?;
            out.write_all(br#","parent_group_no":"#)?;
            serde_json::to_writer(
                &mut *out,
                department.parent_group_no.as_deref().unwrap_or(""),
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
        self.email_problems();
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

    /// Emails shared by several served employees, compared case-insensitively.
    fn email_problems(&mut self) {
        let mut emails = std::mem::take(&mut self.emails);
        emails.sort_unstable();
        let mut i = 0;
        while i < emails.len() {
            let mut j = i + 1;
            while j < emails.len() && emails[j].0 == emails[i].0 {
                j += 1;
            }
            if j - i > 1 {
                // Equal hashes: group by the text itself to rule out collisions.
                let mut same: Vec<(&str, &str)> = emails[i..j]
                    .iter()
                    .map(|&(_, o)| (self.email_text.get(o as usize), self.users.get(o as usize)))
                    .collect();
                same.sort_unstable();
                for group in same.chunk_by(|a, b| a.0 == b.0) {
                    if group.len() > 1 {
                        self.problems.push(Problem::DuplicateEmail {
                            email: group[0].0.to_owned(),
                            usernames: group.iter().map(|(_, u)| (*u).to_owned()).collect(),
                        });
                    }
                }
            }
            i = j;
        }
    }
}
