//! `ForeignKeyJoinOp`: a table (input 0, a changelog with old values) joined on a foreign-key
//! column to another table's primary key (input 1, upserts and deletes). INNER and LEFT.
//!
//! - A left upsert joins the right row of its foreign key: a result keyed by the left row's
//!   primary key (INNER without a match: nothing for a new row, a tombstone for a changed one).
//! - A left retraction (the old value of a changed row) only leaves the index of its old key.
//! - A left delete emits a tombstone.
//! - A right change re-joins every left row referencing its key, in left-key order (INNER: a
//!   deleted right row turns them into tombstones; LEFT: null-padded rows).
//!
//! State: `prefix + 'L' + [u32 fk length][fk][left primary key] -> left row`, which is also the
//! index from a foreign key to its left rows (a prefix scan), and `prefix + 'R' + fk -> right
//! row`; values are event time + row bytes. Writes since the last barrier are kept in ordered
//! overlays merged with the store on scans.

use std::collections::BTreeMap;

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

/// Foreign-key table-table join.
pub struct ForeignKeyJoinOp {
    spec: JoinSpec,
    schema: SchemaRef,
    codecs: [Codec; 2],
    fk: Codec,
    left_pk: Codec,
    right_key: Codec,
    right: StateCache,
    /// Left rows written since the last barrier: full key -> row (None: deleted).
    left: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    left_prefix: Vec<u8>,
}

impl ForeignKeyJoinOp {
    /// A foreign-key join of two table inputs producing `schema`.
    pub fn new(spec: JoinSpec, left: &SchemaRef, right: &SchemaRef, schema: SchemaRef) -> Result<Self> {
        Ok(ForeignKeyJoinOp {
            codecs: [Codec::first(left, spec.left_width)?, Codec::first(right, spec.right_width)?],
            fk: Codec::new(left, spec.left_keys.clone())?,
            left_pk: Codec::new(left, spec.left_primary_key.clone())?,
            right_key: Codec::new(right, spec.right_keys.clone())?,
            right: StateCache::new(CAPACITY),
            left: BTreeMap::new(),
            left_prefix: Vec::new(),
            spec,
            schema,
        })
    }

    fn fk_prefix(&self, fk: &[u8]) -> Vec<u8> {
        let mut k = self.left_prefix.clone();
        k.extend_from_slice(&(fk.len() as u32).to_be_bytes());
        k.extend_from_slice(fk);
        k
    }

    /// Left rows referencing `fk`, in left-key order: (full key, stored row).
    fn left_rows(&self, fk: &[u8], cx: &OpContext<'_>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let from = self.fk_prefix(fk);
        let to = crate::runtime::keys::prefix_end(&from);
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for kv in cx.state.scan(&from, &to)? {
            let (k, v) = kv?;
            rows.insert(k, v);
        }
        for (k, v) in self.left.range(from..to) {
            match v {
                Some(v) => rows.insert(k.clone(), v.clone()),
                None => rows.remove(k),
            };
        }
        Ok(rows.into_iter().collect())
    }
}

