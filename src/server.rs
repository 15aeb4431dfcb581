//! The running server: binding plain HTTP or HTTPS (the router and its
//! middleware come from [`http::routes`]), certificate reload (SIGHUP or file
//! change) and graceful shutdown.

mod idle;
mod listener;
pub mod reload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use tokio::task::JoinHandle;

use crate::config::{ServerSettings, Settings};
use crate::db::{Db, DbError};
use crate::http::{self, AppState, DatabaseGate};
use crate::password::{AuthPolicy, Authenticator, DummyHash, HashingPool, OmflowCredential};
use crate::source::Source;
use idle::IdleTracked;
use listener::{CappedListener, PeerAddr};
use reload::{Reload, Reloads};

/// Longest pause between attempts to reach the database at start-up.
const STARTUP_RETRY_MAX: Duration = Duration::from_secs(5);
/// How long start-up waits for the database before listening anyway: a healthy
/// database is migrated by then, so the first requests find the server ready.
const STARTUP_READY_WAIT: Duration = Duration::from_secs(2);

/// Builds the shared state: hashing pool, dummy hash, OMFLOW credential.
pub async fn build_state(settings: &Settings, db: Db) -> anyhow::Result<AppState> {
    let source = crate::source::open(settings, &db)?;
    build_state_with(settings, db, source).await
}

/// [`build_state`] over an HR source opened already.
pub async fn build_state_with(
    settings: &Settings,
    db: Db,
    source: Source,
) -> anyhow::Result<AppState> {
    crate::telemetry::metrics_handle();
    let omflow = &settings.omflow;
    let username = omflow
        .username
        .as_deref()
        .context(Settings::missing_credentials_message())?;
    let credential = OmflowCredential::new(
        username,
        omflow.password_hash.as_ref(),
        omflow.password.as_ref(),
    )
    .map_err(|_| anyhow::anyhow!(Settings::missing_credentials_message()))?;
    let hashing = HashingPool::new(
        settings.auth.max_concurrent_checks,
        settings.auth.max_queued_checks,
    );
    let argon2 = settings.auth.argon2();
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
            AuthPolicy {
                max_failures: settings.auth.max_failures,
                lockout: Duration::from_secs(settings.auth.lockout_secs),
                argon2,
                failure_floor: Duration::from_millis(settings.auth.failure_floor_ms),
            },
        ),
        trusted_proxies: Arc::new(settings.auth.trusted_proxy_nets()?),
        db,
        source,
        sync_flight: crate::directory::SyncFlight::default(),
        hashing,
        omflow: Arc::new(credential),
        body_limit: settings.server.body_limit_bytes,
        guard: settings.sync.guard_limits(),
        startup: DatabaseGate::opened(),
        request_timeout: Duration::from_secs(settings.server.request_timeout_secs),
    })
}

/// `serve`'s start-up: listens at once (after at most [`STARTUP_READY_WAIT`] for
/// a database that answers), whatever the database's state, and
/// answers `/readyz`, `/sync` and `/authenticate` with 503 until the database
/// answers (and, with `database.auto_migrate`, is migrated). A database that is
/// down at start-up thus never makes a container platform restart us in a loop.
///
/// On SIGHUP, `load` reads the settings again (see [`reload`]).
pub async fn launch(
    settings: &Settings,
    db: Db,
    source: Source,
    load: reload::Loader,
) -> anyhow::Result<RunningServer> {
    let mut state = build_state_with(settings, db.clone(), source.clone()).await?;
    let gate = DatabaseGate::closed();
    state.startup = gate.clone();
    let preparing = AbortOnDrop(tokio::spawn(prepare_database(
        db,
        source,
        gate.clone(),
        settings.database.auto_migrate,
    )));
    let _ = tokio::time::timeout(STARTUP_READY_WAIT, gate.wait_open()).await;
    let mut running = RunningServer::start_with(settings, state, load).await?;
    running.startup = Some(preparing);
    Ok(running)
}

