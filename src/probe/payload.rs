//! The contract's rules for a `/sync` answer, checked from the outside on the JSON
//! a deployment actually sent: exact field sets, strings only, unique keys and
//! emails, parents present, user lists naming served users, no parent cycle, and
//! the ordering that makes the output deterministic.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

/// The fields of one `user_info_list` entry, exactly.
const USER_FIELDS: [&str; 9] = [
    "username",
    "email",
    "nick_name",
    "ad_no",
    "company",
    "phone1",
    "phone2",
    "extension_no",
    "gender",
];
/// The fields of one `group_info_list` entry, exactly.
const GROUP_FIELDS: [&str; 4] = ["display_name", "group_no", "parent_group_no", "user_list"];
const TOP_FIELDS: [&str; 3] = ["status", "user_info_list", "group_info_list"];

/// What a valid payload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub users: usize,
    pub groups: usize,
}

/// Checks `body` against every contract rule; on failure, each broken rule as one
/// line naming the record at fault.
pub fn check(body: &[u8]) -> Result<Summary, Vec<String>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![format!("the body is not valid JSON: {e}")])?;
    let Value::Object(top) = value else {
        return Err(vec!["the body is not a JSON object".into()]);
    };
    let mut problems = Vec::new();
    exact_fields(&top, &TOP_FIELDS, "the top-level object", &mut problems);
    if top.get("status").and_then(Value::as_str) != Some("success") {
        problems.push("\"status\" is not \"success\"".into());
    }
    let users = list(&top, "user_info_list", &mut problems);
    let groups = list(&top, "group_info_list", &mut problems);

    let mut usernames = Vec::with_capacity(users.len());
    let mut emails: HashMap<String, &str> = HashMap::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        let Some(user) = object(user, &format!("user_info_list[{i}]"), &mut problems) else {
            continue;
        };
        let name = user.get("username").and_then(Value::as_str).unwrap_or("");
        let what = format!("user {name:?}");
        exact_fields(user, &USER_FIELDS, &what, &mut problems);
        for field in USER_FIELDS {
            if user.get(field).is_some_and(|v| !v.is_string()) {
                problems.push(format!("{what}: \"{field}\" is not a string"));
            }
        }
        if name.is_empty() {
            problems.push(format!("user_info_list[{i}] has an empty username"));
        }
        if let Some(gender) = user.get("gender").and_then(Value::as_str) {
            if !matches!(gender, "male" | "female" | "") {
                problems.push(format!(
                    "{what}: gender {gender:?} is not \"male\", \"female\" or \"\""
                ));
            }
        }
        if let Some(email) = user.get("email").and_then(Value::as_str) {
            if let Some(first) = emails.insert(email.to_lowercase(), name) {
                problems.push(format!(
                    "email {email:?} is shared by users {first:?} and {name:?}"
                ));
            }
        }
        usernames.push(name);
    }
    duplicates_and_order(&usernames, "username", &mut problems);
    let served: HashSet<&str> = usernames.iter().copied().collect();

    let mut parents: Vec<(&str, &str)> = Vec::with_capacity(groups.len());
    for (i, group) in groups.iter().enumerate() {
        let Some(group) = object(group, &format!("group_info_list[{i}]"), &mut problems) else {
            continue;
        };
        let group_no = group.get("group_no").and_then(Value::as_str).unwrap_or("");
        let what = format!("department {group_no:?}");
        exact_fields(group, &GROUP_FIELDS, &what, &mut problems);
        for field in ["display_name", "group_no", "parent_group_no"] {
            if group.get(field).is_some_and(|v| !v.is_string()) {
                problems.push(format!("{what}: \"{field}\" is not a string"));
            }
        }
        if group_no.is_empty() {
            problems.push(format!("group_info_list[{i}] has an empty group_no"));
        }
        match group.get("user_list") {
            Some(Value::Array(members)) => {
                let mut names = Vec::with_capacity(members.len());
                for member in members {
                    match member.as_str() {
                        Some(name) if served.contains(name) => names.push(name),
                        Some(name) => problems.push(format!(
                            "{what}: user_list names {name:?}, who is not in user_info_list"
                        )),
                        None => problems.push(format!("{what}: user_list holds a non-string")),
                    }
                }
                if names.windows(2).any(|w| w[0] >= w[1]) {
                    problems.push(format!("{what}: user_list is not sorted and unique"));
                }
            }
            Some(_) => problems.push(format!("{what}: \"user_list\" is not an array")),
            None => {}
        }
        let parent = group
            .get("parent_group_no")
            .and_then(Value::as_str)
            .unwrap_or("");
        parents.push((group_no, parent));
    }
    let group_nos: Vec<&str> = parents.iter().map(|(g, _)| *g).collect();
    duplicates_and_order(&group_nos, "group_no", &mut problems);
    let parent_of: HashMap<&str, &str> = parents.iter().copied().collect();
    for (group_no, parent) in &parents {
        if !parent.is_empty() && !parent_of.contains_key(parent) {
            problems.push(format!(
                "department {group_no:?} has parent {parent:?}, which is not in group_info_list"
            ));
        }
    }
    problems.extend(cycles(&parent_of));

    if problems.is_empty() {
        Ok(Summary {
            users: users.len(),
            groups: groups.len(),
        })
    } else {
        Err(problems)
    }
}

fn list<'a>(top: &'a Map<String, Value>, name: &str, problems: &mut Vec<String>) -> &'a [Value] {
    match top.get(name) {
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.push(format!("\"{name}\" is not an array"));
            &[]
        }
        None => &[],
    }
}

fn object<'a>(
    value: &'a Value,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<&'a Map<String, Value>> {
    let object = value.as_object();
    if object.is_none() {
        problems.push(format!("{what} is not an object"));
    }
    object
}

fn exact_fields(object: &Map<String, Value>, fields: &[&str], what: &str, out: &mut Vec<String>) {
    for field in fields {
        if !object.contains_key(*field) {
            out.push(format!("{what}: field \"{field}\" is missing"));
        }
    }
    for key in object.keys() {
        if !fields.contains(&key.as_str()) {
            out.push(format!("{what}: unexpected field {key:?}"));
        }
    }
}

/// Keys must be unique and, for deterministic output, in byte order.
fn duplicates_and_order(keys: &[&str], name: &str, problems: &mut Vec<String>) {
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
    use super::check;

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
        let problems = check(body.as_bytes()).expect_err("invalid").join("\n");
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
}
