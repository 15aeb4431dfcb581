//! The deletion guard. OMFLOW deletes whatever a `/sync` answer lacks, so each
//! served payload is kept as a snapshot, and a payload that would drop more users
//! and departments than the limits allow is refused until an operator approves it
//! (`hr-bridge accept-deletions`). Also the diff behind `hr-bridge preview`.
//!
//! Both read payloads as streams: the guard reads only the snapshot's keys, the
//! diff walks the snapshot and the current payload side by side in key order, so
//! memory does not grow with the number of records.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::sync::mpsc;
use std::time::SystemTime;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::build::Built;
use super::payload::read_pieces;
use super::SyncPayload;
use crate::db::{NewSnapshot, SnapshotRow};
use crate::escape::quote;

/// How many keys a refusal names, as a sample.
const SAMPLE: usize = 10;
/// Records per message between the thread reading the snapshot and the diff.
const RECORDS_PER_BATCH: usize = 256;

/// The `[sync]` settings of the deletion guard. A limit of 0 allows no deletion
/// at all (every one needs approval); only `enabled = false` (`sync.guard =
/// "off"`) lets everything through, so that switching the safety off is never
/// the side effect of a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardLimits {
    pub enabled: bool,
    /// Most users plus departments one sync may drop.
    pub max_deletions: u64,
    /// Most share of the last snapshot one sync may drop, of all objects or of
    /// the users or the departments alone...
    pub max_ratio: f64,
    /// ...checked only when more objects than this would go, so that small
    /// organisations are not stuck on every change.
    pub min_objects: u64,
}

/// The two kinds of record in a payload, in the order the payload lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    /// The field that identifies a record of this kind.
    fn key_field(self) -> &'static str {
        match self {
            Kind::User => "username",
            Kind::Group => "group_no",
        }
    }
}

/// What a payload would drop against the snapshot: counts, and the first dropped
/// keys (in byte order) as a sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drops {
    pub users: usize,
    pub groups: usize,
    pub user_sample: Vec<String>,
    pub group_sample: Vec<String>,
    /// Users plus departments in the snapshot.
    pub previous_total: usize,
    /// Departments in the snapshot (the rest of `previous_total` are users).
    pub previous_groups: usize,
    /// The set of dropped keys, as the wrapping sum of each one's hash: the same
    /// set gives the same value in whatever order it is walked (see [`Self::set_digest`]).
    pub set_hash: u128,
}

impl Drops {
    /// Counts one dropped record.
    pub fn note(&mut self, kind: Kind, key: &str) {
        let (count, sample) = match kind {
            Kind::User => (&mut self.users, &mut self.user_sample),
            Kind::Group => (&mut self.groups, &mut self.group_sample),
        };
        *count += 1;
        if sample.len() < SAMPLE {
            sample.push(key.to_owned());
        }
        self.set_hash = self.set_hash.wrapping_add(key_hash(kind, key));
    }

    /// What an approval binds to: exactly these drops from the snapshot whose
    /// digest is `base`. Another set of drops, or the same names dropped from
    /// another snapshot, gives another digest.
    pub fn set_digest(&self, base: &str) -> String {
        let text = format!(
            "drops:{base}:{}:{}:{:032x}",
            self.users, self.groups, self.set_hash
        );
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
    }

    pub fn total(&self) -> usize {
        self.users + self.groups
    }

