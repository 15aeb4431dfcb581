//! The contract's rules for a `/sync` answer, checked from the outside on the JSON
//! a deployment actually sent: exact field sets, strings only, unique keys and
//! emails, parents present, user lists naming served users, no parent cycle, and
//! the ordering that makes the output deterministic.
//!
//! The answer is checked as it streams in ([`check_reader`]): each entry of the two
//! lists is parsed, judged and dropped, and only what a rule needs across entries
//! is kept (usernames, lowercased emails, each department's number and parent).
//! The probe's memory so follows the number of people, not the size of the answer,
//! and it never holds the answer as a JSON tree (several times its size).

use std::collections::{BTreeSet, HashMap, HashSet};

use foldhash::{HashMap as FastMap, HashSet as FastSet};
use std::fmt;
use std::io::Read;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::entry::{Entry, EntrySeed, Field, Kind};
use crate::fields::{DepartmentField, EmployeeField};

const TEXT: Kind = Kind::Str { keep: true };
const STRING: Kind = Kind::Str { keep: false };
/// The fields of one `user_info_list` entry, exactly (from [`crate::fields`]),
/// and whether a rule needs their text.
static USER_FIELDS: [(&str, Kind); EmployeeField::ALL.len()] = user_fields();
const USERNAME: usize = EmployeeField::Username.index();
const EMAIL: usize = EmployeeField::Email.index();
const GENDER: usize = EmployeeField::Gender.index();
/// The fields of one `group_info_list` entry, exactly: the department's own, in
/// OMFLOW's order, then its members.
static GROUP_FIELDS: [(&str, Kind); DepartmentField::PAYLOAD_ORDER.len() + 1] = group_fields();
const GROUP_NO: usize = DepartmentField::GroupNo.payload_index();
const PARENT: usize = DepartmentField::ParentGroupNo.payload_index();
const USER_LIST: usize = DepartmentField::PAYLOAD_ORDER.len();

