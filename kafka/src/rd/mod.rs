//! The [`Cluster`] traits over librdkafka (the `rdkafka` crate with its bundled library).
//!
//! - [`RdCluster`]: admin operations through an `AdminClient`, metadata and watermarks through
//!   an assign-only consumer kept for the purpose;
//! - [`producer::RdProducer`]: a `ThreadedProducer` (`acks=all`, idempotent, optionally
//!   transactional) whose delivery reports wake the callers that wait for them;
//! - [`reader::RdReader`]: an assign-only `BaseConsumer` (`read_committed`);
//! - [`group::RdGroupConsumer`]: a `BaseConsumer` in a group (eager `range` assignment, static
//!   membership when an instance id is given) whose rebalance callbacks become
//!   [`crate::client::GroupEvent`]s.
//!
//! librdkafka's own partitioner is never used: every record names its partition (Eddy computes
//! Kafka's murmur2 partition itself, see [`storage::partition_for_key`]).

mod group;
mod producer;
mod reader;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::{Offset as RdOffset, TopicPartitionList};
use storage::Offset;

use crate::client::{Cluster, GroupConsumer, GroupMeta, GroupOptions, PartitionReader, Producer, ProducerOptions, TopicMeta, Tp};
use crate::error::{KafkaError, Result};

/// How long admin and metadata calls wait for the brokers.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

/// A Kafka cluster reached through librdkafka.
pub struct RdCluster {
    bootstrap: String,
    /// Extra client properties given by the user (`security.protocol`, ...), applied to every client.
    extra: BTreeMap<String, String>,
    admin: AdminClient<DefaultClientContext>,
    /// Metadata, watermarks and timestamps.
    meta: Mutex<BaseConsumer>,
    /// Replication factor for new topics; `None` asks for the broker's default and falls back to
    /// 1 when the broker does not know that request.
    replication: Option<i32>,
}

impl RdCluster {
    /// Connects to `bootstrap` (`host:port[,host:port...]`) and checks that a broker answers.
    ///
    /// # Errors
    /// [`KafkaError::Unreachable`] naming the address when no broker answers within 15 s.
    pub fn connect(bootstrap: &str, extra: BTreeMap<String, String>) -> Result<Self> {
        let base = base_config(bootstrap, &extra);
        let admin: AdminClient<DefaultClientContext> =
            base.create().map_err(|e| KafkaError::Unreachable { bootstrap: bootstrap.into(), message: e.to_string() })?;
        let mut mc = base.clone();
        mc.set("group.id", "_eddy-metadata").set("enable.auto.commit", "false").set("isolation.level", "read_committed");
        let meta: BaseConsumer =
            mc.create().map_err(|e| KafkaError::Unreachable { bootstrap: bootstrap.into(), message: e.to_string() })?;
        meta.fetch_metadata(None, ADMIN_TIMEOUT)
            .map_err(|e| KafkaError::Unreachable { bootstrap: bootstrap.into(), message: e.to_string() })?;
        Ok(RdCluster { bootstrap: bootstrap.into(), extra, admin, meta: Mutex::new(meta), replication: None })
    }

    /// New topics get this replication factor instead of the broker's default.
    pub fn with_replication(mut self, replicas: i32) -> Self {
        self.replication = Some(replicas);
        self
    }

    fn config(&self) -> ClientConfig {
        base_config(&self.bootstrap, &self.extra)
    }

    fn partitions_of(&self, name: &str) -> Result<Option<u32>> {
        let md = self.meta.lock().fetch_metadata(Some(name), ADMIN_TIMEOUT).map_err(|e| self.map("fetch metadata", e))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == name) else { return Ok(None) };
        if t.error().is_some() || t.partitions().is_empty() {
            return Ok(None);
        }
        Ok(Some(t.partitions().len() as u32))
    }

    fn map(&self, operation: &str, e: RdError) -> KafkaError {
        map_error(&self.bootstrap, operation, None, e)
    }
}

/// Client properties every Eddy client sets.
fn base_config(bootstrap: &str, extra: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", "eddy")
        // Eddy never relies on topics appearing by themselves.
        .set("allow.auto.create.topics", "false")
        .set("socket.keepalive.enable", "true");
    for (k, v) in extra {
        c.set(k, v);
    }
    c
}

