//! An in-process fake Kafka cluster with Kafka's semantics, for tests that need what no
//! loopback broker serves correctly (read_committed that hides aborted records), a manual
//! clock, and faults injected at any step.
//!
//! [`FakeCluster`] implements [`Cluster`] and makes [`FakeProducer`]s, [`FakeReader`]s and
//! [`FakeGroupConsumer`]s over one shared broker state. What it models, as Kafka (and librdkafka,
//! where the client decides) does:
//! - **Topics** with partitions and configurations (validated; described with Kafka's defaults
//!   filled in); creating an existing topic fails with `TopicExists`, describing or deleting a
//!   missing one with `UnknownTopic`, writing or reading one with librdkafka's "unknown topic or
//!   partition". Records keep offset, timestamp, key, value and headers; records over the topic's
//!   `max.message.bytes` are refused.
//! - **Offsets are not dense**: every record and every transaction marker takes an offset.
//!   [`Cluster::watermarks`] gives (log start, last stable offset); the last stable offset stops
//!   at the first offset of the oldest transaction open on the partition.
//!   [`Cluster::offset_for_timestamp`] is ListOffsets by time (first offset whose timestamp is at or
//!   after, below the last stable offset).
//! - **Producers**: idempotent ones write at once. Transactional ones follow librdkafka's state
//!   machine (init, ready, in transaction, abortable error, fatal error):
//!   `init_transactions` aborts the open transaction of the transactional id and bumps its
//!   producer epoch, so every older producer with that id is fenced (its later calls fail with
//!   [`crate::KafkaError::Fenced`]; nothing it sends is written). A transaction's records are written
//!   when sent (taking offsets) and become visible to `read_committed` readers when the commit
//!   marker is written; an abort marker makes them invisible for ever. Offsets sent with
//!   `send_offsets_to_transaction` are committed with the transaction, or dropped with it; a
//!   zombie group member's offsets (older generation, unknown member, fenced instance id) make the
//!   transaction abortable, as librdkafka reports them. A transaction open longer than its
//!   `transaction.timeout.ms` on the [`FakeClock`] is aborted by the coordinator, which bumps the
//!   epoch: the producer is fenced.
//! - **Readers** (`read_committed`, assign-only) read up to the last stable offset, skip markers and
//!   aborted records, and their position moves past what they skipped; an offset out of range
//!   resets to the log start (`auto.offset.reset=earliest`).
//! - **Consumer groups**: eager rebalances (everyone revokes, then the new generation assigns),
//!   `range` assignment (partition p of co-partitioned topics goes to the same member), session
//!   and poll timeouts on the clock, static membership, committed offsets; see
//!   [`FakeGroupConsumer`].
//! - **Processes**: every client belongs to a host (a simulated process, [`FakeCluster::host`]). A
//!   host can be killed ([`FakeCluster::crash`], kill -9: its clients fail with `Unreachable`,
//!   its open transactions stay open, its group members stop heartbeating) or cut off and
//!   reconnected ([`FakeCluster::disconnect`], as a paused process or a network partition).
//! - **Faults**: [`FakeCluster::inject`] makes the n-th call of an [`Op`] in a scope
//!   (transactional id, group or topic) fail with a [`Fault`]; [`FakeCluster::record_calls`] lists
//!   every call made in a stretch of work, so a test can replay it with a fault at each step.
//!
//! Time: only the manual [`FakeClock`] drives timeouts. Polls return at once when there is
//! nothing to fetch, unless [`FakeCluster::set_real_waits`] lets them wait (in real time, for new
//! data) as a real consumer does, for use under a runtime that polls in a loop.
//!
//! Not modelled: replication and leader changes, compaction and retention (the log keeps every
//! record; [`FakeCluster::delete_records`] moves the log start), quotas, ACLs, the initial
//! rebalance delay (it is 0), Kafka's internal topics (`__consumer_offsets` is not listed),
//! cooperative rebalancing, automatic offset commits.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use eddy_kafka::fake::FakeCluster;
//! use eddy_kafka::{Cluster, Producer, ProducerOptions, Tp};
//! use storage::RecordIn;
//!
//! let fake = FakeCluster::new();
//! fake.create_topic("out", 1, &BTreeMap::new()).unwrap();
//! let opts = ProducerOptions { transactional_id: Some("t1".into()), transaction_timeout: None };
//! let p = fake.producer(&opts).unwrap();
//! p.init_transactions(Duration::from_secs(5)).unwrap();
//! p.begin_transaction().unwrap();
//! p.send("out", 0, &[RecordIn { timestamp: 1, key: None, value: Some(b"v"), headers: &[] }]).unwrap();
//! let tp = Tp::new("out", 0);
//! assert_eq!(fake.watermarks(&tp).unwrap(), (0, 0)); // held back by the open transaction
//! p.commit_transaction(Duration::from_secs(5)).unwrap();
//! assert_eq!(fake.watermarks(&tp).unwrap(), (0, 2)); // the record and the commit marker
//! assert_eq!(fake.committed_records(&tp).len(), 1);
//! ```

