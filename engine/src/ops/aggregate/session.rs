//! Session windows: a group's records within `gap` of each other form one session; a record
//! that bridges sessions merges them.
//!
//! State: one entry per session, key suffix `[u32 group length][group row][end][start]`, in the
//! aggregate's group store; an in-memory index lists each touched group's sessions (loaded from
//! the store with a prefix scan the first time a group is seen). A merge deletes the superseded
//! sessions (emitting a tombstone for each, with its old window) and emits the new session, whose
//! event time is its end.
//!
//! With EMIT FINAL (Kafka Streams' `suppress(untilWindowCloses)`), nothing is emitted as
//! sessions change: a session is emitted once, with its final value, when stream time passes its
//! end plus the gap plus the grace period (a session can grow until then); superseded sessions
//! are never emitted. The sessions waiting are kept in end order (rebuilt from the state on
//! start).

use std::collections::{BTreeSet, HashMap};

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::window::{decode_start, encode_start};
use super::{group_rows, AggregateOp, GroupSrc, OutRow};
use crate::batch::{op_column, ts_column};
use crate::error::Result;
use crate::operator::OpContext;
use crate::processing_log::ProcessingError;
use crate::spec::WindowKind;
use crate::types::RowOp;

/// Index of sessions per group.
#[derive(Default)]
pub(crate) struct Sessions {
    pub prefix: Vec<u8>,
    index: HashMap<Vec<u8>, Vec<(i64, i64)>>,
    /// EMIT FINAL: sessions not emitted yet, as (end, group row, start).
    pending: BTreeSet<(i64, Vec<u8>, i64)>,
}

fn group_prefix(group: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(4 + group.len() + 16);
    s.extend_from_slice(&(group.len() as u32).to_be_bytes());
    s.extend_from_slice(group);
    s
}

fn session_suffix(group: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut s = group_prefix(group);
    encode_start(end, &mut s);
    encode_start(start, &mut s);
    s
}

impl AggregateOp {
    fn gap_grace(&self) -> (i64, i64, i64) {
        let w = self.spec.window.expect("session window");
        let WindowKind::Session { gap_ms } = w.kind else { unreachable!("session window") };
        (gap_ms, w.grace_ms, w.retention_ms)
    }

    fn load_group(&mut self, group: &[u8], cx: &OpContext<'_>) -> Result<()> {
        if self.sessions.index.contains_key(group) {
            return Ok(());
        }
        let gp = group_prefix(group);
        let mut from = self.sessions.prefix.clone();
        from.extend_from_slice(&gp);
        let to = crate::runtime::keys::prefix_end(&from);
        let plen = from.len();
        let mut list = Vec::new();
        for kv in cx.state.scan(&from, &to)? {
            let (k, _) = kv?;
            let rest = &k[plen..];
            if rest.len() == 16 {
                list.push((decode_start(&rest[8..]), decode_start(&rest[..8])));
            }
        }
        // Sessions created since the last checkpoint are only in the cache.
        for k in self.store.keys() {
            if k.len() == gp.len() + 16 && k.starts_with(&gp) {
                let s = (decode_start(&k[gp.len() + 8..]), decode_start(&k[gp.len()..gp.len() + 8]));
                if !list.contains(&s) {
                    list.push(s);
                }
            }
        }
        self.sessions.index.insert(group.to_vec(), list);
        Ok(())
    }

