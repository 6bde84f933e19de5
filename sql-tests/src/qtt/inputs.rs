//! Producing a case's input records: which formats and columns a topic is read with, the exact
//! bytes a Kafka producer of ksqlDB's QTT would write for a JSON key or value (JSON text for
//! JSON, the CSV line for DELIMITED, Kafka's big-endian primitives for KAFKA, Kafka Streams'
//! windowed key layout for windowed keys), and the topics created before the statements run.

use std::time::Duration;

use datafusion::arrow::datatypes::{DataType, Fields};
use engine::format::{FormatKind, FormatSpec};
use engine::registry::Registry;
use planner::catalog::{Catalog, SourceDef, WindowType};
use planner::Eddy;
use storage::{partition_for_key, Header, RecordIn, TopicConfig};

use super::expand::declared_topic;
use super::json::{base64_decode, Json};
use super::model::{Case, Record, TopicSpec, WindowKind};

/// How a topic's keys and values are written and read.
#[derive(Debug, Clone)]
pub struct Serde {
    /// Key format.
    pub key_format: FormatSpec,
    /// Value format.
    pub value_format: FormatSpec,
    /// Key columns (empty when unknown).
    pub key_fields: Fields,
    /// Value columns (empty when unknown).
    pub value_fields: Fields,
    /// The key's window, for windowed tables.
    pub window: Option<WindowType>,
    /// The topic (schema-registry formats find their subjects by it).
    pub topic: String,
    /// The registry of schema-registry formats.
    pub registry: Option<Registry>,
}

impl Serde {
    /// The serde of a stream or table.
    pub fn of(def: &SourceDef) -> Serde {
        Serde {
            key_format: def.key_format,
            value_format: def.value_format,
            key_fields: def.key_fields(),
            value_fields: def.value_fields(),
            window: def.window,
            topic: def.topic.clone(),
            registry: None,
        }
    }

    /// The same serde with the registry of schema-registry formats.
    pub fn with_registry(self, registry: &Registry) -> Serde {
        Serde { registry: Some(registry.clone()), ..self }
    }

    /// Whether keys (values) are in a schema-registry format.
    pub fn is_sr(spec: &FormatSpec) -> bool {
        spec.kind.uses_registry() || spec.kind == FormatKind::ProtobufNoSr
    }

    /// The serde of `topic`: the stream or table over it (for outputs, `sink` prefers the one a
    /// query writes; for inputs, one declared by `CREATE`), else the formats named in `topics[]`,
    /// else JSON without column information.
    pub fn for_topic(catalog: &Catalog, case: &Case, topic: &str, sink: bool) -> Serde {
        let order = |name: &str| {
            let upper = name.to_uppercase();
            case.statements.iter().position(|s| s.to_uppercase().contains(&upper)).unwrap_or(usize::MAX)
        };
        let mut defs: Vec<&SourceDef> = catalog.sources.values().filter(|d| d.topic == topic).collect();
        defs.sort_by_key(|d| (d.written_by.is_some() != sink, order(&d.name)));
        if let Some(d) = defs.first() {
            return Serde::of(d);
        }
        let spec = case.topics.iter().find(|t| t.name == topic);
        let fmt = |f: Option<&String>| match f.map(String::as_str) {
            Some("KAFKA") => FormatSpec::kafka(),
            Some("DELIMITED") => FormatSpec::delimited(b','),
            Some("NONE") => FormatSpec::none(),
            Some(other) => FormatKind::from_name(other).map_or_else(FormatSpec::json, FormatSpec::new),
            None => FormatSpec::json(),
        };
        Serde {
            key_format: fmt(spec.and_then(|s| s.key_format.as_ref())),
            value_format: fmt(spec.and_then(|s| s.value_format.as_ref())),
            key_fields: Fields::empty(),
            value_fields: Fields::empty(),
            window: None,
            topic: topic.to_string(),
            registry: None,
        }
    }

    /// The key bytes of a record key (before any window suffix).
    pub fn key_bytes(&self, key: &Json) -> Option<Vec<u8>> {
        self.bytes(key, &self.key_format, &self.key_fields, true)
    }

    /// The value bytes of a record value; `None` for a tombstone.
    pub fn value_bytes(&self, value: &Json) -> Option<Vec<u8>> {
        self.bytes(value, &self.value_format, &self.value_fields, false)
    }

    fn bytes(&self, v: &Json, spec: &FormatSpec, fields: &Fields, key: bool) -> Option<Vec<u8>> {
        match &self.registry {
            Some(r) if Self::is_sr(spec) && !v.is_null() => {
                // A value that cannot be written the way a client would is written as JSON
                // text: Eddy then reports it as a bad record, as it would a client's garbage.
                Some(super::sr::serialize(v, spec, fields, r, &self.topic, key).unwrap_or_else(|_| v.to_string().into_bytes()))
            }
            _ => serialize(v, spec, fields),
        }
    }