mod clock;
mod coordinator;
mod fault;
mod group;
mod partition;
mod producer;
mod reader;
mod state;
#[cfg(test)]
mod tests;
mod topics;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use storage::Offset;

pub use clock::{FakeClock, CLOCK_START_MS};
pub use coordinator::{MAX_POLL_INTERVAL_MS, MAX_SESSION_TIMEOUT_MS, MIN_SESSION_TIMEOUT_MS};
pub use fault::{Call, Fault, Injection, Op};
pub use group::{FakeGroupConsumer, FakeGroupMeta};
pub use partition::{EntryKind, LogEntry, TxnOutcome};
pub use producer::FakeProducer;
pub use reader::FakeReader;
pub use state::{DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_TRANSACTION_TIMEOUT_MS, TRANSACTION_MAX_TIMEOUT_MS};

use crate::client::{Cluster, Fetched, GroupConsumer, GroupMeta, GroupOptions, PartitionReader, Producer, ProducerOptions, TopicMeta, Tp};
use crate::error::{KafkaError, Result};
use state::{State, Topic};
use topics::{validate_topic, TOPIC_DEFAULTS};

/// The bootstrap address a fake cluster reports.
pub const BOOTSTRAP: &str = "fake-kafka:9092";

const ALIVE: u8 = 0;
const DISCONNECTED: u8 = 1;
const DEAD: u8 = 2;

/// A simulated process: every client made through a [`FakeCluster`] handle belongs to its host.
#[derive(Debug)]
pub(crate) struct Host {
    name: String,
    state: AtomicU8,
}

impl Host {
    fn new(name: &str) -> Self {
        Host { name: name.into(), state: AtomicU8::new(ALIVE) }
    }

    /// Running and reaching the cluster.
    pub fn connected(&self) -> bool {
        self.state.load(Ordering::SeqCst) == ALIVE
    }

    /// Not killed.
    pub fn alive(&self) -> bool {
        self.state.load(Ordering::SeqCst) != DEAD
    }

    pub fn kill(&self) {
        self.state.store(DEAD, Ordering::SeqCst);
    }

    /// The error of a call from this host when it cannot reach the cluster.
    pub(crate) fn check(&self) -> Result<()> {
        match self.state.load(Ordering::SeqCst) {
            ALIVE => Ok(()),
            DISCONNECTED => Err(KafkaError::Unreachable { bootstrap: BOOTSTRAP.into(), message: format!("host \"{}\" is disconnected", self.name) }),
            _ => Err(KafkaError::Unreachable { bootstrap: BOOTSTRAP.into(), message: format!("the process of host \"{}\" was killed", self.name) }),
        }
    }
}

