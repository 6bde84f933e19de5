//! Planning SELECT statements into engine DAGs.

pub mod select;
pub mod source;

use datafusion::arrow::datatypes::SchemaRef;
use engine::spec::{DagSpec, NodeSpec, OpSpec, QuerySpec};
use engine::types::OpId;

use crate::ast::SourceType;
use crate::catalog::Column;

/// A planned query up to (not including) its sink.
pub struct Pipeline {
    /// Nodes so far.
    pub nodes: Vec<NodeSpec>,
    /// The output columns, in batch order (key columns first, then value columns).
    pub columns: Vec<Column>,
    /// Whether the result is a stream or a table.
    pub output_type: SourceType,
    /// Sources read, by name.
    pub sources: Vec<String>,
}

impl Pipeline {
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

    /// Finishes with a last node (a sink or a collector) into a one-sub-topology query.
    pub fn finish(mut self, id: &str, last: OpSpec) -> QuerySpec {
        let schema = self.schema();
        self.push(last, schema);
        QuerySpec { id: id.to_string(), subtopologies: vec![DagSpec { nodes: self.nodes }] }
    }
}
