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
//! State lives in the state store, written at barriers:
//! - rows: prefix + side + [u32 key length, key] + [event time, sequence] -> matched flag + row
//!   bytes, so that a key's rows in a time range are one seek;
//! - a time index: prefix + (2 + side) + [event time, sequence] -> key, so that expiry walks rows
//!   in time order and drops index entries with one range delete per barrier;
//! - a meta entry: stream time, the sequence counter and the layout version.
//!
//! A persistent query's operator appends its writes to one buffer as rows arrive (a new row with
//! its index entry, a flag flip when it first matches) and, at the barrier, hands over those of
//! rows still open: a row that expires within one checkpoint interval is never written, and a
//! barrier costs no lookups. Rows written at an earlier barrier are deleted when they expire. A
//! transient query writes nothing.
//!
//! Memory holds the newest rows up to a byte budget ([`JOIN_BUFFER_BYTES`]); after writing a
//! barrier's rows, the oldest ones beyond it are dropped from memory and read back from the store
//! when a probe's time range reaches them (late rows, or windows larger than the budget). Rows
//! only in the store expire at barriers. After a restart every row starts in the store.

use std::collections::{BTreeMap, HashSet};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::{build, Codec, Joined};
use crate::batch::{op_column, ts_column};
use crate::error::Result;
use crate::operator::{OpContext, Operator};
use crate::processing_log::ProcessingError;
use crate::spec::{JoinKindSpec, JoinSpec, JoinType};
use crate::types::{Epoch, RowOp};
use storage::StateBatch;

/// ksqlDB's grace for stream-stream joins without GRACE PERIOD.
const LEGACY_GRACE_MS: i64 = 24 * 3600 * 1000;

/// Bytes of buffered rows (both sides) one join task keeps in memory; older rows beyond it stay
/// in the state store only.
pub(crate) const JOIN_BUFFER_BYTES: usize = 64 << 20;

/// Bookkeeping bytes counted per buffered row on top of its key and row bytes.
const ROW_OVERHEAD: usize = 112;

/// Version byte ending the meta value of this layout (a 16-byte meta is the layout before the
/// time index, whose rows are all loaded and rewritten).
const LAYOUT: u8 = 2;

struct Entry {
    row: Vec<u8>,
    matched: bool,
}

/// One side's rows in memory: join key -> (event time, sequence) -> row.
type SideRows = hashbrown::HashMap<Vec<u8>, BTreeMap<(i64, u64), Entry>>;

/// One row matched by a probe: its event time, sequence and row bytes.
type Match = (i64, u64, Vec<u8>);

fn row_bytes(key: &[u8], row: &[u8]) -> usize {
    key.len() + row.len() + ROW_OVERHEAD
}

