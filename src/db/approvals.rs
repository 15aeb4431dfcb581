//! Statements over the approvals of deletion-guard refusals (`sync_approvals`)
//! and the exact drops each one covers (`sync_approval_drops`). At most one set
//! is pending at a time: `pending_slot` is 1 on that row and NULL on every other,
//! and a UNIQUE constraint on it settles two replicas recording at once.

use sqlx::Row;

use super::history::{text_at, ROWS_PER_INSERT};
use super::{on_pool, Db, DbCause, DbError};

/// Where a page of an approval's drops starts, in (kind, name) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropsFrom<'a> {
    /// The first drops.
    First,
    /// The drops after this (kind letter, name), exclusive.
    After(char, &'a str),
    /// The drops before this (kind letter, name), exclusive, still returned in
    /// ascending order.
    Before(char, &'a str),
    /// The last drops, in ascending order.
    Last,
}

/// A refusal's set of drops, to record as pending.
#[derive(Debug, Clone)]
pub struct NewPending {
    pub now_ms: i64,
    pub set_digest: String,
    pub base_digest: String,
    pub payload_digest: String,
    pub users_dropped: i64,
    pub groups_dropped: i64,
    pub previous_total: i64,
    pub previous_groups: i64,
    pub max_deletions: i64,
    pub max_deletion_ratio: f64,
    pub guard_min_objects: i64,
    pub reasons: String,
}

/// An approval as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApprovalRow {
    pub id: i64,
    pub created_ms: i64,
    pub last_refused_ms: i64,
    pub refusals: i64,
    pub status: String,
    pub set_digest: String,
    pub base_digest: String,
    pub payload_digest: String,
    pub users_dropped: i64,
    pub groups_dropped: i64,
    pub previous_total: i64,
    pub previous_groups: i64,
    pub max_deletions: i64,
    pub max_deletion_ratio: f64,
    pub guard_min_objects: i64,
    pub reasons: String,
    pub approved_by: Option<String>,
    pub approved_ms: Option<i64>,
    pub reason: Option<String>,
    pub consumed_ms: Option<i64>,
}

const COLUMNS: &str = "id, created_ms, last_refused_ms, refusals, status, set_digest, \
    base_digest, payload_digest, users_dropped, groups_dropped, previous_total, \
    previous_groups, max_deletions, max_deletion_ratio, guard_min_objects, reasons, \
    approved_by, approved_ms, reason, consumed_ms";

fn approval_row<R: Row>(row: &R) -> Result<ApprovalRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |i| text_at(row, i).unwrap_or_default();
    Ok(ApprovalRow {
        id: row.try_get_unchecked(0)?,
        created_ms: row.try_get_unchecked(1)?,
        last_refused_ms: row.try_get_unchecked(2)?,
        refusals: row.try_get_unchecked(3)?,
        status: text(4),
        set_digest: text(5),
        base_digest: text(6),
        payload_digest: text(7),
        users_dropped: row.try_get_unchecked(8)?,
        groups_dropped: row.try_get_unchecked(9)?,
        previous_total: row.try_get_unchecked(10)?,
        previous_groups: row.try_get_unchecked(11)?,
        max_deletions: row.try_get_unchecked(12)?,
        max_deletion_ratio: row.try_get_unchecked(13)?,
        guard_min_objects: row.try_get_unchecked(14)?,
        reasons: text(15),
        approved_by: text_at(row, 16),
        approved_ms: row.try_get_unchecked(17)?,
        reason: text_at(row, 18),
        consumed_ms: row.try_get_unchecked(19)?,
    })
}

/// What became of an approval attempt.
#[derive(Debug, Clone)]
pub enum ApproveRow {
    Approved,
    /// The row is not (or no longer) pending with that digest; here it is as it stands.
    NotPending(Option<Box<ApprovalRow>>),
}

