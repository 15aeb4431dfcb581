//! The client address for the audit trail: the TCP peer, unless that peer is a
//! trusted proxy, in which case `X-Forwarded-For` is read from the right, skipping
//! trusted hops, so a client cannot forge its address by sending the header itself.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use axum::http::HeaderMap;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn ignores_the_header_from_an_untrusted_peer() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = client_ip(
            "192.0.2.7".parse().unwrap(),
            &headers("203.0.113.9"),
            &trusted,
        );
        assert_eq!(ip.to_string(), "192.0.2.7");
    }

    #[test]
    fn takes_the_rightmost_untrusted_hop_behind_a_trusted_proxy() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let xff = headers("198.51.100.1, 203.0.113.9, 10.1.2.3");
        let ip = client_ip("10.0.0.5".parse().unwrap(), &xff, &trusted);
        assert_eq!(ip.to_string(), "203.0.113.9");
    }
}
