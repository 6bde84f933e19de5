//! [`KafkaLog`]: the engine's [`TopicLog`] over Kafka topics.
//!
//! - Admin calls go to the cluster; partition counts are cached (they only grow, and Eddy never
//!   grows them), configurations and watermarks are asked for each time.
//! - `append` writes through one shared idempotent producer (`acks=all`) to the partition the
//!   caller names (Eddy computes Kafka's murmur2 partition itself) and waits for the
//!   acknowledgement, so that a record is readable when `append` returns, as on the embedded log.
//! - `read` serves each (topic, partition) from a small pool of assign-only readers: a reader
//!   whose position is the offset asked for goes on where it stood (librdkafka prefetches), any
//!   other is moved there. Readers idle for a minute are closed.
//! - Offsets are not dense on Kafka: a batch's `next_offset` is the reader's position, which is
//!   past transaction markers and aborted records, so that a caller that reached the partition's
//!   end offset (the last stable offset) knows it is caught up.
//! - Eddy's internal topics (`_eddy_commands`, `_eddy_<query>_repartition`, the processing log
//!   `eddy_processing_log`) live in Kafka under the service id: `_eddy-<service id>-commands`,
//!   `_eddy-<service id>-<query>_repartition`, `_eddy-<service id>-processing_log`, so that several
//!   Eddy services share a cluster without seeing each other's; see [`Names`].
//! - `truncate` has no Kafka form (Kafka cuts prefixes, never suffixes); exactly-once over Kafka
//!   comes from transactions instead (see the runtime). Retention is the broker's job.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use storage::{
    encode_headers, AppendListener, CleanRequest, CleanupPolicy, Offset, PartitionInfo, ReadBatch, RecordIn, RecordSpan, RetentionReport,
    StorageError, TopicAdmin, TopicConfig, TopicInfo, TopicLog,
};

use crate::client::{Cluster, Fetched, PartitionReader, Producer, ProducerOptions, Tp};
use crate::error::KafkaError;

/// How long a read waits for records when none are buffered.
const READ_WAIT: Duration = Duration::from_millis(20);
/// Readers unused this long are closed.
const READER_IDLE: Duration = Duration::from_secs(60);
/// At most this many readers per partition.
const READERS_PER_PARTITION: usize = 8;
/// How long a flush waits for the producer.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Maps Eddy's names of internal topics to the Kafka topics of one service id and back.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

/// Eddy's prefix of internal topics.
const EDDY_INTERNAL: &str = "_eddy_";
/// Eddy's name of the processing-log topic.
const EDDY_PROCESSING_LOG: &str = "eddy_processing_log";
/// Eddy's name of the embedded schema registry's topic; the same name as Confluent Schema
/// Registry's topic, so over Kafka it lives under the service id instead, never in a real
/// registry's `_schemas` (use `--schema-registry URL` to work with that registry).
const EDDY_SCHEMAS: &str = "_schemas";

impl Names {
    /// The names of service `service_id`.
    pub fn new(service_id: &str) -> Self {
        Names { prefix: format!("_eddy-{service_id}-") }
    }

    /// The prefix of every Kafka topic of this service (`_eddy-<service id>-`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Kafka topic of an Eddy topic name.
    pub fn physical<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        if name == EDDY_PROCESSING_LOG {
            format!("{}processing_log", self.prefix).into()
        } else if name == EDDY_SCHEMAS {
            format!("{}schemas", self.prefix).into()
        } else if let Some(rest) = name.strip_prefix(EDDY_INTERNAL) {
            format!("{}{rest}", self.prefix).into()
        } else {
            name.into()
        }
    }

    /// The Eddy name of a Kafka topic; `None` for internal topics of Kafka (`__...`) and of other
    /// Eddy services (`_eddy-<other>-...`) and for a Confluent Schema Registry's `_schemas`.
    pub fn logical(&self, kafka: &str) -> Option<String> {
        if let Some(rest) = kafka.strip_prefix(&self.prefix) {
            return Some(match rest {
                "processing_log" => EDDY_PROCESSING_LOG.into(),
                "schemas" => EDDY_SCHEMAS.into(),
                _ => format!("{EDDY_INTERNAL}{rest}"),
            });
        }
        if kafka.starts_with("__") || kafka.starts_with("_eddy-") || kafka == EDDY_SCHEMAS {
            return None;
        }
        Some(kafka.to_string())
    }
}

