//! Hopping windows by panes, for EMIT FINAL.
//!
//! A hopping window of `size` every `advance` is the union of consecutive panes of
//! `gcd(size, advance)`. Instead of adding each row to the `size / advance` windows that contain
//! it, the aggregate adds it to its one pane (one state update and one state write per row, not
//! one per window) and, when a window closes, merges the states of its panes into the window's
//! result. Only aggregates whose merge is exact take this path
//! ([`super::AggFunction::merges_exactly`]), so results are the ones the per-window path gives.
//!
//! State: the same keys as windows, with the pane start in place of the window start. The
//! aggregate's meta entry says which layout its state has, so a query whose state was written per
//! window keeps reading it that way.
//!
//! Which windows are closed follows from stream time alone (a window closes when stream time
//! reaches its end plus grace; closing runs as soon as it does), so nothing more is stored:
//! after a restart the panes of windows not yet closed are read back from the state store.

use std::collections::BTreeSet;

use super::window::{encode_window_key, windows_for};
use super::{AggregateOp, GroupSrc, OutRow};
use crate::error::Result;
use crate::operator::OpContext;
use crate::types::RowOp;

/// The greatest common divisor of two positive lengths.
pub(super) fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// The start of the pane of `pane` ms that holds `ts`.
pub(super) fn pane_start(ts: i64, pane: i64) -> i64 {
    ts.div_euclid(pane) * pane
}

/// The start of the first window not yet closed at stream time `observed` (windows start at
/// multiples of `advance`; one closes when `observed` reaches its end plus `grace`).
pub(super) fn first_open_window(observed: i64, size: i64, advance: i64, grace: i64) -> i64 {
    if observed == i64::MIN {
        return i64::MIN;
    }
    let closed = observed.saturating_sub(size).saturating_sub(grace);
    closed.div_euclid(advance).saturating_add(1).saturating_mul(advance)
}

/// The start of the first window (no window starts before 0) that holds the pane at `pane`.
fn first_window_holding(pane: i64, size: i64, advance: i64) -> i64 {
    let from = pane - size + 1;
    if from <= 0 {
        0
    } else {
        (from + advance - 1) / advance * advance
    }
}

impl AggregateOp {
    /// The pane length when this aggregate can keep panes (EMIT FINAL over a hopping window,
    /// advance smaller than size, of a stream, with every aggregate merging exactly), else `None`.
    pub(super) fn panes_fit(&self) -> Option<i64> {
        let (size, advance, _) = self.size_grace()?;
        let fits = self.spec.emit_final
            && advance < size
            && !self.spec.retract
            && !self.spec.emit_old
            && self.spec.calls.iter().all(|c| c.function.merges_exactly());
        fits.then(|| gcd(size, advance))
    }

    /// The windows of a row at `t` in pane mode: the starts of those already closed (each logged
    /// as late by the caller) and whether any is still open.
    pub(super) fn pane_windows(&self, t: i64, late: &mut Vec<i64>) -> bool {
        let Some((size, advance, grace)) = self.size_grace() else { return false };
        windows_for(t, size, advance, late);
        let all = late.len();
        late.retain(|&w| w + size + grace <= self.observed);
        all > late.len()
    }

    /// EMIT FINAL in pane mode: emits every window whose end plus grace is not after stream
    /// time and that holds a group, oldest first, merging its panes; then forgets the panes that
    /// no open window holds.
    pub(super) fn close_panes(&mut self, out: &mut Vec<OutRow>, cx: &mut OpContext<'_>) -> Result<()> {
        let Some((size, advance, grace)) = self.size_grace() else { return Ok(()) };
        while let Some((&first, _)) = self.open_windows.first_key_value() {
            let w = first_window_holding(first, size, advance).max(self.next_close);
            if w.saturating_add(size).saturating_add(grace) > self.observed {
                break;
            }
            self.emit_window(w, size, out, cx)?;
            self.next_close = w + advance;
            self.drop_closed_panes();
        }
        // Windows that closed holding no group are done too: a late row must not reopen one.
        self.next_close = self.next_close.max(first_open_window(self.observed, size, advance, grace));
        self.drop_closed_panes();
        Ok(())
    }