    /// A record's key or value bytes as JSON, in this serde's formats.
    pub fn decode_part(&self, b: Option<&[u8]>, key: bool) -> Json {
        let (spec, fields) = if key { (&self.key_format, &self.key_fields) } else { (&self.value_format, &self.value_fields) };
        match (&self.registry, b) {
            (Some(r), Some(b)) if Self::is_sr(spec) => {
                super::sr::deserialize(b, spec, fields, r).unwrap_or_else(|e| Json::Str(format!("undecodable: {e}")))
            }
            _ => super::compare::decode_bytes(b, spec.kind, fields),
        }
    }
}

/// The bytes a producer writes for `v` in format `spec` with these columns; `None` for null.
pub fn serialize(v: &Json, spec: &FormatSpec, fields: &Fields) -> Option<Vec<u8>> {
    if v.is_null() {
        return None;
    }
    match spec.kind {
        FormatKind::Json => Some(v.to_string().into_bytes()),
        FormatKind::Delimited => Some(delimited_line(v, fields, spec.delimiter as char).into_bytes()),
        FormatKind::Kafka => Some(kafka_bytes(v, fields.first().map(|f| f.data_type()))),
        FormatKind::None => None,
        // Written by `Serde`, which has the registry.
        _ => Some(v.to_string().into_bytes()),
    }
}

/// The CSV line for a value given as a string (used as is), a scalar or an object/array (its
/// members in column order).
fn delimited_line(v: &Json, fields: &Fields, delimiter: char) -> String {
    let field = |v: &Json| -> String {
        match v {
            Json::Null => String::new(),
            Json::Str(s) if s.contains(delimiter) || s.contains('"') || s.contains('\n') => {
                format!("\"{}\"", s.replace('"', "\"\""))
            }
            other => other.to_text(),
        }
    };
    match v {
        Json::Obj(m) => {
            let by_column: Option<Vec<String>> = (!fields.is_empty())
                .then(|| fields.iter().map(|f| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(f.name())).map(|(_, v)| field(v))).collect())
                .flatten();
            by_column.unwrap_or_else(|| m.iter().map(|(_, v)| field(v)).collect()).join(&delimiter.to_string())
        }
        Json::Arr(a) => a.iter().map(field).collect::<Vec<_>>().join(&delimiter.to_string()),
        other => other.to_text(),
    }
}

/// Kafka's serializers: Integer/Long/Double big-endian, String UTF-8, BYTES from base64.
fn kafka_bytes(v: &Json, ty: Option<&DataType>) -> Vec<u8> {
    let text = v.to_text();
    let int = || text.trim().parse::<i64>().ok().or_else(|| text.trim().parse::<f64>().ok().map(|f| f as i64));
    match ty {
        Some(DataType::Int32) => match int() {
            Some(i) => (i as i32).to_be_bytes().to_vec(),
            None => text.into_bytes(),
        },
        Some(DataType::Int64) => match int() {
            Some(i) => i.to_be_bytes().to_vec(),
            None => text.into_bytes(),
        },
        Some(DataType::Float64) => match text.trim().parse::<f64>() {
            Ok(f) => f.to_bits().to_be_bytes().to_vec(),
            Err(_) => text.into_bytes(),
        },
        Some(DataType::Binary) => base64_decode(&text).unwrap_or_else(|| text.into_bytes()),
        _ => text.into_bytes(),
    }
}

/// Appends Kafka Streams' window suffix to key bytes: the start for time windows, end then start
/// for session windows (8-byte big-endian each).
pub fn windowed_key(key: Option<Vec<u8>>, start: i64, end: i64, kind: WindowKind) -> Vec<u8> {
    let mut k = key.unwrap_or_default();
    if kind == WindowKind::Session {
        k.extend_from_slice(&end.to_be_bytes());
    }
    k.extend_from_slice(&start.to_be_bytes());
    k
}

/// The key, value and headers of an input record, serialized.
pub struct Encoded {
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<Header>,
    /// Timestamp.
    pub timestamp: i64,
}

/// Serializes one input record with its topic's serde.
pub fn encode(r: &Record, serde: &Serde) -> Encoded {
    let key = r.key.as_ref().and_then(|k| serde.key_bytes(k));
    let key = match r.window {
        Some(w) => Some(windowed_key(key, w.start, w.end, w.kind)),
        None => key,
    };
    let headers = r.headers.iter().flatten().map(|(k, v)| Header { key: k.clone(), value: v.clone() }).collect();
    Encoded { key, value: serde.value_bytes(&r.value), headers, timestamp: r.timestamp.unwrap_or(0) }
}

