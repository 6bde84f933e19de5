//! A task: one partition of one sub-topology, run by one thread.
//!
//! The task reads its source partitions round-robin, pushes each decoded batch through its
//! operators in topological order, and advances stream time (the largest event time seen),
//! which reaches the operators as a watermark after each batch. At a checkpoint barrier it lets
//! every operator flush its state and adds its next source offsets to the epoch's write batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::compute::kernels::aggregate::max;
use storage::{KvStore, StateBatch, TopicLog};

use super::keys::offset_key;
use super::source::SourceReader;
use crate::batch::ts_column;
use crate::error::{EngineError, Result};
use crate::operator::{Message, OpContext, Operator, TaskInfo};
use crate::processing_log::ProcessingError;
use crate::types::{Epoch, EventTime, Watermark};

/// Progress a task publishes for others (catch-up waits, metrics).
pub(crate) struct TaskProgress {
    /// Per source reader: (topic, partition).
    pub inputs: Vec<(String, u32)>,
    /// Per source reader: the next offset to read (everything before it has been processed).
    pub positions: Vec<AtomicI64>,
    /// Records read.
    pub records_in: AtomicU64,
    /// Per node of the sub-topology (by index): what went through it.
    pub nodes: Vec<NodeCounters>,
}

/// What went through one node of a task, counted once per batch (relaxed atomics: the
/// console and `/api/queries` read them while the task runs).
#[derive(Default)]
pub(crate) struct NodeCounters {
    /// Rows received (for a source: records read and decoded).
    pub rows_in: AtomicU64,
    /// Rows emitted.
    pub rows_out: AtomicU64,
    /// Batches received (for a source: batches read).
    pub batches: AtomicU64,
    /// Rows the node dropped or nulled with a processing-log entry, late rows included (for a
    /// source: records that did not decode).
    pub errors: AtomicU64,
    /// Rows dropped because their window had closed.
    pub late: AtomicU64,
}

impl NodeCounters {
    /// A snapshot for `QueryInfo`.
    pub fn snapshot(&self, node: usize) -> super::query::NodeStats {
        super::query::NodeStats {
            node,
            rows_in: self.rows_in.load(Ordering::Relaxed),
            rows_out: self.rows_out.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
        }
    }

    fn count_errors(&self, new: &[ProcessingError]) {
        if !new.is_empty() {
            let late = new.iter().filter(|e| e.kind == crate::processing_log::ErrorKind::LateRecord).count();
            self.errors.fetch_add(new.len() as u64, Ordering::Relaxed);
            self.late.fetch_add(late as u64, Ordering::Relaxed);
        }
    }
}

/// Rows in the batches among `msgs`.
fn rows_of(msgs: &[Message]) -> u64 {
    msgs.iter().map(|m| if let Message::Batch(b) = m { b.num_rows() as u64 } else { 0 }).sum()
}

/// A running instance of a sub-topology for one partition.
pub(crate) struct Task {
    pub info: TaskInfo,
    ops: Vec<Option<Box<dyn Operator>>>,
    downstream: Vec<Vec<(usize, usize)>>,
    sources: Vec<SourceReader>,
    stream_time: i64,
    log: Arc<dyn TopicLog>,
    pub errors: Vec<ProcessingError>,
    /// The epoch's writes made between barriers ([`OpContext::writes_ahead`]), handed over
    /// at the next barrier.
    writes: StateBatch,
    pub progress: Arc<TaskProgress>,
    max_bytes: usize,
    state: Arc<dyn KvStore>,
    /// An operator asked for a checkpoint.
    pub wants_checkpoint: bool,
    /// Per source: rows read but not yet processed.
    pending: Vec<Option<Pending>>,
    /// Per source: the offset of the first row not yet processed.
    resume: Vec<i64>,
    /// Per source: the position `step` reached, published by `publish_progress` once the
    /// step's processing-log and dead-letter records are written.
    reached: Vec<i64>,
}

/// Rows of one source read ahead of processing (to order several sources by event time).
struct Pending {
    batch: datafusion::arrow::record_batch::RecordBatch,
    /// Offset of each row.
    offsets: Vec<i64>,
    /// Next row to process.
    cursor: usize,
    /// The source's offset after the batch.
    after: i64,
}

