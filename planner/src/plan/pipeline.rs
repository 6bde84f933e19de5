//! The plan under construction: the sub-topologies finished so far (each ended by a
//! repartition), the nodes of the current one, and what the result will look like (its
//! columns, stream or table, window). Stages append nodes; the caller adds the sink.

use std::collections::HashMap;

use datafusion::arrow::datatypes::{Field, SchemaRef};
use engine::batch::with_internal;
use engine::spec::{DagSpec, NodeSpec, OpSpec, QuerySpec, WindowKind};
use engine::types::OpId;

use crate::ast::SourceType;
use crate::catalog::{Column, WindowType};

/// A planned query up to (not including) its sink.
#[derive(Debug)]
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
        let inputs = if self.nodes.is_empty() { vec![] } else { vec![OpId(self.nodes.len() as u32 - 1)] };
        self.push_node(op, schema, inputs)
    }

    /// Appends a node with explicit inputs (joins have two).
    pub fn push_node(&mut self, op: OpSpec, schema: SchemaRef, inputs: Vec<OpId>) -> OpId {
        let id = OpId(self.nodes.len() as u32);
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

    /// Moves the nodes feeding `tail` (and `tail`) into a finished sub-topology ending in
    /// `sink`; the other nodes stay, renumbered: returns old id -> new id for them.
    pub fn cut(&mut self, tail: OpId, sink: OpSpec) -> HashMap<u32, u32> {
        let mut keep = vec![false; self.nodes.len()];
        let mut stack = vec![tail.0 as usize];
        while let Some(i) = stack.pop() {
            if !keep[i] {
                keep[i] = true;
                stack.extend(self.nodes[i].inputs.iter().map(|x| x.0 as usize));
            }
        }
        let (mut moved, mut staying) = (Vec::new(), Vec::new());
        for (i, n) in std::mem::take(&mut self.nodes).into_iter().enumerate() {
            if keep[i] {
                moved.push(n);
            } else {
                staying.push(n);
            }
        }
        let map = renumber(&mut moved);
        let schema = moved[map[&tail.0] as usize].schema.clone();
        let sink_id = OpId(moved.len() as u32);
        moved.push(NodeSpec { id: sink_id, inputs: vec![OpId(map[&tail.0])], op: sink, schema });
        self.done.push(DagSpec { nodes: moved });
        let map = renumber(&mut staying);
        self.nodes = staying;
        map
    }

    /// How long a windowed result's records are needed: its window's size plus its retention.
    pub fn window_retention(&self) -> Option<i64> {
        self.done.iter().flat_map(|d| d.nodes.iter()).chain(self.nodes.iter()).find_map(|n| match &n.op {
            OpSpec::Aggregate(a) => a.window.map(|w| {
                let size = match w.kind {
                    WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms, .. } => size_ms,
                    WindowKind::Session { gap_ms } => gap_ms,
                };
                w.retention_ms.saturating_add(size)
            }),
            _ => None,
        })
    }

    /// Finishes with a last node (a sink or a collector). A sink of time windows that
    /// materializes them learns their retention, to delete the expired ones.
    pub fn finish(mut self, id: &str, mut last: OpSpec) -> QuerySpec {
        if let OpSpec::Sink(s) = &mut last {
            if let Some(w) = s.window.as_mut().filter(|w| !w.session) {
                w.retention_ms = self.window_retention();
            }
        }
        let schema = self.schema();
        self.push(last, schema);
        let mut subtopologies = std::mem::take(&mut self.done);
        subtopologies.push(DagSpec { nodes: self.nodes });
        QuerySpec { id: id.to_string(), subtopologies }
    }
}

/// Numbers `nodes` 0, 1, ... in order, rewriting their inputs; returns old id -> new id.
fn renumber(nodes: &mut [NodeSpec]) -> HashMap<u32, u32> {
    let map: HashMap<u32, u32> = nodes.iter().enumerate().map(|(i, n)| (n.id.0, i as u32)).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.id = OpId(i as u32);
        n.inputs = n.inputs.iter().map(|x| OpId(map[&x.0])).collect();
    }
    map
}

/// The schema of a batch holding `fields` plus the internal columns.
pub fn batch_schema(fields: Vec<Field>) -> SchemaRef {
    with_internal(fields)
}

/// The user columns of a batch schema (all but the internal `_ts` and `_op`).
pub fn user_fields(schema: &SchemaRef) -> Vec<Field> {
    let n = schema.fields().len() - 2;
    schema.fields()[..n].iter().map(|f| f.as_ref().clone()).collect()
}
