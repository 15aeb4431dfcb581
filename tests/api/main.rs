//! One test binary (one link step) holding every HTTP- and CLI-level test. Each
//! test body runs against PostgreSQL, MariaDB and SQLite.

mod helpers;

mod activity;
mod approvals;
mod audit;
mod authenticate;
mod basic_auth;
mod check_report;
mod cli;
mod cli_healthcheck;
mod compression;
mod connections;
mod errors;
mod flood;
mod guard;
mod guard_reload;
mod hardening;
mod hash_caps;
mod hash_formats;
mod health;
mod history;
mod hostile_keys;
mod import;
mod lockout;
mod metrics;
mod notify;
mod openapi;
mod operator;
mod probe;
mod products;
mod replicas;
mod review;
mod schema;
mod secrets;
mod source_logins;
mod source_state;
mod sources;
mod startup;
mod sync;
mod sync_data;
mod timeouts;
mod timing;
mod tls;
mod unavailable;
mod usernames;
