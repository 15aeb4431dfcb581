//! The one way to start hr-bridge: [`Application::build`] opens the stores, builds
//! the shared state, binds the listeners and starts the background work
//! (database preparation with retries, gauge restore, audit pruning, SIGHUP
//! reload). `hr-bridge serve` and every in-process test start it the same way.
//!
//! Also where the configuration becomes the domain's own policy structs
//! ([`argon2`], [`auth_policy`], [`guard_limits`]): the domain never sees the
//! whole [`Settings`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use crate::clock::ClockHandle;
use crate::config::{AuthSettings, GuardSwitch, Settings, SyncSettings};
use crate::db::{Db, DbError, PoolSettings};
use crate::directory::{demo, GuardLimits};
use crate::http::DatabaseGate;
use crate::http::{self, AppState};
use crate::notify::{self, Notifier};
use crate::ops::sessions::SessionPolicy;
use crate::password::{
    hash_argon2id, prune_auth_state, Argon2Settings, AuthPolicy, Authenticator, DummyHash,
    HashingPool, OmflowCredential, PasswordError,
};
use crate::server::{self, reload, AbortOnDrop, AdminSite, RunningServer};
use crate::source::{Source, SourceError};

/// Longest pause between attempts to reach the database at start-up.
const STARTUP_RETRY_MAX: Duration = Duration::from_secs(5);
/// How long start-up waits for the database before listening anyway: a healthy
/// database is migrated by then, so the first requests find the server ready.
const STARTUP_READY_WAIT: Duration = Duration::from_secs(2);
/// How long start-up waits for a mapped source's queries to be checked before
/// leaving that to the database preparation in the background.
const MAPPED_CHECK_WAIT: Duration = Duration::from_secs(2);
/// Where `serve --demo` serves the console when `admin.listen` is not set.
pub const DEMO_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8081);
/// How often the audit trail, idle lockout rows and expired console sessions
/// are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How to start, beyond the settings.
#[derive(Default)]
pub struct Options {
    /// `serve --demo`: fill an empty database with a sample organisation and, if
    /// no OMFLOW credentials are configured, generate a password for this run.
    pub demo: bool,
    /// Reads the settings again on SIGHUP (from the same file and environment as
    /// at start-up). `None`: settings given in-process have nothing to re-read,
    /// so a SIGHUP brings the same settings again and reloads the TLS files.
    pub reload: Option<reload::Loader>,
    /// The notifier's working limits (timeouts, retries); tests shorten them.
    pub notify: notify::Tuning,
    /// The clock lockouts are set and expired by: the system's, unless a test
    /// gives one it moves itself.
    pub clock: ClockHandle,
}

/// What `--demo` did, for the banner `serve` prints.
#[derive(Debug, Default)]
pub struct DemoNotes {
    /// Lines saying what was filled in.
    pub lines: Vec<String>,
    /// The OMFLOW Basic Auth password generated for this run (user `omflow`).
    pub generated_password: Option<SecretString>,
}

/// A started hr-bridge: listeners accepting, background work running.
pub struct Application {
    server: RunningServer,
    db: Db,
    gate: DatabaseGate,
    /// True once start-up's background work is done (see [`Self::startup_finished`]).
    started: watch::Receiver<bool>,
    /// The SIGHUP listener and the start-up/maintenance task, stopped with us.
    tasks: Vec<AbortOnDrop>,
    /// The notifier and its watch on the databases, stopped with us.
    notifier: Notifier,
    _watches: Vec<notify::Watch>,
    grace: Duration,
    demo: DemoNotes,
}

