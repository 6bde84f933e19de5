//! `StreamStreamJoinOp`: rows of two streams whose event times are within the join window:
//! `left.ts - before <= right.ts <= left.ts + after`.
//!
//! Each side's rows wait in a buffer (per join key, ordered by event time) until the window can
//! no longer match them: stream time past `ts + after + grace` (left) or `ts + before + grace`
//! (right); without GRACE PERIOD ksqlDB's legacy 24 hours apply. A new row joins with the other
//! side's buffered rows in its window. Outer joins: without grace an unmatched row is emitted
//! null-padded at once (legacy), with grace when its window closes unmatched; a row later than
//! its window's close is dropped (outer joins with grace emit it null-padded at once).
//!
//! State: the buffers live in memory (their size is bounded by the window, not by the streams'
//! length) and in the state store, written at barriers: key = prefix + side + [u32 key length,
//! key] + [event time, sequence] -> matched flag + row bytes; a meta entry holds stream time and
//! the sequence counter. `open` rebuilds the buffers from the store.

use std::collections::{BTreeMap, HashMap, HashSet};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::{build, Codec, Joined};
use crate::batch::{op_column, ts_column};
use crate::error::Result;
use crate::operator::{OpContext, Operator};
use crate::processing_log::ProcessingError;
use crate::spec::{JoinKindSpec, JoinSpec, JoinType};
use crate::types::{Epoch, RowOp};

/// ksqlDB's grace for stream-stream joins without GRACE PERIOD.
const LEGACY_GRACE_MS: i64 = 24 * 3600 * 1000;

struct Entry {
    row: Vec<u8>,
    matched: bool,
}

type Id = (usize, Vec<u8>, i64, u64);

/// Stream-stream join.
pub struct StreamStreamJoinOp {
    spec: JoinSpec,
    schema: SchemaRef,
    codecs: [Codec; 2],
    keys: [Codec; 2],
    before: i64,
    after: i64,
    grace: Option<i64>,
    bufs: [HashMap<Vec<u8>, BTreeMap<(i64, u64), Entry>>; 2],
    expiry: BTreeMap<(i64, u64), (usize, Vec<u8>, i64)>,
    observed: i64,
    seq: u64,
    prefix: Vec<u8>,
    dirty: HashSet<Id>,
    deleted: HashSet<Id>,
}

impl StreamStreamJoinOp {
    /// A join of two stream inputs producing `schema`.
    pub fn new(spec: JoinSpec, left: &SchemaRef, right: &SchemaRef, schema: SchemaRef) -> Result<Self> {
        let JoinKindSpec::StreamStream { before_ms, after_ms, grace_ms } = spec.kind else {
            unreachable!("a stream-stream join spec")
        };
        Ok(StreamStreamJoinOp {
            codecs: [Codec::first(left, spec.left_width)?, Codec::first(right, spec.right_width)?],
            keys: [Codec::new(left, spec.left_keys.clone())?, Codec::new(right, spec.right_keys.clone())?],
            before: before_ms,
            after: after_ms,
            grace: grace_ms,
            bufs: [HashMap::new(), HashMap::new()],
            expiry: BTreeMap::new(),
            observed: i64::MIN,
            seq: 0,
            prefix: Vec::new(),
            dirty: HashSet::new(),
            deleted: HashSet::new(),
            spec,
            schema,
        })
    }

    fn outer(&self, side: usize) -> bool {
        matches!(
            (side, self.spec.join_type),
            (0, JoinType::Left) | (0, JoinType::Full) | (1, JoinType::Right) | (1, JoinType::Full)
        )
    }

    /// When a row of `side` at `ts` can no longer match.
    fn close_time(&self, side: usize, ts: i64) -> i64 {
        let reach = if side == 0 { self.after } else { self.before };
        ts.saturating_add(reach).saturating_add(self.grace.unwrap_or(LEGACY_GRACE_MS))
    }

    fn joined(side: usize, mine: Option<Vec<u8>>, theirs: Option<Vec<u8>>, ts: i64) -> Joined {
        let (left, right) = if side == 0 { (mine, theirs) } else { (theirs, mine) };
        Joined { left, right, ts, op: RowOp::Insert }
    }

    fn entry_key(&self, id: &Id) -> Vec<u8> {
        let (side, key, ts, seq) = id;
        let mut k = self.prefix.clone();
        k.push(*side as u8);
        k.extend_from_slice(&(key.len() as u32).to_be_bytes());
        k.extend_from_slice(key);
        k.extend_from_slice(&((*ts as u64) ^ (1 << 63)).to_be_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    fn meta_key(&self) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.push(0xff);
        k
    }

    /// Emits (null-padded, for outer sides) and forgets rows whose window has closed.
    fn expire(&mut self, out: &mut Vec<Joined>) {
        while let Some((&(at, seq), _)) = self.expiry.first_key_value() {
            if at > self.observed {
                break;
            }
            let (side, key, ts) = self.expiry.remove(&(at, seq)).expect("present");
            let Some(buf) = self.bufs[side].get_mut(&key) else { continue };
            let Some(e) = buf.remove(&(ts, seq)) else { continue };
            if buf.is_empty() {
                self.bufs[side].remove(&key);
            }
            if !e.matched && self.grace.is_some() && self.outer(side) {
                out.push(Self::joined(side, Some(e.row), None, ts));
            }
            let id = (side, key, ts, seq);
            if !self.dirty.remove(&id) {
                self.deleted.insert(id);
            }
        }
    }
}

impl Operator for StreamStreamJoinOp {
    fn name(&self) -> &'static str {
        "stream-stream join"
    }

