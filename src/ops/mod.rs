//! Operations the CLI and the web console share: each takes the state database
//! (and, where needed, the source), returns typed results that serialize to JSON,
//! and leaves printing or rendering to its caller. The SQL behind them lives in
//! `crate::db`; nothing here writes a statement.

pub mod activity;
pub mod approvals;
pub mod history;
