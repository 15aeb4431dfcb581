//! The running server: binding plain HTTP or HTTPS (the router and its
//! middleware come from [`http::routes`]), certificate reload (SIGHUP or file
//! change) and graceful shutdown.

mod idle;
mod listener;
pub mod reload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use tokio::task::JoinHandle;

use crate::config::ServerSettings;
use crate::http::{self, AppState};
use idle::IdleTracked;
use listener::{CappedListener, PeerAddr};
use reload::{Reload, Reloads};

/// A server that is accepting connections.
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    handle: Handle<PeerAddr>,
    task: JoinHandle<std::io::Result<()>>,
    tls_watcher: Option<AbortOnDrop>,
    /// What reacts to SIGHUP besides the certificate, stopped with the server.
    reloading: Vec<AbortOnDrop>,
    metrics: Option<MetricsListener>,
    admin: Option<AdminListener>,
}

/// The web console on its own listener (`admin.listen`), never OMFLOW's port:
/// the main port's per-connection bounds, the same TLS files (reloaded with
/// them), and a connection cap of its own
/// ([`limits::CONSOLE_MAX_CONNECTIONS`](crate::config::limits)), so that
/// browsers there can never take the connections OMFLOW needs.
struct AdminListener {
    addr: SocketAddr,
    handle: Handle<PeerAddr>,
    task: JoinHandle<std::io::Result<()>>,
}

/// What the console listener serves, and where: the router is made once the
/// listener is bound, from the address it got (its real port, for a `:0`
/// listen), since the console accepts only requests naming it.
pub struct AdminSite {
    pub listen: SocketAddr,
    pub router: Box<dyn FnOnce(SocketAddr) -> axum::Router + Send>,
}

impl AdminListener {
    async fn start(
        site: AdminSite,
        settings: &ServerSettings,
        tls: Option<RustlsConfig>,
    ) -> anyhow::Result<Self> {
        let addr = site.listen;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr} (admin.listen)"))?;
        let bound = listener
            .local_addr()
            .with_context(|| format!("cannot tell where {addr} is bound (admin.listen)"))?;
        let router = (site.router)(bound);
        let idle = settings.idle_timeout();
        let (server, handle) = bounded_server(
            listener,
            crate::config::limits::CONSOLE_MAX_CONNECTIONS,
            // One address may hold at most half the console's slots (0 = the
            // operator turned the per-address cap off).
            match settings.max_connections_per_ip() {
                0 => 0,
                cap => cap.min(crate::config::limits::CONSOLE_MAX_CONNECTIONS / 2),
            },
            settings,
        )?;
        let make = tower::ServiceExt::map_response(
            tower::ServiceExt::map_request(
                router.into_make_service_with_connect_info::<SocketAddr>(),
                |peer: PeerAddr| peer.0,
            ),
            move |service| IdleTracked::new(service, idle),
        );
        let tls_on = tls.is_some();
        let task = match tls {
            Some(config) => tokio::spawn(server.acceptor(RustlsAcceptor::new(config)).serve(make)),
            None => tokio::spawn(server.serve(make)),
        };
        let PeerAddr(addr) = handle
            .listening()
            .await
            .context("the console listener failed to start")?;
        tracing::info!(%addr, tls = tls_on, "serving the web console on its own listener");
        Ok(Self { addr, handle, task })
    }
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
        // A scraper or two; no per-address cap below the small total.
        let (server, handle) = bounded_server(
            listener,
            crate::config::limits::METRICS_MAX_CONNECTIONS,
            0,
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

/// An HTTP server on `listener` that takes at most `max_connections` at once (at
/// most `per_address` of them from one client address, 0 for no such cap) and
/// bounds every connection: its first request and each later request head must
/// arrive within `server.header_read_timeout_secs` (the first also bounds HTTP/2
/// detection, so a half-sent preface is closed like a half-sent HTTP/1 head), and
/// the service it is given should be wrapped in [`IdleTracked`] for
/// `server.idle_timeout_secs`.
fn bounded_server(
    listener: std::net::TcpListener,
    max_connections: usize,
    per_address: usize,
    settings: &ServerSettings,
) -> anyhow::Result<(axum_server::Server<PeerAddr>, Handle<PeerAddr>)> {
    listener.set_nonblocking(true)?;
    let listener = CappedListener::new(
        tokio::net::TcpListener::from_std(listener)?,
        max_connections,
        per_address,
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

/// Stops a background task with its owner, however the owner ends.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RunningServer {
    /// Binds `settings.listen` (port 0 picks a free port), and
    /// `settings.metrics_listen` when set, and starts serving. `reloads` are the
    /// SIGHUP re-reads of the settings (see [`reload`]); the TLS files are
    /// reloaded on each one.
    pub async fn start(
        settings: &ServerSettings,
        state: AppState,
        reloads: Reloads,
        admin: Option<AdminSite>,
    ) -> anyhow::Result<Self> {
        let addr = settings.listen;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr}"))?;
        let metrics = match settings.metrics_listen {
            Some(addr) => Some(MetricsListener::start(addr, settings, state.clone()).await?),
            None => None,
        };
        let idle = settings.idle_timeout();
        let app = tower::ServiceExt::map_response(
            tower::ServiceExt::map_request(
                http::routes::router(state, metrics.is_none())
                    .into_make_service_with_connect_info::<SocketAddr>(),
                |peer: PeerAddr| peer.0,
            ),
            move |service| IdleTracked::new(service, idle),
        );
        let (server, handle) = bounded_server(
            listener,
            settings.max_connections,
            settings.max_connections_per_ip(),
            settings,
        )?;
        let (tls_config, tls_watcher) = match settings.tls_files() {
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
                    settings.tls_reload_poll_secs,
                    reloads.clone(),
                )));
                (Some(config), Some(watcher))
            }
            None => (None, None),
        };
        // The console is bound before OMFLOW's port serves, so that a console
        // that cannot listen stops start-up without leaving the main server running.
        let admin = match admin {
            Some(site) => Some(AdminListener::start(site, settings, tls_config.clone()).await?),
            None => None,
        };
        let tls = tls_config.is_some();
        let task = match tls_config {
            // The console shares the same config, so a reload serves both.
            Some(config) => tokio::spawn(server.acceptor(RustlsAcceptor::new(config)).serve(app)),
            None => tokio::spawn(server.serve(app)),
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
            reloading: vec![AbortOnDrop(tokio::spawn(reload::report_restart_needed(
                tls, reloads,
            )))],
            metrics,
            admin,
        })
    }

    /// Where the web console is served, when it is.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
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
        if let Some(admin) = self.admin {
            admin.handle.graceful_shutdown(Some(grace));
            admin.task.await.context("console listener task failed")??;
        }
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
