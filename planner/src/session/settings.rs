//! Which session properties `SET` accepts, as ksqlDB decides it: names of ksqlDB, Kafka
//! Streams, consumer and producer settings are accepted (`ksql.streams.` prefixed or not),
//! anything else is refused ("Not recognizable as ksql, streams, consumer, or producer
//! property"). Of the accepted names, those Eddy does not act on are set with a note saying so,
//! so that nobody believes a setting took effect when it did not.

use crate::error::{invalid, Result};

/// Properties Eddy acts on (after the `ksql.streams.` prefix is removed from streams and
/// client settings).
const HONOURED: &[&str] = &[
    "auto.offset.reset",
    // Over Kafka: exactly_once (transactions) or at_least_once per persistent query.
    "processing.guarantee",
    "cache.max.bytes.buffering",
    "statestore.cache.max.bytes",
    "checkpoint.interval.ms",
    "eddy.pull.timeout.ms",
    "eddy.pull.max.scanned.rows",
    "ksql.output.topic.name.prefix",
    "ksql.persistence.default.format.key",
    "ksql.persistence.default.format.value",
    "ksql.persistence.wrap.single.values",
    "ksql.query.pull.table.scan.enabled",
    "ksql.query.pull.limit.clause.enabled",
    "ksql.variable.substitution.enable",
    "ksql.functions.collect_list.limit",
    "ksql.functions.collect_set.limit",
    "ksql.new.query.planner.enabled",
];

/// ksqlDB's own settings that a session may set and Eddy does not act on.
const KSQL_KNOWN: &[&str] = &[
    "ksql.service.id",
    "ksql.streams.topology.optimization",
    "ksql.sink.partitions",
    "ksql.sink.replicas",
    "ksql.timestamp.throw.on.invalid",
    "ksql.functions.substring.legacy.args",
    "ksql.query.pull.stream.enabled",
    "ksql.query.pull.max.allowed.offset.lag",
    "ksql.query.pull.interpreter.enabled",
    "ksql.query.push.v2.enabled",
    "ksql.query.push.v2.continuation.tokens.enabled",
    "ksql.query.persistent.active.limit",
    "ksql.query.error.max.queue.size",
    "ksql.query.retry.backoff.initial.ms",
    "ksql.query.retry.backoff.max.ms",
    "ksql.suppress.enabled",
    "ksql.suppress.buffer.size.bytes",
    "ksql.schema.registry.url",
    "ksql.internal.topic.replicas",
    "ksql.internal.topic.min.insync.replicas",
    "ksql.fail.on.deserialization.error",
    "ksql.fail.on.production.error",
    "ksql.logging.processing.topic.auto.create",
    "ksql.logging.processing.stream.auto.create",
    "ksql.logging.processing.rows.include",
    "ksql.nested.error.set.null",
    "ksql.error.classifier.regex",
    "ksql.headers.columns.enabled",
    "ksql.rowpartition.rowoffset.enabled",
    "ksql.shared.runtime.enabled",
    "ksql.source.table.materialization.enabled",
    "ksql.properties.overrides.denylist",
    "ksql.lambdas.enabled",
    "ksql.cast.strings.preserve.nulls",
    "ksql.create.or.replace.enabled",
    "ksql.metastore.backup.location",
    "ksql.assert.topic.default.timeout.ms",
    "ksql.assert.schema.default.timeout.ms",
    "ksql.string.case.config.toggle",
    "ksql.websocket.connection.max.timeout.ms",
    "ksql.timestamp.skip.invalid",
    "ksql.udfs.enabled",
    "ksql.udf.enable.security.manager",
    "ksql.extension.dir",
    "ksql.any.key.name.enabled",
    "ksql.key.format.enabled",
    "ksql.multicol.key.format.enabled",
    "ksql.query.cleanup.shutdown.timeout.ms",
    "ksql.transient.prefix",
    "ksql.persistent.prefix",
];

