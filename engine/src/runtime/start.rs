//! Starting and stopping the tasks of a query: one task per (sub-topology, partition), each on its
//! own thread.
//!
//! On the embedded log a query starts all its tasks at once. Over a backend whose instances share
//! a query's partitions (Kafka consumer groups, see [`super::commit::QueryMembership`]), a
//! member thread per query starts a task when this instance owns every input partition it reads
//! (partition p of each source topic of its sub-topology) and stops it, without a checkpoint,
//! when one of them is revoked: the new owner fences it and goes on from its last commit.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use storage::{Offset, TopicLog};
use tokio::sync::mpsc;

use super::checkpoint::TaskKey;
use super::commit::{Ownership, ProcessingGuarantee, QueryMembership, TaskCommitter, TaskCommitters};
use super::engine::{Engine, OffsetReset};
use super::keys::{decode_i64, offset_key};
use super::query::{QueryShared, RunningQuery, TaskHandle};
use super::signal::Signal;
use super::source::SourceReader;
use super::task::Task;
use super::task_thread::{TaskExit, TaskThread};
use crate::error::{error_chain, EngineError, Result};
use crate::operator::{Operator, TaskInfo};
use crate::ops::{
    AggregateOp, CollectOp, FilterOp, ForeignKeyJoinOp, MaterializeOp, ProjectOp, SinkOp, StreamStreamJoinOp, StreamTableJoinOp,
    TableTableJoinOp,
};
use crate::spec::{JoinKindSpec, OpSpec, QuerySpec};

/// Everything needed to build a task of a running query, now or when its partitions come.
pub(crate) struct QueryStart {
    pub spec: QuerySpec,
    pub persistent: bool,
    pub offset_reset: OffsetReset,
    pub collect: Option<mpsc::Sender<RecordBatch>>,
    pub shared: Arc<QueryShared>,
    /// Where sinks write when the task has no committer of its own.
    pub out_log: Arc<dyn TopicLog>,
    /// Source topic -> its dead-letter topic.
    pub dead_letters: Arc<HashMap<String, String>>,
    pub late_topic: Option<String>,
    /// Per-task commits, with the guarantee the query got.
    pub committers: Option<(Arc<dyn TaskCommitters>, ProcessingGuarantee)>,
    /// Per sub-topology: its source topics and its number of partitions.
    pub layout: Vec<(Vec<String>, u32)>,
    /// Under [`OffsetReset::Latest`]: the end of every source partition when the query started.
    /// A task without a committed position starts there, whenever its partition comes to it (over
    /// Kafka, seconds later, after the group assigned it), so that what was written after the
    /// statement returned is read.
    pub latest: HashMap<(String, u32), Offset>,
}

impl QueryStart {
    /// Every task of the query: (sub-topology, partition).
    pub fn all_tasks(&self) -> Vec<(usize, u32)> {
        self.layout.iter().enumerate().flat_map(|(s, (_, n))| (0..*n).map(move |p| (s, p))).collect()
    }
}

impl Engine {
    /// The source topics and partition count of each sub-topology; an error when the sources of
    /// one sub-topology have different partition counts (they are read together, partition by
    /// partition).
    pub(super) fn layout(&self, spec: &QuerySpec) -> Result<Vec<(Vec<String>, u32)>> {
        let mut out = Vec::new();
        for dag in &spec.subtopologies {
            let mut counts = Vec::new();
            for n in &dag.nodes {
                if let OpSpec::Source(s) = &n.op {
                    counts.push((s.topic.clone(), self.log.describe_topic(&s.topic)?.config.partitions));
                }
            }
            let partitions = counts.first().map(|c| c.1).unwrap_or(1);
            if counts.iter().any(|c| c.1 != partitions) {
                let topics: Vec<String> = counts.iter().map(|(t, n)| format!("\"{t}\" ({n})")).collect();
                return Err(EngineError::PartitionMismatch { topics: topics.join(", ") });
            }
            out.push((counts.into_iter().map(|c| c.0).collect(), partitions));
        }
        Ok(out)
    }

