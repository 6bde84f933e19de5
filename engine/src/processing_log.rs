//! The processing log: row-level problems (undecodable records, failing expressions, bad
//! timestamps) are recorded here instead of stopping a query. Entries are appended as JSON to the
//! topic [`PROCESSING_LOG_TOPIC`], which the planner exposes as the stream `EDDY_PROCESSING_LOG`.

use serde::Serialize;

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
}

impl ProcessingError {
    /// An entry with no record position (filled in later when known).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProcessingError { kind, query_id: String::new(), topic: None, partition: None, offset: None, message: message.into() }
    }
}
