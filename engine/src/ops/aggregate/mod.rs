//! `AggregateOp`: GROUP BY with aggregates, optionally per tumbling, hopping or session window.
//!
//! State: one entry per group (per window), in a [`groups::GroupStore`]: key = state prefix +
//! `[window start, 8 bytes][group row]` (time windows) or `[group row]`, value = the event time
//! of the latest update and each aggregate's state; a meta entry holds the operator's stream time.
//!
//! Per input row, in order: stream time advances; rows with a null group key are dropped (and
//! null-valued stream records); a row later than its window's end plus grace is dropped and
//! logged; otherwise the group's states take the row (or give it back, for `UpdateBefore` and
//! `Delete` rows of a table input) and, with EMIT CHANGES, the new aggregate row is emitted with
//! the row's event time. A table row's `UpdateBefore` directly followed by its `UpdateAfter` in
//! the same group emits once (Kafka Streams' `Change(old, new)`). With `emit_old`, a result of a
//! group that had one before is preceded by an `UpdateBefore` row holding the previous result
//! (for HAVING). With EMIT FINAL a window's rows are emitted once, when stream time
//! passes its end plus grace (a session's: its end plus gap plus grace). On a barrier dirty states and the stream time are written (all
//! but the last few thousand groups dirtied were written ahead, see [`groups`]), and windows past
//! retention are deleted with one range delete.

mod builtin;
pub mod function;
mod groups;
mod panes;
mod registry;
pub mod scalar_codec;
mod session;
mod udaf;
pub mod view;
pub mod window;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, Int8Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::ScalarValue;

pub use function::{create_aggregate, is_aggregate, AggError, AggFunction, AggFunctionRef, AggState};

use self::groups::GroupStore;
use self::window::{decode_start, encode_start, encode_window_key, windows_for};
use crate::batch::{op_column, ts_column};
use crate::error::Result;
use crate::operator::{OpContext, Operator};
use crate::processing_log::ProcessingError;
use crate::spec::{AggregateSpec, WindowKind};
use crate::types::{Epoch, RowOp};

/// Groups cached in memory per task before clean ones are evicted.
pub const DEFAULT_CACHE_GROUPS: usize = 100_000;

/// Where a group's values come from when building output.
enum GroupSrc {
    /// Row `i` of the current input batch.
    Input(usize),
    /// Encoded group row bytes.
    Key(Vec<u8>),
}

/// One output row being built.
struct OutRow {
    group: GroupSrc,
    window: Option<(i64, i64)>,
    values: Vec<ScalarValue>,
    ts: i64,
    op: RowOp,
}

/// The aggregate operator.
pub struct AggregateOp {
    spec: AggregateSpec,
    schema: SchemaRef,
    converter: RowConverter,
    store: GroupStore,
    observed: i64,
    /// EMIT FINAL: open windows by start, with their groups.
    open_windows: BTreeMap<i64, BTreeSet<Vec<u8>>>,
    sessions: session::Sessions,
    meta_key: Vec<u8>,
    /// Hopping windows kept by panes of this many ms (see [`panes`]); `open_windows` is then
    /// keyed by pane start.
    panes: Option<i64>,
    /// Pane mode: the start of the first window not yet emitted.
    next_close: i64,
}

impl AggregateOp {
    /// An aggregate for `spec` producing `schema`; `input` is the input schema.
    pub fn new(spec: AggregateSpec, input: &SchemaRef, schema: SchemaRef) -> Result<Self> {
        let fields: Vec<SortField> =
            spec.group_columns.iter().map(|&i| SortField::new(input.field(i).data_type().clone())).collect();
        let converter = RowConverter::new(fields)?;
        let funcs: Vec<AggFunctionRef> = spec.calls.iter().map(|c| c.function.clone()).collect();
        Ok(AggregateOp {
            store: GroupStore::new(funcs, DEFAULT_CACHE_GROUPS),
            spec,
            schema,
            converter,
            observed: i64::MIN,
            open_windows: BTreeMap::new(),
            sessions: session::Sessions::default(),
            meta_key: Vec::new(),
            panes: None,
            next_close: i64::MIN,
        })
    }