    /// Builds task (`sub`, `p`): restores its state first when it commits on its own, then reads
    /// its start offsets and makes its operators.
    fn build_task(&self, st: &QueryStart, sub: usize, p: u32) -> Result<(Task, Option<Box<dyn TaskCommitter>>)> {
        let spec = &st.spec;
        let dag = &spec.subtopologies[sub];
        let inputs: Vec<Vec<usize>> = dag.nodes.iter().map(|n| n.inputs.iter().map(|i| i.0 as usize).collect()).collect();
        let info = TaskInfo { query_id: spec.id.clone(), subtopology: sub, partition: p, persistent: st.persistent };
        // Per-task commits: the local state catches up with the committed epochs before the start
        // offsets are read from it, and the task's outputs go into its epochs.
        let mut committer = match &st.committers {
            Some((c, guarantee)) => Some(c.task(&info, &st.layout[sub].0, *guarantee)?),
            None => None,
        };
        if let Some(c) = committer.as_mut() {
            let progress = c.restore_progress();
            if let Some(r) = &progress {
                st.shared.restoring.lock().insert((sub, p), r.clone());
            }
            let restored = c.restore(self.state.as_ref());
            if progress.is_some() {
                st.shared.restoring.lock().remove(&(sub, p));
            }
            restored?;
        }
        let task_out: Arc<dyn TopicLog> = committer.as_ref().map_or_else(|| st.out_log.clone(), |c| c.output());
        let mut ops: Vec<Option<Box<dyn Operator>>> = Vec::new();
        let mut sources = Vec::new();
        for (i, n) in dag.nodes.iter().enumerate() {
            let op: Option<Box<dyn Operator>> = match &n.op {
                OpSpec::Source(s) => {
                    let start = self.start_offset(st, sub, sources.len(), &s.topic, p)?;
                    sources.push(SourceReader::new(i, s.clone(), n.schema.clone(), p, start, &self.registry)?);
                    None
                }
                OpSpec::Filter(f) => Some(Box::new(FilterOp::new(f.clone()))),
                OpSpec::Project(pr) => Some(Box::new(ProjectOp::new(pr.clone(), n.schema.clone()))),
                OpSpec::Sink(s) => {
                    // A table read from its aggregate's state keeps no rows of its own.
                    let mut s = s.clone();
                    if crate::ops::aggregate::view::serves_from_state(dag, i) {
                        s.materialize = None;
                    }
                    Some(Box::new(SinkOp::new(s, task_out.clone(), st.shared.records_out.clone(), &self.registry)?))
                }
                OpSpec::Aggregate(a) => {
                    let input = &dag.nodes[n.inputs[0].0 as usize].schema;
                    Some(Box::new(AggregateOp::new(a.clone(), input, n.schema.clone())?))
                }
                OpSpec::Materialize(m) => Some(Box::new(MaterializeOp::new(m.clone(), n.schema.clone())?)),
                OpSpec::Explode(e) => Some(Box::new(crate::ops::ExplodeOp::new(e.clone(), n.schema.clone()))),
                OpSpec::Join(j) => {
                    let l = &dag.nodes[n.inputs[0].0 as usize].schema;
                    let r = &dag.nodes[n.inputs[1].0 as usize].schema;
                    let op: Box<dyn Operator> = match j.kind {
                        JoinKindSpec::StreamTable => Box::new(StreamTableJoinOp::new(j.clone(), l, r, n.schema.clone())?),
                        JoinKindSpec::StreamStream { .. } => Box::new(StreamStreamJoinOp::new(j.clone(), l, r, n.schema.clone())?),
                        JoinKindSpec::TableTable => Box::new(TableTableJoinOp::new(j.clone(), l, r, n.schema.clone())?),
                        JoinKindSpec::ForeignKey => Box::new(ForeignKeyJoinOp::new(j.clone(), l, r, n.schema.clone())?),
                    };
                    Some(op)
                }
                OpSpec::Collect => {
                    let tx = st.collect.clone().expect("a push query has a collect channel");
                    Some(Box::new(CollectOp::new(tx, st.shared.closed.clone())))
                }
            };
            ops.push(op);
        }
        let task = Task::new(info, ops, &inputs, sources, self.log.clone(), self.state.clone(), self.config.max_batch_bytes);
        Ok((task, committer))
    }