    /// Forgets the panes no open window holds, and their cached states.
    fn drop_closed_panes(&mut self) {
        let mut key = Vec::new();
        while self.open_windows.first_key_value().is_some_and(|(&p, _)| p < self.next_close) {
            let (p, groups) = self.open_windows.pop_first().expect("a first pane");
            for g in groups {
                key.clear();
                encode_window_key(p, &g, &mut key);
                self.store.discard(&key);
            }
        }
    }

    /// The stream time at which the next window holding a group closes (`i64::MAX`: none).
    /// Windows close as soon as stream time reaches it, before the row that moved it is added,
    /// so a window's result holds exactly the rows that were not late for it.
    pub(super) fn pane_close_due(&self) -> i64 {
        let (Some((size, advance, grace)), Some((&first, _))) = (self.size_grace(), self.open_windows.first_key_value()) else {
            return i64::MAX;
        };
        first_window_holding(first, size, advance).max(self.next_close).saturating_add(size).saturating_add(grace)
    }

    /// The final rows of window `[w, w + size)`: per group of its panes (in group order, by a
    /// merge of the panes' sorted group sets), the merge of the group's pane states.
    fn emit_window(&mut self, w: i64, size: i64, out: &mut Vec<OutRow>, cx: &mut OpContext<'_>) -> Result<()> {
        let panes: Vec<(i64, &BTreeSet<Vec<u8>>)> = self.open_windows.range(w..w + size).map(|(&p, g)| (p, g)).collect();
        // Evicted pane states are read back with one lookup (keys in one buffer).
        let mut flat: Vec<u8> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (p, groups) in &panes {
            for g in groups.iter() {
                let at = flat.len();
                encode_window_key(*p, g, &mut flat);
                spans.push((at, flat.len()));
            }
        }
        let refs: Vec<&[u8]> = spans.iter().map(|&(a, b)| &flat[a..b]).collect();
        self.store.prefetch(&refs, cx.state)?;
        let mut heads: Vec<std::iter::Peekable<std::collections::btree_set::Iter<'_, Vec<u8>>>> =
            panes.iter().map(|(_, g)| g.iter().peekable()).collect();
        let mut key = Vec::new();
        while let Some(g) = heads.iter_mut().filter_map(|h| h.peek().copied()).min() {
            let mut accs: Vec<Box<dyn super::AggState>> = self.spec.calls.iter().map(|c| c.function.new_state()).collect();
            let mut ts = i64::MIN;
            for ((p, _), head) in panes.iter().zip(heads.iter_mut()) {
                if head.peek() != Some(&g) {
                    continue;
                }
                head.next();
                key.clear();
                encode_window_key(*p, g, &mut key);
                let Some(e) = self.store.peek(&key).filter(|e| !e.fresh) else { continue };
                for (acc, pane) in accs.iter_mut().zip(&e.accs) {
                    acc.merge(pane.as_ref());
                }
                ts = ts.max(e.ts);
            }
            if ts == i64::MIN {
                continue;
            }
            out.push(OutRow {
                group: GroupSrc::Key(g.clone()),
                window: Some((w, w + size)),
                values: accs.iter().map(|a| a.evaluate()).collect(),
                ts,
                op: RowOp::Insert,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_and_the_windows_that_hold_them() {
        assert_eq!(gcd(10_000, 2_000), 2_000);
        assert_eq!(gcd(10_000, 3_000), 1_000);
        assert_eq!(pane_start(4_999, 2_000), 4_000);
        assert_eq!(pane_start(-1, 2_000), -2_000);
        // Windows of 10 every 2: pane 8 is in the windows starting 0, 2, 4, 6 and 8.
        assert_eq!(first_window_holding(8, 10, 2), 0);
        assert_eq!(first_window_holding(12, 10, 2), 4);
        // Pane 14 of 1 (size 10, advance 3): windows 6, 9, 12 hold it.
        assert_eq!(first_window_holding(14, 10, 3), 6);
        // At stream time 20 the windows ending at or before 20 are closed: the next starts at 12.
        assert_eq!(first_open_window(20, 10, 2, 0), 12);
        assert_eq!(first_open_window(21, 10, 2, 0), 12);
        assert_eq!(first_open_window(22, 10, 2, 0), 14);
        assert_eq!(first_open_window(i64::MIN, 10, 2, 0), i64::MIN);
    }
}
