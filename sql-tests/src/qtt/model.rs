//! The parts of a QTT test case the runner uses, read out of its JSON: statements, properties,
//! input and expected records, the expected error, `post` conditions and REST responses.

use super::json::{base64_decode, Json};

/// Which corpus a file belongs to; they run the same way except for query statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suite {
    /// query-validation-tests: statements, inputs, expected topic contents.
    Qtt,
    /// rest-query-validation-tests: also pull and push queries and their responses.
    Rest,
}

impl Suite {
    /// `qtt` or `rest`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Qtt => "qtt",
            Suite::Rest => "rest",
        }
    }
}

/// The kind of a window in a windowed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Tumbling or hopping: the key carries the start; end = start + size.
    Time,
    /// Session: the key carries end and start.
    Session,
}

/// A record's window, as `{"start", "end", "type"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start (ms).
    pub start: i64,
    /// End (ms).
    pub end: i64,
    /// Kind.
    pub kind: WindowKind,
}

/// A record header: key and value bytes (`None`: a null value).
pub type RecordHeader = (String, Option<Vec<u8>>);

/// An input or expected output record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Topic.
    pub topic: String,
    /// Key; `None` when absent (treated as null).
    pub key: Option<Json>,
    /// Value; `Json::Null` is a tombstone.
    pub value: Json,
    /// Timestamp; inputs default to 0, outputs check it only when given.
    pub timestamp: Option<i64>,
    /// Window of a windowed key.
    pub window: Option<Window>,
    /// Headers; outputs check them only when given.
    pub headers: Option<Vec<RecordHeader>>,
}

/// What an error case expects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExpectedError {
    /// The Java exception class, e.g. `io.confluent.ksql.util.KsqlStatementException`.
    pub type_name: Option<String>,
    /// A substring of the message.
    pub message: Option<String>,
}

impl ExpectedError {
    /// True when the error is raised while records are processed, not by a statement.
    pub fn is_runtime(&self) -> bool {
        self.type_name.as_deref().is_some_and(|t| t.ends_with("StreamsException"))
    }
}

/// A topic declared in `topics[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Partitions (default 1).
    pub partitions: Option<u32>,
    /// Key format name, upper-case.
    pub key_format: Option<String>,
    /// Value format name, upper-case.
    pub value_format: Option<String>,
    /// The key's schema for the registry (Avro/JSON Schema as JSON, Protobuf as text).
    pub key_schema: Option<SchemaSpec>,
    /// The value's schema for the registry.
    pub value_schema: Option<SchemaSpec>,
}

/// A schema a case registers for a topic's keys or values.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaSpec {
    /// The schema: Avro or JSON Schema as JSON, Protobuf `.proto` text as a string.
    pub schema: Json,
    /// The id it must get (`keySchemaId`/`valueSchemaId`).
    pub id: Option<u32>,
    /// Schemas it imports: (import name, schema text).
    pub references: Vec<(String, String)>,
}

/// One expanded test case.
#[derive(Debug, Clone)]
pub struct Case {
    /// File name, e.g. `joins.json`.
    pub file: String,
    /// Name with the format and config suffixes, e.g. `collect_list int - JSON`.
    pub name: String,
    /// Its corpus.
    pub suite: Suite,
    /// False for `"enabled": false`.
    pub enabled: bool,
    /// JSON/DELIMITED/KAFKA/NONE formats only, no schema registry, no test-only UDFs.
    pub plain: bool,
    /// Not plain because of a schema-registry format or schemas only (no test-only UDFs).
    pub sr: bool,
    /// Why it is not plain.
    pub not_plain: Option<String>,
    /// Statements, in order.
    pub statements: Vec<String>,
    /// Properties for the session.
    pub properties: Vec<(String, String)>,
    /// Topics declared.
    pub topics: Vec<TopicSpec>,
    /// Records to produce.
    pub inputs: Vec<Record>,
    /// Expected records.
    pub outputs: Vec<Record>,
    /// `expectedException` (QTT) or `expectedError` (REST).
    pub expected_error: Option<ExpectedError>,
    /// `post.sources`.
    pub post_sources: Vec<Json>,
    /// REST `responses`.
    pub responses: Option<Vec<Json>>,
    /// REST `inputConditions.waitForActivePushQuery`: start the queries before producing.
    pub wait_for_push: bool,
    /// REST `outputConditions.verifyOrder`: rows in order rather than as a multiset.
    pub verify_order: bool,
}

impl Case {
    /// `file::name`, the id used in reports, tiers and the known-failures list.
    pub fn id(&self) -> String {
        format!("{}::{}", self.file, self.name)
    }

    /// True for error cases.
    pub fn is_error_case(&self) -> bool {
        self.expected_error.is_some()
    }

