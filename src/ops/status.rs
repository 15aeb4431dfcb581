//! Is each database answering? For the console's overview.

use std::time::Duration;

use crate::db::Db;
use crate::source::Source;

/// How long a database may take to answer before it is called down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// One database's state, in words an operator reads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reachability {
    pub up: bool,
    /// "answers", or why not.
    pub detail: String,
}

async fn ping(db: &Db) -> Reachability {
    match tokio::time::timeout(PING_TIMEOUT, db.ping()).await {
        Ok(Ok(())) => Reachability {
            up: true,
            detail: "answers".into(),
        },
        Ok(Err(e)) => Reachability {
            up: false,
            detail: e.to_string(),
        },
        Err(_) => Reachability {
            up: false,
            detail: format!("no answer within {} s", PING_TIMEOUT.as_secs()),
        },
    }
}

/// The HR source's database and hr-bridge's state database.
pub async fn databases(state: &Db, source: &Source) -> (Reachability, Reachability) {
    tokio::join!(ping(source.db()), ping(state))
}
