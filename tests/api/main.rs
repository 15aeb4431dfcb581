//! One test binary (one link step) holding every HTTP- and CLI-level test. Each
//! test body runs against PostgreSQL, MariaDB and SQLite.

mod helpers;

mod audit;
mod authenticate;
mod basic_auth;
mod cli;
mod cli_healthcheck;
mod errors;
mod guard;
mod hash_formats;
mod health;
mod import;
mod lockout;
mod metrics;
mod sync;
mod tls;
