//! A full disk pauses a query instead of failing it.
//!
//! The tasks of a query write through [`PausingLog`]: an append that fails with
//! [`storage::StorageError::NoSpace`] (a full disk, a file-size limit, a quota) has left nothing
//! behind (the log cuts a failed write back), so the same append is retried until it succeeds.
//! Meanwhile the task, and with it its query, is paused where it stood: no input is skipped and
//! no output written twice, and the query status says why (`SHOW QUERIES`). The query resumes by
//! itself when space returns; stopping it or shutting the engine down ends the wait with the
//! error. Checkpoints wait for paused tasks (they could not be written either).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use storage::{
    AppendListener, Offset, ReadBatch, RecordIn, RetentionReport, TopicAdmin, TopicConfig, TopicInfo, TopicLog,
};

use super::query::QueryShared;

/// First and longest wait between retries of an append that found no space.
const RETRY_MIN: Duration = Duration::from_millis(20);
const RETRY_MAX: Duration = Duration::from_millis(500);

/// A [`TopicLog`] whose appends wait for space (see the module docs).
pub(crate) struct PausingLog {
    pub inner: Arc<dyn TopicLog>,
    pub query: Arc<QueryShared>,
    /// The engine is shutting down: give up waiting.
    pub closing: Arc<AtomicBool>,
}

impl TopicAdmin for PausingLog {
    fn create_topic(&self, name: &str, config: &TopicConfig) -> storage::Result<()> {
        self.inner.create_topic(name, config)
    }
    fn delete_topic(&self, name: &str) -> storage::Result<()> {
        self.inner.delete_topic(name)
    }
    fn list_topics(&self) -> Vec<String> {
        self.inner.list_topics()
    }
    fn describe_topic(&self, name: &str) -> storage::Result<TopicInfo> {
        self.inner.describe_topic(name)
    }
}

impl TopicLog for PausingLog {
    fn append(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> storage::Result<Offset> {
        let mut wait = RETRY_MIN;
        loop {
            match self.inner.append(topic, partition, records) {
                Err(e) if e.is_no_space() => {
                    if self.query.stop.load(Ordering::Relaxed) || self.closing.load(Ordering::Relaxed) {
                        self.query.set_paused(None);
                        return Err(e);
                    }
                    self.query.set_paused(Some(format!("paused: {}; resumes when space is freed", crate::error::error_chain(&e))));
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_MAX);
                }
                r => {
                    if wait > RETRY_MIN {
                        self.query.set_paused(None);
                    }
                    return r;
                }
            }
        }
    }
    fn read(&self, topic: &str, partition: u32, from: Offset, max_bytes: usize) -> storage::Result<ReadBatch> {
        self.inner.read(topic, partition, from, max_bytes)
    }
    fn offset_for_timestamp(&self, topic: &str, partition: u32, timestamp: i64) -> storage::Result<Option<Offset>> {
        self.inner.offset_for_timestamp(topic, partition, timestamp)
    }
    fn truncate(&self, topic: &str, partition: u32, offset: Offset) -> storage::Result<()> {
        self.inner.truncate(topic, partition, offset)
    }
    fn enforce_retention(&self, now_ms: i64) -> storage::Result<RetentionReport> {
        self.inner.enforce_retention(now_ms)
    }
    fn clean_topic(&self, topic: &str, request: &storage::CleanRequest) -> storage::Result<RetentionReport> {
        self.inner.clean_topic(topic, request)
    }
    fn sync(&self) -> storage::Result<()> {
        self.inner.sync()
    }
    fn add_listener(&self, listener: AppendListener) {
        self.inner.add_listener(listener)
    }
    fn notifies_appends(&self) -> bool {
        self.inner.notifies_appends()
    }
    fn can_truncate(&self) -> bool {
        self.inner.can_truncate()
    }
}
