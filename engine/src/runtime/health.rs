//! Checkpoint failures made visible: a periodic checkpoint that fails is logged with its cause,
//! counted, and retried with backoff (its writes are kept and committed by the next attempt, see
//! `checkpoint.rs`); once failures persist, every persistent query shows it as its state.
//!
//! Without this, a failing checkpoint left the periodic trigger cleared until new input arrived,
//! and nobody saw why output stopped being committed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Engine;
use crate::error::{error_chain, Result};
use crate::types::Epoch;

/// Consecutive failures after which queries show the failure as their state.
pub const PERSISTENT_FAILURES: u64 = 3;
/// First retry delay; it doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest delay between retries.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// What the periodic checkpoints went through (for `/metrics`, `SHOW QUERIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointHealth {
    /// Checkpoints that failed since the engine opened.
    pub failures_total: u64,
    /// Failures since the last successful checkpoint.
    pub consecutive_failures: u64,
    /// The cause of the last failure, while failures go on.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Failing {
    since: Option<Instant>,
    retry_at: Option<Instant>,
    delay: Duration,
    last_error: Option<String>,
}

/// The engine's record of checkpoint failures.
#[derive(Default)]
pub(crate) struct Health {
    failures_total: AtomicU64,
    consecutive: AtomicU64,
    failing: Mutex<Failing>,
}

impl Health {
    /// True when a failed checkpoint is due to be tried again.
    pub fn retry_due(&self) -> bool {
        self.failing.lock().retry_at.is_some_and(|t| Instant::now() >= t)
    }

    /// True while a failed checkpoint waits for its retry (no other periodic attempt meanwhile).
    pub fn backing_off(&self) -> bool {
        self.failing.lock().retry_at.is_some_and(|t| Instant::now() < t)
    }

    /// Records the outcome of a periodic checkpoint attempt.
    pub fn record(&self, r: &Result<Epoch>) {
        let mut f = self.failing.lock();
        match r {
            Ok(epoch) => {
                let n = self.consecutive.swap(0, Ordering::Relaxed);
                if n > 0 {
                    let secs = f.since.map_or(0.0, |s| s.elapsed().as_secs_f64());
                    eprintln!("eddy: checkpoint {} committed after {n} failed attempt(s) over {secs:.1} s", epoch.0);
                }
                *f = Failing::default();
            }
            Err(e) => {
                let n = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
                self.failures_total.fetch_add(1, Ordering::Relaxed);
                f.delay = if n == 1 { RETRY_MIN } else { (f.delay * 2).min(RETRY_MAX) };
                f.retry_at = Some(Instant::now() + f.delay);
                f.since.get_or_insert_with(Instant::now);
                let cause = error_chain(e);
                eprintln!("eddy: checkpoint failed (attempt {n}): {cause}; retrying in {} ms", f.delay.as_millis());
                f.last_error = Some(cause);
            }
        }
    }

    /// The counters and the last cause.
    pub fn snapshot(&self) -> CheckpointHealth {
        let f = self.failing.lock();
        CheckpointHealth {
            failures_total: self.failures_total.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            last_error: f.last_error.clone(),
        }
    }

    /// What persistent queries show as their state while checkpoints keep failing.
    pub fn persistent_error(&self) -> Option<String> {
        let n = self.consecutive.load(Ordering::Relaxed);
        if n < PERSISTENT_FAILURES {
            return None;
        }
        let f = self.failing.lock();
        let secs = f.since.map_or(0, |s| s.elapsed().as_secs());
        Some(format!("{n} attempts over {secs} s failed: {}; retrying", f.last_error.as_deref().unwrap_or("unknown cause")))
    }
}

impl Engine {
    /// How the periodic checkpoints fare: failures counted, the last cause while they go on.
    pub fn checkpoint_health(&self) -> CheckpointHealth {
        self.health.snapshot()
    }

    /// Runs a periodic checkpoint and records its outcome; a failure leaves the engine dirty so
    /// that the retry happens even without new input.
    pub(super) fn periodic_checkpoint(&self) {
        let r = self.checkpoint();
        if r.is_err() {
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.health.record(&r);
    }
}