    /// Reads a case from its (already substituted) test JSON.
    pub fn from_json(file: &str, name: String, suite: Suite, t: &Json) -> Result<Case, String> {
        let strings = |key: &str| -> Vec<String> {
            t.get(key).and_then(Json::as_array).map(|a| a.iter().map(Json::to_text).collect()).unwrap_or_default()
        };
        let records = |key: &str| -> Result<Vec<Record>, String> {
            t.get(key).and_then(Json::as_array).unwrap_or(&[]).iter().map(|r| record(r).map_err(|e| format!("{key}: {e}"))).collect()
        };
        let properties = t
            .get("properties")
            .and_then(Json::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_text())).collect())
            .unwrap_or_default();
        let topics = t.get("topics").and_then(Json::as_array).unwrap_or(&[]).iter().filter_map(topic_spec).collect();
        let expected_error = t
            .get("expectedException")
            .or_else(|| t.get("expectedError"))
            .map(|e| ExpectedError { type_name: e.get("type").map(Json::to_text), message: e.get("message").map(Json::to_text) });
        let post_sources = t.get("post").and_then(|p| p.get("sources")).and_then(Json::as_array).map(<[Json]>::to_vec).unwrap_or_default();
        let responses = t.get("responses").and_then(Json::as_array).map(<[Json]>::to_vec);
        let flag = |obj: &str, key: &str| t.get(obj).and_then(|c| c.get(key)).and_then(Json::as_bool).unwrap_or(false);
        Ok(Case {
            file: file.to_string(),
            name,
            suite,
            enabled: t.get("enabled").and_then(Json::as_bool).unwrap_or(true),
            plain: true,
            sr: false,
            not_plain: None,
            statements: strings("statements"),
            properties,
            topics,
            inputs: records("inputs")?,
            outputs: records("outputs")?,
            expected_error,
            post_sources,
            responses,
            wait_for_push: flag("inputConditions", "waitForActivePushQuery"),
            verify_order: flag("outputConditions", "verifyOrder"),
        })
    }
}

fn topic_spec(t: &Json) -> Option<TopicSpec> {
    let fmt = |k: &str| {
        t.get(k).map(|f| match f {
            Json::Obj(_) => f.get("format").map(Json::to_text).unwrap_or_default().to_uppercase(),
            other => other.to_text().to_uppercase(),
        })
    };
    let schema = |k: &str| {
        let s = t.get(&format!("{k}Schema"))?;
        let id = t.get(&format!("{k}SchemaId")).and_then(Json::as_i64).and_then(|i| u32::try_from(i).ok());
        let references = t
            .get(&format!("{k}SchemaReferences"))
            .and_then(Json::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(|r| Some((r.get("name")?.to_text(), r.get("schema").map(|s| match s {
                Json::Str(text) => text.clone(),
                other => other.to_string(),
            })?)))
            .collect();
        Some(SchemaSpec { schema: s.clone(), id, references })
    };
    Some(TopicSpec {
        name: t.get("name")?.to_text(),
        partitions: t.get("partitions").and_then(Json::as_i64).and_then(|p| u32::try_from(p).ok()),
        key_format: fmt("keyFormat").or_else(|| fmt("format")),
        value_format: fmt("valueFormat").or_else(|| fmt("format")),
        key_schema: schema("key"),
        value_schema: schema("value"),
    })
}

fn record(r: &Json) -> Result<Record, String> {
    let topic = r.get("topic").map(Json::to_text).ok_or("a record without a topic")?;
    let timestamp = match r.get("timestamp") {
        None | Some(Json::Null) => None,
        Some(t) => Some(t.as_i64().ok_or_else(|| format!("bad timestamp {t}"))?),
    };
    let window = match r.get("window") {
        None | Some(Json::Null) => None,
        Some(w) => {
            let n = |k: &str| w.get(k).and_then(Json::as_i64).ok_or_else(|| format!("bad window {w}"));
            let kind = match w.get("type").map(Json::to_text).map(|t| t.to_lowercase()).as_deref() {
                Some("session") => WindowKind::Session,
                _ => WindowKind::Time,
            };
            Some(Window { start: n("start")?, end: n("end")?, kind })
        }
    };
    let headers = match r.get("headers") {
        None | Some(Json::Null) => None,
        Some(h) => Some(
            h.as_array()
                .ok_or("headers must be an array")?
                .iter()
                .map(|h| {
                    let key = h.get("KEY").or_else(|| h.get("key")).map(Json::to_text).unwrap_or_default();
                    let value = match h.get("VALUE").or_else(|| h.get("value")) {
                        None | Some(Json::Null) => None,
                        Some(v) => Some(base64_decode(&v.to_text()).ok_or_else(|| format!("header value {v} is not base64"))?),
                    };
                    Ok((key, value))
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    Ok(Record { topic, key: r.get("key").cloned(), value: r.get("value").cloned().unwrap_or(Json::Null), timestamp, window, headers })
}
