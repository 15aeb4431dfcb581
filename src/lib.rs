//! hr-bridge: the intermediary application of OMFLOW's Custom HR integration.

pub mod alloc;
pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod directory;
pub mod error;
pub mod escape;
pub mod healthcheck;
pub mod http;
pub mod notify;
pub mod ops;
pub mod password;
pub mod probe;
pub mod server;
pub mod source;
pub mod telemetry;