    fn size_grace(&self) -> Option<(i64, i64, i64)> {
        match self.spec.window.map(|w| (w.kind, w.grace_ms)) {
            Some((WindowKind::Tumbling { size_ms }, g)) => Some((size_ms, size_ms, g)),
            Some((WindowKind::Hopping { size_ms, advance_ms }, g)) => Some((size_ms, advance_ms, g)),
            _ => None,
        }
    }

    fn is_session(&self) -> bool {
        matches!(self.spec.window.map(|w| w.kind), Some(WindowKind::Session { .. }))
    }

    /// Emits the final rows of every window whose end plus grace is not after stream time.
    fn close_windows(&mut self, out: &mut Vec<OutRow>, cx: &mut OpContext<'_>) -> Result<()> {
        let Some((size, _, grace)) = self.size_grace() else { return Ok(()) };
        while let Some((&start, _)) = self.open_windows.first_key_value() {
            if !window_closed(start, size, grace, self.observed) {
                break;
            }
            let groups = self.open_windows.remove(&start).expect("present");
            let suffixes: Vec<Vec<u8>> = groups
                .iter()
                .map(|g| {
                    let mut s = Vec::with_capacity(8 + g.len());
                    encode_window_key(start, g, &mut s);
                    s
                })
                .collect();
            let refs: Vec<&[u8]> = suffixes.iter().map(|s| s.as_slice()).collect();
            self.store.prefetch(&refs, cx.state)?;
            for (g, s) in groups.into_iter().zip(&suffixes) {
                let Some(e) = self.store.peek(s) else { continue };
                out.push(OutRow {
                    group: GroupSrc::Key(g),
                    window: Some((start, start + size)),
                    values: e.accs.iter().map(|a| a.evaluate()).collect(),
                    ts: e_ts(e),
                    op: RowOp::Insert,
                });
                self.store.discard(s);
            }
        }
        Ok(())
    }

    /// The results of stored groups of an aggregate without windows, as it emits them (`Insert`
    /// rows, in the order given): `entries` are (group row, stored value) pairs as the state
    /// store holds them under the operator's prefix.
    pub(crate) fn stored_results(&self, entries: &[(&[u8], &[u8])]) -> Result<Option<RecordBatch>> {
        let mut out = Vec::with_capacity(entries.len());
        for (group, value) in entries {
            let e = self.store.decode(value)?;
            let values = e.accs.iter().map(|a| a.evaluate()).collect();
            out.push(OutRow { group: GroupSrc::Key(group.to_vec()), window: None, values, ts: e.ts, op: RowOp::Insert });
        }
        self.build(None, out)
    }

    /// The group row of one-row group columns `cols` (as the state store's keys hold it).
    pub(crate) fn group_row(&self, cols: &[ArrayRef]) -> Result<Vec<u8>> {
        Ok(self.converter.convert_columns(cols)?.row(0).as_ref().to_vec())
    }

