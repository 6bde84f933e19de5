//! `WITH (...)` properties of CREATE statements: which exist, what they mean, and their checks.

use engine::format::protobuf::Nullable;
use engine::format::{FormatKind, FormatSpec, SchemaName};
use storage::{CleanupPolicy, TopicConfig};

use crate::ast::{PropValue, Props};
use crate::error::{invalid, Result};

/// Properties CREATE STREAM/TABLE (with columns) accepts.
pub const SOURCE_PROPS: &[&str] = &[
    "KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "FORMAT", "PARTITIONS", "REPLICAS", "TIMESTAMP", "TIMESTAMP_FORMAT",
    "VALUE_DELIMITER", "KEY_DELIMITER", "WRAP_SINGLE_VALUE", "WINDOW_TYPE", "WINDOW_SIZE", "RETENTION_MS",
    "CLEANUP_POLICY", "RETENTION_BYTES", "SEGMENT_BYTES", "ERROR_TOPIC", "LATE_TOPIC",
    "KEY_SCHEMA_ID", "VALUE_SCHEMA_ID", "KEY_SCHEMA_FULL_NAME", "VALUE_SCHEMA_FULL_NAME",
    "KEY_PROTOBUF_NULLABLE_REPRESENTATION", "VALUE_PROTOBUF_NULLABLE_REPRESENTATION",
];

/// Properties CREATE ... AS SELECT accepts.
pub const CAS_PROPS: &[&str] = &[
    "KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "FORMAT", "PARTITIONS", "REPLICAS", "TIMESTAMP", "TIMESTAMP_FORMAT",
    "VALUE_DELIMITER", "KEY_DELIMITER", "WRAP_SINGLE_VALUE", "RETENTION_MS", "CLEANUP_POLICY", "RETENTION_BYTES",
    "SEGMENT_BYTES",
    "KEY_SCHEMA_ID", "VALUE_SCHEMA_ID", "KEY_SCHEMA_FULL_NAME", "VALUE_SCHEMA_FULL_NAME",
    "KEY_PROTOBUF_NULLABLE_REPRESENTATION", "VALUE_PROTOBUF_NULLABLE_REPRESENTATION",
];

/// The smallest SEGMENT_BYTES accepted (every segment is an open file).
pub const MIN_SEGMENT_BYTES: i64 = 1024;

/// Parsed `WITH` properties.
#[derive(Debug, Default, Clone)]
pub struct WithProps {
    /// KAFKA_TOPIC.
    pub topic: Option<String>,
    /// KEY_FORMAT (or FORMAT).
    pub key_format: Option<FormatKind>,
    /// VALUE_FORMAT (or FORMAT).
    pub value_format: Option<FormatKind>,
    /// PARTITIONS.
    pub partitions: Option<u32>,
    /// TIMESTAMP column.
    pub timestamp: Option<String>,
    /// TIMESTAMP_FORMAT.
    pub timestamp_format: Option<String>,
    /// VALUE_DELIMITER.
    pub value_delimiter: Option<u8>,
    /// KEY_DELIMITER.
    pub key_delimiter: Option<u8>,
    /// WRAP_SINGLE_VALUE.
    pub wrap_single_value: Option<bool>,
    /// WINDOW_TYPE.
    pub window_type: Option<String>,
    /// WINDOW_SIZE.
    pub window_size: Option<String>,
    /// RETENTION_MS (`Some(None)`: -1, kept forever).
    pub retention_ms: Option<Option<i64>>,
    /// CLEANUP_POLICY.
    pub cleanup_policy: Option<CleanupPolicy>,
    /// RETENTION_BYTES, per partition (`Some(None)`: -1, no limit).
    pub retention_bytes: Option<Option<u64>>,
    /// SEGMENT_BYTES.
    pub segment_bytes: Option<u64>,
    /// ERROR_TOPIC: dead-letter topic of a source.
    pub error_topic: Option<String>,
    /// LATE_TOPIC: late-data topic of a source.
    pub late_topic: Option<String>,
    /// KEY_SCHEMA_ID.
    pub key_schema_id: Option<u32>,
    /// VALUE_SCHEMA_ID.
    pub value_schema_id: Option<u32>,
    /// KEY_SCHEMA_FULL_NAME.
    pub key_full_name: Option<SchemaName>,
    /// VALUE_SCHEMA_FULL_NAME.
    pub value_full_name: Option<SchemaName>,
    /// KEY_PROTOBUF_NULLABLE_REPRESENTATION.
    pub key_nullable: Option<Nullable>,
    /// VALUE_PROTOBUF_NULLABLE_REPRESENTATION.
    pub value_nullable: Option<Nullable>,
}

