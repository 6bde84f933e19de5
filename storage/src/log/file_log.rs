//! [`FileLog`]: the embedded topic log, a directory of topics on the local file system.
//!
//! Layout under the log directory:
//! ```text
//! .lock                                   held (flock) while a FileLog has the directory open
//! <topic>/meta.json                       TopicConfig as JSON
//! <topic>/<partition>/<base:020>.log       record frames (see record.rs)
//! <topic>/<partition>/<base:020>.index     sparse offset index (see index.rs)
//! <topic>/<partition>/<base:020>.timeindex time index (see index.rs)
//! ```
//! Opening the directory recovers every partition (see recovery.rs) and keeps what it found in
//! [`FileLog::recovery_report`].

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::api::{
    AppendListener, CleanRequest, Offset, ReadBatch, RecordIn, RetentionReport, TopicAdmin,
    TopicConfig, TopicInfo, TopicLog,
};
use super::recovery::RecoveryReport;
use super::topic::{is_trash, trash_path, validate_config, validate_name, Topic};
use crate::error::{IoContext, Result};
use crate::StorageError;

/// When appended records are forced to disk.
///
/// With every policy an append hands its records to the operating system (one `write` per call)
/// before it returns, so they survive a crash of the process; the policy decides when they also
/// survive a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Never fsync; the operating system writes data back when it likes. `sync()` does nothing.
    Never,
    /// Data is written to the OS on every append and fsynced by [`TopicLog::sync`] (the engine
    /// calls it at checkpoints). Records appended since the last `sync` can be lost on power loss.
    #[default]
    OnSync,
    /// Fsync the log file after every append (slow; for tests of durability and tiny workloads).
    Always,
}

/// Options of a [`FileLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// When data is forced to disk; see [`FsyncPolicy`].
    pub fsync: FsyncPolicy,
}

/// The embedded topic log. `Send + Sync`: appends to different partitions run in parallel, reads
/// run alongside appends and see only complete records.
pub struct FileLog {
    dir: PathBuf,
    options: LogOptions,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes topic creation and deletion.
    admin: Mutex<()>,
    listeners: RwLock<Arc<Vec<AppendListener>>>,
    recovery: Vec<RecoveryReport>,
    trash_seq: AtomicU64,
    _lock: File,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl FileLog {
    /// Opens (creating if needed) the log in `dir`, recovering every partition. Fails with
    /// `LogLocked` if another `FileLog` has the directory open.
    pub fn open(dir: &Path, options: LogOptions) -> Result<FileLog> {
        std::fs::create_dir_all(dir).at(dir)?;
        let lock_path = dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StorageError::LogLocked {
                    path: dir.to_path_buf(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StorageError::io(&lock_path, e)),
        }
        let mut topics = BTreeMap::new();
        let mut recovery = Vec::new();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            let path = entry.path();
            if !entry.file_type().at(&path)?.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if is_trash(&name) {
                std::fs::remove_dir_all(&path).at(&path)?;
            } else if validate_name(&name).is_ok() {
                names.push((name, path));
            }
        }
        names.sort();
        for (name, path) in names {
            if let Some(t) = Topic::open(path, &name, options.fsync, &mut recovery)? {
                topics.insert(name, Arc::new(t));
            }
        }
        Ok(FileLog {
            dir: dir.to_path_buf(),
            options,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            listeners: RwLock::new(Arc::new(Vec::new())),
            recovery,
            trash_seq: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What opening found and repaired, one report per partition, in topic and partition order.
    pub fn recovery_report(&self) -> &[RecoveryReport] {
        &self.recovery
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| StorageError::UnknownTopic {
                topic: name.to_string(),
            })
    }
}

impl TopicAdmin for FileLog {
    fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<()> {
        validate_name(name)?;
        validate_config(name, config)?;
        let _admin = self.admin.lock();
        if self.topics.read().contains_key(name) {
            return Err(StorageError::TopicExists {
                topic: name.to_string(),
            });
        }
        let topic = Topic::create(self.dir.join(name), name, config, self.options.fsync)?;
        self.topics
            .write()
            .insert(name.to_string(), Arc::new(topic));
        Ok(())
    }

    fn delete_topic(&self, name: &str) -> Result<()> {
        let _admin = self.admin.lock();
        let Some(topic) = self.topics.write().remove(name) else {
            return Err(StorageError::UnknownTopic {
                topic: name.to_string(),
            });
        };
        // Rename first so that the name is free at once, even if removal fails halfway.
        let n = self.trash_seq.fetch_add(1, Ordering::Relaxed);
        let trash = trash_path(&self.dir, name, n);
        std::fs::rename(&topic.dir, &trash).at(&topic.dir)?;
        std::fs::remove_dir_all(&trash).at(&trash)
    }

    fn list_topics(&self) -> Vec<String> {
        self.topics.read().keys().cloned().collect()
    }

    fn describe_topic(&self, name: &str) -> Result<TopicInfo> {
        Ok(self.topic(name)?.info())
    }
}

impl TopicLog for FileLog {
    fn append(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<Offset> {
        let t = self.topic(topic)?;
        let p = t.partition(partition)?;
        let first = p.append(records)?;
        if !records.is_empty() {
            let end = first + records.len() as i64;
            let listeners = self.listeners.read().clone();
            for l in listeners.iter() {
                l(topic, partition, end);
            }
        }
        Ok(first)
    }

    fn read(
        &self,
        topic: &str,
        partition: u32,
        from: Offset,
        max_bytes: usize,
    ) -> Result<ReadBatch> {
        self.topic(topic)?
            .partition(partition)?
            .read(from, max_bytes)
    }

    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<Option<Offset>> {
        self.topic(topic)?
            .partition(partition)?
            .offset_for_timestamp(timestamp)
    }

    fn truncate(&self, topic: &str, partition: u32, offset: Offset) -> Result<()> {
        self.topic(topic)?.partition(partition)?.truncate(offset)
    }

    fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport> {
        let topics: Vec<_> = self.topics.read().values().cloned().collect();
        let mut report = RetentionReport::default();
        let request = CleanRequest {
            now_ms,
            ..CleanRequest::default()
        };
        for t in topics {
            t.clean(&request, &mut report)?;
        }
        Ok(report)
    }

    fn clean_topic(&self, topic: &str, request: &CleanRequest) -> Result<RetentionReport> {
        let mut report = RetentionReport::default();
        self.topic(topic)?.clean(request, &mut report)?;
        Ok(report)
    }

    fn sync(&self) -> Result<()> {
        if self.options.fsync == FsyncPolicy::Never {
            return Ok(());
        }
        let topics: Vec<_> = self.topics.read().values().cloned().collect();
        for t in topics {
            for p in &t.partitions {
                p.sync()?;
            }
        }
        Ok(())
    }

    /// Listeners run on the appending thread after the partition lock is released, so calls for
    /// one partition from concurrent appenders may arrive out of order: keep the largest offset.
    fn add_listener(&self, listener: AppendListener) {
        let mut l = self.listeners.write();
        let mut list = Vec::clone(&l);
        list.push(listener);
        *l = Arc::new(list);
    }
}
