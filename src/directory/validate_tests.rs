//! The rules of [`super::validate`] on their own.

use std::collections::BTreeMap;

use proptest::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use super::arena::StrArena;
use super::validate::{department_problems, duplicate_emails, Problem};
use crate::db::DepartmentRow;

fn department(group_no: &str, parent: Option<&str>, active: bool) -> DepartmentRow {
    DepartmentRow {
        group_no: group_no.into(),
        display_name: format!("Dept {group_no}"),
        parent_group_no: parent.map(Into::into),
        active,
    }
}

fn sorted(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort();
    problems
}

#[test]
fn each_broken_tree_rule_is_named() {
    let departments = [
        department("", None, true),
        department("A", Some("GONE"), true),
        department("B", Some("OFF"), true),
        department("C", Some("D"), true),
        department("D", Some("C"), true),
        department("E", Some("E"), true),
        department("F", None, true),
        department("F", None, true),
        department("OFF", None, false),
        // An inactive department under a missing parent is nobody's concern.
        department("Z", Some("GONE"), false),
    ];
    assert_eq!(
        sorted(department_problems(&departments)),
        sorted(vec![
            Problem::EmptyGroupNo {
                display_name: "Dept ".into()
            },
            Problem::MissingParent {
                group_no: "A".into(),
                parent: "GONE".into()
            },
            Problem::InactiveParent {
                group_no: "B".into(),
                parent: "OFF".into()
            },
            Problem::ParentCycle {
                group_nos: vec!["C".into(), "D".into()]
            },
            Problem::ParentCycle {
                group_nos: vec!["E".into()]
            },
            Problem::DuplicateGroupNo {
                group_no: "F".into()
            },
        ])
    );
}

#[test]
fn an_active_row_beside_an_inactive_one_is_no_duplicate() {
    // Sorted active first, as the builder does.
    let departments = [department("A", None, true), department("A", None, false)];
    assert_eq!(department_problems(&departments), []);
}

/// A forest: each department's parent comes before it (or it is a root).
fn forest() -> impl Strategy<Value = Vec<DepartmentRow>> {
    prop::collection::vec(prop::option::of(any::<prop::sample::Index>()), 1..40).prop_map(
        |parents| {
            parents
                .iter()
                .enumerate()
                .map(|(i, parent)| {
                    let parent = match parent {
                        Some(at) if i > 0 => Some(format!("d{:02}", at.index(i))),
                        _ => None,
                    };
                    department(&format!("d{i:02}"), parent.as_deref(), true)
                })
                .collect()
        },
    )
}

/// Whether `start` is d00 or lies under it.
fn descends_from_root(departments: &[DepartmentRow], start: &str) -> bool {
    let mut node = start.to_owned();
    // A forest has no loop: the walk ends within as many steps as departments.
    for _ in 0..=departments.len() {
        if node == "d00" {
            return true;
        }
        match departments
            .iter()
            .find(|d| d.group_no == node)
            .and_then(|d| d.parent_group_no.clone())
        {
            Some(parent) => node = parent,
            None => return false,
        }
    }
    false
}

proptest! {
    #[test]
    fn a_forest_has_no_problem(departments in forest()) {
        prop_assert_eq!(department_problems(&departments), []);
    }

    #[test]
    fn pointing_a_root_at_its_descendant_makes_one_cycle(
        mut departments in forest(),
        pick in any::<prop::sample::Index>(),
    ) {
        // d00 is always a root; send it to any department: that closes a loop
        // exactly when the department descends from d00 (or is d00).
        let target = departments[pick.index(departments.len())].group_no.clone();
        let loops = descends_from_root(&departments, &target);
        departments[0].parent_group_no = Some(target);
        let problems = department_problems(&departments);
        let cycles = problems.iter().filter(|p| matches!(p, Problem::ParentCycle { .. })).count();
        prop_assert_eq!(cycles, usize::from(loops));
        prop_assert_eq!(problems.len(), cycles);
    }

    /// The hashed search finds exactly the groups a plain map would.
    #[test]
    fn duplicate_emails_are_the_groups_of_equal_emails(
        emails in prop::collection::vec("[ab]{1,2}@x", 0..30),
    ) {
        let (mut users, mut texts, mut hashed) = (StrArena::default(), StrArena::default(), Vec::new());
        let mut expected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (i, email) in emails.iter().enumerate() {
            let user = format!("u{i:02}");
            users.push(&user);
            texts.push(email);
            hashed.push((xxh3_64(email.as_bytes()), i as u32));
            expected.entry(email).or_default().push(user);
        }
        let expected: Vec<Problem> = expected
            .into_iter()
            .filter(|(_, users)| users.len() > 1)
            .map(|(email, usernames)| Problem::DuplicateEmail { email: email.into(), usernames })
            .collect();
        prop_assert_eq!(sorted(duplicate_emails(hashed, &texts, &users)), expected);
    }

    /// Equal hashes of different emails (a collision) are no duplicate.
    #[test]
    fn a_hash_collision_is_not_a_duplicate(a in "[a-z]{1,5}@x", b in "[a-z]{1,5}@y") {
        let (mut users, mut texts) = (StrArena::default(), StrArena::default());
        users.push("u1");
        users.push("u2");
        texts.push(&a);
        texts.push(&b);
        prop_assert_eq!(duplicate_emails(vec![(7, 0), (7, 1)], &texts, &users), []);
    }
}
