//! The wall clock the application reads for what expires (account lockouts), behind
//! a handle: `serve` reads the system clock, and a test moves a [`ManualClock`]
//! instead of sleeping until a lockout ends.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until it is moved: what a test gives the application
/// so that time passes exactly when, and as much as, the test says.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    /// Stands at `at`.
    pub fn starting_at(at: SystemTime) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    /// Moves every copy of this clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Default for ManualClock {
    /// Stands at the system clock's time of its creation.
    fn default() -> Self {
        Self::starting_at(SystemTime::now())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The clock a component reads, cheap to clone: the system clock unless a test
/// starts the application with another one.
#[derive(Clone)]
pub struct ClockHandle(Arc<dyn Clock>);

impl ClockHandle {
    pub fn new(clock: impl Clock + 'static) -> Self {
        Self(Arc::new(clock))
    }

    pub fn system() -> Self {
        Self::new(SystemClock)
    }

    pub fn now(&self) -> SystemTime {
        self.0.now()
    }

    /// Whole seconds since the Unix epoch, as lockouts are stored.
    pub fn unix_seconds(&self) -> i64 {
        unix_seconds(self.now())
    }
}

impl Default for ClockHandle {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClockHandle").field(&self.now()).finish()
    }
}

/// Whole seconds from the Unix epoch to `at` (0 before it, `i64::MAX` beyond).
pub fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_every_copy_with_it() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = ManualClock::starting_at(start);
        let handle = ClockHandle::new(clock.clone());
        assert_eq!(handle.now(), start);
        assert_eq!(handle.unix_seconds(), 1_700_000_000);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(handle.now(), start + Duration::from_millis(1500));
        assert_eq!(handle.unix_seconds(), 1_700_000_001);
    }

    #[test]
    fn seconds_before_the_epoch_are_zero() {
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(unix_seconds(UNIX_EPOCH), 0);
    }

    #[test]
    fn the_system_handle_follows_the_system_clock() {
        let before = SystemTime::now();
        let read = ClockHandle::system().now();
        assert!(read >= before && read <= SystemTime::now());
    }
}
