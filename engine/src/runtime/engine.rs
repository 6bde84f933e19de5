//! The [`Engine`]: owns the topic log, the state store and the running queries; starts and stops
//! queries, runs checkpoints (periodically and on demand) and recovers after a crash.
//!
//! Recovery on open: every sink partition recorded by the last checkpoint is cut back to its
//! recorded end offset (output written after the checkpoint is replayed instead); queries then
//! resume from their checkpointed source offsets when the planner restarts them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use parking_lot::{Mutex, RwLock};
use storage::{
    FileLog, FsyncPolicy, KvStore, LogOptions, Offset, PendingStore, RecordIn, RecoveryReport, RocksStore, StateBatch,
    StateOptions, TopicConfig, TopicLog,
};
use tokio::sync::mpsc;

use super::checkpoint::Checkpointer;
use super::commit::{ProcessingGuarantee, TaskCommitters};
use super::keys::{self, decode_i64, prefix_end, query_prefix, sink_key, EPOCH_KEY, SINK_PREFIX};
use super::pausing_log::PausingLog;
use super::query::{QueryInfo, QueryShared, QueryState, RunningQuery};
use super::signal::Signal;
use super::start::{run_member, QueryStart};
use crate::error::{EngineError, Result};
use crate::processing_log::PROCESSING_LOG_TOPIC;
use crate::registry::{EmbeddedRegistry, Registry};
use crate::spec::QuerySpec;
use crate::types::Epoch;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Time between periodic checkpoints.
    pub checkpoint_interval: Duration,
    /// Upper bound on the bytes of records a source reads into one batch.
    pub max_batch_bytes: usize,
    /// This instance's name among the instances that share the work (Kafka); `None` alone.
    pub instance_id: Option<String>,
    /// fsync every append to the log before it returns (user appends and query output alike).
    /// Either way, a checkpoint fsyncs the log and then commits the state store with a synced
    /// write, so that after a power loss the last checkpoint refers only to durable records.
    pub fsync: bool,
    /// Time between passes of the background cleaner (retention and compaction, see `retention.rs`).
    pub cleanup_interval: Duration,
    /// The schema registry of `AVRO`, `PROTOBUF` and `JSON_SR` records; `None`: the embedded
    /// one in the log's `_schemas` topic.
    pub registry: Option<Registry>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            checkpoint_interval: Duration::from_secs(1),
            max_batch_bytes: 1 << 20,
            fsync: false,
            cleanup_interval: Duration::from_secs(30),
            instance_id: None,
            registry: None,
        }
    }
}

/// Where a query without committed offsets starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// From the first record still in the log.
    Earliest,
    /// From the end: only records appended after the query starts.
    Latest,
}

/// How to start a query.
pub struct StartOptions {
    /// Persistent queries checkpoint and resume after restarts; push queries do not.
    pub persistent: bool,
    /// Start position when no committed offsets exist.
    pub offset_reset: OffsetReset,
    /// For push queries: where `Collect` nodes send their batches.
    pub collect: Option<mpsc::Sender<RecordBatch>>,
    /// What a persistent query asks of its commits (`processing.guarantee`); only a backend
    /// with per-task commits (Kafka) tells them apart.
    pub guarantee: ProcessingGuarantee,
    /// Under [`OffsetReset::Latest`]: where each source partition starts while the query has no
    /// committed position, as [`Engine::source_ends`] gave them when the statement was accepted
    /// (recorded with it, so that every instance, and a restart before the first commit, start
    /// there). `None`: the ends when the query starts.
    pub positions: Option<HashMap<(String, u32), Offset>>,
}

type Subscribers = RwLock<HashMap<(String, u32), Vec<Weak<Signal>>>>;

