//! The listening socket with a cap on open connections: a slot is taken before
//! each `accept`, so once `server.max_connections` are open, further clients wait
//! in the kernel's listen backlog (and are served as soon as one closes) instead
//! of each costing a file descriptor and a task.
//!
//! A second cap, `server.max_connections_per_ip`, keeps one client address from
//! taking every slot: a connection from an address that already has that many
//! open is closed as soon as it is accepted, and the slot goes to the next one.
//! IPv6 clients count per /64 (the block one host usually controls). The peer is
//! the TCP peer: behind a proxy, every client shares the proxy's address.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum_server::{AddrListener, Address};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::limits::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP};

/// A client's address, as the server loop sees it (`SocketAddr` is foreign to
/// this crate, so the capped listener needs its own address type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Address for PeerAddr {
    type Stream = CappedStream;
    type Listener = CappedListener;
}

/// A TCP listener that accepts only while fewer than its cap are open, and at
/// most `per_address` of them from one client address.
#[derive(Debug)]
pub struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    per_address: Option<PerAddress>,
    started: Instant,
    /// Seconds after `started` of the last "connections refused" line, plus one
    /// (0: never), and the refusals since.
    last_report: AtomicU64,
    refused_since: AtomicU64,
}

/// Open connections per client address.
#[derive(Debug, Clone)]
struct PerAddress {
    limit: usize,
    open: Arc<Mutex<HashMap<u128, usize>>>,
}

/// How often at most the listener logs the connections it closed at once.
const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(60);

/// The address as one key: IPv4 (also IPv4-mapped IPv6) whole, other IPv6 by /64.
fn address_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) => v6.to_bits() & !u128::from(u64::MAX),
    }
}

impl PerAddress {
    /// Takes one of `ip`'s places, or `None` when it has none left.
    fn take(&self, ip: IpAddr) -> Option<AddressPlace> {
        let key = address_key(ip);
        let mut open = self.open.lock().ok()?;
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressPlace {
            key,
            open: self.open.clone(),
        })
    }
}

/// One open connection of an address; given back when the connection closes.
#[derive(Debug)]
struct AddressPlace {
    key: u128,
    open: Arc<Mutex<HashMap<u128, usize>>>,
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock() {
            if let Some(count) = open.get_mut(&self.key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(&self.key);
                }
            }
        }
    }
}

impl CappedListener {
    /// `per_address` 0 sets no per-address cap.
    pub fn new(inner: TcpListener, max_connections: usize, per_address: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max_connections)),
            per_address: (per_address > 0).then(|| PerAddress {
                limit: per_address,
                open: Arc::new(Mutex::new(HashMap::new())),
            }),
            started: Instant::now(),
            last_report: AtomicU64::new(0),
            refused_since: AtomicU64::new(0),
        }
    }

    /// Counts a connection closed for its address, logging at most once a minute.
    fn refused(&self, peer: SocketAddr) {
        metrics::counter!("hr_bridge_connections_refused_total").increment(1);
        let refused = self.refused_since.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.last_report.load(Ordering::Relaxed);
        if last != 0 && now - last < REFUSAL_REPORT_EVERY.as_secs() {
            return;
        }
        if self
            .last_report
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.refused_since.store(0, Ordering::Relaxed);
            tracing::warn!(
                client = %peer.ip(),
                refused,
                "closed connections from addresses over server.max_connections_per_ip \
                 ({refused} since the last such line; the latest from {})",
                peer.ip()
            );
        }
    }
}

impl AddrListener<CappedStream, PeerAddr> for CappedListener {
    async fn bind_to(addr: PeerAddr) -> io::Result<Self> {
        Ok(Self::new(
            TcpListener::bind(addr.0).await?,
            MAX_CONNECTIONS,
            MAX_CONNECTIONS_PER_IP,
        ))
    }

    async fn accept_stream(&self) -> io::Result<(CappedStream, PeerAddr)> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        loop {
            let (stream, peer) = self.inner.accept().await?;
            let place = match &self.per_address {
                None => None,
                Some(per_address) => match per_address.take(peer.ip()) {
                    Some(place) => Some(place),
                    None => {
                        // Closed at once; the slot stays with us for the next client.
                        drop(stream);
                        self.refused(peer);
                        continue;
                    }
                },
            };
            return Ok((
                CappedStream {
                    stream,
                    _slot: slot,
                    _place: place,
                },
                PeerAddr(peer),
            ));
        }
    }

    fn get_local_addr(&self) -> io::Result<PeerAddr> {
        self.inner.local_addr().map(PeerAddr)
    }
}

/// An accepted connection; its slot is given back when it closes.
#[derive(Debug)]
pub struct CappedStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _place: Option<AddressPlace>,
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
