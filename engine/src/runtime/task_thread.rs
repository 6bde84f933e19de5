//! A task's thread: runs the task's steps, takes part in checkpoints, and copies the task's
//! processing-log entries (with dead-letter and late-data records) out.
//!
//! At a checkpoint barrier the task flushes its operators into the epoch's state batch. On the
//! embedded log it hands the batch to the global checkpoint coordinator, which commits every
//! task's batch together; with a per-task committer (Kafka) it commits its own epoch first
//! (outputs, state and offsets in one transaction, then the local state) and reports an empty
//! batch, so that the coordinator only paces the epochs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use storage::{Header, KvStore, RecordIn, StateBatch, TopicLog};

use super::checkpoint::{Checkpointer, TaskKey};
use super::commit::{CommitError, TaskCommitter};
use super::query::QueryShared;
use super::signal::Signal;
use super::task::Task;
use crate::error::{error_chain, Result};
use crate::processing_log::{ProcessingError, PROCESSING_LOG_TOPIC};
use crate::types::Epoch;

/// Everything a task thread needs besides its task.
pub(crate) struct TaskThread {
    pub shared: Arc<QueryShared>,
    pub checkpoint_soon: Arc<AtomicBool>,
    pub ckpt: Arc<Checkpointer>,
    pub signal: Arc<Signal>,
    /// Where the processing log goes (never inside a task's transaction).
    pub log: Arc<dyn TopicLog>,
    pub dirty: Arc<AtomicBool>,
    pub draining: Arc<AtomicBool>,
    /// Source topic -> its dead-letter topic.
    pub dead_letters: Arc<HashMap<String, String>>,
    pub late_topic: Option<String>,
    /// Per-task commits (Kafka); `None`: the global checkpoint commits the task's batch.
    pub committer: Option<Box<dyn TaskCommitter>>,
    /// The state store (per-task commits write it after their transaction).
    pub state: Arc<dyn KvStore>,
    /// Stops this task alone, without a checkpoint (its partitions moved to another instance).
    pub task_stop: Arc<AtomicBool>,
    /// Why the task ended, for whoever restarts tasks (group membership).
    pub exit: Arc<parking_lot::Mutex<Option<TaskExit>>>,
}

/// Why a task with a committer of its own ended by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskExit {
    /// Another instance owns it now: start it again only when its partitions are assigned here
    /// again.
    Fenced,
    /// Its epoch could not commit, or the backend failed (a broker away): nothing of the epoch
    /// is visible, and the task can start over from its last commit. `committed`: it had
    /// committed an epoch before.
    Restart { reason: String, committed: bool },
}