/// One pooled reader of one partition.
struct Slot {
    reader: Box<dyn PartitionReader>,
    tp: Tp,
    /// The offset of the next record this slot hands out (buffered or fetched).
    next: Offset,
    /// Records fetched but not handed out yet.
    buffered: std::collections::VecDeque<Fetched>,
    last_used: Instant,
}

/// A [`TopicLog`] over a Kafka cluster.
pub struct KafkaLog {
    cluster: Arc<dyn Cluster>,
    names: Names,
    producer: Arc<dyn Producer>,
    partitions: RwLock<HashMap<String, u32>>,
    readers: Mutex<HashMap<Tp, Vec<Arc<Mutex<Slot>>>>>,
    listeners: RwLock<Vec<AppendListener>>,
}

impl KafkaLog {
    /// A log over `cluster` for service `service_id`, writing with a new idempotent producer.
    ///
    /// # Errors
    /// When the producer cannot be made.
    pub fn new(cluster: Arc<dyn Cluster>, service_id: &str) -> Result<Self, KafkaError> {
        let producer = cluster.producer(&ProducerOptions::default())?;
        Ok(KafkaLog {
            cluster,
            names: Names::new(service_id),
            producer,
            partitions: RwLock::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
            listeners: RwLock::new(Vec::new()),
        })
    }

    /// The cluster.
    pub fn cluster(&self) -> &Arc<dyn Cluster> {
        &self.cluster
    }

    /// How Eddy's internal topic names map to this service's Kafka topics.
    pub fn names(&self) -> &Names {
        &self.names
    }

    fn partition_count(&self, topic: &str) -> storage::Result<u32> {
        if let Some(&n) = self.partitions.read().get(topic) {
            return Ok(n);
        }
        let meta = self.cluster.topic(topic).map_err(|e| not_found(e, topic))?;
        self.partitions.write().insert(topic.to_string(), meta.partitions);
        Ok(meta.partitions)
    }

    fn check_partition(&self, topic: &str, partition: u32) -> storage::Result<()> {
        let n = self.partition_count(topic)?;
        if partition >= n {
            return Err(StorageError::UnknownPartition { topic: topic.into(), partition, partitions: n });
        }
        Ok(())
    }

    /// A slot of `tp` positioned at `from`, locked for the caller.
    fn slot(&self, tp: &Tp, from: Offset) -> storage::Result<Arc<Mutex<Slot>>> {
        let mut pool = self.readers.lock();
        // Close readers nobody used for a while.
        for slots in pool.values_mut() {
            slots.retain(|s| s.try_lock().is_none_or(|s| s.last_used.elapsed() < READER_IDLE));
        }
        pool.retain(|_, v| !v.is_empty());
        let slots = pool.entry(tp.clone()).or_default();
        if let Some(s) = slots.iter().find(|s| s.try_lock().is_some_and(|g| g.next == from)) {
            return Ok(s.clone());
        }
        if let Some(s) = slots.iter().find(|s| s.try_lock().is_some()) {
            let s = s.clone();
            {
                let mut g = s.lock();
                g.reader.assign(&[(tp.clone(), from)])?;
                g.next = from;
                g.buffered.clear();
            }
            return Ok(s);
        }
        let mut reader = self.cluster.reader()?;
        reader.assign(&[(tp.clone(), from)])?;
        let s = Arc::new(Mutex::new(Slot {
            reader,
            tp: tp.clone(),
            next: from,
            buffered: Default::default(),
            last_used: Instant::now(),
        }));
        if slots.len() < READERS_PER_PARTITION {
            slots.push(s.clone());
        }
        Ok(s)
    }

