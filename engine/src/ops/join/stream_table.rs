//! `StreamTableJoinOp`: each stream row (input 0) looks up the table (input 1) as it is when the
//! row arrives; table changes update the state and emit nothing. INNER drops unmatched stream
//! rows, LEFT pads them with nulls. Every output row has the stream row's event time (as Kafka
//! Streams' KStream-KTable join), whatever the time of the table row it met.
//!
//! State: key = state prefix + the table's key row -> event time + the table row. Cached in
//! memory (stream rows prefetch their keys per batch with one multi_get; table changes need no
//! lookup), written at barriers, clean entries evicted beyond the cache budget.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::{build, stored, unstored, Codec, Joined};
use crate::batch::{op_column, ts_column};
use crate::error::Result;
use crate::operator::{OpContext, Operator};
use crate::spec::{JoinSpec, JoinType};
use crate::state_cache::StateCache;
use crate::types::{Epoch, RowOp};

const CAPACITY: usize = 100_000;

/// Stream-table join.
pub struct StreamTableJoinOp {
    spec: JoinSpec,
    schema: SchemaRef,
    left: Codec,
    right: Codec,
    left_keys: Codec,
    right_keys: Codec,
    table: StateCache,
}

impl StreamTableJoinOp {
    /// A join of `left` (stream) and `right` (table) inputs producing `schema`.
    pub fn new(spec: JoinSpec, left: &SchemaRef, right: &SchemaRef, schema: SchemaRef) -> Result<Self> {
        Ok(StreamTableJoinOp {
            left: Codec::first(left, spec.left_width)?,
            right: Codec::first(right, spec.right_width)?,
            left_keys: Codec::new(left, spec.left_keys.clone())?,
            right_keys: Codec::new(right, spec.right_keys.clone())?,
            spec,
            schema,
            table: StateCache::new(CAPACITY),
        })
    }
}

impl Operator for StreamTableJoinOp {
    fn name(&self) -> &'static str {
        "stream-table join"
    }

    fn open(&mut self, cx: &mut OpContext<'_>) -> Result<()> {
        self.table.prefix = cx.state_prefix(self.spec.table);
        Ok(())
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        let ts = ts_column(&batch).clone();
        let ops = op_column(&batch).clone();
        if input == 1 {
            let keys = self.right_keys.rows(&batch)?;
            let rows = self.right.rows(&batch)?;
            // A table change replaces the row whatever it was: no lookup.
            let ks: Vec<Vec<u8>> = (0..batch.num_rows()).map(|i| keys.row(i).as_ref().to_vec()).collect();
            for (i, k) in ks.iter().enumerate() {
                if self.right_keys.has_null(&batch, i) {
                    continue;
                }
                let op = RowOp::from_code(ops.value(i));
                if op == RowOp::UpdateBefore {
                    continue;
                }
                let value = if op == RowOp::Delete { None } else { Some(stored(ts.value(i), rows.row(i).as_ref())) };
                self.table.set(k, value);
            }
            if self.table.over_budget() {
                cx.request_checkpoint();
            }
            return Ok(());
        }
        let keys = self.left_keys.rows(&batch)?;
        let rows = self.left.rows(&batch)?;
        let ks: Vec<Vec<u8>> = (0..batch.num_rows()).map(|i| keys.row(i).as_ref().to_vec()).collect();
        self.table.prefetch(&ks, cx.state)?;
        let mut out = Vec::new();
        for (i, k) in ks.iter().enumerate() {
            if !RowOp::from_code(ops.value(i)).is_add() {
                continue;
            }
            let t = ts.value(i);
            let found = if self.left_keys.has_null(&batch, i) {
                None
            } else {
                self.table.get(k).and_then(unstored)
            };
            match found {
                // Kafka Streams gives a stream-table join's output the stream record's time.
                Some((_, r)) => out.push(Joined { left: Some(rows.row(i).as_ref().to_vec()), right: Some(r.to_vec()), ts: t, op: RowOp::Insert }),
                None if self.spec.join_type == JoinType::Left => {
                    out.push(Joined { left: Some(rows.row(i).as_ref().to_vec()), right: None, ts: t, op: RowOp::Insert })
                }
                None => {}
            }
        }
        if let Some(b) = build(&self.schema, &self.left, &self.right, &out)? {
            cx.emit(b);
        }
        Ok(())
    }

    fn on_barrier(&mut self, _epoch: Epoch, cx: &mut OpContext<'_>) -> Result<()> {
        self.table.flush(cx.writes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;
    use crate::batch::with_internal;
    use crate::spec::JoinKindSpec;
    use crate::testing::{rows, Harness};
    use crate::types::TableId;

    const STREAM: &str = "k:i64 v:utf8";
    const TABLE: &str = "k:i64 w:utf8";

    /// Stream (k, v) joined to table (k, w) on k; output (k, v, k, w).
    fn harness(join_type: JoinType) -> Harness {
        let side = |v: &str| with_internal([Field::new("k", DataType::Int64, true), Field::new(v, DataType::Utf8, true)]);
        let (l, r) = (side("v"), side("w"));
        let out = with_internal(["lk", "v", "rk", "w"].map(|n| Field::new(n, if n.ends_with('k') { DataType::Int64 } else { DataType::Utf8 }, true)));
        let spec = JoinSpec {
            kind: JoinKindSpec::StreamTable,
            join_type,
            left_keys: vec![0],
            right_keys: vec![0],
            left_width: 2,
            right_width: 2,
            left_primary_key: Vec::new(),
            table: TableId(10),
        };
        Harness::new(move || Box::new(StreamTableJoinOp::new(spec.clone(), &l, &r, out.clone()).expect("an operator")))
    }

    #[test]
    fn stream_rows_meet_the_table_as_it_is_when_they_arrive() {
        let mut h = harness(JoinType::Inner);
        h.batch(1, rows(&format!("{TABLE} | 1 one @100 | 2 two @100")));
        assert!(h.output().is_empty(), "table changes emit nothing");
        h.batch(0, rows(&format!("{STREAM} | 1 a @5 | 3 b @6 | 2 c @7")));
        h.batch(1, rows(&format!("{TABLE} | 1 uno @8 | 2 null @9 -")));
        h.batch(0, rows(&format!("{STREAM} | 1 d @10 | 2 e @11")));
        // Output rows take the stream row's time, not the table row's.
        assert_eq!(h.output(), ["1 a 1 one @5 +", "2 c 2 two @7 +", "1 d 1 uno @10 +"]);
    }

    #[test]
    fn a_left_join_pads_unmatched_rows_and_the_table_survives_a_restart() {
        let mut h = harness(JoinType::Left);
        h.batch(1, rows(&format!("{TABLE} | 1 one @1")));
        h.restart();
        h.batch(0, rows(&format!("{STREAM} | 1 a @5 | 3 b @6 | null c @7")));
        assert_eq!(h.output(), ["1 a 1 one @5 +", "3 b null null @6 +", "null c null null @7 +"]);
        h.batch(1, rows(&format!("{TABLE} | 3 three @8")));
        h.crash();
        h.batch(0, rows(&format!("{STREAM} | 3 d @9")));
        assert_eq!(h.output(), ["3 d null null @9 +"], "the unflushed table row is gone after a crash");
    }
}