/// The runtime of one data directory.
pub struct Engine {
    pub(super) log: Arc<dyn TopicLog>,
    /// The state store: `pending` in front of the one opened.
    pub(super) state: Arc<dyn KvStore>,
    /// Where a checkpoint stages its batch for the tasks to read while it becomes durable.
    pending: Arc<PendingStore>,
    pub(super) registry: Registry,
    pub(super) config: EngineConfig,
    pub(super) queries: Mutex<BTreeMap<String, Arc<RunningQuery>>>,
    /// Threads stopping queries without being waited for ([`Engine::stop_query_nowait`]);
    /// `shutdown` joins them, so that no task touches the state after it.
    stopping: Mutex<Vec<std::thread::JoinHandle<()>>>,
    pub(super) subscribers: Arc<Subscribers>,
    pub(super) ckpt: Arc<Checkpointer>,
    pub(super) dirty: Arc<AtomicBool>,
    /// What [`Engine::processed`] was when the last staged checkpoint started: records counted
    /// before it are in that checkpoint's cut, readable in the state store.
    staged_processed: Arc<AtomicU64>,
    pub(super) checkpoint_soon: Arc<AtomicBool>,
    /// Wakes the checkpoint thread (a checkpoint is wanted now).
    checkpoint_wake: Arc<Signal>,
    pub(super) closing: Arc<AtomicBool>,
    /// Set by `shutdown`: persistent tasks exit right after their next checkpoint, so that
    /// nothing is written after the final one (output written after it would be cut and
    /// replayed on the next open).
    pub(super) draining: Arc<AtomicBool>,
    last_periodic: Mutex<Instant>,
    /// Time between periodic checkpoints in ms (`SET 'checkpoint.interval.ms'` changes it).
    interval_ms: AtomicU64,
    truncated: Vec<(String, u32, Offset, Offset)>,
    /// Partitions whose files the log repaired on open (torn tails cut, indexes rebuilt).
    repairs: Vec<RecoveryReport>,
    /// Per-task commits of a log that cannot be cut back (Kafka); `None` on the embedded log.
    committers: Option<Arc<dyn TaskCommitters>>,
    /// The guarantee each running persistent query got.
    guarantees: Mutex<HashMap<String, ProcessingGuarantee>>,
    /// Ids of the queries paused by the user (`PAUSE`); a query in the set starts paused.
    user_paused: Mutex<std::collections::HashSet<String>>,
    /// This engine, for the threads that start tasks later (group membership).
    me: Weak<Engine>,
    /// The background cleaner's state (retention and compaction, see `retention.rs`).
    pub(super) cleaner: super::retention::Cleaner,
    /// Failures of periodic checkpoints (see `health.rs`).
    pub(super) health: super::health::Health,
    /// Set once the fields above, the state store among them, are dropped (fields drop in
    /// order, so this one must stay last).
    dropped: DropSignal,
}