    fn notify(&self, topic: &str, partition: u32, end: Offset) {
        for l in self.listeners.read().iter() {
            l(topic, partition, end);
        }
    }
}

/// `UnknownTopic` for a topic that is not there, the error itself otherwise.
fn not_found(e: KafkaError, topic: &str) -> StorageError {
    match e {
        KafkaError::UnknownTopic(_) => StorageError::UnknownTopic { topic: topic.into() },
        e => e.into(),
    }
}

/// Kafka topic properties for an Eddy topic configuration. `retention_ms: None` means kept
/// forever, as on the embedded log (`retention.ms=-1`), not the broker's default.
pub fn kafka_config(config: &TopicConfig) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("cleanup.policy".into(), config.cleanup_policy.kafka_name().into());
    m.insert("retention.ms".into(), config.retention_ms.unwrap_or(-1).to_string());
    if let Some(b) = config.retention_bytes {
        m.insert("retention.bytes".into(), b.to_string());
    }
    m
}

/// The Eddy topic configuration a Kafka topic's properties describe.
fn eddy_config(partitions: u32, config: &BTreeMap<String, String>) -> TopicConfig {
    let mut c = TopicConfig::new(partitions);
    if let Some(p) = config.get("cleanup.policy").and_then(|p| CleanupPolicy::from_kafka_name(p)) {
        c.cleanup_policy = p;
    }
    c.retention_ms = config.get("retention.ms").and_then(|v| v.parse::<i64>().ok()).filter(|&v| v >= 0);
    c.retention_bytes = config.get("retention.bytes").and_then(|v| v.parse::<i64>().ok()).filter(|&v| v >= 0).map(|v| v as u64);
    if let Some(s) = config.get("segment.bytes").and_then(|v| v.parse::<u64>().ok()) {
        c.segment_bytes = s;
    }
    c
}

impl TopicAdmin for KafkaLog {
    fn create_topic(&self, name: &str, config: &TopicConfig) -> storage::Result<()> {
        let name = &*self.names.physical(name);
        if config.partitions == 0 {
            return Err(StorageError::InvalidTopicConfig { topic: name.into(), reason: "a topic needs at least one partition".into() });
        }
        self.cluster.create_topic(name, config.partitions, &kafka_config(config)).map_err(|e| match e {
            KafkaError::TopicExists(t) => StorageError::TopicExists { topic: t },
            e => e.into(),
        })?;
        self.partitions.write().insert(name.to_string(), config.partitions);
        Ok(())
    }

    fn delete_topic(&self, name: &str) -> storage::Result<()> {
        let name = &*self.names.physical(name);
        self.partitions.write().remove(name);
        self.readers.lock().retain(|tp, _| tp.topic != name);
        self.cluster.delete_topic(name).map_err(|e| not_found(e, name))
    }