    /// Why these drops exceed `limits`, naming the settings, or `None` when
    /// they are allowed.
    pub fn exceeds(&self, limits: &GuardLimits) -> Option<String> {
        if !limits.enabled {
            return None;
        }
        let total = self.total();
        let mut reasons = Vec::new();
        if total as u64 > limits.max_deletions {
            reasons.push(if limits.max_deletions == 0 {
                "sync.max_deletions = 0: every deletion needs approval".to_owned()
            } else {
                format!("more than sync.max_deletions = {}", limits.max_deletions)
            });
        }
        // Each kind on its own too: wiping every department must not hide behind
        // a large number of users (or the other way round).
        let over = |dropped: usize, before: usize| {
            dropped as u64 > limits.min_objects
                && before > 0
                && dropped as f64 / before as f64 > limits.max_ratio
        };
        let previous_users = self.previous_total.saturating_sub(self.previous_groups);
        if over(total, self.previous_total)
            || over(self.users, previous_users)
            || over(self.groups, self.previous_groups)
        {
            reasons.push(format!(
                "more than sync.max_deletion_ratio = {} of the last sync (of all, or of the \
                 users or the departments alone; checked when more than \
                 sync.guard_min_objects = {} go)",
                limits.max_ratio, limits.min_objects
            ));
        }
        (!reasons.is_empty()).then(|| reasons.join(", and "))
    }

    /// The 409 message: counts, a sample of keys, and how to approve.
    pub fn refusal_message(&self, limits: &GuardLimits) -> String {
        let sample = |keys: &[String], count: usize| {
            let mut shown: Vec<String> = keys.iter().map(|k| quote(k).to_string()).collect();
            if count > keys.len() {
                shown.push(format!("… {} more", count - keys.len()));
            }
            shown.join(", ")
        };
        let mut message = format!(
            "sync refused by the deletion guard, OMFLOW should change nothing: this sync would drop \
             {} user(s) and {} department(s), {} of the {} served last time ({:.1}%), {}",
            self.users,
            self.groups,
            self.total(),
            self.previous_total,
            if self.previous_total == 0 { 0.0 } else { 100.0 * self.total() as f64 / self.previous_total as f64 },
            self.exceeds(limits).unwrap_or_default(),
        );
        if self.users > 0 {
            message.push_str(&format!(
                "; users dropped: {}",
                sample(&self.user_sample, self.users)
            ));
        }
        if self.groups > 0 {
            message.push_str(&format!(
                "; departments dropped: {}",
                sample(&self.group_sample, self.groups)
            ));
        }
        message.push_str(
            ". Check the HR data with `hr-bridge preview`; if the drops are intended, \
             review and approve exactly this set with `hr-bridge accept-deletions` and sync again",
        );
        message
    }
}

/// One dropped key's share of [`Drops::set_hash`].
fn key_hash(kind: Kind, key: &str) -> u128 {
    let mut bytes = Vec::with_capacity(key.len() + 1);
    bytes.push(match kind {
        Kind::User => b'u',
        Kind::Group => b'g',
    });
    bytes.extend_from_slice(key.as_bytes());
    xxhash_rust::xxh3::xxh3_128(&bytes)
}

/// What an approval binds to when the snapshot `base` cannot be read (so no
/// drop can be named): replacing that very snapshot.
pub fn unreadable_set_digest(base: &str) -> String {
    let text = format!("unreadable:{base}");
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

/// A snapshot that cannot be read back (corrupt or from a future version).
#[derive(Debug, thiserror::Error)]
#[error("the stored sync snapshot cannot be read: {0}")]
pub struct SnapshotError(String);

/// The LZ4 frame magic number; older snapshots are one LZ4 block with its size
/// in front.
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// The JSON of a snapshot, decompressed as it is read.
pub fn snapshot_reader(row: &SnapshotRow) -> Result<Box<dyn Read + Send>, SnapshotError> {
    if row
        .pieces
        .first()
        .is_some_and(|p| p.starts_with(&LZ4_FRAME_MAGIC))
    {
        return Ok(Box::new(lz4_flex::frame::FrameDecoder::new(read_pieces(
            row.pieces.clone(),
        ))));
    }
    let block = row.pieces.concat();
    let json =
        lz4_flex::decompress_size_prepended(&block).map_err(|e| SnapshotError(e.to_string()))?;
    Ok(Box::new(std::io::Cursor::new(json)))
}

/// Parses a payload as it is read and hands `each` every user and department
/// record in document order (`T` picks what of a record is kept); `each`
/// answering false stops the reading early, without an error.
fn each_record<T: DeserializeOwned>(
    reader: impl Read,
    each: &mut dyn FnMut(Kind, T) -> bool,
) -> Result<(), SnapshotError> {
    let stopped = Cell::new(false);
    let mut json =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 << 10, reader));
    let document = Document {
        each,
        stopped: &stopped,
    };
    match document.deserialize(&mut json) {
        Ok(()) => Ok(()),
        Err(_) if stopped.get() => Ok(()),
        Err(e) => Err(SnapshotError(e.to_string())),
    }
}

