//! A running query: its task threads, status and counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::signal::Signal;
use super::task::TaskProgress;
use crate::spec::QuerySpec;

/// Lifecycle state of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryState {
    /// Processing.
    Running,
    /// Stopped by an error that is not about a single row; the message says why.
    Error(String),
}

/// What `SHOW QUERIES` and `DESCRIBE EXTENDED` show about a query.
#[derive(Debug, Clone)]
pub struct QueryInfo {
    /// Query id.
    pub id: String,
    /// True for persistent queries.
    pub persistent: bool,
    /// Its state.
    pub state: QueryState,
    /// Topics read.
    pub source_topics: Vec<String>,
    /// Topics written.
    pub sink_topics: Vec<String>,
    /// Records read.
    pub records_in: u64,
    /// Records written.
    pub records_out: u64,
    /// Rows dropped or nulled by errors (processing-log entries), late records included.
    pub errors: u64,
    /// Records dropped because they arrived after their window's grace period.
    pub late_records: u64,
    /// Number of tasks.
    pub tasks: usize,
    /// Set while the query waits for disk space: why (it resumes by itself).
    pub paused: Option<String>,
    /// The tasks this instance runs: (sub-topology, partition, per input: topic, partition and
    /// next offset to process).
    pub task_status: Vec<TaskStatus>,
    /// Paused by the user (`PAUSE`): it reads nothing until resumed, and keeps its state.
    pub user_paused: bool,
    /// Set while the engine's checkpoints keep failing (persistent queries): how often, for how
    /// long and why. The query goes on; its progress is committed once a checkpoint succeeds.
    pub checkpoint_error: Option<String>,
}

/// One task of a query as `SHOW QUERIES EXTENDED` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    /// Sub-topology.
    pub subtopology: usize,
    /// Partition.
    pub partition: u32,
    /// Per input partition: (topic, partition, next offset to process).
    pub inputs: Vec<(String, u32, i64)>,
    /// Per node of the sub-topology, in node order: what went through it on this instance
    /// since the task started here.
    pub nodes: Vec<NodeStats>,
}

/// What went through one node of a task (counters since the task started on this instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// The node's index in its sub-topology.
    pub node: usize,
    /// Rows received (for a source: records read and decoded).
    pub rows_in: u64,
    /// Rows emitted.
    pub rows_out: u64,
    /// Batches received.
    pub batches: u64,
    /// Rows dropped or nulled with a processing-log entry, late rows included (for a source:
    /// records that did not decode).
    pub errors: u64,
    /// Rows dropped because their window had closed.
    pub late: u64,
}

pub(crate) struct TaskHandle {
    /// (sub-topology, partition).
    pub key: (usize, u32),
    pub thread: Option<JoinHandle<()>>,
    pub signal: Arc<Signal>,
    pub progress: Arc<TaskProgress>,
    /// Stops this task alone (its partitions moved to another instance).
    pub stop: Arc<AtomicBool>,
    /// Why it ended by itself, when it did.
    pub exit: Arc<Mutex<Option<super::task_thread::TaskExit>>>,
}

/// Shared between the engine and a query's task threads.
pub(crate) struct QueryShared {
    pub id: String,
    pub persistent: bool,
    pub stop: AtomicBool,
    /// Set by a push query's collector when its client has gone.
    pub closed: Arc<AtomicBool>,
    pub state: Mutex<QueryState>,
    pub records_out: Arc<AtomicU64>,
    pub errors: AtomicU64,
    pub late: AtomicU64,
    /// Why the query waits (a full disk), while it does.
    pub paused: Mutex<Option<String>>,
    /// Paused by the user: tasks take part in checkpoints but read no input.
    pub user_paused: AtomicBool,
    /// Commits of its tasks in progress (a task's own, over Kafka): task -> since when. One
    /// that takes long (a broker that went away) is shown as why the query waits.
    pub committing: Mutex<std::collections::BTreeMap<(usize, u32), (u64, std::time::Instant)>>,
    /// Tasks restoring their state from a changelog, with how far they are.
    pub restoring: Mutex<std::collections::BTreeMap<(usize, u32), Arc<super::commit::RestoreProgress>>>,
}

