//! Connection bounds beyond HTTP/1: idle HTTP/2 connections (cleartext with prior
//! knowledge, and TLS with ALPN h2) are closed after `server.idle_timeout_secs`,
//! with a GOAWAY first and for good if the client ignores it, so that
//! `server.max_connections` idle clients cannot lock the next one out; and the
//! separate metrics listener has a cap and the same timeouts, so that it cannot
//! starve the OMFLOW port.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{Empty, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::helpers::{free_port, TestApp, TestDb, OMFLOW_PASSWORD, OMFLOW_USER};
use hr_bridge::db::Backend;

/// The idle bound the tests run with.
const BOUND: Duration = Duration::from_secs(1);
/// Room for a loaded machine on top of a bound.
const SLACK: Duration = Duration::from_secs(3);

/// Connection handling is the same on every backend: SQLite is enough.
async fn sqlite_app(configure: impl FnOnce(&mut hr_bridge::config::Settings)) -> TestApp {
    let db = TestDb::create(Backend::Sqlite).await.expect("sqlite");
    let mut settings = db.settings();
    configure(&mut settings);
    db.spawn_with(settings).await
}

/// An HTTP/2 connection that made one request and now idles, as a well-behaved
/// client (hyper's) does: it answers pings and honours GOAWAY.
struct IdleH2 {
    _send: http2::SendRequest<Empty<Bytes>>,
    closed: JoinHandle<()>,
}

async fn idle_h2<IO>(io: IO, scheme: &str) -> IdleH2
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(io))
        .await
        .expect("HTTP/2 handshake");
    let closed = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::get(format!("{scheme}://localhost/healthz"))
        .body(Empty::new())
        .unwrap();
    let response = send.send_request(request).await.expect("GET /healthz");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    IdleH2 {
        _send: send,
        closed,
    }
}

/// Waits until the server has closed every connection; panics after `within`.
async fn all_closed(connections: Vec<IdleH2>, within: Duration) {
    for connection in connections {
        tokio::time::timeout(within, connection.closed)
            .await
            .expect("an idle HTTP/2 connection is still open")
            .unwrap();
    }
}

/// How long a plain HTTP/1.1 `GET /healthz` from a new client takes to be
/// answered 200; panics when it is not answered within `limit`.
async fn next_client_waits(base_url: &str, client: &reqwest::Client, limit: Duration) -> Duration {
    let started = Instant::now();
    let response = tokio::time::timeout(limit, client.get(format!("{base_url}/healthz")).send())
        .await
        .unwrap_or_else(|_| panic!("the next client got no answer within {limit:?}"))
        .expect("request");
    assert_eq!(response.status(), 200);
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed_and_do_not_lock_out_the_next_client() {
    // The idle bound follows the header-read timeout unless set.
    let app = sqlite_app(|s| {
        s.server.max_connections = 3;
        s.server.header_read_timeout_secs = BOUND.as_secs();
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        let stream = TcpStream::connect(app.addr).await.unwrap();
        idle.push(idle_h2(stream, "http").await);
    }
    let waited = next_client_waits(&app.base_url, &reqwest::Client::new(), BOUND + SLACK).await;
    assert!(waited >= BOUND / 2, "served at once: {waited:?}");
    // Closed gracefully: a client that honours GOAWAY is gone after one bound.
    all_closed(idle, SLACK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_idle_bound_still_answers_over_http2() {
    let app = sqlite_app(|s| {
        s.server.idle_timeout_secs = Some(BOUND.as_secs());
        // A failed login answers after this floor: longer than the idle bound.
        s.auth.failure_floor_ms = 2500;
    })
    .await;
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut send, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{OMFLOW_USER}:{OMFLOW_PASSWORD}"));
    let request = hyper::Request::post("http://localhost/authenticate")
        .header("authorization", format!("Basic {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"username": "ghost", "password": "x"}"#,
        )))
        .unwrap();
    let started = Instant::now();
    let response = send.send_request(request).await.expect("answered");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(2400));
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains(r#""status":"fail""#),
        "{body:?}"
    );
}

/// One raw HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// HPACK for `GET http://x/healthz`, without Huffman coding or indexing.
fn get_healthz_block() -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.extend_from_slice(&[0x04, 8]); // :path, literal
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x01, 1, b'x']); // :authority x
    block
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// A hostile HTTP/2 client: it opens no flow-control window (so the answer to
/// its one request can never be sent), starts a second request and never
/// finishes its header block, and never answers a ping, so a graceful close
/// never completes. It reads whatever the server sends.
async fn hostile_h2(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut out = PREFACE.to_vec();
    // SETTINGS_INITIAL_WINDOW_SIZE = 0
    out.extend(frame(SETTINGS, 0, 0, &[0x00, 0x04, 0, 0, 0, 0]));
    out.extend(frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
        &get_healthz_block(),
    ));
    let block = get_healthz_block();
    out.extend(frame(HEADERS, END_STREAM, 3, &block[..3]));
    stream.write_all(&out).await.unwrap();
    stream
}