/// Reaches the databases, migrates them when asked (the state database, and the
/// HR database when it holds the built-in tables; a mapped one is only checked),
/// and opens the gate; retries with a growing pause while a database is down.
async fn prepare_database(db: Db, source: Source, gate: DatabaseGate, auto_migrate: bool) {
    let mut pause = Duration::from_millis(250);
    loop {
        let attempt = async {
            if auto_migrate {
                crate::source::migrate(&db, &source).await?;
            } else {
                db.is_ready().await?;
            }
            if source.is_mapped() {
                source.check().await.map_err(|e| match e {
                    crate::source::SourceError::Db(db) => db,
                    other => DbError::Config(other.to_string()),
                })?;
            }
            Ok::<(), DbError>(())
        }
        .await;
        match attempt {
            Ok(()) => {
                gate.open();
                tracing::info!(migrated = auto_migrate, "database ready");
                restore_sync_gauges(&db).await;
                return;
            }
            Err(e @ DbError::Unavailable(_)) => tracing::warn!(
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

/// A server that is accepting connections.
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    handle: Handle<PeerAddr>,
    task: JoinHandle<std::io::Result<()>>,
    tls_watcher: Option<AbortOnDrop>,
    /// The SIGHUP listener and what reacts to it, stopped with the server.
    reloading: Vec<AbortOnDrop>,
    /// `launch`'s database preparation, stopped with the server.
    startup: Option<AbortOnDrop>,
    database: DatabaseGate,
    metrics: Option<MetricsListener>,
}

/// `/metrics` on its own plain-HTTP listener (`server.metrics_listen`), with
/// the main port's per-connection bounds and a small connection cap of its own
/// ([`limits::METRICS_MAX_CONNECTIONS`](crate::config::limits)), so that a flood
/// there can never take the file descriptors the OMFLOW port needs.
struct MetricsListener {
    addr: SocketAddr,
    handle: Handle<PeerAddr>,
    task: JoinHandle<std::io::Result<()>>,
}

impl MetricsListener {
    async fn start(
        addr: SocketAddr,
        settings: &ServerSettings,
        state: AppState,
    ) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr} (server.metrics_listen)"))?;
        let idle = settings.idle_timeout();
        let (server, handle) = bounded_server(
            listener,
            crate::config::limits::METRICS_MAX_CONNECTIONS,
            settings,
        )?;
        let make = tower::ServiceExt::<PeerAddr>::map_response(
            http::routes::metrics_router(state).into_make_service(),
            move |service| IdleTracked::new(service, idle),
        );
        let task = tokio::spawn(server.serve(make));
        let PeerAddr(addr) = handle
            .listening()
            .await
            .context("the metrics listener failed to start")?;
        tracing::info!(%addr, "serving /metrics on its own listener");
        Ok(Self { addr, handle, task })
    }
}

/// An HTTP server on `listener` that takes at most `max_connections` at once and
/// bounds every connection: its first request and each later request head must
/// arrive within `server.header_read_timeout_secs` (the first also bounds HTTP/2
/// detection, so a half-sent preface is closed like a half-sent HTTP/1 head), and
/// the service it is given should be wrapped in [`IdleTracked`] for
/// `server.idle_timeout_secs`.
fn bounded_server(
    listener: std::net::TcpListener,
    max_connections: usize,
    settings: &ServerSettings,
) -> anyhow::Result<(axum_server::Server<PeerAddr>, Handle<PeerAddr>)> {
    listener.set_nonblocking(true)?;
    let listener = CappedListener::new(
        tokio::net::TcpListener::from_std(listener)?,
        max_connections,
    );
    let handle = Handle::new();
    let header_timeout = Duration::from_secs(settings.header_read_timeout_secs);
    let mut server = axum_server::Server::<PeerAddr>::from_listener(listener)
        .handle(handle.clone())
        .first_request_timeout(header_timeout);
    server
        .http_builder()
        .http1()
        .header_read_timeout(header_timeout);
    Ok((server, handle))
}

/// Stops the certificate watcher with the server, however the server ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RunningServer {
    /// Binds `settings.server.listen` (port 0 picks a free port) and starts serving.
    /// Settings given in-process have no file to re-read: a SIGHUP reloads the TLS
    /// files only.
    pub async fn start(settings: &Settings, state: AppState) -> anyhow::Result<Self> {
        let given = settings.clone();
        Self::start_with(settings, state, Arc::new(move || Ok(given.clone()))).await
    }

    /// [`RunningServer::start`], with `load` reading the settings again on SIGHUP.
    pub async fn start_with(
        settings: &Settings,
        state: AppState,
        load: reload::Loader,
    ) -> anyhow::Result<Self> {
        let addr = settings.server.listen_addr()?;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr}"))?;
        let metrics = match settings.server.metrics_addr()? {
            Some(addr) => {
                Some(MetricsListener::start(addr, &settings.server, state.clone()).await?)
            }
            None => None,
        };
        let database = state.startup.clone();
        let idle = settings.server.idle_timeout();
        let app = tower::ServiceExt::map_response(
            tower::ServiceExt::map_request(
                http::routes::router(state, metrics.is_none())
                    .into_make_service_with_connect_info::<SocketAddr>(),
                |peer: PeerAddr| peer.0,
            ),
            move |service| IdleTracked::new(service, idle),
        );
        let (server, handle) =
            bounded_server(listener, settings.server.max_connections, &settings.server)?;
        let (reloads, sighup) = reload::on_sighup(load);
        let (task, tls_watcher, tls) = match settings.server.tls_files() {
            Some((cert, key)) => {
                let config = RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot load TLS certificate {} / key {}",
                            cert.display(),
                            key.display()
                        )
                    })?;
                let watcher = AbortOnDrop(tokio::spawn(watch_tls_files(
                    config.clone(),
                    cert.to_path_buf(),
                    key.to_path_buf(),
                    settings.server.tls_reload_poll_secs,
                    reloads.clone(),
                )));
                let server = server.acceptor(RustlsAcceptor::new(config));
                (tokio::spawn(server.serve(app)), Some(watcher), true)
            }
            None => (tokio::spawn(server.serve(app)), None, false),
        };
        let PeerAddr(addr) = handle
            .listening()
            .await
            .context("the server failed to start listening")?;
        tracing::info!(%addr, tls, "listening");
        Ok(Self {
            addr,
            tls,
            handle,
            task,
            tls_watcher,
            reloading: vec![
                AbortOnDrop(sighup),
                AbortOnDrop(tokio::spawn(reload::report_restart_needed(tls, reloads))),
            ],
            startup: None,
            database,
            metrics,
        })
    }

    /// Open once the database is prepared.
    pub fn database_gate(&self) -> DatabaseGate {
        self.database.clone()
    }

    /// Where `/metrics` is served when it has its own listener.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients should use, `http://` or `https://`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish within `grace`, and waits.
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        drop(self.tls_watcher);
        drop(self.reloading);
        drop(self.startup);
        if let Some(metrics) = self.metrics {
            metrics.handle.graceful_shutdown(Some(grace));
            metrics
                .task
                .await
                .context("metrics listener task failed")??;
        }
        self.task.await.context("server task failed")??;
        Ok(())
    }
}

