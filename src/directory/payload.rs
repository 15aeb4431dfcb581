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
    /// Served usernames and group_nos, sorted (for the deletion guard).
    pub usernames: Vec<String>,
    pub group_nos: Vec<String>,
    /// XXH3-128 of `json`, hex: tells an unchanged payload without reading the snapshot.
    pub digest: String,
}

#[derive(Serialize)]
struct Document<'a> {
    status: &'static str,
    user_info_list: Vec<UserInfo<'a>>,
    group_info_list: Vec<GroupInfo<'a>>,
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

/// Serializes already validated rows. Inactive departments are left out; member
/// lists only name employees that are served.
pub fn render(rows: &DirectoryRows) -> Result<SyncPayload, serde_json::Error> {
    let mut users: Vec<UserInfo<'_>> = rows.employees.iter().map(user_info).collect();
    users.sort_unstable_by(|a, b| a.username.cmp(b.username));

    let mut members: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &rows.memberships {
        members.entry(&m.group_no).or_default().push(&m.username);
    }
    let mut groups: Vec<GroupInfo<'_>> = rows
        .departments
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

    let (user_count, group_count) = (users.len(), groups.len());
    let usernames: Vec<String> = users.iter().map(|u| u.username.to_owned()).collect();
    let group_nos: Vec<String> = groups.iter().map(|g| g.group_no.to_owned()).collect();
    // ~200 bytes per user and ~100 per group avoids regrowing the buffer.
    let mut json = Vec::with_capacity(
        256 + user_count * 200 + group_count * 100 + rows.memberships.len() * 24,
    );
    serde_json::to_writer(
        &mut json,
        &Document {
            status: "success",
            user_info_list: users,
            group_info_list: groups,
        },
    )?;
    let digest = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&json));
    Ok(SyncPayload {
        json,
        users: user_count,
        groups: group_count,
        usernames,
        group_nos,
        digest,
    })
}