/// A commit in progress longer than this shows in SHOW QUERIES as why the query waits.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl QueryShared {
    pub fn set_paused(&self, why: Option<String>) {
        *self.paused.lock() = why;
    }

    pub fn fail(&self, message: String) {
        let mut s = self.state.lock();
        if *s == QueryState::Running {
            *s = QueryState::Error(message);
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(crate) struct RunningQuery {
    pub spec: QuerySpec,
    pub shared: Arc<QueryShared>,
    pub tasks: Mutex<Vec<TaskHandle>>,
    /// What builds its tasks.
    pub start: super::start::QueryStart,
    /// The thread of its group membership, when instances share its partitions.
    pub member: Mutex<Option<JoinHandle<()>>>,
    /// Its group membership (the member thread polls it; pull queries wait on its copies).
    pub membership: Option<Arc<Mutex<Box<dyn super::commit::QueryMembership>>>>,
}

impl RunningQuery {
    /// Why the query waits while tasks restore their state: `restoring task 0/1 from its
    /// changelog: offset 1200 of 0..5000`.
    fn restoring(&self) -> Option<String> {
        let restoring = self.shared.restoring.lock();
        let parts: Vec<String> = restoring
            .iter()
            .map(|((s, p), r)| {
                let (start, at, end) = (r.start.load(Ordering::Relaxed), r.at.load(Ordering::Relaxed), r.end.load(Ordering::Relaxed));
                format!("task {s}/{p} at changelog offset {at} of {start}..{end}")
            })
            .collect();
        (!parts.is_empty()).then(|| format!("restoring state: {}", parts.join(", ")))
    }

    pub fn info(&self) -> QueryInfo {
        let tasks = self.tasks.lock();
        QueryInfo {
            id: self.shared.id.clone(),
            persistent: self.shared.persistent,
            state: self.shared.state.lock().clone(),
            source_topics: self.spec.source_topics(),
            sink_topics: self.spec.sink_topics(),
            records_in: tasks.iter().map(|t| t.progress.records_in.load(Ordering::Relaxed)).sum(),
            records_out: self.shared.records_out.load(Ordering::Relaxed),
            errors: self.shared.errors.load(Ordering::Relaxed),
            late_records: self.shared.late.load(Ordering::Relaxed),
            tasks: tasks.len(),
            paused: self.shared.paused.lock().clone().or_else(|| self.restoring()).or_else(|| {
                let committing = self.shared.committing.lock();
                let slow = committing.iter().filter(|(_, (_, since))| since.elapsed() > SLOW_COMMIT).max_by_key(|(_, (_, since))| since.elapsed());
                slow.map(|((s, p), (epoch, since))| {
                    format!("waiting for the backend: the commit of task {s}/{p}'s epoch {epoch} has taken {} s so far", since.elapsed().as_secs())
                })
            }),
            task_status: tasks
                .iter()
                .map(|t| TaskStatus {
                    subtopology: t.key.0,
                    partition: t.key.1,
                    inputs: t
                        .progress
                        .inputs
                        .iter()
                        .zip(&t.progress.positions)
                        .map(|((topic, p), pos)| (topic.clone(), *p, pos.load(Ordering::Acquire)))
                        .collect(),
                    nodes: t.progress.nodes.iter().enumerate().map(|(i, c)| c.snapshot(i)).collect(),
                })
                .collect(),
            user_paused: self.shared.user_paused.load(Ordering::Relaxed),
            checkpoint_error: None,
        }
    }

    /// Stops the task threads (and the membership) and waits for them.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(m) = self.member.lock().take() {
            let _ = m.join();
        }
        let mut tasks = self.tasks.lock();
        for t in tasks.iter() {
            t.signal.notify();
        }
        for t in tasks.iter_mut() {
            if let Some(h) = t.thread.take() {
                let _ = h.join();
            }
        }
    }
}
