//! The deletion guard. OMFLOW deletes whatever a `/sync` answer lacks, so each
//! served payload is kept as a snapshot, and a payload that would drop more users
//! and departments than the limits allow is refused until an operator approves it
//! (`hr-bridge accept-deletions`). Also the diff behind `hr-bridge preview`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::build::Built;
use super::SyncPayload;
use crate::db::{NewSnapshot, SnapshotRow};

/// How many keys a refusal names, as a sample.
const SAMPLE: usize = 10;
/// The ratio rule only applies when more objects than this would go.
const RATIO_FLOOR: usize = 10;

/// `sync.max_deletions` and `sync.max_deletion_ratio`; 0 turns a limit off.
#[derive(Debug, Clone, Copy)]
pub struct GuardLimits {
    pub max_deletions: u64,
    pub max_ratio: f64,
}

/// What a payload would drop against the snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drops {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// Users plus departments in the snapshot.
    pub previous_total: usize,
    /// Departments in the snapshot (the rest of `previous_total` are users).
    pub previous_groups: usize,
}

impl Drops {
    pub fn total(&self) -> usize {
        self.users.len() + self.groups.len()
    }

    /// Why these drops exceed `limits`, or `None` when they are allowed.
    pub fn exceeds(&self, limits: &GuardLimits) -> Option<String> {
        let total = self.total();
        let by_count = limits.max_deletions > 0 && total as u64 > limits.max_deletions;
        let ratio = if self.previous_total == 0 {
            0.0
        } else {
            total as f64 / self.previous_total as f64
        };
        let by_ratio = limits.max_ratio > 0.0 && total > RATIO_FLOOR && ratio > limits.max_ratio;
        // Each kind on its own too: wiping every department must not hide behind
        // a large number of users (or the other way round).
        let kind = |dropped: usize, before: usize| {
            limits.max_ratio > 0.0
                && dropped > RATIO_FLOOR
                && before > 0
                && dropped as f64 / before as f64 > limits.max_ratio
        };
        let previous_users = self.previous_total.saturating_sub(self.previous_groups);
        let by_kind =
            kind(self.users.len(), previous_users) || kind(self.groups.len(), self.previous_groups);
        match (by_count, by_ratio || by_kind) {
            (false, false) => None,
            _ => Some(format!(
                "more than the allowed {} object(s) / {:.0}% of the last sync (of all, or of \
                 the users or the departments alone)",
                limits.max_deletions,
                limits.max_ratio * 100.0
            )),
        }
    }

    /// The 409 message: counts, a sample of keys, and how to approve.
    pub fn refusal_message(&self, limits: &GuardLimits) -> String {
        let sample = |keys: &[String]| {
            let mut shown: Vec<String> =
                keys.iter().take(SAMPLE).map(|k| format!("{k:?}")).collect();
            if keys.len() > SAMPLE {
                shown.push(format!("… {} more", keys.len() - SAMPLE));
            }
            shown.join(", ")
        };
        let mut message = format!(
            "sync refused by the deletion guard, OMFLOW should change nothing: this sync would drop \
             {} user(s) and {} department(s), {} of the {} served last time ({:.1}%), {}",
            self.users.len(),
            self.groups.len(),
            self.total(),
            self.previous_total,
            if self.previous_total == 0 { 0.0 } else { 100.0 * self.total() as f64 / self.previous_total as f64 },
            self.exceeds(limits).unwrap_or_default(),
        );
        if !self.users.is_empty() {
            message.push_str(&format!("; users dropped: {}", sample(&self.users)));
        }
        if !self.groups.is_empty() {
            message.push_str(&format!("; departments dropped: {}", sample(&self.groups)));
        }
        message.push_str(
            ". Check the HR data with `hr-bridge preview`; if the drops are intended, \
             approve them with `hr-bridge accept-deletions` and sync again",
        );
        message
    }
}

/// Keys of a served payload, read from its JSON.
#[derive(Debug, Default, Deserialize)]
struct PayloadKeys {
    user_info_list: Vec<UserKey>,
    group_info_list: Vec<GroupKey>,
}

#[derive(Debug, Deserialize)]
struct UserKey {
    username: String,
}

#[derive(Debug, Deserialize)]
struct GroupKey {
    group_no: String,
}

/// A snapshot that cannot be read back (corrupt or from a future version).
#[derive(Debug, thiserror::Error)]
#[error("the stored sync snapshot cannot be read: {0}")]
pub struct SnapshotError(String);

/// The LZ4 frame magic number; older snapshots are one LZ4 block with its size
/// in front.
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// The JSON of a snapshot row, decompressed as it is read.
pub fn snapshot_reader(row: &SnapshotRow) -> Result<Box<dyn Read + '_>, SnapshotError> {
    if row.payload.starts_with(&LZ4_FRAME_MAGIC) {
        return Ok(Box::new(lz4_flex::frame::FrameDecoder::new(
            row.payload.as_slice(),
        )));
    }
    let json = lz4_flex::decompress_size_prepended(&row.payload)
        .map_err(|e| SnapshotError(e.to_string()))?;
    Ok(Box::new(std::io::Cursor::new(json)))
}