/// Kafka Streams, consumer and producer settings (the names ksqlDB accepts with or without
/// `ksql.streams.`).
const STREAMS_KNOWN: &[&str] = &[
    // Kafka Streams
    "application.id", "bootstrap.servers", "num.stream.threads", "processing.guarantee", "commit.interval.ms",
    "buffered.records.per.partition", "default.deserialization.exception.handler",
    "default.production.exception.handler", "default.timestamp.extractor", "default.key.serde",
    "default.value.serde", "max.task.idle.ms", "num.standby.replicas", "poll.ms", "replication.factor",
    "state.dir", "topology.optimization", "rocksdb.config.setter", "state.cleanup.delay.ms",
    "acceptable.recovery.lag", "max.warmup.replicas", "probing.rebalance.interval.ms", "task.timeout.ms",
    "window.size.ms", "upgrade.from", "metrics.recording.level", "built.in.metrics.version",
    "application.server", "client.id", "retries", "retry.backoff.ms", "windowstore.changelog.additional.retention.ms",
    // consumer
    "fetch.min.bytes", "fetch.max.bytes", "fetch.max.wait.ms", "max.partition.fetch.bytes", "max.poll.records",
    "max.poll.interval.ms", "session.timeout.ms", "heartbeat.interval.ms", "isolation.level", "enable.auto.commit",
    "auto.commit.interval.ms", "group.id", "group.instance.id", "partition.assignment.strategy",
    "request.timeout.ms", "receive.buffer.bytes", "send.buffer.bytes", "security.protocol", "sasl.mechanism",
    "sasl.jaas.config",
    // producer
    "acks", "linger.ms", "batch.size", "compression.type", "buffer.memory", "max.request.size",
    "max.in.flight.requests.per.connection", "delivery.timeout.ms", "enable.idempotence", "transaction.timeout.ms",
];

/// The name a property is stored under: `ksql.streams.X` is `X` for the streams and client
/// settings (so `ksql.streams.auto.offset.reset` and `auto.offset.reset` are one property).
pub fn canonical_name(name: &str) -> String {
    let lower = name.to_lowercase();
    for prefix in ["ksql.streams.consumer.", "ksql.streams.producer.", "ksql.streams.", "consumer.", "producer."] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            if STREAMS_KNOWN.contains(&rest) || HONOURED.contains(&rest) {
                return rest.to_string();
            }
        }
    }
    if lower.starts_with("ksql.") || lower.starts_with("eddy.") || STREAMS_KNOWN.contains(&lower.as_str()) || HONOURED.contains(&lower.as_str()) {
        lower
    } else {
        name.to_string()
    }
}

/// Checks `SET name = value`: an error for a name ksqlDB would not recognise; `Ok(Some(note))`
/// for a setting Eddy accepts and does not act on.
pub fn check(name: &str) -> Result<Option<String>> {
    let canon = canonical_name(name);
    if HONOURED.contains(&canon.as_str()) {
        return Ok(None);
    }
    if canon.starts_with("eddy.") {
        return Err(invalid(format!("unknown Eddy property '{name}'")));
    }
    if KSQL_KNOWN.contains(&canon.as_str()) || STREAMS_KNOWN.contains(&canon.as_str()) {
        return Ok(Some(format!(
            "Eddy accepts '{name}' for compatibility with ksqlDB but does not act on it: the setting has no effect"
        )));
    }
    Err(invalid(format!("Not recognizable as ksql, streams, consumer, or producer property: '{name}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_aliases() {
        assert_eq!(canonical_name("ksql.streams.auto.offset.reset"), "auto.offset.reset");
        assert_eq!(canonical_name("KSQL.STREAMS.AUTO.OFFSET.RESET"), "auto.offset.reset");
        assert_eq!(canonical_name("ksql.streams.consumer.max.poll.records"), "max.poll.records");
        assert_eq!(canonical_name("ksql.output.topic.name.prefix"), "ksql.output.topic.name.prefix");
    }

    #[test]
    fn unknown_refused_known_noted() {
        assert!(check("auto.offset.reset").unwrap().is_none());
        assert!(check("ksql.streams.num.stream.threads").unwrap().is_some());
        assert!(check("ksql.streams.num.standby.replicas").unwrap().is_some());
        // Honoured over Kafka (exactly_once or at_least_once per persistent query).
        assert!(check("ksql.streams.processing.guarantee").unwrap().is_none());
        let e = check("my.custom").unwrap_err().to_string();
        assert_eq!(e, "Not recognizable as ksql, streams, consumer, or producer property: 'my.custom'");
        assert!(check("ksql.not.a.setting").is_err());
    }
}
