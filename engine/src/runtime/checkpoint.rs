//! Global aligned checkpoints.
//!
//! A checkpoint pauses every persistent task at a batch boundary (each task sees the requested
//! epoch, calls `on_barrier` on its operators, adds its dirty state and next source offsets to the
//! epoch's write batch, reports, and waits). When every registered task has reported, the
//! coordinator adds the end offset of every sink partition and commits it all in one state-store
//! write. Since all tasks are paused, the offsets, the state and the sink positions form one
//! consistent cut: recovery cuts sink output after it and replays from the offsets, so nothing is
//! lost or duplicated, also along chains of queries.

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
    /// Attempts finished (committed or failed); tasks wait for this to pass their epoch.
    finished: u64,
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
                committed,
            }),
            cv: Condvar::new(),
            requested: AtomicU64::new(committed),
            run_lock: Mutex::new(()),
            last_duration_us: AtomicU64::new(0),
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

    /// Adds a task; returns the epoch it has "done" (it must report any later request).
    pub fn register(&self, key: TaskKey, signal: Arc<Signal>) -> u64 {
        let mut g = self.inner.lock();
        g.members.insert(key, signal);
        g.finished
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

    /// Blocks until the attempt for `epoch` has finished or `stop` is set.
    pub fn wait_finished(&self, epoch: u64, stop: &AtomicBool) {
        let mut g = self.inner.lock();
        while g.finished < epoch && !stop.load(Ordering::Relaxed) {
            self.cv.wait_for(&mut g, Duration::from_millis(50));
        }
    }

    /// Runs one checkpoint: waits for every task to report, then calls `commit` with the batch
    /// and the epoch. Returns the committed epoch.
    pub fn run(&self, commit: impl FnOnce(&mut StateBatch, Epoch) -> Result<()>) -> Result<Epoch> {
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
        let result = commit(&mut batch, Epoch(epoch));
        match &result {
            Ok(()) => g.committed = epoch,
            // Keep the writes: the next attempt commits them before its own.
            Err(_) => g.batch = batch,
        }
        g.finished = epoch;
        g.reported.clear();
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
