//! The deletion guard's decision ([`Drops::exceeds`]) as properties: it is the
//! one function between a bad HR change and OMFLOW deleting people.

use proptest::prelude::*;

use super::snapshot::{Drops, GuardLimits};

fn drops(users: usize, groups: usize, previous_users: usize, previous_groups: usize) -> Drops {
    Drops {
        users,
        groups,
        previous_total: previous_users + previous_groups,
        previous_groups,
        ..Drops::default()
    }
}

fn limits(max_deletions: u64, max_ratio: f64, min_objects: u64) -> GuardLimits {
    GuardLimits {
        enabled: true,
        max_deletions,
        max_ratio,
        min_objects,
    }
}

/// Counts that never trip the ratio: a share above 1 cannot be dropped.
const NO_RATIO: f64 = 1.0;

#[test]
fn exactly_max_deletions_passes_and_one_more_is_refused() {
    let limits = limits(500, NO_RATIO, 10);
    assert_eq!(drops(500, 0, 10_000, 0).exceeds(&limits), None);
    let refused = drops(500, 1, 10_000, 100).exceeds(&limits);
    assert!(
        refused
            .as_deref()
            .is_some_and(|r| r.contains("sync.max_deletions = 500")),
        "{refused:?}"
    );
}

#[test]
fn a_zero_limit_means_every_deletion_needs_approval() {
    let refused = drops(0, 1, 0, 5).exceeds(&limits(0, NO_RATIO, 10));
    assert_eq!(
        refused.as_deref(),
        Some("sync.max_deletions = 0: every deletion needs approval")
    );
    assert_eq!(drops(0, 0, 0, 5).exceeds(&limits(0, 0.0, 0)), None);
}

#[test]
fn every_department_cannot_hide_behind_many_users() {
    // 11 of 11 departments go, but only 11 of 10,011 objects.
    let refused = drops(0, 11, 10_000, 11).exceeds(&limits(500, 0.2, 10));
    assert!(
        refused
            .as_deref()
            .is_some_and(|r| r.contains("sync.max_deletion_ratio = 0.2")),
        "{refused:?}"
    );
}

#[test]
fn both_reasons_are_named_together() {
    let refused = drops(600, 0, 1000, 0).exceeds(&limits(500, 0.2, 10));
    let refused = refused.unwrap_or_default();
    assert!(refused.contains("sync.max_deletions") && refused.contains(", and "));
    assert!(refused.contains("sync.max_deletion_ratio"), "{refused}");
}

proptest! {
    #[test]
    fn the_guard_switched_off_lets_everything_through(
        users in 0usize..100_000,
        groups in 0usize..1000,
        previous_users in 0usize..100_000,
        previous_groups in 0usize..1000,
    ) {
        let off = GuardLimits { enabled: false, ..limits(0, 0.0, 0) };
        prop_assert_eq!(drops(users, groups, previous_users, previous_groups).exceeds(&off), None);
    }

    #[test]
    fn more_than_max_deletions_is_always_refused(
        users in 0usize..10_000,
        groups in 0usize..1000,
        max in 0u64..10_000,
        ratio in 0.0f64..=1.0,
        min_objects in 0u64..100,
    ) {
        let d = drops(users, groups, 20_000, 2_000);
        let verdict = d.exceeds(&limits(max, ratio, min_objects));
        if (users + groups) as u64 > max {
            prop_assert!(verdict.is_some());
        }
    }

    #[test]
    fn no_more_than_min_objects_never_trips_the_ratio(
        users in 0usize..50,
        groups in 0usize..50,
        previous_users in 0usize..200,
        previous_groups in 0usize..200,
        ratio in 0.0f64..=1.0,
    ) {
        let min_objects = 100;
        let d = drops(users, groups, previous_users, previous_groups);
        // max_deletions high enough not to matter.
        prop_assert_eq!(d.exceeds(&limits(u64::MAX, ratio, min_objects)), None);
    }

    #[test]
    fn dropping_more_never_turns_a_refusal_into_a_pass(
        users in 0usize..2000,
        groups in 0usize..200,
        more_users in 0usize..500,
        more_groups in 0usize..50,
        previous_users in 0usize..5000,
        previous_groups in 0usize..500,
        max in 0u64..3000,
        ratio in 0.0f64..=1.0,
        min_objects in 0u64..50,
    ) {
        let limits = limits(max, ratio, min_objects);
        let fewer = drops(users, groups, previous_users, previous_groups);
        let more = drops(users + more_users, groups + more_groups, previous_users, previous_groups);
        if fewer.exceeds(&limits).is_some() {
            prop_assert!(more.exceeds(&limits).is_some());
        }
    }

    #[test]
    fn a_refusal_message_names_the_counts_and_how_to_approve(
        users in 1usize..1000,
        groups in 0usize..100,
    ) {
        let mut d = drops(0, 0, 5000, 500);
        for i in 0..users {
            d.note(super::snapshot::Kind::User, &format!("u{i}"));
        }
        for i in 0..groups {
            d.note(super::snapshot::Kind::Group, &format!("g{i}"));
        }
        prop_assert_eq!((d.users, d.groups), (users, groups));
        prop_assert!(d.user_sample.len() <= 10 && d.group_sample.len() <= 10);
        let message = d.refusal_message(&limits(0, 0.0, 0));
        let counts = format!("would drop {users} user(s) and {groups} department(s)");
        prop_assert!(message.contains(&counts), "{}", message);
        prop_assert!(message.contains("hr-bridge accept-deletions"));
    }
}
