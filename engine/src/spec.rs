//! The plan IR the planner hands to the engine: a query is a list of sub-topologies, each a DAG of
//! operator nodes from sources (topic partitions) to sinks (topics or a client channel).
//!
//! A sub-topology runs as one task per partition of its source topics (all its sources must have
//! the same partition count), as in Kafka Streams. Expressions are DataFusion `PhysicalExpr`s bound
//! to the input schema of their node; the engine never sees SQL.
//!
//! Every batch on every edge ends with the internal columns `_ts` (Int64 event time) and `_op`
//! (Int8 [`crate::types::RowOp`]); node schemas include them.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Fields, SchemaRef};
use datafusion::physical_expr::PhysicalExpr;

use crate::format::FormatSpec;
use crate::plan_data::{AggCallData, DagData, FieldData, NodeData, OpData, PlanData, PLAN_FORMAT_VERSION};
use crate::types::OpId;

/// A whole query: what the planner produced for one persistent or push query.
#[derive(Debug, Clone)]
pub struct QuerySpec {
    /// Query id, e.g. `CSAS_OUTPUT_1`.
    pub id: String,
    /// The sub-topologies; each one's sinks may feed later ones through internal topics.
    pub subtopologies: Vec<DagSpec>,
}

/// One sub-topology: nodes in topological order (a node's inputs come before it).
#[derive(Debug, Clone)]
pub struct DagSpec {
    /// The nodes; `nodes[i].id == OpId(i)`.
    pub nodes: Vec<NodeSpec>,
}

/// One operator node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Its id (its index in the DAG).
    pub id: OpId,
    /// Upstream nodes, in input order.
    pub inputs: Vec<OpId>,
    /// What it does.
    pub op: OpSpec,
    /// Schema of the batches it emits (ends with `_ts`, `_op`).
    pub schema: SchemaRef,
}

/// The operator of a node.
#[derive(Debug, Clone)]
pub enum OpSpec {
    /// Reads one partition of a topic and decodes it.
    Source(SourceSpec),
    /// Keeps rows where the predicate is true.
    Filter(FilterSpec),
    /// Computes output columns from input columns.
    Project(ProjectSpec),
    /// Encodes rows and appends them to a topic.
    Sink(SinkSpec),
    /// Sends rows to the client of a push query.
    Collect,
    /// Groups rows and computes aggregates, optionally per window.
    Aggregate(AggregateSpec),
    /// Turns a table's upserts and deletes into changes that carry the old row too.
    Materialize(MaterializeSpec),
    /// Joins two inputs (input 0 is the left side, input 1 the right side).
    Join(JoinSpec),
    /// Table functions: each row becomes as many rows as its table functions give.
    Explode(ExplodeSpec),
}

/// Table functions (ksqlDB's built-in UDTFs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TableFunction {
    /// `EXPLODE(array)`: a row per element.
    Explode,
    /// `CUBE_EXPLODE(array)`: a row per combination of the elements (each kept or nulled).
    CubeExplode,
}

/// One table function call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableFunctionCall {
    /// Which function.
    pub function: TableFunction,
    /// The input column holding its (list) argument.
    pub arg: usize,
}

/// Applying table functions: the output is the input's user columns, one column per call, then
/// `_ts` and `_op`.
#[derive(Debug, Clone)]
pub struct ExplodeSpec {
    /// The calls, in output column order.
    pub functions: Vec<TableFunctionCall>,
}

/// Join types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JoinType {
    /// Matches only.
    Inner,
    /// Every left row, with nulls where nothing matches.
    Left,
    /// Every right row, with nulls where nothing matches.
    Right,
    /// Every row of both sides.
    Full,
}

/// What is joined with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JoinKindSpec {
    /// Each left (stream) row looks up the right (table) side as it is at that moment; right
    /// changes do not emit.
    StreamTable,
    /// Rows of both streams whose event times are close enough: `left.ts - before <= right.ts <=
    /// left.ts + after`. Without `grace`, unmatched outer rows are emitted at once (ksqlDB's
    /// legacy behaviour); with it, when their window closes.
    StreamStream {
        /// How far the right row may be before the left one (ms).
        before_ms: i64,
        /// How far the right row may be after the left one (ms).
        after_ms: i64,
        /// Grace period (ms), if given.
        grace_ms: Option<i64>,
    },
    /// Two tables on their primary key: every change of either side updates the result.
    TableTable,
    /// A table (left) joined on one of its columns (the foreign key) to another table's primary
    /// key: left changes update their row's result, right changes the results of every left
    /// row referencing them. The result is keyed by the left table's primary key.
    ForeignKey,
}