const fn user_fields() -> [(&'static str, Kind); EmployeeField::ALL.len()] {
    let mut out = [("", STRING); EmployeeField::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        let field = EmployeeField::ALL[i];
        let kind = match field {
            EmployeeField::Username | EmployeeField::Email | EmployeeField::Gender => TEXT,
            _ => STRING,
        };
        out[i] = (field.name(), kind);
        i += 1;
    }
    out
}

const fn group_fields() -> [(&'static str, Kind); DepartmentField::PAYLOAD_ORDER.len() + 1] {
    let mut out = [("user_list", Kind::Names); DepartmentField::PAYLOAD_ORDER.len() + 1];
    let mut i = 0;
    while i < DepartmentField::PAYLOAD_ORDER.len() {
        let field = DepartmentField::PAYLOAD_ORDER[i];
        let kind = match field {
            DepartmentField::GroupNo | DepartmentField::ParentGroupNo => TEXT,
            DepartmentField::DisplayName => STRING,
        };
        out[i] = (field.name(), kind);
        i += 1;
    }
    out
}
const TOP_FIELDS: [&str; 3] = ["status", "user_info_list", "group_info_list"];
const USERS: &str = "user_info_list";
const GROUPS: &str = "group_info_list";

/// What a valid payload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub users: usize,
    pub groups: usize,
}

/// The broken rules, each one line naming the record at fault: the first
/// [`Problems::KEPT`] in full and how many in all (a hostile answer could break a
/// rule for every entry).
#[derive(Debug, Default)]
pub struct Problems {
    pub shown: Vec<String>,
    pub total: usize,
}

impl Problems {
    pub const KEPT: usize = 100;

    fn push(&mut self, problem: String) {
        self.total += 1;
        if self.shown.len() < Self::KEPT {
            self.shown.push(problem);
        }
    }

    fn one(problem: String) -> Self {
        let mut problems = Self::default();
        problems.push(problem);
        problems
    }
}

/// Checks a whole answer held in memory.
pub fn check(body: &[u8]) -> Result<Summary, Problems> {
    run(serde_json::Deserializer::from_slice(body))
}

/// Checks an answer as it is read; stops at the first byte that is not JSON.
pub fn check_reader(reader: impl Read) -> Result<Summary, Problems> {
    run(serde_json::Deserializer::from_reader(reader))
}

fn run<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> Result<Summary, Problems> {
    let mut checker = Checker::default();
    let parsed = Top(&mut checker)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match parsed {
        Ok(()) => checker.finish(),
        // Every value below the top is read as a JSON value of any type, so a
        // type error can only be the top-level value's.
        Err(e) if e.is_data() => Err(Problems::one("the body is not a JSON object".into())),
        Err(e) => Err(Problems::one(format!("the body is not valid JSON: {e}"))),
    }
}

/// What the rules need across entries; everything else is dropped entry by entry.
#[derive(Default)]
struct Checker {
    problems: Problems,
    top_fields: HashSet<String>,
    status_ok: bool,
    users: usize,
    groups: usize,
    /// Every served username, for duplicates and for the user lists.
    served: FastSet<Box<str>>,
    last_username: Option<Box<str>>,
    users_unordered: bool,
    /// Lowercased email → the first user who has it.
    emails: FastMap<Box<str>, Box<str>>,
    /// The user list is read: user lists can be judged as they come.
    users_done: bool,
    /// (group_no, parent_group_no) of each department, in order.
    departments: Vec<(Box<str>, Box<str>)>,
    /// User lists met before `user_info_list` (JSON objects have no order), judged
    /// at the end.
    pending: Vec<(Box<str>, Vec<Box<str>>)>,
}

impl Checker {
    fn user(&mut self, i: usize, entry: Option<Entry>) {
        self.users += 1;
        let Some(entry) = entry else {
            self.problems.push(format!("{USERS}[{i}] is not an object"));
            return;
        };
        let name = entry.text(USERNAME);
        let what = || format!("user {name:?}");
        shape(&entry, &USER_FIELDS, what, &mut self.problems);
        if name.is_empty() {
            self.problems
                .push(format!("{USERS}[{i}] has an empty username"));
        }
        if let Field::Str(Some(gender)) = &entry.fields[GENDER] {
            if !matches!(gender.as_str(), "male" | "female" | "") {
                self.problems.push(format!(
                    "{}: gender {gender:?} is not \"male\", \"female\" or \"\"",
                    what()
                ));
            }
        }
        if let Field::Str(Some(email)) = &entry.fields[EMAIL] {
            match self.emails.entry(email.to_lowercase().into_boxed_str()) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    self.problems.push(format!(
                        "email {email:?} is shared by users {:?} and {name:?}",
                        first.get()
                    ));
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(name.into());
                }
            }
        }
        if !self.served.insert(name.into()) {
            self.problems
                .push(format!("username {name:?} appears more than once"));
        }
        if self
            .last_username
            .as_deref()
            .is_some_and(|last| last > name)
        {
            self.users_unordered = true;
        }
        self.last_username = Some(name.into());
    }

    fn group(&mut self, i: usize, entry: Option<Entry>) {
        self.groups += 1;
        let Some(mut entry) = entry else {
            self.problems
                .push(format!("{GROUPS}[{i}] is not an object"));
            return;
        };
        shape(
            &entry,
            &GROUP_FIELDS,
            || format!("department {:?}", entry.text(GROUP_NO)),
            &mut self.problems,
        );
        let members = std::mem::take(&mut entry.fields[USER_LIST]);
        let group_no = entry.text(GROUP_NO);
        let what = || format!("department {group_no:?}");
        if group_no.is_empty() {
            self.problems
                .push(format!("{GROUPS}[{i}] has an empty group_no"));
        }
        match members {
            Field::Names(names, not_strings) => {
                for _ in 0..not_strings {
                    self.problems
                        .push(format!("{}: user_list holds a non-string", what()));
                }
                if names.windows(2).any(|w| w[0] >= w[1]) {
                    self.problems
                        .push(format!("{}: user_list is not sorted and unique", what()));
                }
                if self.users_done {
                    self.members_served(group_no, names.iter().map(String::as_str));
                } else {
                    self.pending.push((
                        group_no.into(),
                        names.into_iter().map(String::into_boxed_str).collect(),
                    ));
                }
            }
            Field::NotArray => self
                .problems
                .push(format!("{}: \"user_list\" is not an array", what())),
            _ => {}
        }
        self.departments
            .push((group_no.into(), entry.text(PARENT).into()));
    }

    fn members_served<'n>(&mut self, group_no: &str, names: impl Iterator<Item = &'n str>) {
        for name in names {
            if !self.served.contains(name) {
                self.problems.push(format!(
                    "department {group_no:?}: user_list names {name:?}, who is not in {USERS}"
                ));
            }
        }
    }

    fn finish(mut self) -> Result<Summary, Problems> {
        for field in TOP_FIELDS {
            if !self.top_fields.contains(field) {
                self.problems.push(format!(
                    "the top-level object: field \"{field}\" is missing"
                ));
            }
        }
        if !self.status_ok {
            self.problems.push("\"status\" is not \"success\"".into());
        }
        if self.users_unordered {
            self.problems
                .push("the list is not ordered by username".into());
        }
        for (group_no, names) in std::mem::take(&mut self.pending) {
            self.members_served(&group_no, names.iter().map(|n| &**n));
        }
        let departments = std::mem::take(&mut self.departments);
        let group_nos: Vec<&str> = departments.iter().map(|(g, _)| &**g).collect();
        duplicates_and_order(&group_nos, "group_no", &mut self.problems);
        let parent_of: HashMap<&str, &str> =
            departments.iter().map(|(g, p)| (&**g, &**p)).collect();
        for (group_no, parent) in &departments {
            if !parent.is_empty() && !parent_of.contains_key(&**parent) {
                self.problems.push(format!(
                    "department {group_no:?} has parent {parent:?}, which is not in {GROUPS}"
                ));
            }
        }
        for cycle in cycles(&parent_of) {
            self.problems.push(cycle);
        }
        if self.problems.total == 0 {
            Ok(Summary {
                users: self.users,
                groups: self.groups,
            })
        } else {
            Err(self.problems)
        }
    }
}

