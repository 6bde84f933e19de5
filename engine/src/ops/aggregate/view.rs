//! Tables read from their aggregate's state. A table written by a query whose rows are the
//! results of an aggregate without windows, projected (`CREATE TABLE ... AS SELECT ... GROUP
//! BY`, no HAVING), needs no copy of its rows for pull queries: the aggregate's group states
//! already hold them, as of the same checkpoint. ksqlDB serves such pull queries the same way,
//! from the aggregate's store with the query's projection applied on read.
//!
//! So the table's sink keeps no materialized rows ([`serves_from_state`]), which saves one
//! state-store write per changed group and checkpoint, and an [`AggregateView`] builds the rows
//! on read: it decodes the stored groups, evaluates their aggregates, and runs the projections
//! between the aggregate and the sink over them. A lookup of values of a one-column key that is
//! the aggregate's one group column reads those groups only (one point read per partition);
//! anything else reads every group.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::physical_expr::expressions::Column;
use storage::KvStore;

use super::AggregateOp;
use crate::error::Result;
use crate::ops::project::project_batch;
use crate::runtime::keys::{prefix_end, state_prefix, state_table_prefix};
use crate::spec::{DagSpec, OpSpec, ProjectSpec, QuerySpec, SinkKind, SinkSpec};
use crate::types::TableId;

/// Rows per batch a view returns.
const BATCH_ROWS: usize = 8192;

/// The nodes between a table's sink and the aggregate whose results it writes: the aggregate's
/// node, then the projections in data-flow order. `None` unless node `sink` of `dag` is the sink
/// of a materialized table fed by projections of an aggregate without windows, EMIT FINAL or
/// old results (HAVING).
fn chain(dag: &DagSpec, sink: usize) -> Option<(usize, Vec<usize>)> {
    let node = &dag.nodes[sink];
    let OpSpec::Sink(s) = &node.op else { return None };
    if s.kind != SinkKind::Table || s.materialize.is_none() || !s.append || s.internal || s.window.is_some() {
        return None;
    }
    let single = |inputs: &[crate::types::OpId]| match inputs {
        [one] => Some(one.0 as usize),
        _ => None,
    };
    let mut projects = Vec::new();
    let mut at = single(&node.inputs)?;
    loop {
        let n = &dag.nodes[at];
        match &n.op {
            OpSpec::Project(_) => {
                projects.push(at);
                at = single(&n.inputs)?;
            }
            OpSpec::Aggregate(a) if a.window.is_none() && !a.emit_final && !a.emit_old => {
                projects.reverse();
                return Some((at, projects));
            }
            _ => return None,
        }
    }
}

/// True when node `sink` of `dag` writes a table that is read from its aggregate's state (see
/// the module docs): the sink then keeps no materialized rows of its own.
pub fn serves_from_state(dag: &DagSpec, sink: usize) -> bool {
    chain(dag, sink).is_some()
}

/// A table's rows, read from the state of the aggregate that computes them.
pub struct AggregateView {
    query_id: String,
    sub: usize,
    table: TableId,
    op: AggregateOp,
    projects: Vec<(ProjectSpec, SchemaRef)>,
    sink: SinkSpec,
    /// The type of the group column, when the table's key is one column that is the only group
    /// column (key lookups then read single groups).
    key_group: Option<DataType>,
    schema: SchemaRef,
    /// Topics the aggregate's sub-topology reads (its tasks are their partitions).
    sources: Vec<String>,
}

