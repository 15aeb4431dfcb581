//! The payload builder on its own, fed batches as the source would: the JSON it
//! writes, the rules it applies, and that cells are taken by field, whatever
//! order the columns come in.

use proptest::prelude::*;
use serde_json::{json, Value as Json};

use super::build::{BuildError, Builder, Outcome};
use super::validate::Problem;
use crate::fields::{DEPARTMENT_TABLE, EMPLOYEE_COLUMNS_ACTIVE, MEMBERSHIP_COLUMNS};
use crate::source::{Batch, Rows};

/// Leaks a column list, as the read plan's are `'static`.
fn columns(names: Vec<&'static str>) -> &'static [&'static str] {
    Box::leak(names.into_boxed_slice())
}

/// Rows of `columns`, each row given as (column, text) pairs; a column the row
/// does not name is NULL, and `active` is a boolean.
fn rows(columns: &'static [&'static str], records: &[Vec<(&str, &str)>]) -> Rows {
    let mut rows = Rows::new(columns, records.len());
    for record in records {
        for column in columns {
            match record.iter().find(|(c, _)| c == column) {
                Some((_, "true")) if *column == "active" => rows.push_bool(true),
                Some((_, "false")) if *column == "active" => rows.push_bool(false),
                Some((_, value)) => rows.push_bytes(Some(value.as_bytes())),
                None => rows.push_null(),
            }
        }
    }
    rows
}

fn employee<'a>(username: &'a str, email: &'a str, active: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("username", username),
        ("email", email),
        ("nick_name", username),
        ("phone1", "123"),
        ("gender", "F"),
        ("active", active),
    ]
}

struct Org {
    departments: Vec<Vec<(&'static str, &'static str)>>,
    employees: Vec<Vec<(&'static str, &'static str)>>,
    memberships: Vec<Vec<(&'static str, &'static str)>>,
}

fn small_org() -> Org {
    Org {
        departments: vec![
            vec![
                ("group_no", "SUB"),
                ("display_name", "Sub"),
                ("parent_group_no", "HQ"),
                ("active", "true"),
            ],
            vec![
                ("group_no", "HQ"),
                ("display_name", "Head \"Office\""),
                ("active", "true"),
            ],
            vec![
                ("group_no", "OLD"),
                ("display_name", "Old"),
                ("active", "false"),
            ],
        ],
        employees: vec![
            employee("alice", "alice@example.com", "true"),
            employee("bob", "bob@example.com", "true"),
            employee("carol", "carol@example.com", "false"),
        ],
        memberships: vec![
            vec![("group_no", "HQ"), ("username", "alice")],
            vec![("group_no", "HQ"), ("username", "carol")],
            vec![("group_no", "OLD"), ("username", "bob")],
            vec![("group_no", "SUB"), ("username", "alice")],
            vec![("group_no", "SUB"), ("username", "bob")],
            vec![("group_no", "SUB"), ("username", "zed")],
        ],
    }
}

/// Builds `org` with the given column orders.
fn build(
    org: &Org,
    department_columns: &'static [&'static str],
    employee_columns: &'static [&'static str],
    membership_columns: &'static [&'static str],
) -> Result<Outcome, BuildError> {
    let mut builder = Builder::new(true, true, true);
    builder.push(Batch::Departments(rows(
        department_columns,
        &org.departments,
    )))?;
    builder.push(Batch::Employees(rows(employee_columns, &org.employees)))?;
    builder.push(Batch::Memberships(rows(
        membership_columns,
        &org.memberships,
    )))?;
    builder.finish()
}

fn payload(outcome: Outcome) -> Json {
    let built = outcome.result.expect("a valid payload");
    let bytes = built.payload.json().expect("the payload decompresses");
    assert_eq!(bytes.len(), built.payload.bytes);
    assert_eq!(
        built.payload.digest,
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
    );
    serde_json::from_slice(&bytes).expect("the payload is JSON")
}

fn canonical(org: &Org) -> Result<Outcome, BuildError> {
    build(
        org,
        &DEPARTMENT_TABLE,
        &EMPLOYEE_COLUMNS_ACTIVE,
        &MEMBERSHIP_COLUMNS,
    )
}

#[test]
fn the_payload_has_omflow_shape_and_only_what_is_served() {
    let outcome = canonical(&small_org()).expect("built");
    assert_eq!(outcome.findings.users, 2);
    assert_eq!(outcome.findings.groups, 2);
    assert_eq!(outcome.findings.inactive_memberships, 2);
    assert_eq!(outcome.findings.unknown_employees.count, 1);
    let user = |name: &str| {
        json!({"username": name, "email": format!("{name}@example.com"), "nick_name": name,
               "ad_no": "", "company": "", "phone1": "123", "phone2": "", "extension_no": "",
               "gender": "female"})
    };
    assert_eq!(
        payload(outcome),
        json!({
            "status": "success",
            "user_info_list": [user("alice"), user("bob")],
            "group_info_list": [
                {"display_name": "Head \"Office\"", "group_no": "HQ", "parent_group_no": "",
                 "user_list": ["alice"]},
                {"display_name": "Sub", "group_no": "SUB", "parent_group_no": "HQ",
                 "user_list": ["alice", "bob"]},
            ],
        })
    );
}