/// The frame types the server sent until it closed the connection, and when it
/// closed; panics if it stays open longer than `within`.
async fn frames_until_close(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Instant) {
    let mut received = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut received))
        .await
        .expect("the server kept the connection open")
        .ok();
    let closed = Instant::now();
    let mut kinds = Vec::new();
    let mut rest = &received[..];
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        kinds.push(rest[3]);
        rest = &rest[(9 + len).min(rest.len())..];
    }
    (kinds, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_that_stall_and_ignore_goaway_are_cut_off() {
    let app = sqlite_app(|s| {
        s.server.max_connections = 2;
        s.server.idle_timeout_secs = Some(BOUND.as_secs());
    })
    .await;
    let started = Instant::now();
    let mut hostile = vec![hostile_h2(app.addr).await, hostile_h2(app.addr).await];
    // Every slot is held: the next client is served once the hostile ones are
    // cut, one idle bound for the GOAWAY and one more for ignoring it.
    let waited = next_client_waits(&app.base_url, &reqwest::Client::new(), 2 * BOUND + SLACK).await;
    assert!(waited >= BOUND, "served at once: {waited:?}");
    for stream in &mut hostile {
        let (kinds, closed) = frames_until_close(stream, SLACK).await;
        assert!(kinds.contains(&GOAWAY), "closed without GOAWAY: {kinds:?}");
        assert!(closed - started >= 2 * BOUND - Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_http2_preface_is_closed_like_a_half_sent_head() {
    let app = sqlite_app(|s| s.server.header_read_timeout_secs = BOUND.as_secs()).await;
    let settings_only = [PREFACE.to_vec(), frame(SETTINGS, 0, 0, &[])].concat();
    for partial in [&PREFACE[..10], PREFACE, &settings_only[..]] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(partial).await.unwrap();
        let started = Instant::now();
        frames_until_close(&mut stream, BOUND + SLACK).await;
        assert!(started.elapsed() >= BOUND / 2);
    }
}

/// A TLS client that offers only `h2` and trusts `cert_pem`.
async fn tls_h2(addr: std::net::SocketAddr, cert_pem: &str) -> IdleH2 {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let cert = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    roots.add(cert).unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    idle_h2(tls, "https").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_over_tls_is_closed_and_does_not_lock_out_the_next_client() {
    let db = TestDb::create(Backend::Sqlite).await.expect("sqlite");
    let (_dir, (cert, _key), mut settings) = crate::tls::tls_settings(&db);
    settings.server.max_connections = 2;
    settings.server.idle_timeout_secs = Some(BOUND.as_secs());
    let app = db.spawn_with(settings).await;
    let idle = vec![tls_h2(app.addr, &cert).await, tls_h2(app.addr, &cert).await];
    let client = crate::tls::client_trusting(&cert, app.addr);
    let base_url = format!("https://localhost:{}", app.addr.port());
    let waited = next_client_waits(&base_url, &client, BOUND + SLACK).await;
    assert!(waited >= BOUND / 2, "served at once: {waited:?}");
    all_closed(idle, SLACK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_closes_half_sent_requests() {
    let app = sqlite_app(|s| {
        s.server.metrics_listen = Some(crate::helpers::LOCAL_FREE_PORT);
        s.server.header_read_timeout_secs = BOUND.as_secs();
    })
    .await;
    let metrics = app.metrics_addr.expect("metrics listener");
    for partial in [&b"GET /metr"[..], b""] {
        let mut stream = TcpStream::connect(metrics).await.unwrap();
        stream.write_all(partial).await.unwrap();
        let started = Instant::now();
        frames_until_close(&mut stream, BOUND + SLACK).await;
        assert!(started.elapsed() >= BOUND / 2);
    }
    let response = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Stops the child however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A flood of half-sent requests on the metrics port, against the real binary
/// with as few file descriptors as the reported attack had: the OMFLOW port
/// must keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_on_the_metrics_port_cannot_starve_the_omflow_port() {
    let dir = tempfile::tempdir().unwrap();
    let reserved = (free_port(), free_port());
    let (port, metrics_port) = (reserved.0.port(), reserved.1.port());
    let mut command = crate::helpers::clean_command("sh");
    command
        .args(["-c", "ulimit -n 100 && exec \"$0\" serve"])
        .arg(crate::helpers::BINARY);
    let child = command
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .env(
            "HR_BRIDGE__DATABASE__URL",
            format!("sqlite://{}/hr.db?mode=rwc", dir.path().display()),
        )
        .env("HR_BRIDGE__DATABASE__MAX_CONNECTIONS", "2")
        .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "HR_BRIDGE__SERVER__METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        // The flood stays open for the whole test.
        .env("HR_BRIDGE__SERVER__HEADER_READ_TIMEOUT_SECS", "60")
        .env("HR_BRIDGE__OMFLOW__USERNAME", "omflow")
        .env("HR_BRIDGE__OMFLOW__PASSWORD", "pw")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _child = Child(child);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server did not come up");
    let mut flood = Vec::new();
    for _ in 0..110 {
        let mut stream = TcpStream::connect(("127.0.0.1", metrics_port))
            .await
            .unwrap();
        stream.write_all(b"GET /metr").await.unwrap();
        flood.push(stream);
    }
    for _ in 0..5 {
        let response = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("the OMFLOW port stopped answering");
        assert_eq!(response.status(), 200);
    }
    let response = client
        .post(format!("{base}/sync"))
        .basic_auth("omflow", Some("pw"))
        .send()
        .await
        .expect("the OMFLOW port stopped answering");
    assert_eq!(response.status(), 200);
    drop(flood);
}
