//! Statements over `notify_state`: one row per condition (`sync`, a database) with
//! its last announced state, changed by compare-and-set so that of several replicas
//! seeing the same change, exactly one wins the right to announce it.

use super::{on_pool, Db, DbError};

/// Which stored states a claim may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    /// Any other state, or no row yet.
    AnyOther,
    /// Only these states (no row means none of them).
    OneOf(&'static [&'static str]),
}

/// How a claim treats a state this replica announced while the table could not
/// record it (the state database was down): `changed_at` older than the
/// announcement means nobody has announced anything since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// No such announcement.
    Nothing,
    /// The change is also ours when the row has not changed since then (the store
    /// never learnt of our announcement, so nobody announced the way back).
    OrUnchangedSince(i64),
    /// Record only: we already announced this very state at that time; write it
    /// unless someone changed the row since.
    RecordIfUnchangedSince(i64),
}

/// One compare-and-set on a condition's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    pub subject: &'a str,
    pub to: &'a str,
    pub from: Prior,
    pub missed: Missed,
    /// Unix milliseconds, stored as `changed_at` when the claim wins.
    pub now_ms: i64,
}

impl Db {
    /// Moves `claim.subject` to `claim.to` when its rule allows. True when this
    /// call made the change (and so is the one to announce it).
    pub async fn notify_claim(&self, claim: &Claim<'_>) -> Result<bool, DbError> {
        let rule = match claim.from {
            Prior::AnyOther => "state <> ?".to_owned(),
            Prior::OneOf(states) => format!("state IN ({})", vec!["?"; states.len()].join(", ")),
        };
        let rule = match claim.missed {
            Missed::Nothing => rule,
            Missed::OrUnchangedSince(_) => format!("({rule} OR changed_at < ?)"),
            Missed::RecordIfUnchangedSince(_) => format!("({rule} AND changed_at < ?)"),
        };
        let update = format!(
            "UPDATE notify_state SET state = ?, changed_at = ? WHERE subject = ? AND {rule}"
        );
        let update = self.dialect(&update);
        let changed = on_pool!(self, |pool| {
            let mut query = sqlx::query(&update)
                .bind(claim.to)
                .bind(claim.now_ms)
                .bind(claim.subject);
            match claim.from {
                Prior::AnyOther => query = query.bind(claim.to),
                Prior::OneOf(states) => {
                    for state in states {
                        query = query.bind(*state);
                    }
                }
            }
            match claim.missed {
                Missed::Nothing => {}
                Missed::OrUnchangedSince(at) | Missed::RecordIfUnchangedSince(at) => {
                    query = query.bind(at)
                }
            }
            query.execute(pool).await?.rows_affected()
        });
        if changed > 0 {
            return Ok(true);
        }
        // No row yet counts as "another state" and as "unchanged since".
        let insert_when_absent =
            claim.from == Prior::AnyOther || matches!(claim.missed, Missed::OrUnchangedSince(_));
        if !insert_when_absent {
            return Ok(false);
        }
        let insert = match self {
            Db::MySql(_) => {
                "INSERT IGNORE INTO notify_state (subject, state, changed_at) VALUES (?, ?, ?)"
            }
            Db::Postgres(_) | Db::Sqlite(_) => {
                "INSERT INTO notify_state (subject, state, changed_at) VALUES (?, ?, ?) \
                 ON CONFLICT (subject) DO NOTHING"
            }
        };
        let insert = self.dialect(insert);
        let inserted = on_pool!(self, |pool| sqlx::query(&insert)
            .bind(claim.subject)
            .bind(claim.to)
            .bind(claim.now_ms)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(inserted > 0)
    }

    /// The stored state of a condition and when it changed (unix ms), if any.
    pub async fn notify_state(&self, subject: &str) -> Result<Option<(String, i64)>, DbError> {
        let sql = self.dialect("SELECT state, changed_at FROM notify_state WHERE subject = ?");
        Ok(on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(subject)
            .fetch_optional(pool)
            .await)?)
    }

    /// One round trip, to tell whether the database answers at all.
    pub async fn ping(&self) -> Result<(), DbError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}