/// The payload object: its two lists are walked record by record, the rest skipped.
struct Document<'a, T> {
    each: &'a mut dyn FnMut(Kind, T) -> bool,
    stopped: &'a Cell<bool>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Document<'_, T> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Document<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a /sync payload object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<String>()? {
            let kind = match name.as_str() {
                "user_info_list" => Kind::User,
                "group_info_list" => Kind::Group,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            map.next_value_seed(List {
                kind,
                each: &mut *self.each,
                stopped: self.stopped,
            })?;
        }
        Ok(())
    }
}

/// One of the payload's lists, handed on record by record.
struct List<'a, T> {
    kind: Kind,
    each: &'a mut dyn FnMut(Kind, T) -> bool,
    stopped: &'a Cell<bool>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for List<'_, T> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for List<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<T>()? {
            if !(self.each)(self.kind, record) {
                self.stopped.set(true);
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// Just the keys of a record.
#[derive(Deserialize)]
struct Keys {
    username: Option<String>,
    group_no: Option<String>,
}

impl Keys {
    fn take(self, kind: Kind) -> Result<String, SnapshotError> {
        match kind {
            Kind::User => self.username,
            Kind::Group => self.group_no,
        }
        .ok_or_else(|| SnapshotError(format!("a record has no {}", kind.key_field())))
    }
}

/// What `current` drops against the snapshot `previous`. Only the snapshot's keys
/// are read, one at a time as they are decompressed; the current keys are the build's.
pub fn drops(previous: &SnapshotRow, current: &Built) -> Result<Drops, SnapshotError> {
    let mut drops = Drops::default();
    let mut problem = None;
    each_record(snapshot_reader(previous)?, &mut |kind, keys: Keys| {
        let key = match keys.take(kind) {
            Ok(key) => key,
            Err(e) => {
                problem = Some(e);
                return false;
            }
        };
        drops.previous_total += 1;
        let kept = match kind {
            Kind::User => current.users.contains_sorted(&key),
            Kind::Group => {
                drops.previous_groups += 1;
                current.groups.binary_search(&key).is_ok()
            }
        };
        if !kept {
            drops.note(kind, &key);
        }
        true
    })?;
    match problem {
        Some(e) => Err(e),
        None => Ok(drops),
    }
}

/// The snapshot row recording `payload` as served now.
pub fn snapshot_of(payload: &SyncPayload) -> NewSnapshot<'_> {
    NewSnapshot {
        taken_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        payload_digest: &payload.digest,
        user_count: i64::try_from(payload.users).unwrap_or(i64::MAX),
        group_count: i64::try_from(payload.groups).unwrap_or(i64::MAX),
        pieces: &payload.compressed,
    }
}

/// A record present in both payloads whose fields differ.
#[derive(Debug, serde::Serialize)]
pub struct Changed {
    pub key: String,
    /// The names of the changed fields, in order.
    pub fields: Vec<String>,
    /// Each changed field's value in the snapshot and now (`null` when absent).
    pub changes: BTreeMap<String, FieldChange>,
}

/// One field's value as last served and as it would be served now.
#[derive(Debug, serde::Serialize)]
pub struct FieldChange {
    pub old: Value,
    pub new: Value,
}

/// One difference between the snapshot and the current payload.
#[derive(Debug)]
pub enum Event {
    Added(String),
    Changed(Changed),
    Dropped(String),
}

/// How many records of one kind a diff adds, changes and drops, with the first of each.
#[derive(Debug, Default)]
pub struct KindSummary {
    pub added: usize,
    pub changed: usize,
    pub dropped: usize,
    pub added_sample: Vec<String>,
    pub changed_sample: Vec<Changed>,
    pub dropped_sample: Vec<String>,
}

/// A diff in counts and samples: its size does not grow with the directory.
#[derive(Debug, Default)]
pub struct DiffSummary {
    pub users: KindSummary,
    pub groups: KindSummary,
}

impl DiffSummary {
    /// Counts `event`, keeping it when fewer than `shown` of its sort are kept.
    pub fn note(&mut self, kind: Kind, event: Event, shown: usize) {
        let summary = match kind {
            Kind::User => &mut self.users,
            Kind::Group => &mut self.groups,
        };
        match event {
            Event::Added(key) => {
                summary.added += 1;
                if summary.added_sample.len() < shown {
                    summary.added_sample.push(key);
                }
            }
            Event::Changed(changed) => {
                summary.changed += 1;
                if summary.changed_sample.len() < shown {
                    summary.changed_sample.push(changed);
                }
            }
            Event::Dropped(key) => {
                summary.dropped += 1;
                if summary.dropped_sample.len() < shown {
                    summary.dropped_sample.push(key);
                }
            }
        }
    }

    /// The guard's view of this diff against a snapshot of `previous_users`
    /// users and `previous_groups` departments.
    pub fn drops(&self, previous_users: usize, previous_groups: usize) -> Drops {
        let sample = |keys: &[String]| keys.iter().take(SAMPLE).cloned().collect();
        Drops {
            users: self.users.dropped,
            groups: self.groups.dropped,
            user_sample: sample(&self.users.dropped_sample),
            group_sample: sample(&self.groups.dropped_sample),
            previous_total: previous_users + previous_groups,
            previous_groups,
            set_hash: 0,
        }
    }
}

/// The fields in which `new` differs from `old`, or `None` when none does.
fn changed(key: String, old: &Map<String, Value>, new: &Map<String, Value>) -> Option<Changed> {
    let names: BTreeSet<&String> = new.keys().chain(old.keys()).collect();
    let changes: BTreeMap<String, FieldChange> = names
        .into_iter()
        .filter(|name| new.get(*name) != old.get(*name))
        .map(|name| {
            let value = |m: &Map<String, Value>| m.get(name).cloned().unwrap_or(Value::Null);
            (
                name.clone(),
                FieldChange {
                    old: value(old),
                    new: value(new),
                },
            )
        })
        .collect();
    (!changes.is_empty()).then(|| Changed {
        key,
        fields: changes.keys().cloned().collect(),
        changes,
    })
}

/// A record with its kind and key, as the diff walks it.
type Record = (Kind, String, Map<String, Value>);

/// A record split into its key and fields.
fn keyed(kind: Kind, fields: Map<String, Value>) -> Result<Record, SnapshotError> {
    match fields.get(kind.key_field()) {
        Some(Value::String(key)) => Ok((kind, key.clone(), fields)),
        _ => Err(SnapshotError(format!(
            "a record has no {}",
            kind.key_field()
        ))),
    }
}

/// Whether a payload lists users before departments and each in strictly
/// ascending byte order of its key, as every payload built since byte-ordered
/// reads are. Snapshots written before that are sorted in memory instead.
fn in_key_order(previous: &SnapshotRow) -> Result<bool, SnapshotError> {
    let mut last: Option<(Kind, String)> = None;
    let mut ordered = true;
    let mut problem = None;
    each_record(snapshot_reader(previous)?, &mut |kind, keys: Keys| {
        let key = match keys.take(kind) {
            Ok(key) => key,
            Err(e) => {
                problem = Some(e);
                return false;
            }
        };
        let next = (kind, key);
        if last.as_ref().is_some_and(|before| *before >= next) {
            ordered = false;
            return false;
        }
        last = Some(next);
        true
    })?;
    match problem {
        Some(e) => Err(e),
        None => Ok(ordered),
    }
}

/// Hands `on` every difference between the snapshot `previous` and `current`:
/// users first, each kind in byte order of its keys. Both payloads are read as
/// streams, the snapshot on a thread of its own, so that only a few records of
/// each are in memory at once.
pub fn diff_each(
    previous: Option<&SnapshotRow>,
    current: &SyncPayload,
    on: &mut dyn FnMut(Kind, Event),
) -> Result<(), SnapshotError> {
    let Some(previous) = previous else {
        return each_record(current.reader(), &mut |kind, fields: Map<String, Value>| {
            if let Ok((kind, key, _)) = keyed(kind, fields) {
                on(kind, Event::Added(key));
            }
            true
        });
    };
    if !in_key_order(previous)? {
        // An older snapshot in the database's collation order: sorted here, once.
        let mut records = Vec::new();
        let mut problem = None;
        each_record(snapshot_reader(previous)?, &mut |kind, fields| {
            match keyed(kind, fields) {
                Ok(record) => records.push(record),
                Err(e) => problem = Some(e),
            }
            problem.is_none()
        })?;
        if let Some(e) = problem {
            return Err(e);
        }
        records.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        return merge(records.into_iter().map(Ok), current, on);
    }
    let reader = snapshot_reader(previous)?;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<Vec<Result<Record, SnapshotError>>>(4);
        let parser = scope.spawn(move || {
            let mut batch = Vec::with_capacity(RECORDS_PER_BATCH);
            let parsed = each_record(reader, &mut |kind, fields| {
                batch.push(keyed(kind, fields));
                if batch.len() < RECORDS_PER_BATCH {
                    return true;
                }
                let full = std::mem::replace(&mut batch, Vec::with_capacity(RECORDS_PER_BATCH));
                // A closed channel: the diff stopped, so stop reading too.
                sender.send(full).is_ok()
            });
            match parsed {
                Ok(()) => {
                    let _ = sender.send(batch);
                }
                Err(e) => {
                    let _ = sender.send(vec![Err(e)]);
                }
            }
        });
        let merged = merge(receiver.into_iter().flatten(), current, on);
        let _ = parser.join();
        merged
    })
}