/// A join.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    /// Stream-table, stream-stream or table-table.
    pub kind: JoinKindSpec,
    /// Inner, left, right or full.
    pub join_type: JoinType,
    /// Left input columns compared with `right_keys`, pairwise, for equality.
    pub left_keys: Vec<usize>,
    /// Right input columns.
    pub right_keys: Vec<usize>,
    /// Number of user columns of the left input (output = left columns, right columns).
    pub left_width: usize,
    /// Number of user columns of the right input.
    pub right_width: usize,
    /// Foreign-key joins: the left input columns forming the left table's primary key (the
    /// left input is a changelog with old values, from a materializer).
    pub left_primary_key: Vec<usize>,
    /// State table of this operator.
    pub table: crate::types::TableId,
}

/// Window types of aggregations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WindowKind {
    /// Fixed-size, non-overlapping windows.
    Tumbling {
        /// Size in ms.
        size_ms: i64,
    },
    /// Fixed-size windows starting every `advance_ms`.
    Hopping {
        /// Size in ms.
        size_ms: i64,
        /// Advance in ms.
        advance_ms: i64,
    },
    /// Windows of activity separated by gaps of inactivity.
    Session {
        /// Inactivity gap in ms.
        gap_ms: i64,
    },
}

/// A window clause, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowDef {
    /// Type and sizes.
    pub kind: WindowKind,
    /// A record is accepted while its window's end plus this is after stream time.
    pub grace_ms: i64,
    /// Windows are kept (for pull queries) until their end plus this.
    pub retention_ms: i64,
}

/// One aggregate call.
#[derive(Debug, Clone)]
pub struct AggCall {
    /// The bound function.
    pub function: crate::ops::aggregate::AggFunctionRef,
    /// Input columns passed as its arguments.
    pub args: Vec<usize>,
}

/// Grouping and aggregation.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// Input columns forming the group key, in key order. Rows with a null in any are dropped.
    pub group_columns: Vec<usize>,
    /// Aggregates; output columns follow the group (and window) columns in this order.
    pub calls: Vec<AggCall>,
    /// Window clause, if any: output gets `WINDOWSTART`, `WINDOWEND` after the group columns.
    pub window: Option<WindowDef>,
    /// Emit each window once when it closes instead of every change.
    pub emit_final: bool,
    /// Input is a changelog whose `UpdateBefore`/`Delete` rows take their values back. An
    /// `UpdateBefore` directly followed by the `UpdateAfter` of the same group (a changed row
    /// that stays in its group) emits one result, as Kafka Streams' `Change(old, new)` does.
    pub retract: bool,
    /// Precede each result of a group that had one before with an `UpdateBefore` row holding
    /// the previous result (the result itself is then an `UpdateAfter`): a HAVING filter
    /// ([`FilterMode::Having`]) needs both to tell whether the group was shown.
    pub emit_old: bool,
    /// State table of this operator.
    pub table: crate::types::TableId,
}

/// Materializing a table inside a query.
#[derive(Debug, Clone)]
pub struct MaterializeSpec {
    /// Input columns forming the table's primary key.
    pub key_columns: Vec<usize>,
    /// State table of this operator.
    pub table: crate::types::TableId,
}

/// Whether a topic is read as events or as a changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceKind {
    /// Every record is an event.
    Stream,
    /// Records are upserts by key; a null value deletes the key.
    Table,
}

/// A column a source emits, in order, before `_ts` and `_op`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceColumn {
    /// The i-th key field.
    Key(usize),
    /// The i-th value field.
    Value(usize),
    /// The partition the record was read from (INT).
    RowPartition,
    /// The offset of the record (BIGINT).
    RowOffset,
    /// All headers as `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`.
    Headers,
    /// The last header with this key, as BYTES.
    Header(String),
    /// Start of the window of a windowed key (BIGINT ms).
    WindowStart,
    /// End of the window of a windowed key (BIGINT ms).
    WindowEnd,
}

/// The window layout of a windowed source's keys (see [`SinkWindow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceWindow {
    /// Session keys carry end then start; time-window keys only the start.
    pub session: bool,
    /// Size of time windows, for their end.
    pub size_ms: i64,
}