    fn build(&self, batch: Option<&RecordBatch>, rows: Vec<OutRow>) -> Result<Option<RecordBatch>> {
        if rows.is_empty() {
            return Ok(None);
        }
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        let all_input = rows.iter().all(|r| matches!(r.group, GroupSrc::Input(_)));
        if all_input {
            let batch = batch.expect("input rows come with a batch");
            let idx = datafusion::arrow::array::UInt32Array::from(
                rows.iter().map(|r| if let GroupSrc::Input(i) = r.group { i as u32 } else { 0 }).collect::<Vec<_>>(),
            );
            for &c in &self.spec.group_columns {
                cols.push(take(batch.column(c).as_ref(), &idx, None)?);
            }
        } else {
            let owned: Vec<Vec<u8>> = rows
                .iter()
                .map(|r| match &r.group {
                    GroupSrc::Key(k) => k.clone(),
                    GroupSrc::Input(i) => {
                        // Mixed output: re-encode the input row's group.
                        let cols: Vec<ArrayRef> = self
                            .spec
                            .group_columns
                            .iter()
                            .map(|&c| batch.expect("batch").column(c).slice(*i, 1))
                            .collect();
                        self.converter.convert_columns(&cols).map(|r| r.row(0).as_ref().to_vec()).unwrap_or_default()
                    }
                })
                .collect();
            let parser = self.converter.parser();
            let parsed: Vec<_> = owned.iter().map(|b| parser.parse(b)).collect();
            cols.extend(self.converter.convert_rows(parsed.iter().copied())?);
        }
        if self.spec.window.is_some() {
            cols.push(Arc::new(Int64Array::from(rows.iter().map(|r| r.window.map(|w| w.0).unwrap_or(0)).collect::<Vec<_>>())));
            cols.push(Arc::new(Int64Array::from(rows.iter().map(|r| r.window.map(|w| w.1).unwrap_or(0)).collect::<Vec<_>>())));
        }
        // The values move into their columns (a string result is not copied again).
        let mut ts = Vec::with_capacity(rows.len());
        let mut ops = Vec::with_capacity(rows.len());
        let mut per_call: Vec<Vec<ScalarValue>> = self.spec.calls.iter().map(|_| Vec::with_capacity(rows.len())).collect();
        for r in rows {
            ts.push(r.ts);
            ops.push(r.op as i8);
            for (col, v) in per_call.iter_mut().zip(r.values) {
                col.push(v);
            }
        }
        for vals in per_call {
            cols.push(ScalarValue::iter_to_array(vals)?);
        }
        cols.push(Arc::new(Int64Array::from(ts)));
        cols.push(Arc::new(Int8Array::from(ops)));
        let cols = crate::batch::cast_columns(cols, &self.schema)?;
        Ok(Some(RecordBatch::try_new(self.schema.clone(), cols)?))
    }
}

/// The event time stored with an entry (the first aggregate slot is not used for it).
fn e_ts(e: &groups::Entry) -> i64 {
    e.ts
}

/// True when the window at `start` of `size` is closed at stream time `observed`: its end plus
/// `grace` is not after it (rows for it are late).
fn window_closed(start: i64, size: i64, grace: i64, observed: i64) -> bool {
    start.saturating_add(size).saturating_add(grace) <= observed
}

/// The processing-log entry of row `i` (at `t`), too late for the window at `start` of `size`.
fn late_row(batch: &RecordBatch, i: usize, t: i64, start: i64, size: i64, observed: i64) -> ProcessingError {
    ProcessingError::late(format!("record at {t} is too late for window [{start}, {}): stream time is {observed}", start + size), batch, i, t)
}

/// Encodes the group columns of a batch; `None` for rows with a null group value.
fn group_rows(converter: &RowConverter, batch: &RecordBatch, cols: &[usize]) -> Result<(Rows, Vec<bool>)> {
    let arrays: Vec<ArrayRef> = cols.iter().map(|&c| batch.column(c).clone()).collect();
    let valid: Vec<bool> = (0..batch.num_rows()).map(|i| arrays.iter().all(|a| a.is_valid(i))).collect();
    Ok((converter.convert_columns(&arrays)?, valid))
}