impl TaskThread {
    /// Runs the task; a panic (a bug) fails the query instead of leaving the checkpointer
    /// waiting for a task that will never report.
    pub fn run_guarded(self, task: Task, done_epoch: u64) {
        let shared = self.shared.clone();
        let ckpt = self.ckpt.clone();
        let key: TaskKey = (task.info.query_id.clone(), task.info.subtopology, task.info.partition);
        let persistent = shared.persistent;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || self.run(task, done_epoch)));
        if let Err(p) = r {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            shared.fail(format!("internal error in task {}/{}: {msg}", key.1, key.2));
            if persistent {
                ckpt.deregister(&key);
            }
        }
    }

    /// A failure of the task: with a committer of its own (Kafka) the task ends and can start
    /// over from its last commit; otherwise the query fails.
    fn failed(&self, why: String, committed: bool) {
        if self.committer.is_some() {
            *self.exit.lock() = Some(TaskExit::Restart { reason: why, committed });
        } else {
            self.shared.fail(why);
        }
    }

    fn run(mut self, mut task: Task, mut done_epoch: u64) {
        let key: TaskKey = (task.info.query_id.clone(), task.info.subtopology, task.info.partition);
        let persistent = self.shared.persistent;
        let mut committed = false;
        if let Err(e) = task.open() {
            self.failed(error_chain(&e), false);
            if persistent {
                self.ckpt.deregister(&key);
            }
            if let Some(c) = self.committer.as_mut() {
                c.abort();
            }
            return;
        }
        loop {
            if task.wants_checkpoint {
                task.wants_checkpoint = false;
                self.checkpoint_soon.store(true, Ordering::Relaxed);
            }
            if self.shared.stop.load(Ordering::Relaxed) || self.shared.closed.load(Ordering::Relaxed) || self.task_stop.load(Ordering::Relaxed) {
                break;
            }
            if persistent {
                let req = self.ckpt.requested();
                if req > done_epoch {
                    let mut batch = StateBatch::default();
                    let inputs = match task.barrier(Epoch(req), &mut batch) {
                        Ok(i) => i,
                        Err(e) => {
                            self.failed(error_chain(&e), committed);
                            break;
                        }
                    };
                    if let Err(e) = self.flush_errors(&mut task) {
                        self.failed(error_chain(&e), committed);
                        break;
                    }
                    if let Some(c) = self.committer.as_mut() {
                        // The task's own commit first; the coordinator then only paces epochs.
                        let task_key = (key.1, key.2);
                        self.shared.committing.lock().insert(task_key, (req, std::time::Instant::now()));
                        let r = c.commit(Epoch(req), &batch, &inputs, self.state.as_ref());
                        self.shared.committing.lock().remove(&task_key);
                        match r {
                            Ok(()) => {
                                batch = StateBatch::default();
                                committed = true;
                            }
                            Err(CommitError::Fenced { .. }) => {
                                *self.exit.lock() = Some(TaskExit::Fenced);
                                break;
                            }
                            Err(e) => {
                                self.failed(error_chain(&e), committed);
                                break;
                            }
                        }
                    }
                    self.ckpt.report(key.clone(), batch);
                    self.ckpt.wait_released(req, &self.shared.stop);
                    done_epoch = req;
                    if self.draining.load(Ordering::Acquire) {
                        break;
                    }
                    continue;
                }
            }
            if self.shared.user_paused.load(Ordering::Relaxed) {
                self.signal.wait(Duration::from_millis(200));
                continue;
            }
            match task.step() {
                Ok(true) => {
                    self.dirty.store(true, Ordering::Relaxed);
                    if let Err(e) = self.flush_errors(&mut task) {
                        self.failed(error_chain(&e), committed);
                        break;
                    }
                    task.publish_progress();
                }
                Ok(false) => {
                    if let Err(e) = self.flush_errors(&mut task) {
                        self.failed(error_chain(&e), committed);
                        break;
                    }
                    task.publish_progress();
                    // A log that others append to (Kafka) is polled: its reads wait briefly.
                    if self.log.notifies_appends() {
                        self.signal.wait(Duration::from_millis(200));
                    }
                }
                Err(e) => {
                    self.failed(error_chain(&e), committed);
                    break;
                }
            }
        }
        if persistent {
            self.ckpt.deregister(&key);
        }
        // Whatever the task wrote after its last commit is dropped (the abort, too, waits for
        // the backend, and shows so).
        if let Some(c) = self.committer.as_mut() {
            self.shared.committing.lock().insert((key.1, key.2), (done_epoch + 1, std::time::Instant::now()));
            c.abort();
        }
        self.shared.committing.lock().remove(&(key.1, key.2));
    }

    /// Where the task's dead-letter and late-data records go: into its epoch.
    fn output(&self) -> Arc<dyn TopicLog> {
        match &self.committer {
            Some(c) => c.output(),
            None => self.log.clone(),
        }
    }

    /// Appends the task's processing-log entries to the processing-log topic, and the records
    /// they carry to the dead-letter and late-data topics. Those topics are outputs of the query
    /// like its sinks (a checkpoint records their ends and recovery cuts them back), so a failed
    /// write there fails the query as a failed sink write does.
    fn flush_errors(&self, task: &mut Task) -> Result<()> {
        if task.errors.is_empty() {
            return Ok(());
        }
        let mut errors: Vec<ProcessingError> = std::mem::take(&mut task.errors);
        for e in errors.iter_mut() {
            e.query_id = self.shared.id.clone();
            let Some(rec) = e.record.take() else { continue };
            let target = match e.kind {
                crate::processing_log::ErrorKind::LateRecord => self.late_topic.as_ref(),
                _ => e.topic.as_ref().and_then(|t| self.dead_letters.get(t)),
            };
            let Some(target) = target else { continue };
            let out = self.output();
            let partitions = out.describe_topic(target)?.config.partitions;
            let p = e.partition.unwrap_or(task.info.partition) % partitions.max(1);
            let headers = e.headers(&rec.headers);
            let r = RecordIn { timestamp: rec.timestamp, key: rec.key.as_deref(), value: rec.value.as_deref(), headers: &headers };
            out.append(target, p, &[r])?;
        }
        self.shared.errors.fetch_add(errors.len() as u64, Ordering::Relaxed);
        let late = errors.iter().filter(|e| e.kind == crate::processing_log::ErrorKind::LateRecord).count();
        self.shared.late.fetch_add(late as u64, Ordering::Relaxed);
        let values: Vec<Vec<u8>> = errors.iter().map(|e| serde_json::to_vec(e).unwrap_or_default()).collect();
        let now = chrono::Utc::now().timestamp_millis();
        let headers: [Header; 0] = [];
        let records: Vec<RecordIn<'_>> =
            values.iter().map(|v| RecordIn { timestamp: now, key: None, value: Some(v), headers: &headers }).collect();
        // The processing log is best effort: failing to write it must not stop the query.
        let _ = self.log.append(PROCESSING_LOG_TOPIC, 0, &records);
        Ok(())
    }
}
