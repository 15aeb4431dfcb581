//! The operations the command line and the web console share: each takes the
//! state database (and, where needed, the source) and returns typed results;
//! the SQL behind them lives in `db/`.

pub mod logins;
pub mod problems;
pub mod sessions;
pub mod status;
