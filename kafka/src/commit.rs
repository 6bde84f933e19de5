//! Per-task commits over Kafka ([`KafkaCommitters`]): each checkpoint epoch of a task is one
//! Kafka transaction (the Kafka Streams / Samza model).
//!
//! A task `(query, sub-topology s, partition p)` has:
//! - a transactional producer, `transactional.id = _eddy-<service>-query_<ID>-<s>_<p>`, the same
//!   on every instance, so that the instance taking the task over fences the one before;
//! - partition p of the compacted changelog topic `_eddy-<service>-query_<ID>-<s>-changelog`, which
//!   holds the task's state as records (key: the state key, value: the state value, null for a
//!   deletion), its next input offsets and its epoch number among them.
//!
//! An epoch, from the barrier on:
//! 1. the epoch's state batch becomes changelog records (a range deletion becomes one tombstone
//!    per key the task holds in the range) and goes into the open transaction, after the task's
//!    own output records (sinks, repartition, dead-letter and late-data topics);
//! 2. the next input offsets go to the transaction (`send_offsets_to_transaction`, group
//!    `_eddy-<service>-query_<ID>`), then the transaction commits;
//! 3. only then is the same batch written to the local RocksDB, with the changelog position, so
//!    local state is never ahead of Kafka; the next transaction opens.
//!
//! On start (`restore`): `init_transactions` fences earlier owners of the transactional id and
//! aborts their open transaction; then the changelog is replayed into the local state from the
//! local position (or from the start on a new machine) to its end. Crashing between the commit
//! and the local write leaves the local state one epoch behind, and the replay makes it up.
//!
//! Under `at_least_once` the epochs are the same without transactions: outputs are flushed,
//! then the changelog records are written, then the local state; a crash may repeat the outputs
//! of the last epoch.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::operator::TaskInfo;
use engine::runtime::keys::{decode_i64, task_meta_key};
use engine::runtime::{CommitError, ProcessingGuarantee, QueryMembership, RestoreProgress, RestoreReport, TaskCommitter, TaskCommitters};
use engine::spec::QuerySpec;
use engine::types::Epoch;
use engine::EngineError;
use parking_lot::Mutex;
use storage::{BatchOp, KvStore, Offset, RecordIn, StateBatch, TopicLog};

use crate::changelog::Applier;
use crate::membership::KafkaMembership;
use crate::standby::Standbys;
use crate::client::{Cluster, GroupMeta, GroupOptions, Producer, ProducerOptions, Tp};
use crate::error::KafkaError;
use crate::log::KafkaLog;
use crate::txn_log::{epoch_headers, TxnLog};

/// A changelog record: state key and value (`None`: a tombstone).
type ChangelogRecord = (Vec<u8>, Option<Vec<u8>>);

/// How long transaction calls wait for the brokers.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// The broker aborts a transaction left open this long (an instance that stopped mid-epoch).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Changelog records fetched per poll while restoring.
const RESTORE_CHUNK: usize = 10_000;
/// A restore that makes no progress this long fails.
const RESTORE_STALL: Duration = Duration::from_secs(60);

fn backend(e: KafkaError) -> EngineError {
    EngineError::Storage(e.into())
}

/// The committers of one service's persistent tasks.
pub struct KafkaCommitters {
    log: Arc<KafkaLog>,
    /// Whether the brokers accept transactions (asked once).
    transactions: Mutex<Option<bool>>,
    instance: String,
    /// The consumer groups' session timeout: an instance that stops answering loses its tasks
    /// after this long.
    session_timeout: Duration,
}

/// Default session timeout of the query groups.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

impl KafkaCommitters {
    /// Committers writing through `log`'s cluster; `instance` is this instance's name (its
    /// static group membership).
    pub fn new(log: Arc<KafkaLog>, instance: &str) -> Self {
        KafkaCommitters { log, transactions: Mutex::new(None), instance: instance.into(), session_timeout: DEFAULT_SESSION_TIMEOUT }
    }

    /// The same with another group session timeout.
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    fn cluster(&self) -> &Arc<dyn Cluster> {
        self.log.cluster()
    }

    /// The changelog topic of a query's sub-topology.
    pub fn changelog_topic(&self, query_id: &str, sub: usize) -> String {
        format!("{}query_{query_id}-{sub}-changelog", self.log.names().prefix())
    }