impl Operator for AggregateOp {
    fn name(&self) -> &'static str {
        "aggregate"
    }

    fn open(&mut self, cx: &mut OpContext<'_>) -> Result<()> {
        self.store.prefix = cx.state_prefix(self.spec.table);
        let mut meta = self.store.prefix.clone();
        meta.extend_from_slice(&[0xff, 0xff, b'm']);
        // Meta: stream time, then the largest window start flushed (to skip lookups of windows
        // that cannot be stored yet), then 1 when the state is kept by panes.
        let mut max_flushed = i64::MIN;
        let saved = cx.state.get(&meta)?;
        let saved_any = saved.is_some();
        self.panes = match &saved {
            None => self.panes_fit(),
            Some(v) if v.get(16) == Some(&1) => Some(self.panes_fit().ok_or_else(|| crate::error::EngineError::CorruptState {
                what: "aggregate state kept by panes, read by an aggregate that cannot merge panes".into(),
            })?),
            Some(_) => None,
        };
        if let Some(v) = saved {
            if let Some(t) = v.get(..8) {
                self.observed = i64::from_le_bytes(t.try_into().expect("8 bytes"));
            }
            max_flushed = v.get(8..16).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).unwrap_or(i64::MAX);
        }
        if self.size_grace().is_some() {
            self.store.set_windowed(max_flushed);
        } else if !self.is_session() {
            // A state never written (no meta entry: the first barrier writes one) holds no groups.
            self.store.track_written(cx.state, saved_any)?;
        }
        self.meta_key = meta;
        if self.spec.emit_final {
            if let Some((size, advance, grace)) = self.size_grace() {
                // Windows not yet emitted: those whose end plus grace is after stream time (by
                // panes: the panes from the first such window on).
                self.next_close = panes::first_open_window(self.observed, size, advance, grace);
                let from_start = match self.panes {
                    Some(_) => self.next_close,
                    None => self.observed.saturating_sub(size + grace).saturating_add(1),
                };
                let mut from = self.store.prefix.clone();
                encode_start(from_start.max(i64::MIN + 1), &mut from);
                let to = self.store.groups_end();
                let plen = self.store.prefix.len();
                for kv in cx.state.scan(&from, &to)? {
                    let (k, _) = kv?;
                    let suffix = &k[plen..];
                    if suffix.len() >= 8 {
                        self.open_windows.entry(decode_start(suffix)).or_default().insert(suffix[8..].to_vec());
                    }
                }
            }
        }
        if self.is_session() {
            self.sessions.prefix = self.store.prefix.clone();
            if self.spec.emit_final {
                self.load_pending_sessions(cx)?;
            }
        }
        Ok(())
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        if self.is_session() {
            let out = self.session_batch(&batch, cx)?;
            if let Some(b) = self.build(Some(&batch), out)? {
                cx.emit(b);
            }
            self.store.after_batch(batch.num_rows(), cx.writes_ahead());
            if self.store.over_budget() {
                cx.request_checkpoint();
            }
            return Ok(());
        }
        let (rows, valid) = group_rows(&self.converter, &batch, &self.spec.group_columns)?;
        let ts = ts_column(&batch).clone();
        let ops = op_column(&batch).clone();
        let args: Vec<Vec<ArrayRef>> =
            self.spec.calls.iter().map(|c| c.args.iter().map(|&i| batch.column(i).clone()).collect()).collect();
        let window = self.size_grace();
        // The state keys each row touches, as spans of one buffer.
        let mut wins = Vec::new();
        let mut keys: Vec<u8> = Vec::with_capacity(rows.size());
        let mut touched: Vec<(usize, Option<i64>, std::ops::Range<usize>)> = Vec::with_capacity(batch.num_rows());
        for (i, &ok) in valid.iter().enumerate() {
            let op = RowOp::from_code(ops.value(i));
            if !ok || (!self.spec.retract && !op.is_add()) {
                continue;
            }
            let g = rows.row(i);
            let mut push = |start: Option<i64>| {
                let at = keys.len();
                if let Some(start) = start {
                    encode_start(start, &mut keys);
                }
                keys.extend_from_slice(g.as_ref());
                touched.push((i, start, at..keys.len()));
            };
            match window {
                None => push(None),
                Some(_) if self.panes.is_some() => push(Some(panes::pane_start(ts.value(i), self.panes.unwrap_or(1)))),
                Some((size, advance, _)) => {
                    windows_for(ts.value(i), size, advance, &mut wins);
                    for &start in &wins {
                        push(Some(start));
                    }
                }
            }
        }
        // Rows already too late for a window at the batch's start never reach its state (their
        // closed windows' states are gone from the cache): no lookup for them.
        let (observed, next_close, panes) = (self.observed, self.next_close, self.panes.is_some());
        let live = |start: &Option<i64>| match (start, window) {
            (Some(p), Some(_)) if panes => *p >= next_close,
            (Some(w), Some((size, _, grace))) => !window_closed(*w, size, grace, observed),
            _ => true,
        };
        let refs: Vec<&[u8]> = touched.iter().filter(|t| live(&t.1)).map(|t| &keys[t.2.clone()]).collect();
        self.store.prefetch(&refs, cx.state)?;
        let mut out: Vec<OutRow> = Vec::new();
        let mut last_row = usize::MAX;
        // The previous result of a group whose UpdateBefore was merged into the next row.
        let mut carried: Option<Option<Vec<ScalarValue>>> = None;
        for (k, (i, start, span)) in touched.iter().enumerate() {
            let i = *i;
            let suffix = &keys[span.clone()];
            let t = ts.value(i);
            if i != last_row {
                self.observed = self.observed.max(t);
                last_row = i;
                // By panes, a window closes before a row later than its end plus grace is added
                // (the row belongs to its pane, which the closed window also holds).
                if self.panes.is_some() && self.observed >= self.pane_close_due() {
                    self.close_panes(&mut out, cx)?;
                }
            }
            if let (Some(_), Some((size, _, _)), Some(_)) = (start, window, self.panes) {
                // A row adds to its pane when one of its windows is still open.
                let open = self.pane_windows(t, &mut wins);
                for &w in &wins {
                    cx.log_error(late_row(&batch, i, t, w, size, self.observed));
                }
                if !open {
                    continue;
                }
            } else if let (Some(start), Some((size, _, grace))) = (start, window) {
                if window_closed(*start, size, grace, self.observed) {
                    cx.log_error(late_row(&batch, i, t, *start, size, self.observed));
                    continue;
                }
            }
            let op = RowOp::from_code(ops.value(i));
            // A changed table row that stays in its group: one result for both halves.
            let merge_next = op == RowOp::UpdateBefore
                && touched.get(k + 1).is_some_and(|(j, s2, g2)| {
                    *j == i + 1 && s2 == start && &keys[g2.clone()] == suffix && RowOp::from_code(ops.value(*j)) == RowOp::UpdateAfter
                });
            let emit_old = self.spec.emit_old;
            let entry = self.store.get_mut(suffix);
            let old = match carried.take() {
                Some(v) => v,
                None if emit_old && !entry.fresh => Some(entry.accs.iter().map(|a| a.evaluate()).collect()),
                None => None,
            };
            for (k, acc) in entry.accs.iter_mut().enumerate() {
                if op.is_add() {
                    acc.update(&args[k], i);
                } else {
                    acc.retract(&args[k], i);
                }
            }
            // Kafka Streams' aggregates keep the largest timestamp of the rows they took.
            entry.ts = if entry.fresh { t } else { entry.ts.max(t) };
            let t = entry.ts;
            let was_fresh = std::mem::replace(&mut entry.fresh, false);
            if merge_next {
                carried = Some(old);
                continue;
            }
            if self.spec.emit_final {
                // A group joins its window's open set once, with its first row (restored ones
                // are read back on start).
                if let (Some(start), true) = (start, was_fresh) {
                    self.open_windows.entry(*start).or_default().insert(suffix[8..].to_vec());
                }
            } else {
                let values: Vec<ScalarValue> = entry.accs.iter().map(|a| a.evaluate()).collect();
                let window = start.map(|s| (s, s + window.map(|w| w.0).unwrap_or(0)));
                let new_op = match old {
                    Some(old) => {
                        out.push(OutRow { group: GroupSrc::Input(i), window, values: old, ts: t, op: RowOp::UpdateBefore });
                        RowOp::UpdateAfter
                    }
                    None => RowOp::Insert,
                };
                out.push(OutRow { group: GroupSrc::Input(i), window, values, ts: t, op: new_op });
            }
        }
        if self.panes.is_some() {
            self.close_panes(&mut out, cx)?;
        } else if self.spec.emit_final {
            self.close_windows(&mut out, cx)?;
        }
        if let Some(b) = self.build(Some(&batch), out)? {
            cx.emit(b);
        }
        self.store.after_batch(touched.len(), cx.writes_ahead());
        if self.store.over_budget() {
            cx.request_checkpoint();
        }
        Ok(())
    }

    fn on_barrier(&mut self, _epoch: Epoch, cx: &mut OpContext<'_>) -> Result<()> {
        // Windows past retention go, with one range delete.
        if let (Some(w), Some((size, _, _))) = (self.spec.window, self.size_grace()) {
            if self.observed > i64::MIN {
                let limit = self.observed.saturating_sub(w.retention_ms).saturating_sub(size);
                let mut from = self.store.prefix.clone();
                encode_start(i64::MIN, &mut from);
                let mut to = self.store.prefix.clone();
                encode_start(limit, &mut to);
                if from < to {
                    cx.writes().delete_range(&from, &to);
                    self.store.forget(|k| k.len() >= 8 && decode_start(k) < limit);
                }
            }
        }
        if self.is_session() {
            self.session_expire(cx);
        }
        let meta = self.meta_key.clone();
        let batch = cx.writes();
        let closed_through = self.size_grace().map(|(size, advance, grace)| match self.panes {
            // The panes before the first open window are in closed windows only.
            Some(_) => panes::first_open_window(self.observed, size, advance, grace).saturating_sub(1),
            None => self.observed.saturating_sub(size).saturating_sub(grace),
        });
        self.store.flush(batch, closed_through);
        let mut value = self.observed.to_le_bytes().to_vec();
        value.extend_from_slice(&self.store.max_flushed_start().to_le_bytes());
        if self.panes.is_some() {
            value.push(1);
        }
        batch.put(&meta, &value);
        Ok(())
    }
}

