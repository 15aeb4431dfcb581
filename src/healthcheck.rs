//! `hr-bridge healthcheck`: asks the local server's `/healthz`, for a container's
//! `HEALTHCHECK`, so that the runtime image needs no curl and no shell.
//!
//! The address and the scheme come from the same settings as `serve` (file and
//! environment), so the check follows the server wherever it is configured to
//! listen. An unspecified listen address (`0.0.0.0`, `[::]`) is reached on the
//! loopback address of the same family.
//!
//! Over HTTPS the server's certificate is not verified (as `curl -k`): the check
//! only asks whether the local process answers, it sends no credentials, and the
//! certificate names the public host name rather than the loopback address.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::ServerSettings;

/// The longest status line accepted; `/healthz` sends a few dozen bytes.
const MAX_STATUS_LINE: u64 = 1024;

/// What the check targets: where to connect and whether to speak TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Target {
    /// The local server described by `server`, as `serve` would bind it.
    pub fn from_settings(server: &ServerSettings) -> anyhow::Result<Self> {
        let mut addr = server.listen;
        if addr.port() == 0 {
            bail!("server.listen has port 0 (a random port); the health check cannot know it");
        }
        if addr.ip().is_unspecified() {
            let loopback: IpAddr = match addr.ip() {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            };
            addr.set_ip(loopback);
        }
        Ok(Self {
            addr,
            tls: server.tls_files().is_some(),
        })
    }

    /// The URL checked, for messages.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/healthz", self.addr)
    }
}

/// Sends `GET /healthz` to `target` and succeeds on HTTP 200 within `timeout`
/// for each of connecting, writing and reading. Blocking: run it off the runtime.
pub fn check(target: &Target, timeout: Duration) -> anyhow::Result<()> {
    let url = target.url();
    let tcp = TcpStream::connect_timeout(&target.addr, timeout)
        .with_context(|| format!("{url}: cannot connect"))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let status = if target.tls {
        let connection = rustls::ClientConnection::new(
            Arc::new(any_certificate_config()?),
            ServerName::IpAddress(target.addr.ip().into()),
        )
        .context("cannot start TLS")?;
        status_code(rustls::StreamOwned::new(connection, tcp), target.addr)
    } else {
        status_code(tcp, target.addr)
    }
    .with_context(|| format!("{url}: no HTTP answer"))?;
    if status != 200 {
        bail!("{url} answered HTTP {status}");
    }
    Ok(())
}

/// Writes one HTTP/1.1 request and reads the status code of the answer. A fixed
/// request to our own server needs no HTTP client library in the binary.
fn status_code(mut stream: impl Read + Write, addr: SocketAddr) -> anyhow::Result<u16> {
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: hr-bridge-healthcheck\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut line = String::new();
    BufReader::new(stream.take(MAX_STATUS_LINE)).read_line(&mut line)?;
    // "HTTP/1.1 200 OK"
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(code))) if version.starts_with("HTTP/") => Ok(code),
        _ => bail!("not an HTTP status line: {:?}", line.trim_end()),
    }
}

/// A client configuration that accepts any server certificate but still checks
/// the handshake signatures, like `curl -k`.
fn any_certificate_config() -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("no TLS protocol version available")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    )
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_reached_on_loopback() {
        let mut server = ServerSettings {
            listen: "0.0.0.0:8080".parse().expect("address"),
            ..ServerSettings::default()
        };
        let target = Target::from_settings(&server).expect("valid");
        assert_eq!(target.url(), "http://127.0.0.1:8080/healthz");
        server.listen = "[::]:8443".parse().expect("address");
        server.tls_cert = Some("cert.pem".into());
        server.tls_key = Some("key.pem".into());
        let target = Target::from_settings(&server).expect("valid");
        assert_eq!(target.url(), "https://[::1]:8443/healthz");
        server.listen = "127.0.0.1:0".parse().expect("address");
        assert!(Target::from_settings(&server).is_err());
    }
}