impl Application {
    /// Starts hr-bridge as configured: refuses settings it cannot serve with (no
    /// OMFLOW credentials, a mapped query that does not fit), listens at once
    /// (after at most [`STARTUP_READY_WAIT`] for a database that answers) and
    /// answers `/readyz`, `/sync` and `/authenticate` with 503 until the database
    /// answers (and, with `database.auto_migrate`, is migrated). A database that
    /// is down at start-up thus never makes a container platform restart us in a
    /// loop.
    ///
    /// `settings` are taken as valid, as [`Settings::load`] returns them.
    pub async fn build(mut settings: Settings, options: Options) -> anyhow::Result<Self> {
        if !options.demo && !settings.omflow.is_configured() {
            bail!(Settings::missing_credentials_message());
        }
        // Settings::load refuses this already; settings built otherwise too.
        settings.admin.check_wildcard()?;
        if settings.sync.guard == GuardSwitch::Off {
            tracing::warn!(
                "the deletion guard is OFF (sync.guard = \"off\"): every /sync is served whatever \
                 it drops, and OMFLOW deletes every user and department it lacks"
            );
        }
        crate::telemetry::metrics_handle();
        // Serving: statements are bounded so that a lock answers 503, not a hang.
        let db = Db::connect_lazy(
            settings.state_url(),
            &PoolSettings::serving(&settings.database, settings.statement_timeout()),
        )?;
        let source = crate::source::open(&settings, &db)?;
        // A demo fills its database before serving, so it needs it up at once; a
        // real deployment starts without it (see `prepare_database`).
        if options.demo && settings.database.auto_migrate {
            crate::source::migrate(&db, &source)
                .await
                .context("cannot apply migrations (set database.auto_migrate = false to skip)")?;
        }
        check_mapped_queries(&source).await?;
        let demo = if options.demo {
            fill_demo(&mut settings, &source).await?
        } else {
            DemoNotes::default()
        };

        // Notifications: started even without a webhook, so that a SIGHUP that
        // sets one takes effect without a restart.
        let one_database = !settings.has_separate_state();
        let notifier = Notifier::start(
            settings.notify.clone(),
            notify::Options {
                state: Some(db.clone()),
                one_database,
                tuning: options.notify.clone(),
            },
        )?;
        let watches = if one_database {
            vec![notifier.watch_database(notify::Database::Source, db.clone())]
        } else {
            vec![
                notifier.watch_database(notify::Database::Source, source.db().clone()),
                notifier.watch_database(notify::Database::State, db.clone()),
            ]
        };

        let gate = DatabaseGate::closed();
        let (guard, guard_limits_now) = watch::channel(guard_limits(&settings.sync));
        let (history, history_writer) = crate::ops::history::Recorder::start(db.clone());
        let clock = options.clock.clone();
        let mut state = build_state(
            &settings,
            db.clone(),
            source.clone(),
            guard_limits_now,
            history,
            notifier.clone(),
            options.clock,
        )
        .await?;
        state.startup = gate.clone();
        let (started_tx, started) = watch::channel(false);
        let (retention, retention_now) = watch::channel(Retention::of(&settings));
        let mut tasks = vec![
            AbortOnDrop(history_writer),
            AbortOnDrop(tokio::spawn(start_up(
                db.clone(),
                source,
                gate.clone(),
                settings.database.auto_migrate,
                Upkeep {
                    lockout: settings.auth.lockout(),
                    retention: retention_now,
                    sessions: console_policy(&settings.admin),
                },
                started_tx,
            ))),
        ];
        let _ = tokio::time::timeout(STARTUP_READY_WAIT, gate.wait_open()).await;

        // SIGHUP re-reads the settings from the same file and environment. (A
        // demo's generated OMFLOW credential is not among them; nothing reloads
        // that.)
        let load = options.reload.unwrap_or_else(|| {
            let given = settings.clone();
            Arc::new(move || Ok(given.clone()))
        });
        let (reloads, sighup) = reload::on_sighup(load);
        tasks.push(AbortOnDrop(sighup));
        tasks.push(AbortOnDrop(tokio::spawn(follow_guard_settings(
            settings.sync.clone(),
            guard,
            reloads.clone(),
        ))));
        tasks.push(AbortOnDrop(tokio::spawn(follow_retention(
            Retention::of(&settings),
            retention,
            reloads.clone(),
        ))));
        tasks.push(AbortOnDrop(tokio::spawn(reload_notify(
            notifier.clone(),
            settings.notify.clone(),
            reloads.clone(),
        ))));
        let admin = settings.admin.listen.map(|listen| {
            let app = state.clone();
            let admin = Arc::new(settings.admin.clone());
            let tls = settings.server.tls_files().is_some();
            let problems = crate::console::ProblemChecks::new(state.source.clone(), clock);
            AdminSite {
                listen,
                router: Box::new(move |bound| {
                    let origins =
                        crate::console::OriginPolicy::new(admin.public_origin.as_ref(), bound, tls);
                    crate::console::router(crate::console::ConsoleState {
                        app,
                        admin,
                        tls,
                        origins: Arc::new(origins),
                        problems,
                        pace: crate::console::Pace::default(),
                    })
                }),
            }
        });
        if let Some(site) = &admin {
            if !settings.admin.has_people() {
                tracing::warn!(
                    listen = %site.listen,
                    "admin.listen is set but admin.viewers and admin.operators are empty: \
                     nobody can sign in to the console"
                );
            }
            if settings.server.tls_files().is_none() && !site.listen.ip().is_loopback() {
                tracing::warn!(
                    listen = %site.listen,
                    "the console is served over plain HTTP beyond this machine: its session \
                     cookie and passwords cross the network in clear; set server.tls_cert \
                     and server.tls_key (or put a TLS proxy in front)"
                );
            }
        }
        let server = RunningServer::start(&settings.server, state, reloads, admin).await?;
        Ok(Self {
            server,
            db,
            gate,
            started,
            tasks,
            notifier,
            _watches: watches,
            grace: settings.server.shutdown_grace(),
            demo,
        })
    }