#[cfg(test)]
mod op_tests {
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;
    use crate::batch::with_internal;
    use crate::ops::aggregate::window::windows_for;
    use crate::spec::{AggCall, WindowDef};
    use crate::testing::{rows, Harness};
    use crate::types::TableId;

    const INPUT: &str = "k:utf8 v:i64";

    /// `SELECT k, [WINDOWSTART, WINDOWEND,] COUNT(v), SUM(v) ... GROUP BY k` over (k, v).
    fn harness(window: Option<WindowDef>, emit_final: bool, retract: bool, emit_old: bool) -> Harness {
        let input = with_internal([Field::new("k", DataType::Utf8, true), Field::new("v", DataType::Int64, true)]);
        let call = |name: &str| AggCall { function: create_aggregate(name, &[DataType::Int64], &[]).expect("a function"), args: vec![1] };
        let calls = vec![call("COUNT"), call("SUM")];
        let mut fields = vec![Field::new("k", DataType::Utf8, true)];
        if window.is_some() {
            fields.push(Field::new("WINDOWSTART", DataType::Int64, true));
            fields.push(Field::new("WINDOWEND", DataType::Int64, true));
        }
        fields.extend(calls.iter().zip(["c", "s"]).map(|(c, n)| Field::new(n, c.function.return_type(), true)));
        let schema = with_internal(fields);
        let spec = AggregateSpec { group_columns: vec![0], calls, window, emit_final, retract, emit_old, table: TableId(0) };
        Harness::new(move || Box::new(AggregateOp::new(spec.clone(), &input, schema.clone()).expect("an operator")))
    }