    fn open(&mut self, cx: &mut OpContext<'_>) -> Result<()> {
        self.prefix = cx.state_prefix(self.spec.table);
        if let Some(m) = cx.state.get(&self.meta_key())? {
            if m.len() >= 16 {
                self.observed = i64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
                self.seq = u64::from_le_bytes(m[8..16].try_into().expect("8 bytes"));
            }
        }
        let from = self.prefix.clone();
        let to = self.meta_key();
        let plen = self.prefix.len();
        for kv in cx.state.scan(&from, &to)? {
            let (k, v) = kv?;
            let rest = &k[plen..];
            let (Some(&side), Some(klen)) = (rest.first(), rest.get(1..5)) else { continue };
            let klen = u32::from_be_bytes(klen.try_into().expect("4 bytes")) as usize;
            let Some(key) = rest.get(5..5 + klen) else { continue };
            let Some(tail) = rest.get(5 + klen..5 + klen + 16) else { continue };
            let ts = (u64::from_be_bytes(tail[..8].try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
            let seq = u64::from_be_bytes(tail[8..].try_into().expect("8 bytes"));
            let side = side as usize;
            let entry = Entry { matched: v.first() == Some(&1), row: v.get(1..).unwrap_or_default().to_vec() };
            self.bufs[side].entry(key.to_vec()).or_default().insert((ts, seq), entry);
            self.expiry.insert((self.close_time(side, ts), seq), (side, key.to_vec(), ts));
        }
        Ok(())
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        let me = input.min(1);
        let other = 1 - me;
        let ts = ts_column(&batch).clone();
        let ops = op_column(&batch).clone();
        let keys = self.keys[me].rows(&batch)?;
        let rows = self.codecs[me].rows(&batch)?;
        let mut out = Vec::new();
        for i in 0..batch.num_rows() {
            if !RowOp::from_code(ops.value(i)).is_add() {
                continue;
            }
            let t = ts.value(i);
            self.observed = self.observed.max(t);
            let row = rows.row(i).as_ref().to_vec();
            if self.keys[me].has_null(&batch, i) {
                // A null key joins nothing.
                if self.outer(me) {
                    out.push(Self::joined(me, Some(row), None, t));
                }
                continue;
            }
            let key = keys.row(i).as_ref().to_vec();
            if self.close_time(me, t) < self.observed {
                if self.outer(me) && self.grace.is_some() {
                    out.push(Self::joined(me, Some(row), None, t));
                } else {
                    cx.log_error(ProcessingError::late(
                        format!("record at {t} is too late for its join window: stream time is {}", self.observed),
                        &batch,
                        i,
                        t,
                    ));
                }
                continue;
            }
            let (lo, hi) = if me == 0 { (t - self.before, t + self.after) } else { (t - self.after, t + self.before) };
            let mut matched = false;
            if let Some(buf) = self.bufs[other].get_mut(&key) {
                for ((ots, oseq), e) in buf.range_mut((lo, 0)..=(hi, u64::MAX)) {
                    matched = true;
                    let (l, r) = if me == 0 { (row.clone(), e.row.clone()) } else { (e.row.clone(), row.clone()) };
                    out.push(Joined { left: Some(l), right: Some(r), ts: t.max(*ots), op: RowOp::Insert });
                    if !e.matched {
                        e.matched = true;
                        self.dirty.insert((other, key.clone(), *ots, *oseq));
                    }
                }
            }
            if !matched && self.grace.is_none() && self.outer(me) {
                out.push(Self::joined(me, Some(row.clone()), None, t));
            }
            self.seq += 1;
            let seq = self.seq;
            self.bufs[me].entry(key.clone()).or_default().insert((t, seq), Entry { row, matched });
            self.expiry.insert((self.close_time(me, t), seq), (me, key.clone(), t));
            self.dirty.insert((me, key, t, seq));
            self.expire(&mut out);
        }
        if let Some(b) = build(&self.schema, &self.codecs[0], &self.codecs[1], &out)? {
            cx.emit(b);
        }
        Ok(())
    }

    fn on_barrier(&mut self, _epoch: Epoch, cx: &mut OpContext<'_>) -> Result<()> {
        let dirty: Vec<Id> = self.dirty.drain().collect();
        let deleted: Vec<Id> = self.deleted.drain().collect();
        let mut puts = Vec::with_capacity(dirty.len());
        for id in &dirty {
            let (side, key, ts, seq) = id;
            if let Some(e) = self.bufs[*side].get(key).and_then(|b| b.get(&(*ts, *seq))) {
                let mut v = Vec::with_capacity(1 + e.row.len());
                v.push(e.matched as u8);
                v.extend_from_slice(&e.row);
                puts.push((self.entry_key(id), v));
            }
        }
        let dels: Vec<Vec<u8>> = deleted.iter().map(|id| self.entry_key(id)).collect();
        let mut meta = self.observed.to_le_bytes().to_vec();
        meta.extend_from_slice(&self.seq.to_le_bytes());
        let meta_key = self.meta_key();
        let batch = cx.writes();
        for k in dels {
            batch.delete(&k);
        }
        for (k, v) in puts {
            batch.put(&k, &v);
        }
        batch.put(&meta_key, &meta);
        Ok(())
    }
}