    /// Serves until SIGTERM or SIGINT, then shuts down within
    /// `server.shutdown_grace_secs`.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        server::shutdown_signal().await;
        let grace = self.grace;
        self.shutdown(grace).await
    }

    /// Stops accepting, lets in-flight requests finish within `grace`, stops the
    /// background work and closes the state pool.
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        let served = self.server.shutdown(grace).await;
        drop(self.tasks);
        self.db.close().await;
        served
    }

    /// Where the OMFLOW-facing listener is bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The base URL clients should use, `http://` or `https://`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Where `/metrics` is served when it has its own listener.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.metrics_addr()
    }

    /// Where the web console is served (`admin.listen`), when it is.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.server.admin_addr()
    }

    /// Open once the database is prepared.
    pub fn database_gate(&self) -> DatabaseGate {
        self.gate.clone()
    }

    /// hr-bridge's own state pool (the one the server uses).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The notifier (for tests: its counters).
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// What `--demo` did.
    pub fn demo(&self) -> &DemoNotes {
        &self.demo
    }

    /// Resolves once start-up's background work is done: the database prepared
    /// (the gate open), the sync gauges restored and the audit trail pruned once.
    /// Never resolves while the database stays unreachable.
    pub async fn startup_finished(&self) {
        let mut started = self.started.clone();
        // Only fails if the task is gone, which `self.tasks` rules out.
        let _ = started.wait_for(|done| *done).await;
    }
}

/// The Argon2id parameters new hashes are made with (`auth.argon2_*`).
pub fn argon2(auth: &AuthSettings) -> Argon2Settings {
    Argon2Settings {
        m_cost_kib: auth.argon2_m_cost_kib,
        t_cost: auth.argon2_t_cost,
        p_cost: auth.argon2_p_cost,
    }
}

/// The lockout and hashing policy of employee logins (`auth.*`).
pub fn auth_policy(auth: &AuthSettings) -> AuthPolicy {
    AuthPolicy {
        max_failures: auth.max_failures,
        lockout: auth.lockout(),
        argon2: argon2(auth),
        failure_floor: auth.failure_floor(),
    }
}

/// How long console sessions live (`admin.session_*`).
pub fn console_policy(admin: &crate::config::AdminSettings) -> SessionPolicy {
    SessionPolicy {
        idle: admin.session_idle(),
        max: admin.session_max(),
    }
}

/// The deletion guard's limits (`sync.*`).
pub fn guard_limits(sync: &SyncSettings) -> GuardLimits {
    GuardLimits {
        enabled: sync.guard == GuardSwitch::On,
        max_deletions: sync.max_deletions,
        max_ratio: sync.max_deletion_ratio,
        min_objects: sync.guard_min_objects,
    }
}

