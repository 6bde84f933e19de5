//! `ProjectOp`: computes output columns from each input row.
//!
//! Stateless. `_op` is carried over; `_ts` is carried over or computed. Expressions that fail on
//! a row give null for that row and a processing-log entry.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::expr::eval_lenient;
use crate::operator::{OpContext, Operator};
use crate::processing_log::ProcessingError;
use crate::spec::ProjectSpec;

/// Computes columns.
pub struct ProjectOp {
    spec: ProjectSpec,
    schema: SchemaRef,
}

impl ProjectOp {
    /// A projection producing `schema` (which ends with `_ts`, `_op`).
    pub fn new(spec: ProjectSpec, schema: SchemaRef) -> Self {
        ProjectOp { spec, schema }
    }
}

impl Operator for ProjectOp {
    fn name(&self) -> &'static str {
        "project"
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        let out = project_batch(&self.spec, &self.schema, &batch, cx.errors)?;
        cx.emit(out);
        Ok(())
    }
}

/// The rows of `batch` projected by `spec` into `schema`: rows on which an expression fails get
/// null there, and an entry in `errors`.
pub(crate) fn project_batch(spec: &ProjectSpec, schema: &SchemaRef, batch: &RecordBatch, errors: &mut Vec<ProcessingError>) -> Result<RecordBatch> {
    let n = batch.num_columns();
    let mut cols = Vec::with_capacity(spec.exprs.len() + 2);
    for e in &spec.exprs {
        cols.push(eval_lenient(e, batch, errors)?);
    }
    match &spec.timestamp {
        Some(ts) => cols.push(eval_lenient(ts, batch, errors)?),
        None => cols.push(batch.column(n - 2).clone()),
    }
    cols.push(batch.column(n - 1).clone());
    let cols = crate::batch::cast_columns(cols, schema)?;
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::logical_expr::Operator as Op;
    use datafusion::physical_expr::expressions::{lit, BinaryExpr, Column};

    use super::*;
    use crate::batch::with_internal;
    use crate::testing::{rows, Harness};

    fn harness(timestamp: Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>) -> Harness {
        // SELECT b, a * 10 FROM (a:i64, b:utf8)
        let times_ten = Arc::new(BinaryExpr::new(Arc::new(Column::new("a", 0)), Op::Multiply, lit(10i64)));
        let spec = ProjectSpec { exprs: vec![Arc::new(Column::new("b", 1)), times_ten], timestamp };
        let schema = with_internal([Field::new("b", DataType::Utf8, true), Field::new("a10", DataType::Int64, true)]);
        Harness::new(move || Box::new(ProjectOp::new(spec.clone(), schema.clone())))
    }

    #[test]
    fn computes_columns_and_carries_time_and_op() {
        let mut h = harness(None);
        h.batch(0, rows("a:i64 b:utf8 | 1 x @5 | null y @6 - | 3 z @7 U+"));
        assert_eq!(h.output(), ["x 10 @5 +", "y null @6 -", "z 30 @7 U+"]);
    }

    #[test]
    fn the_event_time_can_come_from_an_expression() {
        let mut h = harness(Some(Arc::new(Column::new("a", 0))));
        h.batch(0, rows("a:i64 b:utf8 | 100 x @5 | 200 y @6"));
        assert_eq!(h.output(), ["x 1000 @100 +", "y 2000 @200 +"]);
    }

    #[test]
    fn a_row_that_fails_gives_null_and_a_processing_log_entry() {
        // 10 / a, a division by zero for a = 0.
        let by_a = Arc::new(BinaryExpr::new(lit(10i64), Op::Divide, Arc::new(Column::new("a", 0))));
        let spec = ProjectSpec { exprs: vec![Arc::new(Column::new("b", 1)), by_a], timestamp: None };
        let schema = with_internal([Field::new("b", DataType::Utf8, true), Field::new("q", DataType::Int64, true)]);
        let mut h = Harness::new(move || Box::new(ProjectOp::new(spec.clone(), schema.clone())));
        h.batch(0, rows("a:i64 b:utf8 | 0 zero | 2 ok"));
        assert_eq!(h.output(), ["zero null @0 +", "ok 5 @0 +"]);
        assert_eq!(h.errors().len(), 1);
        h.restart();
        h.batch(0, rows("a:i64 b:utf8 | 5 again"));
        assert_eq!(h.output(), ["again 2 @0 +"]);
    }
}