    fn tumbling(size_ms: i64, grace_ms: i64) -> Option<WindowDef> {
        Some(WindowDef { kind: WindowKind::Tumbling { size_ms }, grace_ms, retention_ms: size_ms + grace_ms })
    }

    #[test]
    fn emits_each_groups_new_result_and_resumes_from_a_checkpoint() {
        let mut h = harness(None, false, false, false);
        h.batch(0, rows(&format!("{INPUT} | a 1 @1 | b 2 @2 | a 3 @3 | null 9 @4 | c 5 @5 -")));
        assert_eq!(h.output(), ["a 1 1 @1 +", "b 1 2 @2 +", "a 2 4 @3 +"]);
        h.restart();
        h.batch(0, rows(&format!("{INPUT} | a 10 @6")));
        assert_eq!(h.output(), ["a 3 14 @6 +"]);
        // Without a checkpoint the last update is lost, and replayed input counts once.
        h.crash();
        h.batch(0, rows(&format!("{INPUT} | a 10 @6")));
        assert_eq!(h.output(), ["a 3 14 @6 +"]);
    }

    #[test]
    fn a_table_input_takes_changed_rows_back() {
        let mut h = harness(None, false, true, false);
        h.batch(0, rows(&format!("{INPUT} | a 1 @1 | a 2 @2")));
        // The row with v=1 changes to v=5 and stays in group a: one result. Then it moves to b.
        h.batch(0, rows(&format!("{INPUT} | a 1 @3 U- | a 5 @3 U+ | a 5 @4 U- | b 5 @4 U+")));
        assert_eq!(h.output(), ["a 1 1 @1 +", "a 2 3 @2 +", "a 2 7 @3 +", "a 1 2 @4 +", "b 1 5 @4 +"]);
    }

