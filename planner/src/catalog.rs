//! The catalog: streams, tables, custom types and persistent queries.
//!
//! The catalog is itself a log, as in ksqlDB: every accepted statement that changes it is
//! appended to the command topic [`COMMAND_TOPIC`] (with the session properties it ran under) and
//! replayed in order when Eddy starts, which rebuilds the catalog and restarts the persistent
//! queries where their last checkpoint ended.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use engine::format::FormatSpec;
use serde::{Deserialize, Serialize};

use crate::ast::{ColumnKind, SourceType};
use crate::types::SqlType;

/// Topic holding the command log.
pub const COMMAND_TOPIC: &str = "_eddy_commands";

/// A column of a stream or table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Name (case as stored: upper-case unless quoted when declared).
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// Key, value or header column.
    pub kind: ColumnKind,
}

impl Column {
    /// True for key columns.
    pub fn is_key(&self) -> bool {
        self.kind == ColumnKind::Key
    }
}

/// Window type of a windowed table's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowType {
    /// Tumbling or hopping windows of a fixed size (ms).
    Time {
        /// Window size in ms.
        size_ms: u64,
    },
    /// Session windows.
    Session,
}

/// How a source's event time is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampDef {
    /// The column holding it.
    pub column: String,
    /// For STRING columns: the format (Java DateTimeFormatter pattern).
    pub format: Option<String>,
}

/// A stream or table.
#[derive(Debug, Clone)]
pub struct SourceDef {
    /// Name.
    pub name: String,
    /// Stream or table.
    pub source_type: SourceType,
    /// Topic.
    pub topic: String,
    /// Partitions of the topic.
    pub partitions: u32,
    /// Columns: key columns first, then value and header columns, in declared order.
    pub columns: Vec<Column>,
    /// Key format.
    pub key_format: FormatSpec,
    /// Value format.
    pub value_format: FormatSpec,
    /// Event-time column.
    pub timestamp: Option<TimestampDef>,
    /// Windowed key, for windowed tables.
    pub window: Option<WindowType>,
    /// Created with `CREATE SOURCE`: read-only.
    pub is_source: bool,
    /// Its latest row per key is kept for pull queries (CTAS results and source tables).
    pub materialized: bool,
    /// The persistent query writing it (CSAS/CTAS), if any.
    pub written_by: Option<String>,
    /// The statement that created it.
    pub sql: String,
    /// `ERROR_TOPIC`: dead-letter topic for its records that cannot be decoded.
    pub error_topic: Option<String>,
    /// `LATE_TOPIC`: topic for its rows that arrive after their window's grace period.
    pub late_topic: Option<String>,
}

impl SourceDef {
    /// Key columns, in key order.
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.is_key())
    }

    /// Columns carried in the record value, in value order.
    pub fn value_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.kind == ColumnKind::Value)
    }

    /// Arrow fields of the key columns.
    pub fn key_fields(&self) -> Fields {
        self.key_columns().map(|c| Field::new(&c.name, c.data_type.clone(), true)).collect()
    }

    /// Arrow fields of the value columns.
    pub fn value_fields(&self) -> Fields {
        self.value_columns().map(|c| Field::new(&c.name, c.data_type.clone(), true)).collect()
    }

    /// A column by name (exact match).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A persistent query.
#[derive(Debug, Clone)]
pub struct QueryDef {
    /// Id, e.g. `CSAS_OUTPUT_3`.
    pub id: String,
    /// The statement.
    pub sql: String,
    /// Sources read.
    pub sources: Vec<String>,
    /// Source written.
    pub sink: String,
    /// Topic written.
    pub sink_topic: String,
    /// Session properties it was created with.
    pub props: BTreeMap<String, String>,
    /// True for INSERT INTO ... SELECT (the sink existed before).
    pub is_insert: bool,
}

/// One entry of the command log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Command {
    /// The statement text.
    pub sql: String,
    /// Session properties in effect.
    pub props: BTreeMap<String, String>,
    /// The id given to the query the statement started, if any.
    #[serde(default)]
    pub query_id: Option<String>,
}

/// Everything that is defined.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// Streams and tables by name.
    pub sources: BTreeMap<String, SourceDef>,
    /// Persistent queries by id.
    pub queries: BTreeMap<String, QueryDef>,
    /// Custom types by name.
    pub types: BTreeMap<String, SqlType>,
}

impl Catalog {
    /// Queries reading `source`.
    pub fn readers_of(&self, source: &str) -> Vec<String> {
        self.queries
            .values()
            .filter(|q| q.sink != source && q.sources.iter().any(|s| s == source))
            .map(|q| q.id.clone())
            .collect()
    }

    /// Queries writing `source`.
    pub fn writers_of(&self, source: &str) -> Vec<String> {
        self.queries.values().filter(|q| q.sink == source).map(|q| q.id.clone()).collect()
    }
}