/// Applies the guard settings (`sync.guard`, `max_deletions`,
/// `max_deletion_ratio`, `guard_min_objects`) of each SIGHUP that loads, and logs
/// what changed; the next `/sync` uses them. The retentions follow SIGHUP too
/// ([`follow_retention`]).
async fn follow_guard_settings(
    mut running: SyncSettings,
    guard: watch::Sender<GuardLimits>,
    mut reloads: reload::Reloads,
) {
    while let Some(reload) = reloads.next().await {
        let reload::Reload::Loaded(settings) = reload else {
            continue;
        };
        let new = &settings.sync;
        let changes: Vec<String> = [
            (
                "sync.guard",
                format!("{:?}", running.guard),
                format!("{:?}", new.guard),
            ),
            (
                "sync.max_deletions",
                running.max_deletions.to_string(),
                new.max_deletions.to_string(),
            ),
            (
                "sync.max_deletion_ratio",
                running.max_deletion_ratio.to_string(),
                new.max_deletion_ratio.to_string(),
            ),
            (
                "sync.guard_min_objects",
                running.guard_min_objects.to_string(),
                new.guard_min_objects.to_string(),
            ),
        ]
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(key, old, new)| format!("{key} {old} -> {new}"))
        .collect();
        if changes.is_empty() {
            tracing::info!("SIGHUP: the deletion guard settings are unchanged");
            continue;
        }
        guard.send_replace(guard_limits(new));
        tracing::info!(changes = %changes.join(", "), "SIGHUP: applied new deletion guard settings");
        if new.guard == GuardSwitch::Off && running.guard != GuardSwitch::Off {
            tracing::warn!(
                "the deletion guard is now OFF (sync.guard = \"off\"): every /sync is served whatever it drops"
            );
        }
        running = new.clone();
    }
}

/// Builds the shared state over opened stores: hashing pool, dummy hash, OMFLOW
/// credential; the database gate starts open (the caller closes it).
async fn build_state(
    settings: &Settings,
    db: Db,
    source: Source,
    guard: watch::Receiver<GuardLimits>,
    history: crate::ops::history::Recorder,
    notifier: Notifier,
    clock: ClockHandle,
) -> anyhow::Result<AppState> {
    let credential = omflow_credential(settings)?;
    let hashing = HashingPool::new(
        settings.auth.max_concurrent_checks,
        settings.auth.max_queued_checks,
    );
    let policy = auth_policy(&settings.auth);
    let argon2 = policy.argon2;
    let dummy = hashing
        .run(move || DummyHash::new(&argon2))
        .await
        .map_err(|_| anyhow::anyhow!("hashing pool unavailable at start-up"))?
        .context("could not make the dummy password hash")?;
    Ok(AppState {
        authenticator: Authenticator::new(
            db.clone(),
            source.clone(),
            hashing.clone(),
            dummy,
            policy,
            clock,
        )
        .with_notifier(notifier.clone()),
        trusted_proxies: Arc::new(settings.auth.trusted_proxies.clone()),
        db,
        source,
        sync_flight: crate::directory::SyncFlight::default(),
        sync_answering: crate::directory::Answering::default(),
        hashing,
        omflow: Arc::new(credential),
        body_limit: settings.server.body_limit_bytes,
        guard,
        history,
        startup: DatabaseGate::opened(),
        request_timeout: settings.server.request_timeout(),
        notifier,
    })
}

/// Applies each SIGHUP's `[notify]` to the notifier, logging which keys changed
/// (never the webhook URL itself: it may carry a token).
async fn reload_notify(
    notifier: Notifier,
    mut running: notify::NotifySettings,
    mut reloads: reload::Reloads,
) {
    while let Some(reload) = reloads.next().await {
        let reload::Reload::Loaded(settings) = reload else {
            continue;
        };
        let new = settings.notify.clone();
        let changed = notify_changes(&running, &new);
        if changed.is_empty() {
            continue;
        }
        tracing::info!(
            changed = %changed.join(", "),
            enabled = new.is_enabled(),
            format = new.format.name(),
            "SIGHUP: notification settings changed"
        );
        notifier.reload(new.clone());
        running = new;
    }
}