    /// The transactional id of a task.
    pub fn transactional_id(&self, info: &TaskInfo) -> String {
        format!("{}query_{}-{}_{}", self.log.names().prefix(), info.query_id, info.subtopology, info.partition)
    }

    /// The consumer group of a query.
    pub fn group_id(&self, query_id: &str) -> String {
        format!("{}query_{query_id}", self.log.names().prefix())
    }

    /// True when the brokers accept transactions; asked once with a throwaway transactional id.
    fn transactions_supported(&self) -> Result<bool, EngineError> {
        let mut g = self.transactions.lock();
        if let Some(b) = *g {
            return Ok(b);
        }
        let id = format!("{}probe-{}", self.log.names().prefix(), self.instance);
        let p = self
            .cluster()
            .producer(&ProducerOptions { transactional_id: Some(id), transaction_timeout: Some(TRANSACTION_TIMEOUT) })
            .map_err(backend)?;
        let ok = match p.init_transactions(TXN_TIMEOUT) {
            Ok(()) => true,
            Err(KafkaError::TransactionsUnsupported { .. }) => false,
            Err(e) => return Err(backend(e)),
        };
        *g = Some(ok);
        Ok(ok)
    }
}

impl TaskCommitters for KafkaCommitters {
    fn prepare(&self, spec: &QuerySpec, partitions: &[u32], _guarantee: ProcessingGuarantee) -> engine::Result<()> {
        for (sub, &n) in partitions.iter().enumerate() {
            let topic = self.changelog_topic(&spec.id, sub);
            match self.cluster().topic(&topic) {
                Ok(meta) if meta.partitions != n => {
                    return Err(EngineError::PartitionMismatch {
                        topics: format!("changelog \"{topic}\" ({}) and the inputs of query {} ({n})", meta.partitions, spec.id),
                    })
                }
                Ok(_) => {}
                Err(KafkaError::UnknownTopic(_)) => {
                    let mut config = std::collections::BTreeMap::new();
                    config.insert("cleanup.policy".to_string(), "compact".to_string());
                    config.insert("retention.ms".to_string(), "-1".to_string());
                    match self.cluster().create_topic(&topic, n, &config) {
                        Ok(()) | Err(KafkaError::TopicExists(_)) => {}
                        Err(e) => return Err(backend(e)),
                    }
                }
                Err(e) => return Err(backend(e)),
            }
        }
        Ok(())
    }