fn time_bytes(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

fn parse_time(b: &[u8]) -> Option<(i64, u64)> {
    let ts = (u64::from_be_bytes(b.get(..8)?.try_into().ok()?) ^ (1 << 63)) as i64;
    let seq = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
    Some((ts, seq))
}

/// Stream-stream join.
pub struct StreamStreamJoinOp {
    spec: JoinSpec,
    schema: SchemaRef,
    codecs: [Codec; 2],
    keys: [Codec; 2],
    before: i64,
    after: i64,
    grace: Option<i64>,
    /// Rows in memory, per side and key.
    bufs: [SideRows; 2],
    /// The rows in memory by the time their window closes.
    expiry: BTreeMap<(i64, u64), (usize, Vec<u8>, i64)>,
    observed: i64,
    /// Stream time at the last expiry: rows whose window closed by then are gone.
    expired_to: i64,
    seq: u64,
    prefix: Vec<u8>,
    /// Row writes (of a persistent query) for the next barrier.
    pending: Pending,
    /// Deletes for the next barrier.
    deletes: StateBatch,
    /// The sequence number at the last barrier: rows up to it are in the store.
    written_seq: u64,
    /// Scratch space for keys and values being written.
    scratch: (Vec<u8>, Vec<u8>),
    /// Per side, rows that left memory by expiring since the last barrier while rows only in
    /// the store existed: the barrier's expiry of the latter skips them.
    expired_now: [HashSet<(i64, u64)>; 2],
    /// Bytes of the rows in memory.
    hot_bytes: usize,
    budget: usize,
    /// Per side, bounds `[min, max]` of the event times of rows that may be only in the store
    /// (empty when min > max).
    cold: [(i64, i64); 2],
    /// Rows only in the store matched since the last barrier (side, event time, sequence).
    cold_matched: HashSet<(usize, i64, u64)>,
    /// Writes state (a persistent query's task).
    persistent: bool,
}

const NO_COLD: (i64, i64) = (i64::MAX, i64::MIN);

impl StreamStreamJoinOp {
    /// A join of two stream inputs producing `schema`.
    pub fn new(spec: JoinSpec, left: &SchemaRef, right: &SchemaRef, schema: SchemaRef) -> Result<Self> {
        Self::with_budget(spec, left, right, schema, JOIN_BUFFER_BYTES)
    }

    /// A join keeping at most about `budget` bytes of buffered rows in memory.
    pub(crate) fn with_budget(spec: JoinSpec, left: &SchemaRef, right: &SchemaRef, schema: SchemaRef, budget: usize) -> Result<Self> {
        let JoinKindSpec::StreamStream { before_ms, after_ms, grace_ms } = spec.kind else {
            unreachable!("a stream-stream join spec")
        };
        Ok(StreamStreamJoinOp {
            codecs: [Codec::first(left, spec.left_width)?, Codec::first(right, spec.right_width)?],
            keys: [Codec::new(left, spec.left_keys.clone())?, Codec::new(right, spec.right_keys.clone())?],
            before: before_ms,
            after: after_ms,
            grace: grace_ms,
            bufs: Default::default(),
            expiry: BTreeMap::new(),
            observed: i64::MIN,
            expired_to: i64::MIN,
            seq: 0,
            prefix: Vec::new(),
            pending: Pending::default(),
            deletes: StateBatch::default(),
            written_seq: 0,
            scratch: Default::default(),
            expired_now: Default::default(),
            hot_bytes: 0,
            budget,
            cold: [NO_COLD; 2],
            cold_matched: HashSet::new(),
            persistent: false,
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

    /// How far past its event time a row of `side` can still match, grace included.
    fn reach(&self, side: usize) -> i64 {
        let reach = if side == 0 { self.after } else { self.before };
        reach.saturating_add(self.grace.unwrap_or(LEGACY_GRACE_MS))
    }

    /// When a row of `side` at `ts` can no longer match.
    fn close_time(&self, side: usize, ts: i64) -> i64 {
        ts.saturating_add(self.reach(side))
    }

    fn joined(side: usize, mine: Option<Vec<u8>>, theirs: Option<Vec<u8>>, ts: i64) -> Joined {
        let (left, right) = if side == 0 { (mine, theirs) } else { (theirs, mine) };
        Joined { left, right, ts, op: RowOp::Insert }
    }

    fn row_key(&self, side: usize, key: &[u8], ts: i64, seq: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 29 + key.len());
        write_row_key(&mut k, &self.prefix, side, key, ts, seq);
        k
    }

    fn index_key(&self, side: usize, ts: i64, seq: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 17);
        write_index_key(&mut k, &self.prefix, side, ts, seq);
        k
    }

    /// Appends a row's entry (and, when `new`, its index entry) to the pending writes.
    // One call per row on the hot path: the parts of the row's key stay separate arguments
    // rather than a struct built for each call.
    #[allow(clippy::too_many_arguments)]
    fn write_row(&mut self, side: usize, key: &[u8], ts: i64, seq: u64, matched: bool, row: &[u8], new: bool) {
        if !self.persistent {
            return;
        }
        let close = self.close_time(side, ts);
        let (k, v) = &mut self.scratch;
        write_row_key(k, &self.prefix, side, key, ts, seq);
        v.clear();
        v.push(matched as u8);
        v.extend_from_slice(row);
        self.pending.put(close, k, v);
        if new {
            write_index_key(k, &self.prefix, side, ts, seq);
            self.pending.put(close, k, key);
        }
    }

    /// Deletes the entry of an expired row if an earlier barrier wrote it (its index entry goes
    /// with the barrier's range delete).
    fn delete_row(&mut self, side: usize, key: &[u8], ts: i64, seq: u64) {
        if !self.persistent || seq > self.written_seq {
            return;
        }
        let k = &mut self.scratch.0;
        write_row_key(k, &self.prefix, side, key, ts, seq);
        self.deletes.delete(k);
    }

    fn meta_key(&self) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.push(0xff);
        k
    }

    /// Removes a row from memory (its expiry entry is the caller's).
    fn take_row(&mut self, side: usize, key: &[u8], ts: i64, seq: u64) -> Option<Entry> {
        let buf = self.bufs[side].get_mut(key)?;
        let e = buf.remove(&(ts, seq))?;
        if buf.is_empty() {
            self.bufs[side].remove(key);
        }
        self.hot_bytes -= row_bytes(key, &e.row).min(self.hot_bytes);
        Some(e)
    }

    /// Emits (null-padded, for outer sides) and forgets the rows in memory whose window has
    /// closed; rows only in the store expire at the next barrier.
    fn expire(&mut self, out: &mut Vec<Joined>) {
        self.expired_to = self.observed;
        while let Some((&(at, seq), _)) = self.expiry.first_key_value() {
            if at > self.observed {
                break;
            }
            let (side, key, ts) = self.expiry.remove(&(at, seq)).expect("present");
            let Some(e) = self.take_row(side, &key, ts, seq) else { continue };
            self.delete_row(side, &key, ts, seq);
            if self.cold[side].0 <= self.cold[side].1 {
                self.expired_now[side].insert((ts, seq));
            }
            if !e.matched && self.grace.is_some() && self.outer(side) {
                out.push(Self::joined(side, Some(e.row), None, ts));
            }
        }
    }

    /// The rows of `side` with join key `key` and event time in `[lo, hi]` that are only in the
    /// store and still open, marked matched.
    fn probe_cold(&mut self, side: usize, key: &[u8], lo: i64, hi: i64, cx: &OpContext<'_>) -> Result<Vec<Match>> {
        let (clo, chi) = self.cold[side];
        let (lo, hi) = (lo.max(clo), hi.min(chi));
        if lo > hi {
            return Ok(Vec::new());
        }
        let from = self.row_key(side, key, lo, 0);
        let mut to = self.row_key(side, key, hi, u64::MAX);
        to.push(0);
        let tail = from.len() - 16;
        let mut found = Vec::new();
        for kv in cx.state.scan(&from, &to)? {
            let (k, v) = kv?;
            let Some((ts, seq)) = k.get(tail..).and_then(parse_time) else { continue };
            let (Some(&flag), Some(row)) = (v.first(), v.get(1..)) else { continue };
            if self.close_time(side, ts) <= self.expired_to
                || self.bufs[side].get(key).is_some_and(|b| b.contains_key(&(ts, seq)))
            {
                continue;
            }
            if flag == 0 && self.cold_matched.insert((side, ts, seq)) {
                self.write_row(side, key, ts, seq, true, row, false);
            }
            found.push((ts, seq, row.to_vec()));
        }
        Ok(found)
    }

    /// At a barrier: expires the rows only in the store whose window has closed, and drops the
    /// time-index entries of every expired row.
    fn expire_cold(&mut self, cx: &OpContext<'_>, out: &mut Vec<Joined>) -> Result<()> {
        for side in 0..2 {
            let cut = self.expired_to.saturating_sub(self.reach(side));
            if cut == i64::MIN {
                continue;
            }
            let (lo, hi) = self.cold[side];
            if lo <= hi && lo <= cut {
                let gone = std::mem::take(&mut self.expired_now[side]);
                let emit = self.grace.is_some() && self.outer(side);
                let from = self.index_key(side, lo, 0);
                let mut to = self.index_key(side, cut, u64::MAX);
                to.push(0);
                let mut expired: Vec<(Vec<u8>, i64, u64)> = Vec::new();
                for kv in cx.state.scan(&from, &to)? {
                    let (k, key) = kv?;
                    let Some((ts, seq)) = k.get(self.prefix.len() + 1..).and_then(parse_time) else { continue };
                    if !gone.contains(&(ts, seq)) {
                        expired.push((key, ts, seq));
                    }
                }
                let row_keys: Vec<Vec<u8>> = expired.iter().map(|(k, ts, seq)| self.row_key(side, k, *ts, *seq)).collect();
                if emit {
                    let refs: Vec<&[u8]> = row_keys.iter().map(|k| k.as_slice()).collect();
                    for ((_, ts, seq), v) in expired.iter().zip(cx.state.multi_get(&refs)?) {
                        let Some(v) = v else { continue };
                        if v.first() == Some(&0) && !self.cold_matched.contains(&(side, *ts, *seq)) {
                            out.push(Self::joined(side, Some(v[1..].to_vec()), None, *ts));
                        }
                    }
                }
                for k in &row_keys {
                    self.deletes.delete(k);
                }
                self.cold[side] = if cut >= hi { NO_COLD } else { (cut + 1, hi) };
            }
            self.expired_now[side].clear();
            let (from, to) = (self.index_key(side, i64::MIN, 0), self.index_key(side, cut.saturating_add(1), 0));
            self.deletes.delete_range(&from, &to);
        }
        Ok(())
    }

    /// After a barrier's writes: drops the oldest rows from memory until it holds 3/4 of the
    /// budget; they stay in the store.
    fn evict(&mut self) {
        if self.hot_bytes <= self.budget {
            return;
        }
        let target = self.budget / 4 * 3;
        while self.hot_bytes > target {
            let Some(((_, seq), (side, key, ts))) = self.expiry.pop_first() else { break };
            if self.take_row(side, &key, ts, seq).is_none() {
                continue;
            }
            let (lo, hi) = self.cold[side];
            self.cold[side] = (lo.min(ts), hi.max(ts));
        }
    }
}

impl Operator for StreamStreamJoinOp {
    fn name(&self) -> &'static str {
        "stream-stream join"
    }

    fn open(&mut self, cx: &mut OpContext<'_>) -> Result<()> {
        self.prefix = cx.state_prefix(self.spec.table);
        self.persistent = cx.task.persistent;
        let Some(m) = cx.state.get(&self.meta_key())? else { return Ok(()) };
        if m.len() < 16 {
            return Ok(());
        }
        self.observed = i64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
        self.seq = u64::from_le_bytes(m[8..16].try_into().expect("8 bytes"));
        self.written_seq = self.seq;
        self.expired_to = self.observed;
        if m.get(16) == Some(&LAYOUT) {
            // Every row starts in the store: find where each side's rows begin.
            for side in 0..2 {
                let from = self.index_key(side, i64::MIN, 0);
                let to = self.index_key(side + 1, i64::MIN, 0);
                if let Some(kv) = cx.state.scan(&from, &to)?.next() {
                    let (k, _) = kv?;
                    if let Some((ts, _)) = k.get(self.prefix.len() + 1..).and_then(parse_time) {
                        self.cold[side] = (ts, self.observed.max(ts));
                    }
                }
            }
            return Ok(());
        }
        // The layout before the time index: load every row, and write its index entry at the
        // next barrier.
        let mut from = self.prefix.clone();
        from.push(0);
        let mut to = self.prefix.clone();
        to.push(2);
        let plen = self.prefix.len();
        for kv in cx.state.scan(&from, &to)? {
            let (k, v) = kv?;
            let rest = &k[plen..];
            let (Some(&side), Some(klen)) = (rest.first(), rest.get(1..5)) else { continue };
            let klen = u32::from_be_bytes(klen.try_into().expect("4 bytes")) as usize;
            let Some(key) = rest.get(5..5 + klen) else { continue };
            let Some((ts, seq)) = rest.get(5 + klen..).and_then(parse_time) else { continue };
            let side = side as usize;
            let row = v.get(1..).unwrap_or_default().to_vec();
            let matched = v.first() == Some(&1);
            self.write_row(side, key, ts, seq, matched, &row, true);
            self.hot_bytes += row_bytes(key, &row);
            self.bufs[side].entry(key.to_vec()).or_default().insert((ts, seq), Entry { matched, row });
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
        let mut matches: Vec<Match> = Vec::new();
        let mut flipped: Vec<(i64, u64, Vec<u8>)> = Vec::new();
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
            let key_row = keys.row(i);
            let key = key_row.as_ref();
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
            matches.clear();
            if let Some(buf) = self.bufs[other].get_mut(key) {
                for (&(ots, oseq), e) in buf.range_mut((lo, 0)..=(hi, u64::MAX)) {
                    matches.push((ots, oseq, e.row.clone()));
                    if !e.matched {
                        e.matched = true;
                        flipped.push((ots, oseq, e.row.clone()));
                    }
                }
            }
            for (ots, oseq, orow) in flipped.drain(..) {
                self.write_row(other, key, ots, oseq, true, &orow, false);
            }
            let (clo, chi) = self.cold[other];
            if clo <= chi && lo <= chi && hi >= clo {
                let cold = self.probe_cold(other, key, lo, hi, cx)?;
                if !cold.is_empty() {
                    matches.extend(cold);
                    matches.sort_unstable_by_key(|m| (m.0, m.1));
                }
            }
            let matched = !matches.is_empty();
            for (ots, _, theirs) in matches.drain(..) {
                let (l, r) = if me == 0 { (row.clone(), theirs) } else { (theirs, row.clone()) };
                out.push(Joined { left: Some(l), right: Some(r), ts: t.max(ots), op: RowOp::Insert });
            }
            if !matched && self.grace.is_none() && self.outer(me) {
                out.push(Self::joined(me, Some(row.clone()), None, t));
            }
            self.seq += 1;
            let seq = self.seq;
            self.write_row(me, key, t, seq, matched, &row, true);
            self.hot_bytes += row_bytes(key, &row);
            self.bufs[me].entry_ref(key).or_default().insert((t, seq), Entry { row, matched });
            self.expiry.insert((self.close_time(me, t), seq), (me, key.to_vec(), t));
            self.expire(&mut out);
        }
        // Unwritten rows are copied several times on their way to RocksDB: keep them to a
        // quarter of the budget.
        if self.persistent && (self.pending.data.len() > self.budget / 4 || self.hot_bytes > self.budget.saturating_mul(2)) {
            cx.request_checkpoint();
        }
        if let Some(b) = build(&self.schema, &self.codecs[0], &self.codecs[1], &out)? {
            cx.emit(b);
        }
        Ok(())
    }

    fn on_barrier(&mut self, _epoch: Epoch, cx: &mut OpContext<'_>) -> Result<()> {
        let mut out = Vec::new();
        self.expire_cold(cx, &mut out)?;
        self.cold_matched.clear();
        let mut meta = self.observed.to_le_bytes().to_vec();
        meta.extend_from_slice(&self.seq.to_le_bytes());
        meta.push(LAYOUT);
        let meta_key = self.meta_key();
        let batch = cx.writes();
        batch.extend(std::mem::take(&mut self.deletes));
        for (close, k, v) in self.pending.iter() {
            // A row whose window closed since it came has been forgotten: no write.
            if close > self.expired_to {
                batch.put(k, v);
            }
        }
        batch.put(&meta_key, &meta);
        self.pending.clear();
        self.written_seq = self.seq;
        // Everything in memory is written now: the oldest rows beyond the budget can go.
        self.evict();
        if let Some(b) = build(&self.schema, &self.codecs[0], &self.codecs[1], &out)? {
            cx.emit(b);
        }
        Ok(())
    }
}