    #[test]
    fn with_emit_old_a_result_follows_the_previous_one() {
        let mut h = harness(None, false, false, true);
        h.batch(0, rows(&format!("{INPUT} | a 1 @1 | a 2 @2")));
        assert_eq!(h.output(), ["a 1 1 @1 +", "a 1 1 @2 U-", "a 2 3 @2 U+"]);
    }

    #[test]
    fn tumbling_windows_emit_changes_and_drop_rows_past_grace() {
        let mut h = harness(tumbling(10, 5), false, false, false);
        h.batch(0, rows(&format!("{INPUT} | a 1 @1 | a 2 @12 | a 3 @9 | a 4 @16 | a 5 @9")));
        // @9 is in window [0, 10), still open at stream time 12 (10 + 5 > 12); closed at 16.
        assert_eq!(h.output(), ["a 0 10 1 1 @1 +", "a 10 20 1 2 @12 +", "a 0 10 2 4 @9 +", "a 10 20 2 6 @16 +"]);
        assert_eq!(h.errors().len(), 1, "the late row is logged");
    }

    #[test]
    fn emit_final_emits_a_window_once_when_stream_time_passes_its_grace() {
        let mut h = harness(tumbling(10, 0), true, false, false);
        h.batch(0, rows(&format!("{INPUT} | a 1 @1 | b 2 @5 | a 3 @8")));
        assert!(h.output().is_empty());
        h.restart();
        h.batch(0, rows(&format!("{INPUT} | a 4 @10")));
        assert_eq!(h.output_sorted(), ["a 0 10 2 4 @8 +", "b 0 10 1 2 @5 +"]);
        h.batch(0, rows(&format!("{INPUT} | a 5 @25")));
        assert_eq!(h.output(), ["a 10 20 1 4 @10 +"]);
    }

    fn hopping(size_ms: i64, advance_ms: i64, grace_ms: i64) -> Option<WindowDef> {
        Some(WindowDef { kind: WindowKind::Hopping { size_ms, advance_ms }, grace_ms, retention_ms: size_ms + grace_ms })
    }

