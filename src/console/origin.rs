//! Which names the console answers to, and which origins may change anything.
//!
//! `Host` is chosen by whoever sends the request: a page on an attacker's
//! domain that resolves to the console (DNS rebinding), or a proxy forwarding any
//! `Host`, would otherwise make `Origin` and `Host` agree. So the console keeps
//! an allow-list: `admin.public_origin`'s authority when that is set, else the
//! listener's own address (and `localhost:<port>` for a loopback listener).
//! Every request naming another host is refused (421), sign-in included; a
//! state-changing request's `Origin` must name an allowed origin.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::{ConsoleError, ConsoleState};
use crate::config::PublicOrigin;

/// The hosts and origins this console accepts.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// `admin.public_origin`, exactly as `Origin` must carry it, when set.
    public_origin: Option<String>,
    /// The `Host` values (lowercase) that name this console.
    hosts: Vec<String>,
}

impl OriginPolicy {
    /// For a console bound at `bound` (the real port, not `:0`), named by
    /// `public` when set.
    pub fn new(public: Option<&PublicOrigin>, bound: SocketAddr, tls: bool) -> Self {
        if let Some(public) = public {
            return Self {
                public_origin: Some(public.origin().to_owned()),
                hosts: public.hosts().to_vec(),
            };
        }
        let port = bound.port();
        let default_port = if tls { 443 } else { 80 };
        // `SocketAddr`'s display brackets IPv6 as `Host` does: `[::1]:8081`.
        let mut names = vec![bound.ip().to_string()];
        if bound.ip().is_loopback() {
            names.push("localhost".to_owned());
        }
        let mut hosts = Vec::new();
        for name in names {
            let name = if bound.is_ipv6() && name != "localhost" {
                format!("[{name}]")
            } else {
                name
            };
            if port == default_port {
                hosts.push(name.clone());
            }
            hosts.push(format!("{name}:{port}"));
        }
        Self {
            public_origin: None,
            hosts,
        }
    }

    /// True when `host` (a `Host` header or an HTTP/2 authority) names this console.
    pub fn host_allowed(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// True when `origin` is this console's own, for a request to `host`
    /// (already allowed) over `scheme`.
    fn origin_allowed(&self, origin: &str, host: &str, scheme: &str) -> bool {
        match &self.public_origin {
            Some(public) => origin == public,
            None => origin.eq_ignore_ascii_case(&format!("{scheme}://{host}")),
        }
    }

    /// The names accepted, for the log.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }
}

/// Refuses (421) a request naming a host this console is not, and (403) a
/// state-changing request that does not come from this console's own origin.
///
/// Browsers send `Origin` on every POST: it must be `admin.public_origin`
/// exactly, or, when that is unset, the scheme the console is served with and the
/// (allowed) host asked for. Under `Referrer-Policy: no-referrer` (ours)
/// Chromium sends `Origin: null` for the console's own forms; then
/// `Sec-Fetch-Site: same-origin`, which only the browser can set, must vouch for
/// it. A request with neither is refused. With the session's CSRF token (checked
/// by each form's handler) and `SameSite=Strict`, a forged cross-site form gets
/// nowhere.
pub async fn guard(
    State(state): State<ConsoleState>,
    request: Request,
    next: Next,
) -> Result<Response, ConsoleError> {
    let policy = &state.origins;
    let headers = request.headers();
    // HTTP/2 names the host in the request's authority, not in `Host`; an
    // absolute-form HTTP/1.1 target carries one too. Each one given must be ours.
    let host_header = match headers.get(header::HOST) {
        Some(value) => Some(value.to_str().map_err(|_| ConsoleError::MisdirectedHost)?),
        None => None,
    };
    let authority = request.uri().authority().map(|a| a.as_str());
    let Some(host) = host_header.or(authority) else {
        tracing::warn!("console: refused a request naming no host");
        return Err(ConsoleError::MisdirectedHost);
    };
    if [host_header, authority]
        .into_iter()
        .flatten()
        .any(|named| !policy.host_allowed(named))
    {
        tracing::warn!(
            host = host,
            authority = authority.unwrap_or("-"),
            accepted = ?policy.hosts(),
            "console: refused a request for another host name (see admin.public_origin)"
        );
        return Err(ConsoleError::MisdirectedHost);
    }
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
        let scheme = if state.tls { "https" } else { "http" };
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let matches = match origin {
            Some(origin) if origin != "null" => policy.origin_allowed(origin, host, scheme),
            // An opaque or missing origin: only the browser's own word will do.
            _ => fetch_site == Some("same-origin"),
        };
        if !matches {
            tracing::warn!(
                origin = origin.unwrap_or("-"),
                host = host,
                sec_fetch_site = fetch_site.unwrap_or("-"),
                "console: refused a state-changing request from another origin"
            );
            return Err(ConsoleError::Forbidden("cross-origin request refused"));
        }
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_listener_answers_to_its_address_and_localhost() {
        let policy = OriginPolicy::new(None, "127.0.0.1:8081".parse().unwrap(), false);
        assert!(policy.host_allowed("127.0.0.1:8081"));
        assert!(policy.host_allowed("LOCALHOST:8081"));
        assert!(!policy.host_allowed("localhost:8082"));
        assert!(!policy.host_allowed("evil.example:8081"));
        assert!(!policy.host_allowed("127.0.0.1"));
        let v6 = OriginPolicy::new(None, "[::1]:443".parse().unwrap(), true);
        assert!(v6.host_allowed("[::1]:443"));
        assert!(v6.host_allowed("[::1]"));
        assert!(v6.host_allowed("localhost"));
        let lan = OriginPolicy::new(None, "10.0.0.5:8443".parse().unwrap(), true);
        assert_eq!(lan.hosts(), ["10.0.0.5:8443"]);
    }

    #[test]
    fn a_public_origin_is_the_only_name_and_origin() {
        let public = PublicOrigin::parse("https://HR-Console.example.com/").unwrap();
        let policy = OriginPolicy::new(Some(&public), "0.0.0.0:8443".parse().unwrap(), false);
        assert!(policy.host_allowed("hr-console.example.com"));
        assert!(policy.host_allowed("hr-console.example.com:443"));
        assert!(!policy.host_allowed("0.0.0.0:8443"));
        assert!(!policy.host_allowed("10.0.0.5:8443"));
        let host = "hr-console.example.com";
        assert!(policy.origin_allowed("https://hr-console.example.com", host, "http"));
        assert!(!policy.origin_allowed("http://hr-console.example.com", host, "http"));
        assert!(!policy.origin_allowed("https://hr-console.example.com:443", host, "http"));
    }
}