/// Modification time and length of a file, to notice it being replaced.
fn fingerprint(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reloads the certificate on SIGHUP and whenever either file changes; a bad new
/// pair is logged and the old one kept, so a half-copied file never takes HTTPS down.
/// A SIGHUP whose configuration names other files (both still set) switches to them.
async fn watch_tls_files(
    config: RustlsConfig,
    mut cert: PathBuf,
    mut key: PathBuf,
    poll_secs: u64,
    mut reloads: Reloads,
) {
    let mut seen = (fingerprint(&cert), fingerprint(&key));
    // With polling off, tick once a day and never look at the files.
    let polling = poll_secs > 0;
    let mut poll = tokio::time::interval(Duration::from_secs(if polling {
        poll_secs
    } else {
        86_400
    }));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let reason = tokio::select! {
            Some(reload) = reloads.next() => {
                if let Reload::Loaded(settings) = reload {
                    if let Some((new_cert, new_key)) = settings.server.tls_files() {
                        if (new_cert, new_key) != (cert.as_path(), key.as_path()) {
                            tracing::info!(
                                cert = %new_cert.display(), key = %new_key.display(),
                                "SIGHUP: the configuration names other TLS files; using them"
                            );
                            cert = new_cert.to_path_buf();
                            key = new_key.to_path_buf();
                        }
                    }
                }
                seen = (fingerprint(&cert), fingerprint(&key));
                "SIGHUP"
            }
            _ = poll.tick() => {
                if !polling { continue; }
                let now = (fingerprint(&cert), fingerprint(&key));
                if now == seen { continue; }
                seen = now;
                "file change"
            }
        };
        match config.reload_from_pem_file(&cert, &key).await {
            Ok(()) => tracing::info!(reason, "reloaded TLS certificate"),
            Err(e) => {
                tracing::error!(reason, error = %e, "TLS reload failed; keeping the old certificate")
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
