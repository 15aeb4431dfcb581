//! The HTTP surface: one file per endpoint group. Handlers extract, call one domain
//! function and map the result; no SQL and no hashing happen here.

pub mod authenticate;
pub mod basic_auth;
pub mod client_addr;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod sync;

use std::sync::Arc;

use crate::db::Db;
use crate::password::{Authenticator, HashingPool, OmflowCredential};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub authenticator: Authenticator,
    pub hashing: HashingPool,
    pub omflow: Arc<OmflowCredential>,
    pub body_limit: usize,
    /// The deletion guard's limits.
    pub guard: crate::directory::GuardLimits,
    /// Proxies whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}
