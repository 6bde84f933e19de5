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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::logical_expr::Operator as Op;
    use datafusion::physical_expr::expressions::{lit, BinaryExpr, Column};

    use super::*;
    use crate::testing::{rows, Harness};

    /// `x > 1` over `x:i64`.
    fn harness(mode: FilterMode) -> Harness {
        let predicate = Arc::new(BinaryExpr::new(Arc::new(Column::new("x", 0)), Op::Gt, lit(1i64)));
        let spec = FilterSpec { predicate, mode };
        Harness::new(move || Box::new(FilterOp::new(spec.clone())))
    }

    #[test]
    fn a_stream_keeps_passing_rows_and_drops_null_valued_records() {
        let mut h = harness(FilterMode::Stream);
        h.batch(0, rows("x:i64 | 1 @1 | 2 @2 | null @3 | 5 @4 - | 3 @5"));
        assert_eq!(h.output(), ["2 @2 +", "3 @5 +"]);
    }

    #[test]
    fn a_table_turns_failing_upserts_into_deletes_and_drops_failing_retractions() {
        let mut h = harness(FilterMode::Table);
        h.batch(0, rows("x:i64 | 2 @1 | 1 @2 | 0 @3 - | 1 @4 U- | 1 @5 U+ | 4 @6 U+"));
        assert_eq!(h.output(), ["2 @1 +", "1 @2 -", "0 @3 -", "1 @5 -", "4 @6 U+"]);
    }

    #[test]
    fn a_changelog_judges_every_op_by_the_predicate() {
        let mut h = harness(FilterMode::Changelog);
        h.batch(0, rows("x:i64 | 2 @1 U- | 1 @2 U+ | 3 @3 - | 0 @4 -"));
        assert_eq!(h.output(), ["2 @1 U-", "3 @3 -"]);
    }

    #[test]
    fn having_deletes_a_group_only_when_its_previous_result_passed() {
        let mut h = harness(FilterMode::Having);
        // Group results with their previous results: 2 (new), 2 -> 1 (fails: delete),
        // 1 -> 0 (previous failed too: nothing), 0 -> 5 (passes: upsert).
        h.batch(0, rows("x:i64 | 2 @1 | 2 @2 U- | 1 @2 U+ | 1 @3 U- | 0 @3 U+ | 0 @4 U- | 5 @4 U+"));
        assert_eq!(h.output(), ["2 @1 +", "1 @2 -", "5 @4 +"]);
    }

    #[test]
    fn stateless_across_restarts_and_forwards_watermarks() {
        let mut h = harness(FilterMode::Stream);
        h.batch(0, rows("x:i64 | 2 @10"));
        h.restart();
        h.batch(0, rows("x:i64 | 3 @20"));
        assert_eq!(h.messages(), ["2 @10 +", "wm 10", "3 @20 +", "wm 20"]);
        assert_eq!(h.state_len(), 0);
    }
}
