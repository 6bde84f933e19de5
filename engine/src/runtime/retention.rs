//! The background cleaner: applies every topic's `cleanup.policy`, `retention.ms` and
//! `retention.bytes` to the topic log while queries run, and keeps what each pass did for
//! `SHOW TOPICS EXTENDED`, `DESCRIBE EXTENDED` and `/metrics`.
//!
//! A pass never removes a record that a query still needs. Per topic partition it computes a
//! floor, the lowest of:
//! - for every persistent query reading it, the source offset of its last committed checkpoint
//!   (a query that has none yet protects the whole partition): after a crash the query replays
//!   from there;
//! - for every push query reading it, the offset it has read up to;
//! - for every topic a persistent query writes, the end offset recorded by the last checkpoint:
//!   recovery cuts output written after it, so nothing after it may be compacted away;
//! - for a query that has state but does not run (refused at start, see `plans.rs`), the
//!   checkpointed offsets of the topics its stored plan reads: it resumes from there later (a
//!   pass whose floors cannot be told fails, cleaning nothing, and every topic shows why);
//! - every sink position a checkpoint recorded (also of writers that do not run): recovery cuts
//!   back to it on the next open.
//!
//! and the log deletes or compacts only closed segments wholly below it (see
//! `storage::CleanRequest`). Repartition topics (the internal topics between the sub-topologies
//! of a query) are also emptied of every segment their reader has consumed and checkpointed past,
//! as Kafka Streams purges them. Appends and reads go on during a pass: the log swaps segments
//! under a short lock, and the floors are read from the state store without stopping any task.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use storage::{CleanRequest, Offset, RetentionReport};

use super::keys::{decode_i64, offset_key, parse_sink_key, prefix_end, query_prefix, sink_key, SINK_PREFIX};
use super::query::RunningQuery;
use super::Engine;
use crate::error::{error_chain, EngineError, Result};
use crate::spec::OpSpec;

/// What the cleaner last did to one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupStatus {
    /// When the last pass over the topic ran (ms since the epoch).
    pub last_run_ms: i64,
    /// What the last pass removed.
    pub last: RetentionReport,
    /// When a pass last removed something (ms since the epoch), if one did since the engine opened.
    pub last_removed_ms: Option<i64>,
    /// Everything removed from the topic since the engine opened.
    pub total: RetentionReport,
    /// Why the last pass over the topic failed, if it did (the next pass tries again).
    pub error: Option<String>,
}

/// Engine-wide counters of the cleaner (for `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanerStats {
    /// Passes run (over every topic).
    pub passes: u64,
    /// Topic passes that failed.
    pub failures: u64,
    /// Everything removed since the engine opened.
    pub total: RetentionReport,
    /// Duration of the last pass.
    pub last_pass: Duration,
}

/// The cleaner's state, shared by the engine and its thread.
#[derive(Default)]
pub(crate) struct Cleaner {
    statuses: Mutex<BTreeMap<String, CleanupStatus>>,
    /// One pass at a time (the thread and `Engine::clean_now`).
    running: Mutex<()>,
    passes: AtomicU64,
    failures: AtomicU64,
    last_pass_us: AtomicU64,
    /// Set once the queries of the data directory have been restarted: before that the floors
    /// of queries not yet running are unknown, so no pass runs.
    enabled: AtomicBool,
}

/// Floors of one pass: per (topic, partition) the first offset to keep.
#[derive(Debug, Default)]
struct Floors {
    floors: HashMap<(String, u32), Offset>,
    /// Repartition topics with a reader: consumed segments go.
    consumed: HashSet<String>,
}

impl Floors {
    fn lower(&mut self, topic: &str, partition: u32, offset: Offset) {
        let f = self.floors.entry((topic.to_string(), partition)).or_insert(Offset::MAX);
        *f = (*f).min(offset);
    }
}

fn add(total: &mut RetentionReport, r: &RetentionReport) {
    total.segments_deleted += r.segments_deleted;
    total.records_compacted += r.records_compacted;
    total.bytes_freed += r.bytes_freed;
}

impl Engine {
    /// Lets the background cleaner run (the planner calls it once every persistent query of the
    /// data directory has been restarted, so that their checkpointed offsets are known).
    pub fn enable_cleaner(&self) {
        self.cleaner.enabled.store(true, Ordering::Release);
    }

