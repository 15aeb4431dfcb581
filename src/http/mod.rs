//! The HTTP surface. `routes` is the one list of routes: it builds the router and
//! the OpenAPI document together. One file per endpoint group; handlers extract,
//! call one domain function and map the result; no SQL and no hashing happen here.
//!
//! Imports run one way: `routes` → handlers and `middleware` → `schema`, `gate`,
//! this module's [`AppState`] → `crate::error` and the domain. `openapi` (the
//! document's own part) is used by `routes` alone.

pub mod authenticate;
pub mod basic_auth;
pub mod client_addr;
pub mod docs;
pub mod gate;
pub mod health;
pub mod metrics;
pub mod middleware;
mod openapi;
pub mod routes;
pub mod schema;
pub mod sync;

use std::sync::Arc;

pub use gate::DatabaseGate;

use crate::db::Db;
use crate::password::{Authenticator, HashingPool, OmflowCredential};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// hr-bridge's own state (migrations, lockouts, audit, deletion snapshot).
    pub db: Db,
    /// The HR data.
    pub source: crate::source::Source,
    /// The `/sync` build in progress, shared by concurrent calls.
    pub sync_flight: crate::directory::SyncFlight,
    /// `/sync` answers in progress, to their last byte (the console yields to them).
    pub sync_answering: crate::directory::Answering,
    pub authenticator: Authenticator,
    pub hashing: HashingPool,
    pub omflow: Arc<OmflowCredential>,
    pub body_limit: usize,
    /// The deletion guard's limits, as last (re)loaded.
    pub guard: tokio::sync::watch::Receiver<crate::directory::GuardLimits>,
    /// Writes each `/sync` call to the sync history, in the background.
    pub history: crate::ops::history::Recorder,
    /// Proxies whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Closed until the database has answered (and been migrated) at start-up.
    pub startup: DatabaseGate,
    /// `server.request_timeout_secs`.
    pub request_timeout: std::time::Duration,
    /// Webhook notifications (refused and served-again syncs); never waits.
    pub notifier: crate::notify::Notifier,
}

/// When the request's answer is due (a request extension): work that a handler
/// hands to a task of its own must stop by then, as the client has had its 503.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub tokio::time::Instant);