impl Operator for ForeignKeyJoinOp {
    fn name(&self) -> &'static str {
        "foreign-key join"
    }

    fn open(&mut self, cx: &mut OpContext<'_>) -> Result<()> {
        let p = cx.state_prefix(self.spec.table);
        self.left_prefix = [p.as_slice(), b"L"].concat();
        self.right.prefix = [p.as_slice(), b"R"].concat();
        Ok(())
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        let ts = ts_column(&batch).clone();
        let ops = op_column(&batch).clone();
        let left_outer = self.spec.join_type == JoinType::Left;
        let mut out = Vec::new();
        if input == 0 {
            let fks = self.fk.rows(&batch)?;
            let pks = self.left_pk.rows(&batch)?;
            let rows = self.codecs[0].rows(&batch)?;
            let keys: Vec<Vec<u8>> = (0..batch.num_rows()).map(|i| fks.row(i).as_ref().to_vec()).collect();
            self.right.prefetch(&keys, cx.state)?;
            for (i, key) in keys.iter().enumerate() {
                let op = RowOp::from_code(ops.value(i));
                let null_fk = self.fk.has_null(&batch, i);
                let mut full = self.fk_prefix(key);
                full.extend_from_slice(pks.row(i).as_ref());
                let row = rows.row(i).as_ref().to_vec();
                let t = ts.value(i);
                match op {
                    RowOp::UpdateBefore => {
                        self.left.insert(full, None);
                    }
                    RowOp::Delete => {
                        self.left.insert(full, None);
                        out.push(Joined { left: Some(row), right: None, ts: t, op: RowOp::Delete });
                    }
                    RowOp::Insert | RowOp::UpdateAfter => {
                        if !null_fk {
                            self.left.insert(full, Some(stored(t, &row)));
                        }
                        let found = if null_fk { None } else { self.right.get(key).and_then(unstored).map(|(rt, r)| (rt, r.to_vec())) };
                        match found {
                            Some((rt, r)) => out.push(Joined { left: Some(row), right: Some(r), ts: t.max(rt), op: RowOp::Insert }),
                            None if left_outer => out.push(Joined { left: Some(row), right: None, ts: t, op: RowOp::Insert }),
                            None if op == RowOp::UpdateAfter => out.push(Joined { left: Some(row), right: None, ts: t, op: RowOp::Delete }),
                            None => {}
                        }
                    }
                }
            }
        } else {
            let keys_rows = self.right_key.rows(&batch)?;
            let rows = self.codecs[1].rows(&batch)?;
            let keys: Vec<Vec<u8>> = (0..batch.num_rows()).map(|i| keys_rows.row(i).as_ref().to_vec()).collect();
            self.right.prefetch(&keys, cx.state)?;
            for (i, key) in keys.iter().enumerate() {
                let op = RowOp::from_code(ops.value(i));
                if op == RowOp::UpdateBefore || self.right_key.has_null(&batch, i) {
                    continue;
                }
                let t = ts.value(i);
                let new = if op == RowOp::Delete { None } else { Some(rows.row(i).as_ref().to_vec()) };
                self.right.set(key, new.as_ref().map(|r| stored(t, r)));
                for (_, l) in self.left_rows(key, cx)? {
                    let Some((lt, lrow)) = unstored(&l) else { continue };
                    let ts = t.max(lt);
                    match &new {
                        Some(r) => out.push(Joined { left: Some(lrow.to_vec()), right: Some(r.clone()), ts, op: RowOp::Insert }),
                        None if left_outer => out.push(Joined { left: Some(lrow.to_vec()), right: None, ts, op: RowOp::Insert }),
                        None => out.push(Joined { left: Some(lrow.to_vec()), right: None, ts: t, op: RowOp::Delete }),
                    }
                }
            }
        }
        if let Some(b) = build(&self.schema, &self.codecs[0], &self.codecs[1], &out)? {
            cx.emit(b);
        }
        if self.left.len() > CAPACITY || self.right.over_budget() {
            cx.request_checkpoint();
        }
        Ok(())
    }

    fn on_barrier(&mut self, _epoch: Epoch, cx: &mut OpContext<'_>) -> Result<()> {
        let batch = cx.writes();
        for (k, v) in std::mem::take(&mut self.left) {
            match v {
                Some(v) => batch.put(&k, &v),
                None => batch.delete(&k),
            }
        }
        self.right.flush(batch);
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

    const LEFT: &str = "id:i64 fk:i64 v:utf8";
    const RIGHT: &str = "k:i64 w:utf8";

    /// Left (id primary key, fk, v) joined on fk to right (k primary key, w).
    fn harness(join_type: JoinType) -> Harness {
        let i = |n: &str| Field::new(n, DataType::Int64, true);
        let s = |n: &str| Field::new(n, DataType::Utf8, true);
        let l = with_internal([i("id"), i("fk"), s("v")]);
        let r = with_internal([i("k"), s("w")]);
        let out = with_internal([i("id"), i("fk"), s("v"), i("k"), s("w")]);
        let spec = JoinSpec {
            kind: JoinKindSpec::ForeignKey,
            join_type,
            left_keys: vec![1],
            right_keys: vec![0],
            left_width: 3,
            right_width: 2,
            left_primary_key: vec![0],
            table: TableId(10),
        };
        Harness::new(move || Box::new(ForeignKeyJoinOp::new(spec.clone(), &l, &r, out.clone()).expect("an operator")))
    }

    #[test]
    fn left_rows_follow_their_foreign_key_and_right_changes_rejoin_them() {
        let mut h = harness(JoinType::Inner);
        h.batch(1, rows(&format!("{RIGHT} | 10 ten @1")));
        h.batch(0, rows(&format!("{LEFT} | 1 10 a @2 | 2 20 b @3")));
        h.batch(1, rows(&format!("{RIGHT} | 20 twenty @4")));
        // Row 1 moves from key 10 to key 20 (a change with its old value).
        h.batch(0, rows(&format!("{LEFT} | 1 10 a @5 U- | 1 20 a @5 U+")));
        h.batch(1, rows(&format!("{RIGHT} | 10 null @6 -")));
        assert_eq!(h.output(), ["1 10 a 10 ten @2 +", "2 20 b 20 twenty @4 +", "1 20 a 20 twenty @5 +"]);
        h.restart();
        h.batch(1, rows(&format!("{RIGHT} | 20 veinte @7")));
        assert_eq!(h.output(), ["1 20 a 20 veinte @7 +", "2 20 b 20 veinte @7 +"]);
        h.batch(0, rows(&format!("{LEFT} | 2 20 b @8 -")));
        // The tombstone carries the deleted left row (the sink keeps its key only).
        assert_eq!(h.output(), ["2 20 b null null @8 -"]);
    }

    #[test]
    fn a_left_join_pads_rows_whose_key_has_no_right_row() {
        let mut h = harness(JoinType::Left);
        h.batch(0, rows(&format!("{LEFT} | 1 10 a @1")));
        h.batch(1, rows(&format!("{RIGHT} | 10 ten @2 | 10 null @3 -")));
        assert_eq!(h.output(), ["1 10 a null null @1 +", "1 10 a 10 ten @2 +", "1 10 a null null @3 +"]);
    }
}