impl AggregateView {
    /// The view of `table` in query `spec`, when the query writes it from an aggregate's state.
    pub fn of(spec: &QuerySpec, table: &str) -> Result<Option<AggregateView>> {
        for (sub, dag) in spec.subtopologies.iter().enumerate() {
            for (i, n) in dag.nodes.iter().enumerate() {
                let OpSpec::Sink(s) = &n.op else { continue };
                if s.materialize.as_deref() != Some(table) {
                    continue;
                }
                let Some((agg, projects)) = chain(dag, i) else { return Ok(None) };
                let a = &dag.nodes[agg];
                let OpSpec::Aggregate(aspec) = &a.op else { return Ok(None) };
                let input = &dag.nodes[a.inputs[0].0 as usize].schema;
                let op = AggregateOp::new(aspec.clone(), input, a.schema.clone())?;
                let projects: Vec<(ProjectSpec, SchemaRef)> = projects
                    .iter()
                    .map(|&p| match &dag.nodes[p].op {
                        OpSpec::Project(ps) => (ps.clone(), dag.nodes[p].schema.clone()),
                        _ => unreachable!("chain() returns project nodes"),
                    })
                    .collect();
                let key_group = match (s.key_columns.as_slice(), aspec.group_columns.as_slice()) {
                    ([k], [g]) => {
                        // Back through the projections: the key must be the group column itself.
                        let mut c = Some(*k);
                        for (p, _) in projects.iter().rev() {
                            c = c.and_then(|c| p.exprs.get(c)).and_then(|e| (e.as_ref() as &dyn std::any::Any).downcast_ref::<Column>()).map(Column::index);
                        }
                        (c == Some(0)).then(|| input.field(*g).data_type().clone())
                    }
                    _ => None,
                };
                let mut fields: Vec<Field> = s.key_fields.iter().chain(s.value_fields.iter()).map(|f| f.as_ref().clone()).collect();
                fields.push(Field::new("ROWTIME", DataType::Int64, true));
                return Ok(Some(AggregateView {
                    query_id: spec.id.clone(),
                    sub,
                    table: aspec.table,
                    op,
                    projects,
                    sink: s.clone(),
                    key_group,
                    schema: Arc::new(Schema::new(fields)),
                    sources: dag
                        .nodes
                        .iter()
                        .filter_map(|n| match &n.op {
                            OpSpec::Source(src) => Some(src.topic.clone()),
                            _ => None,
                        })
                        .collect(),
                }));
            }
        }
        Ok(None)
    }

    /// The schema of the rows read: the table's key columns, its value columns, then `ROWTIME`
    /// (Int64 ms).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Topics the aggregate's sub-topology reads: its tasks are their partitions.
    pub fn source_topics(&self) -> &[String] {
        &self.sources
    }

    /// The aggregate's sub-topology in its query.
    pub fn subtopology(&self) -> usize {
        self.sub
    }

    /// True when [`AggregateView::read`] with keys reads only those keys' groups.
    pub fn looks_up_keys(&self) -> bool {
        self.key_group.is_some()
    }