/// The JSON a snapshot row holds, in memory.
pub fn snapshot_json(row: &SnapshotRow) -> Result<Vec<u8>, SnapshotError> {
    let mut json = Vec::new();
    snapshot_reader(row)?
        .read_to_end(&mut json)
        .map_err(|e| SnapshotError(e.to_string()))?;
    Ok(json)
}

/// What `current` drops against the snapshot `previous`. Only the snapshot's keys
/// are read (streamed from its compressed JSON); the current keys are the build's.
pub fn drops(previous: &SnapshotRow, current: &Built) -> Result<Drops, SnapshotError> {
    let keys: PayloadKeys =
        serde_json::from_reader(std::io::BufReader::new(snapshot_reader(previous)?))
            .map_err(|e| SnapshotError(e.to_string()))?;
    let users: Vec<String> = keys
        .user_info_list
        .iter()
        .filter(|u| !current.users.contains_sorted(&u.username))
        .map(|u| u.username.clone())
        .collect();
    let groups: Vec<String> = keys
        .group_info_list
        .iter()
        .filter(|g| current.groups.binary_search(&g.group_no).is_err())
        .map(|g| g.group_no.clone())
        .collect();
    Ok(Drops {
        users,
        groups,
        previous_total: keys.user_info_list.len() + keys.group_info_list.len(),
        previous_groups: keys.group_info_list.len(),
    })
}

/// The snapshot row recording `payload` as served now.
pub fn snapshot_of(payload: &SyncPayload) -> NewSnapshot<'_> {
    NewSnapshot {
        taken_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        payload_digest: &payload.digest,
        user_count: i64::try_from(payload.users).unwrap_or(i64::MAX),
        group_count: i64::try_from(payload.groups).unwrap_or(i64::MAX),
        payload: payload.frame(),
    }
}

/// Added, changed (with the fields that changed) and dropped records of one kind.
#[derive(Debug, Default, serde::Serialize)]
pub struct KindDiff {
    pub added: Vec<String>,
    pub changed: Vec<Changed>,
    pub dropped: Vec<String>,
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

/// Users and departments compared between two payloads.
#[derive(Debug, Default, serde::Serialize)]
pub struct Diff {
    pub users: KindDiff,
    pub groups: KindDiff,
}

fn records(
    json: &[u8],
    list: &str,
    key: &str,
) -> Result<BTreeMap<String, Map<String, Value>>, SnapshotError> {
    let mut document: Map<String, Value> =
        serde_json::from_slice(json).map_err(|e| SnapshotError(e.to_string()))?;
    let Some(Value::Array(items)) = document.remove(list) else {
        return Err(SnapshotError(format!("no {list} in the payload")));
    };
    Ok(items
        .into_iter()
        .filter_map(|item| match item {
            Value::Object(fields) => {
                let k = fields.get(key)?.as_str()?.to_owned();
                Some((k, fields))
            }
            _ => None,
        })
        .collect())
}

fn diff_kind(
    before: &BTreeMap<String, Map<String, Value>>,
    after: &BTreeMap<String, Map<String, Value>>,
) -> KindDiff {
    let mut diff = KindDiff::default();
    for (key, fields) in after {
        match before.get(key) {
            None => diff.added.push(key.clone()),
            Some(old) => {
                let names: BTreeSet<&String> = fields.keys().chain(old.keys()).collect();
                let changes: BTreeMap<String, FieldChange> = names
                    .into_iter()
                    .filter(|name| fields.get(*name) != old.get(*name))
                    .map(|name| {
                        let value =
                            |m: &Map<String, Value>| m.get(name).cloned().unwrap_or(Value::Null);
                        (
                            name.clone(),
                            FieldChange {
                                old: value(old),
                                new: value(fields),
                            },
                        )
                    })
                    .collect();
                if !changes.is_empty() {
                    diff.changed.push(Changed {
                        key: key.clone(),
                        fields: changes.keys().cloned().collect(),
                        changes,
                    });
                }
            }
        }
    }
    diff.dropped = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    diff
}

/// Compares the snapshot's payload with `current`, record by record and field by field.
pub fn diff(previous: Option<&SnapshotRow>, current: &SyncPayload) -> Result<Diff, SnapshotError> {
    let before_json = match previous {
        Some(row) => snapshot_json(row)?,
        None => br#"{"user_info_list":[],"group_info_list":[]}"#.to_vec(),
    };
    let current_json = current.json().map_err(|e| SnapshotError(e.to_string()))?;
    Ok(Diff {
        users: diff_kind(
            &records(&before_json, "user_info_list", "username")?,
            &records(&current_json, "user_info_list", "username")?,
        ),
        groups: diff_kind(
            &records(&before_json, "group_info_list", "group_no")?,
            &records(&current_json, "group_info_list", "group_no")?,
        ),
    })
}