    /// Runs one cleaning pass over every topic now, with `now_ms` as the current time, and
    /// returns what it removed. Per-topic failures are recorded in [`Engine::cleanup_status`] and
    /// counted; the first one is also returned, after every topic had its turn.
    pub fn clean_now(&self, now_ms: i64) -> Result<RetentionReport> {
        let _one = self.cleaner.running.lock();
        let start = Instant::now();
        let floors = match self.floors() {
            Ok(f) => f,
            Err(e) => {
                // Nothing is cleaned; every topic shows why.
                let why = error_chain(&e);
                let mut statuses = self.cleaner.statuses.lock();
                for topic in self.log.list_topics() {
                    let s = statuses.entry(topic).or_default();
                    s.last_run_ms = now_ms;
                    s.last = RetentionReport::default();
                    s.error = Some(why.clone());
                }
                self.cleaner.failures.fetch_add(1, Ordering::Relaxed);
                self.cleaner.passes.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let mut report = RetentionReport::default();
        let mut first_error = None;
        for topic in self.log.list_topics() {
            let Ok(info) = self.log.describe_topic(&topic) else { continue };
            let request = CleanRequest {
                now_ms,
                floors: (0..info.config.partitions)
                    .map(|p| floors.floors.get(&(topic.clone(), p)).copied().unwrap_or(Offset::MAX))
                    .collect(),
                delete_consumed: floors.consumed.contains(&topic),
            };
            let r = self.log.clean_topic(&topic, &request);
            let mut statuses = self.cleaner.statuses.lock();
            let s = statuses.entry(topic.clone()).or_default();
            s.last_run_ms = now_ms;
            match r {
                Ok(r) => {
                    if r != RetentionReport::default() {
                        s.last_removed_ms = Some(now_ms);
                    }
                    add(&mut s.total, &r);
                    add(&mut report, &r);
                    s.last = r;
                    s.error = None;
                }
                Err(e) => {
                    self.cleaner.failures.fetch_add(1, Ordering::Relaxed);
                    s.last = RetentionReport::default();
                    s.error = Some(error_chain(&e));
                    first_error.get_or_insert(e);
                }
            }
        }
        self.cleaner.passes.fetch_add(1, Ordering::Relaxed);
        self.cleaner.last_pass_us.store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        match first_error {
            Some(e) => Err(EngineError::Storage(e)),
            None => Ok(report),
        }
    }

    /// What the cleaner last did to `topic`; `None` before its first pass over it.
    pub fn cleanup_status(&self, topic: &str) -> Option<CleanupStatus> {
        self.cleaner.statuses.lock().get(topic).cloned()
    }

    /// Engine-wide counters of the cleaner.
    pub fn cleaner_stats(&self) -> CleanerStats {
        let mut total = RetentionReport::default();
        for s in self.cleaner.statuses.lock().values() {
            add(&mut total, &s.total);
        }
        CleanerStats {
            passes: self.cleaner.passes.load(Ordering::Relaxed),
            failures: self.cleaner.failures.load(Ordering::Relaxed),
            total,
            last_pass: Duration::from_micros(self.cleaner.last_pass_us.load(Ordering::Relaxed)),
        }
    }

    /// The floors of every partition some query reads or a persistent query writes.
    fn floors(&self) -> Result<Floors> {
        let queries: Vec<Arc<RunningQuery>> = self.queries.lock().values().cloned().collect();
        let mut f = Floors::default();
        for q in &queries {
            for dag in &q.spec.subtopologies {
                for n in &dag.nodes {
                    if let OpSpec::Sink(s) = &n.op {
                        if s.internal {
                            f.consumed.insert(s.topic.clone());
                        }
                    }
                }
            }
            if !q.shared.persistent {
                for t in q.tasks.lock().iter() {
                    let p = &t.progress;
                    for ((topic, part), pos) in p.inputs.iter().zip(&p.positions) {
                        f.lower(topic, *part, pos.load(Ordering::Acquire));
                    }
                }
                continue;
            }
            for (sub, dag) in q.spec.subtopologies.iter().enumerate() {
                let sources = dag.nodes.iter().filter_map(|n| match &n.op {
                    OpSpec::Source(s) => Some(&s.topic),
                    _ => None,
                });
                for (ix, topic) in sources.enumerate() {
                    let Ok(info) = self.log.describe_topic(topic) else { continue };
                    for p in 0..info.config.partitions {
                        // No checkpoint yet: keep everything.
                        let committed = self.state.get(&offset_key(&q.spec.id, sub, ix, p))?;
                        f.lower(topic, p, committed.and_then(|v| decode_i64(&v)).unwrap_or(0));
                    }
                }
            }
            for topic in q.spec.output_topics() {
                let Ok(info) = self.log.describe_topic(&topic) else { continue };
                for p in 0..info.config.partitions {
                    let committed = self.state.get(&sink_key(&topic, p))?;
                    f.lower(&topic, p, committed.and_then(|v| decode_i64(&v)).unwrap_or(0));
                }
            }
        }
        // Queries with state that do not run (refused at start, or defined by a skipped command):
        // their stored plan says which topics their checkpointed offsets belong to. It is read
        // leniently, so that a plan this release cannot run still protects its input; a query
        // whose input cannot be told at all stops every pass (counted, shown per topic).
        let running: HashSet<&str> = queries.iter().map(|q| q.spec.id.as_str()).collect();
        for id in self.stored_query_ids()? {
            if running.contains(id.as_str()) || !self.has_offsets(&id)? {
                continue;
            }
            let blocked = |why: String| EngineError::CleanerBlocked { query: id.clone(), why };
            let subs = match self.stored_plan_sources(&id) {
                Ok(Some(subs)) => subs,
                Ok(None) => return Err(blocked("it has no stored plan".into())),
                Err(e) => return Err(blocked(error_chain(&e))),
            };
            for (sub, topics) in subs.iter().enumerate() {
                for (ix, topic) in topics.iter().enumerate() {
                    let Ok(info) = self.log.describe_topic(topic) else { continue };
                    for p in 0..info.config.partitions {
                        if let Some(o) = self.state.get(&offset_key(&id, sub, ix, p))?.and_then(|v| decode_i64(&v)) {
                            f.lower(topic, p, o);
                        }
                    }
                }
            }
        }
        // Every position a checkpoint recorded for a topic some query wrote: recovery may cut
        // back to it.
        let sinks: Vec<(Vec<u8>, Vec<u8>)> = self.state.scan(SINK_PREFIX, &prefix_end(SINK_PREFIX))?.collect::<storage::Result<_>>()?;
        for (k, v) in sinks {
            if let (Some((topic, p)), Some(pos)) = (parse_sink_key(&k), decode_i64(&v)) {
                f.lower(&topic, p, pos);
            }
        }
        // A repartition topic whose reader has gone keeps its records.
        let read: HashSet<&str> = queries.iter().flat_map(|q| q.spec.subtopologies.iter()).flat_map(|d| d.nodes.iter()).filter_map(|n| match &n.op {
            OpSpec::Source(s) => Some(s.topic.as_str()),
            _ => None,
        }).collect();
        f.consumed.retain(|t| read.contains(t.as_str()));
        Ok(f)
    }
}

impl Engine {
    /// Ids of the queries with keys in the state store (one seek per query).
    fn stored_query_ids(&self) -> Result<Vec<String>> {
        let end = prefix_end(b"q/");
        let mut from = b"q/".to_vec();
        let mut ids = Vec::new();
        loop {
            let first = self.state.scan(&from, &end)?.next().transpose()?;
            let Some((k, _)) = first else { return Ok(ids) };
            let rest = &k[2..];
            let Some(nul) = rest.iter().position(|&b| b == 0) else { return Ok(ids) };
            let id = String::from_utf8_lossy(&rest[..nul]).into_owned();
            from = prefix_end(&query_prefix(&id));
            ids.push(id);
        }
    }
}

/// Starts the cleaner's thread: a pass every `interval` once enabled, until the engine is gone.
pub(crate) fn spawn(engine: Weak<Engine>, interval: Duration) -> std::io::Result<()> {
    std::thread::Builder::new().name("eddy-cleaner".into()).spawn(move || {
        let mut last = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(100).min(interval));
            let Some(e) = engine.upgrade() else { return };
            if e.closing.load(Ordering::Relaxed) {
                return;
            }
            if !e.cleaner.enabled.load(Ordering::Acquire) || last.elapsed() < interval {
                continue;
            }
            last = Instant::now();
            // Failures are kept per topic (SHOW TOPICS EXTENDED) and counted; the next pass retries.
            let _ = e.clean_now(chrono::Utc::now().timestamp_millis());
        }
    })?;
    Ok(())
}