    pub(super) fn session_batch(&mut self, batch: &RecordBatch, cx: &mut OpContext<'_>) -> Result<Vec<OutRow>> {
        let (gap, grace, _) = self.gap_grace();
        let final_only = self.spec.emit_final;
        let (rows, valid) = group_rows(&self.converter, batch, &self.spec.group_columns)?;
        let ts = ts_column(batch).clone();
        let ops = op_column(batch).clone();
        let args: Vec<Vec<ArrayRef>> =
            self.spec.calls.iter().map(|c| c.args.iter().map(|&i| batch.column(i).clone()).collect()).collect();
        let mut out = Vec::new();
        for (i, &ok) in valid.iter().enumerate() {
            if !ok || !RowOp::from_code(ops.value(i)).is_add() {
                continue;
            }
            let t = ts.value(i);
            self.observed = self.observed.max(t);
            let group = rows.row(i).as_ref().to_vec();
            self.load_group(&group, cx)?;
            let list = self.sessions.index.get(&group).cloned().unwrap_or_default();
            let overlapping: Vec<(i64, i64)> = list.iter().copied().filter(|&(s, e)| e >= t - gap && s <= t + gap).collect();
            let start = overlapping.iter().map(|w| w.0).chain([t]).min().expect("non-empty");
            let end = overlapping.iter().map(|w| w.1).chain([t]).max().expect("non-empty");
            if end < self.observed - grace - gap {
                cx.log_error(ProcessingError::late(
                    format!("record at {t} is too late for its session: stream time is {}", self.observed),
                    batch,
                    i,
                    t,
                ));
                continue;
            }
            let suffixes: Vec<Vec<u8>> = overlapping.iter().map(|&(s, e)| session_suffix(&group, s, e)).collect();
            let refs: Vec<&[u8]> = suffixes.iter().map(|s| s.as_slice()).collect();
            self.store.prefetch(&refs, cx.state)?;
            let new_suffix = session_suffix(&group, start, end);
            let mut merged: Vec<Box<dyn super::AggState>> = self.spec.calls.iter().map(|c| c.function.new_state()).collect();
            for (&(s, e), suffix) in overlapping.iter().zip(&suffixes) {
                if let Some(old) = self.store.peek(suffix) {
                    for (m, o) in merged.iter_mut().zip(&old.accs) {
                        m.merge(o.as_ref());
                    }
                }
                if *suffix != new_suffix {
                    self.store.remove(suffix);
                    if final_only {
                        self.sessions.pending.remove(&(e, group.clone(), s));
                    } else {
                        out.push(OutRow { group: GroupSrc::Input(i), window: Some((s, e)), values: self.null_values(), ts: e, op: RowOp::Delete });
                    }
                }
            }
            for (k, m) in merged.iter_mut().enumerate() {
                m.update(&args[k], i);
            }
            let entry = self.store.get_mut(&new_suffix);
            entry.accs = merged;
            entry.ts = end;
            let values = entry.accs.iter().map(|a| a.evaluate()).collect();
            let list = self.sessions.index.get_mut(&group).expect("loaded");
            list.retain(|w| !overlapping.contains(w));
            list.push((start, end));
            if final_only {
                self.sessions.pending.insert((end, group, start));
            } else {
                out.push(OutRow { group: GroupSrc::Input(i), window: Some((start, end)), values, ts: end, op: RowOp::Insert });
            }
        }
        if final_only {
            self.close_sessions(&mut out, cx)?;
        }
        Ok(out)
    }

    /// EMIT FINAL: emits, in end order, the sessions whose end plus gap plus grace stream time
    /// has reached (no later record can extend or merge them any more).
    fn close_sessions(&mut self, out: &mut Vec<OutRow>, cx: &mut OpContext<'_>) -> Result<()> {
        let (gap, grace, _) = self.gap_grace();
        let mut closed = Vec::new();
        while let Some(first) = self.sessions.pending.first() {
            if first.0.saturating_add(gap).saturating_add(grace) > self.observed {
                break;
            }
            closed.push(self.sessions.pending.pop_first().expect("present"));
        }
        let suffixes: Vec<Vec<u8>> = closed.iter().map(|(e, g, s)| session_suffix(g, *s, *e)).collect();
        let refs: Vec<&[u8]> = suffixes.iter().map(|s| s.as_slice()).collect();
        self.store.prefetch(&refs, cx.state)?;
        for ((end, group, start), suffix) in closed.into_iter().zip(&suffixes) {
            let Some(e) = self.store.peek(suffix) else { continue };
            let values = e.accs.iter().map(|a| a.evaluate()).collect();
            out.push(OutRow { group: GroupSrc::Key(group), window: Some((start, end)), values, ts: e.ts, op: RowOp::Insert });
        }
        Ok(())
    }

    /// EMIT FINAL after a restart: the stored sessions not emitted yet (those stream time has
    /// not closed), read back from the state.
    pub(super) fn load_pending_sessions(&mut self, cx: &OpContext<'_>) -> Result<()> {
        let (gap, grace, _) = self.gap_grace();
        let from = self.sessions.prefix.clone();
        let to = self.store.groups_end();
        let plen = from.len();
        for kv in cx.state.scan(&from, &to)? {
            let (k, _) = kv?;
            let rest = &k[plen..];
            let Some(len) = rest.get(..4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize) else { continue };
            if rest.len() != 4 + len + 16 {
                continue;
            }
            let group = rest[4..4 + len].to_vec();
            let end = decode_start(&rest[4 + len..4 + len + 8]);
            let start = decode_start(&rest[4 + len + 8..]);
            if end.saturating_add(gap).saturating_add(grace) > self.observed {
                self.sessions.pending.insert((end, group, start));
            }
        }
        Ok(())
    }

    fn null_values(&self) -> Vec<datafusion::common::ScalarValue> {
        self.spec
            .calls
            .iter()
            .map(|c| datafusion::common::ScalarValue::try_from(&c.function.return_type()).unwrap_or(datafusion::common::ScalarValue::Null))
            .collect()
    }

    /// Deletes sessions of indexed groups that ended before retention.
    pub(super) fn session_expire(&mut self, _cx: &mut OpContext<'_>) {
        let (_, _, retention) = self.gap_grace();
        let limit = self.observed.saturating_sub(retention);
        let mut gone = Vec::new();
        for (g, list) in self.sessions.index.iter_mut() {
            list.retain(|&(s, e)| {
                let keep = e >= limit;
                if !keep {
                    gone.push(session_suffix(g, s, e));
                    self.sessions.pending.remove(&(e, g.clone(), s));
                }
                keep
            });
        }
        for s in gone {
            self.store.remove(&s);
        }
        self.sessions.index.retain(|_, l| !l.is_empty());
    }
}
