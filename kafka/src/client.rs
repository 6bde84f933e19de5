//! The Kafka operations Eddy uses, as traits: [`Cluster`] (admin and factories),
//! [`Producer`] (plain and transactional), [`PartitionReader`] (assign-only consumer) and
//! [`GroupConsumer`] (a member of a consumer group).
//!
//! Two implementations: [`crate::rd`] over librdkafka (the real thing), and an in-process fake
//! with Kafka's semantics for tests that need fault injection and a manual clock. Everything
//! above this module (the topic log, the runtime's task committer and input assignment) is
//! written against these traits only.
//!
//! Semantics every implementation keeps, as Kafka does:
//! - offsets are per partition and increase, but are not dense: transaction markers take an
//!   offset and compaction leaves gaps, so `end - position` does not count records;
//! - a [`PartitionReader`] and a [`GroupConsumer`] read with `read_committed`: records of open
//!   transactions are held back at the last stable offset (records of aborted ones are skipped
//!   where the broker supports it);
//! - a transactional producer's records, and the offsets it sends to the transaction, become
//!   visible together at commit, or never;
//! - [`Producer::init_transactions`] fences every earlier producer with the same transactional
//!   id and aborts its open transaction.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use storage::{Header, Offset, RecordIn};

use crate::error::Result;

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tp {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
}

impl Tp {
    /// `topic`/`partition`.
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Tp { topic: topic.into(), partition }
    }
}

impl std::fmt::Display for Tp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// A record as fetched from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where it was read.
    pub tp: Tp,
    /// Its offset.
    pub offset: Offset,
    /// Its timestamp (ms since the epoch).
    pub timestamp: i64,
    /// Key bytes, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Value bytes, `None` for a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<Header>,
}

/// A topic's partition count and the configuration the broker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: u32,
    /// Topic configuration (`cleanup.policy`, `retention.ms`, ...); empty when the broker does not
    /// describe configurations.
    pub config: BTreeMap<String, String>,
}

/// How to make a producer.
#[derive(Debug, Clone, Default)]
pub struct ProducerOptions {
    /// A transactional producer with this `transactional.id`; `None`: idempotent, no
    /// transactions.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: the broker aborts a transaction left open this long.
    pub transaction_timeout: Option<Duration>,
}

/// How to join a consumer group.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id` (static membership): a restart within the session timeout keeps the
    /// member's partitions without a rebalance.
    pub instance_id: Option<String>,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
}

/// The consumer group's identity for [`Producer::send_offsets_to_transaction`] (member id and
/// generation, so that a zombie member's offsets are refused).
#[derive(Clone)]
pub struct GroupMeta(pub Arc<dyn Any + Send + Sync>);

impl std::fmt::Debug for GroupMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupMeta(..)")
    }
}

/// A change of a group member's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// These partitions are now this member's (eager protocol: the whole new assignment).
    Assigned(Vec<Tp>),
    /// These partitions are no longer this member's (eager protocol: the whole old assignment).
    /// Their records must not be committed by this member any more.
    Revoked(Vec<Tp>),
}

/// What [`GroupConsumer::poll`] returns.
#[derive(Debug, Default)]
pub struct Polled {
    /// Assignment changes, in order, that happened during the poll.
    pub events: Vec<GroupEvent>,
    /// Records of assigned, unpaused partitions.
    pub records: Vec<Fetched>,
}

