//! The client address for the audit trail and the Basic Auth throttle: the TCP
//! peer, unless that peer is a trusted proxy, in which case `X-Forwarded-For` is
//! read from the right, skipping trusted hops, so a client cannot forge its address
//! by sending the header itself.
//!
//! Hops may be written as `ip`, `ip:port` or `[v6]:port` (load balancers append
//! ports). A hop that is none of these ends the chain: nothing to its left was
//! written by a proxy we can vouch for, so the answer is the nearest trusted
//! address instead (the proxy that wrote the hop we cannot read). Skipping it would
//! let a client put any address it likes just before it.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    // An IPv4 client of a dual-stack socket, or a proxy writing `::ffff:a.b.c.d`,
    // is the IPv4 address: canonical forms match the IPv4 ranges an operator
    // writes (and are what the audit trail and the throttles see).
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Every hop of every header line, in order; `None` for one we cannot read.
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(parse_hop).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    let mut nearest = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    nearest
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::{client_ip, parse_hop};
    use axum::http::HeaderMap;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    fn behind_proxy(xff: &str) -> String {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        client_ip("10.0.0.5".parse().unwrap(), &headers(xff), &trusted).to_string()
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
        assert_eq!(
            behind_proxy("198.51.100.1, 203.0.113.9, 10.1.2.3"),
            "203.0.113.9"
        );
    }

    #[test]
    fn reads_hops_with_ports() {
        assert_eq!(
            behind_proxy("198.51.100.1, 203.0.113.9:51234"),
            "203.0.113.9"
        );
        assert_eq!(
            behind_proxy("198.51.100.1, [2001:db8::7]:443, 10.1.2.3:80"),
            "2001:db8::7"
        );
        assert_eq!(behind_proxy("198.51.100.1,[2001:db8::8]"), "2001:db8::8");
        assert_eq!(behind_proxy("2001:db8::9"), "2001:db8::9");
    }

    #[test]
    fn an_unreadable_hop_ends_the_chain_at_the_nearest_trusted_address() {
        // Not skipped: the forged 198.51.100.1 before it is never believed.
        assert_eq!(behind_proxy("198.51.100.1, unknown"), "10.0.0.5");
        assert_eq!(
            behind_proxy("198.51.100.1, 203.0.113.9:x, 10.1.2.3"),
            "10.1.2.3"
        );
        assert_eq!(behind_proxy("198.51.100.1, , 10.1.2.3"), "10.1.2.3");
        assert_eq!(behind_proxy("198.51.100.1, fe80::1%eth0"), "10.0.0.5");
        // Everything trusted: the leftmost trusted hop is as near as we get.
        assert_eq!(behind_proxy("10.9.9.9, 10.1.2.3"), "10.9.9.9");
    }

    #[test]
    fn a_header_line_that_is_not_text_ends_the_chain() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "198.51.100.1".parse().unwrap());
        h.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        let ip = client_ip("10.0.0.5".parse().unwrap(), &h, &trusted);
        assert_eq!(ip.to_string(), "10.0.0.5");
    }

    #[test]
    fn ipv4_mapped_ipv6_peers_and_hops_match_ipv4_ranges() {
        let trusted = vec!["127.0.0.1/32".parse().unwrap()];
        for peer in ["127.0.0.1", "::ffff:127.0.0.1"] {
            for xff in [
                "203.0.113.9, ::ffff:127.0.0.1",
                "203.0.113.9, [::ffff:127.0.0.1]",
                "203.0.113.9, [::ffff:127.0.0.1]:8080",
            ] {
                let ip = client_ip(peer.parse().unwrap(), &headers(xff), &trusted);
                assert_eq!(ip.to_string(), "203.0.113.9", "{peer} / {xff}");
            }
        }
        // The client itself written mapped is shown as the IPv4 address it is.
        let ip = client_ip(
            "127.0.0.1".parse().unwrap(),
            &headers("::ffff:203.0.113.9"),
            &trusted,
        );
        assert_eq!(ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn parses_every_written_form() {
        for (hop, ip) in [
            ("192.0.2.1", "192.0.2.1"),
            (" 192.0.2.1:4711 ", "192.0.2.1"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
        ] {
            assert_eq!(parse_hop(hop).map(|a| a.to_string()).as_deref(), Some(ip));
        }
        for hop in [
            "",
            "unknown",
            "192.0.2.1:",
            "[192.0.2.1]",
            "2001:db8::1:99999x",
        ] {
            assert_eq!(parse_hop(hop), None, "{hop}");
        }
    }
}
