//! A topic: its name rules, its `meta.json` and its partitions.
//!
//! Files: `<log dir>/<topic>/meta.json` (the [`TopicConfig`] as JSON, written last on creation via
//! a temporary file and a rename, so a topic directory without it is an unfinished creation) and
//! `<log dir>/<topic>/<partition>/` per partition (see `partition.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::api::{CleanRequest, RetentionReport, TopicConfig, TopicInfo};
use super::Offset;
use super::file_log::FsyncPolicy;
use super::partition::{sync_dir, Partition};
use super::recovery::RecoveryReport;
use crate::error::{IoContext, Result};
use crate::StorageError;

/// Name of the metadata file in a topic directory.
const META: &str = "meta.json";

/// Checks Kafka's topic name rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty()
        || name.len() > 249
        || name == "."
        || name == ".."
        || !name.chars().all(legal)
    {
        return Err(StorageError::InvalidTopicName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Checks that a configuration can work.
pub(crate) fn validate_config(name: &str, config: &TopicConfig) -> Result<()> {
    let reason = if config.partitions == 0 {
        "partitions must be at least 1"
    } else if config.segment_bytes == 0 {
        "segment_bytes must be at least 1"
    } else if config.retention_ms.is_some_and(|ms| ms < 0) {
        "retention_ms must not be negative"
    } else {
        return Ok(());
    };
    Err(StorageError::InvalidTopicConfig {
        topic: name.to_string(),
        reason: reason.to_string(),
    })
}

/// An open topic.
pub(crate) struct Topic {
    pub name: Arc<str>,
    pub config: TopicConfig,
    pub dir: PathBuf,
    pub partitions: Vec<Partition>,
}

impl Topic {
    /// Creates the directories and metadata of a new topic in `dir` (which must not hold one).
    pub fn create(
        dir: PathBuf,
        name: &str,
        config: &TopicConfig,
        fsync: FsyncPolicy,
    ) -> Result<Topic> {
        if dir.exists() {
            // Leftover of a creation that did not finish (no meta.json).
            std::fs::remove_dir_all(&dir).at(&dir)?;
        }
        std::fs::create_dir_all(&dir).at(&dir)?;
        let name: Arc<str> = name.into();
        let mut partitions = Vec::with_capacity(config.partitions as usize);
        for id in 0..config.partitions {
            let pdir = dir.join(id.to_string());
            partitions.push(Partition::create(
                name.clone(),
                id,
                pdir,
                config.segment_bytes,
                fsync,
            )?);
        }
        let json = serde_json::to_vec_pretty(config).expect("TopicConfig serializes");
        let tmp = dir.join("meta.json.tmp");
        std::fs::write(&tmp, json).at(&tmp)?;
        let meta = dir.join(META);
        std::fs::rename(&tmp, &meta).at(&meta)?;
        if fsync != FsyncPolicy::Never {
            sync_dir(&dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(Topic {
            name,
            config: config.clone(),
            dir,
            partitions,
        })
    }

    /// Opens the topic in `dir`; `None` when it has no metadata (an unfinished creation).
    pub fn open(
        dir: PathBuf,
        name: &str,
        fsync: FsyncPolicy,
        reports: &mut Vec<RecoveryReport>,
    ) -> Result<Option<Topic>> {
        let meta = dir.join(META);
        let bytes = match std::fs::read(&meta) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(&meta, e)),
        };
        let config: TopicConfig =
            serde_json::from_slice(&bytes).map_err(|source| StorageError::Metadata {
                path: meta.clone(),
                source,
            })?;
        validate_config(name, &config)?;
        let name: Arc<str> = name.into();
        let mut partitions = Vec::with_capacity(config.partitions as usize);
        for id in 0..config.partitions {
            let pdir = dir.join(id.to_string());
            let (p, report) = Partition::open(name.clone(), id, pdir, config.segment_bytes, fsync)?;
            partitions.push(p);
            reports.push(report);
        }
        Ok(Some(Topic {
            name,
            config,
            dir,
            partitions,
        }))
    }

    /// Configuration and partition offsets.
    pub fn info(&self) -> TopicInfo {
        TopicInfo {
            name: self.name.to_string(),
            config: self.config.clone(),
            partitions: self.partitions.iter().map(Partition::info).collect(),
        }
    }

    /// The partition, or `UnknownPartition`.
    pub fn partition(&self, id: u32) -> Result<&Partition> {
        self.partitions
            .get(id as usize)
            .ok_or_else(|| StorageError::UnknownPartition {
                topic: self.name.to_string(),
                partition: id,
                partitions: self.config.partitions,
            })
    }

    /// Applies the topic's cleanup policy to every partition, below each partition's floor.
    pub fn clean(&self, request: &CleanRequest, report: &mut RetentionReport) -> Result<()> {
        let policy = self.config.cleanup_policy;
        for (i, p) in self.partitions.iter().enumerate() {
            let floor = request.floors.get(i).copied().unwrap_or(Offset::MAX);
            if policy.compacts() {
                p.compact(floor, report)?;
            }
            if policy.deletes() {
                p.delete_old(&self.config, request.now_ms, floor, report)?;
            }
            if request.delete_consumed {
                p.delete_below(floor, report)?;
            }
        }
        Ok(())
    }
}

/// True for directory names that hold a topic being deleted (`~` is illegal in topic names).
pub(crate) fn is_trash(name: &str) -> bool {
    name.contains('~')
}

/// Moves a topic directory aside (atomically) so that its name is free at once.
pub(crate) fn trash_path(root: &Path, name: &str, n: u64) -> PathBuf {
    root.join(format!("{name}~deleted~{n}"))
}