impl WithProps {
    /// Parses and checks `props` against the allowed names.
    pub fn parse(props: &Props, allowed: &[&str]) -> Result<WithProps> {
        let unknown: Vec<&str> = props.iter().map(|(n, _)| n.as_str()).filter(|n| !allowed.contains(n)).collect();
        if !unknown.is_empty() {
            return Err(invalid(format!("Invalid config variable(s) in the WITH clause: {}", unknown.join(","))));
        }
        let mut w = WithProps::default();
        for (name, v) in props {
            match name.as_str() {
                "KAFKA_TOPIC" => {
                    let t = v.text();
                    if t.is_empty() {
                        return Err(invalid("KAFKA_TOPIC cannot be empty"));
                    }
                    w.topic = Some(t);
                }
                "FORMAT" => {
                    if props.iter().any(|(n, _)| n == "KEY_FORMAT" || n == "VALUE_FORMAT") {
                        return Err(invalid("Cannot supply both 'FORMAT' and 'KEY_FORMAT' or 'VALUE_FORMAT' properties, as 'FORMAT' sets both key and value formats. Either use just 'FORMAT', or use 'KEY_FORMAT' and 'VALUE_FORMAT'."));
                    }
                    let f = format_kind(&v.text())?;
                    w.key_format = Some(f);
                    w.value_format = Some(f);
                }
                "KEY_FORMAT" => w.key_format = Some(format_kind(&v.text())?),
                "VALUE_FORMAT" => w.value_format = Some(format_kind(&v.text())?),
                "PARTITIONS" => {
                    let n: i64 = v.text().parse().map_err(|_| invalid(format!("PARTITIONS must be a number, got {}", v.text())))?;
                    if !(1..=10_000).contains(&n) {
                        return Err(invalid(format!("PARTITIONS must be between 1 and 10000, got {n}")));
                    }
                    w.partitions = Some(n as u32);
                }
                "REPLICAS" => {}
                "TIMESTAMP" => w.timestamp = Some(column_name(&v.text())),
                "TIMESTAMP_FORMAT" => w.timestamp_format = Some(v.text()),
                "VALUE_DELIMITER" => w.value_delimiter = Some(delimiter("VALUE_DELIMITER", &v.text())?),
                "KEY_DELIMITER" => w.key_delimiter = Some(delimiter("KEY_DELIMITER", &v.text())?),
                "WRAP_SINGLE_VALUE" => {
                    w.wrap_single_value = Some(match v {
                        PropValue::Bool(b) => *b,
                        other => match other.text().to_lowercase().as_str() {
                            "true" => true,
                            "false" => false,
                            t => return Err(invalid(format!("WRAP_SINGLE_VALUE must be true or false, got {t}"))),
                        },
                    })
                }
                "WINDOW_TYPE" => w.window_type = Some(v.text().to_uppercase()),
                "WINDOW_SIZE" => w.window_size = Some(v.text()),
                "RETENTION_MS" => w.retention_ms = Some(limit(name, &v.text(), 0, "milliseconds")?.map(|ms| ms as i64)),
                "RETENTION_BYTES" => w.retention_bytes = Some(limit(name, &v.text(), 1, "bytes")?),
                "SEGMENT_BYTES" => {
                    let n = v.text().trim().parse::<i64>().ok().filter(|n| *n >= MIN_SEGMENT_BYTES).ok_or_else(|| {
                        invalid(format!("invalid SEGMENT_BYTES '{}': expected a number of bytes of at least {MIN_SEGMENT_BYTES}", v.text()))
                    })?;
                    w.segment_bytes = Some(n as u64);
                }
                "CLEANUP_POLICY" => {
                    w.cleanup_policy = Some(CleanupPolicy::from_kafka_name(&v.text()).ok_or_else(|| {
                        invalid(format!("invalid CLEANUP_POLICY '{}': expected 'delete', 'compact' or 'compact,delete'", v.text()))
                    })?)
                }
                "KEY_SCHEMA_ID" | "VALUE_SCHEMA_ID" => {
                    let id: u32 = v.text().parse().map_err(|_| invalid(format!("{name} must be a schema id (a number), got {}", v.text())))?;
                    if name == "KEY_SCHEMA_ID" {
                        w.key_schema_id = Some(id);
                    } else {
                        w.value_schema_id = Some(id);
                    }
                }
                "KEY_SCHEMA_FULL_NAME" | "VALUE_SCHEMA_FULL_NAME" => {
                    let t = v.text();
                    if t.trim().is_empty() {
                        return Err(invalid("fullSchemaName cannot be empty. Format configuration: {fullSchemaName=}"));
                    }
                    if name == "KEY_SCHEMA_FULL_NAME" {
                        w.key_full_name = Some(SchemaName::new(&t));
                    } else {
                        w.value_full_name = Some(SchemaName::new(&t));
                    }
                }
                "KEY_PROTOBUF_NULLABLE_REPRESENTATION" | "VALUE_PROTOBUF_NULLABLE_REPRESENTATION" => {
                    let n = match v.text().to_uppercase().as_str() {
                        "OPTIONAL" => Nullable::Optional,
                        "WRAPPER" => Nullable::Wrapper,
                        t => return Err(invalid(format!("{name} must be OPTIONAL or WRAPPER, got {t}"))),
                    };
                    if name.starts_with("KEY") {
                        w.key_nullable = Some(n);
                    } else {
                        w.value_nullable = Some(n);
                    }
                }
                "ERROR_TOPIC" | "LATE_TOPIC" => {
                    let t = v.text();
                    if t.is_empty() {
                        return Err(invalid(format!("{name} cannot be empty")));
                    }
                    if name == "ERROR_TOPIC" {
                        w.error_topic = Some(t);
                    } else {
                        w.late_topic = Some(t);
                    }
                }
                _ => unreachable!("checked above"),
            }
        }
        Ok(w)
    }