/// The merge of the snapshot's records (in order) with the current payload's.
fn merge(
    previous: impl Iterator<Item = Result<Record, SnapshotError>>,
    current: &SyncPayload,
    on: &mut dyn FnMut(Kind, Event),
) -> Result<(), SnapshotError> {
    let mut previous = previous.peekable();
    let mut problem = None;
    each_record(current.reader(), &mut |kind, fields: Map<String, Value>| {
        let Ok((kind, key, fields)) = keyed(kind, fields) else {
            return true;
        };
        loop {
            match previous.peek() {
                Some(Err(_)) => {
                    if let Some(Err(e)) = previous.next() {
                        problem = Some(e);
                    }
                    return false;
                }
                Some(Ok((old_kind, old_key, _))) if (*old_kind, old_key) < (kind, &key) => {
                    on(*old_kind, Event::Dropped(old_key.clone()));
                    previous.next();
                }
                Some(Ok((old_kind, old_key, old))) if (*old_kind, old_key) == (kind, &key) => {
                    if let Some(change) = changed(key, old, &fields) {
                        on(kind, Event::Changed(change));
                    }
                    previous.next();
                    return true;
                }
                _ => {
                    on(kind, Event::Added(key));
                    return true;
                }
            }
        }
    })?;
    if let Some(e) = problem {
        return Err(e);
    }
    for record in previous {
        let (kind, key, _) = record?;
        on(kind, Event::Dropped(key));
    }
    Ok(())
}

/// Compares the snapshot's payload with `current` and keeps counts and the first
/// `shown` keys of each sort of difference.
pub fn diff_summary(
    previous: Option<&SnapshotRow>,
    current: &SyncPayload,
    shown: usize,
) -> Result<DiffSummary, SnapshotError> {
    let mut summary = DiffSummary::default();
    diff_each(previous, current, &mut |kind, event| {
        summary.note(kind, event, shown)
    })?;
    Ok(summary)
}
