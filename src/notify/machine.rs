//! The decisions, without I/O or clocks of their own: which event is a change of
//! state, when a database has been down long enough, and how lockouts are grouped.
//! Its answers are [`Action`]s the worker carries out: a claim on the shared
//! `notify_state` row (whoever wins it sends the message), or a message to send
//! outright.
//!
//! Several replicas each run one machine. They agree through the claims; the
//! machine's own view of each condition only decides what to do when the shared
//! table cannot answer (the state database is down), and remembers that it then
//! announced something the table never recorded, so that the way back is
//! announced once too.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::event::{cut, Refusal, MAX_NAMES};
use super::message::{self, DbRole, Message};
use crate::db::notify::{Missed, Prior};

/// A condition's states, as stored in `notify_state.state`.
pub mod status {
    pub const SERVED: &str = "ok";
    pub const REFUSED_GUARD: &str = "refused_guard";
    pub const REFUSED_DATA: &str = "refused_data";
    pub const REFUSED: &[&str] = &[REFUSED_GUARD, REFUSED_DATA];
    pub const UP: &str = "up";
    pub const DOWN: &str = "down";
    pub const WAS_DOWN: &[&str] = &[DOWN];
}

/// The row of `notify_state` for `/sync`.
pub const SYNC: &str = "sync";

/// A compare-and-set to try on the shared table; the message goes out when it wins.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub subject: &'static str,
    pub to: &'static str,
    pub from: Prior,
    pub missed: Missed,
    /// `None`: only record the state (this replica announced it already).
    pub message: Option<Message>,
    /// Whether to send anyway when the table cannot answer: this replica's own
    /// view says the state changed.
    pub send_if_unsure: bool,
}

/// What the worker does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Claim(Claim),
    Send(Message),
}

/// What the table said to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The table recorded the claim's state (won or lost).
    Recorded,
    /// The table could not answer; `sent` says whether the message went anyway.
    Unsure { sent: bool },
}

/// One database's unreachable streak, as this replica sees it.
#[derive(Debug, Default)]
struct DbTrack {
    /// What the world was told last: `Some(true)` down, `Some(false)` up, `None`
    /// not known yet (just started; the table may still say "down").
    announced_down: Option<bool>,
    /// Since when every look at it failed (monotonic, and as a date for messages).
    down_since: Option<(Instant, SystemTime)>,
    /// When the announced outage began, for the recovery message.
    announced_since: Option<SystemTime>,
}

/// Lockouts within a window after a message are grouped into one summary.
#[derive(Debug, Default)]
struct Lockouts {
    last_sent: Option<Instant>,
    pending: u64,
    names: Vec<String>,
}

/// The decisions of one replica.
#[derive(Debug)]
pub struct Machine {
    after: Duration,
    lockout_window: Duration,
    /// This replica's last view of `/sync`: the stored state it would be.
    sync: Option<&'static str>,
    dbs: HashMap<DbRole, DbTrack>,
    lockouts: Lockouts,
    /// States this replica announced while the table could not record them.
    unrecorded: HashMap<&'static str, (&'static str, i64)>,
}