    /// Refuses options for formats that have none (ksqlDB's "... does not support the
    /// following configs: [delimiter]"): delimiters outside DELIMITED, schema ids and full
    /// names outside the schema-registry formats.
    pub fn check_delimiters(&self, key: &FormatSpec, value: &FormatSpec) -> Result<()> {
        for (given, f) in [(self.key_delimiter, key), (self.value_delimiter, value)] {
            if given.is_some() && f.kind != FormatKind::Delimited {
                return Err(invalid(format!("{} does not support the following configs: [delimiter]", f.kind.name())));
            }
        }
        for (id, name, f) in [(self.key_schema_id, &self.key_full_name, key), (self.value_schema_id, &self.value_full_name, value)] {
            let registry = f.kind.uses_registry();
            if name.is_some() && !(registry || f.kind == FormatKind::ProtobufNoSr) {
                return Err(invalid(format!("{} does not support the following configs: [fullSchemaName]", f.kind.name())));
            }
            if id.is_some() && !registry {
                return Err(invalid(format!("{} does not support the following configs: [schemaId]", f.kind.name())));
            }
        }
        Ok(())
    }

    /// The configuration of a new topic: the settings given, else `default`'s.
    pub fn topic_config(&self, default: TopicConfig) -> TopicConfig {
        let mut cfg = default;
        if let Some(p) = self.cleanup_policy {
            cfg.cleanup_policy = p;
        }
        if let Some(ms) = self.retention_ms {
            cfg.retention_ms = ms;
        }
        if let Some(b) = self.retention_bytes {
            cfg.retention_bytes = b;
        }
        if let Some(b) = self.segment_bytes {
            cfg.segment_bytes = b;
        }
        cfg
    }

