//! Every cap and timeout the service applies to its clients and its database, with
//! the reason for its default. The README's "Limits and timeouts" lists them too.

/// Request bodies: OMFLOW sends at most a username and a password.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;
/// A request still unanswered after this long gets 503 and its work is
/// cancelled: OMFLOW's own HTTP client gives up around then, and an answer
/// nobody reads must not leave effects (an audited "success") behind.
pub const REQUEST_TIMEOUT_SECS: u64 = 30;
/// One database statement, or its wait for a lock, when
/// `database.statement_timeout_secs` is unset: this share of the request
/// timeout (25 s of the default 30 s), so that the database gives up first
/// and the request still has time to answer 503 cleanly.
pub const STATEMENT_SHARE_OF_REQUEST: (u32, u32) = (5, 6);
/// Waiting for a pooled database connection: a pool this busy means the
/// database is down or saturated, so answer 503 soon rather than queue.
pub const ACQUIRE_TIMEOUT_SECS: u64 = 5;
/// A connection must send its request head within this time, or it is
/// closed: half-sent request lines must not hold sockets forever.
pub const HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Open connections at once; more wait in the kernel's listen backlog, so a
/// flood cannot exhaust file descriptors or memory.
pub const MAX_CONNECTIONS: usize = 1024;
/// Open connections at once from one client address (IPv6: one /64), so that
/// one client cannot take every slot of `server.max_connections`.
pub const MAX_CONNECTIONS_PER_IP: usize = 256;
/// Open connections at once on the separate `/metrics` listener: a scraper
/// or two need one each, and a flood there must never take the file
/// descriptors the OMFLOW port needs.
pub const METRICS_MAX_CONNECTIONS: usize = 64;
/// In-flight requests may finish this long after SIGTERM.
pub const SHUTDOWN_GRACE_SECS: u64 = 30;
/// Default least answer time (ms) of a failed `/authenticate`: covers the slowest
/// check the password cost caps allow (0.4 s of CPU, see `password::caps`) with
/// room for a loaded machine, so that the answer time does not tell which
/// accounts exist or how their hash is stored.
pub const DEFAULT_FAILURE_FLOOR_MS: u64 = 1000;
/// Highest `auth.failure_floor_ms`: a floor longer than this only holds
/// connections open.
pub const MAX_FAILURE_FLOOR_MS: u64 = 10_000;
/// Open connections at once on the console's listener (`admin.listen`): a few
/// browsers need a handful each, and a flood there must never take the file
/// descriptors the OMFLOW port needs.
pub const CONSOLE_MAX_CONNECTIONS: usize = 64;
/// A console session unused this long ends (OWASP's guidance for
/// administrative applications is 15–30 minutes).
pub const CONSOLE_SESSION_IDLE_SECS: u64 = 30 * 60;
/// A console session ends this long after sign-in, however busy: a working day.
pub const CONSOLE_SESSION_MAX_SECS: u64 = 12 * 3600;
/// Request bodies on the console: sign-in and approval forms are small.
pub const CONSOLE_BODY_LIMIT_BYTES: usize = 16 * 1024;
/// While a `/sync` answer is in progress, each console request is followed by
/// a rest this many times as long as it took (so the console holds at most a
/// twentieth of a core), ...
pub const CONSOLE_REST_FACTOR: u32 = 19;
/// ... and never longer than this.
pub const CONSOLE_REST_MAX: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest `auth.audit_retention_days`: ten years, beyond any audit rule; a
/// larger value is a typo (or an attempt to overflow the cut-off date).
pub const MAX_AUDIT_RETENTION_DAYS: u32 = 3650;