macro_rules! fetch_approvals {
    ($db:expr, $sql:expr, $($bind:expr),*) => {{
        let sql = $db.dialect($sql);
        on_pool!($db, |pool| {
            let rows = sqlx::query(&sql)$(.bind($bind))*.fetch_all(pool).await?;
            rows.iter().map(approval_row).collect::<Result<Vec<_>, sqlx::Error>>()?
        })
    }};
}

/// Looks at the pending set and records this one, while other replicas keep
/// racing to record theirs.
const RECORD_ATTEMPTS: usize = 6;

impl Db {
    /// The pending set, if any.
    pub async fn pending_approval(&self) -> Result<Option<ApprovalRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM sync_approvals WHERE pending_slot = 1");
        Ok(fetch_approvals!(self, &sql,).into_iter().next())
    }

    /// One approval.
    pub async fn approval(&self, id: i64) -> Result<Option<ApprovalRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM sync_approvals WHERE id = ?");
        Ok(fetch_approvals!(self, &sql, id).into_iter().next())
    }

    /// The latest approvals given (approved or consumed), newest first.
    pub async fn approvals_given(&self, limit: u32) -> Result<Vec<ApprovalRow>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM sync_approvals WHERE approved_ms IS NOT NULL \
             ORDER BY id DESC LIMIT ?"
        );
        Ok(fetch_approvals!(self, &sql, i64::from(limit)))
    }

    /// The approval given for exactly `set_digest` and not yet consumed.
    pub async fn approved_set(&self, set_digest: &str) -> Result<Option<i64>, DbError> {
        let sql = self.dialect(
            "SELECT MAX(id) FROM sync_approvals WHERE set_digest = ? AND status = 'approved'",
        );
        Ok(on_pool!(self, |pool| sqlx::query(&sql)
            .bind(set_digest)
            .fetch_one(pool)
            .await?
            .try_get_unchecked::<Option<i64>, _>(0))?)
    }

    /// Records a refusal of `new`'s set: the pending row again if it is the same
    /// set, else a new pending row (with every drop from `drops`, as kind u/g and
    /// name) that supersedes the old one. Returns the pending approval's id.
    pub async fn record_refusal(
        &self,
        new: &NewPending,
        drops: &[(char, &str)],
    ) -> Result<i64, DbError> {
        // Another replica recording a pending set meanwhile (a UNIQUE violation,
        // or a deadlock MariaDB reports between the two inserts): look again.
        let raced = |e: &DbError| match e {
            DbError::Query(DbCause::Sqlx(sqlx::Error::Database(db)))
                if db.is_unique_violation() =>
            {
                true
            }
            DbError::Query(DbCause::Sqlx(e)) => super::auth::lost_race(e),
            _ => false,
        };
        for _ in 0..RECORD_ATTEMPTS {
            if let Some(pending) = self.pending_approval().await? {
                if pending.set_digest == new.set_digest {
                    let sql = self.dialect(
                        "UPDATE sync_approvals SET last_refused_ms = ?, refusals = refusals + 1 \
                         WHERE id = ? AND pending_slot = 1",
                    );
                    let touched = on_pool!(self, |pool| sqlx::query(&sql)
                        .bind(new.now_ms)
                        .bind(pending.id)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected()))
                    .map_err(DbError::from);
                    match touched {
                        Ok(touched) if touched > 0 => return Ok(pending.id),
                        Ok(_) => continue,
                        Err(e) if raced(&e) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
            match self.insert_pending(new, drops).await {
                Ok(id) => return Ok(id),
                Err(e) if raced(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(DbError::Config(
            "the pending approval kept changing under concurrent syncs".into(),
        ))
    }

    async fn insert_pending(
        &self,
        new: &NewPending,
        drops: &[(char, &str)],
    ) -> Result<i64, DbError> {
        // Only a pending set of other drops is superseded. The same set recorded
        // meanwhile (another replica refusing the same data, between our look and
        // this insert) stays: the insert then breaks the UNIQUE pending_slot and
        // the caller looks again, finding it, so that the id a notification or an
        // operator has is never replaced by an identical set.
        let old_drops = self.dialect(
            "DELETE FROM sync_approval_drops WHERE approval_id IN \
             (SELECT id FROM sync_approvals WHERE pending_slot = 1 AND set_digest <> ?)",
        );
        let supersede = self.dialect(
            "UPDATE sync_approvals SET status = 'superseded', pending_slot = NULL \
             WHERE pending_slot = 1 AND set_digest <> ?",
        );
        let insert = format!(
            "INSERT INTO sync_approvals (created_ms, last_refused_ms, refusals, status, \
             pending_slot, set_digest, base_digest, payload_digest, users_dropped, \
             groups_dropped, previous_total, previous_groups, max_deletions, \
             max_deletion_ratio, guard_min_objects, reasons) \
             VALUES (?, ?, 1, 'pending', 1, {})",
            ["?"; 11].join(", ")
        );
        let insert = self.dialect(&insert).into_owned();
        let returning = format!("{insert} RETURNING id");
        macro_rules! bound {
            ($sql:expr) => {
                sqlx::query($sql)
                    .bind(new.now_ms)
                    .bind(new.now_ms)
                    .bind(&new.set_digest)
                    .bind(&new.base_digest)
                    .bind(&new.payload_digest)
                    .bind(new.users_dropped)
                    .bind(new.groups_dropped)
                    .bind(new.previous_total)
                    .bind(new.previous_groups)
                    .bind(new.max_deletions)
                    .bind(new.max_deletion_ratio)
                    .bind(new.guard_min_objects)
                    .bind(&new.reasons)
            };
        }
        let chunks: Vec<String> = drops
            .chunks(ROWS_PER_INSERT)
            .map(|chunk| {
                self.dialect(&format!(
                    "INSERT INTO sync_approval_drops (approval_id, kind, name) VALUES {}",
                    vec!["(?, ?, ?)"; chunk.len()].join(", ")
                ))
                .into_owned()
            })
            .collect();
        let id = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&old_drops)
                .bind(&new.set_digest)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&supersede)
                .bind(&new.set_digest)
                .execute(&mut *tx)
                .await?;
            let id: i64 = match self {
                Db::MySql(_) => {
                    bound!(&insert).execute(&mut *tx).await?;
                    // MySQL has no RETURNING: the id of this connection's insert.
                    sqlx::query("SELECT LAST_INSERT_ID()")
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get_unchecked::<i64, _>(0)?
                }
                _ => bound!(&returning)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get_unchecked::<i64, _>(0)?,
            };
            for (chunk, sql) in drops.chunks(ROWS_PER_INSERT).zip(&chunks) {
                let mut query = sqlx::query(sql);
                for (kind, name) in chunk {
                    query = query.bind(id).bind(kind.to_string()).bind(*name);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// A page of the drops of approval `id`, in (kind, name) order: departments
    /// first, then users, each by name. `search` keeps names containing it,
    /// ASCII letters in either case (MariaDB folds by its collation, so every
    /// letter). Pages are found by key, not by offset, so the last of 200,000
    /// drops costs what the first does; a search reads the whole set once.
    pub async fn approval_drops(
        &self,
        id: i64,
        search: Option<&str>,
        from: DropsFrom<'_>,
        limit: u32,
    ) -> Result<Vec<(char, String)>, DbError> {
        let filter = match (search, self) {
            (None, _) => "",
            // The "C" collation folds ASCII only, like SQLite's LIKE, and
            // takes half the time of the database's locale (measured on 200,000).
            (Some(_), Db::Postgres(_)) => " AND name COLLATE \"C\" ILIKE ? ESCAPE '!'",
            (Some(_), Db::MySql(_)) => " AND CONVERT(name USING utf8mb4) LIKE ? ESCAPE '!'",
            (Some(_), Db::Sqlite(_)) => " AND name LIKE ? ESCAPE '!'",
        };
        // The key as a range of the primary key: a row value where the planner
        // takes it as one (PostgreSQL, with the kind cast to the column's own
        // char(1), and SQLite), the expanded form on MariaDB, which ranges that.
        let key = |op: char| match self {
            Db::Postgres(_) => format!(" AND (kind, name) {op} (CAST(? AS char(1)), ?)"),
            Db::Sqlite(_) => format!(" AND (kind, name) {op} (?, ?)"),
            Db::MySql(_) => format!(" AND (kind {op} ? OR (kind = ? AND name {op} ?))"),
        };
        let (key, order) = match from {
            DropsFrom::First => (String::new(), "kind, name"),
            DropsFrom::After(..) => (key('>'), "kind, name"),
            DropsFrom::Before(..) => (key('<'), "kind DESC, name DESC"),
            DropsFrom::Last => (String::new(), "kind DESC, name DESC"),
        };
        let sql = self
            .dialect(&format!(
                "SELECT kind, name FROM sync_approval_drops WHERE approval_id = ?{filter}{key} \
                 ORDER BY {order} LIMIT ?"
            ))
            .into_owned();
        let pattern = search.map(|s| {
            let escaped: String = s
                .chars()
                .flat_map(|c| match c {
                    '!' | '%' | '_' => vec!['!', c],
                    c => vec![c],
                })
                .collect();
            format!("%{escaped}%")
        });
        let cursor = match from {
            DropsFrom::After(kind, name) | DropsFrom::Before(kind, name) => {
                Some((kind.to_string(), name))
            }
            DropsFrom::First | DropsFrom::Last => None,
        };
        let mysql = matches!(self, Db::MySql(_));
        let mut rows = on_pool!(self, |pool| {
            let mut query = sqlx::query(&sql).bind(id);
            if let Some(pattern) = &pattern {
                query = query.bind(pattern);
            }
            if let Some((kind, name)) = &cursor {
                query = query.bind(kind);
                if mysql {
                    query = query.bind(kind);
                }
                query = query.bind(*name);
            }
            let rows = query.bind(i64::from(limit)).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    let kind = text_at(row, 0)
                        .and_then(|k| k.chars().next())
                        .unwrap_or('?');
                    (kind, text_at(row, 1).unwrap_or_default())
                })
                .collect::<Vec<_>>()
        });
        if matches!(from, DropsFrom::Before(..) | DropsFrom::Last) {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Approves approval `id` if it is still pending with `set_digest`.
    pub async fn approve_pending(
        &self,
        id: i64,
        set_digest: &str,
        by: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<ApproveRow, DbError> {
        let sql = self.dialect(
            "UPDATE sync_approvals SET status = 'approved', pending_slot = NULL, \
             approved_by = ?, approved_ms = ?, reason = ? \
             WHERE id = ? AND status = 'pending' AND set_digest = ?",
        );
        let changed = on_pool!(self, |pool| sqlx::query(&sql)
            .bind(by)
            .bind(now_ms)
            .bind(reason)
            .bind(id)
            .bind(set_digest)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if changed > 0 {
            return Ok(ApproveRow::Approved);
        }
        Ok(ApproveRow::NotPending(
            self.approval(id).await?.map(Box::new),
        ))
    }

    /// Deletes approvals created before `cutoff_ms` that are neither pending nor
    /// approved (waiting to be consumed), with their drops.
    pub async fn prune_approvals(&self, cutoff_ms: i64) -> Result<u64, DbError> {
        let done = "created_ms < ? AND status IN ('consumed', 'superseded')";
        let drops = format!(
            "DELETE FROM sync_approval_drops WHERE approval_id IN \
             (SELECT id FROM sync_approvals WHERE {done})"
        );
        let approvals = format!("DELETE FROM sync_approvals WHERE {done}");
        self.delete_with_children(&drops, &approvals, cutoff_ms)
            .await
    }
}