/// Sets its flag when dropped.
struct DropSignal(Arc<AtomicBool>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Engine {
    /// Opens (or creates) a data directory: the log under `topics/`, the state under `state/`.
    pub fn open(dir: &Path, config: EngineConfig) -> Result<Arc<Engine>> {
        let fsync = if config.fsync { FsyncPolicy::Always } else { FsyncPolicy::OnSync };
        let log = FileLog::open(&dir.join("topics"), LogOptions { fsync })?;
        let repairs: Vec<RecoveryReport> = log.recovery_report().iter().filter(|r| !r.is_clean()).cloned().collect();
        let state = Arc::new(RocksStore::open(&dir.join("state"), StateOptions::default())?);
        Self::build(Arc::new(log), state, config, repairs, None)
    }

    /// An engine over a given log and state store (tests use in-memory stores).
    pub fn with_parts(log: Arc<dyn TopicLog>, state: Arc<dyn KvStore>, config: EngineConfig) -> Result<Arc<Engine>> {
        Self::build(log, state, config, Vec::new(), None)
    }

    /// An engine over a log that cannot be cut back (Kafka), whose persistent tasks commit their
    /// epochs through `committers` (see [`super::commit`]); `state` is this instance's local state.
    pub fn with_committers(
        log: Arc<dyn TopicLog>,
        state: Arc<dyn KvStore>,
        config: EngineConfig,
        committers: Arc<dyn TaskCommitters>,
    ) -> Result<Arc<Engine>> {
        Self::build(log, state, config, Vec::new(), Some(committers))
    }

    fn build(
        log: Arc<dyn TopicLog>,
        state: Arc<dyn KvStore>,
        config: EngineConfig,
        repairs: Vec<RecoveryReport>,
        committers: Option<Arc<dyn TaskCommitters>>,
    ) -> Result<Arc<Engine>> {
        let pending = Arc::new(PendingStore::new(state));
        let state: Arc<dyn KvStore> = pending.clone();
        // Recovery: cut sink output written after the last checkpoint. A log that cannot be cut
        // (Kafka) gets exactly-once from transactions instead, and records no sink positions.
        let mut truncated = Vec::new();
        let positions: Vec<(Vec<u8>, Vec<u8>)> = if log.can_truncate() {
            state.scan(SINK_PREFIX, &prefix_end(SINK_PREFIX))?.collect::<storage::Result<_>>()?
        } else {
            Vec::new()
        };
        for (k, v) in positions {
            let (Some((topic, p)), Some(pos)) = (keys::parse_sink_key(&k), decode_i64(&v)) else { continue };
            let Ok(info) = log.describe_topic(&topic) else { continue };
            if let Some(part) = info.partitions.get(p as usize) {
                if part.end_offset > pos {
                    log.truncate(&topic, p, pos)?;
                    truncated.push((topic, p, pos, part.end_offset));
                }
            }
        }
        let committed = state.get(EPOCH_KEY)?.and_then(|v| decode_i64(&v)).unwrap_or(0) as u64;
        if log.describe_topic(PROCESSING_LOG_TOPIC).is_err() {
            log.create_topic(PROCESSING_LOG_TOPIC, &TopicConfig::new(1))?;
        }
        let subscribers: Arc<Subscribers> = Arc::new(RwLock::new(HashMap::new()));
        let subs = Arc::downgrade(&subscribers);
        log.add_listener(Arc::new(move |topic: &str, partition: u32, _end: Offset| {
            let Some(subs) = subs.upgrade() else { return };
            let g = subs.read();
            if let Some(list) = g.get(&(topic.to_string(), partition)) {
                for s in list.iter().filter_map(Weak::upgrade) {
                    s.notify();
                }
            }
        }));
        let interval_ms = config.checkpoint_interval.as_millis().max(1) as u64;
        let registry = match &config.registry {
            Some(r) => r.clone(),
            None => Registry(Arc::new(EmbeddedRegistry::open(log.clone()).map_err(|e| EngineError::Registry(e.to_string()))?)),
        };
        let engine = Arc::new_cyclic(|me| Engine {
            me: me.clone(),
            registry,
            log,
            state,
            pending,
            config,
            queries: Mutex::new(BTreeMap::new()),
            stopping: Mutex::new(Vec::new()),
            subscribers,
            ckpt: Arc::new(Checkpointer::new(committed)),
            dirty: Arc::new(AtomicBool::new(false)),
            staged_processed: Arc::new(AtomicU64::new(0)),
            checkpoint_soon: Arc::new(AtomicBool::new(false)),
            checkpoint_wake: Arc::default(),
            closing: Arc::new(AtomicBool::new(false)),
            draining: Arc::new(AtomicBool::new(false)),
            last_periodic: Mutex::new(Instant::now()),
            interval_ms: AtomicU64::new(interval_ms),
            truncated,
            repairs,
            committers,
            guarantees: Mutex::new(HashMap::new()),
            user_paused: Mutex::new(Default::default()),
            cleaner: Default::default(),
            health: Default::default(),
            dropped: DropSignal(Arc::new(AtomicBool::new(false))),
        });
        let weak = Arc::downgrade(&engine);
        std::thread::Builder::new()
            .name("eddy-checkpoint".into())
            .spawn(move || periodic_checkpoints(weak))
            .map_err(|e| EngineError::Storage(storage::StorageError::Io { path: "checkpoint thread".into(), source: e }))?;
        super::retention::spawn(Arc::downgrade(&engine), engine.config.cleanup_interval)
            .map_err(|e| EngineError::Storage(storage::StorageError::Io { path: "cleaner thread".into(), source: e }))?;
        Ok(engine)
    }

    /// A flag set once this engine is dropped, its state store included: what waits for the
    /// store to be closed before the process exits watches it.
    pub fn dropped_flag(&self) -> Arc<AtomicBool> {
        self.dropped.0.clone()
    }

    /// This instance's name among those that share the work (Kafka); `None` alone.
    pub fn instance_id(&self) -> Option<&str> {
        self.config.instance_id.as_deref()
    }

    /// True once `shutdown` began.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// The schema registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The topic log.
    pub fn log(&self) -> &Arc<dyn TopicLog> {
        &self.log
    }

    /// The state store.
    pub fn state(&self) -> &Arc<dyn KvStore> {
        &self.state
    }

    /// Sink partitions cut back on open: (topic, partition, kept end, old end).
    pub fn recovery_truncations(&self) -> &[(String, u32, Offset, Offset)] {
        &self.truncated
    }

    /// What opening the data directory repaired, one line per partition, for the operator's log:
    /// torn or corrupt log tails cut, index files rebuilt, and sink output written after the last
    /// checkpoint cut (it is written again when the queries replay). Empty after a clean shutdown.
    pub fn recovery_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for r in &self.repairs {
            let mut what = Vec::new();
            if r.truncated_bytes > 0 {
                what.push(format!("cut a torn or corrupt tail of {} bytes", r.truncated_bytes));
            }
            if !r.rebuilt_indexes.is_empty() {
                what.push(format!("rebuilt the indexes of {} segment(s)", r.rebuilt_indexes.len()));
            }
            notes.push(format!(
                "recovery: partition {} of topic \"{}\": {}; it now ends at offset {}",
                r.partition,
                r.topic,
                what.join(", "),
                r.end_offset
            ));
        }
        for (topic, p, kept, old) in &self.truncated {
            notes.push(format!(
                "recovery: partition {p} of topic \"{topic}\": cut {} record(s) written after the last checkpoint (offsets {kept}..{old}); the queries write them again",
                old - kept
            ));
        }
        notes
    }

    /// The time between periodic checkpoints.
    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Ordering::Relaxed))
    }

    /// Changes the time between periodic checkpoints (engine-wide, from the next one on).
    pub fn set_checkpoint_interval(&self, interval: Duration) {
        self.interval_ms.store(interval.as_millis().clamp(1, u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// The last committed checkpoint.
    pub fn committed_epoch(&self) -> Epoch {
        Epoch(self.ckpt.committed())
    }

    /// True when some query has processed records since the last checkpoint's cut (whose writes
    /// are readable, durable or not).
    pub fn is_dirty(&self) -> bool {
        // Not the periodic trigger (`dirty`), which a checkpoint clears when it starts: a reader
        // that saw it cleared could read state before that checkpoint's cut is readable.
        self.processed() != self.staged_processed.load(Ordering::Acquire)
    }

    /// Records read by the tasks of the running persistent queries. A task counts a batch before
    /// it publishes its new input position, so a reader that saw the position sees the count.
    fn processed(&self) -> u64 {
        let qs = self.queries.lock();
        qs.values()
            .filter(|q| q.shared.persistent)
            .flat_map(|q| q.tasks.lock().iter().map(|t| t.progress.records_in.load(Ordering::Acquire)).collect::<Vec<_>>())
            .sum()
    }

    /// Duration of the last checkpoint.
    pub fn last_checkpoint_duration(&self) -> Duration {
        Duration::from_micros(self.ckpt.last_duration_us.load(Ordering::Relaxed))
    }

    /// How long the last checkpoint paused the tasks: until its cut was taken and readable, not
    /// until it was durable ([`Engine::last_checkpoint_duration`]).
    pub fn last_checkpoint_pause(&self) -> Duration {
        Duration::from_micros(self.ckpt.last_pause_us.load(Ordering::Relaxed))
    }

    /// The first part of the last checkpoint's pause: until every task had reached its barrier
    /// and flushed its operators' state into the cut. The rest of the pause stages the cut.
    pub fn last_checkpoint_gather(&self) -> Duration {
        Duration::from_micros(self.ckpt.last_gather_us.load(Ordering::Relaxed))
    }

    /// When the last checkpoint that committed ended (ms since the Unix epoch); `None` before
    /// the first one since the engine opened.
    pub fn last_checkpoint_at_ms(&self) -> Option<u64> {
        Some(self.ckpt.last_committed_ms.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    /// Appends records on behalf of a user (INSERT VALUES, `eddy produce`). They are written to
    /// the operating system before this returns and fsynced at once with `fsync`, else by the
    /// next checkpoint (within the checkpoint interval). When a persistent query also writes the
    /// topic, a checkpoint follows, so that recovery never cuts an acknowledged record.
    pub fn append(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<Offset> {
        let off = self.log.append(topic, partition, records)?;
        if self.config.fsync {
            self.log.sync()?;
        } else {
            // Handed to the operating system (it survives a crash of the process); the next
            // periodic checkpoint, within the checkpoint interval, fsyncs it.
            self.dirty.store(true, Ordering::Relaxed);
        }
        let is_sink = self.queries.lock().values().any(|q| q.shared.persistent && q.spec.output_topics().iter().any(|t| t == topic));
        if is_sink {
            self.checkpoint()?;
        }
        Ok(off)
    }

    /// Starts a query. A persistent query resumes from its committed offsets when it has some;
    /// a checkpoint then records its starting point.
    pub fn start_query(&self, spec: QuerySpec, opts: StartOptions) -> Result<()> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(EngineError::ShuttingDown);
        }
        if self.queries.lock().contains_key(&spec.id) {
            return Err(EngineError::QueryExists(spec.id.clone()));
        }
        if opts.persistent {
            self.check_stored_plan(&spec)?;
        }
        let shared = Arc::new(QueryShared {
            id: spec.id.clone(),
            persistent: opts.persistent,
            stop: AtomicBool::new(false),
            closed: Arc::new(AtomicBool::new(false)),
            state: Mutex::new(QueryState::Running),
            records_out: Arc::new(AtomicU64::new(0)),
            errors: AtomicU64::new(0),
            late: AtomicU64::new(0),
            paused: Mutex::new(None),
            user_paused: AtomicBool::new(self.user_paused.lock().contains(&spec.id)),
            committing: Mutex::new(BTreeMap::new()),
            restoring: Mutex::new(BTreeMap::new()),
        });
        // Persistent queries pause on a full disk; push queries fail (their client sees why).
        let out_log: Arc<dyn TopicLog> = if opts.persistent {
            Arc::new(PausingLog { inner: self.log.clone(), query: shared.clone(), closing: self.closing.clone() })
        } else {
            self.log.clone()
        };
        // Only persistent queries copy records to dead-letter and late-data topics (a push query
        // run twice would copy them twice).
        let (dead_letters, late_topic) = if opts.persistent { spec.fault_topics() } else { (Vec::new(), None) };
        for (source, t) in dead_letters.iter().map(|(s, t)| (s, t)).chain(late_topic.iter().map(|t| (t, t))) {
            if self.log.describe_topic(t).is_err() {
                let partitions = self.log.describe_topic(source).map_or(1, |i| i.config.partitions);
                match self.log.create_topic(t, &TopicConfig::new(partitions)) {
                    Ok(()) | Err(storage::StorageError::TopicExists { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let dead_letters: Arc<HashMap<String, String>> = Arc::new(dead_letters.into_iter().collect());
        let layout = self.layout(&spec)?;
        let committers = match (&self.committers, opts.persistent) {
            (Some(c), true) => {
                let guarantee = c.resolve(opts.guarantee)?;
                let partitions: Vec<u32> = layout.iter().map(|l| l.1).collect();
                c.prepare(&spec, &partitions, guarantee)?;
                self.guarantees.lock().insert(spec.id.clone(), guarantee);
                Some((c.clone(), guarantee))
            }
            _ => None,
        };
        let membership = match &committers {
            Some((c, guarantee)) => c.join(&spec, &layout, *guarantee, self.state.clone())?.map(|m| Arc::new(Mutex::new(m))),
            None => None,
        };
        let latest = match (opts.offset_reset, opts.positions) {
            (OffsetReset::Latest, Some(positions)) => positions,
            (OffsetReset::Latest, None) => self.ends_of(&layout)?,
            (OffsetReset::Earliest, _) => HashMap::new(),
        };
        let start = QueryStart {
            spec: spec.clone(),
            persistent: opts.persistent,
            offset_reset: opts.offset_reset,
            collect: opts.collect,
            shared: shared.clone(),
            out_log,
            dead_letters,
            late_topic,
            committers,
            layout,
            latest,
        };
        let query = Arc::new(RunningQuery {
            spec: spec.clone(),
            shared: shared.clone(),
            tasks: Mutex::new(Vec::new()),
            start,
            member: Mutex::new(None),
            membership: membership.clone(),
        });
        match membership {
            // Instances share the query: its tasks start as their partitions are assigned here.
            Some(m) => {
                let (engine, q) = (self.me.clone(), Arc::downgrade(&query));
                let thread = std::thread::Builder::new()
                    .name(format!("eddy-{}-member", spec.id))
                    .spawn(move || run_member(engine, q, m))
                    .map_err(|e| EngineError::Storage(storage::StorageError::Io { path: "member thread".into(), source: e }))?;
                *query.member.lock() = Some(thread);
            }
            None => {
                for (sub, p) in query.start.all_tasks() {
                    if let Err(e) = self.spawn_task(&query, sub, p) {
                        query.stop();
                        return Err(e);
                    }
                }
            }
        }
        self.queries.lock().insert(spec.id.clone(), query);
        if opts.persistent {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Stops a query; with `delete_state`, also forgets its offsets and operator state.
    pub fn stop_query(&self, id: &str, delete_state: bool) -> Result<()> {
        let q = self.queries.lock().remove(id).ok_or_else(|| EngineError::UnknownQuery(id.to_string()))?;
        q.stop();
        if delete_state {
            let prefix = query_prefix(id);
            let mut b = StateBatch::default();
            b.delete_range(&prefix, &prefix_end(&prefix));
            // Forget the positions of the topics it wrote, unless another persistent query
            // writes them too (a later writer, e.g. INSERT VALUES, must not be cut back to them).
            if q.shared.persistent {
                let others: Vec<String> = self
                    .queries
                    .lock()
                    .values()
                    .filter(|o| o.shared.persistent)
                    .flat_map(|o| o.spec.output_topics())
                    .collect();
                for t in q.spec.output_topics().iter().filter(|t| !others.contains(t)) {
                    let from = sink_key(t, 0);
                    let to = sink_key(t, u32::MAX);
                    b.delete_range(&from, &to);
                    b.delete(&to);
                }
            }
            self.state.commit(&b, true)?;
            if let (Some(c), true) = (&self.committers, q.shared.persistent) {
                c.forget(id);
            }
        }
        self.guarantees.lock().remove(id);
        Ok(())
    }

    /// The guarantee a running persistent query got (`None` on the embedded log, whose
    /// checkpoints are always exactly-once, and for unknown queries).
    pub fn processing_guarantee(&self, id: &str) -> Option<ProcessingGuarantee> {
        self.guarantees.lock().get(id).copied()
    }

    /// The end of every partition of the topics `spec` reads, now: where a new query under
    /// [`OffsetReset::Latest`] starts (see [`StartOptions::positions`]).
    pub fn source_ends(&self, spec: &QuerySpec) -> Result<HashMap<(String, u32), Offset>> {
        self.ends_of(&self.layout(spec)?)
    }

    fn ends_of(&self, layout: &[(Vec<String>, u32)]) -> Result<HashMap<(String, u32), Offset>> {
        let mut ends = HashMap::new();
        for topic in layout.iter().flat_map(|(topics, _)| topics) {
            // An internal topic the query creates when it starts is empty: it starts at 0.
            let Ok(info) = self.log.describe_topic(topic) else { continue };
            for (p, part) in info.partitions.iter().enumerate() {
                ends.insert((topic.clone(), p as u32), part.end_offset);
            }
        }
        Ok(ends)
    }

    /// Stops a query without waiting for its threads (they finish their batch and exit).
    pub fn stop_query_nowait(&self, id: &str) {
        if let Some(q) = self.queries.lock().remove(id) {
            q.shared.stop.store(true, Ordering::Relaxed);
            let mut stopping = self.stopping.lock();
            stopping.retain(|h| !h.is_finished());
            match std::thread::Builder::new().name(format!("eddy-stop-{id}")).spawn({
                let q = q.clone();
                move || q.stop()
            }) {
                Ok(h) => stopping.push(h),
                // No thread to spare: stop it here.
                Err(_) => q.stop(),
            }
        }
    }

    /// Status and counters of every query.
    pub fn queries(&self) -> Vec<QueryInfo> {
        self.queries.lock().values().map(|q| self.with_health(q.info())).collect()
    }

    /// Pauses (`true`) or resumes a query (`PAUSE`/`RESUME`). A paused query reads no input
    /// and emits nothing, but keeps its state and position and takes part in checkpoints, so it
    /// continues exactly where it stopped. The setting also holds for the query when it is
    /// started later (after a restart).
    pub fn set_query_paused(&self, id: &str, paused: bool) {
        {
            let mut set = self.user_paused.lock();
            if paused {
                set.insert(id.to_string());
            } else {
                set.remove(id);
            }
        }
        if let Some(q) = self.queries.lock().get(id) {
            q.shared.user_paused.store(paused, Ordering::Relaxed);
            for t in q.tasks.lock().iter() {
                t.signal.notify();
            }
        }
    }

    /// Status and counters of one query.
    pub fn query(&self, id: &str) -> Option<QueryInfo> {
        self.queries.lock().get(id).map(|q| self.with_health(q.info()))
    }

    /// The plan a running query was started with.
    pub fn query_spec(&self, id: &str) -> Option<QuerySpec> {
        self.queries.lock().get(id).map(|q| q.spec.clone())
    }

    /// The view reading `table` from the aggregate state of running query `id`, with the
    /// partitions its tasks hold here, when the query computes the table that way (see
    /// [`crate::ops::aggregate::view`]).
    pub fn aggregate_view(&self, id: &str, table: &str) -> Result<Option<(crate::ops::aggregate::view::AggregateView, Vec<u32>)>> {
        let Some(q) = self.queries.lock().get(id).cloned() else { return Ok(None) };
        let Some(view) = crate::ops::aggregate::view::AggregateView::of(&q.spec, table)? else { return Ok(None) };
        // From the tasks, not the log: over Kafka describing the topics is a round trip.
        let sub = view.subtopology();
        let partitions = q.tasks.lock().iter().filter(|t| t.key.0 == sub).map(|t| t.key.1).collect();
        Ok(Some((view, partitions)))
    }

    /// As [`Engine::aggregate_view`], for the plan `spec` of a query that is not running: its
    /// state is read as its last checkpoint left it, in every partition of its inputs.
    pub fn aggregate_view_of(&self, spec: &QuerySpec, table: &str) -> Result<Option<(crate::ops::aggregate::view::AggregateView, Vec<u32>)>> {
        let Some(view) = crate::ops::aggregate::view::AggregateView::of(spec, table)? else { return Ok(None) };
        let mut partitions = 1;
        for t in view.source_topics() {
            partitions = partitions.max(self.log.describe_topic(t)?.config.partitions);
        }
        Ok(Some((view, (0..partitions).collect())))
    }

    fn with_health(&self, mut info: QueryInfo) -> QueryInfo {
        if info.persistent {
            info.checkpoint_error = self.health.persistent_error();
        }
        info
    }

    /// Per input partition of a query: (topic, partition, next offset to process); empty for
    /// an unknown query. Against the partition's end offset this is the query's lag (metrics).
    pub fn query_positions(&self, id: &str) -> Vec<(String, u32, Offset)> {
        let Some(q) = self.queries.lock().get(id).cloned() else { return Vec::new() };
        let tasks = q.tasks.lock();
        tasks
            .iter()
            .flat_map(|t| {
                let p = &t.progress;
                p.inputs.iter().zip(&p.positions).map(|((topic, part), pos)| (topic.clone(), *part, pos.load(Ordering::Acquire)))
            })
            .collect()
    }

    /// Runs a checkpoint now and returns its epoch.
    pub fn checkpoint(&self) -> Result<Epoch> {
        let sinks: Vec<String> = if !self.log.can_truncate() {
            Vec::new()
        } else {
            let qs = self.queries.lock();
            let mut v: Vec<String> = qs.values().filter(|q| q.shared.persistent).flat_map(|q| q.spec.output_topics()).collect();
            v.sort();
            v.dedup();
            v
        };
        self.dirty.store(false, Ordering::Relaxed);
        let processed = self.processed();
        let staged_processed = self.staged_processed.clone();
        let log = self.log.clone();
        let pending = self.pending.clone();
        self.ckpt.run(move |batch, epoch, release| {
            // Positions of topics no running query writes stay as they are: on open, queries are
            // restarted one by one, each with a checkpoint, and a crash in between must still cut
            // the output of the queries not restarted yet (their offsets are still the old ones).
            // `stop_query` with `delete_state` forgets a stopped query's positions.
            for t in &sinks {
                if let Ok(info) = log.describe_topic(t) {
                    for (p, part) in info.partitions.iter().enumerate() {
                        batch.put(&sink_key(t, p as u32), &part.end_offset.to_be_bytes());
                    }
                }
            }
            batch.put(EPOCH_KEY, &(epoch.0 as i64).to_be_bytes());
            // The log first: a committed checkpoint must never point past durable records. A log
            // that cannot be cut back (Kafka: a producer's flush, which would not end while the
            // tasks go on producing) syncs while the tasks are paused.
            let sync_first = !log.can_truncate();
            if sync_first {
                log.sync()?;
            }
            // The tasks go on once they can read the cut's writes; making it durable does not
            // pause them (a batch that fails stays staged and commits with the next one).
            pending.stage_then(std::mem::take(batch), || {
                staged_processed.store(processed, Ordering::Release);
                release();
            });
            pending.commit_staged(true, || if sync_first { Ok(()) } else { log.sync() })?;
            Ok(())
        })
    }

    /// Makes what the persistent queries have processed so far readable in the state store: asks
    /// for a checkpoint at once and waits until its cut is taken, not until it is durable (a
    /// pull query reads the state this way). After `close`, runs a whole checkpoint instead.
    pub fn checkpoint_readable(&self, timeout: Duration) -> Result<()> {
        if self.closing.load(Ordering::Relaxed) {
            return self.checkpoint().map(|_| ());
        }
        // The next cut holds everything processed before this call: if one is under way, its
        // tasks process nothing between their barrier and the release.
        let epoch = self.ckpt.released() + 1;
        self.checkpoint_soon.store(true, Ordering::Relaxed);
        self.checkpoint_wake.notify();
        if self.ckpt.wait_released_until(epoch, Instant::now() + timeout) {
            Ok(())
        } else {
            Err(EngineError::Timeout { what: "a checkpoint's cut".into(), ms: timeout.as_millis() as u64 })
        }
    }

    /// Waits until the given queries (all when `None`) have processed every record that was in
    /// their input partitions, also records produced meanwhile by upstream queries in the set.
    pub fn wait_caught_up(&self, ids: Option<&[String]>, timeout: Duration) -> Result<()> {
        self.wait_inputs(ids, timeout, false)
    }

    /// Like [`Engine::wait_caught_up`], against the ends the input partitions have when called:
    /// records appended later are not waited for, so a scan ends while writers keep writing.
    pub fn wait_read_to_current_end(&self, ids: Option<&[String]>, timeout: Duration) -> Result<()> {
        self.wait_inputs(ids, timeout, true)
    }

    fn wait_inputs(&self, ids: Option<&[String]>, timeout: Duration, once: bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        // Over a backend whose instances share a query's partitions, the tasks running elsewhere
        // are followed here as copies: wait for those too, and for the tasks owned here to run.
        let shared: Vec<Arc<RunningQuery>> = self
            .queries
            .lock()
            .values()
            .filter(|q| q.membership.is_some() && ids.is_none_or(|ids| ids.contains(&q.shared.id)))
            .cloned()
            .collect();
        for q in shared {
            let m = q.membership.clone().expect("a member");
            let mut begin = true;
            loop {
                let done = m.lock().catch_up_step(begin)?;
                begin = false;
                let owned = m.lock().local_tasks();
                let running: Vec<(usize, u32)> = q.tasks.lock().iter().map(|t| t.key).collect();
                let stopped = q.shared.stop.load(Ordering::Relaxed);
                if stopped || (done && owned.iter().all(|t| running.contains(t))) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(EngineError::Timeout { what: format!("the tasks of query {} on other instances", q.shared.id), ms: timeout.as_millis() as u64 });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut previous: Option<Vec<Offset>> = None;
        loop {
            let progress: Vec<_> = {
                let qs = self.queries.lock();
                qs.values()
                    .filter(|q| ids.is_none_or(|ids| ids.contains(&q.shared.id)))
                    .flat_map(|q| {
                        let alive = q.shared.clone();
                        q.tasks.lock().iter().map(move |t| (alive.clone(), t.progress.clone())).collect::<Vec<_>>()
                    })
                    .collect()
            };
            let mut targets = Vec::new();
            for (_, p) in &progress {
                for (topic, part) in &p.inputs {
                    let end = self.log.describe_topic(topic).ok().and_then(|i| i.partitions.get(*part as usize).map(|x| x.end_offset));
                    targets.push(end.unwrap_or(0));
                }
            }
            if previous.as_ref() == Some(&targets) {
                return Ok(());
            }
            loop {
                let mut k = 0;
                let mut done = true;
                for (q, p) in &progress {
                    // A paused query will not catch up: nothing waits for it.
                    let stopped = q.stop.load(Ordering::Relaxed) || q.user_paused.load(Ordering::Relaxed);
                    for pos in &p.positions {
                        if !stopped && pos.load(Ordering::Acquire) < targets[k] {
                            done = false;
                        }
                        k += 1;
                    }
                }
                if done {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(EngineError::Timeout { what: "queries to catch up".into(), ms: timeout.as_millis() as u64 });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if once {
                return Ok(());
            }
            previous = Some(targets);
        }
    }

    /// Final checkpoint, then stops every query. Queries resume when the engine is opened again.
    pub fn shutdown(&self) -> Result<()> {
        if self.closing.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        self.draining.store(true, Ordering::Release);
        let r = self.checkpoint();
        let qs: Vec<Arc<RunningQuery>> = std::mem::take(&mut *self.queries.lock()).into_values().collect();
        for q in qs {
            q.stop();
        }
        for h in std::mem::take(&mut *self.stopping.lock()) {
            let _ = h.join();
        }
        self.log.sync()?;
        // No task runs any more: let the state's background work finish now, not while the
        // process exits (RocksDB's threads would meet its torn-down statics: an abort).
        self.state.quiesce();
        r.map(|_| ())
    }
}

fn periodic_checkpoints(engine: Weak<Engine>) {
    loop {
        let interval = match engine.upgrade() {
            Some(e) => e.checkpoint_interval(),
            None => return,
        };
        let Some(wake) = engine.upgrade().map(|e| e.checkpoint_wake.clone()) else { return };
        wake.wait(interval.min(Duration::from_millis(10)));
        let Some(e) = engine.upgrade() else { return };
        if e.closing.load(Ordering::Relaxed) {
            return;
        }
        let soon = e.checkpoint_soon.swap(false, Ordering::Relaxed);
        // A failed checkpoint keeps its writes for the next one and is retried with backoff
        // (health.rs); queries go on meanwhile.
        if e.health.backing_off() && !soon {
            continue;
        }
        let due = e.dirty.load(Ordering::Relaxed) && e.last_periodic.lock().elapsed() >= interval;
        if soon || due || e.health.retry_due() {
            *e.last_periodic.lock() = Instant::now();
            e.periodic_checkpoint();
        }
    }
}
