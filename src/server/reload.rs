//! Re-reading the settings on SIGHUP.
//!
//! Each SIGHUP re-reads the whole configuration once, from the same file and
//! environment as at start-up, and hands the outcome to every part of the server
//! that subscribes ([`Reloads`]): today the TLS certificate reload and the check
//! for changes that need a restart; a section that becomes reloadable later
//! subscribes the same way. A configuration that no longer loads is logged and
//! the running settings stay; the TLS files are still reloaded, so renewing a
//! certificate never depends on an unrelated edit being right.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, Settings};

/// Reads the settings again, as at start-up.
pub type Loader = Arc<dyn Fn() -> Result<Settings, ConfigError> + Send + Sync>;

/// What one SIGHUP brought.
#[derive(Debug, Clone)]
pub enum Reload {
    /// The settings as they are configured now.
    Loaded(Arc<Settings>),
    /// They no longer load; the running ones stay.
    Invalid(Arc<ReloadError>),
}

/// Why a SIGHUP's settings did not load.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The blocking task that read them ended without an answer.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// The stream of reloads; each subscriber holds a clone and sees every SIGHUP
/// from the time it subscribed (a burst of signals may arrive as one).
#[derive(Debug, Clone)]
pub struct Reloads(watch::Receiver<Option<Reload>>);

impl Reloads {
    /// The next SIGHUP's outcome; `None` once no more can come.
    pub async fn next(&mut self) -> Option<Reload> {
        self.0.changed().await.ok()?;
        self.0.borrow_and_update().clone()
    }
}

/// Listens for SIGHUP and re-reads the settings with `load` on each one. The
/// handler is in place when this returns (until then a SIGHUP would end the
/// process); the task ends when aborted. Without a handler (none could be
/// installed) the reloads never come, which is logged.
pub fn on_sighup(load: Loader) -> (Reloads, JoinHandle<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (sender, receiver) = watch::channel(None);
    let hangup = signal(SignalKind::hangup());
    let task = tokio::spawn(async move {
        let mut hangup = match hangup {
            Ok(hangup) => hangup,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot listen for SIGHUP; the configuration and TLS files are not reloaded on it"
                );
                // Keep the sender, so that subscribers wait rather than end.
                std::future::pending::<()>().await;
                return;
            }
        };
        while hangup.recv().await.is_some() {
            let load = load.clone();
            let loaded = match tokio::task::spawn_blocking(move || load()).await {
                Ok(loaded) => loaded.map_err(ReloadError::from),
                Err(e) => Err(ReloadError::from(e)),
            };
            let reload = match loaded {
                Ok(settings) => {
                    tracing::info!("SIGHUP: re-read the configuration");
                    Reload::Loaded(Arc::new(settings))
                }
                Err(ReloadError::Config(e)) => {
                    tracing::error!(
                        error = %e,
                        "SIGHUP: the configuration does not load; keeping the running settings"
                    );
                    Reload::Invalid(Arc::new(e.into()))
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: re-reading the configuration failed");
                    Reload::Invalid(Arc::new(e))
                }
            };
            sender.send_replace(Some(reload));
        }
    });
    (Reloads(receiver), task)
}

/// Logs what a reload changed that only a restart can apply. Today that is the
/// choice between HTTP and HTTPS: the listener was built for one of them.
pub async fn report_restart_needed(serving_tls: bool, mut reloads: Reloads) {
    while let Some(reload) = reloads.next().await {
        let Reload::Loaded(settings) = reload else {
            continue;
        };
        let configured_tls = settings.server.tls_files().is_some();
        if configured_tls && !serving_tls {
            tracing::warn!(
                "SIGHUP: server.tls_cert and server.tls_key are now set, but this server \
                 started with plain HTTP; switching from HTTP to HTTPS needs a restart \
                 (still serving plain HTTP)"
            );
        } else if serving_tls && !configured_tls {
            tracing::warn!(
                "SIGHUP: server.tls_cert and server.tls_key are no longer set, but this server \
                 started with HTTPS; switching from HTTPS to HTTP needs a restart (still \
                 serving HTTPS with the certificate it has)"
            );
        }
    }
}