    #[test]
    fn hopping_emit_final_merges_panes_when_a_window_closes() {
        // Windows of 10 every 5: panes of 5.
        let mut h = harness(hopping(10, 5, 0), true, false, false);
        h.batch(0, rows(&format!("{INPUT} | a 1 @1 | a 2 @6 | b 3 @7 | a 4 @12")));
        assert_eq!(h.output(), ["a 0 10 2 3 @6 +", "b 0 10 1 3 @7 +"]);
        h.restart();
        // Windows 5 and 10 close; 15 holds no group.
        h.batch(0, rows(&format!("{INPUT} | a 5 @25")));
        assert_eq!(h.output(), ["a 5 15 2 6 @12 +", "b 5 15 1 3 @7 +", "a 10 20 1 4 @12 +"]);
        h.restart();
        // @14: both its windows are closed (two late records logged), it is dropped. @21: window 15
        // is closed (one more), window 20 takes it.
        h.batch(0, rows(&format!("{INPUT} | a 9 @14 | a 7 @21")));
        assert!(h.output().is_empty());
        assert_eq!(h.errors().len(), 3);
        h.crash();
        // The crash lost the last batch: it comes again.
        h.batch(0, rows(&format!("{INPUT} | a 9 @14 | a 7 @21")));
        h.batch(0, rows(&format!("{INPUT} | a 0 @40")));
        assert_eq!(h.output(), ["a 20 30 2 12 @25 +", "a 25 35 1 5 @25 +"]);
    }

    /// Rows in random order within a bound, windows of `size` every `advance` with a grace, and
    /// restarts between batches: the pane path emits what adding each row to each of its windows
    /// gives.
    #[test]
    fn hopping_emit_final_by_panes_matches_windows_computed_row_by_row() {
        let (size, advance, grace) = (12i64, 4i64, 3i64);
        let mut h = harness(hopping(size, advance, grace), true, false, false);
        let mut seed = 42u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut expected: BTreeMap<(i64, String), (i64, i64, i64)> = BTreeMap::new();
        let mut observed = i64::MIN;
        let mut got = Vec::new();
        let mut wins = Vec::new();
        for b in 0..40 {
            let mut text = INPUT.to_string();
            for j in 0..7 {
                let t = (b * 7 + j) as i64 + (next() % 9) as i64 - 4;
                let t = t.max(0);
                let (k, v) = (["a", "b", "c"][(next() % 3) as usize], (next() % 100) as i64);
                text.push_str(&format!(" | {k} {v} @{t}"));
                observed = observed.max(t);
                windows_for(t, size, advance, &mut wins);
                for &w in &wins {
                    if w + size + grace > observed {
                        let e = expected.entry((w, k.to_string())).or_insert((0, 0, t));
                        *e = (e.0 + 1, e.1 + v, e.2.max(t));
                    }
                }
            }
            h.batch(0, rows(&text));
            got.extend(h.output());
            if b % 5 == 4 {
                h.restart();
            }
        }
        let want: Vec<String> = expected
            .iter()
            .filter(|((w, _), _)| w + size + grace <= observed)
            .map(|((w, k), (n, sum, t))| format!("{k} {w} {} {n} {sum} @{t} +", w + size))
            .collect();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        got.sort();
        assert_eq!(got, want_sorted);
    }

    #[test]
    fn session_windows_merge_rows_within_the_gap() {
        let w = Some(WindowDef { kind: WindowKind::Session { gap_ms: 10 }, grace_ms: 1000, retention_ms: 2000 });
        let mut h = harness(w, false, false, false);
        h.batch(0, rows(&format!("{INPUT} | a 1 @100 | a 2 @105")));
        h.restart();
        h.batch(0, rows(&format!("{INPUT} | a 3 @200 | a 4 @195")));
        // A session that grows is deleted (a tombstone) and emitted with its new bounds; @195
        // is within the gap of the session at 200, so it extends it backwards.
        assert_eq!(
            h.output(),
            [
                "a 100 100 1 1 @100 +",
                "a 100 100 null null @100 -",
                "a 100 105 2 3 @105 +",
                "a 200 200 1 3 @200 +",
                "a 200 200 null null @200 -",
                "a 195 200 2 7 @200 +",
            ]
        );
    }
}