/// Admin operations and factories of clients, for one cluster.
pub trait Cluster: Send + Sync + 'static {
    /// The bootstrap servers, for messages.
    fn bootstrap(&self) -> &str;
    /// Creates a topic. `TopicExists` if it is there.
    fn create_topic(&self, name: &str, partitions: u32, config: &BTreeMap<String, String>) -> Result<()>;
    /// Deletes a topic. `UnknownTopic` if it is not there.
    fn delete_topic(&self, name: &str) -> Result<()>;
    /// Every topic with its partition count (configurations not filled in).
    fn list_topics(&self) -> Result<Vec<TopicMeta>>;
    /// One topic with its configuration. `UnknownTopic` if it is not there.
    fn topic(&self, name: &str) -> Result<TopicMeta>;
    /// The low and high watermarks of a partition as a `read_committed` reader sees them: the
    /// first offset still there and the last stable offset (the next offset past the last record
    /// of a committed transaction or plain write; open transactions hold it back).
    fn watermarks(&self, tp: &Tp) -> Result<(Offset, Offset)>;
    /// The first offset whose record has a timestamp at or after `timestamp`; `None` if none.
    fn offset_for_timestamp(&self, tp: &Tp, timestamp: i64) -> Result<Option<Offset>>;
    /// A producer (`acks=all`, idempotent).
    fn producer(&self, opts: &ProducerOptions) -> Result<Arc<dyn Producer>>;
    /// A consumer that reads the partitions it is assigned, outside any group.
    fn reader(&self) -> Result<Box<dyn PartitionReader>>;
    /// A member of a consumer group (eager `range` assignment, no automatic offset commits).
    fn group_consumer(&self, opts: &GroupOptions) -> Result<Box<dyn GroupConsumer>>;
    /// The identity of group `group_id` for transactional offset commits by a producer that is
    /// not a member (no generation: offsets are fenced by the transactional id alone).
    fn group_meta(&self, group_id: &str) -> Result<GroupMeta>;
    /// The offsets group `group_id` has committed for these partitions (`None`: none).
    fn committed_offsets(&self, group_id: &str, parts: &[Tp]) -> Result<Vec<Option<Offset>>>;
}

/// Writes records; thread-safe.
pub trait Producer: Send + Sync {
    /// Queues records for one partition; delivery errors surface at [`Producer::flush`] or
    /// [`Producer::commit_transaction`].
    fn send(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<()>;
    /// Writes records to one partition and waits until they are acknowledged; returns the offset of
    /// the first. Not for transactional producers.
    fn send_and_wait(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<Offset>;
    /// Waits until every queued record is acknowledged; fails if one could not be written.
    fn flush(&self, timeout: Duration) -> Result<()>;
    /// Registers the transactional id: fences earlier producers with it and aborts their open
    /// transaction. Must be called once before the first transaction.
    fn init_transactions(&self, timeout: Duration) -> Result<()>;
    /// Opens a transaction.
    fn begin_transaction(&self) -> Result<()>;
    /// Adds the group's next offsets to the open transaction.
    fn send_offsets_to_transaction(&self, offsets: &[(Tp, Offset)], group: &GroupMeta, timeout: Duration) -> Result<()>;
    /// Flushes and commits the open transaction.
    fn commit_transaction(&self, timeout: Duration) -> Result<()>;
    /// Aborts the open transaction.
    fn abort_transaction(&self, timeout: Duration) -> Result<()>;
}

/// An assign-only consumer (`read_committed`, no group offsets).
pub trait PartitionReader: Send {
    /// Replaces the assignment: read these partitions from these offsets.
    fn assign(&mut self, parts: &[(Tp, Offset)]) -> Result<()>;
    /// Records fetched within `timeout` (empty when none came), in offset order per partition.
    fn poll(&mut self, timeout: Duration, max_records: usize) -> Result<Vec<Fetched>>;
    /// The next offset this reader will return for `tp` (past transaction markers it has
    /// skipped); `None` when it is not assigned.
    fn position(&self, tp: &Tp) -> Result<Option<Offset>>;
}

/// A member of a consumer group.
pub trait GroupConsumer: Send {
    /// Serves the group protocol (heartbeats, rebalances) and returns what happened and the
    /// records fetched within `timeout`. Must be called at least every `max.poll.interval.ms`.
    fn poll(&mut self, timeout: Duration, max_records: usize) -> Result<Polled>;
    /// The group's committed offsets of these partitions (`None`: nothing committed).
    fn committed(&self, parts: &[Tp], timeout: Duration) -> Result<Vec<Option<Offset>>>;
    /// Moves the fetch position of an assigned partition.
    fn seek(&mut self, tp: &Tp, offset: Offset) -> Result<()>;
    /// Stops fetching these partitions (they stay assigned).
    fn pause(&mut self, parts: &[Tp]) -> Result<()>;
    /// Fetches these partitions again.
    fn resume(&mut self, parts: &[Tp]) -> Result<()>;
    /// The next offset to fetch of an assigned partition.
    fn position(&self, tp: &Tp) -> Result<Option<Offset>>;
    /// The group identity for transactional offset commits; `None` before the member joined.
    fn group_meta(&self) -> Option<GroupMeta>;
    /// Leaves the group (a static member keeps its place until its session times out).
    fn close(&mut self);
}
