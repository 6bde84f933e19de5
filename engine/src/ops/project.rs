//! `ProjectOp`: computes output columns from each input row.
//!
//! Stateless. `_op` is carried over; `_ts` is carried over or computed. Expressions that fail on
//! a row give null for that row and a processing-log entry.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::expr::eval_lenient;
use crate::operator::{OpContext, Operator};
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
        let n = batch.num_columns();
        let mut cols = Vec::with_capacity(self.spec.exprs.len() + 2);
        for e in &self.spec.exprs {
            cols.push(eval_lenient(e, &batch, cx.errors)?);
        }
        match &self.spec.timestamp {
            Some(ts) => cols.push(eval_lenient(ts, &batch, cx.errors)?),
            None => cols.push(batch.column(n - 2).clone()),
        }
        cols.push(batch.column(n - 1).clone());
        let cols = crate::batch::cast_columns(cols, &self.schema)?;
        cx.emit(RecordBatch::try_new(self.schema.clone(), cols)?);
        Ok(())
    }
}
