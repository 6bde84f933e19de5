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
}

/// Whether a topic is read as events or as a changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Every record is an event.
    Stream,
    /// Records are upserts by key; a null value deletes the key.
    Table,
}

/// A column a source emits, in order, before `_ts` and `_op`.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Computes the event time (Int64 ms) from the output columns (without `_ts`/`_op`, which
    /// are not yet there); `None` takes the record timestamp. Rows where it is null or fails are
    /// dropped and logged.
    pub timestamp: Option<Arc<dyn PhysicalExpr>>,
}

/// Keeping rows.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// Boolean predicate over the input schema.
    pub predicate: Arc<dyn PhysicalExpr>,
    /// For table changelogs: a row that fails becomes a delete of its key instead of vanishing,
    /// as ksqlDB's table filter does.
    pub table_semantics: bool,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The operator DAG as `EXPLAIN` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, dag) in self.subtopologies.iter().enumerate() {
            writeln!(f, "Sub-topology {i}:")?;
            for n in dag.nodes.iter().rev() {
                let inputs: Vec<String> = n.inputs.iter().map(|i| format!("#{}", i.0)).collect();
                let cols: Vec<String> = n
                    .schema
                    .fields()
                    .iter()
                    .filter(|f| !f.name().starts_with('_'))
                    .map(|f| f.name().clone())
                    .collect();
                write!(f, "  #{} {}", n.id.0, describe_op(&n.op))?;
                if !inputs.is_empty() {
                    write!(f, " <- {}", inputs.join(", "))?;
                }
                writeln!(f, "  [{}]", cols.join(", "))?;
            }
        }
        Ok(())
    }
}

fn describe_op(op: &OpSpec) -> String {
    match op {
        OpSpec::Source(s) => format!(
            "Source topic={} kind={:?} key={:?} value={:?}{}",
            s.topic,
            s.kind,
            s.key_format.kind,
            s.value_format.kind,
            if s.timestamp.is_some() { " timestamp=column" } else { "" }
        ),
        OpSpec::Filter(s) => format!("Filter {}", s.predicate),
        OpSpec::Project(p) => {
            let e: Vec<String> = p.exprs.iter().map(|e| e.to_string()).collect();
            format!("Project {}", e.join(", "))
        }
        OpSpec::Sink(s) => format!(
            "Sink topic={} kind={:?} key={:?} value={:?}",
            s.topic, s.kind, s.key_format.kind, s.value_format.kind
        ),
        OpSpec::Collect => "Collect (push query client)".to_string(),
    }
}
