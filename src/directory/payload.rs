//! The `/sync` document in OMFLOW's JSON shape, written deterministically: users by
//! username, departments by group_no, each member list sorted, byte order throughout,
//! so that the same data always gives the same bytes.

use std::collections::HashMap;

use serde::Serialize;

use crate::db::{DirectoryRows, EmployeeRow};

/// A serialized `/sync` answer and its sizes (for logs and metrics).
#[derive(Debug, Clone)]
pub struct SyncPayload {
    pub json: Vec<u8>,
    pub users: usize,
    pub groups: usize,
    /// XXH3-128 of `json`, hex: tells an unchanged payload without reading the snapshot.
    pub digest: String,
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

#[derive(Serialize)]
struct GroupInfo<'a> {
    display_name: &'a str,
    group_no: &'a str,
    parent_group_no: &'a str,
    user_list: Vec<&'a str>,
}

/// OMFLOW knows `male`, `female` and `""`. HR data often says `M`, `Female ` and so
/// on, so case and surrounding blanks are forgiven and one-letter codes understood;
/// anything else is served as unknown.
pub fn normalise_gender(raw: Option<&str>) -> &'static str {
    match raw.map(|g| g.trim().to_ascii_lowercase()).as_deref() {
        Some("male" | "m") => "male",
        Some("female" | "f") => "female",
        _ => "",
    }
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

fn user_info(e: &EmployeeRow) -> UserInfo<'_> {
    UserInfo {
        username: &e.username,
        email: &e.email,
        nick_name: &e.nick_name,
        ad_no: text(&e.ad_no),
        company: text(&e.company),
        phone1: text(&e.phone1),
        phone2: text(&e.phone2),
        extension_no: text(&e.extension_no),
        gender: normalise_gender(e.gender.as_deref()),
    }
}

/// Serializes already validated rows, consuming them so that each part is freed as
/// soon as it is written: the peak is the output plus one table, not all of them.
/// Inactive departments are left out; member lists only name served employees.
pub fn render(rows: DirectoryRows) -> Result<SyncPayload, serde_json::Error> {
    let DirectoryRows {
        mut employees,
        departments,
        memberships,
    } = rows;
    employees.sort_unstable_by(|a, b| a.username.cmp(&b.username));
    // ~200 bytes per user and ~100 per group avoids regrowing the buffer.
    let mut json = Vec::with_capacity(
        256 + employees.len() * 200 + departments.len() * 100 + memberships.len() * 24,
    );
    // The document is written piece by piece in the same compact form serde would
    // produce for the whole `Document`, without building it in memory first.
    json.extend_from_slice(br#"{"status":"success","user_info_list":["#);
    for (i, employee) in employees.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        serde_json::to_writer(&mut json, &user_info(employee))?;
    }
    let user_count = employees.len();
    drop(employees);

    let mut members: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &memberships {
        members.entry(&m.group_no).or_default().push(&m.username);
    }
    let mut groups: Vec<GroupInfo<'_>> = departments
        .iter()
        .filter(|d| d.active)
        .map(|d| {
            let mut user_list = members.remove(d.group_no.as_str()).unwrap_or_default();
            user_list.sort_unstable();
            user_list.dedup();
            GroupInfo {
                display_name: &d.display_name,
                group_no: &d.group_no,
                parent_group_no: d.parent_group_no.as_deref().unwrap_or(""),
                user_list,
            }
        })
        .collect();
    groups.sort_unstable_by(|a, b| a.group_no.cmp(b.group_no));
    json.extend_from_slice(br#"],"group_info_list":"#);
    serde_json::to_writer(&mut json, &groups)?;
    json.push(b'}');
    let group_count = groups.len();
    let digest = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&json));
    Ok(SyncPayload {
        json,
        users: user_count,
        groups: group_count,
        digest,
    })
}
