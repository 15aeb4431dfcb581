//! The probe's client: one inspecting TLS handshake that sends nothing (so every
//! certificate item can be judged on its own, even when one is bad), then plain
//! HTTP/1.1 requests, a fresh connection each: over strictly verified TLS whenever
//! they carry a secret; a request without one may go over an unverified connection.
//!
//! Trust: the built-in Mozilla roots, or the certificates of `--ca-cert`. A
//! certificate in that file is a CA for the chain, and is also *pinned*: a server
//! presenting exactly that certificate is trusted as it is (hostname and validity
//! period still checked). That is what a self-signed certificate needs: webpki
//! refuses a certificate that is its own CA as an end entity (`CaUsedAsEndEntity`,
//! as `openssl req -x509` makes them), and an exact byte match is a stronger tie
//! than a chain.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::body::{self, Short, Streamed, SHORT_LIMIT};

/// Where the deployment is, as OMFLOW is configured with it.
#[derive(Debug, Clone)]
pub struct Target {
    pub https: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// `host:port` as sent in the `Host` header.
    pub authority: String,
    /// The URL's path without a trailing slash; OMFLOW appends `/sync`.
    pub base_path: String,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        // Credentials in the URL would be echoed in the checklist and in error
        // messages: refuse them without repeating the URL.
        let authority_part = url.split_once("://").map_or(url, |(_, rest)| {
            rest.split(['/', '?', '#']).next().unwrap_or("")
        });
        if authority_part.contains('@') {
            bail!(
                "the URL must not carry credentials (user:password@host); give the user with \
                 --username and the password in HR_BRIDGE_PROBE_PASSWORD"
            );
        }
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("{url:?}: the URL must start with https:// or http://"),
        };
        let authority = uri
            .authority()
            .with_context(|| format!("{url:?} has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Self {
            https,
            host,
            port,
            authority: authority.as_str().to_owned(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    fn server_name(&self) -> anyhow::Result<ServerName<'static>> {
        ServerName::try_from(self.host.clone())
            .map_err(|_| anyhow!("{:?} is not a valid TLS server name", self.host))
    }
}

/// What the inspecting handshake saw.
#[derive(Debug)]
pub struct TlsReport {
    /// `TLSv1_3` and the cipher suite.
    pub version: String,
    pub suite: String,
    /// False only for TLS below 1.2 (which rustls never negotiates, so a server that
    /// offers nothing newer fails the handshake instead).
    pub version_ok: bool,
    /// The chain up to a trusted root, judged at a moment the leaf is valid so that
    /// expiry is reported on its own.
    pub chain: Result<(), String>,
    /// The server presented a certificate of `--ca-cert` itself.
    pub pinned: bool,
    pub hostname: Result<(), String>,
    /// The leaf's `notAfter`, as text and as seconds from now (negative: expired).
    pub not_after: String,
    pub seconds_left: i64,
}

/// The certificates the server presented, kept by [`Inspecting`].
#[derive(Debug, Default)]
struct Presented {
    end_entity: Option<CertificateDer<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
}

/// Accepts any certificate but remembers it; used for a handshake that carries no
/// data, so that a bad certificate can be described item by item, and for requests
/// that carry no secret. Credentials only ever travel over the strict configuration.
#[derive(Debug)]
struct Inspecting {
    inner: Arc<WebPkiServerVerifier>,
    presented: Mutex<Presented>,
}

/// The strict verifier: a pinned certificate (one of `--ca-cert`, presented as it
/// is) or else a chain up to a trusted root.
#[derive(Debug)]
struct Verifier {
    pinned: Vec<CertificateDer<'static>>,
    chain: Arc<WebPkiServerVerifier>,
}

impl Verifier {
    fn is_pinned(&self, end_entity: &CertificateDer<'_>) -> bool {
        self.pinned
            .iter()
            .any(|pin| pin.as_ref() == end_entity.as_ref())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.is_pinned(end_entity) {
            return self.chain.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            );
        }
        // What webpki checks of an end entity, but the chain: the name and the
        // validity period. The handshake's signature (checked by the methods below)
        // proves the server holds the pinned certificate's key.
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::NotValidForName))?;
        let ((not_before, _), (not_after, _)) = validity(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let now = now.as_secs();
        if now < not_before {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet,
            ));
        }
        if now > not_after {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

impl ServerCertVerifier for Inspecting {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut presented) = self.presented.lock() {
            presented.end_entity = Some(end_entity.clone().into_owned());
            presented.intermediates = intermediates
                .iter()
                .map(|c| c.clone().into_owned())
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// How much of an answer's body to read.
#[derive(Debug, Clone, Copy)]
pub enum Reading {
    /// Up to [`SHORT_LIMIT`] bytes.
    Short,
    /// A 200 JSON answer is checked as a `/sync` payload while it streams in, up to
    /// `limit` bytes; any other answer is read as [`Reading::Short`].
    Payload { limit: u64 },
}

/// An HTTP answer, its body read within a bound.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body, unless it was checked as a payload.
    pub short: Short,
    pub payload: Option<Streamed>,
    /// From sending the request to the last byte read.
    pub elapsed: Duration,
}

/// Talks to one deployment.
pub struct Client {
    target: Target,
    timeout: Duration,
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: Option<Arc<Verifier>>,
    strict: Option<Arc<ClientConfig>>,
    /// Verifies nothing but the handshake's signatures: for requests without secrets.
    unverified: Option<Arc<ClientConfig>>,
}

impl Client {
    /// Trusts `ca_cert` (PEM: CAs, or the server's own certificate) when given,
    /// else the built-in Mozilla roots.
    pub fn new(target: Target, ca_cert: Option<&Path>, timeout: Duration) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        if !target.https {
            return Ok(Self {
                target,
                timeout,
                provider,
                verifier: None,
                strict: None,
                unverified: None,
            });
        }
        let mut roots = RootCertStore::empty();
        let mut pinned = Vec::new();
        match ca_cert {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                for cert in rustls_pemfile_certs(&pem)? {
                    roots
                        .add(cert.clone())
                        .with_context(|| format!("{}: unusable CA certificate", path.display()))?;
                    pinned.push(cert);
                }
                if pinned.is_empty() {
                    bail!("{} holds no PEM certificate", path.display());
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .context("cannot build the certificate verifier")?;
        let verifier = Arc::new(Verifier {
            pinned,
            chain: chain.clone(),
        });
        let strict = tls_config(&provider, verifier.clone())?;
        let unverified = tls_config(
            &provider,
            Arc::new(Inspecting {
                inner: chain,
                presented: Mutex::new(Presented::default()),
            }),
        )?;
        Ok(Self {
            target,
            timeout,
            provider,
            verifier: Some(verifier),
            strict: Some(strict),
            unverified: Some(unverified),
        })
    }

    async fn connect_tcp(&self) -> anyhow::Result<TcpStream> {
        let address = (self.target.host.as_str(), self.target.port);
        tokio::time::timeout(self.timeout, TcpStream::connect(address))
            .await
            .map_err(|_| anyhow!("no TCP connection within {:?}", self.timeout))?
            .with_context(|| format!("cannot connect to {}", self.target.authority))
    }

    /// The inspecting handshake: nothing is sent over it.
    pub async fn inspect_tls(&self) -> anyhow::Result<TlsReport> {
        let verifier = self.verifier.clone().context("not an https:// URL")?;
        let inspecting = Arc::new(Inspecting {
            inner: verifier.chain.clone(),
            presented: Mutex::new(Presented::default()),
        });
        let config = tls_config(&self.provider, inspecting.clone())?;
        let tcp = self.connect_tcp().await?;
        let server_name = self.target.server_name()?;
        let tls = tokio::time::timeout(
            self.timeout,
            TlsConnector::from(config).connect(server_name.clone(), tcp),
        )
        .await
        .map_err(|_| anyhow!("no TLS handshake within {:?}", self.timeout))?
        .context("TLS handshake failed")?;
        let (_, session) = tls.get_ref();
        let version = session
            .protocol_version()
            .map_or_else(|| "unknown".to_owned(), |v| format!("{v:?}"));
        let version_ok = matches!(
            session.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2 | rustls::ProtocolVersion::TLSv1_3)
        );
        let suite = session
            .negotiated_cipher_suite()
            .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite()));
        let presented = std::mem::take(
            &mut *inspecting
                .presented
                .lock()
                .map_err(|_| anyhow!("certificate inspection failed"))?,
        );
        let leaf = presented
            .end_entity
            .context("the server presented no certificate")?;
        let (not_before, not_after) = validity(&leaf)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Judge the chain at a moment the leaf is valid; expiry is its own item.
        let judged_at = now.clamp(
            not_before.0,
            not_after.0.saturating_sub(1).max(not_before.0),
        );
        let chain = match verifier.verify_server_cert(
            &leaf,
            &presented.intermediates,
            &server_name,
            &[],
            UnixTime::since_unix_epoch(Duration::from_secs(judged_at)),
        ) {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(()),
            Err(e) => Err(untrusted_because(&e, !verifier.pinned.is_empty())),
        };
        let hostname = webpki::EndEntityCert::try_from(&leaf)
            .map_err(|e| format!("unreadable certificate: {e}"))
            .and_then(|cert| {
                cert.verify_is_valid_for_subject_name(&server_name)
                    .map_err(|_| format!("the certificate is not valid for {:?}", self.target.host))
            });
        Ok(TlsReport {
            version,
            suite,
            version_ok,
            chain,
            pinned: verifier.is_pinned(&leaf),
            hostname,
            not_after: not_after.1,
            seconds_left: i64::try_from(not_after.0).unwrap_or(i64::MAX)
                - i64::try_from(now).unwrap_or(i64::MAX),
        })
    }

    /// One request with credentials on a fresh connection (strictly verified TLS
    /// for https).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        authorization: &HeaderValue,
        body: Option<Vec<u8>>,
        reading: Reading,
    ) -> anyhow::Result<Answer> {
        self.send(
            self.strict.as_ref(),
            method,
            path,
            Some(authorization),
            body,
            reading,
        )
        .await
    }

    /// One request that carries no secret (no credentials, no body); over TLS that
    /// is verified only when `verified`.
    pub async fn request_without_secrets(
        &self,
        method: Method,
        path: &str,
        verified: bool,
    ) -> anyhow::Result<Answer> {
        let config = if verified {
            self.strict.as_ref()
        } else {
            self.unverified.as_ref()
        };
        self.send(config, method, path, None, None, Reading::Short)
            .await
    }

    async fn send(
        &self,
        tls: Option<&Arc<ClientConfig>>,
        method: Method,
        path: &str,
        authorization: Option<&HeaderValue>,
        body: Option<Vec<u8>>,
        reading: Reading,
    ) -> anyhow::Result<Answer> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.target.base_path))
            .header(header::HOST, &self.target.authority)
            .header(
                header::USER_AGENT,
                concat!("hr-bridge-probe/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .context("cannot build the request")?;
        let tcp = self.connect_tcp().await?;
        let exchange = async {
            match tls {
                Some(config) => {
                    let tls = TlsConnector::from(config.clone())
                        .connect(self.target.server_name()?, tcp)
                        .await
                        .context("TLS handshake failed")?;
                    exchange(tls, request, reading).await
                }
                None => exchange(tcp, request, reading).await,
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| anyhow!("no complete answer within {:?}", self.timeout))?
    }
}

fn tls_config(
    provider: &Arc<rustls::crypto::CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> anyhow::Result<Arc<ClientConfig>> {
    Ok(Arc::new(
        ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("cannot configure TLS")?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

async fn exchange<T>(
    io: T,
    request: Request<Full<Bytes>>,
    reading: Reading,
) -> anyhow::Result<Answer>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .context("HTTP handshake failed")?;
    let driver = tokio::spawn(connection);
    let started = Instant::now();
    let response = sender
        .send_request(request)
        .await
        .context("the request failed")?;
    let (parts, body) = response.into_parts();
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (short, payload) = match reading {
        Reading::Payload { limit } if parts.status == StatusCode::OK && is_json => (
            Short::default(),
            Some(body::check_streamed(body, limit).await?),
        ),
        _ => (body::read_short(body, SHORT_LIMIT).await?, None),
    };
    let elapsed = started.elapsed();
    driver.abort();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        short,
        payload,
        elapsed,
    })
}

/// Why the chain is not trusted, with the way out when it is `--ca-cert`.
fn untrusted_because(error: &rustls::Error, ca_cert_given: bool) -> String {
    let trusted = if ca_cert_given {
        "not among the certificates of --ca-cert"
    } else {
        "not one of the built-in public roots"
    };
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the issuer is unknown: {trusted}; use --ca-cert FILE with the CA's certificate \
             (for a self-signed certificate, the certificate itself)"
        ),
        // webpki judges a certificate that is its own CA (`openssl req -x509`)
        // before looking for its issuer.
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            format!(
                "the server presents a CA certificate (a self-signed one, as `openssl req \
                 -x509` makes them?), {trusted}; use --ca-cert FILE with that certificate itself"
            )
        }
        other => other.to_string(),
    }
}

/// The leaf certificate's validity as (unix seconds, text) pairs.
fn validity(der: &CertificateDer<'_>) -> anyhow::Result<((u64, String), (u64, String))> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der.as_ref())
        .context("the server's certificate cannot be parsed")?;
    let validity = &cert.tbs_certificate.validity;
    let pair = |time: &x509_cert::time::Time| {
        (
            time.to_unix_duration().as_secs(),
            time.to_date_time().to_string(),
        )
    };
    Ok((pair(&validity.not_before), pair(&validity.not_after)))
}

/// Every certificate in a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .context("the CA file is not valid PEM")
}