    fn task(&self, info: &TaskInfo, sources: &[String], guarantee: ProcessingGuarantee) -> engine::Result<Box<dyn TaskCommitter>> {
        let exactly_once = guarantee == ProcessingGuarantee::ExactlyOnce;
        let producer = self
            .cluster()
            .producer(&ProducerOptions {
                transactional_id: exactly_once.then(|| self.transactional_id(info)),
                transaction_timeout: Some(TRANSACTION_TIMEOUT),
            })
            .map_err(backend)?;
        let group = if exactly_once { Some(self.cluster().group_meta(&self.group_id(&info.query_id)).map_err(backend)?) } else { None };
        let epoch = Arc::new(AtomicU64::new(0));
        // A new incarnation's attempts are greater than every earlier one's.
        let attempt = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let task = format!("{}/{}/{}", info.query_id, info.subtopology, info.partition);
        let output = Arc::new(TxnLog::new(self.log.clone(), producer.clone(), task.clone(), attempt, epoch.clone()));
        Ok(Box::new(KafkaTaskCommitter {
            info: info.clone(),
            task,
            cluster: self.cluster().clone(),
            producer,
            group,
            changelog: Tp::new(self.changelog_topic(&info.query_id, info.subtopology), info.partition),
            offset_keys: sources
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let key = engine::runtime::keys::offset_key(&info.query_id, info.subtopology, i, info.partition);
                    (key, Tp::new(self.log.names().physical(t).into_owned(), info.partition))
                })
                .collect(),
            group_id: self.group_id(&info.query_id),
            output,
            epoch,
            attempt,
            in_txn: false,
            begin_failed: None,
            progress: Arc::new(RestoreProgress::default()),
        }))
    }

    fn forget(&self, query_id: &str) {
        let prefix = format!("{}query_{query_id}-", self.log.names().prefix());
        if let Ok(topics) = self.cluster().list_topics() {
            for t in topics.into_iter().filter(|t| t.name.starts_with(&prefix) && t.name.ends_with("-changelog")) {
                let _ = self.cluster().delete_topic(&t.name);
            }
        }
    }

    fn join(
        &self,
        spec: &QuerySpec,
        layout: &[(Vec<String>, u32)],
        guarantee: ProcessingGuarantee,
        state: Arc<dyn KvStore>,
    ) -> engine::Result<Option<Box<dyn QueryMembership>>> {
        let physical = |t: &String| self.log.names().physical(t).into_owned();
        let mut topics: Vec<String> = layout.iter().flat_map(|l| l.0.iter().map(physical)).collect();
        topics.sort();
        topics.dedup();
        let consumer = self
            .cluster()
            .group_consumer(&GroupOptions {
                group_id: self.group_id(&spec.id),
                instance_id: Some(self.instance.clone()),
                topics,
                session_timeout: self.session_timeout,
            })
            .map_err(backend)?;
        let standby_layout = layout
            .iter()
            .enumerate()
            .map(|(s, (ts, n))| (ts.iter().map(physical).collect(), *n, self.changelog_topic(&spec.id, s)))
            .collect();
        let standbys = Standbys::new(
            self.cluster().clone(),
            state,
            &spec.id,
            self.group_id(&spec.id),
            guarantee == ProcessingGuarantee::ExactlyOnce,
            standby_layout,
        );
        Ok(Some(Box::new(KafkaMembership::new(consumer, self.log.clone(), standbys))))
    }

    fn resolve(&self, asked: ProcessingGuarantee) -> engine::Result<ProcessingGuarantee> {
        match asked {
            ProcessingGuarantee::AtLeastOnce => Ok(ProcessingGuarantee::AtLeastOnce),
            ProcessingGuarantee::ExactlyOnce => {
                if self.transactions_supported()? {
                    Ok(ProcessingGuarantee::ExactlyOnce)
                } else {
                    Err(backend(KafkaError::TransactionsUnsupported {
                        bootstrap: self.cluster().bootstrap().into(),
                        message: "processing.guarantee 'exactly_once' needs transactions".into(),
                    }))
                }
            }
            ProcessingGuarantee::Default => Ok(if self.transactions_supported()? {
                ProcessingGuarantee::ExactlyOnce
            } else {
                ProcessingGuarantee::AtLeastOnce
            }),
        }
    }
}

/// One task's epochs over Kafka.
struct KafkaTaskCommitter {
    info: TaskInfo,
    task: String,
    cluster: Arc<dyn Cluster>,
    producer: Arc<dyn Producer>,
    /// `Some` under exactly-once.
    group: Option<GroupMeta>,
    changelog: Tp,
    /// The state keys of the task's input offsets, with the Kafka partitions they are about.
    offset_keys: Vec<(Vec<u8>, Tp)>,
    /// The query's consumer group.
    group_id: String,
    output: Arc<TxnLog>,
    /// The epoch being written (the last committed one + 1).
    epoch: Arc<AtomicU64>,
    attempt: u64,
    in_txn: bool,
    /// Opening the transaction after the last commit failed: the next commit fails with this
    /// (the committed epoch does not).
    begin_failed: Option<KafkaError>,
    /// How far `restore` has come (SHOW QUERIES shows it while it runs).
    progress: Arc<RestoreProgress>,
}

impl KafkaTaskCommitter {
    fn key(&self, what: u8) -> Vec<u8> {
        task_meta_key(&self.info.query_id, self.info.subtopology, self.info.partition, what)
    }

    fn exactly_once(&self) -> bool {
        self.group.is_some()
    }

    fn class(&self, e: KafkaError) -> CommitError {
        match e {
            KafkaError::Fenced { .. } => CommitError::Fenced { task: self.task.clone() },
            e => CommitError::Abortable { task: self.task.clone(), source: Box::new(e) },
        }
    }

    fn begin(&mut self) -> Result<(), KafkaError> {
        if self.exactly_once() && !self.in_txn {
            self.producer.begin_transaction()?;
            self.in_txn = true;
        }
        Ok(())
    }