/// Unix milliseconds of `at`.
pub fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Machine {
    pub fn new(after: Duration, lockout_window: Duration) -> Self {
        Self {
            after,
            lockout_window,
            sync: None,
            dbs: HashMap::new(),
            lockouts: Lockouts::default(),
            unrecorded: HashMap::new(),
        }
    }

    /// A new `notify.after_secs` (on reload); a streak already running is measured
    /// against it from now on.
    pub fn set_after(&mut self, after: Duration) {
        self.after = after;
    }

    /// A claim for `subject` → `to`, adjusted for a state this replica announced
    /// while the table could not record it.
    fn claim(
        &self,
        subject: &'static str,
        to: &'static str,
        from: Prior,
        message: Message,
        send_if_unsure: bool,
    ) -> Action {
        let claim = match self.unrecorded.get(subject) {
            None => Claim {
                subject,
                to,
                from,
                missed: Missed::Nothing,
                message: Some(message),
                send_if_unsure,
            },
            // Announced already: only let the table catch up.
            Some(&(announced, at)) if announced == to => Claim {
                subject,
                to,
                from: Prior::AnyOther,
                missed: Missed::RecordIfUnchangedSince(at),
                message: None,
                send_if_unsure: false,
            },
            Some(&(_, at)) => Claim {
                subject,
                to,
                from,
                missed: Missed::OrUnchangedSince(at),
                message: Some(message),
                send_if_unsure,
            },
        };
        Action::Claim(claim)
    }

    /// What the table said to a claim made from this machine's actions.
    pub fn claimed(&mut self, claim: &Claim, outcome: Outcome, now: SystemTime) {
        match outcome {
            Outcome::Recorded => {
                self.unrecorded.remove(claim.subject);
            }
            Outcome::Unsure { sent: true } => {
                self.unrecorded
                    .insert(claim.subject, (claim.to, unix_ms(now)));
            }
            Outcome::Unsure { sent: false } => {}
        }
    }

    /// `/sync` refused.
    pub fn sync_refused(&mut self, refusal: &Refusal, at: SystemTime) -> Vec<Action> {
        let to = match refusal {
            Refusal::DeletionGuard { .. } => status::REFUSED_GUARD,
            Refusal::InvalidData { .. } => status::REFUSED_DATA,
        };
        let changed = self.sync != Some(to);
        self.sync = Some(to);
        vec![self.claim(
            SYNC,
            to,
            Prior::AnyOther,
            message::sync_refused(refusal, at),
            changed,
        )]
    }

    /// `/sync` served. Always a claim (cheap, and a refusal another replica saw
    /// must be followed by "served again" whichever replica serves next).
    pub fn sync_served(&mut self, at: SystemTime) -> Vec<Action> {
        let was_refused = self.sync.is_some_and(|s| status::REFUSED.contains(&s));
        self.sync = Some(status::SERVED);
        vec![self.claim(
            SYNC,
            status::SERVED,
            Prior::OneOf(status::REFUSED),
            message::sync_served_again(at),
            was_refused,
        )]
    }

    /// One look at a database.
    pub fn database(
        &mut self,
        role: DbRole,
        reachable: bool,
        now: Instant,
        at: SystemTime,
    ) -> Vec<Action> {
        let track = self.dbs.entry(role).or_default();
        if !reachable {
            track.down_since.get_or_insert((now, at));
            return self.due(now, at);
        }
        track.down_since = None;
        let known = track.announced_down;
        if known == Some(false) {
            return Vec::new();
        }
        // Unknown at start: the table may still hold an outage that nobody
        // announced the end of (a crash, a restart).
        let since = track.announced_since.take();
        track.announced_down = Some(false);
        vec![self.claim(
            role.key(),
            status::UP,
            Prior::OneOf(status::WAS_DOWN),
            message::database_reachable(role, since, at),
            known == Some(true),
        )]
    }

    /// A lockout reported by this replica.
    pub fn account_locked(
        &mut self,
        username: &str,
        until: SystemTime,
        now: Instant,
        at: SystemTime,
    ) -> Vec<Action> {
        let quiet = self
            .lockouts
            .last_sent
            .is_none_or(|t| now.duration_since(t) >= self.lockout_window);
        if quiet && self.lockouts.pending == 0 {
            self.lockouts.last_sent = Some(now);
            return vec![Action::Send(message::account_locked(username, until, at))];
        }
        self.lockouts.pending += 1;
        if self.lockouts.names.len() < MAX_NAMES {
            self.lockouts.names.push(cut(username));
        }
        self.due(now, at)
    }

    /// Everything whose time has come: databases down for `after`, a group of
    /// lockouts whose window ended.
    pub fn due(&mut self, now: Instant, at: SystemTime) -> Vec<Action> {
        let mut actions = Vec::new();
        let after = self.after;
        let mut down: Vec<(DbRole, SystemTime)> = Vec::new();
        for (role, track) in &mut self.dbs {
            let Some((started, since)) = track.down_since else {
                continue;
            };
            if track.announced_down == Some(true) || now.duration_since(started) < after {
                continue;
            }
            track.announced_down = Some(true);
            track.announced_since = Some(since);
            down.push((*role, since));
        }
        down.sort_by_key(|(role, _)| role.key());
        for (role, since) in down {
            actions.push(self.claim(
                role.key(),
                status::DOWN,
                Prior::AnyOther,
                message::database_unreachable(role, since, after, at),
                true,
            ));
        }
        if let Some(end) = self.lockout_window_end() {
            if now >= end {
                let names = std::mem::take(&mut self.lockouts.names);
                let pending = std::mem::take(&mut self.lockouts.pending);
                self.lockouts.last_sent = Some(now);
                actions.push(Action::Send(message::accounts_locked(
                    pending,
                    &names,
                    self.lockout_window,
                    at,
                )));
            }
        }
        actions
    }

    fn lockout_window_end(&self) -> Option<Instant> {
        if self.lockouts.pending == 0 {
            return None;
        }
        Some(self.lockouts.last_sent? + self.lockout_window)
    }

    /// When [`Machine::due`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let dbs = self
            .dbs
            .values()
            .filter_map(|track| match track.down_since {
                Some((started, _)) if track.announced_down != Some(true) => {
                    Some(started + self.after)
                }
                _ => None,
            });
        dbs.chain(self.lockout_window_end()).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(60);
    const WINDOW: Duration = Duration::from_secs(60);

    fn machine() -> Machine {
        Machine::new(AFTER, WINDOW)
    }

    fn claims(actions: &[Action]) -> Vec<&Claim> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Claim(c) => Some(c),
                Action::Send(_) => None,
            })
            .collect()
    }

    fn events(actions: &[Action]) -> Vec<&'static str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Claim(Claim {
                    message: Some(m), ..
                })
                | Action::Send(m) => Some(m.event),
                Action::Claim(_) => None,
            })
            .collect()
    }

    fn guard() -> Refusal {
        Refusal::DeletionGuard {
            users: 3,
            departments: 0,
            usernames: vec!["a".into()],
            approval_id: None,
        }
    }

    #[test]
    fn sync_claims_ask_for_a_change_of_state() {
        let mut m = machine();
        let now = SystemTime::now();
        let refused = m.sync_refused(&guard(), now);
        let c = claims(&refused)[0];
        assert_eq!(
            (c.subject, c.to, c.from),
            (SYNC, status::REFUSED_GUARD, Prior::AnyOther)
        );
        assert!(c.send_if_unsure, "a first refusal is news");
        let again = m.sync_refused(&guard(), now);
        assert!(
            !claims(&again)[0].send_if_unsure,
            "the same refusal again is not"
        );
        let served = m.sync_served(now);
        let c = claims(&served)[0];
        assert_eq!(c.from, Prior::OneOf(status::REFUSED));
        assert_eq!(events(&served), ["sync_served_again"]);
        assert!(c.send_if_unsure);
        assert!(!claims(&m.sync_served(now))[0].send_if_unsure);
        // Another reason is another state.
        m.sync_refused(&guard(), now);
        let data = m.sync_refused(
            &Refusal::InvalidData {
                problems: 1,
                keys: vec![],
            },
            now,
        );
        assert_eq!(claims(&data)[0].to, status::REFUSED_DATA);
        assert!(claims(&data)[0].send_if_unsure);
    }

    #[test]
    fn a_database_down_for_after_secs_is_announced_once_and_its_return_once() {
        let mut m = machine();
        let t0 = Instant::now();
        let at = SystemTime::now();
        assert!(m.database(DbRole::Source, false, t0, at).is_empty());
        assert_eq!(m.next_deadline(), Some(t0 + AFTER));
        assert!(m.due(t0 + AFTER / 2, at).is_empty());
        assert!(m
            .database(DbRole::Source, false, t0 + AFTER / 2, at)
            .is_empty());
        let down = m.due(t0 + AFTER, at);
        assert_eq!(events(&down), ["database_unreachable"]);
        assert_eq!(claims(&down)[0].subject, "source_database");
        assert_eq!(claims(&down)[0].to, status::DOWN);
        assert_eq!(m.next_deadline(), None);
        // Still down: nothing more, however often it is seen.
        assert!(m
            .database(DbRole::Source, false, t0 + AFTER * 3, at)
            .is_empty());
        assert!(m.due(t0 + AFTER * 4, at).is_empty());
        let up = m.database(DbRole::Source, true, t0 + AFTER * 5, at);
        assert_eq!(events(&up), ["database_reachable"]);
        let c = claims(&up)[0];
        assert_eq!((c.to, c.from), (status::UP, Prior::OneOf(status::WAS_DOWN)));
        assert!(c.send_if_unsure);
        assert!(m
            .database(DbRole::Source, true, t0 + AFTER * 6, at)
            .is_empty());
    }

    #[test]
    fn a_database_flapping_within_after_secs_sends_nothing() {
        let mut m = machine();
        let t0 = Instant::now();
        let at = SystemTime::now();
        // Seen up once (the start-up check of a stale outage), then flapping.
        m.database(DbRole::State, true, t0, at);
        for i in 0..20u32 {
            let t = t0 + AFTER / 4 * i;
            assert!(
                m.database(DbRole::State, i % 2 == 1, t, at).is_empty(),
                "{i}"
            );
            assert!(m.due(t + AFTER / 8, at).is_empty(), "{i}");
        }
    }

    #[test]
    fn a_first_look_that_finds_it_up_closes_an_outage_left_in_the_table() {
        let mut m = machine();
        let up = m.database(DbRole::Both, true, Instant::now(), SystemTime::now());
        let c = claims(&up)[0];
        assert_eq!((c.subject, c.to), ("database", status::UP));
        assert!(
            !c.send_if_unsure,
            "nothing known here to announce the end of"
        );
    }

    #[test]
    fn an_announcement_the_table_missed_is_reconciled_once() {
        let mut m = machine();
        let t0 = Instant::now();
        let at = SystemTime::now();
        m.database(DbRole::Both, false, t0, at);
        let down = m.due(t0 + AFTER, at);
        let claim = claims(&down)[0].clone();
        // The table is the database that is down: sent anyway, remembered.
        m.claimed(&claim, Outcome::Unsure { sent: true }, at);
        let up = m.database(DbRole::Both, true, t0 + AFTER * 2, at);
        let c = claims(&up)[0];
        assert_eq!(c.missed, Missed::OrUnchangedSince(unix_ms(at)));
        assert!(c.message.is_some());
        m.claimed(&c.clone(), Outcome::Recorded, at);
        // Recorded: later claims are plain again.
        m.database(DbRole::Both, false, t0 + AFTER * 3, at);
        let down = m.due(t0 + AFTER * 4, at);
        assert_eq!(claims(&down)[0].missed, Missed::Nothing);
    }

    #[test]
    fn a_refusal_announced_while_the_table_was_down_is_only_recorded_when_repeated() {
        let mut m = machine();
        let at = SystemTime::now();
        let first = m.sync_refused(&guard(), at);
        m.claimed(claims(&first)[0], Outcome::Unsure { sent: true }, at);
        let again = m.sync_refused(&guard(), at);
        let c = claims(&again)[0];
        assert_eq!(c.message, None);
        assert_eq!(c.missed, Missed::RecordIfUnchangedSince(unix_ms(at)));
        let served = m.sync_served(at);
        let c = claims(&served)[0];
        assert_eq!(c.missed, Missed::OrUnchangedSince(unix_ms(at)));
        assert_eq!(events(&served), ["sync_served_again"]);
    }

    #[test]
    fn lockouts_in_a_burst_become_one_summary_per_window() {
        let mut m = machine();
        let t0 = Instant::now();
        let at = SystemTime::now();
        let until = at + Duration::from_secs(900);
        assert_eq!(
            events(&m.account_locked("u0", until, t0, at)),
            ["account_locked"]
        );
        for i in 1..=30u32 {
            let t = t0 + Duration::from_secs(u64::from(i));
            assert!(m.account_locked(&format!("u{i}"), until, t, at).is_empty());
        }
        assert_eq!(m.next_deadline(), Some(t0 + WINDOW));
        let summary = m.due(t0 + WINDOW, at);
        assert_eq!(events(&summary), ["accounts_locked"]);
        let Action::Send(message) = &summary[0] else {
            panic!("a message")
        };
        assert_eq!(message.details["count"], 30);
        assert_eq!(
            message.details["usernames"],
            serde_json::json!(["u1", "u2", "u3", "u4", "u5"])
        );
        assert_eq!(m.next_deadline(), None);
        // The storm goes on: at most one summary per window.
        assert!(m
            .account_locked("late", until, t0 + WINDOW + Duration::from_secs(1), at)
            .is_empty());
        assert!(m
            .due(t0 + WINDOW * 2 - Duration::from_secs(1), at)
            .is_empty());
        assert_eq!(events(&m.due(t0 + WINDOW * 2, at)), ["accounts_locked"]);
        // Quiet again: the next lockout is told at once.
        assert_eq!(
            events(&m.account_locked("later", until, t0 + WINDOW * 4, at)),
            ["account_locked"]
        );
    }
}
