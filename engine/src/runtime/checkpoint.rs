//! Global aligned checkpoints.
//!
//! A checkpoint pauses every persistent task at a batch boundary (each task sees the requested
//! epoch, calls `on_barrier` on its operators, adds its dirty state and next source offsets to the
//! epoch's write batch, reports, and waits). When every registered task has reported, the
//! coordinator adds the end offset of every sink partition: since all tasks are paused, the
//! offsets, the state and the sink positions form one consistent cut. Recovery cuts sink output
//! after it and replays from the offsets, so nothing is lost or duplicated, also along chains of
//! queries.
//!
//! The pause ends as soon as the cut's writes are readable (the engine stages them in its
//! [`storage::PendingStore`] and calls `release`), not when they are durable: the fsync of the log
//! and the synced state write run while the tasks go on with the next epoch, whose output lies
//! after the cut's sink positions and is cut on recovery unless that epoch commits too. One
//! checkpoint runs at a time, so epochs commit in order.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use storage::StateBatch;

use super::signal::Signal;
use crate::error::Result;
use crate::types::Epoch;

/// Identity of a task: (query id, sub-topology, partition).
pub(crate) type TaskKey = (String, usize, u32);

struct Inner {
    members: HashMap<TaskKey, Arc<Signal>>,
    reported: HashSet<TaskKey>,
    batch: StateBatch,
    /// Attempts finished (committed or failed).
    finished: u64,
    /// Attempts whose cut is taken and readable; tasks wait for this to pass their epoch.
    released: u64,
    committed: u64,
}

/// Coordinates checkpoints across tasks.
pub(crate) struct Checkpointer {
    inner: Mutex<Inner>,
    cv: Condvar,
    requested: AtomicU64,
    run_lock: Mutex<()>,
    /// Duration of the last checkpoint in microseconds.
    pub last_duration_us: AtomicU64,
    /// How long the last checkpoint paused the tasks, in microseconds.
    pub last_pause_us: AtomicU64,
    /// How long the last checkpoint waited for every task to reach its barrier and flush its
    /// operators (the first part of the pause; the rest is staging the cut), in microseconds.
    pub last_gather_us: AtomicU64,
    /// When the last checkpoint that committed ended, in ms since the Unix epoch (0: none yet).
    pub last_committed_ms: AtomicU64,
}

impl Checkpointer {
    pub fn new(committed: u64) -> Self {
        Checkpointer {
            inner: Mutex::new(Inner {
                members: HashMap::new(),
                reported: HashSet::new(),
                batch: StateBatch::default(),
                finished: committed,
                released: committed,
                committed,
            }),
            cv: Condvar::new(),
            requested: AtomicU64::new(committed),
            run_lock: Mutex::new(()),
            last_duration_us: AtomicU64::new(0),
            last_pause_us: AtomicU64::new(0),
            last_gather_us: AtomicU64::new(0),
            last_committed_ms: AtomicU64::new(0),
        }
    }

    /// The epoch tasks should reach.
    pub fn requested(&self) -> u64 {
        self.requested.load(Ordering::Acquire)
    }

    /// The last committed epoch.
    pub fn committed(&self) -> u64 {
        self.inner.lock().committed
    }

    /// Adds a task; returns the epoch it has "done" (it must report any later request). A task
    /// added while a released epoch commits is not part of that epoch's cut.
    pub fn register(&self, key: TaskKey, signal: Arc<Signal>) -> u64 {
        let mut g = self.inner.lock();
        g.members.insert(key, signal);
        g.released
    }

    /// Removes a task (it stopped or failed).
    pub fn deregister(&self, key: &TaskKey) {
        let mut g = self.inner.lock();
        g.members.remove(key);
        g.reported.remove(key);
        self.cv.notify_all();
    }

    /// A task's contribution to the requested epoch.
    pub fn report(&self, key: TaskKey, batch: StateBatch) {
        let mut g = self.inner.lock();
        g.batch.extend(batch);
        g.reported.insert(key);
        self.cv.notify_all();
    }

    /// The last epoch whose cut is taken and readable.
    pub fn released(&self) -> u64 {
        self.inner.lock().released
    }

    /// Like [`Checkpointer::wait_released`], until `deadline`; false when it passed first.
    pub fn wait_released_until(&self, epoch: u64, deadline: Instant) -> bool {
        let mut g = self.inner.lock();
        while g.released < epoch {
            if self.cv.wait_until(&mut g, deadline).timed_out() {
                return g.released >= epoch;
            }
        }
        true
    }

    /// Blocks until the cut of `epoch` is taken and its writes are readable (the checkpoint may
    /// still be making them durable), or `stop` is set.
    pub fn wait_released(&self, epoch: u64, stop: &AtomicBool) {
        let mut g = self.inner.lock();
        while g.released < epoch && !stop.load(Ordering::Relaxed) {
            self.cv.wait_for(&mut g, Duration::from_millis(50));
        }
    }

    /// Runs one checkpoint: waits for every task to report, then calls `commit` with the batch,
    /// the epoch and `release`, which `commit` calls once the batch's writes are readable so that
    /// the tasks go on while it makes them durable (they go on when `commit` returns otherwise).
    /// Writes left in the batch by a failed `commit` are kept for the next attempt. Returns the
    /// committed epoch.
    pub fn run(&self, commit: impl FnOnce(&mut StateBatch, Epoch, &dyn Fn()) -> Result<()>) -> Result<Epoch> {
        let _one_at_a_time = self.run_lock.lock();
        let start = Instant::now();
        let mut g = self.inner.lock();
        let epoch = g.finished + 1;
        self.requested.store(epoch, Ordering::Release);
        for s in g.members.values() {
            s.notify();
        }
        while !g.members.keys().all(|k| g.reported.contains(k)) {
            self.cv.wait_for(&mut g, Duration::from_millis(20));
        }
        let mut batch = std::mem::take(&mut g.batch);
        g.reported.clear();
        drop(g);
        self.last_gather_us.store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        let release = || {
            let mut g = self.inner.lock();
            if g.released < epoch {
                g.released = epoch;
                self.cv.notify_all();
                self.last_pause_us.store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        };
        let result = commit(&mut batch, Epoch(epoch), &release);
        release();
        let mut g = self.inner.lock();
        match &result {
            Ok(()) => g.committed = epoch,
            // Keep the writes: the next attempt commits them before its own.
            Err(_) => {
                let newer = std::mem::replace(&mut g.batch, batch);
                g.batch.extend(newer);
            }
        }
        g.finished = epoch;
        self.cv.notify_all();
        drop(g);
        self.last_duration_us.store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        if result.is_ok() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
            self.last_committed_ms.store(now, Ordering::Relaxed);
        }
        result.map(|()| Epoch(epoch))
    }
}
