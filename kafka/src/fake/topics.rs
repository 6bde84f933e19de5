//! Kafka's rules for new topics, as the fake applies them: legal names, at least one partition,
//! known configuration names with valid values; and the defaults a described topic shows.

use std::collections::BTreeMap;

use crate::error::{KafkaError, Result};

/// Kafka's topic configuration names (topic-level configs of Kafka 3.x).
pub(crate) const TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// Kafka's defaults of the configurations Eddy reads, filled in when a topic is described.
pub(crate) const TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("delete.retention.ms", "86400000"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.type", "CreateTime"),
    ("min.compaction.lag.ms", "0"),
    ("min.insync.replicas", "1"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.ms", "604800000"),
];

/// Kafka's checks of a new topic's name, partition count and configuration.
pub(crate) fn validate_topic(name: &str, partitions: u32, config: &BTreeMap<String, String>) -> Result<()> {
    let bad = |message: String| Err(KafkaError::CreateTopic { topic: name.into(), message });
    if name.is_empty() {
        return bad("topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return bad("topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return bad("topic name is illegal, it can't be longer than 249 characters".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return bad(format!("topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"));
    }
    if partitions == 0 {
        return bad("number of partitions must be larger than 0".into());
    }
    for (k, v) in config {
        if !TOPIC_CONFIGS.contains(&k.as_str()) {
            return bad(format!("unknown topic config name: {k}"));
        }
        let ok = match k.as_str() {
            "cleanup.policy" => v.split(',').all(|p| matches!(p.trim(), "compact" | "delete")),
            "retention.ms" | "retention.bytes" | "local.retention.ms" | "local.retention.bytes" => v.parse::<i64>().is_ok_and(|n| n >= -2),
            "segment.bytes" => v.parse::<i32>().is_ok_and(|n| n >= 14),
            "max.message.bytes" | "min.insync.replicas" => v.parse::<i32>().is_ok_and(|n| n >= 0),
            k if k.ends_with(".ms") => v.parse::<i64>().is_ok_and(|n| n >= 0),
            _ => true,
        };
        if !ok {
            return bad(format!("invalid value {v} for configuration {k}"));
        }
    }
    Ok(())
}