    /// Refuses topic settings that differ from those of the existing topic `name` (they apply
    /// only to topics the statement creates).
    pub fn check_existing_topic(&self, name: &str, cfg: &TopicConfig) -> Result<()> {
        let differs = |setting: &str, given: String, has: String| {
            Err(invalid(format!(
                "topic '{name}' already exists with {setting} {has}: {} = {given} applies only to a topic the statement creates",
                setting.to_uppercase().replace('.', "_")
            )))
        };
        let show = |v: Option<i64>| v.map_or("-1".to_string(), |v| v.to_string());
        if let Some(p) = self.cleanup_policy.filter(|p| *p != cfg.cleanup_policy) {
            return differs("cleanup.policy", format!("'{}'", p.kafka_name()), format!("'{}'", cfg.cleanup_policy.kafka_name()));
        }
        if let Some(ms) = self.retention_ms.filter(|ms| *ms != cfg.retention_ms) {
            return differs("retention.ms", show(ms), show(cfg.retention_ms));
        }
        if let Some(b) = self.retention_bytes.filter(|b| *b != cfg.retention_bytes) {
            return differs("retention.bytes", show(b.map(|b| b as i64)), show(cfg.retention_bytes.map(|b| b as i64)));
        }
        if let Some(b) = self.segment_bytes.filter(|b| *b != cfg.segment_bytes) {
            return differs("segment.bytes", b.to_string(), cfg.segment_bytes.to_string());
        }
        Ok(())
    }

    /// The key format spec, given the default kind.
    pub fn key_spec(&self, default: FormatSpec) -> FormatSpec {
        let mut s = self.key_format.map(FormatSpec::new).unwrap_or(default);
        if let Some(d) = self.key_delimiter {
            s.delimiter = d;
        }
        s.schema_id = self.key_schema_id;
        s.full_name = self.key_full_name;
        s.nullable = self.key_nullable.unwrap_or_default();
        s
    }

    /// The value format spec, given the default.
    pub fn value_spec(&self, default: FormatSpec) -> FormatSpec {
        let mut s = match self.value_format {
            Some(k) if k != default.kind => FormatSpec::new(k),
            _ => default,
        };
        if let Some(d) = self.value_delimiter {
            s.delimiter = d;
        }
        if let Some(w) = self.wrap_single_value {
            s.wrap_single_value = w;
        }
        s.schema_id = self.value_schema_id;
        s.full_name = self.value_full_name;
        s.nullable = self.value_nullable.unwrap_or_default();
        s
    }
}

/// A column name given as a property value: upper-cased unless quoted with backticks.
fn column_name(s: &str) -> String {
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_uppercase()
    }
}

/// A format by name.
pub fn format_kind(name: &str) -> Result<FormatKind> {
    FormatKind::from_name(name).ok_or_else(|| invalid(format!("Unknown format: {}", name.to_uppercase())))
}

/// A size or time limit: a number of at least `min`, or -1 for none (`None`).
fn limit(prop: &str, v: &str, min: i64, unit: &str) -> Result<Option<u64>> {
    match v.trim().parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if n >= min => Ok(Some(n as u64)),
        _ => Err(invalid(format!("invalid {prop} '{v}': expected a number of {unit} of at least {min}, or -1 for no limit"))),
    }
}

fn delimiter(prop: &str, v: &str) -> Result<u8> {
    match v {
        s if s.trim().is_empty() => Err(invalid(format!("Configuration {prop} is invalid: Delimiter cannot be empty, if you meant to have a tab or space for delimiter, please use the special values 'TAB' or 'SPACE'"))),
        "TAB" => Ok(b'\t'),
        "SPACE" => Ok(b' '),
        s if s.len() == 1 && s.is_ascii() && !matches!(s, "\"" | "\n" | "\r") => Ok(s.as_bytes()[0]),
        s => Err(invalid(format!("Configuration {prop} is invalid: Invalid delimiter value: '{s}'. Delimiter must be a single character or TAB or SPACE"))),
    }
}