    /// The epoch's changelog records: puts and deletes as they are, a range deletion as one
    /// tombstone per key in the range that the local state or this batch holds.
    fn changelog_records(batch: &StateBatch, state: &dyn KvStore) -> engine::Result<Vec<ChangelogRecord>> {
        let mut out = Vec::with_capacity(batch.len());
        let mut put_here: BTreeSet<Vec<u8>> = BTreeSet::new();
        for op in batch.iter() {
            match op {
                BatchOp::Put(k, v) => {
                    put_here.insert(k.to_vec());
                    out.push((k.to_vec(), Some(v.to_vec())));
                }
                BatchOp::Delete(k) => {
                    put_here.remove(k);
                    out.push((k.to_vec(), None));
                }
                BatchOp::DeleteRange(from, to) => {
                    let mut keys: BTreeSet<Vec<u8>> = BTreeSet::new();
                    for kv in state.scan(from, to)? {
                        keys.insert(kv?.0);
                    }
                    let here: Vec<Vec<u8>> = put_here.range(from.to_vec()..to.to_vec()).cloned().collect();
                    for k in here {
                        put_here.remove(&k);
                        keys.insert(k);
                    }
                    out.extend(keys.into_iter().map(|k| (k, None)));
                }
            }
        }
        Ok(out)
    }

    fn restore_inner(&mut self, state: &dyn KvStore) -> Result<RestoreReport, EngineError> {
        let t0 = Instant::now();
        if self.exactly_once() {
            // Fence the previous owner and abort its open transaction before reading what it
            // committed.
            self.producer.init_transactions(TXN_TIMEOUT).map_err(backend)?;
        }
        let pos_key = self.key(b'c');
        let epoch_key = self.key(b'e');
        let local = state.get(&pos_key)?.and_then(|v| decode_i64(&v));
        let (low, end) = self.cluster.watermarks(&self.changelog).map_err(backend)?;
        let from = local.unwrap_or(low).max(low);
        self.progress.start.store(from, Ordering::Relaxed);
        self.progress.at.store(from, Ordering::Relaxed);
        self.progress.end.store(end, Ordering::Relaxed);
        let mut applier = Applier::default();
        let mut position = from;
        if from < end {
            let mut reader = self.cluster.reader().map_err(backend)?;
            reader.assign(&[(self.changelog.clone(), from)]).map_err(backend)?;
            let mut last_progress = Instant::now();
            while position < end {
                let got = reader.poll(Duration::from_millis(200), RESTORE_CHUNK).map_err(backend)?;
                if got.is_empty() {
                    if let Some(p) = reader.position(&self.changelog).map_err(backend)? {
                        if p > position {
                            position = p;
                            last_progress = Instant::now();
                            self.progress.at.store(position, Ordering::Relaxed);
                        }
                    }
                    if last_progress.elapsed() > RESTORE_STALL {
                        return Err(EngineError::Timeout {
                            what: format!("restoring task {} from changelog {}", self.task, self.changelog),
                            ms: RESTORE_STALL.as_millis() as u64,
                        });
                    }
                    continue;
                }
                last_progress = Instant::now();
                for f in got {
                    position = position.max(f.offset + 1);
                    applier.push(&f, state, |k| self.offset_keys.iter().any(|(ok, _)| ok.as_slice() == k))?;
                }
                self.progress.at.store(position, Ordering::Relaxed);
            }
            let mut done = StateBatch::default();
            done.put(&pos_key, &position.to_be_bytes());
            if applier.has_pending() && self.last_group_committed(applier.pending_offsets()) {
                applier.apply_with(state, &done)?;
            } else {
                applier.discard();
                state.commit(&done, true)?;
            }
        }
        let committed = state.get(&epoch_key)?.and_then(|v| decode_i64(&v)).unwrap_or(0) as u64;
        self.epoch.store(committed + 1, Ordering::Relaxed);
        self.begin().map_err(backend)?;
        Ok(RestoreReport { records: applier.applied, millis: t0.elapsed().as_millis() as u64 })
    }

