//! A per-client throttle of failed Basic Auth attempts: after
//! [`caps::BASIC_AUTH_FAILURES_PER_WINDOW`] failures in a window, a client address
//! is answered 429 until the window ends. Written here rather than taken from a
//! rate-limiting crate because it counts failures only (OMFLOW's own calls never
//! spend its budget) and keeps a hard cap on the addresses it remembers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::caps;

#[derive(Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failed attempts per client address, in fixed windows.
#[derive(Debug)]
pub struct FailureThrottle {
    windows: Mutex<HashMap<u128, Window>>,
    limit: u32,
    window: Duration,
    capacity: usize,
}

/// The address as one key: IPv4 (also IPv4-mapped IPv6) whole, other IPv6 by /64.
pub(super) fn client_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => v6.to_bits(),
        IpAddr::V6(v6) => v6.to_bits() & !u128::from(u64::MAX),
    }
}

impl Default for FailureThrottle {
    fn default() -> Self {
        Self::new(
            caps::BASIC_AUTH_FAILURES_PER_WINDOW,
            caps::BASIC_AUTH_WINDOW,
            caps::BASIC_AUTH_TRACKED_CLIENTS,
        )
    }
}

impl FailureThrottle {
    pub fn new(limit: u32, window: Duration, capacity: usize) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            limit: limit.max(1),
            window,
            capacity: capacity.max(1),
        }
    }

    fn retry_after(&self, window: &Window, now: Instant) -> Duration {
        (window.started + self.window).saturating_duration_since(now)
    }

    /// How long `client` must wait, when it has used up its failures.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let windows = self.windows.lock().ok()?;
        let window = windows.get(&client_key(client))?;
        let retry = self.retry_after(window, now);
        (window.failures >= self.limit && !retry.is_zero()).then_some(retry)
    }

    /// Counts a failure of `client`; returns how long it must wait when this
    /// failure used up its budget (or when the table is full of live windows, so
    /// that an address flood cannot reset its own counts).
    pub fn record_failure(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else {
            return Some(self.window);
        };
        let key = client_key(client);
        if !windows.contains_key(&key) && windows.len() >= self.capacity {
            let span = self.window;
            windows.retain(|_, w| now.duration_since(w.started) < span);
            if windows.len() >= self.capacity {
                return Some(self.window);
            }
        }
        let window = windows.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(window.started) >= self.window {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
        (window.failures >= self.limit).then(|| self.retry_after(window, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_an_address_after_its_failures_and_not_its_neighbours() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60), 10);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(throttle.record_failure(a).is_none());
        assert!(throttle.record_failure(a).is_none());
        assert!(throttle.blocked(a).is_none());
        assert!(throttle.record_failure(a).is_some());
        assert!(throttle.blocked(a).is_some());
        assert!(throttle.blocked(b).is_none());
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let throttle = FailureThrottle::new(2, Duration::from_secs(60), 10);
        throttle.record_failure("2001:db8::1".parse().unwrap());
        throttle.record_failure("2001:db8::2".parse().unwrap());
        assert!(throttle
            .blocked("2001:db8::ffff".parse().unwrap())
            .is_some());
        assert!(throttle
            .blocked("2001:db8:0:1::1".parse().unwrap())
            .is_none());
    }

    #[test]
    fn a_full_table_refuses_new_addresses_instead_of_forgetting_live_ones() {
        let throttle = FailureThrottle::new(5, Duration::from_secs(60), 1);
        assert!(throttle
            .record_failure("192.0.2.1".parse().unwrap())
            .is_none());
        assert!(throttle
            .record_failure("192.0.2.9".parse().unwrap())
            .is_some());
    }
}