/// Reading a topic.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// Topic read.
    pub topic: String,
    /// Stream or table semantics.
    pub kind: SourceKind,
    /// Key format.
    pub key_format: FormatSpec,
    /// Value format.
    pub value_format: FormatSpec,
    /// Columns encoded in the key.
    pub key_fields: Fields,
    /// Columns encoded in the value.
    pub value_fields: Fields,
    /// Output columns (then `_ts`, `_op`).
    pub columns: Vec<SourceColumn>,
    /// Keys are windowed: the window bytes follow the key.
    pub window: Option<SourceWindow>,
    /// An internal topic: each record's op comes from its [`OP_HEADER`] header.
    pub internal: bool,
    /// Computes the event time (Int64 ms) from the output columns (without `_ts`/`_op`, which
    /// are not yet there); `None` takes the record timestamp. Rows where it is null or fails are
    /// dropped and logged.
    pub timestamp: Option<Arc<dyn PhysicalExpr>>,
    /// Dead-letter topic: records that cannot be decoded are copied here (`ERROR_TOPIC`).
    pub error_topic: Option<String>,
    /// Late-data topic: rows later than a window's grace go here instead of vanishing
    /// (`LATE_TOPIC`; applies to every windowed operator of a query reading this source).
    pub late_topic: Option<String>,
}

/// Keeping rows.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// Boolean predicate over the input schema.
    pub predicate: Arc<dyn PhysicalExpr>,
    /// What rows that fail (and deletes) become.
    pub mode: FilterMode,
}

/// How a filter treats rows of different ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FilterMode {
    /// Streams: failing rows and null-valued records are dropped.
    Stream,
    /// Table upserts: a failing row becomes a delete of its key (as ksqlDB's table filter
    /// does); deletes pass.
    Table,
    /// Changes with old values (retractions): every row is kept or dropped by the predicate
    /// alone, whatever its op.
    Changelog,
    /// HAVING over an aggregate's results with their previous results (`UpdateBefore` rows
    /// directly before their `UpdateAfter`): a result that passes is an upsert; one that fails
    /// deletes the group's row if its previous result passed, else it is dropped (Kafka
    /// Streams' table filter with old values). `UpdateBefore` rows are consumed; deletes pass.
    Having,
}

/// Computing columns.
#[derive(Debug, Clone)]
pub struct ProjectSpec {
    /// One expression per output column except `_ts`/`_op`.
    pub exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// Expression for the output `_ts`; `None` copies the input's.
    pub timestamp: Option<Arc<dyn PhysicalExpr>>,
}

/// How a sink writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SinkKind {
    /// Every row is a record; a `Delete` row (null-valued stream record) writes a null value.
    Stream,
    /// Upserts: `Insert`/`UpdateAfter` write the row, `Delete` writes a tombstone, `UpdateBefore`
    /// writes nothing.
    Table,
}

/// Writing a topic.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Topic written.
    pub topic: String,
    /// Stream or table semantics.
    pub kind: SinkKind,
    /// Key format.
    pub key_format: FormatSpec,
    /// Value format.
    pub value_format: FormatSpec,
    /// Input columns that form the key, in key order.
    pub key_columns: Vec<usize>,
    /// Input columns that form the value, in value order.
    pub value_columns: Vec<usize>,
    /// Names and types of the key columns as written.
    pub key_fields: Fields,
    /// Names and types of the value columns as written.
    pub value_fields: Fields,
    /// For windowed tables: the window bounds appended to each key as Kafka Streams does.
    pub window: Option<SinkWindow>,
    /// Append the records to the topic (false: only materialize, for source tables).
    pub append: bool,
    /// Keep the latest row per key in the state store under this table name, for pull
    /// queries (see [`crate::materialized`]).
    pub materialize: Option<String>,
    /// An internal (repartition) topic: every row is written with its op in the header
    /// [`OP_HEADER`], retractions included, and read back with it.
    pub internal: bool,
}

/// Header carrying a row's op on internal topics.
pub const OP_HEADER: &str = "_op";

/// Where a windowed sink finds the window of each row, and how it writes it into the key:
/// time windows append the 8-byte big-endian start; session windows the end, then the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SinkWindow {
    /// Input column of the window start (Int64 ms).
    pub start_column: usize,
    /// Input column of the window end (Int64 ms).
    pub end_column: usize,
    /// Session window layout.
    pub session: bool,
    /// Time windows computed by the query: how long after the newest row's time a window is
    /// kept in the materialized table (its retention plus its size, as for the topic), which
    /// then keeps its rows by time segment and deletes the expired ones
    /// ([`crate::materialized`]). `None`: kept for ever (plans written before, source tables).
    #[serde(default)]
    pub retention_ms: Option<i64>,
}

impl QuerySpec {
    /// Topics read by the query's sub-topologies (internal topics included).
    pub fn source_topics(&self) -> Vec<String> {
        let mut out = Vec::new();
        for dag in &self.subtopologies {
            for n in &dag.nodes {
                if let OpSpec::Source(s) = &n.op {
                    if !out.contains(&s.topic) {
                        out.push(s.topic.clone());
                    }
                }
            }
        }
        out
    }

