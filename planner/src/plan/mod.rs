//! Planning SELECT statements into engine DAGs.

pub mod aggregate;
pub mod join;
pub mod select;
pub mod source;
pub mod table_function;
pub mod timestamp;

use datafusion::arrow::datatypes::SchemaRef;
use engine::spec::{DagSpec, NodeSpec, OpSpec, QuerySpec};
use engine::types::OpId;

use crate::ast::SourceType;
use crate::catalog::{Column, WindowType};

/// A planned query up to (not including) its sink.
pub struct Pipeline {
    /// Finished sub-topologies (those ending in a repartition).
    pub done: Vec<DagSpec>,
    /// Nodes of the current sub-topology.
    pub nodes: Vec<NodeSpec>,
    /// The output columns, in batch order (key columns first, then value columns); with a
    /// window, the batch has two more columns after them: window start and end.
    pub columns: Vec<Column>,
    /// Whether the result is a stream or a table.
    pub output_type: SourceType,
    /// Sources read, by name.
    pub sources: Vec<String>,
    /// Internal topics the query needs (name, partitions), created before it starts.
    pub internal_topics: Vec<(String, u32)>,
    /// Window of the result's key, if windowed.
    pub window: Option<WindowType>,
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new(output_type: SourceType, sources: Vec<String>) -> Self {
        Pipeline {
            done: Vec::new(),
            nodes: Vec::new(),
            columns: Vec::new(),
            output_type,
            sources,
            internal_topics: Vec::new(),
            window: None,
        }
    }

    /// Appends a node fed by the last one.
    pub fn push(&mut self, op: OpSpec, schema: SchemaRef) -> OpId {
        let id = OpId(self.nodes.len() as u32);
        let inputs = if self.nodes.is_empty() { vec![] } else { vec![OpId(id.0 - 1)] };
        self.nodes.push(NodeSpec { id, inputs, op, schema });
        id
    }

    /// The schema of the last node's output.
    pub fn schema(&self) -> SchemaRef {
        self.nodes.last().expect("a pipeline starts with a source").schema.clone()
    }

    /// Ends the current sub-topology with `sink` and starts the next one with `source`.
    pub fn split(&mut self, sink: OpSpec, source: OpSpec, source_schema: SchemaRef) {
        let schema = self.schema();
        self.push(sink, schema);
        self.done.push(DagSpec { nodes: std::mem::take(&mut self.nodes) });
        self.push(source, source_schema);
    }

    /// Finishes with a last node (a sink or a collector).
    pub fn finish(mut self, id: &str, last: OpSpec) -> QuerySpec {
        let schema = self.schema();
        self.push(last, schema);
        let mut subtopologies = std::mem::take(&mut self.done);
        subtopologies.push(DagSpec { nodes: self.nodes });
        QuerySpec { id: id.to_string(), subtopologies }
    }
}

/// ksqlDB's names for unaliased select expressions: `KSQL_COL_0`, `KSQL_COL_1`, ..., skipping
/// numbers that a source column already uses.
pub struct GeneratedNames {
    next: usize,
    taken: std::collections::HashSet<usize>,
}

impl GeneratedNames {
    /// A generator avoiding the `KSQL_COL_n` names among `columns`.
    pub fn new<'a>(columns: impl IntoIterator<Item = &'a str>) -> Self {
        let taken = columns.into_iter().filter_map(|c| c.strip_prefix("KSQL_COL_")?.parse().ok()).collect();
        GeneratedNames { next: 0, taken }
    }

    /// The next free name.
    pub fn next_name(&mut self) -> String {
        while self.taken.contains(&self.next) {
            self.next += 1;
        }
        self.next += 1;
        format!("KSQL_COL_{}", self.next - 1)
    }
}
