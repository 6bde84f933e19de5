//! The topic-log interface: what the engine needs from a log of partitioned, append-only topics.
//!
//! [`TopicLog`] is implemented by the embedded [`super::FileLog`]; a Kafka backend can implement it
//! later. Offsets are per partition, start at 0 and grow by one per record.

use std::sync::Arc;

use crate::Result;

/// Position of a record in one partition.
pub type Offset = i64;

/// A record header: a string key and an optional byte value (Kafka allows null header values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value; `None` is a null value.
    pub value: Option<Vec<u8>>,
}

/// A record to append, borrowing its bytes so that encoders can append without copying.
#[derive(Debug, Clone, Copy)]
pub struct RecordIn<'a> {
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Key bytes; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// Value bytes; `None` is a null value (a tombstone on a changelog topic).
    pub value: Option<&'a [u8]>,
    /// Headers in order.
    pub headers: &'a [Header],
}

/// A record as read back, borrowing from a [`ReadBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Offset of the record in its partition.
    pub offset: Offset,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Key bytes; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// Value bytes; `None` is a null value.
    pub value: Option<&'a [u8]>,
    /// Encoded headers; iterate them with [`RecordRef::headers`].
    pub raw_headers: &'a [u8],
}

/// What a topic does with old data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum CleanupPolicy {
    /// Delete whole segments older than `retention_ms` or beyond `retention_bytes`.
    #[default]
    Delete,
    /// Keep the latest record per key (changelog topics); older segments are rewritten.
    Compact,
    /// Both (Kafka's `compact,delete`): compacted, and whole segments past `retention_ms` or
    /// beyond `retention_bytes` are deleted too (windowed changelogs).
    CompactDelete,
}

impl CleanupPolicy {
    /// Kafka's name of the policy: `delete`, `compact` or `compact,delete`.
    pub fn kafka_name(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }

    /// Parses Kafka's names (case-insensitive; `delete,compact` is `compact,delete`).
    pub fn from_kafka_name(name: &str) -> Option<CleanupPolicy> {
        let mut parts: Vec<String> = name.split(',').map(|p| p.trim().to_lowercase()).collect();
        parts.sort();
        parts.dedup();
        match parts.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["delete"] => Some(CleanupPolicy::Delete),
            ["compact"] => Some(CleanupPolicy::Compact),
            ["compact", "delete"] => Some(CleanupPolicy::CompactDelete),
            _ => None,
        }
    }

    /// True when whole segments are deleted by time and size.
    pub fn deletes(self) -> bool {
        self != CleanupPolicy::Compact
    }

    /// True when superseded records are compacted away.
    pub fn compacts(self) -> bool {
        self != CleanupPolicy::Delete
    }
}

/// Settings of one topic, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicConfig {
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Retention policy.
    pub cleanup_policy: CleanupPolicy,
    /// With `Delete` (or `CompactDelete`): segments whose newest record is older than this are
    /// removed. `None`: forever.
    pub retention_ms: Option<i64>,
    /// With `Delete` (or `CompactDelete`): the oldest segments are removed while a partition is
    /// larger. `None`: no limit.
    pub retention_bytes: Option<u64>,
    /// A segment is rolled when it reaches this size.
    pub segment_bytes: u64,
}

impl TopicConfig {
    /// A topic with `partitions` partitions and default settings (delete policy, kept forever).
    pub fn new(partitions: u32) -> Self {
        TopicConfig {
            partitions,
            cleanup_policy: CleanupPolicy::Delete,
            retention_ms: None,
            retention_bytes: None,
            segment_bytes: 64 << 20,
        }
    }
}

/// Offsets and size of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The first offset still in the log (grows with retention).
    pub start_offset: Offset,
    /// The offset the next appended record will get.
    pub end_offset: Offset,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// A topic's configuration and the state of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Its configuration.
    pub config: TopicConfig,
    /// One entry per partition, in partition order.
    pub partitions: Vec<PartitionInfo>,
}

/// Called after records are appended to (topic, partition), with the new end offset.
pub type AppendListener = Arc<dyn Fn(&str, u32, Offset) + Send + Sync>;

/// What a retention or compaction pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segments deleted.
    pub segments_deleted: u64,
    /// Records removed by compaction.
    pub records_compacted: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// What one cleaning pass over a topic may touch (see [`TopicLog::clean_topic`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanRequest {
    /// The current wall-clock time (ms), against which `retention_ms` is measured.
    pub now_ms: i64,
    /// Per partition, in partition order: the first offset that must stay as it is (what a reader
    /// has not consumed yet, or what was written after the last checkpoint). A segment is deleted
    /// or compacted only when every record in it lies below its partition's floor. A partition
    /// without an entry has no floor (every closed segment may go).
    pub floors: Vec<Offset>,
    /// Also delete every closed segment wholly below the floor, whatever the retention settings
    /// (internal repartition topics: records are dropped once every reader has consumed them).
    pub delete_consumed: bool,
}