    /// Per source topic its dead-letter topic, and the late-data topic, of the query's sources.
    pub fn fault_topics(&self) -> (Vec<(String, String)>, Option<String>) {
        let mut errors = Vec::new();
        let mut late = None;
        for dag in &self.subtopologies {
            for n in &dag.nodes {
                if let OpSpec::Source(s) = &n.op {
                    if let Some(t) = &s.error_topic {
                        errors.push((s.topic.clone(), t.clone()));
                    }
                    late = late.or_else(|| s.late_topic.clone());
                }
            }
        }
        (errors, late)
    }

    /// Every topic the query writes: its sinks, dead-letter and late-data topics.
    pub fn output_topics(&self) -> Vec<String> {
        let mut out = self.sink_topics();
        let (errors, late) = self.fault_topics();
        for t in errors.into_iter().map(|e| e.1).chain(late) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// Topics written by the query's sinks (internal topics included).
    pub fn sink_topics(&self) -> Vec<String> {
        let mut out = Vec::new();
        for dag in &self.subtopologies {
            for n in &dag.nodes {
                if let OpSpec::Sink(s) = &n.op {
                    if !out.contains(&s.topic) {
                        out.push(s.topic.clone());
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for QuerySpec {
    /// The operator DAG as `EXPLAIN` prints it (the same text as the stored plan's).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_plan_data().fmt(f)
    }
}

impl QuerySpec {
    /// The plan as data (expressions as text, aggregate functions by name), for storing it with
    /// the query's state.
    pub fn to_plan_data(&self) -> PlanData {
        PlanData {
            format_version: PLAN_FORMAT_VERSION,
            query_id: self.id.clone(),
            subtopologies: self
                .subtopologies
                .iter()
                .map(|d| DagData {
                    nodes: d
                        .nodes
                        .iter()
                        .map(|n| NodeData {
                            id: n.id.0,
                            inputs: n.inputs.iter().map(|i| i.0).collect(),
                            op: op_data(&n.op),
                            schema: field_data(n.schema.fields()),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn field_data(fields: &Fields) -> Vec<FieldData> {
    fields.iter().map(|f| FieldData { name: f.name().clone(), data_type: f.data_type().to_string() }).collect()
}

fn op_data(op: &OpSpec) -> OpData {
    let text = |e: &Arc<dyn PhysicalExpr>| e.to_string();
    match op {
        OpSpec::Source(s) => OpData::Source {
            topic: s.topic.clone(),
            kind: s.kind,
            key_format: s.key_format,
            value_format: s.value_format,
            key_fields: field_data(&s.key_fields),
            value_fields: field_data(&s.value_fields),
            columns: s.columns.clone(),
            window: s.window,
            internal: s.internal,
            timestamp: s.timestamp.as_ref().map(text),
            error_topic: s.error_topic.clone(),
            late_topic: s.late_topic.clone(),
        },
        OpSpec::Filter(x) => OpData::Filter { predicate: text(&x.predicate), mode: x.mode },
        OpSpec::Project(p) => OpData::Project { exprs: p.exprs.iter().map(text).collect(), timestamp: p.timestamp.as_ref().map(text) },
        OpSpec::Sink(s) => OpData::Sink {
            topic: s.topic.clone(),
            kind: s.kind,
            key_format: s.key_format,
            value_format: s.value_format,
            key_columns: s.key_columns.clone(),
            value_columns: s.value_columns.clone(),
            key_fields: field_data(&s.key_fields),
            value_fields: field_data(&s.value_fields),
            window: s.window,
            append: s.append,
            materialize: s.materialize.clone(),
            internal: s.internal,
        },
        OpSpec::Collect => OpData::Collect,
        OpSpec::Aggregate(a) => OpData::Aggregate {
            group_columns: a.group_columns.clone(),
            calls: a.calls.iter().map(|c| AggCallData { function: c.function.name().to_string(), args: c.args.clone() }).collect(),
            window: a.window,
            emit_final: a.emit_final,
            retract: a.retract,
            emit_old: a.emit_old,
            table: a.table,
        },
        OpSpec::Materialize(m) => OpData::Materialize { key_columns: m.key_columns.clone(), table: m.table },
        OpSpec::Join(j) => OpData::Join {
            kind: j.kind,
            join_type: j.join_type,
            left_keys: j.left_keys.clone(),
            right_keys: j.right_keys.clone(),
            left_width: j.left_width,
            right_width: j.right_width,
            left_primary_key: j.left_primary_key.clone(),
            table: j.table,
        },
        OpSpec::Explode(e) => OpData::Explode { functions: e.functions.clone() },
    }
}