    fn start_offset(&self, st: &QueryStart, sub: usize, source: usize, topic: &str, p: u32) -> Result<Offset> {
        if st.persistent {
            if let Some(v) = self.state.get(&offset_key(&st.spec.id, sub, source, p))? {
                if let Some(o) = decode_i64(&v) {
                    return Ok(o);
                }
            }
        }
        let info = self.log.describe_topic(topic)?;
        let part = info.partitions[p as usize];
        Ok(match st.offset_reset {
            OffsetReset::Earliest => part.start_offset,
            OffsetReset::Latest => st.latest.get(&(topic.to_string(), p)).copied().unwrap_or(part.end_offset),
        })
    }

    /// Builds task (`sub`, `p`) of `query` and starts its thread.
    pub(super) fn spawn_task(&self, query: &RunningQuery, sub: usize, p: u32) -> Result<()> {
        let st = &query.start;
        let (task, committer) = self.build_task(st, sub, p)?;
        let signal = Arc::new(Signal::default());
        {
            let mut subs = self.subscribers.write();
            for input in task.progress.inputs.iter() {
                subs.entry(input.clone()).or_default().push(Arc::downgrade(&signal));
            }
        }
        let progress = task.progress.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let exit = Arc::new(parking_lot::Mutex::new(None));
        let ctx = TaskThread {
            shared: st.shared.clone(),
            checkpoint_soon: self.checkpoint_soon.clone(),
            ckpt: self.ckpt.clone(),
            signal: signal.clone(),
            log: st.out_log.clone(),
            dirty: self.dirty.clone(),
            draining: self.draining.clone(),
            dead_letters: st.dead_letters.clone(),
            late_topic: st.late_topic.clone(),
            committer,
            state: self.state.clone(),
            task_stop: stop.clone(),
            exit: exit.clone(),
        };
        let name = format!("eddy-{}-{}-{}", st.spec.id, sub, p);
        let key: TaskKey = (st.spec.id.clone(), sub, p);
        // Register before the thread starts so that a checkpoint cannot miss the task.
        let done = if st.persistent { self.ckpt.register(key, signal.clone()) } else { 0 };
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || ctx.run_guarded(task, done))
            .map_err(|e| EngineError::Storage(storage::StorageError::Io { path: "task thread".into(), source: e }))?;
        query.tasks.lock().push(TaskHandle { key: (sub, p), thread: Some(thread), signal, progress, stop, exit });
        Ok(())
    }

    /// The tasks of `query` that ended by themselves, with why; they are taken out of the query.
    fn ended_tasks(&self, query: &RunningQuery) -> Vec<((usize, u32), Option<TaskExit>)> {
        let mut out = Vec::new();
        let mut tasks = query.tasks.lock();
        let mut i = 0;
        while i < tasks.len() {
            if tasks[i].thread.as_ref().is_some_and(|t| t.is_finished()) {
                let mut h = tasks.remove(i);
                if let Some(t) = h.thread.take() {
                    let _ = t.join();
                }
                let why = h.exit.lock().take();
                out.push((h.key, why));
            } else {
                i += 1;
            }
        }
        out
    }

    /// Stops task (`sub`, `p`) of `query` without a checkpoint and waits for its thread; what it
    /// did since its last commit is dropped (the next owner does it again).
    pub(super) fn stop_task(&self, query: &RunningQuery, sub: usize, p: u32) {
        let handle = {
            let mut tasks = query.tasks.lock();
            let i = tasks.iter().position(|t| t.key == (sub, p));
            i.map(|i| tasks.remove(i))
        };
        if let Some(mut h) = handle {
            h.stop.store(true, Ordering::Relaxed);
            h.signal.notify();
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// How long the member thread waits in one poll of the group.
const MEMBER_POLL: Duration = Duration::from_millis(20);
/// The longest wait before a failed task starts again. A task is started again for as long as
/// it fails (as ksqlDB retries a failed persistent query): a broker that is away for minutes
/// pauses the query, with the reason and the attempts in SHOW QUERIES, and it goes on from its
/// last commit when the broker is back.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The pause before a task starts again after its `n`-th failure in a row: 200 ms, doubling, at
/// most [`MAX_BACKOFF`].
fn backoff(n: u32) -> Duration {
    (Duration::from_millis(100) * 2u32.pow(n.min(6))).min(MAX_BACKOFF)
}

/// Runs a query's group membership on this instance: starts the tasks whose input partitions
/// are all assigned here, stops those losing one, and starts again (after a growing pause) the
/// tasks that ended because the backend failed, until the query stops. A task that was fenced
/// waits until its partitions are assigned here again.
pub(super) fn run_member(engine: Weak<Engine>, query: Weak<RunningQuery>, membership: Arc<parking_lot::Mutex<Box<dyn QueryMembership>>>) {
    let mut owned: BTreeSet<(String, u32)> = BTreeSet::new();
    let mut running: BTreeSet<(usize, u32)> = BTreeSet::new();
    // Tasks not to start before their partitions are assigned again.
    let mut fenced: BTreeSet<(usize, u32)> = BTreeSet::new();
    // Tasks to start again, with their failures in a row and when.
    let mut retry: HashMap<(usize, u32), (u32, Instant)> = HashMap::new();
    let mut group_down = false;
    loop {
        let (Some(engine), Some(q)) = (engine.upgrade(), query.upgrade()) else { break };
        if q.start.shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let polled = membership.lock().poll(MEMBER_POLL);
        let changes = match polled {
            Ok(c) => c,
            Err(e) => {
                // The group is unreachable for now: the tasks this instance has keep running (a
                // rebalance elsewhere fences them if they lose their partitions), and the member
                // tries again.
                q.start.shared.set_paused(Some(format!("waiting for the consumer group: {}", error_chain(&e))));
                group_down = true;
                drop((engine, q));
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        if group_down {
            group_down = false;
            q.start.shared.set_paused(None);
        }
        for change in changes {
            match change {
                Ownership::Revoked(tps) => {
                    let lost: Vec<(usize, u32)> = running
                        .iter()
                        .copied()
                        .filter(|(s, p)| q.start.layout[*s].0.iter().any(|t| tps.contains(&(t.clone(), *p))))
                        .collect();
                    for (s, p) in lost {
                        engine.stop_task(&q, s, p);
                        running.remove(&(s, p));
                    }
                    for tp in tps {
                        owned.remove(&tp);
                    }
                }
                Ownership::Assigned(tps) => {
                    fenced.retain(|(s, p)| !q.start.layout[*s].0.iter().any(|t| tps.contains(&(t.clone(), *p))));
                    owned.extend(tps);
                }
            }
        }
        for (key, why) in engine.ended_tasks(&q) {
            running.remove(&key);
            match why {
                Some(TaskExit::Fenced) => {
                    fenced.insert(key);
                }
                Some(TaskExit::Restart { reason, committed }) => {
                    let n = if committed { 1 } else { retry.get(&key).map_or(1, |r| r.0 + 1) };
                    let times = if n > 1 { format!(" ({n} failures in a row)") } else { String::new() };
                    q.start.shared.set_paused(Some(format!("task {}/{} starts again{times}: {reason}", key.0, key.1)));
                    let wait = backoff(n);
                    retry.insert(key, (n, Instant::now() + wait));
                }
                // Stopped with its query.
                None => {}
            }
        }
        if matches!(*q.start.shared.state.lock(), super::query::QueryState::Error(_)) {
            break;
        }
        for (s, p) in q.start.all_tasks() {
            let key = (s, p);
            if running.contains(&key) || fenced.contains(&key) || retry.get(&key).is_some_and(|r| Instant::now() < r.1) {
                continue;
            }
            if q.start.layout[s].0.iter().all(|t| owned.contains(&(t.clone(), p))) {
                match engine.spawn_task(&q, s, p) {
                    Ok(()) => {
                        running.insert(key);
                        if retry.remove(&key).is_some() && retry.is_empty() {
                            q.start.shared.set_paused(None);
                        }
                    }
                    Err(e) => {
                        let n = retry.get(&key).map_or(1, |r| r.0 + 1);
                        let times = if n > 1 { format!(" ({n} attempts)") } else { String::new() };
                        q.start.shared.set_paused(Some(format!("task {s}/{p} cannot start yet{times}: {}", error_chain(&e))));
                        let wait = backoff(n);
                        retry.insert(key, (n, Instant::now() + wait));
                    }
                }
            }
        }
    }
    membership.lock().leave();
}