    /// Whether the last epoch read from the changelog committed (see [`crate::changelog`]): its
    /// input offsets are those the query's group committed. Under at-least-once nothing is
    /// aborted, and when the group's offsets cannot be read, `read_committed` is trusted.
    fn last_group_committed(&self, offsets: &[(Vec<u8>, Offset)]) -> bool {
        if !self.exactly_once() || offsets.is_empty() {
            return true;
        }
        let tps: Vec<Tp> = offsets
            .iter()
            .filter_map(|(k, _)| self.offset_keys.iter().find(|(ok, _)| ok == k).map(|(_, tp)| tp.clone()))
            .collect();
        match self.cluster.committed_offsets(&self.group_id, &tps) {
            Ok(committed) => offsets.iter().zip(committed).all(|((_, o), c)| c == Some(*o)),
            Err(_) => true,
        }
    }

    fn commit_inner(&mut self, batch: &StateBatch, inputs: &[(String, u32, Offset)], state: &dyn KvStore) -> Result<(), CommitError> {
        if let Some(e) = self.begin_failed.take() {
            return Err(self.class(e));
        }
        let epoch = self.epoch.load(Ordering::Relaxed);
        let epoch_key = self.key(b'e');
        let mut records = Self::changelog_records(batch, state)?;
        records.push((epoch_key.clone(), Some((epoch as i64).to_be_bytes().to_vec())));
        let headers = epoch_headers(&self.task, epoch, self.attempt);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let ins: Vec<RecordIn<'_>> =
            records.iter().map(|(k, v)| RecordIn { timestamp: now, key: Some(k), value: v.as_deref(), headers: &headers }).collect();
        if !self.exactly_once() {
            // At-least-once: the outputs first, then the state that says they were written.
            self.producer.flush(TXN_TIMEOUT).map_err(|e| self.class(e))?;
        }
        let first = self.producer.send_and_wait(&self.changelog.topic, self.changelog.partition, &ins).map_err(|e| self.class(e))?;
        let position = first + ins.len() as Offset;
        if let Some(group) = &self.group {
            let mut offsets: Vec<(Tp, Offset)> = Vec::new();
            for (topic, p, o) in inputs {
                let tp = Tp::new(self.output.physical(topic), *p);
                match offsets.iter_mut().find(|(t, _)| *t == tp) {
                    Some((_, prev)) => *prev = (*prev).min(*o),
                    None => offsets.push((tp, *o)),
                }
            }
            if !offsets.is_empty() {
                self.producer.send_offsets_to_transaction(&offsets, group, TXN_TIMEOUT).map_err(|e| self.class(e))?;
            }
            let mut tries = 0;
            loop {
                match self.producer.commit_transaction(TXN_TIMEOUT) {
                    Ok(()) => break,
                    Err(e) if e.is_retriable() && tries < 3 => tries += 1,
                    Err(e) => return Err(self.class(e)),
                }
            }
            self.in_txn = false;
        }
        // Kafka has the epoch: now the local state, never ahead of it.
        let mut local = batch.clone();
        local.put(&epoch_key, &(epoch as i64).to_be_bytes());
        local.put(&self.key(b'c'), &position.to_be_bytes());
        state.commit(&local, false).map_err(|e| CommitError::Other(e.into()))?;
        self.epoch.store(epoch + 1, Ordering::Relaxed);
        // The epoch has committed, so this commit succeeded: a failure to open the next
        // transaction belongs to the next epoch (its writes and its commit fail).
        if let Err(e) = self.begin() {
            self.begin_failed = Some(e);
        }
        Ok(())
    }
}

impl TaskCommitter for KafkaTaskCommitter {
    fn output(&self) -> Arc<dyn TopicLog> {
        self.output.clone()
    }

    fn restore(&mut self, state: &dyn KvStore) -> engine::Result<RestoreReport> {
        self.restore_inner(state)
    }

    fn restore_progress(&self) -> Option<Arc<RestoreProgress>> {
        Some(self.progress.clone())
    }

    fn commit(&mut self, _epoch: Epoch, batch: &StateBatch, inputs: &[(String, u32, Offset)], state: &dyn KvStore) -> Result<(), CommitError> {
        self.commit_inner(batch, inputs, state)
    }

    fn abort(&mut self) {
        if self.in_txn {
            // Best effort: a transaction left open is aborted by the broker's timeout or by the
            // next owner's init_transactions.
            let _ = self.producer.abort_transaction(TXN_TIMEOUT);
            self.in_txn = false;
        }
    }
}
