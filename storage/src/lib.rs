//! Eddy's storage layer: bytes only, no SQL.
//!
//! - [`log`]: the embedded topic log ([`FileLog`]) behind the [`TopicLog`] trait, so that a Kafka
//!   backend can take its place: partitioned, append-only topics in segment files with offset and
//!   time indexes, crash recovery, retention and compaction, and Kafka's key partitioner.
//! - [`state`]: the key-value state store ([`RocksStore`] over RocksDB, [`MemStore`] for tests)
//!   behind [`KvStore`], where the engine commits operator state, source offsets and sink positions
//!   in one atomic [`StateBatch`].
//!
//! Errors are one enum, [`StorageError`].

mod error;
pub mod log;
pub mod state;

pub use error::{Result, StorageError};
pub use log::{
    encode_headers, murmur2, partition_for_key, AppendListener, CleanRequest, CleanupPolicy, FileLog,
    FsyncPolicy, Header, LogOptions, Offset, PartitionInfo, ReadBatch, RecordIn, RecordRef,
    RecordSpan, RecoveryReport, RetentionReport, TopicAdmin, TopicConfig, TopicInfo, TopicLog,
};
pub use state::{BatchOp, KvStore, MemStore, PendingStore, RocksStore, ScanIter, StateBatch, StateOptions};