/// Topic management: create, delete, list, describe.
pub trait TopicAdmin: Send + Sync {
    /// Creates a topic. Errors with `TopicExists` if it is there already.
    fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<()>;
    /// Deletes a topic and its data. Errors with `UnknownTopic` if it does not exist.
    fn delete_topic(&self, name: &str) -> Result<()>;
    /// Names of all topics, sorted.
    fn list_topics(&self) -> Vec<String>;
    /// Configuration and partition offsets of one topic.
    fn describe_topic(&self, name: &str) -> Result<TopicInfo>;
}

/// Appending and reading records.
pub trait TopicLog: TopicAdmin {
    /// Appends records to one partition, in order, and returns the offset of the first one.
    /// The records are readable when this returns; they are durable after [`TopicLog::sync`]
    /// (or at once with `FsyncPolicy::Always`).
    fn append(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<Offset>;
    /// Reads records of one partition starting at `from`, up to about `max_bytes` of record data
    /// (always at least one record if one exists). `from` below the start offset reads from the
    /// start; `from` at the end returns an empty batch.
    fn read(&self, topic: &str, partition: u32, from: Offset, max_bytes: usize) -> Result<ReadBatch>;
    /// The first offset whose record has a timestamp at or after `timestamp`; `None` if none.
    fn offset_for_timestamp(&self, topic: &str, partition: u32, timestamp: i64) -> Result<Option<Offset>>;
    /// Removes every record at or after `offset` (used to cut output written after the last checkpoint).
    fn truncate(&self, topic: &str, partition: u32, offset: Offset) -> Result<()>;
    /// Applies retention and compaction to every topic; `now_ms` is the current wall-clock time.
    fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport>;
    /// Applies one topic's cleanup policy within the limits of `request` (the engine's
    /// background cleaner calls it with the floors of its readers). Appends and reads go on
    /// meanwhile: segments are swapped under a short lock. Default: nothing is removed (for
    /// backends whose broker applies retention itself).
    fn clean_topic(&self, _topic: &str, _request: &CleanRequest) -> Result<RetentionReport> {
        Ok(RetentionReport::default())
    }
    /// Makes every appended record durable (fsync).
    fn sync(&self) -> Result<()>;
    /// Registers a listener called after every append.
    fn add_listener(&self, listener: AppendListener);
    /// True when every append to every topic calls the listeners (the embedded log). False for
    /// a log that others write to as well (Kafka): readers must poll instead of waiting for a
    /// listener. Default: true.
    fn notifies_appends(&self) -> bool {
        true
    }
    /// True when [`TopicLog::truncate`] works, so that recovery can cut output written after the
    /// last checkpoint (the embedded log). Default: true.
    fn can_truncate(&self) -> bool {
        true
    }
}

/// Records read from one partition. Owns the bytes; hands out [`RecordRef`]s.
#[derive(Debug, Default, Clone)]
pub struct ReadBatch {
    /// Raw bytes the records point into.
    pub buf: Vec<u8>,
    /// Per record: where its parts lie in `buf`.
    pub entries: Vec<RecordSpan>,
    /// The offset after the last record returned (where the next read should start).
    pub next_offset: Offset,
}

/// Where one record's parts lie in a [`ReadBatch`]'s buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    /// Offset of the record.
    pub offset: Offset,
    /// Timestamp of the record.
    pub timestamp: i64,
    /// Key bytes as (start, len); `None` for a null key.
    pub key: Option<(u32, u32)>,
    /// Value bytes as (start, len); `None` for a null value.
    pub value: Option<(u32, u32)>,
    /// Encoded headers as (start, len).
    pub headers: (u32, u32),
}

impl ReadBatch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no record was read.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The i-th record.
    pub fn get(&self, i: usize) -> RecordRef<'_> {
        let e = &self.entries[i];
        let slice = |(s, l): (u32, u32)| &self.buf[s as usize..(s + l) as usize];
        RecordRef {
            offset: e.offset,
            timestamp: e.timestamp,
            key: e.key.map(slice),
            value: e.value.map(slice),
            raw_headers: slice(e.headers),
        }
    }

    /// Records in offset order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        (0..self.entries.len()).map(move |i| self.get(i))
    }
}

/// Encodes headers in the layout [`RecordRef::headers`] reads: per header
/// `u16 key_len, key, i32 value_len (-1 = null), value`, all little-endian.
pub fn encode_headers(headers: &[Header], out: &mut Vec<u8>) {
    for h in headers {
        out.extend_from_slice(&(h.key.len() as u16).to_le_bytes());
        out.extend_from_slice(h.key.as_bytes());
        match &h.value {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&(-1i32).to_le_bytes()),
        }
    }
}

impl<'a> RecordRef<'a> {
    /// Decoded headers, in order.
    pub fn headers(&self) -> Vec<Header> {
        let mut out = Vec::new();
        let b = self.raw_headers;
        let mut i = 0;
        while i + 2 <= b.len() {
            let kl = u16::from_le_bytes([b[i], b[i + 1]]) as usize;
            i += 2;
            let key = String::from_utf8_lossy(&b[i..i + kl]).into_owned();
            i += kl;
            let vl = i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            i += 4;
            let value = if vl < 0 {
                None
            } else {
                let v = b[i..i + vl as usize].to_vec();
                i += vl as usize;
                Some(v)
            };
            out.push(Header { key, value });
        }
        out
    }
}
