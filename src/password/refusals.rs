//! Log lines about refused Basic Auth attempts (wrong credentials, 401; too many
//! of them, 429), bounded: one line when an address is first refused, then one
//! line a minute per address still being refused ("N requests refused from ADDR
//! in the last minute"), so that a flood from many addresses cannot fill the
//! logs. The metric still counts every refusal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::caps;

/// Refusals per address in the current window.
#[derive(Debug)]
pub struct RefusalLog {
    counts: Arc<Mutex<Counts>>,
    window: Duration,
    reporter: OnceLock<()>,
    /// What is refused, as the log lines name it (`wrong credentials (401)`).
    what: &'static str,
}

#[derive(Debug, Default)]
struct Counts {
    /// Refusals of each address seen since the last report (0: announced in an
    /// earlier window, nothing since).
    by_address: HashMap<IpAddr, u64>,
    /// Refusals of addresses beyond the table's capacity, reported as one sum.
    others: u64,
}

impl RefusalLog {
    /// Refusals of `what`, reported every [`caps::REFUSAL_LOG_WINDOW`].
    pub fn of(what: &'static str) -> Self {
        Self::new(caps::REFUSAL_LOG_WINDOW, what)
    }

    pub fn new(window: Duration, what: &'static str) -> Self {
        Self {
            counts: Arc::new(Mutex::new(Counts::default())),
            window,
            reporter: OnceLock::new(),
            what,
        }
    }

    /// Counts one refused request from `client`; logs at once only when this
    /// address was not being refused already. Needs a tokio runtime (the first
    /// call starts the once-a-window report).
    pub fn refused(&self, client: IpAddr, why: &'static str) {
        metrics::counter!("hr_bridge_basic_auth_refused_total", "reason" => why).increment(1);
        self.reporter.get_or_init(|| {
            tokio::spawn(report(Arc::downgrade(&self.counts), self.window, self.what));
        });
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let counts = &mut *counts;
        if let Some(seen) = counts.by_address.get_mut(&client) {
            *seen += 1;
            return;
        }
        if counts.by_address.len() >= caps::REFUSAL_LOG_ADDRESSES {
            counts.others += 1;
            return;
        }
        counts.by_address.insert(client, 1);
        tracing::warn!(
            %client,
            reason = why,
            "OMFLOW Basic Auth: {} from this address; further ones are logged \
             once a minute",
            self.what
        );
    }
}

/// Every `window`, one line per address refused in it; forgets addresses that
/// were quiet for a whole window. Ends with its [`RefusalLog`].
async fn report(counts: Weak<Mutex<Counts>>, window: Duration, what: &'static str) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(counts) = counts.upgrade() else {
            return;
        };
        let Ok(mut counts) = counts.lock() else {
            return;
        };
        let counts = &mut *counts;
        counts.by_address.retain(|client, refused| {
            if *refused == 0 {
                return false;
            }
            tracing::warn!(
                %client,
                refused = *refused,
                "{refused} requests refused from {client} in the last minute: {what}"
            );
            *refused = 0;
            true
        });
        if counts.others > 0 {
            tracing::warn!(
                refused = counts.others,
                "{} requests refused from other addresses in the last minute: {what}",
                counts.others
            );
            counts.others = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_each_address_and_forgets_quiet_ones() {
        let log = RefusalLog::new(Duration::from_millis(200), "a test");
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            log.refused(a, "throttled");
        }
        assert_eq!(log.counts.lock().unwrap().by_address[&a], 5);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(log.counts.lock().unwrap().by_address[&a], 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(log.counts.lock().unwrap().by_address.is_empty());
    }
}