    fn list_topics(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.cluster.list_topics() {
            Ok(ts) => ts.into_iter().filter_map(|t| self.names.logical(&t.name)).collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    fn describe_topic(&self, logical: &str) -> storage::Result<TopicInfo> {
        let name = &*self.names.physical(logical);
        let meta = self.cluster.topic(name).map_err(|e| not_found(e, logical))?;
        self.partitions.write().insert(name.to_string(), meta.partitions);
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        for p in 0..meta.partitions {
            let (start, end) = self.cluster.watermarks(&Tp::new(name, p))?;
            partitions.push(PartitionInfo { start_offset: start, end_offset: end, size_bytes: 0 });
        }
        Ok(TopicInfo { name: logical.into(), config: eddy_config(meta.partitions, &meta.config), partitions })
    }
}

impl TopicLog for KafkaLog {
    fn append(&self, logical: &str, partition: u32, records: &[RecordIn<'_>]) -> storage::Result<Offset> {
        let topic = &*self.names.physical(logical);
        self.check_partition(topic, partition)?;
        let first = self.producer.send_and_wait(topic, partition, records).map_err(|e| match e {
            KafkaError::RecordTooLarge { bytes, .. } => StorageError::InvalidRecord {
                topic: topic.into(),
                partition,
                reason: format!("a record of {bytes} bytes is larger than the Kafka broker accepts (message.max.bytes)"),
            },
            e => e.into(),
        })?;
        self.notify(logical, partition, first + records.len() as Offset);
        Ok(first)
    }

    fn read(&self, topic: &str, partition: u32, from: Offset, max_bytes: usize) -> storage::Result<ReadBatch> {
        let topic = &*self.names.physical(topic);
        self.check_partition(topic, partition)?;
        let tp = Tp::new(topic, partition);
        let slot = self.slot(&tp, from)?;
        let mut s = slot.lock();
        s.last_used = Instant::now();
        if s.next != from {
            // Another caller moved it between the pick and the lock.
            s.reader.assign(&[(tp.clone(), from)])?;
            s.next = from;
            s.buffered.clear();
        }
        if s.buffered.is_empty() {
            let got = s.reader.poll(READ_WAIT, 10_000)?;
            s.buffered.extend(got.into_iter().filter(|f| f.tp == tp));
        }
        let mut batch = ReadBatch::default();
        let mut bytes = 0usize;
        while let Some(f) = s.buffered.front() {
            if f.offset < from {
                s.buffered.pop_front();
                continue;
            }
            let size = f.key.as_ref().map_or(0, Vec::len) + f.value.as_ref().map_or(0, Vec::len);
            if !batch.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            let f = s.buffered.pop_front().expect("front");
            push_record(&mut batch, &f);
        }
        let after_last = batch.entries.last().map(|e| e.offset + 1);
        s.next = match after_last {
            Some(n) => n,
            None => from,
        };
        // Past transaction markers and aborted records, as far as the reader has gone.
        if s.buffered.is_empty() {
            if let Some(p) = s.reader.position(&s.tp)? {
                s.next = s.next.max(p);
            }
        }
        batch.next_offset = s.next.max(from);
        Ok(batch)
    }

    fn offset_for_timestamp(&self, topic: &str, partition: u32, timestamp: i64) -> storage::Result<Option<Offset>> {
        let topic = &*self.names.physical(topic);
        self.check_partition(topic, partition)?;
        Ok(self.cluster.offset_for_timestamp(&Tp::new(topic, partition), timestamp)?)
    }

    fn truncate(&self, _topic: &str, _partition: u32, _offset: Offset) -> storage::Result<()> {
        Err(StorageError::Unsupported { operation: "cut the tail of a Kafka topic".into() })
    }

    fn enforce_retention(&self, _now_ms: i64) -> storage::Result<RetentionReport> {
        // The broker applies retention and compaction to Kafka topics.
        Ok(RetentionReport::default())
    }

    fn clean_topic(&self, _topic: &str, _request: &CleanRequest) -> storage::Result<RetentionReport> {
        // The broker's job too.
        Ok(RetentionReport::default())
    }

    fn sync(&self) -> storage::Result<()> {
        Ok(self.producer.flush(FLUSH_TIMEOUT)?)
    }

    fn add_listener(&self, listener: AppendListener) {
        self.listeners.write().push(listener);
    }

    fn notifies_appends(&self) -> bool {
        false
    }

    fn can_truncate(&self) -> bool {
        false
    }
}

/// Appends a fetched record to a read batch.
fn push_record(batch: &mut ReadBatch, f: &Fetched) {
    let mut put = |b: &Option<Vec<u8>>| {
        b.as_ref().map(|b| {
            let start = batch.buf.len() as u32;
            batch.buf.extend_from_slice(b);
            (start, b.len() as u32)
        })
    };
    let key = put(&f.key);
    let value = put(&f.value);
    let hstart = batch.buf.len() as u32;
    encode_headers(&f.headers, &mut batch.buf);
    let headers = (hstart, batch.buf.len() as u32 - hstart);
    batch.entries.push(RecordSpan { offset: f.offset, timestamp: f.timestamp, key, value, headers });
}
