//! Statements over the sync snapshot: the one row recording what `/sync` last served.

use super::{on_pool, Db, DbError};

/// The snapshot row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SnapshotRow {
    pub taken_at: String,
    pub payload_digest: String,
    pub user_count: i64,
    pub group_count: i64,
    /// LZ4-compressed JSON, exactly as served.
    pub payload: Vec<u8>,
}

/// A snapshot to record; the payload is borrowed from the built answer, so that
/// writing it costs one copy (the driver's) rather than two.
#[derive(Debug, Clone)]
pub struct NewSnapshot<'a> {
    pub taken_at: String,
    pub payload_digest: &'a str,
    pub user_count: i64,
    pub group_count: i64,
    pub payload: std::borrow::Cow<'a, [u8]>,
}

impl Db {
    /// The digest of the last served payload, without loading the payload.
    pub async fn snapshot_digest(&self) -> Result<Option<String>, DbError> {
        let sql = "SELECT payload_digest FROM sync_snapshot WHERE id = 1";
        Ok(on_pool!(self, |pool| sqlx::query_scalar(sql)
            .fetch_optional(pool)
            .await)?)
    }

    /// The last served snapshot, if any.
    pub async fn snapshot(&self) -> Result<Option<SnapshotRow>, DbError> {
        let sql = "SELECT taken_at, payload_digest, user_count, group_count, payload \
                   FROM sync_snapshot WHERE id = 1";
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, SnapshotRow>(sql)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Stores `new` if the stored digest is still `expected` (`None`: no snapshot
    /// yet). False when another writer got there first; the caller re-reads.
    pub async fn replace_snapshot(
        &self,
        expected: Option<&str>,
        new: &NewSnapshot<'_>,
    ) -> Result<bool, DbError> {
        let changed = match expected {
            Some(old) => {
                let sql = "UPDATE sync_snapshot SET taken_at = ?, payload_digest = ?, \
                           user_count = ?, group_count = ?, payload = ? \
                           WHERE id = 1 AND payload_digest = ?";
                on_pool!(self, |pool, sql| {
                    sqlx::query(sql)
                        .bind(&new.taken_at)
                        .bind(new.payload_digest)
                        .bind(new.user_count)
                        .bind(new.group_count)
                        .bind(new.payload.as_ref())
                        .bind(old)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })?
            }
            None => {
                let sql = "INSERT INTO sync_snapshot \
                           (id, taken_at, payload_digest, user_count, group_count, payload) \
                           VALUES (1, ?, ?, ?, ?, ?)";
                let inserted = on_pool!(self, |pool, sql| {
                    sqlx::query(sql)
                        .bind(&new.taken_at)
                        .bind(new.payload_digest)
                        .bind(new.user_count)
                        .bind(new.group_count)
                        .bind(new.payload.as_ref())
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                });
                match inserted {
                    Ok(n) => n,
                    // Another sync inserted first: a lost race, not a failure.
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => 0,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        Ok(changed > 0)
    }

    /// Stores `new` whatever is there (operator approval).
    pub async fn force_snapshot(&self, new: &NewSnapshot<'_>) -> Result<(), DbError> {
        loop {
            let current = self.snapshot_digest().await?;
            if self.replace_snapshot(current.as_deref(), new).await? {
                return Ok(());
            }
            if current.as_deref() == Some(new.payload_digest) {
                return Ok(());
            }
        }
    }
}
