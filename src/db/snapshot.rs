//! Statements over the sync snapshot: what `/sync` last served. One header row
//! (`sync_snapshot`, id 1) and the compressed payload in pieces of at most 1 MiB
//! (`sync_snapshot_pieces`), so that neither side ever holds the frame in one
//! buffer or sends one value larger than a MySQL packet.

use std::borrow::Cow;
use std::sync::Arc;

use futures_util::TryStreamExt;

use super::{from_row, numbered_placeholders, on_pool, Db, DbError};

/// The snapshot as stored.
#[derive(Debug, Clone)]
pub struct SnapshotRow {
    pub taken_at: String,
    pub payload_digest: String,
    pub user_count: i64,
    pub group_count: i64,
    /// LZ4-compressed JSON, exactly as served, in its stored pieces.
    pub pieces: Arc<[Box<[u8]>]>,
}

/// A snapshot to record; the pieces are borrowed from the built answer, so that
/// writing it copies one piece at a time.
#[derive(Debug, Clone)]
pub struct NewSnapshot<'a> {
    pub taken_at: String,
    pub payload_digest: &'a str,
    pub user_count: i64,
    pub group_count: i64,
    pub pieces: &'a [Box<[u8]>],
}

from_row! {
    /// The header with one piece; one statement, so always one consistent state.
    struct JoinedRow {
        taken_at: String,
        payload_digest: String,
        user_count: i64,
        group_count: i64,
        piece: Option<Vec<u8>>,
    }
}

impl Db {
    /// The digest of the last served payload, without loading the payload.
    pub async fn snapshot_digest(&self) -> Result<Option<String>, DbError> {
        let sql = "SELECT payload_digest FROM sync_snapshot WHERE id = 1";
        Ok(on_pool!(self, |pool| sqlx::query_scalar(sql)
            .fetch_optional(pool)
            .await)?)
    }

    /// The last served snapshot, if any. The header and the pieces come from one
    /// statement, so a snapshot replaced meanwhile is never read half old, half new.
    pub async fn snapshot(&self) -> Result<Option<SnapshotRow>, DbError> {
        let sql = "SELECT s.taken_at, s.payload_digest, s.user_count, s.group_count, p.piece \
                   FROM sync_snapshot s LEFT JOIN sync_snapshot_pieces p ON 1 = 1 \
                   WHERE s.id = 1 ORDER BY p.seq";
        let mut snapshot: Option<SnapshotRow> = None;
        let mut pieces: Vec<Box<[u8]>> = Vec::new();
        on_pool!(self, |pool| {
            let mut rows = sqlx::query_as::<_, JoinedRow>(sql).fetch(pool);
            while let Some(row) = rows.try_next().await? {
                if let Some(piece) = row.piece {
                    pieces.push(piece.into_boxed_slice());
                }
                if snapshot.is_none() {
                    snapshot = Some(SnapshotRow {
                        taken_at: row.taken_at,
                        payload_digest: row.payload_digest,
                        user_count: row.user_count,
                        group_count: row.group_count,
                        pieces: Arc::from(Vec::new()),
                    });
                }
            }
        });
        Ok(snapshot.map(|s| SnapshotRow {
            pieces: Arc::from(pieces),
            ..s
        }))
    }

    /// Stores `new` if the stored digest is still `expected` (`None`: no snapshot
    /// yet), header and pieces in one transaction. False when another writer got
    /// there first; the caller re-reads.
    pub async fn replace_snapshot(
        &self,
        expected: Option<&str>,
        new: &NewSnapshot<'_>,
    ) -> Result<bool, DbError> {
        self.replace_snapshot_consuming(expected, new, None).await
    }

    /// As [`Self::replace_snapshot`], and in the same transaction consumes the
    /// approval `consume` (id, unix ms now): false, changing nothing, if that
    /// approval is no longer there to consume. So an approval serves exactly one
    /// snapshot, whichever replica gets there first.
    pub async fn replace_snapshot_consuming(
        &self,
        expected: Option<&str>,
        new: &NewSnapshot<'_>,
        consume: Option<(i64, i64)>,
    ) -> Result<bool, DbError> {
        let postgres = matches!(self, Db::Postgres(_));
        let sql = |s: &'static str| -> Cow<'static, str> {
            if postgres {
                numbered_placeholders(s)
            } else {
                Cow::Borrowed(s)
            }
        };
        let update = sql(
            "UPDATE sync_snapshot SET taken_at = ?, payload_digest = ?, \
             user_count = ?, group_count = ? WHERE id = 1 AND payload_digest = ?",
        );
        let insert = sql("INSERT INTO sync_snapshot \
             (id, taken_at, payload_digest, user_count, group_count) VALUES (1, ?, ?, ?, ?)");
        let insert_piece = sql("INSERT INTO sync_snapshot_pieces (seq, piece) VALUES (?, ?)");
        let consume_approval = sql(
            "UPDATE sync_approvals SET status = 'consumed', consumed_ms = ? \
             WHERE id = ? AND status = 'approved'",
        );
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Claiming the header row first serialises concurrent writers: the
            // loser's compare finds the winner's digest and changes nothing.
            let claimed = match expected {
                Some(old) => sqlx::query(&update)
                    .bind(&new.taken_at)
                    .bind(new.payload_digest)
                    .bind(new.user_count)
                    .bind(new.group_count)
                    .bind(old)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                None => {
                    match sqlx::query(&insert)
                        .bind(&new.taken_at)
                        .bind(new.payload_digest)
                        .bind(new.user_count)
                        .bind(new.group_count)
                        .execute(&mut *tx)
                        .await
                    {
                        Ok(done) => done.rows_affected(),
                        // Another sync inserted first: a lost race, not a failure.
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => 0,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            if claimed == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            if let Some((approval, now_ms)) = consume {
                let consumed = sqlx::query(&consume_approval)
                    .bind(now_ms)
                    .bind(approval)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if consumed == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            sqlx::query("DELETE FROM sync_snapshot_pieces")
                .execute(&mut *tx)
                .await?;
            for (seq, piece) in new.pieces.iter().enumerate() {
                sqlx::query(&insert_piece)
                    .bind(i32::try_from(seq).unwrap_or(i32::MAX))
                    .bind(&piece[..])
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(true)
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