/// Maps a librdkafka error to the class the runtime reacts to.
pub(crate) fn map_error(bootstrap: &str, operation: &str, transactional_id: Option<&str>, e: RdError) -> KafkaError {
    if let RdError::Transaction(t) = &e {
        let tid = transactional_id.unwrap_or("").to_string();
        if t.code() == RDKafkaErrorCode::InvalidProducerEpoch || t.code() == RDKafkaErrorCode::ProducerFenced {
            return KafkaError::Fenced { transactional_id: tid };
        }
        if matches!(
            t.code(),
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::UnsupportedVersion
                | RDKafkaErrorCode::UnsupportedForMessageFormat
        ) {
            return KafkaError::TransactionsUnsupported { bootstrap: bootstrap.into(), message: t.string() };
        }
        if t.is_fatal() {
            // A fatal producer error of a transactional producer is how librdkafka reports
            // fencing in most cases: the producer must never write again.
            return KafkaError::Fenced { transactional_id: tid };
        }
        if t.txn_requires_abort() {
            return KafkaError::Abortable { transactional_id: tid, message: t.string() };
        }
        if t.is_retriable() {
            return KafkaError::Retriable { operation: operation.into(), message: t.string() };
        }
        return KafkaError::other(operation, t.string());
    }
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) | Some(RDKafkaErrorCode::UnknownTopic) => {
            KafkaError::other(operation, "unknown topic or partition")
        }
        Some(RDKafkaErrorCode::AllBrokersDown) | Some(RDKafkaErrorCode::BrokerTransportFailure) => {
            KafkaError::Unreachable { bootstrap: bootstrap.into(), message: e.to_string() }
        }
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => KafkaError::RecordTooLarge { topic: String::new(), bytes: 0 },
        Some(RDKafkaErrorCode::OperationTimedOut) | Some(RDKafkaErrorCode::RequestTimedOut) => {
            KafkaError::Retriable { operation: operation.into(), message: e.to_string() }
        }
        _ => KafkaError::other(operation, e),
    }
}

