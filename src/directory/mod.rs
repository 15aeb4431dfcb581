//! The domain: the HR directory as OMFLOW sees it. Reads the rows, checks the rules
//! of the contract, and renders the `/sync` payload.

pub mod demo;
pub mod payload;
pub mod validate;

pub use payload::SyncPayload;
pub use validate::Problem;

use crate::db::{Db, DbError};

/// Why a payload could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the HR data has {} problem(s)", .0.len())]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("could not serialize the payload: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Builds the `/sync` payload from the current data, or the list of problems that
/// forbid serving it.
#[tracing::instrument(skip_all)]
pub async fn sync_payload(db: &Db) -> Result<SyncPayload, SyncError> {
    let rows = db.directory().await?;
    let problems = validate::problems(&rows);
    if !problems.is_empty() {
        return Err(SyncError::Invalid(problems));
    }
    Ok(payload::render(&rows)?)
}

/// Every problem `/sync` would refuse for; empty when the data can be served.
pub async fn check(db: &Db) -> Result<Vec<Problem>, DbError> {
    Ok(validate::problems(&db.directory().await?))
}