/// The `[notify]` keys whose values differ, with what is safe to show.
fn notify_changes(old: &notify::NotifySettings, new: &notify::NotifySettings) -> Vec<String> {
    let mut changed = Vec::new();
    let url =
        |s: &notify::NotifySettings| s.webhook_url.as_ref().map(|u| u.expose_secret().to_owned());
    match (url(old), url(new)) {
        (None, Some(_)) => changed.push("notify.webhook_url set".to_owned()),
        (Some(_), None) => changed.push("notify.webhook_url removed (nothing is sent)".to_owned()),
        (Some(a), Some(b)) if a != b => changed.push("notify.webhook_url changed".to_owned()),
        _ => {}
    }
    if old.format != new.format {
        changed.push(format!(
            "notify.format {} -> {}",
            old.format.name(),
            new.format.name()
        ));
    }
    if old.after_secs != new.after_secs {
        changed.push(format!(
            "notify.after_secs {} -> {}",
            old.after_secs, new.after_secs
        ));
    }
    if old.console_url != new.console_url {
        changed.push("notify.console_url changed".to_owned());
    }
    changed
}

/// OMFLOW's credential. The configuration has checked the hash's form; its cost
/// is checked here against the password caps, in the configuration's words.
fn omflow_credential(settings: &Settings) -> anyhow::Result<OmflowCredential> {
    let omflow = &settings.omflow;
    let username = omflow
        .username
        .as_deref()
        .context(Settings::missing_credentials_message())?;
    OmflowCredential::new(
        username,
        omflow.password_hash.as_ref(),
        omflow.password.as_ref(),
    )
    .map(|credential| credential.with_failure_floor(settings.auth.failure_floor()))
    .map_err(|e| match (&omflow.password_hash, e) {
        (Some(_), e @ (PasswordError::TooCostly | PasswordError::Unrecognised)) => {
            anyhow::Error::new(crate::config::ConfigError::new(format!(
                "omflow.password_hash is not an Argon2 PHC string: {e}"
            )))
        }
        _ => anyhow::anyhow!(Settings::missing_credentials_message()),
    })
}

/// A mapped query that does not fit stops start-up at once, naming the key; an
/// HR database that is down (or slow) is checked again until it answers.
async fn check_mapped_queries(source: &Source) -> anyhow::Result<()> {
    if !source.is_mapped() {
        return Ok(());
    }
    match tokio::time::timeout(MAPPED_CHECK_WAIT, source.check()).await {
        Ok(Err(SourceError::Query(problem))) => bail!(problem),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(
            error = %e,
            "the HR database is not reachable yet; the mapped queries are checked when it is"
        ),
        Err(_) => {
            tracing::warn!("the HR database is slow to answer; checking it in the background")
        }
    }
    Ok(())
}

/// `serve --demo`: a sample organisation in an empty built-in database, and a
/// generated OMFLOW password when none is configured.
async fn fill_demo(settings: &mut Settings, source: &Source) -> anyhow::Result<DemoNotes> {
    let mut notes = DemoNotes::default();
    if !source.is_mapped() && source.db().directory_is_empty().await? {
        let password = random_secret();
        seed(
            source.db(),
            argon2(&settings.auth),
            demo::sample(),
            &password,
        )
        .await?;
        notes.lines.push(format!(
            "demo: filled the empty database with a sample organisation; \
             every employee (alice, bob, …) has the password {}",
            password.expose_secret()
        ));
    }
    if settings.admin.listen.is_none() {
        settings.admin.listen = Some(DEMO_ADMIN_LISTEN);
    }
    if !settings.admin.has_people() {
        let first = demo::FIRST_EMPLOYEE;
        if matches!(
            source.credentials(first).await?,
            crate::source::CredentialLookup::Found { active: true, .. }
        ) {
            let first = first.to_owned();
            notes.lines.push(format!(
                "demo: no admin.viewers or admin.operators are set, so {first} (the first \
                 employee) is a console operator for this run"
            ));
            settings.admin.operators = vec![first];
        }
    }
    if !settings.omflow.is_configured() {
        let password = random_secret();
        settings.omflow.username = Some("omflow".into());
        settings.omflow.password_hash = None;
        settings.omflow.password = Some(password.clone());
        notes.generated_password = Some(password);
    }
    Ok(notes)
}

/// A random 24-character password, for demo credentials.
pub fn random_secret() -> SecretString {
    SecretString::from(Alphanumeric.sample_string(&mut rand::thread_rng(), 24))
}