impl Task {
    /// Assembles a task. `ops[i]` is `None` for source nodes; `inputs[i]` lists node i's upstream
    /// nodes in input order.
    pub fn new(
        info: TaskInfo,
        ops: Vec<Option<Box<dyn Operator>>>,
        inputs: &[Vec<usize>],
        sources: Vec<SourceReader>,
        log: Arc<dyn TopicLog>,
        state: Arc<dyn KvStore>,
        max_bytes: usize,
    ) -> Self {
        let mut downstream = vec![Vec::new(); ops.len()];
        for (to, ins) in inputs.iter().enumerate() {
            for (ix, &from) in ins.iter().enumerate() {
                downstream[from].push((to, ix));
            }
        }
        let sources_len = sources.len();
        let resume_from: Vec<i64> = sources.iter().map(|s| s.next_offset).collect();
        let progress = Arc::new(TaskProgress {
            inputs: sources.iter().map(|s| (s.topic().to_string(), s.partition())).collect(),
            positions: sources.iter().map(|s| AtomicI64::new(s.next_offset)).collect(),
            records_in: AtomicU64::new(0),
            nodes: (0..ops.len()).map(|_| NodeCounters::default()).collect(),
        });
        Task {
            info,
            ops,
            downstream,
            sources,
            stream_time: i64::MIN,
            log,
            errors: Vec::new(),
            writes: StateBatch::default(),
            progress,
            max_bytes,
            state,
            wants_checkpoint: false,
            pending: (0..sources_len).map(|_| None).collect(),
            reached: resume_from.clone(),
            resume: resume_from,
        }
    }

    /// Calls `open` on every operator.
    pub fn open(&mut self) -> Result<()> {
        let state = self.state.clone();
        for i in 0..self.ops.len() {
            if let Some(op) = self.ops[i].as_mut() {
                let mut out = Vec::new();
                let mut cx = OpContext {
                    out: &mut out,
                    errors: &mut self.errors,
                    task: &self.info,
                    stream_time: self.stream_time,
                    state: state.as_ref(),
                    batch: None,
                    wants_checkpoint: &mut self.wants_checkpoint,
                };
                op.open(&mut cx).map_err(|e| EngineError::Operator { op: op.name(), source: Box::new(e) })?;
            }
        }
        Ok(())
    }

    /// Processes the next rows. With one source: its next batch. With several (joins): rows in
    /// event-time order across sources, as Kafka Streams picks the input whose head record is
    /// oldest. Returns false when no source had anything new.
    pub fn step(&mut self) -> Result<bool> {
        let n = self.sources.len();
        // Refill the sources whose buffered rows are used up.
        for i in 0..n {
            if self.pending[i].is_none() {
                let src = &mut self.sources[i];
                let errors_before = self.errors.len();
                let polled = src.poll(self.log.as_ref(), self.max_bytes, &mut self.errors)?;
                let counters = &self.progress.nodes[src.node];
                counters.count_errors(&self.errors[errors_before..]);
                if let Some((b, _)) = &polled {
                    counters.batches.fetch_add(1, Ordering::Relaxed);
                    counters.rows_in.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
                }
                match polled {
                    Some((batch, offsets)) if batch.num_rows() > 0 => {
                        self.pending[i] = Some(Pending { batch, offsets, cursor: 0, after: src.next_offset });
                    }
                    Some(_) => {
                        // Every record failed to decode: nothing to process, but progress made.
                        self.resume[i] = src.next_offset;
                        self.reached[i] = src.next_offset;
                        return Ok(true);
                    }
                    None => self.reached[i] = src.next_offset,
                }
            }
        }
        // The source with the oldest head row; its rows up to the next-oldest head go now.
        let mut best: Option<(usize, i64)> = None;
        for (i, p) in self.pending.iter().enumerate() {
            if let Some(p) = p {
                let t = ts_column(&p.batch).value(p.cursor);
                if best.is_none_or(|(_, bt)| t < bt) {
                    best = Some((i, t));
                }
            }
        }
        let Some((i, _)) = best else { return Ok(false) };
        let limit = self
            .pending
            .iter()
            .enumerate()
            .filter(|(j, p)| *j != i && p.is_some())
            .map(|(_, p)| {
                let p = p.as_ref().expect("some");
                ts_column(&p.batch).value(p.cursor)
            })
            .min();
        let p = self.pending[i].as_mut().expect("chosen");
        let ts = ts_column(&p.batch);
        let mut end = p.cursor + 1;
        if let Some(limit) = limit {
            while end < p.batch.num_rows() && ts.value(end) <= limit {
                end += 1;
            }
        } else {
            end = p.batch.num_rows();
        }
        let slice = if p.cursor == 0 && end == p.batch.num_rows() { p.batch.clone() } else { p.batch.slice(p.cursor, end - p.cursor) };
        p.cursor = end;
        let position = if end == p.batch.num_rows() { p.after } else { p.offsets[end] };
        if end == p.batch.num_rows() {
            self.pending[i] = None;
        }
        let node = self.sources[i].node;
        let rows = slice.num_rows() as u64;
        let batch_max = if rows > 0 { max(ts_column(&slice)) } else { None };
        self.progress.nodes[node].rows_out.fetch_add(rows, Ordering::Relaxed);
        let mut msgs = vec![Message::Batch(slice)];
        if let Some(m) = batch_max {
            if m > self.stream_time {
                self.stream_time = m;
                msgs.push(Message::Watermark(Watermark(EventTime(m))));
            }
        }
        self.route(node, msgs)?;
        self.progress.records_in.fetch_add(rows, Ordering::Relaxed);
        self.resume[i] = position;
        self.reached[i] = position;
        Ok(true)
    }