/// The shared broker: all state behind one lock, the clock, fault rules.
#[derive(Debug)]
pub(crate) struct Broker {
    state: Mutex<State>,
    changed: Condvar,
    clock: FakeClock,
    real_waits: AtomicBool,
    handles: AtomicU64,
}

impl Broker {
    /// The state, with the timeouts due on the clock applied.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        let mut g = self.state.lock();
        g.tick(self.clock.now_ms());
        g
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn new_handle(&self) -> u64 {
        self.handles.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The start of every client call: the host must reach the cluster; the call is counted and
    /// recorded, and the fault due for it, if any, is returned. A `Crash` kills the host here.
    pub fn enter(&self, host: &Host, op: Op, scope: &str) -> Result<(MutexGuard<'_, State>, Option<Fault>)> {
        host.check()?;
        let mut g = self.lock();
        let fault = g.faults.on_call(op, scope);
        if fault == Some(Fault::Crash) {
            host.kill();
            return Err(Fault::Crash.error(op, scope));
        }
        Ok((g, fault))
    }

    /// Wakes pollers that wait for new data.
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    /// Whether polls wait for data in real time.
    pub fn waits(&self) -> bool {
        self.real_waits.load(Ordering::SeqCst)
    }

    /// Waits (real time) until the state changes or `deadline`; false when the deadline passed.
    pub fn wait_change(&self, g: &mut MutexGuard<'_, State>, deadline: Instant) -> bool {
        let seen = g.version;
        while g.version == seen {
            if self.changed.wait_until(g, deadline).timed_out() {
                return false;
            }
        }
        true
    }
}

/// A fault that fails its call before it takes effect.
pub(crate) fn before(fault: Option<Fault>) -> Option<Fault> {
    fault.filter(|f| !f.takes_effect())
}

/// The end of a call that took effect: the error of an `AckLost` or `CrashAfter` fault (which
/// kills the host), else `value`.
pub(crate) fn finish<T>(host: &Host, fault: Option<Fault>, op: Op, scope: &str, value: T) -> Result<T> {
    match fault {
        Some(f @ Fault::CrashAfter) => {
            host.kill();
            Err(f.error(op, scope))
        }
        Some(f @ Fault::AckLost) => Err(f.error(op, scope)),
        _ => Ok(value),
    }
}

/// A handle on a fake cluster, as one process (host) sees it. Clones share the host; see
/// [`FakeCluster::host`] for another process on the same cluster.
#[derive(Debug, Clone)]
pub struct FakeCluster {
    broker: Arc<Broker>,
    host: Arc<Host>,
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCluster {
    /// A new, empty cluster with its own clock; this handle is host `main`.
    pub fn new() -> Self {
        Self::with_clock(FakeClock::new())
    }

    /// A new, empty cluster on `clock`.
    pub fn with_clock(clock: FakeClock) -> Self {
        let broker = Broker {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            clock,
            real_waits: AtomicBool::new(false),
            handles: AtomicU64::new(0),
        };
        FakeCluster { broker: Arc::new(broker), host: Arc::new(Host::new("main")) }
    }

    /// A handle for another process (host `name`) on the same cluster.
    pub fn host(&self, name: &str) -> FakeCluster {
        FakeCluster { broker: self.broker.clone(), host: Arc::new(Host::new(name)) }
    }

    /// This handle's host name.
    pub fn host_name(&self) -> &str {
        &self.host.name
    }

    /// This handle as the cluster the runtime takes.
    pub fn arc(&self) -> Arc<dyn Cluster> {
        Arc::new(self.clone())
    }

    /// The cluster's clock.
    pub fn clock(&self) -> &FakeClock {
        &self.broker.clock
    }

    /// Advances the clock and applies what fell due (transaction and session timeouts).
    pub fn advance(&self, d: Duration) {
        self.broker.clock.advance(d);
        drop(self.broker.lock());
        self.broker.notify();
    }

    /// Lets polls wait up to their timeout (real time) for data, instead of returning at once.
    pub fn set_real_waits(&self, on: bool) {
        self.broker.real_waits.store(on, Ordering::SeqCst);
    }

    /// Kills this host's process (kill -9): its clients fail with `Unreachable` from now on, its
    /// open transactions stay open, its group members stop heartbeating.
    pub fn crash(&self) {
        let _g = self.broker.lock();
        self.host.kill();
    }

    /// Cuts this host off the cluster (a paused process, a network partition): calls fail with
    /// `Unreachable` and group members stop heartbeating until [`FakeCluster::reconnect`].
    pub fn disconnect(&self) {
        let _g = self.broker.lock();
        let _ = self.host.state.compare_exchange(ALIVE, DISCONNECTED, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Ends a [`FakeCluster::disconnect`].
    pub fn reconnect(&self) {
        let _ = self.host.state.compare_exchange(DISCONNECTED, ALIVE, Ordering::SeqCst, Ordering::SeqCst);
        drop(self.broker.lock());
    }

    /// Whether this host's process runs.
    pub fn is_alive(&self) -> bool {
        self.host.alive()
    }

    /// Adds a fault to inject.
    pub fn inject(&self, injection: Injection) {
        self.broker.state.lock().faults.inject(injection);
    }

    /// Drops the faults not injected yet.
    pub fn clear_faults(&self) {
        self.broker.state.lock().faults.clear();
    }

    /// How many injections wait for their call.
    pub fn pending_faults(&self) -> usize {
        self.broker.state.lock().faults.pending()
    }

    /// Starts recording every call of every client (numbered from 1 per operation and scope).
    pub fn record_calls(&self) {
        self.broker.state.lock().faults.start_recording();
    }

    /// Stops recording; the calls made since [`FakeCluster::record_calls`], in order.
    pub fn take_calls(&self) -> Vec<Call> {
        self.broker.state.lock().faults.stop_recording()
    }

    /// Every entry of a partition as stored (records of every transaction, markers), for tests.
    pub fn log_entries(&self, tp: &Tp) -> Vec<LogEntry> {
        let g = self.broker.lock();
        g.partition(tp, "log entries").map(|p| p.entries(&g.outcomes)).unwrap_or_default()
    }

    /// Every record a `read_committed` reader reads from the log start to the last stable offset.
    pub fn committed_records(&self, tp: &Tp) -> Vec<Fetched> {
        let g = self.broker.lock();
        match g.partition(tp, "committed records") {
            Ok(p) => p.read_committed(tp, p.start, usize::MAX, &g.outcomes).0,
            Err(_) => Vec::new(),
        }
    }

    /// The log end offset (high watermark) of a partition, which includes open transactions.
    pub fn log_end(&self, tp: &Tp) -> Option<Offset> {
        self.broker.lock().partition(tp, "log end").ok().map(|p| p.end())
    }

    /// Moves a partition's log start to `before` (Kafka's DeleteRecords).
    pub fn delete_records(&self, tp: &Tp, before: Offset) {
        let mut g = self.broker.lock();
        if let Some(p) = g.topics.get_mut(&tp.topic).and_then(|t| t.partitions.get_mut(tp.partition as usize)) {
            p.delete_before(before);
        }
        g.version += 1;
    }

    /// The committed offsets of a group.
    pub fn group_offsets(&self, group: &str) -> BTreeMap<Tp, Offset> {
        self.broker.lock().groups.get(group).map(|g| g.committed.clone()).unwrap_or_default()
    }

    /// A group's generation and each member's partitions in it (member id -> partitions); `None`
    /// while a rebalance is being prepared or when the group does not exist.
    pub fn group_assignment(&self, group: &str) -> Option<(i32, BTreeMap<String, Vec<Tp>>)> {
        let g = self.broker.lock();
        let grp = g.groups.get(group)?;
        if grp.rebalance_deadline.is_some() {
            return None;
        }
        Some((grp.generation, grp.assignment.clone()))
    }

    /// A group's members: member id, `group.instance.id`, host, and whether it rejoined the
    /// rebalance being prepared (true when none is).
    pub fn group_members(&self, group: &str) -> Vec<(String, Option<String>, String, bool)> {
        let g = self.broker.lock();
        let Some(grp) = g.groups.get(group) else { return Vec::new() };
        grp.members.iter().map(|(id, m)| (id.clone(), m.instance_id.clone(), m.host.name.clone(), m.rejoined || grp.rebalance_deadline.is_none())).collect()
    }

    /// The current producer epoch of a transactional id (`None`: never initialized).
    pub fn producer_epoch(&self, transactional_id: &str) -> Option<i16> {
        self.broker.lock().txn_ids.get(transactional_id).map(|s| s.epoch)
    }

    /// Whether the coordinator holds an open transaction for a transactional id.
    pub fn has_open_transaction(&self, transactional_id: &str) -> bool {
        self.broker.lock().txn_ids.get(transactional_id).is_some_and(|s| s.open.is_some())
    }

    /// A producer as its concrete type.
    pub fn fake_producer(&self, opts: &ProducerOptions) -> Result<Arc<FakeProducer>> {
        let scope = opts.transactional_id.clone().unwrap_or_default();
        let (mut g, fault) = self.broker.enter(&self.host, Op::NewProducer, &scope)?;
        if let Some(f) = before(fault) {
            return Err(f.error(Op::NewProducer, &scope));
        }
        let pid = g.new_producer_id();
        drop(g);
        let p = FakeProducer::new(self.broker.clone(), self.host.clone(), opts, pid);
        finish(&self.host, fault, Op::NewProducer, &scope, Arc::new(p))
    }

    /// A reader as its concrete type.
    pub fn fake_reader(&self) -> Result<FakeReader> {
        let (g, fault) = self.broker.enter(&self.host, Op::NewReader, "")?;
        drop(g);
        if let Some(f) = before(fault) {
            return Err(f.error(Op::NewReader, ""));
        }
        finish(&self.host, fault, Op::NewReader, "", FakeReader::new(self.broker.clone(), self.host.clone()))
    }

    /// A group consumer as its concrete type. It joins at its first poll.
    pub fn fake_group_consumer(&self, opts: &GroupOptions) -> Result<FakeGroupConsumer> {
        let (g, fault) = self.broker.enter(&self.host, Op::NewGroupConsumer, &opts.group_id)?;
        drop(g);
        if let Some(f) = before(fault) {
            return Err(f.error(Op::NewGroupConsumer, &opts.group_id));
        }
        let c = FakeGroupConsumer::new(self.broker.clone(), self.host.clone(), opts);
        finish(&self.host, fault, Op::NewGroupConsumer, &opts.group_id, c)
    }

    /// A gate for admin calls that only fail or succeed.
    fn admin<T>(&self, op: Op, scope: &str, f: impl FnOnce(&mut State, i64) -> Result<T>) -> Result<T> {
        let (mut g, fault) = self.broker.enter(&self.host, op, scope)?;
        if let Some(fl) = before(fault) {
            return Err(fl.error(op, scope));
        }
        let now = self.broker.now();
        let r = f(&mut g, now);
        drop(g);
        self.broker.notify();
        finish(&self.host, fault, op, scope, r?)
    }
}

impl Cluster for FakeCluster {
    fn bootstrap(&self) -> &str {
        BOOTSTRAP
    }

    fn create_topic(&self, name: &str, partitions: u32, config: &BTreeMap<String, String>) -> Result<()> {
        self.admin(Op::CreateTopic, name, |st, now| {
            if st.topics.contains_key(name) {
                return Err(KafkaError::TopicExists(name.into()));
            }
            validate_topic(name, partitions, config)?;
            let topic = Topic { partitions: (0..partitions).map(|_| Default::default()).collect(), config: config.clone() };
            st.topics.insert(name.into(), topic);
            st.topic_changed(name, now);
            Ok(())
        })
    }

    fn delete_topic(&self, name: &str) -> Result<()> {
        self.admin(Op::DeleteTopic, name, |st, now| {
            if st.topics.remove(name).is_none() {
                return Err(KafkaError::UnknownTopic(name.into()));
            }
            // Open transactions forget the topic: a topic created with the same name later is
            // another topic (Kafka tells them apart by topic id), no marker goes there.
            for s in st.txn_ids.values_mut() {
                if let Some(t) = s.open.as_mut() {
                    t.partitions.retain(|tp| tp.topic != name);
                }
            }
            st.topic_changed(name, now);
            Ok(())
        })
    }

    fn list_topics(&self) -> Result<Vec<TopicMeta>> {
        self.admin(Op::ListTopics, "", |st, _| {
            Ok(st
                .topics
                .iter()
                .map(|(n, t)| TopicMeta { name: n.clone(), partitions: t.partitions.len() as u32, config: BTreeMap::new() })
                .collect())
        })
    }

    fn topic(&self, name: &str) -> Result<TopicMeta> {
        self.admin(Op::DescribeTopic, name, |st, _| {
            let t = st.topics.get(name).ok_or_else(|| KafkaError::UnknownTopic(name.into()))?;
            let mut config: BTreeMap<String, String> = TOPIC_DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            config.extend(t.config.clone());
            Ok(TopicMeta { name: name.into(), partitions: t.partitions.len() as u32, config })
        })
    }

    fn watermarks(&self, tp: &Tp) -> Result<(Offset, Offset)> {
        self.admin(Op::Watermarks, &tp.topic, |st, _| {
            let p = st.partition(tp, &format!("reading the offsets of Kafka topic \"{}\"", tp.topic))?;
            Ok((p.start, p.lso()))
        })
    }

    fn offset_for_timestamp(&self, tp: &Tp, timestamp: i64) -> Result<Option<Offset>> {
        self.admin(Op::OffsetForTimestamp, &tp.topic, |st, _| Ok(st.partition(tp, "offset for timestamp")?.offset_for_timestamp(timestamp)))
    }

    fn producer(&self, opts: &ProducerOptions) -> Result<Arc<dyn Producer>> {
        Ok(self.fake_producer(opts)?)
    }

    fn reader(&self) -> Result<Box<dyn PartitionReader>> {
        Ok(Box::new(self.fake_reader()?))
    }

    fn group_consumer(&self, opts: &GroupOptions) -> Result<Box<dyn GroupConsumer>> {
        Ok(Box::new(self.fake_group_consumer(opts)?))
    }

    fn group_meta(&self, group_id: &str) -> Result<GroupMeta> {
        self.admin(Op::ClusterGroupMeta, group_id, |_, _| {
            Ok(GroupMeta(Arc::new(FakeGroupMeta { group_id: group_id.into(), member_id: String::new(), generation: -1, instance_id: None })))
        })
    }

    fn committed_offsets(&self, group_id: &str, parts: &[Tp]) -> Result<Vec<Option<Offset>>> {
        self.admin(Op::ClusterCommitted, group_id, |st, _| {
            // librdkafka asks read_committed (require_stable): offsets of an open transaction are
            // UNSTABLE_OFFSET_COMMIT until it ends, and the call times out waiting.
            if let Some(tp) = parts.iter().find(|tp| st.offsets_unstable(group_id, tp)) {
                return Err(KafkaError::Retriable {
                    operation: format!("reading the offsets of consumer group \"{group_id}\""),
                    message: format!("UNSTABLE_OFFSET_COMMIT: a transaction holding offsets for {tp} is still open"),
                });
            }
            let committed = st.groups.get(group_id).map(|g| &g.committed);
            Ok(parts.iter().map(|tp| committed.and_then(|c| c.get(tp).copied())).collect())
        })
    }
}