/// Hashes off the runtime's workers, as everywhere else.
pub async fn hash_password(
    password: SecretString,
    argon2: Argon2Settings,
) -> anyhow::Result<String> {
    let hash = tokio::task::spawn_blocking(move || hash_argon2id(&password, &argon2))
        .await
        .context("hashing task failed")??;
    Ok(hash)
}

/// Inserts `org` into an empty database, every employee sharing one hash of `password`.
pub async fn seed(
    db: &Db,
    argon2: Argon2Settings,
    org: demo::Organisation,
    password: &SecretString,
) -> anyhow::Result<()> {
    if !db.directory_is_empty().await? {
        bail!("the database already holds employees or departments; seeding needs an empty one");
    }
    let hash = hash_password(password.clone(), argon2).await?;
    db.insert_directory(&org.departments, org.chunks, &hash)
        .await?;
    Ok(())
}

/// How long the pruned records are kept; follows SIGHUP ([`follow_retention`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retention {
    /// `sync.history_retention_days`: the sync history and finished approvals.
    history_days: u32,
    /// `auth.audit_retention_days`: the authentication audit trail.
    audit_days: u32,
}

impl Retention {
    fn of(settings: &Settings) -> Self {
        Self {
            history_days: settings.sync.history_retention_days,
            audit_days: settings.auth.audit_retention_days,
        }
    }

    /// `key old -> new` for each retention that differs in `new`.
    fn changes(&self, new: &Self) -> Vec<String> {
        [
            (
                "sync.history_retention_days",
                self.history_days,
                new.history_days,
            ),
            ("auth.audit_retention_days", self.audit_days, new.audit_days),
        ]
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(key, old, new)| format!("{key} {old} -> {new}"))
        .collect()
    }
}

/// Applies the retentions of each SIGHUP that loads and logs what changed; the
/// maintenance prunes by them at once (a shorter retention takes effect now,
/// not within the hour) and hourly after that.
async fn follow_retention(
    mut running: Retention,
    retention: watch::Sender<Retention>,
    mut reloads: reload::Reloads,
) {
    while let Some(reload) = reloads.next().await {
        let reload::Reload::Loaded(settings) = reload else {
            continue;
        };
        let new = Retention::of(&settings);
        let changes = running.changes(&new);
        if changes.is_empty() {
            continue;
        }
        tracing::info!(
            changes = %changes.join(", "),
            "SIGHUP: applied new retention settings; pruning by them now"
        );
        retention.send_replace(new);
        running = new;
    }
}

/// What the hourly maintenance prunes, by which settings.
struct Upkeep {
    /// `auth.lockout_secs`: idle lockout rows are kept at least that long.
    lockout: Duration,
    retention: watch::Receiver<Retention>,
    sessions: SessionPolicy,
}

impl Upkeep {
    /// One round of pruning, by the retentions in force now.
    async fn run(&mut self, db: &Db) {
        let retention = *self.retention.borrow_and_update();
        prune(db, retention.audit_days, self.lockout, self.sessions).await;
        prune_history(db, retention.history_days).await;
    }
}

/// Start-up's background work, then the maintenance: prepares the database
/// (retrying while it is down), opens the gate, restores the sync gauges, prunes
/// the audit trail and the sync history, says so on `started`, and prunes again
/// hourly and whenever a SIGHUP changes a retention.
async fn start_up(
    db: Db,
    source: Source,
    gate: DatabaseGate,
    auto_migrate: bool,
    mut upkeep: Upkeep,
    started: watch::Sender<bool>,
) {
    prepare_database(&db, &source, &gate, auto_migrate).await;
    restore_sync_gauges(&db).await;
    let mut hourly = tokio::time::interval(PRUNE_EVERY);
    hourly.tick().await;
    upkeep.run(&db).await;
    started.send_replace(true);
    loop {
        tokio::select! {
            _ = hourly.tick() => {}
            // A reload changed a retention. (Once the sender is gone, only the
            // hourly round is left.)
            Ok(()) = upkeep.retention.changed() => {}
        }
        upkeep.run(&db).await;
    }
}

/// Prunes the sync history and finished approvals.
async fn prune_history(db: &Db, retention_days: u32) {
    match crate::ops::history::prune(db, retention_days).await {
        Ok(removed) => tracing::info!(removed, "pruned the sync history"),
        Err(e) => tracing::warn!(error = %e, "could not prune the sync history"),
    }
}