    /// Publishes the positions the steps so far reached. The caller writes the steps' `errors`
    /// first: whoever waits for a query to catch up (pull queries, tests) then finds its
    /// processing-log and dead-letter records too.
    pub fn publish_progress(&self) {
        for (p, &r) in self.progress.positions.iter().zip(&self.reached) {
            p.store(r, Ordering::Release);
        }
    }

    /// Flushes every operator for `epoch` and adds the next source offsets to `batch`; returns
    /// them too, as (topic, partition, next offset) per source.
    pub fn barrier(&mut self, epoch: Epoch, batch: &mut StateBatch) -> Result<Vec<(String, u32, storage::Offset)>> {
        // What the operators wrote ahead comes first: their barrier writes may overwrite it.
        batch.extend(std::mem::take(&mut self.writes));
        for i in 0..self.ops.len() {
            let mut out = Vec::new();
            if let Some(op) = self.ops[i].as_mut() {
                let state = self.state.clone();
                let mut cx = OpContext {
                    out: &mut out,
                    errors: &mut self.errors,
                    task: &self.info,
                    stream_time: self.stream_time,
                    state: state.as_ref(),
                    batch: Some(&mut *batch),
                    wants_checkpoint: &mut self.wants_checkpoint,
                };
                let errors_before = cx.errors.len();
                op.on_barrier(epoch, &mut cx).map_err(|e| EngineError::Operator { op: op.name(), source: Box::new(e) })?;
                let counters = &self.progress.nodes[i];
                counters.count_errors(&self.errors[errors_before..]);
                counters.rows_out.fetch_add(rows_of(&out), Ordering::Relaxed);
            }
            if !out.is_empty() {
                self.route(i, out)?;
            }
        }
        let mut inputs = Vec::with_capacity(self.sources.len());
        for (ix, s) in self.sources.iter().enumerate() {
            let key = offset_key(&self.info.query_id, self.info.subtopology, ix, s.partition());
            // Rows read but not yet processed are read again after a restart.
            let next = if self.pending[ix].is_some() { self.resume[ix] } else { s.next_offset };
            batch.put(&key, &next.to_be_bytes());
            inputs.push((s.topic().to_string(), s.partition(), next));
        }
        Ok(inputs)
    }

    /// Delivers messages emitted by node `from` to its downstream nodes, breadth first.
    fn route(&mut self, from: usize, msgs: Vec<Message>) -> Result<()> {
        let mut queue: VecDeque<(usize, Message)> = msgs.into_iter().map(|m| (from, m)).collect();
        while let Some((from, msg)) = queue.pop_front() {
            let targets = self.downstream[from].clone();
            let last = targets.len().saturating_sub(1);
            let mut msg = Some(msg);
            for (k, (to, input)) in targets.into_iter().enumerate() {
                let m = if k == last { msg.take().expect("message") } else { msg.clone().expect("message") };
                let mut out = Vec::new();
                let op = self.ops[to].as_mut().expect("only sources have no operator, and nothing feeds a source");
                let mut cx = OpContext {
                    out: &mut out,
                    errors: &mut self.errors,
                    task: &self.info,
                    stream_time: self.stream_time,
                    state: self.state.as_ref(),
                    batch: self.info.persistent.then_some(&mut self.writes),
                    wants_checkpoint: &mut self.wants_checkpoint,
                };
                let errors_before = cx.errors.len();
                let counters = &self.progress.nodes[to];
                let r = match m {
                    Message::Batch(b) => {
                        counters.batches.fetch_add(1, Ordering::Relaxed);
                        counters.rows_in.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
                        op.on_batch(input, b, &mut cx)
                    }
                    Message::Watermark(w) => op.on_watermark(w, &mut cx),
                };
                r.map_err(|e| EngineError::Operator { op: op.name(), source: Box::new(e) })?;
                counters.count_errors(&self.errors[errors_before..]);
                match op.records_written() {
                    Some(n) => counters.rows_out.store(n, Ordering::Relaxed),
                    None => _ = counters.rows_out.fetch_add(rows_of(&out), Ordering::Relaxed),
                }
                queue.extend(out.into_iter().map(|m| (to, m)));
            }
        }
        Ok(())
    }
}
