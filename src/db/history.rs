//! Statements over the sync history (`sync_history`, `sync_history_names`): one
//! row per `/sync` call and the names behind its counts. Names are read as bytes
//! and made text here: MySQL keeps them VARBINARY so that they compare byte for
//! byte, which its drivers will not hand over as a string.

use sqlx::Row;

use super::{on_pool, Db, DbError};

/// Rows per multi-row INSERT: well under every backend's limit of bound values.
pub(crate) const ROWS_PER_INSERT: usize = 400;

/// Added, changed and dropped users and departments of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiffCounts {
    pub users_added: i64,
    pub users_changed: i64,
    pub users_dropped: i64,
    pub groups_added: i64,
    pub groups_changed: i64,
    pub groups_dropped: i64,
}

/// A `/sync` call to record.
#[derive(Debug, Clone, Default)]
pub struct NewSyncCall {
    pub occurred_ms: i64,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    pub outcome: &'static str,
    pub status: i32,
    pub duration_ms: i64,
    pub bytes: Option<i64>,
    pub user_count: Option<i64>,
    pub group_count: Option<i64>,
    pub digest: Option<String>,
    pub base_digest: Option<String>,
    pub counts: Option<DiffCounts>,
    /// none | pending | kept | same_as | skipped | failed
    pub names: &'static str,
    pub names_of: Option<i64>,
    pub approval_id: Option<i64>,
    pub detail: Option<String>,
}

/// A recorded call.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncCallRow {
    pub id: i64,
    pub occurred_ms: i64,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
    pub status: i32,
    pub duration_ms: i64,
    pub bytes: Option<i64>,
    pub user_count: Option<i64>,
    pub group_count: Option<i64>,
    pub digest: Option<String>,
    pub base_digest: Option<String>,
    pub counts: Option<DiffCounts>,
    pub names: String,
    pub names_of: Option<i64>,
    pub approval_id: Option<i64>,
    pub detail: Option<String>,
}

/// One name kept for a call: `kind` u/g, `event` a/c/d, and for a change the
/// fields that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRow {
    pub call_id: i64,
    pub kind: char,
    pub event: char,
    pub name: String,
    pub fields: Option<String>,
}

/// One name of a call as written; borrowed from the diff.
#[derive(Debug, Clone, Copy)]
pub struct NewName<'a> {
    pub kind: char,
    pub event: char,
    pub name: &'a str,
    pub fields: Option<&'a str>,
}

/// Calls per hour.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HourRow {
    /// Unix milliseconds at the start of the hour.
    pub hour_ms: i64,
    pub outcome: String,
    pub calls: i64,
}

const CALL_COLUMNS: &str = "id, occurred_ms, client_addr, request_id, outcome, status, \
    duration_ms, bytes, user_count, group_count, digest, base_digest, users_added, \
    users_changed, users_dropped, groups_added, groups_changed, groups_dropped, names, \
    names_of, approval_id, detail";

/// A text column read as bytes (see the module's note).
pub(crate) fn text_at<R: Row>(row: &R, index: usize) -> Option<String>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database>,
{
    row.try_get_unchecked::<Option<Vec<u8>>, _>(index)
        .ok()
        .flatten()
        .map(|bytes| match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
}

/// A call row of [`CALL_COLUMNS`].
fn call_row<R: Row>(row: &R) -> Result<SyncCallRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let int = |i: usize| row.try_get_unchecked::<Option<i64>, _>(i);
    let counts = match (int(12)?, int(13)?, int(14)?, int(15)?, int(16)?, int(17)?) {
        (Some(a), Some(b), Some(c), Some(d), Some(e), Some(f)) => Some(DiffCounts {
            users_added: a,
            users_changed: b,
            users_dropped: c,
            groups_added: d,
            groups_changed: e,
            groups_dropped: f,
        }),
        _ => None,
    };
    Ok(SyncCallRow {
        id: row.try_get_unchecked(0)?,
        occurred_ms: row.try_get_unchecked(1)?,
        client_addr: text_at(row, 2),
        request_id: text_at(row, 3),
        outcome: text_at(row, 4).unwrap_or_default(),
        status: i32::try_from(
            row.try_get_unchecked::<i64, _>(5)
                .or_else(|_| row.try_get_unchecked::<i32, _>(5).map(i64::from))?,
        )
        .unwrap_or_default(),
        duration_ms: row.try_get_unchecked(6)?,
        bytes: int(7)?,
        user_count: int(8)?,
        group_count: int(9)?,
        digest: text_at(row, 10),
        base_digest: text_at(row, 11),
        counts,
        names: text_at(row, 18).unwrap_or_default(),
        names_of: int(19)?,
        approval_id: int(20)?,
        detail: text_at(row, 21),
    })
}

