//! `MaterializeOp`: reads a table's changelog (upserts and tombstones by primary key) and emits
//! changes that carry the old row as well, as Kafka Streams does with `sendOldValues`: an upsert
//! of a known key becomes `UpdateBefore(old)` then `UpdateAfter(new)`, of a new key `Insert(new)`;
//! a tombstone of a known key becomes `Delete(old)`, of an unknown key nothing. Aggregations and
//! joins over tables need this to retract the old row.
//!
//! State: key = state prefix + the primary key row; value = the row (all columns, Arrow row
//! format). Cached in a [`StateCache`] (bounded by bytes); written at barriers.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, Int8Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};

use crate::batch::{op_column, ts_column};
use crate::error::Result;
use crate::operator::{OpContext, Operator};
use crate::spec::MaterializeSpec;
use crate::state_cache::StateCache;
use crate::types::{Epoch, RowOp};

/// Unwritten keys past which a checkpoint is requested.
const CAPACITY: usize = 100_000;

/// Keeps the latest row per key to turn upserts into changes.
pub struct MaterializeOp {
    spec: MaterializeSpec,
    schema: SchemaRef,
    keys: RowConverter,
    rows: RowConverter,
    cache: StateCache,
}

impl MaterializeOp {
    /// A materializer of `schema` (input and output).
    pub fn new(spec: MaterializeSpec, schema: SchemaRef) -> Result<Self> {
        let n = schema.fields().len() - 2;
        let keys = RowConverter::new(spec.key_columns.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect())?;
        let rows = RowConverter::new(schema.fields()[..n].iter().map(|f| SortField::new(f.data_type().clone())).collect())?;
        Ok(MaterializeOp { spec, schema, keys, rows, cache: StateCache::new(CAPACITY) })
    }
}

impl Operator for MaterializeOp {
    fn name(&self) -> &'static str {
        "materialize"
    }

    fn open(&mut self, cx: &mut OpContext<'_>) -> Result<()> {
        self.cache.prefix = cx.state_prefix(self.spec.table);
        Ok(())
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        let n = batch.num_columns() - 2;
        let key_cols: Vec<ArrayRef> = self.spec.key_columns.iter().map(|&i| batch.column(i).clone()).collect();
        let key_rows = self.keys.convert_columns(&key_cols)?;
        let data_rows = self.rows.convert_columns(&batch.columns()[..n])?;
        let valid: Vec<bool> = (0..batch.num_rows()).map(|i| key_cols.iter().all(|a| a.is_valid(i))).collect();
        let keys: Vec<Vec<u8>> = (0..batch.num_rows()).map(|i| key_rows.row(i).as_ref().to_vec()).collect();
        self.cache.prefetch(&keys, cx.state)?;
        let ts = ts_column(&batch);
        let ops = op_column(&batch);
        let mut out_rows: Vec<Vec<u8>> = Vec::new();
        let mut out_ts = Vec::new();
        let mut out_ops = Vec::new();
        for i in 0..batch.num_rows() {
            if !valid[i] {
                continue;
            }
            let old = self.cache.get(&keys[i]).map(<[u8]>::to_vec);
            let op = RowOp::from_code(ops.value(i));
            let t = ts.value(i);
            match (op, old) {
                (RowOp::Delete | RowOp::UpdateBefore, Some(old)) => {
                    out_rows.push(old);
                    out_ts.push(t);
                    out_ops.push(RowOp::Delete as i8);
                    self.cache.set(&keys[i], None);
                }
                (RowOp::Delete | RowOp::UpdateBefore, None) => self.cache.set(&keys[i], None),
                (_, Some(old)) => {
                    out_rows.push(old);
                    out_ts.push(t);
                    out_ops.push(RowOp::UpdateBefore as i8);
                    let new = data_rows.row(i).as_ref().to_vec();
                    self.cache.set(&keys[i], Some(new.clone()));
                    out_rows.push(new);
                    out_ts.push(t);
                    out_ops.push(RowOp::UpdateAfter as i8);
                }
                (_, None) => {
                    let new = data_rows.row(i).as_ref().to_vec();
                    self.cache.set(&keys[i], Some(new.clone()));
                    out_rows.push(new);
                    out_ts.push(t);
                    out_ops.push(RowOp::Insert as i8);
                }
            }
        }
        if !out_rows.is_empty() {
            let parser = self.rows.parser();
            let parsed: Vec<_> = out_rows.iter().map(|b| parser.parse(b)).collect();
            let mut cols = self.rows.convert_rows(parsed.iter().copied())?;
            cols.push(Arc::new(Int64Array::from(out_ts)));
            cols.push(Arc::new(Int8Array::from(out_ops)));
            cx.emit(RecordBatch::try_new(self.schema.clone(), cols)?);
        }
        if self.cache.over_budget() {
            cx.request_checkpoint();
        }
        Ok(())
    }

    fn on_barrier(&mut self, _epoch: Epoch, cx: &mut OpContext<'_>) -> Result<()> {
        self.cache.flush(cx.writes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;
    use crate::batch::with_internal;
    use crate::testing::{rows, Harness};
    use crate::types::TableId;

    const SCHEMA: &str = "k:i64 v:utf8";

    fn harness() -> Harness {
        let schema = with_internal([Field::new("k", DataType::Int64, true), Field::new("v", DataType::Utf8, true)]);
        let spec = MaterializeSpec { key_columns: vec![0], table: TableId(1) };
        Harness::new(move || Box::new(MaterializeOp::new(spec.clone(), schema.clone()).expect("an operator")))
    }

    #[test]
    fn upserts_and_tombstones_become_changes_with_old_rows() {
        let mut h = harness();
        h.batch(0, rows(&format!("{SCHEMA} | 1 a @1 | 2 b @2 | 1 c @3 | 2 null @4 - | 3 x @5 - | null y @6")));
        assert_eq!(h.output(), ["1 a @1 +", "2 b @2 +", "1 a @3 U-", "1 c @3 U+", "2 b @4 -"]);
    }

    #[test]
    fn the_latest_rows_survive_a_restart_and_unflushed_ones_a_crash_do_not() {
        let mut h = harness();
        h.batch(0, rows(&format!("{SCHEMA} | 1 a @1 | 2 b @2")));
        h.restart();
        assert_eq!(h.state_len(), 2);
        h.batch(0, rows(&format!("{SCHEMA} | 1 c @3 | 2 null @4 -")));
        assert_eq!(h.output(), ["1 a @1 +", "2 b @2 +", "1 a @3 U-", "1 c @3 U+", "2 b @4 -"]);
        // Not checkpointed: after a crash, key 1 is `a` again and key 2 is back.
        h.crash();
        h.batch(0, rows(&format!("{SCHEMA} | 1 d @5 | 2 e @6")));
        assert_eq!(h.output(), ["1 a @5 U-", "1 d @5 U+", "2 b @6 U-", "2 e @6 U+"]);
        // A checkpointed delete removes the key's state.
        h.batch(0, rows(&format!("{SCHEMA} | 2 null @7 -")));
        h.restart();
        assert_eq!(h.state_len(), 1);
    }
}
