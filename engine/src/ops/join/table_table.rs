//! `TableTableJoinOp`: two tables joined on their primary key. Each side's change (upsert or
//! delete) updates that side's state and recomputes the key's result: a row when the join type
//! keeps the pair (INNER: both sides, LEFT: the left, RIGHT: the right, FULL: either), else a
//! tombstone when there was a result before.
//!
//! State: `prefix + 'L' + key -> left row`, `prefix + 'R' + key -> right row` (event time + row
//! bytes), cached and written at barriers.

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

/// Table-table join.
pub struct TableTableJoinOp {
    spec: JoinSpec,
    schema: SchemaRef,
    codecs: [Codec; 2],
    keys: [Codec; 2],
    sides: [StateCache; 2],
}

impl TableTableJoinOp {
    /// A join of two table inputs producing `schema`.
    pub fn new(spec: JoinSpec, left: &SchemaRef, right: &SchemaRef, schema: SchemaRef) -> Result<Self> {
        Ok(TableTableJoinOp {
            codecs: [Codec::first(left, spec.left_width)?, Codec::first(right, spec.right_width)?],
            keys: [Codec::new(left, spec.left_keys.clone())?, Codec::new(right, spec.right_keys.clone())?],
            sides: [StateCache::new(CAPACITY), StateCache::new(CAPACITY)],
            spec,
            schema,
        })
    }

    fn keeps(&self, left: bool, right: bool) -> bool {
        match self.spec.join_type {
            JoinType::Inner => left && right,
            JoinType::Left => left,
            JoinType::Right => right,
            JoinType::Full => left || right,
        }
    }
}

impl Operator for TableTableJoinOp {
    fn name(&self) -> &'static str {
        "table-table join"
    }

    fn open(&mut self, cx: &mut OpContext<'_>) -> Result<()> {
        let p = cx.state_prefix(self.spec.table);
        self.sides[0].prefix = [p.as_slice(), b"L"].concat();
        self.sides[1].prefix = [p.as_slice(), b"R"].concat();
        Ok(())
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        let me = input.min(1);
        let other = 1 - me;
        let ts = ts_column(&batch).clone();
        let ops = op_column(&batch).clone();
        let keys = self.keys[me].rows(&batch)?;
        let rows = self.codecs[me].rows(&batch)?;
        let ks: Vec<Vec<u8>> = (0..batch.num_rows()).map(|i| keys.row(i).as_ref().to_vec()).collect();
        self.sides[me].prefetch(&ks, cx.state)?;
        self.sides[other].prefetch(&ks, cx.state)?;
        let mut out = Vec::new();
        for (i, k) in ks.iter().enumerate() {
            let op = RowOp::from_code(ops.value(i));
            if op == RowOp::UpdateBefore || self.keys[me].has_null(&batch, i) {
                continue;
            }
            let old = self.sides[me].get(k).map(|v| v.to_vec());
            let new = if op == RowOp::Delete { None } else { Some(stored(ts.value(i), rows.row(i).as_ref())) };
            let theirs = self.sides[other].get(k).map(|v| v.to_vec());
            let had = self.keeps_pair(me, old.is_some(), theirs.is_some());
            let has = self.keeps_pair(me, new.is_some(), theirs.is_some());
            self.sides[me].set(k, new.clone());
            let split = |v: &Option<Vec<u8>>| v.as_deref().and_then(unstored).map(|(t, r)| (t, r.to_vec()));
            let (mine_now, mine_before, theirs) = (split(&new), split(&old), split(&theirs));
            let pair = |mine: Option<(i64, Vec<u8>)>, theirs: Option<(i64, Vec<u8>)>, op: RowOp, at: i64| {
                let ts = mine.as_ref().map(|m| m.0).into_iter().chain(theirs.as_ref().map(|t| t.0)).max().unwrap_or(at).max(at);
                let (m, t) = (mine.map(|m| m.1), theirs.map(|t| t.1));
                let (left, right) = if me == 0 { (m, t) } else { (t, m) };
                Joined { left, right, ts, op }
            };
            if has {
                out.push(pair(mine_now, theirs, RowOp::Insert, ts.value(i)));
            } else if had {
                out.push(pair(mine_before, theirs, RowOp::Delete, ts.value(i)));
            }
        }
        if let Some(b) = build(&self.schema, &self.codecs[0], &self.codecs[1], &out)? {
            cx.emit(b);
        }
        if self.sides[0].over_budget() || self.sides[1].over_budget() {
            cx.request_checkpoint();
        }
        Ok(())
    }

    fn on_barrier(&mut self, _epoch: Epoch, cx: &mut OpContext<'_>) -> Result<()> {
        let batch = cx.writes();
        self.sides[0].flush(batch);
        self.sides[1].flush(batch);
        Ok(())
    }
}

impl TableTableJoinOp {
    /// Whether the join keeps a pair where `mine` (side `me`) and `theirs` are present.
    fn keeps_pair(&self, me: usize, mine: bool, theirs: bool) -> bool {
        if me == 0 {
            self.keeps(mine, theirs)
        } else {
            self.keeps(theirs, mine)
        }
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

    const LEFT: &str = "k:i64 v:utf8";
    const RIGHT: &str = "k:i64 w:utf8";

    fn harness(join_type: JoinType) -> Harness {
        let side = |v: &str| with_internal([Field::new("k", DataType::Int64, true), Field::new(v, DataType::Utf8, true)]);
        let (l, r) = (side("v"), side("w"));
        let out = with_internal(["lk", "v", "rk", "w"].map(|n| Field::new(n, if n.ends_with('k') { DataType::Int64 } else { DataType::Utf8 }, true)));
        let spec = JoinSpec {
            kind: JoinKindSpec::TableTable,
            join_type,
            left_keys: vec![0],
            right_keys: vec![0],
            left_width: 2,
            right_width: 2,
            left_primary_key: Vec::new(),
            table: TableId(10),
        };
        Harness::new(move || Box::new(TableTableJoinOp::new(spec.clone(), &l, &r, out.clone()).expect("an operator")))
    }

    #[test]
    fn an_inner_join_emits_pairs_and_tombstones_when_a_pair_ends() {
        let mut h = harness(JoinType::Inner);
        h.batch(0, rows(&format!("{LEFT} | 1 a @1 | 2 b @2")));
        assert!(h.output().is_empty());
        h.batch(1, rows(&format!("{RIGHT} | 1 one @3")));
        h.batch(0, rows(&format!("{LEFT} | 1 aa @4")));
        h.batch(1, rows(&format!("{RIGHT} | 1 null @5 -")));
        h.batch(1, rows(&format!("{RIGHT} | 2 null @6 -")));
        // The tombstone carries the pair's last result (the sink keeps its key only).
        assert_eq!(h.output(), ["1 a 1 one @3 +", "1 aa 1 one @4 +", "1 aa 1 one @5 -"]);
    }

    #[test]
    fn a_full_join_keeps_either_side_across_a_restart() {
        let mut h = harness(JoinType::Full);
        h.batch(0, rows(&format!("{LEFT} | 1 a @1")));
        h.restart();
        h.batch(1, rows(&format!("{RIGHT} | 1 one @2 | 2 two @3")));
        h.batch(0, rows(&format!("{LEFT} | 1 null @4 -")));
        assert_eq!(h.output(), ["1 a null null @1 +", "1 a 1 one @2 +", "null null 2 two @3 +", "null null 1 one @4 +"]);
    }
}
