//! The crate's one error type, [`StorageError`], and its [`Result`] alias.
//!
//! Messages are lowercase, name the object they are about and carry the cause in `#[source]`.
//! A full disk is its own variant ([`StorageError::NoSpace`]) so that callers can pause work on it
//! instead of failing.

use std::io;
use std::path::{Path, PathBuf};

use crate::log::Offset;

/// Everything that can go wrong in the topic log and the state store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The topic does not exist.
    #[error("unknown topic \"{topic}\"")]
    UnknownTopic {
        /// Topic name.
        topic: String,
    },
    /// `create_topic` on a name that is taken.
    #[error("topic \"{topic}\" already exists")]
    TopicExists {
        /// Topic name.
        topic: String,
    },
    /// The partition number is out of range.
    #[error("partition {partition} of topic \"{topic}\" does not exist (topic has {partitions} partitions)")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
    },
    /// A topic name outside Kafka's rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
    #[error("invalid topic name \"{name}\"")]
    InvalidTopicName {
        /// The rejected name.
        name: String,
    },
    /// A topic configuration that cannot work (no partitions, zero segment size).
    #[error("invalid configuration for topic \"{topic}\": {reason}")]
    InvalidTopicConfig {
        /// Topic name.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// A record that cannot be stored (too large, a header key over 65,535 bytes).
    #[error("invalid record for partition {partition} of topic \"{topic}\": {reason}")]
    InvalidRecord {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: u32,
        /// What is wrong.
        reason: String,
    },
    /// A record failed its checksum or does not parse; reads stop before it.
    #[error("corrupt record at offset {offset} in partition {partition} of topic \"{topic}\"")]
    Corrupt {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: u32,
        /// Offset of the bad record (the one expected at that place).
        offset: Offset,
    },
    /// A topic's `meta.json` does not parse.
    #[error("invalid topic metadata in {}", path.display())]
    Metadata {
        /// Path of the metadata file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Another [`crate::FileLog`] holds the log directory.
    #[error("log directory {} is locked by another process", path.display())]
    LogLocked {
        /// The log directory.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("i/o error on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A write failed because the disk is full; retrying after space is freed may succeed.
    #[error("no space left on device while writing {}", path.display())]
    NoSpace {
        /// The file being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Another process (or another open store) holds the state directory.
    #[error("state store at {} is locked by another process", path.display())]
    StateLocked {
        /// The state directory.
        path: PathBuf,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// RocksDB could not open the state directory (damaged, unreadable, not a database).
    #[error("cannot open state store at {}", path.display())]
    StateOpen {
        /// The state directory.
        path: PathBuf,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// A RocksDB read or write failed.
    #[error("rocksdb error on state store at {}", path.display())]
    Rocks {
        /// The state directory.
        path: PathBuf,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// The log backend (Kafka) failed; the source says how.
    #[error("the topic log backend failed")]
    Backend {
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The log backend cannot do this (Kafka cannot cut a partition's tail).
    #[error("the topic log backend cannot {operation}")]
    Unsupported {
        /// What was asked.
        operation: String,
    },
}

/// Result with [`StorageError`] as the default error.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// Wraps an I/O error on `path`, turning a full disk (or a file-size limit or quota) into
    /// [`StorageError::NoSpace`].
    pub fn io(path: &Path, source: io::Error) -> Self {
        // A file-size limit (EFBIG, RLIMIT_FSIZE or a quota) is a full disk for this file too.
        if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge) {
            StorageError::NoSpace {
                path: path.to_path_buf(),
                source,
            }
        } else {
            StorageError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// True for [`StorageError::NoSpace`]: the caller may pause and retry once space is freed.
    pub fn is_no_space(&self) -> bool {
        matches!(self, StorageError::NoSpace { .. })
    }
}

/// Adds the path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps the error with [`StorageError::io`].
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| StorageError::io(path, e))
    }
}
