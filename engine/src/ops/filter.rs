//! `FilterOp`: keeps the rows of a batch where a predicate is true.
//!
//! Stateless. On a stream, rows whose value is null (`_op` = Delete) are dropped, as ksqlDB's
//! WHERE does. On a table changelog (`FilterMode::Table`), a row that fails the predicate
//! becomes a delete of its key, so the downstream table forgets it, and deletes pass through. On
//! changes carrying old values (`FilterMode::Changelog`) every row is judged by the predicate.
//! A HAVING (`FilterMode::Having`) sees each aggregate result with its previous result: it
//! deletes a group's row only when the previous result passed.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, Int8Array};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::Int8Type;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::expr::eval_lenient;
use crate::operator::{OpContext, Operator};
use crate::spec::{FilterMode, FilterSpec};
use crate::types::RowOp;

/// Keeps rows where the predicate holds.
pub struct FilterOp {
    spec: FilterSpec,
}

impl FilterOp {
    /// A filter for this spec.
    pub fn new(spec: FilterSpec) -> Self {
        FilterOp { spec }
    }
}

impl Operator for FilterOp {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        let pred = eval_lenient(&self.spec.predicate, &batch, cx.errors)?;
        let pred = pred.as_boolean();
        let op_idx = batch.num_columns() - 1;
        let ops = batch.column(op_idx).as_primitive::<Int8Type>();
        match self.spec.mode {
            FilterMode::Stream | FilterMode::Changelog => {
                let stream = self.spec.mode == FilterMode::Stream;
                let keep: BooleanArray = (0..batch.num_rows())
                    .map(|i| Some(pred.is_valid(i) && pred.value(i) && !(stream && ops.value(i) == RowOp::Delete as i8)))
                    .collect();
                cx.emit(filter_record_batch(&batch, &keep)?);
                return Ok(());
            }
            FilterMode::Table => {}
            FilterMode::Having => {
                cx.emit(having(&batch, pred, ops)?);
                return Ok(());
            }
        }
        // Table: failing upserts turn into deletes; failing retractions vanish.
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut new_ops = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let op = RowOp::from_code(ops.value(i));
            let pass = pred.is_valid(i) && pred.value(i);
            match (op, pass) {
                (RowOp::Delete, _) => {
                    keep.push(true);
                    new_ops.push(op as i8);
                }
                (_, true) => {
                    keep.push(true);
                    new_ops.push(op as i8);
                }
                (RowOp::UpdateBefore, false) => {
                    keep.push(false);
                    new_ops.push(op as i8);
                }
                (_, false) => {
                    keep.push(true);
                    new_ops.push(RowOp::Delete as i8);
                }
            }
        }
        let mut cols = batch.columns().to_vec();
        cols[op_idx] = Arc::new(Int8Array::from(new_ops));
        let batch = RecordBatch::try_new(batch.schema(), cols)?;
        cx.emit(filter_record_batch(&batch, &BooleanArray::from(keep))?);
        Ok(())
    }
}

/// HAVING over results preceded by their previous results (`UpdateBefore` rows).
fn having(batch: &RecordBatch, pred: &BooleanArray, ops: &datafusion::arrow::array::Int8Array) -> Result<RecordBatch> {
    let passes = |i: usize| pred.is_valid(i) && pred.value(i);
    let op_idx = batch.num_columns() - 1;
    let mut keep = Vec::with_capacity(batch.num_rows());
    let mut new_ops = Vec::with_capacity(batch.num_rows());
    let mut old_passed = false;
    for i in 0..batch.num_rows() {
        let op = RowOp::from_code(ops.value(i));
        let (k, o) = match op {
            RowOp::UpdateBefore => {
                old_passed = passes(i);
                (false, op)
            }
            RowOp::Delete => (true, op),
            RowOp::Insert | RowOp::UpdateAfter => {
                let was = std::mem::take(&mut old_passed) && op == RowOp::UpdateAfter;
                if passes(i) {
                    (true, RowOp::Insert)
                } else {
                    (was, RowOp::Delete)
                }
            }
        };
        keep.push(k);
        new_ops.push(o as i8);
    }
    let mut cols = batch.columns().to_vec();
    cols[op_idx] = Arc::new(Int8Array::from(new_ops));
    let batch = RecordBatch::try_new(batch.schema(), cols)?;
    Ok(filter_record_batch(&batch, &BooleanArray::from(keep))?)
}
