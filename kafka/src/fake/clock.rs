//! [`FakeClock`]: the manual clock of a [`super::FakeCluster`]. Session timeouts, the
//! `max.poll.interval.ms` of group members, rebalance timeouts and `transaction.timeout.ms` are
//! measured on it, never on the machine's clock, so a test decides when time passes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a new clock starts (ms since the epoch; 2023-11-14T22:13:20Z).
pub const CLOCK_START_MS: i64 = 1_700_000_000_000;

/// A clock that moves only when a test advances it. Cloning shares the clock.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now_ms: Arc<AtomicI64>,
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock { now_ms: Arc::new(AtomicI64::new(CLOCK_START_MS)) }
    }
}

impl FakeClock {
    /// A clock at [`CLOCK_START_MS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Milliseconds since the epoch, as the clock stands.
    pub fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    /// Moves the clock forward by `d` (whole milliseconds). The cluster applies the timeouts
    /// that fell due at its next operation; [`super::FakeCluster::advance`] applies them at once.
    pub fn advance(&self, d: Duration) {
        self.now_ms.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}
