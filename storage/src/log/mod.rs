//! The embedded topic log: partitioned, append-only topics stored as segment files.
//!
//! `api.rs` holds the interface ([`TopicLog`], [`TopicAdmin`] and their data types); the rest is
//! [`FileLog`], one concern per file: the record frame (`record.rs`), indexes (`index.rs`),
//! segments (`segment.rs`), crash recovery (`recovery.rs`), partitions (`partition.rs`, reads in
//! `read.rs`, retention and compaction in `retention.rs`), topics (`topic.rs`) and the partitioner.
//! The on-disk layout is described in `file_log.rs`.

mod api;
mod file_log;
mod index;
mod partition;
mod partitioner;
mod read;
mod record;
mod recovery;
mod retention;
mod segment;
mod topic;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod floor_tests;

pub use api::*;
pub use file_log::{FileLog, FsyncPolicy, LogOptions};
pub use partitioner::{murmur2, partition_for_key};
pub use recovery::RecoveryReport;