/// Prunes the audit trail (kept `retention` days) and idle lockout rows, as a
/// task of its own: a run that panics is logged, and the next hour's run happens
/// all the same; then the expired console sessions.
async fn prune(db: &Db, retention: u32, lockout: Duration, sessions: SessionPolicy) {
    let owned = db.clone();
    let run = tokio::spawn(async move { prune_auth_state(&owned, retention, lockout).await });
    match run.await {
        Ok(Ok(removed)) => tracing::info!(removed, "pruned the authentication audit trail"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not prune the audit trail"),
        Err(e) => tracing::error!(
            error = %e,
            "pruning the audit trail failed; trying again in an hour"
        ),
    }
    match crate::ops::sessions::prune(db, sessions).await {
        Ok(removed) => tracing::debug!(removed, "pruned expired console sessions"),
        Err(e) => tracing::warn!(error = %e, "could not prune the console sessions"),
    }
}

/// Reaches the databases, migrates them when asked (the state database, and the
/// HR database when it holds the built-in tables; a mapped one is only checked),
/// and opens the gate; retries with a growing pause while a database is down.
async fn prepare_database(db: &Db, source: &Source, gate: &DatabaseGate, auto_migrate: bool) {
    let mut pause = Duration::from_millis(250);
    loop {
        let attempt = async {
            if auto_migrate {
                crate::source::migrate(db, source).await?;
            } else {
                db.is_ready().await?;
            }
            if source.is_mapped() {
                source.check().await?;
            }
            Ok::<(), SourceError>(())
        }
        .await;
        match attempt {
            Ok(()) => {
                gate.open();
                tracing::info!(migrated = auto_migrate, "database ready");
                return;
            }
            Err(e @ SourceError::Db(DbError::Unavailable(_))) => tracing::warn!(
                error = %e, retry_in = ?pause,
                "database unavailable at start-up; answering 503 until it answers"
            ),
            Err(e) => tracing::error!(
                error = %e, retry_in = ?pause,
                "cannot prepare the database; answering 503 until this is fixed"
            ),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(STARTUP_RETRY_MAX);
    }
}

/// Sets the payload gauges from the last recorded snapshot, so that a restart
/// does not leave `/metrics` without them until the next `/sync` (an alert on
/// `hr_bridge_sync_users` would see a gap). Users and departments come from the
/// snapshot's header; the size is counted by decompressing the stored payload
/// on a blocking thread, once (at a million employees about 45 MB are read).
async fn restore_sync_gauges(db: &Db) {
    let snapshot = match db.snapshot().await {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the last sync snapshot for /metrics");
            return;
        }
    };
    let (users, groups) = (
        usize::try_from(snapshot.user_count).unwrap_or(0),
        usize::try_from(snapshot.group_count).unwrap_or(0),
    );
    let counted = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let mut json = crate::directory::snapshot::snapshot_reader(&snapshot)?;
        Ok(std::io::copy(&mut json, &mut std::io::sink())?)
    })
    .await;
    match counted {
        Ok(Ok(bytes)) => {
            let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
            http::sync::set_payload_gauges(users, groups, bytes, http::sync::Origin::Restored);
            tracing::debug!(
                users,
                groups,
                bytes,
                "restored the sync gauges from the last snapshot"
            );
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the last sync snapshot for /metrics")
        }
        Err(e) => tracing::warn!(error = %e, "counting the last sync snapshot failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_policies_follow_the_settings() {
        let mut settings = Settings::default();
        settings.auth.argon2_m_cost_kib = 8192;
        settings.auth.failure_floor_ms = 250;
        settings.sync.guard = GuardSwitch::Off;
        settings.sync.max_deletions = 0;
        let policy = auth_policy(&settings.auth);
        assert_eq!(policy.argon2.m_cost_kib, 8192);
        assert_eq!(policy.failure_floor, Duration::from_millis(250));
        assert_eq!(policy.lockout, Duration::from_secs(900));
        let limits = guard_limits(&settings.sync);
        assert!(!limits.enabled);
        assert_eq!(limits.max_deletions, 0);
        // The configuration's defaults are the password module's.
        assert_eq!(
            argon2(&crate::config::AuthSettings::default()),
            Argon2Settings::default()
        );
    }
}