/// Writes waiting for the next barrier, each tagged with the time its row's window closes, in
/// one buffer (no allocation per write).
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    /// Close time, start in `data`, key length, value length.
    ops: Vec<(i64, usize, usize, usize)>,
}

impl Pending {
    fn put(&mut self, close: i64, key: &[u8], value: &[u8]) {
        self.ops.push((close, self.data.len(), key.len(), value.len()));
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
    }

    fn iter(&self) -> impl Iterator<Item = (i64, &[u8], &[u8])> + '_ {
        self.ops.iter().map(|&(close, at, k, v)| (close, &self.data[at..at + k], &self.data[at + k..at + k + v]))
    }

    fn clear(&mut self) {
        self.data.clear();
        self.ops.clear();
    }
}

fn write_row_key(k: &mut Vec<u8>, prefix: &[u8], side: usize, key: &[u8], ts: i64, seq: u64) {
    k.clear();
    k.extend_from_slice(prefix);
    k.push(side as u8);
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k.extend_from_slice(&time_bytes(ts));
    k.extend_from_slice(&seq.to_be_bytes());
}

fn write_index_key(k: &mut Vec<u8>, prefix: &[u8], side: usize, ts: i64, seq: u64) {
    k.clear();
    k.extend_from_slice(prefix);
    k.push(2 + side as u8);
    k.extend_from_slice(&time_bytes(ts));
    k.extend_from_slice(&seq.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, Int64Array, Int8Array};
    use datafusion::arrow::datatypes::{DataType, Field};
    use storage::{KvStore, MemStore, StateBatch};

    use super::*;
    use crate::batch::with_internal;
    use crate::operator::{Message, TaskInfo};
    use crate::types::TableId;

    /// One joined row: left value, right value, event time.
    type Out = (Option<i64>, Option<i64>, i64);

    fn spec(join_type: JoinType, grace_ms: Option<i64>) -> JoinSpec {
        JoinSpec {
            kind: JoinKindSpec::StreamStream { before_ms: 30, after_ms: 20, grace_ms },
            join_type,
            left_keys: vec![0],
            right_keys: vec![0],
            left_width: 2,
            right_width: 2,
            left_primary_key: Vec::new(),
            table: TableId(1),
        }
    }

    fn side_schema() -> SchemaRef {
        with_internal([Field::new("K", DataType::Int64, true), Field::new("V", DataType::Int64, true)])
    }

    fn op(spec: &JoinSpec, budget: usize) -> StreamStreamJoinOp {
        let out = with_internal(
            ["LK", "LV", "RK", "RV"].map(|n| Field::new(n, DataType::Int64, true)),
        );
        StreamStreamJoinOp::with_budget(spec.clone(), &side_schema(), &side_schema(), out, budget).unwrap()
    }

    /// Runs `f` with a context over `state`, returning the joined rows it emitted.
    fn with_cx(state: &MemStore, batch: Option<&mut StateBatch>, f: impl FnOnce(&mut OpContext<'_>)) -> Vec<Out> {
        let info = TaskInfo { query_id: "q".into(), subtopology: 0, partition: 0, persistent: true };
        let (mut out, mut errors, mut wants) = (Vec::new(), Vec::new(), false);
        let mut cx = OpContext {
            out: &mut out,
            errors: &mut errors,
            task: &info,
            stream_time: 0,
            state,
            batch,
            wants_checkpoint: &mut wants,
        };
        f(&mut cx);
        let mut rows = Vec::new();
        for m in out {
            let Message::Batch(b) = m else { continue };
            let col = |i: usize| b.column(i).as_any().downcast_ref::<Int64Array>().unwrap().clone();
            let (lv, rv, ts) = (col(1), col(3), col(4));
            for i in 0..b.num_rows() {
                let get = |a: &Int64Array| (!a.is_null(i)).then(|| a.value(i));
                rows.push((get(&lv), get(&rv), ts.value(i)));
            }
        }
        rows
    }

    fn input(key: i64, v: i64, ts: i64) -> RecordBatch {
        RecordBatch::try_new(
            side_schema(),
            vec![
                Arc::new(Int64Array::from(vec![key])),
                Arc::new(Int64Array::from(vec![v])),
                Arc::new(Int64Array::from(vec![ts])),
                Arc::new(Int8Array::from(vec![RowOp::Insert as i8])),
            ],
        )
        .unwrap()
    }

    /// Feeds `events` (side, key, value, event time), with a barrier every `every` events (and
    /// a restart from the store after every third barrier when `restart`), then a last barrier.
    /// Returns the joined rows, sorted.
    fn run(spec: &JoinSpec, events: &[(usize, i64, i64, i64)], budget: usize, every: usize, restart: bool) -> Vec<Out> {
        let state = MemStore::new();
        let mut j = op(spec, budget);
        with_cx(&state, None, |cx| j.open(cx).unwrap());
        let mut rows = Vec::new();
        let mut barriers = 0;
        for (n, &(side, key, v, ts)) in events.iter().enumerate() {
            rows.extend(with_cx(&state, None, |cx| j.on_batch(side, input(key, v, ts), cx).unwrap()));
            if (n + 1) % every == 0 || n + 1 == events.len() {
                let mut batch = StateBatch::default();
                rows.extend(with_cx(&state, Some(&mut batch), |cx| j.on_barrier(Epoch(1), cx).unwrap()));
                state.commit(&batch, false).unwrap();
                barriers += 1;
                if restart && barriers % 3 == 0 {
                    j = op(spec, budget);
                    with_cx(&state, None, |cx| j.open(cx).unwrap());
                }
            }
        }
        rows.sort();
        rows
    }

    /// Seeded events: 6 keys, event times mostly rising with some disorder and a few late ones.
    fn events(seed: u64, n: usize) -> Vec<(usize, i64, i64, i64)> {
        let mut rng = crate::nexmark::SplitMix::new(seed, 0);
        let mut t = 1_000;
        (0..n as i64)
            .map(|v| {
                t += rng.below(7) as i64;
                let jitter = if rng.below(20) == 0 { rng.below(200) } else { rng.below(15) } as i64;
                (rng.below(2) as usize, rng.below(6) as i64, v, t - jitter)
            })
            .collect()
    }

    #[test]
    fn rows_beyond_the_memory_budget_join_from_the_store_as_if_in_memory() {
        for join_type in [JoinType::Inner, JoinType::Left, JoinType::Right, JoinType::Full] {
            for grace in [Some(10), Some(0), None] {
                let spec = spec(join_type, grace);
                let ev = events(join_type as u64 * 31 + grace.unwrap_or(99) as u64, 3_000);
                let expected = run(&spec, &ev, usize::MAX, 1_000_000, false);
                assert!(expected.iter().filter(|r| r.0.is_some() && r.1.is_some()).count() > 500, "the events join");
                // A budget of a few rows: nearly every row lives only in the store.
                for (budget, every, restart) in [(600, 7, false), (600, 50, true), (usize::MAX, 40, true)] {
                    let got = run(&spec, &ev, budget, every, restart);
                    assert_eq!(got, expected, "{join_type:?} grace {grace:?} budget {budget} barrier every {every} restart {restart}");
                }
            }
        }
    }

    #[test]
    fn memory_stays_within_the_budget_and_expired_rows_leave_the_store() {
        let spec = spec(JoinType::Left, Some(0));
        let state = MemStore::new();
        let mut j = op(&spec, 20_000);
        with_cx(&state, None, |cx| j.open(cx).unwrap());
        for v in 0..20_000i64 {
            with_cx(&state, None, |cx| j.on_batch((v % 2) as usize, input(v % 50, v, v), cx).unwrap());
            if v % 100 == 99 {
                let mut batch = StateBatch::default();
                with_cx(&state, Some(&mut batch), |cx| j.on_barrier(Epoch(1), cx).unwrap());
                state.commit(&batch, false).unwrap();
                assert!(j.hot_bytes <= 20_000, "in memory: {} bytes", j.hot_bytes);
            }
        }
        // Windows of 50 ms at one row per ms: about 50 rows per side are open, each with its
        // row entry and time-index entry, and nothing older.
        let entries = state.scan(&j.prefix, &[j.prefix.as_slice(), &[0xff, 0xff]].concat()).unwrap().count();
        assert!(entries < 400, "{entries} entries left in the store");
    }

    #[test]
    fn state_of_the_layout_without_time_index_is_loaded_and_rewritten() {
        let spec = spec(JoinType::Inner, Some(100));
        let state = MemStore::new();
        let mut j = op(&spec, usize::MAX);
        with_cx(&state, None, |cx| j.open(cx).unwrap());
        with_cx(&state, None, |cx| j.on_batch(0, input(1, 10, 1_000), cx).unwrap());
        let mut batch = StateBatch::default();
        with_cx(&state, Some(&mut batch), |cx| j.on_barrier(Epoch(1), cx).unwrap());
        state.commit(&batch, false).unwrap();
        // Turn the store into the old layout: no index entries, a 16-byte meta.
        let mut old = StateBatch::default();
        old.delete_range(&j.index_key(0, i64::MIN, 0), &j.index_key(2, i64::MIN, 0));
        let meta = state.get(&j.meta_key()).unwrap().unwrap();
        old.put(&j.meta_key(), &meta[..16]);
        state.commit(&old, false).unwrap();
        let mut j = op(&spec, usize::MAX);
        with_cx(&state, None, |cx| j.open(cx).unwrap());
        let rows = with_cx(&state, None, |cx| j.on_batch(1, input(1, 20, 1_010), cx).unwrap());
        assert_eq!(rows, vec![(Some(10), Some(20), 1_010)]);
        let mut batch = StateBatch::default();
        with_cx(&state, Some(&mut batch), |cx| j.on_barrier(Epoch(2), cx).unwrap());
        state.commit(&batch, false).unwrap();
        let index = state.scan(&j.index_key(0, i64::MIN, 0), &j.index_key(1, i64::MIN, 0)).unwrap().count();
        assert_eq!(index, 1, "the loaded row is indexed");
    }

    #[test]
    fn through_the_harness_buffered_rows_survive_a_restart_and_expire_with_stream_time() {
        // WITHIN 30 ms before, 20 ms after (see `spec`), grace 0.
        let sp = spec(JoinType::Inner, Some(0));
        let mut h = crate::testing::Harness::new(move || Box::new(op(&sp, JOIN_BUFFER_BYTES)));
        h.batch(0, crate::testing::rows("K:i64 V:i64 | 1 10 @100 | 2 20 @100"));
        h.restart();
        h.batch(1, crate::testing::rows("K:i64 V:i64 | 1 11 @110 | 2 21 @200"));
        // Key 1 meets within the window; key 2 (100 vs 200) does not.
        assert_eq!(h.output(), ["1 10 1 11 @110 +"]);
        // Stream time 200 expired the left row of key 1 (100 + 20 < 200): no match any more.
        h.batch(1, crate::testing::rows("K:i64 V:i64 | 1 12 @115"));
        assert!(h.output().is_empty());
    }
}