    /// The table's rows as of the last checkpoint, in batches of [`AggregateView::schema`]:
    /// with `keys` (values of the table's one key column) and [`AggregateView::looks_up_keys`],
    /// only theirs, looked up in the aggregate's tasks of `partitions`; else every row stored
    /// (the caller filters). `more` is asked before each stored group is taken; when it
    /// says no (a scan limit), the read ends with `None`.
    pub fn read(
        &self,
        state: &dyn KvStore,
        partitions: &[u32],
        keys: Option<&[ScalarValue]>,
        more: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Vec<RecordBatch>>> {
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        // Keys sit under the task prefix (table, sub-topology, partition); groups sort before
        // the operator's meta entries (`ff ff ...`).
        let task_prefix_len = state_prefix(&self.query_id, self.table, self.sub, 0).len();
        match (keys, &self.key_group) {
            (Some(keys), Some(dt)) => {
                let mut wanted = Vec::new();
                for v in keys {
                    let Ok(v) = v.cast_to(dt) else { continue };
                    if v.is_null() {
                        continue;
                    }
                    let group = self.op.group_row(&[v.to_array()?])?;
                    for &p in partitions {
                        let mut k = state_prefix(&self.query_id, self.table, self.sub, p);
                        k.extend_from_slice(&group);
                        wanted.push(k);
                    }
                }
                let refs: Vec<&[u8]> = wanted.iter().map(Vec::as_slice).collect();
                for (k, v) in wanted.iter().zip(state.multi_get(&refs)?) {
                    if let Some(v) = v {
                        if !more() {
                            return Ok(None);
                        }
                        entries.push((k.clone(), v));
                    }
                }
            }
            _ => {
                let mut from = state_table_prefix(&self.query_id, self.table);
                from.extend_from_slice(&(self.sub as u32).to_be_bytes());
                for kv in state.scan(&from, &prefix_end(&from))? {
                    let (k, v) = kv?;
                    if k.len() < task_prefix_len || k[task_prefix_len..].starts_with(&[0xff, 0xff]) {
                        continue;
                    }
                    if !more() {
                        return Ok(None);
                    }
                    entries.push((k, v));
                }
            }
        }
        let mut out = Vec::new();
        for chunk in entries.chunks(BATCH_ROWS) {
            let pairs: Vec<(&[u8], &[u8])> = chunk.iter().map(|(k, v)| (&k[task_prefix_len..], v.as_slice())).collect();
            let Some(mut batch) = self.op.stored_results(&pairs)? else { continue };
            // Rows on which a projection fails get null there, as when the query wrote them.
            let mut errors = Vec::new();
            for (p, schema) in &self.projects {
                batch = project_batch(p, schema, &batch, &mut errors)?;
            }
            let n = batch.num_columns();
            let mut cols: Vec<ArrayRef> =
                self.sink.key_columns.iter().chain(&self.sink.value_columns).map(|&c| batch.column(c).clone()).collect();
            cols.push(batch.column(n - 2).clone());
            let cols = crate::batch::cast_columns(cols, &self.schema)?;
            out.push(RecordBatch::try_new(self.schema.clone(), cols)?);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Fields;
    use datafusion::logical_expr::Operator as Op;
    use datafusion::physical_expr::expressions::{lit, BinaryExpr};

    use super::*;
    use crate::batch::with_internal;
    use crate::format::FormatSpec;
    use crate::ops::aggregate::create_aggregate;
    use crate::spec::{AggCall, AggregateSpec, FilterMode, FilterSpec, NodeSpec, WindowDef, WindowKind};
    use crate::testing::{rows, Harness};
    use crate::types::OpId;

    const INPUT: &str = "k:utf8 v:i64";

    /// `SELECT k, COUNT(*) * 10 AS n10, SUM(v) AS s FROM input GROUP BY k` into table `T`, with
    /// `window`, `emit_old` (HAVING) and a filter between the projection and the sink as asked.
    fn query(window: Option<WindowDef>, emit_old: bool, filter: bool) -> (QuerySpec, AggregateSpec, SchemaRef, SchemaRef) {
        let input = with_internal([Field::new("k", DataType::Utf8, true), Field::new("v", DataType::Int64, true)]);
        let call = |name: &str| AggCall { function: create_aggregate(name, &[DataType::Int64], &[]).expect("a function"), args: vec![1] };
        let agg = AggregateSpec { group_columns: vec![0], calls: vec![call("COUNT"), call("SUM")], window, emit_final: false, retract: false, emit_old, table: TableId(3) };
        let agg_schema = with_internal([Field::new("k", DataType::Utf8, true), Field::new("c", DataType::Int64, true), Field::new("s", DataType::Int64, true)]);
        let col = |name: &str, i: usize| -> Arc<dyn datafusion::physical_expr::PhysicalExpr> { Arc::new(Column::new(name, i)) };
        let project = ProjectSpec { exprs: vec![col("k", 0), Arc::new(BinaryExpr::new(col("c", 1), Op::Multiply, lit(10i64))), col("s", 2)], timestamp: None };
        let out = with_internal([Field::new("k", DataType::Utf8, true), Field::new("n10", DataType::Int64, true), Field::new("s", DataType::Int64, true)]);
        let sink = SinkSpec {
            topic: "t".into(),
            kind: SinkKind::Table,
            key_format: FormatSpec::json(),
            value_format: FormatSpec::json(),
            key_columns: vec![0],
            value_columns: vec![1, 2],
            key_fields: Fields::from(vec![Field::new("K", DataType::Utf8, true)]),
            value_fields: Fields::from(vec![Field::new("N10", DataType::Int64, true), Field::new("S", DataType::Int64, true)]),
            window: None,
            append: true,
            materialize: Some("T".into()),
            internal: false,
        };
        // Node 0 stands for the aggregate's input (its kind does not matter here).
        let pass = FilterSpec { predicate: lit(true), mode: FilterMode::Stream };
        let mut nodes = vec![
            NodeSpec { id: OpId(0), inputs: vec![], op: OpSpec::Filter(pass.clone()), schema: input.clone() },
            NodeSpec { id: OpId(1), inputs: vec![OpId(0)], op: OpSpec::Aggregate(agg.clone()), schema: agg_schema.clone() },
            NodeSpec { id: OpId(2), inputs: vec![OpId(1)], op: OpSpec::Project(project), schema: out.clone() },
        ];
        if filter {
            nodes.push(NodeSpec { id: OpId(3), inputs: vec![OpId(2)], op: OpSpec::Filter(pass), schema: out.clone() });
        }
        let last = OpId(nodes.len() as u32 - 1);
        nodes.push(NodeSpec { id: OpId(nodes.len() as u32), inputs: vec![last], op: OpSpec::Sink(sink), schema: out });
        (QuerySpec { id: "q".into(), subtopologies: vec![DagSpec { nodes }] }, agg, input, agg_schema)
    }

    fn read(view: &AggregateView, state: &dyn KvStore, keys: Option<&[ScalarValue]>) -> Vec<String> {
        let batches = view.read(state, &[0], keys, &mut || true).expect("a read").expect("within the limit");
        let show = |b: &RecordBatch, i: usize| -> String {
            let cell = |c: &ArrayRef| datafusion::arrow::util::display::array_value_to_string(c, i).expect("a value");
            b.columns().iter().map(cell).collect::<Vec<_>>().join(" ")
        };
        let mut out: Vec<String> = batches.iter().flat_map(|b| (0..b.num_rows()).map(move |i| show(b, i))).collect();
        out.sort();
        out
    }

    #[test]
    fn rows_come_from_the_groups_with_the_projection_applied() {
        let (spec, agg, input, agg_schema) = query(None, false, false);
        let mut h = Harness::new(move || Box::new(AggregateOp::new(agg.clone(), &input, agg_schema.clone()).expect("an operator")));
        h.batch(0, rows(&format!("{INPUT} | a 1 @1 | b 2 @2 | a 3 @3")));
        h.barrier();
        let view = AggregateView::of(&spec, "T").expect("a plan").expect("a view");
        assert!(view.looks_up_keys());
        assert_eq!(view.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["K", "N10", "S", "ROWTIME"]);
        assert_eq!(read(&view, h.state(), None), ["a 20 4 3", "b 10 2 2"]);
        let keys = [ScalarValue::from("b"), ScalarValue::from("zz")];
        assert_eq!(read(&view, h.state(), Some(&keys)), ["b 10 2 2"]);
        // What the barrier has not written yet is not read; a limit ends the read.
        h.batch(0, rows(&format!("{INPUT} | c 5 @4")));
        assert_eq!(read(&view, h.state(), None).len(), 2);
        let mut left = 1;
        let mut more = || std::mem::replace(&mut left, 0) > 0;
        assert!(view.read(h.state(), &[0], None, &mut more).expect("a read").is_none());
        assert!(AggregateView::of(&spec, "OTHER").expect("a plan").is_none());
    }

    #[test]
    fn windows_having_and_filters_keep_their_own_rows() {
        let tumbling = Some(WindowDef { kind: WindowKind::Tumbling { size_ms: 10 }, grace_ms: 0, retention_ms: 10 });
        for (window, emit_old, filter) in [(tumbling, false, false), (None, true, false), (None, false, true)] {
            let (spec, ..) = query(window, emit_old, filter);
            let sink = spec.subtopologies[0].nodes.len() - 1;
            assert!(!serves_from_state(&spec.subtopologies[0], sink));
            assert!(AggregateView::of(&spec, "T").expect("a plan").is_none());
        }
        let (spec, ..) = query(None, false, false);
        assert!(serves_from_state(&spec.subtopologies[0], 3));
    }
}
