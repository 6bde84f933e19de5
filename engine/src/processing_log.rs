//! The processing log: row-level problems (undecodable records, failing expressions, bad
//! timestamps) are recorded here instead of stopping a query. Entries are appended as JSON to the
//! topic [`PROCESSING_LOG_TOPIC`], which the planner exposes as the stream `EDDY_PROCESSING_LOG`.
//!
//! An entry may also carry a record to copy elsewhere: a source's dead-letter topic
//! (`ERROR_TOPIC`) receives the raw record that could not be decoded, with the headers
//! [`ERROR_HEADERS`] saying where it came from and why; a source's late-data topic (`LATE_TOPIC`)
//! receives rows that arrived after their window's grace period, as JSON.

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use serde::Serialize;
use storage::Header;

/// Headers added to a dead-letter or late record: source topic, partition, offset, the error,
/// and the query that met it.
pub const ERROR_HEADERS: [&str; 5] = ["eddy.error.topic", "eddy.error.partition", "eddy.error.offset", "eddy.error.message", "eddy.error.query"];

/// A record to copy to a dead-letter or late-data topic.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// Its timestamp.
    pub timestamp: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Its own headers (the error headers are added when it is written).
    pub headers: Vec<Header>,
}

/// Topic holding processing-log entries.
pub const PROCESSING_LOG_TOPIC: &str = "eddy_processing_log";

/// What went wrong with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorKind {
    /// The key or value bytes could not be decoded.
    DeserializationError,
    /// An expression failed on the row (the column became null).
    ExpressionError,
    /// The event time could not be extracted (the row was dropped).
    TimestampError,
    /// Output could not be encoded (the row was dropped).
    SerializationError,
    /// A record arrived after its window closed (the row was dropped).
    LateRecord,
}

/// One processing-log entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct ProcessingError {
    /// Kind of problem.
    #[serde(rename = "TYPE")]
    pub kind: ErrorKind,
    /// The query it happened in (filled in by the runtime).
    pub query_id: String,
    /// The topic the record came from, when known.
    pub topic: Option<String>,
    /// Its partition.
    pub partition: Option<u32>,
    /// Its offset.
    pub offset: Option<i64>,
    /// What went wrong.
    pub message: String,
    /// The record, for a dead-letter or late-data topic.
    #[serde(skip)]
    pub record: Option<RawRecord>,
}

impl ProcessingError {
    /// An entry with no record position (filled in later when known).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProcessingError {
            kind,
            query_id: String::new(),
            topic: None,
            partition: None,
            offset: None,
            message: message.into(),
            record: None,
        }
    }

    /// A late-record entry carrying row `i` of `batch` (event time `ts`) for the late-data topic.
    pub fn late(message: String, batch: &RecordBatch, i: usize, ts: i64) -> Self {
        let mut e = ProcessingError::new(ErrorKind::LateRecord, message);
        e.record = Some(RawRecord { timestamp: ts, key: None, value: Some(row_json(batch, i)), headers: Vec::new() });
        e
    }

    /// The error headers of this entry, after `own` headers.
    pub fn headers(&self, own: &[Header]) -> Vec<Header> {
        let mut h = own.to_vec();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                h.push(Header { key: k.to_string(), value: Some(v.into_bytes()) });
            }
        };
        put(ERROR_HEADERS[0], self.topic.clone());
        put(ERROR_HEADERS[1], self.partition.map(|p| p.to_string()));
        put(ERROR_HEADERS[2], self.offset.map(|o| o.to_string()));
        put(ERROR_HEADERS[3], Some(self.message.clone()));
        put(ERROR_HEADERS[4], Some(self.query_id.clone()));
        h
    }
}

/// Row `i` of `batch` as a JSON object of its columns (`_ts`, `_op` and `_headers` left out),
/// for the late-data topic. Internal columns are named by their
/// [`DISPLAY_NAME_KEY`](crate::types::DISPLAY_NAME_KEY) metadata where they have it.
pub fn row_json(batch: &RecordBatch, i: usize) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if [crate::types::TS_COLUMN, crate::types::OP_COLUMN, crate::types::HEADERS_COLUMN].contains(&f.name().as_str()) {
            continue;
        }
        let v = if c.is_null(i) {
            serde_json::Value::Null
        } else {
            match ScalarValue::try_from_array(c, i) {
                Ok(ScalarValue::Boolean(Some(b))) => serde_json::Value::Bool(b),
                Ok(s @ (ScalarValue::Int8(_) | ScalarValue::Int16(_) | ScalarValue::Int32(_) | ScalarValue::Int64(_)
                | ScalarValue::UInt8(_) | ScalarValue::UInt16(_) | ScalarValue::UInt32(_) | ScalarValue::UInt64(_)
                | ScalarValue::Float32(_) | ScalarValue::Float64(_))) => {
                    serde_json::from_str(&s.to_string()).unwrap_or(serde_json::Value::String(s.to_string()))
                }
                Ok(s) => serde_json::Value::String(s.to_string()),
                Err(_) => serde_json::Value::Null,
            }
        };
        let name = f.metadata().get(crate::types::DISPLAY_NAME_KEY).unwrap_or(f.name());
        m.insert(name.clone(), v);
    }
    serde_json::to_vec(&serde_json::Value::Object(m)).unwrap_or_default()
}
