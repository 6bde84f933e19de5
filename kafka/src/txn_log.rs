//! [`TxnLog`]: the topic log a task's sinks write to over Kafka. Appends go to the task's own
//! producer without waiting (inside the task's open transaction under exactly-once; flushed at
//! the commit under at-least-once); everything else is the shared [`KafkaLog`]'s.
//!
//! Every record written gets three headers that say which attempt of which epoch of which task
//! wrote it: `eddy.task` (`query/subtopology/partition`), `eddy.epoch` and `eddy.attempt`. They
//! cost a few bytes per record and let a reader of a broker that does not hide aborted
//! transactions keep only committed epochs (per task and epoch, the greatest attempt).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use storage::{AppendListener, Header, Offset, ReadBatch, RecordIn, RetentionReport, TopicAdmin, TopicConfig, TopicInfo, TopicLog};

use crate::client::Producer;
use crate::log::KafkaLog;

/// Header naming the task that wrote a record.
pub const TASK_HEADER: &str = "eddy.task";
/// Header with the task's epoch (one transaction) that wrote a record.
pub const EPOCH_HEADER: &str = "eddy.epoch";
/// Header with the attempt (one incarnation of the task) that wrote a record.
pub const ATTEMPT_HEADER: &str = "eddy.attempt";

/// A task's writes, in its epoch.
pub struct TxnLog {
    base: Arc<KafkaLog>,
    producer: Arc<dyn Producer>,
    task: String,
    attempt: u64,
    epoch: Arc<AtomicU64>,
}

impl TxnLog {
    /// Writes of task `task` through `producer`; `epoch` is the task's current epoch.
    pub fn new(base: Arc<KafkaLog>, producer: Arc<dyn Producer>, task: String, attempt: u64, epoch: Arc<AtomicU64>) -> Self {
        TxnLog { base, producer, task, attempt, epoch }
    }

    /// The Kafka topic of an Eddy topic name.
    pub fn physical(&self, topic: &str) -> String {
        self.base.names().physical(topic).into_owned()
    }

    /// The headers every record of the current epoch carries.
    pub fn epoch_headers(&self) -> [Header; 3] {
        epoch_headers(&self.task, self.epoch.load(Ordering::Relaxed), self.attempt)
    }
}

/// The `eddy.*` headers of (task, epoch, attempt).
pub fn epoch_headers(task: &str, epoch: u64, attempt: u64) -> [Header; 3] {
    [
        Header { key: TASK_HEADER.into(), value: Some(task.as_bytes().to_vec()) },
        Header { key: EPOCH_HEADER.into(), value: Some(epoch.to_string().into_bytes()) },
        Header { key: ATTEMPT_HEADER.into(), value: Some(attempt.to_string().into_bytes()) },
    ]
}

impl TopicAdmin for TxnLog {
    fn create_topic(&self, name: &str, config: &TopicConfig) -> storage::Result<()> {
        self.base.create_topic(name, config)
    }
    fn delete_topic(&self, name: &str) -> storage::Result<()> {
        self.base.delete_topic(name)
    }
    fn list_topics(&self) -> Vec<String> {
        self.base.list_topics()
    }
    fn describe_topic(&self, name: &str) -> storage::Result<TopicInfo> {
        self.base.describe_topic(name)
    }
}

impl TopicLog for TxnLog {
    /// Queues the records in the task's epoch; returns -1 (offsets are known only to the broker
    /// until the epoch commits).
    fn append(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> storage::Result<Offset> {
        let physical = self.base.names().physical(topic);
        let common = self.epoch_headers();
        let own: Vec<Vec<Header>> = records
            .iter()
            .filter(|r| !r.headers.is_empty())
            .map(|r| r.headers.iter().cloned().chain(common.iter().cloned()).collect())
            .collect();
        let mut own_iter = own.iter();
        let with: Vec<RecordIn<'_>> = records
            .iter()
            .map(|r| {
                let headers: &[Header] = if r.headers.is_empty() { &common } else { own_iter.next().expect("one per record with headers") };
                RecordIn { headers, ..*r }
            })
            .collect();
        self.producer.send(&physical, partition, &with)?;
        Ok(-1)
    }
    fn read(&self, topic: &str, partition: u32, from: Offset, max_bytes: usize) -> storage::Result<ReadBatch> {
        self.base.read(topic, partition, from, max_bytes)
    }
    fn offset_for_timestamp(&self, topic: &str, partition: u32, timestamp: i64) -> storage::Result<Option<Offset>> {
        self.base.offset_for_timestamp(topic, partition, timestamp)
    }
    fn truncate(&self, topic: &str, partition: u32, offset: Offset) -> storage::Result<()> {
        self.base.truncate(topic, partition, offset)
    }
    fn enforce_retention(&self, now_ms: i64) -> storage::Result<RetentionReport> {
        self.base.enforce_retention(now_ms)
    }
    fn clean_topic(&self, topic: &str, request: &storage::CleanRequest) -> storage::Result<RetentionReport> {
        self.base.clean_topic(topic, request)
    }
    fn sync(&self) -> storage::Result<()> {
        // The epoch's commit makes the task's records durable.
        Ok(())
    }
    fn add_listener(&self, listener: AppendListener) {
        self.base.add_listener(listener)
    }
    fn notifies_appends(&self) -> bool {
        false
    }
    fn can_truncate(&self) -> bool {
        false
    }
}