#[test]
fn the_json_keys_come_in_omflows_order() {
    let outcome = canonical(&small_org()).expect("built");
    let bytes = outcome.result.expect("valid").payload.json().expect("json");
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert!(text.starts_with(
        r#"{"status":"success","user_info_list":[{"username":"alice","email":"alice@example.com","nick_name":"alice","ad_no":"","company":"","phone1":"123","phone2":"","extension_no":"","gender":"female"}"#
    ), "{text}");
    assert!(text.contains(r#"{"display_name":"Sub","group_no":"SUB","parent_group_no":"HQ","user_list":["alice","bob"]}"#), "{text}");
}

#[test]
fn a_missing_field_is_an_error_not_an_empty_value() {
    let without_email = columns(
        EMPLOYEE_COLUMNS_ACTIVE
            .iter()
            .copied()
            .filter(|c| *c != "email")
            .collect(),
    );
    let error = build(
        &small_org(),
        &DEPARTMENT_TABLE,
        without_email,
        &MEMBERSHIP_COLUMNS,
    )
    .expect_err("refused");
    assert_eq!(
        error.to_string(),
        "the employees read holds no column \"email\""
    );
    let without_active = columns(EMPLOYEE_COLUMNS_ACTIVE[..9].to_vec());
    assert!(matches!(
        build(
            &small_org(),
            &DEPARTMENT_TABLE,
            without_active,
            &MEMBERSHIP_COLUMNS
        ),
        Err(BuildError::Columns("employees", _))
    ));
}

#[test]
fn emails_shared_ignoring_case_are_refused() {
    let mut org = small_org();
    org.employees[1] = employee("bob", "ALICE@example.com", "true");
    let problems = canonical(&org).expect("built").result.expect_err("refused");
    assert_eq!(
        problems,
        [Problem::DuplicateEmail {
            email: "alice@example.com".into(),
            usernames: vec!["alice".into(), "bob".into()],
        }]
    );
}

#[test]
fn keys_out_of_byte_order_stop_the_build() {
    let mut org = small_org();
    org.employees.swap(0, 1);
    assert!(matches!(
        canonical(&org),
        Err(BuildError::OutOfOrder("employee", ref key, ref after)) if key == "alice" && after == "bob"
    ));
}

#[test]
fn an_active_that_is_neither_true_nor_false_is_named() {
    let mut org = small_org();
    org.employees[0] = employee("alice", "alice@example.com", "yes");
    let problems = canonical(&org).expect("built").result.expect_err("refused");
    assert_eq!(
        problems,
        [Problem::BadValue {
            record: "employee \"alice\"".into(),
            column: "active".into(),
            reason: "is \"yes\", which is neither true nor false (use a boolean or 0/1)".into(),
        }]
    );
}

/// A permutation of `names`, from a seed.
fn shuffled(names: &[&'static str], seed: &[usize]) -> &'static [&'static str] {
    let mut names = names.to_vec();
    for (i, s) in seed.iter().enumerate().take(names.len()) {
        let j = i + s % (names.len() - i);
        names.swap(i, j);
    }
    columns(names)
}

proptest! {
    /// Reordering the columns of a read (a reordered field list, a query
    /// written otherwise) can never swap fields in the payload.
    #[test]
    fn column_order_never_changes_the_payload(
        department_seed in prop::collection::vec(0usize..16, 4),
        employee_seed in prop::collection::vec(0usize..16, 10),
        membership_seed in prop::collection::vec(0usize..16, 2),
    ) {
        let org = small_org();
        let expected = payload(canonical(&org).expect("built"));
        let reordered = build(
            &org,
            shuffled(&DEPARTMENT_TABLE, &department_seed),
            shuffled(&EMPLOYEE_COLUMNS_ACTIVE, &employee_seed),
            shuffled(&MEMBERSHIP_COLUMNS, &membership_seed),
        )
        .expect("built");
        prop_assert_eq!(payload(reordered), expected);
    }

    /// Whatever the text, the payload is valid JSON that carries it exactly.
    #[test]
    fn any_text_is_carried_exactly(nick in "\\PC*|[\u{0}-\u{1f}\"\\\\\u{7f}\u{2028}\u{2029}]{0,8}", display in ".*") {
        let nick: &'static str = Box::leak(nick.into_boxed_str());
        let display: &'static str = Box::leak(display.into_boxed_str());
        let org = Org {
            departments: vec![vec![("group_no", "HQ"), ("display_name", display), ("active", "true")]],
            employees: vec![vec![("username", "a"), ("email", "a@x"), ("nick_name", nick), ("active", "true")]],
            memberships: vec![vec![("group_no", "HQ"), ("username", "a")]],
        };
        let json = payload(canonical(&org).expect("built"));
        prop_assert_eq!(&json["user_info_list"][0]["nick_name"], &json!(nick));
        prop_assert_eq!(&json["group_info_list"][0]["display_name"], &json!(display));
    }
}