/// Creates the topics a case needs before its statements run, as ksqlDB's QTT does: those in
/// `topics[]`, those `CREATE STREAM|TABLE` statements read, and those inputs go to (one
/// partition unless given). Topics only written by queries are left to the queries.
pub fn create_topics(eddy: &Eddy, case: &Case) {
    // The first count given wins; a topic nobody gives a count for gets one partition.
    let mut given: Vec<(String, Option<u32>)> = Vec::new();
    let mut add = |name: &str, partitions: Option<u32>| match given.iter_mut().find(|(n, _)| n == name) {
        Some((_, p)) if p.is_none() => *p = partitions,
        Some(_) => {}
        None => given.push((name.to_string(), partitions)),
    };
    for TopicSpec { name, partitions, .. } in &case.topics {
        add(name, *partitions);
    }
    for s in &case.statements {
        if let Some((topic, partitions)) = declared_topic(s) {
            add(&topic, partitions);
        }
    }
    for r in &case.inputs {
        add(&r.topic, None);
    }
    let wanted: Vec<(String, u32)> = given.into_iter().map(|(n, p)| (n, p.unwrap_or(1).max(1))).collect();
    let log = eddy.engine().log();
    for (name, partitions) in wanted {
        if log.describe_topic(&name).is_err() {
            // A failure here shows up as the statement's error.
            let _ = log.create_topic(&name, &TopicConfig::new(partitions));
        }
    }
}

/// Produces the inputs in file order. Records go in runs of consecutive records of one topic;
/// after each run the runner waits until every persistent query has processed it, so that
/// records of different topics are processed in file order, as ksqlDB's test driver does.
///
/// # Errors
/// When appending fails or the queries do not catch up in time.
pub fn produce(eddy: &Eddy, case: &Case, timeout: impl Fn() -> Duration) -> Result<(), String> {
    let catalog = eddy.catalog();
    let engine = eddy.engine();
    let mut i = 0;
    while i < case.inputs.len() {
        let topic = &case.inputs[i].topic;
        let serde = Serde::for_topic(&catalog, case, topic, false).with_registry(engine.registry());
        let partitions = engine.log().describe_topic(topic).map(|t| t.config.partitions).unwrap_or(1);
        while i < case.inputs.len() && &case.inputs[i].topic == topic {
            let e = encode(&case.inputs[i], &serde);
            let partition = e.key.as_deref().map_or(0, |k| partition_for_key(k, partitions));
            let rec = RecordIn { timestamp: e.timestamp, key: e.key.as_deref(), value: e.value.as_deref(), headers: &e.headers };
            engine.append(topic, partition, &[rec]).map_err(|e| format!("cannot produce to {topic}: {}", engine::error_chain(&e)))?;
            i += 1;
        }
        engine.wait_caught_up(None, timeout()).map_err(|e| format!("queries did not catch up: {}", engine::error_chain(&e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qtt::json::parse;
    use datafusion::arrow::datatypes::Field;

    fn fields(f: &[(&str, DataType)]) -> Fields {
        f.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect()
    }

    #[test]
    fn json_is_written_as_given() {
        let v = parse(r#"{"id": 1.10, "name": "é\"x"}"#).unwrap();
        assert_eq!(serialize(&v, &FormatSpec::json(), &Fields::empty()).unwrap(), "{\"id\":1.10,\"name\":\"é\\\"x\"}".as_bytes());
        assert_eq!(serialize(&Json::Null, &FormatSpec::json(), &Fields::empty()), None);
    }

    #[test]
    fn delimited_lines() {
        let f = fields(&[("A", DataType::Utf8), ("B", DataType::Int32)]);
        let d = FormatSpec::delimited(b',');
        assert_eq!(serialize(&Json::Str("one,100".into()), &d, &f).unwrap(), b"one,100");
        let obj = parse(r#"{"b": 2, "a": "x,y"}"#).unwrap();
        assert_eq!(serialize(&obj, &d, &f).unwrap(), b"\"x,y\",2");
        assert_eq!(serialize(&Json::Num("5".into()), &FormatSpec::delimited(b'\t'), &f).unwrap(), b"5");
    }

    #[test]
    fn kafka_primitives_are_big_endian() {
        let k = FormatSpec::kafka();
        let n = Json::Num("8".into());
        assert_eq!(serialize(&n, &k, &fields(&[("K", DataType::Int32)])).unwrap(), vec![0, 0, 0, 8]);
        assert_eq!(serialize(&n, &k, &fields(&[("K", DataType::Int64)])).unwrap(), 8i64.to_be_bytes());
        assert_eq!(serialize(&Json::Num("1.5".into()), &k, &fields(&[("K", DataType::Float64)])).unwrap(), 1.5f64.to_bits().to_be_bytes());
        assert_eq!(serialize(&Json::Str("foo".into()), &k, &fields(&[("K", DataType::Utf8)])).unwrap(), b"foo");
        assert_eq!(serialize(&Json::Str("IQ==".into()), &k, &fields(&[("K", DataType::Binary)])).unwrap(), b"!");
    }

    #[test]
    fn windowed_keys_follow_kafka_streams() {
        assert_eq!(windowed_key(Some(b"k".to_vec()), 1, 9, WindowKind::Time), [&b"k"[..], &1i64.to_be_bytes()].concat());
        assert_eq!(
            windowed_key(Some(b"k".to_vec()), 1, 9, WindowKind::Session),
            [&b"k"[..], &9i64.to_be_bytes(), &1i64.to_be_bytes()].concat()
        );
    }
}