impl Cluster for RdCluster {
    fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn create_topic(&self, name: &str, partitions: u32, config: &BTreeMap<String, String>) -> Result<()> {
        let create = |replication: TopicReplication<'_>| -> Result<std::result::Result<(), RDKafkaErrorCode>> {
            let mut t = NewTopic::new(name, partitions as i32, replication);
            for (k, v) in config {
                t = t.set(k, v);
            }
            let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT)).request_timeout(Some(ADMIN_TIMEOUT));
            let r = futures::executor::block_on(self.admin.create_topics([&t], &opts)).map_err(|e| self.map("create topic", e))?;
            Ok(match r.into_iter().next() {
                Some(Err((_, code))) => Err(code),
                _ => Ok(()),
            })
        };
        let first = create(TopicReplication::Fixed(self.replication.unwrap_or(-1)))?;
        let result = match first {
            Err(RDKafkaErrorCode::InvalidReplicationFactor) | Err(RDKafkaErrorCode::InvalidRequest) if self.replication.is_none() => {
                create(TopicReplication::Fixed(1))?
            }
            r => r,
        };
        match result {
            Ok(()) => {}
            Err(RDKafkaErrorCode::TopicAlreadyExists) => return Err(KafkaError::TopicExists(name.into())),
            Err(code) => return Err(KafkaError::CreateTopic { topic: name.into(), message: code.to_string() }),
        }
        // Wait until the metadata shows the topic, so that a read or write right after works.
        let deadline = std::time::Instant::now() + ADMIN_TIMEOUT;
        while self.partitions_of(name)?.is_none() {
            if std::time::Instant::now() > deadline {
                return Err(KafkaError::Timeout { operation: format!("creating Kafka topic \"{name}\""), timeout: ADMIN_TIMEOUT });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn delete_topic(&self, name: &str) -> Result<()> {
        let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT)).request_timeout(Some(ADMIN_TIMEOUT));
        let r = futures::executor::block_on(self.admin.delete_topics(&[name], &opts)).map_err(|e| self.map("delete topic", e))?;
        match r.into_iter().next() {
            Some(Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))) => Err(KafkaError::UnknownTopic(name.into())),
            Some(Err((_, code))) => Err(KafkaError::other(format!("deleting Kafka topic \"{name}\""), code)),
            _ => Ok(()),
        }
    }

    fn list_topics(&self) -> Result<Vec<TopicMeta>> {
        let md = self.meta.lock().fetch_metadata(None, ADMIN_TIMEOUT).map_err(|e| self.map("list topics", e))?;
        let mut out: Vec<TopicMeta> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| TopicMeta { name: t.name().to_string(), partitions: t.partitions().len() as u32, config: BTreeMap::new() })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn topic(&self, name: &str) -> Result<TopicMeta> {
        let partitions = self.partitions_of(name)?.ok_or_else(|| KafkaError::UnknownTopic(name.into()))?;
        let opts = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
        let mut config = BTreeMap::new();
        // Brokers that do not describe configurations leave the map empty.
        if let Ok(rs) = futures::executor::block_on(self.admin.describe_configs([&ResourceSpecifier::Topic(name)], &opts)) {
            for r in rs.into_iter().flatten() {
                for e in r.entries {
                    if let Some(v) = e.value {
                        config.insert(e.name, v);
                    }
                }
            }
        }
        Ok(TopicMeta { name: name.into(), partitions, config })
    }

    fn watermarks(&self, tp: &Tp) -> Result<(Offset, Offset)> {
        self.meta
            .lock()
            .fetch_watermarks(&tp.topic, tp.partition as i32, ADMIN_TIMEOUT)
            .map_err(|e| self.map(&format!("reading the offsets of Kafka topic \"{}\"", tp.topic), e))
    }

    fn offset_for_timestamp(&self, tp: &Tp, timestamp: i64) -> Result<Option<Offset>> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&tp.topic, tp.partition as i32, RdOffset::Offset(timestamp))
            .map_err(|e| self.map("offset for timestamp", e))?;
        let r = self.meta.lock().offsets_for_times(tpl, ADMIN_TIMEOUT).map_err(|e| self.map("offset for timestamp", e))?;
        let found = r.find_partition(&tp.topic, tp.partition as i32).map(|e| e.offset());
        Ok(match found {
            Some(RdOffset::Offset(o)) if o >= 0 => Some(o),
            _ => None,
        })
    }

    fn producer(&self, opts: &ProducerOptions) -> Result<Arc<dyn Producer>> {
        Ok(Arc::new(producer::RdProducer::new(self.config(), &self.bootstrap, opts)?))
    }

    fn reader(&self) -> Result<Box<dyn PartitionReader>> {
        Ok(Box::new(reader::RdReader::new(self.config(), &self.bootstrap)?))
    }

    fn group_consumer(&self, opts: &GroupOptions) -> Result<Box<dyn GroupConsumer>> {
        Ok(Box::new(group::RdGroupConsumer::new(self.config(), &self.bootstrap, opts)?))
    }

    fn group_meta(&self, group_id: &str) -> Result<GroupMeta> {
        let mut c = self.config();
        c.set("group.id", group_id).set("enable.auto.commit", "false");
        let consumer: BaseConsumer =
            c.create().map_err(|e| KafkaError::Unreachable { bootstrap: self.bootstrap.clone(), message: e.to_string() })?;
        let meta = consumer.group_metadata().ok_or_else(|| KafkaError::other("group metadata", format!("no metadata for group \"{group_id}\"")))?;
        Ok(GroupMeta(Arc::new(meta)))
    }

    fn committed_offsets(&self, group_id: &str, parts: &[Tp]) -> Result<Vec<Option<Offset>>> {
        let mut c = self.config();
        c.set("group.id", group_id).set("enable.auto.commit", "false");
        let consumer: BaseConsumer =
            c.create().map_err(|e| KafkaError::Unreachable { bootstrap: self.bootstrap.clone(), message: e.to_string() })?;
        let mut tpl = TopicPartitionList::new();
        for tp in parts {
            tpl.add_partition(&tp.topic, tp.partition as i32);
        }
        let got = consumer
            .committed_offsets(tpl, ADMIN_TIMEOUT)
            .map_err(|e| self.map(&format!("reading the offsets of consumer group \"{group_id}\""), e))?;
        Ok(parts.iter().map(|tp| offset_in(&got, tp)).collect())
    }
}

/// Turns a fetched rdkafka message into a [`crate::client::Fetched`].
pub(crate) fn fetched(m: &rdkafka::message::BorrowedMessage<'_>) -> crate::client::Fetched {
    use rdkafka::message::{Headers, Message};
    let headers = m
        .headers()
        .map(|hs| hs.iter().map(|h| storage::Header { key: h.key.to_string(), value: h.value.map(<[u8]>::to_vec) }).collect())
        .unwrap_or_default();
    crate::client::Fetched {
        tp: Tp::new(m.topic(), m.partition() as u32),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis().unwrap_or(0),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
    }
}

/// A topic-partition list of `parts` at their offsets.
pub(crate) fn tpl_of(parts: &[(Tp, Offset)]) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (tp, o) in parts {
        tpl.add_partition_offset(&tp.topic, tp.partition as i32, RdOffset::Offset(*o))
            .map_err(|e| KafkaError::other("assign", e))?;
    }
    Ok(tpl)
}

/// The offset of `tp` in `tpl`, when it is a real offset.
pub(crate) fn offset_in(tpl: &TopicPartitionList, tp: &Tp) -> Option<Offset> {
    match tpl.find_partition(&tp.topic, tp.partition as i32)?.offset() {
        RdOffset::Offset(o) if o >= 0 => Some(o),
        _ => None,
    }
}