/// A name row: call_id, kind, event, name, fields.
fn name_row<R: Row>(row: &R) -> Result<NameRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let letter = |i| {
        text_at(row, i)
            .and_then(|t| t.chars().next())
            .unwrap_or('?')
    };
    Ok(NameRow {
        call_id: row.try_get_unchecked(0)?,
        kind: letter(1),
        event: letter(2),
        name: text_at(row, 3).unwrap_or_default(),
        fields: text_at(row, 4),
    })
}

macro_rules! fetch_calls {
    ($db:expr, $sql:expr, $($bind:expr),*) => {{
        let sql = $db.dialect($sql);
        on_pool!($db, |pool| {
            let rows = sqlx::query(&sql)$(.bind($bind))*.fetch_all(pool).await?;
            rows.iter().map(call_row).collect::<Result<Vec<_>, sqlx::Error>>()?
        })
    }};
}

impl Db {
    /// Records one call; returns its id.
    pub async fn insert_sync_call(&self, call: &NewSyncCall) -> Result<i64, DbError> {
        let columns = "occurred_ms, client_addr, request_id, outcome, status, duration_ms, \
            bytes, user_count, group_count, digest, base_digest, users_added, users_changed, \
            users_dropped, groups_added, groups_changed, groups_dropped, names, names_of, \
            approval_id, detail";
        let values = ["?"; 21].join(", ");
        let insert = format!("INSERT INTO sync_history ({columns}) VALUES ({values})");
        let c = call.counts;
        macro_rules! bound {
            ($sql:expr) => {
                sqlx::query($sql)
                    .bind(call.occurred_ms)
                    .bind(call.client_addr.as_deref())
                    .bind(call.request_id.as_deref())
                    .bind(call.outcome)
                    .bind(call.status)
                    .bind(call.duration_ms)
                    .bind(call.bytes)
                    .bind(call.user_count)
                    .bind(call.group_count)
                    .bind(call.digest.as_deref())
                    .bind(call.base_digest.as_deref())
                    .bind(c.map(|c| c.users_added))
                    .bind(c.map(|c| c.users_changed))
                    .bind(c.map(|c| c.users_dropped))
                    .bind(c.map(|c| c.groups_added))
                    .bind(c.map(|c| c.groups_changed))
                    .bind(c.map(|c| c.groups_dropped))
                    .bind(call.names)
                    .bind(call.names_of)
                    .bind(call.approval_id)
                    .bind(call.detail.as_deref())
            };
        }
        let id = match self {
            Db::MySql(pool) => {
                let done = bound!(&insert).execute(pool).await?;
                i64::try_from(done.last_insert_id()).unwrap_or(i64::MAX)
            }
            Db::Postgres(pool) => {
                let sql = format!("{} RETURNING id", self.dialect(&insert));
                bound!(&sql).fetch_one(pool).await?.try_get::<i64, _>(0)?
            }
            Db::Sqlite(pool) => {
                let sql = format!("{insert} RETURNING id");
                bound!(&sql).fetch_one(pool).await?.try_get::<i64, _>(0)?
            }
        };
        Ok(id)
    }

