//! The operations the command line and the web console share: each takes the
//! state database (and where needed the HR source) and returns typed results
//! that both render their own way. SQL for them lives in `crate::db`.

pub mod approvals;
pub mod history;
