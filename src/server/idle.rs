//! Closing idle connections (`server.idle_timeout_secs`).
//!
//! hyper bounds an HTTP/1 connection waiting for its next request head (the
//! header-read timeout), but an HTTP/2 connection has no such bound: its
//! keep-alive pings only catch dead peers, and a live client that makes one
//! request and then just answers pings holds a connection slot for as long as it
//! likes; a thousand such sockets, no credentials needed, take the port offline.
//!
//! So every connection, of either protocol, gets a watcher once its first request
//! arrives (before that, the first-request timeout bounds it). The connection is
//! idle while no handler runs and no response body moves: a response stalled by
//! a client that never opens its flow-control window counts as idle too, or it
//! would be a way round the bound. After `idle` of that, the connection is closed
//! gracefully (HTTP/2: GOAWAY, so a well-behaved client opens a new connection for
//! its next request and loses nothing); a client that ignores that and stays idle
//! for another `idle` (never acknowledging the GOAWAY's ping, say) is cut off.
//!
//! The close goes through axum-server's per-connection handle, so graceful
//! server shutdown and everything else about the connection stay axum-server's.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, Response};
use axum_server::ConnectionShutdown;
use http_body::{Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tower::Service;

/// What the watcher reads: requests in their handlers, and when anything last
/// moved.
#[derive(Debug)]
struct Activity {
    /// Requests whose handler has not answered yet (bounded by the request
    /// timeout, so never idle).
    handling: AtomicUsize,
    /// Milliseconds from `epoch` to the last sign of life: a request arriving, a
    /// handler answering, a response body yielding data or ending.
    moved_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new() -> Self {
        Self {
            handling: AtomicUsize::new(0),
            moved_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.moved_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the connection will have been idle for `idle`, if nothing moves
    /// meanwhile; `None` while a handler runs.
    fn idle_at(&self, idle: Duration) -> Option<Instant> {
        if self.handling.load(Ordering::Acquire) > 0 {
            return None;
        }
        let moved = self.epoch + Duration::from_millis(self.moved_ms.load(Ordering::Relaxed));
        Some(moved + idle)
    }
}

/// One connection's state, shared by the clones of its service.
#[derive(Debug)]
struct Connection {
    activity: Arc<Activity>,
    idle: Duration,
    /// Taken by the watcher, started with the first request (which carries the
    /// connection's shutdown handle).
    closed: Mutex<Option<oneshot::Receiver<()>>>,
    /// Dropped with the connection's service, when hyper is done with the
    /// connection: the watcher then ends.
    _open: oneshot::Sender<()>,
}

/// The per-connection service: the application, with the connection watched.
#[derive(Debug, Clone)]
pub struct IdleTracked<S> {
    inner: S,
    connection: Arc<Connection>,
}

impl<S> IdleTracked<S> {
    /// Wraps the service made for one new connection.
    pub fn new(inner: S, idle: Duration) -> Self {
        let (open, closed) = oneshot::channel();
        Self {
            inner,
            connection: Arc::new(Connection {
                activity: Arc::new(Activity::new()),
                idle,
                closed: Mutex::new(Some(closed)),
                _open: open,
            }),
        }
    }

    fn start_watcher(&self, shutdown: &ConnectionShutdown) {
        let closed = match self.connection.closed.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(closed) = closed {
            tokio::spawn(watch(
                self.connection.activity.clone(),
                self.connection.idle,
                shutdown.clone(),
                closed,
            ));
        }
    }
}

/// Closes the connection once it has been idle for `idle`: gracefully the first
/// time, at once if it is still there after another idle period.
async fn watch(
    activity: Arc<Activity>,
    idle: Duration,
    shutdown: ConnectionShutdown,
    mut closed: oneshot::Receiver<()>,
) {
    let mut asked = false;
    loop {
        let wake = activity
            .idle_at(idle)
            .unwrap_or_else(|| Instant::now() + idle);
        tokio::select! {
            _ = &mut closed => return,
            () = tokio::time::sleep_until(wake) => {}
        }
        if activity.idle_at(idle).is_none_or(|at| at > Instant::now()) {
            continue;
        }
        if asked {
            tracing::debug!("idle connection ignored the request to close; closing it");
            shutdown.shutdown();
            return;
        }
        tracing::debug!(idle_secs = idle.as_secs(), "closing an idle connection");
        shutdown.graceful_shutdown();
        asked = true;
        // The client's grace period starts now.
        activity.touch();
    }
}

impl<S, B> Service<Request<B>> for IdleTracked<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if let Some(shutdown) = request.extensions().get::<ConnectionShutdown>() {
            self.start_watcher(shutdown);
        }
        let activity = self.connection.activity.clone();
        let handling = Handling::start(activity.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(handling);
            response.map(|response| {
                response.map(|body| {
                    Body::new(MovingBody {
                        inner: body,
                        activity,
                    })
                })
            })
        })
    }
}

/// A request in its handler; ends (and counts as movement) when dropped, answered
/// or cancelled.
struct Handling(Arc<Activity>);

impl Handling {
    fn start(activity: Arc<Activity>) -> Self {
        activity.handling.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Self(activity)
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.touch();
        self.0.handling.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that notes each time it moves. hyper polls it only when the
/// client can take more, so a body the client does not read stops moving.
struct MovingBody {
    inner: Body,
    activity: Arc<Activity>,
}

impl HttpBody for MovingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_ready() {
            this.activity.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