/// The top-level object, key by key.
struct Top<'c>(&'c mut Checker);

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the /sync answer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let checker = self.0;
        while let Some(key) = map.next_key::<String>()? {
            if !checker.top_fields.insert(key.clone()) {
                checker.problems.push(format!(
                    "the top-level object: field {key:?} appears more than once"
                ));
            }
            match key.as_str() {
                "status" => {
                    let status: Value = map.next_value()?;
                    checker.status_ok = status.as_str() == Some("success");
                }
                USERS => {
                    map.next_value_seed(List {
                        checker: &mut *checker,
                        name: USERS,
                    })?;
                    checker.users_done = true;
                }
                GROUPS => map.next_value_seed(List {
                    checker: &mut *checker,
                    name: GROUPS,
                })?,
                _ => {
                    checker
                        .problems
                        .push(format!("the top-level object: unexpected field {key:?}"));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// One of the two lists, entry by entry; any other value is one problem.
struct List<'c> {
    checker: &'c mut Checker,
    name: &'static str,
}

impl List<'_> {
    fn not_an_array<E>(self) -> Result<(), E> {
        self.checker
            .problems
            .push(format!("\"{}\" is not an array", self.name));
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for List<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for List<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the {} array", self.name)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let users = self.name == USERS;
        let fields: &'static [(&str, Kind)] = if users { &USER_FIELDS } else { &GROUP_FIELDS };
        let mut i = 0;
        while let Some(entry) = seq.next_element_seed(EntrySeed(fields))? {
            if users {
                self.checker.user(i, entry);
            } else {
                self.checker.group(i, entry);
            }
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.not_an_array()
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.not_an_array()
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.not_an_array()
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.not_an_array()
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.not_an_array()
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_an_array()
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.not_an_array()
    }
}

/// Missing fields, unexpected ones, and fields that should be strings but are not.
fn shape(
    entry: &Entry,
    fields: &[(&str, Kind)],
    what: impl Fn() -> String,
    problems: &mut Problems,
) {
    for ((field, _), value) in fields.iter().zip(&entry.fields) {
        if matches!(value, Field::Missing) {
            problems.push(format!("{}: field \"{field}\" is missing", what()));
        }
    }
    for key in &entry.unexpected {
        problems.push(format!("{}: unexpected field {key:?}", what()));
    }
    for ((field, _), value) in fields.iter().zip(&entry.fields) {
        if matches!(value, Field::NotString) {
            problems.push(format!("{}: \"{field}\" is not a string", what()));
        }
    }
}

/// Keys must be unique and, for deterministic output, in byte order.
fn duplicates_and_order(keys: &[&str], name: &str, problems: &mut Problems) {
    let mut seen = BTreeSet::new();
    for key in keys {
        if !seen.insert(*key) {
            problems.push(format!("{name} {key:?} appears more than once"));
        }
    }
    if keys.windows(2).any(|w| w[0] > w[1]) {
        problems.push(format!("the list is not ordered by {name}"));
    }
}

/// Each department whose parent chain loops, once per loop.
fn cycles(parent_of: &HashMap<&str, &str>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut cleared: HashSet<&str> = HashSet::new();
    let mut reported: HashSet<&str> = HashSet::new();
    let mut starts: Vec<&str> = parent_of.keys().copied().collect();
    starts.sort_unstable();
    for start in starts {
        let mut path: Vec<&str> = Vec::new();
        let mut on_path: HashSet<&str> = HashSet::new();
        let mut current = start;
        loop {
            if cleared.contains(current) {
                break;
            }
            if !on_path.insert(current) {
                if reported.insert(current) {
                    problems.push(format!(
                        "department {current:?} is its own ancestor (parent cycle)"
                    ));
                }
                break;
            }
            path.push(current);
            match parent_of.get(current) {
                Some(parent) if !parent.is_empty() => current = parent,
                _ => break,
            }
        }
        cleared.extend(path);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::{check, check_reader, Problems};

    fn user(name: &str, email: &str) -> String {
        format!(
            r#"{{"username":"{name}","email":"{email}","nick_name":"N","ad_no":"","company":"","phone1":"","phone2":"","extension_no":"","gender":""}}"#
        )
    }

    #[test]
    fn accepts_a_valid_payload() {
        let body = format!(
            r#"{{"status":"success","user_info_list":[{},{}],"group_info_list":[{{"display_name":"R","group_no":"R","parent_group_no":"","user_list":["a","b"]}},{{"display_name":"S","group_no":"S","parent_group_no":"R","user_list":[]}}]}}"#,
            user("a", "a@x"),
            user("b", "b@x")
        );
        let summary = check(body.as_bytes()).expect("valid");
        assert_eq!((summary.users, summary.groups), (2, 2));
    }

    #[test]
    fn names_every_broken_rule() {
        let body = format!(
            r#"{{"status":"success","user_info_list":[{},{}],"group_info_list":[{{"display_name":"R","group_no":"R","parent_group_no":"S","user_list":["zed"]}},{{"display_name":"S","group_no":"S","parent_group_no":"R","user_list":[1]}},{{"display_name":"T","group_no":"T","parent_group_no":"GONE","user_list":[]}}]}}"#,
            user("a", "Same@x"),
            user("b", "same@X").replace(r#""ad_no":"""#, r#""ad_no":7"#)
        );
        let problems = check(body.as_bytes())
            .expect_err("invalid")
            .shown
            .join("\n");
        for expected in [
            "shared by users \"a\" and \"b\"",
            "user \"b\": \"ad_no\" is not a string",
            "names \"zed\", who is not in user_info_list",
            "user_list holds a non-string",
            "parent \"GONE\", which is not in group_info_list",
            "parent cycle",
        ] {
            assert!(
                problems.contains(expected),
                "{expected} missing in:\n{problems}"
            );
        }
    }

    fn problems(body: &str) -> String {
        check(body.as_bytes())
            .expect_err("invalid")
            .shown
            .join("\n")
    }

    #[test]
    fn judges_user_lists_met_before_the_users() {
        let body = format!(
            r#"{{"group_info_list":[{{"display_name":"R","group_no":"R","parent_group_no":"","user_list":["a","zed"]}}],"status":"success","user_info_list":[{}]}}"#,
            user("a", "a@x")
        );
        let problems = problems(&body);
        assert!(
            problems.contains("names \"zed\", who is not in"),
            "{problems}"
        );
        assert!(!problems.contains("names \"a\""), "{problems}");
    }

    #[test]
    fn reads_the_same_from_a_stream_as_from_memory() {
        let body = format!(
            r#"{{"status":"success","user_info_list":[{},{}],"group_info_list":[]}}"#,
            user("b", "b@x"),
            user("a", "a@x")
        );
        let from_reader = check_reader(body.as_bytes()).expect_err("unordered");
        assert_eq!(from_reader.shown, ["the list is not ordered by username"]);
        assert_eq!(
            check(body.as_bytes()).expect_err("unordered").shown,
            from_reader.shown
        );
    }

    #[test]
    fn names_a_body_that_is_no_object_or_not_json() {
        assert_eq!(problems("[1,2]"), "the body is not a JSON object");
        assert_eq!(problems("\"text\""), "the body is not a JSON object");
        assert!(problems(r#"{"status":"success","#).starts_with("the body is not valid JSON"));
        assert!(
            problems(r#"{"status":"success"} trailing"#).starts_with("the body is not valid JSON")
        );
        let body = r#"{"status":"success","user_info_list":{"a":1},"group_info_list":7,"status":"success","extra":[1]}"#;
        let problems = problems(body);
        for expected in [
            "\"user_info_list\" is not an array",
            "\"group_info_list\" is not an array",
            "field \"status\" appears more than once",
            "unexpected field \"extra\"",
        ] {
            assert!(
                problems.contains(expected),
                "{expected} missing in:\n{problems}"
            );
        }
    }

    #[test]
    fn keeps_the_first_problems_and_counts_them_all() {
        let users: Vec<String> = (0..500)
            .map(|i| user(&format!("u{i:03}"), "same@x"))
            .collect();
        let body = format!(
            r#"{{"status":"success","user_info_list":[{}],"group_info_list":[]}}"#,
            users.join(",")
        );
        let problems = check(body.as_bytes()).expect_err("shared emails");
        assert_eq!(problems.total, 499);
        assert_eq!(problems.shown.len(), Problems::KEPT);
    }

    #[test]
    fn names_entries_of_the_wrong_shape() {
        let body = format!(
            r#"{{"status":"success","user_info_list":[[1],{},"x"],"group_info_list":[{{"display_name":{{"a":[1]}},"group_no":"R","parent_group_no":"","user_list":"a"}},{{"display_name":"S","group_no":"S","parent_group_no":"","user_list":[["a"],null,"b\u0061"],"extra":1}}]}}"#,
            user("b\\u0061", "a@x").replace(r#""ad_no":"""#, r#""ad_no":{"x":[1]}"#)
        );
        let problems = problems(&body);
        for expected in [
            "user_info_list[0] is not an object",
            "user_info_list[2] is not an object",
            "user \"ba\": \"ad_no\" is not a string",
            "department \"R\": \"display_name\" is not a string",
            "department \"R\": \"user_list\" is not an array",
            "department \"S\": user_list holds a non-string",
            "department \"S\": unexpected field \"extra\"",
        ] {
            assert!(
                problems.contains(expected),
                "{expected} missing in:\n{problems}"
            );
        }
        // "b\u0061" is "ba", a served user, whatever the escape.
        assert!(!problems.contains("names \"ba\""), "{problems}");
        assert_eq!(
            problems.matches("user_list holds a non-string").count(),
            2,
            "{problems}"
        );
    }
}