    /// Sets a call's counts and the state of its names once the diff is done.
    pub async fn finish_sync_call(
        &self,
        id: i64,
        counts: Option<DiffCounts>,
        names: &str,
        names_of: Option<i64>,
        approval_id: Option<i64>,
    ) -> Result<(), DbError> {
        let sql = self.dialect(
            "UPDATE sync_history SET users_added = ?, users_changed = ?, users_dropped = ?, \
             groups_added = ?, groups_changed = ?, groups_dropped = ?, names = ?, names_of = ?, \
             approval_id = COALESCE(?, approval_id) WHERE id = ?",
        );
        let c = counts;
        on_pool!(self, |pool| sqlx::query(&sql)
            .bind(c.map(|c| c.users_added))
            .bind(c.map(|c| c.users_changed))
            .bind(c.map(|c| c.users_dropped))
            .bind(c.map(|c| c.groups_added))
            .bind(c.map(|c| c.groups_changed))
            .bind(c.map(|c| c.groups_dropped))
            .bind(names)
            .bind(names_of)
            .bind(approval_id)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Writes names of call `id`, in multi-row statements.
    pub async fn insert_history_names(
        &self,
        id: i64,
        names: &[NewName<'_>],
    ) -> Result<(), DbError> {
        for chunk in names.chunks(ROWS_PER_INSERT) {
            let values = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = self.dialect(&format!(
                "INSERT INTO sync_history_names (call_id, kind, event, name, fields) VALUES {values}"
            ))
            .into_owned();
            on_pool!(self, |pool| {
                let mut query = sqlx::query(&sql);
                for name in chunk {
                    query = query
                        .bind(id)
                        .bind(name.kind.to_string())
                        .bind(name.event.to_string())
                        .bind(name.name)
                        .bind(name.fields);
                }
                query.execute(pool).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    /// The latest calls, newest first, older than `before_id` when given.
    pub async fn sync_calls(
        &self,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<SyncCallRow>, DbError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM sync_history WHERE id < ? ORDER BY id DESC LIMIT ?"
        );
        Ok(fetch_calls!(
            self,
            &sql,
            before_id.unwrap_or(i64::MAX),
            i64::from(limit)
        ))
    }

    /// One call.
    pub async fn sync_call(&self, id: i64) -> Result<Option<SyncCallRow>, DbError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM sync_history WHERE id = ?");
        Ok(fetch_calls!(self, &sql, id).into_iter().next())
    }

    /// The latest call that kept names and answered `digest` against `base_digest`
    /// with `outcome`: a repeat of it keeps no names of its own.
    pub async fn sync_call_with_names(
        &self,
        outcome: &str,
        digest: &str,
        base_digest: &str,
    ) -> Result<Option<SyncCallRow>, DbError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM sync_history WHERE id = (SELECT MAX(id) FROM sync_history \
             WHERE names = 'kept' AND outcome = ? AND digest = ? AND base_digest = ?)"
        );
        Ok(fetch_calls!(self, &sql, outcome, digest, base_digest)
            .into_iter()
            .next())
    }

    /// The names kept for call `id`, users before departments, each by event
    /// and name: all of them, or the page of `limit` after `offset`. A page is
    /// read kind by kind in the primary key's own order (the mixed-direction
    /// order of all names needs a sort of every name, 133 ms for 40,000 on
    /// MariaDB).
    pub async fn history_names(
        &self,
        id: i64,
        page: Option<(u32, u32)>,
    ) -> Result<Vec<NameRow>, DbError> {
        let Some((offset, limit)) = page else {
            return self
                .fetch_names(
                    "SELECT call_id, kind, event, name, fields FROM sync_history_names \
                     WHERE call_id = ? ORDER BY kind DESC, event, name",
                    id,
                )
                .await;
        };
        // Literal kinds, so PostgreSQL compares them as char(1) and keeps the index.
        let of_kind = |kind: char, limit: u32, offset: u32| {
            format!(
                "SELECT call_id, kind, event, name, fields FROM sync_history_names \
                 WHERE call_id = ? AND kind = '{kind}' ORDER BY event, name \
                 LIMIT {limit} OFFSET {offset}"
            )
        };
        let count_sql = self
            .dialect("SELECT COUNT(*) FROM sync_history_names WHERE call_id = ? AND kind = 'u'");
        let users: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(&count_sql)
                .bind(id)
                .fetch_one(pool)
                .await?
        });
        let users = u32::try_from(users).unwrap_or(u32::MAX);
        let mut names = Vec::new();
        if offset < users {
            names = self.fetch_names(&of_kind('u', limit, offset), id).await?;
        }
        let left = limit.saturating_sub(u32::try_from(names.len()).unwrap_or(u32::MAX));
        if left > 0 {
            let departments = of_kind('g', left, offset.saturating_sub(users));
            names.extend(self.fetch_names(&departments, id).await?);
        }
        Ok(names)
    }

    /// The name rows `sql` selects for call `id` (its one parameter).
    async fn fetch_names(&self, sql: &str, id: i64) -> Result<Vec<NameRow>, DbError> {
        let sql = self.dialect(sql);
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(&sql).bind(id).fetch_all(pool).await?;
            rows.iter()
                .map(name_row)
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    /// How many names are kept for call `id`.
    pub async fn history_name_count(&self, id: i64) -> Result<u64, DbError> {
        let sql = self.dialect("SELECT COUNT(*) FROM sync_history_names WHERE call_id = ?");
        let count: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(&sql).bind(id).fetch_one(pool).await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Every kept name equal to `name` (byte for byte), oldest call first, with
    /// the calls they belong to.
    pub async fn history_of_name(
        &self,
        name: &str,
    ) -> Result<Vec<(NameRow, SyncCallRow)>, DbError> {
        let sql = self.dialect(
            "SELECT call_id, kind, event, name, fields FROM sync_history_names \
             WHERE name = ? ORDER BY call_id",
        );
        let names = on_pool!(self, |pool| {
            let rows = sqlx::query(&sql).bind(name).fetch_all(pool).await?;
            rows.iter()
                .map(name_row)
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        // SQLite and PostgreSQL compare text exactly already; MySQL's VARBINARY too.
        let mut out = Vec::with_capacity(names.len());
        for row in names.into_iter().filter(|row| row.name == name) {
            if let Some(call) = self.sync_call(row.call_id).await? {
                out.push((row, call));
            }
        }
        Ok(out)
    }

    /// Later calls whose names are those of call `id` (the same answer again).
    pub async fn sync_calls_repeating(&self, id: i64) -> Result<Vec<SyncCallRow>, DbError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM sync_history WHERE names_of = ? ORDER BY id LIMIT 1000"
        );
        Ok(fetch_calls!(self, &sql, id))
    }

    /// Calls per hour and outcome since `since_ms`.
    pub async fn sync_calls_per_hour(&self, since_ms: i64) -> Result<Vec<HourRow>, DbError> {
        let sql = self.dialect(
            "SELECT occurred_ms - occurred_ms % 3600000 AS hour_ms, outcome, COUNT(*) \
             FROM sync_history WHERE occurred_ms >= ? \
             GROUP BY occurred_ms - occurred_ms % 3600000, outcome ORDER BY 1, 2",
        );
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(&sql).bind(since_ms).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok::<_, sqlx::Error>(HourRow {
                        hour_ms: row.try_get_unchecked(0)?,
                        outcome: text_at(row, 1).unwrap_or_default(),
                        calls: row.try_get_unchecked(2)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    /// Deletes calls older than `cutoff_ms` with their names. Returns the calls removed.
    pub async fn prune_sync_history(&self, cutoff_ms: i64) -> Result<u64, DbError> {
        self.delete_with_children(
            "DELETE FROM sync_history_names WHERE call_id IN \
             (SELECT id FROM sync_history WHERE occurred_ms < ?)",
            "DELETE FROM sync_history WHERE occurred_ms < ?",
            cutoff_ms,
        )
        .await
    }

    /// Runs `children`, then `parents`, in one transaction, each with `cutoff_ms`
    /// as its one parameter; returns the parent rows removed. The retention
    /// pruning of the history and of the approvals share it.
    pub(super) async fn delete_with_children(
        &self,
        children: &str,
        parents: &str,
        cutoff_ms: i64,
    ) -> Result<u64, DbError> {
        let children = self.dialect(children);
        let parents = self.dialect(parents);
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&children)
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await?;
            let removed = sqlx::query(&parents)
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            removed
        }))
    }
}
