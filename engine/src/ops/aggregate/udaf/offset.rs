//! LATEST_BY_OFFSET and EARLIEST_BY_OFFSET: the value of the latest (earliest) record of a group
//! in offset order, i.e. the order the aggregate processes records, not event time.
//!
//! Forms, as in ksqlDB: `(x)`, `(x, ignoreNulls)`, `(x, n)` and `(x, n, ignoreNulls)`; with `n`
//! (an integer literal in 1..=1000) the result is an ARRAY of the latest (earliest) n values in
//! offset order, oldest first; without it the result has the type of `x`. `ignoreNulls`
//! (default true) skips null values; when false, a null is a value like any other.
//!
//! Session windows merge states, and the merged value must be the one processed last (first),
//! so every kept value carries a sequence number from a process-wide counter. The counter
//! starts at the wall-clock time in nanoseconds, so numbers taken after a restart exceed those
//! saved before it (one update takes far more than a nanosecond), and loading a state raises it
//! past the numbers it holds, in case the clock went back.
//!
//! State: the kept (sequence, value) pairs, at most n (1 without n). Bytes: varint count, then
//! per pair a varint sequence and the value (see `value.rs`). Tables are refused: ksqlDB does
//! not allow these functions on tables (a retracted latest value has no successor to restore).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::super::function::{AggError, AggFunction, AggFunctionRef, AggState};
use super::value::{Val, ValType, V};
use super::{columns, get_varint, int_param, is_int, put_varint, MAX_N};

/// The process-wide sequence of kept values.
fn sequence() -> &'static AtomicU64 {
    static SEQ: OnceLock<AtomicU64> = OnceLock::new();
    SEQ.get_or_init(|| {
        // The one wall-clock read of the aggregates: a base that later processes exceed. It
        // orders values across restarts and never reaches results, so the injected Clock (which
        // tests may stop) is not wanted here.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        AtomicU64::new(now)
    })
}

fn next_seq() -> u64 {
    sequence().fetch_add(1, Ordering::Relaxed)
}

pub(super) fn create(name: &str, args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    let [t] = columns(name, args, 1)? else { unreachable!("one column") };
    let bool_param = |v: &ScalarValue| match v {
        ScalarValue::Boolean(Some(b)) => Ok(*b),
        other => Err(AggError::Arguments(format!("{name}: ignoreNulls must be a BOOLEAN literal, got {other}"))),
    };
    let (n, ignore_nulls) = match params {
        [] => (None, true),
        [p] if is_int(p) => (Some(int_param(name, "n", p, MAX_N)? as usize), true),
        [p] => (None, bool_param(p)?),
        [p, q] if is_int(p) => (Some(int_param(name, "n", p, MAX_N)? as usize), bool_param(q)?),
        _ => {
            return Err(AggError::Arguments(format!(
                "{name} takes (col), (col, ignoreNulls), (col, n) or (col, n, ignoreNulls)"
            )))
        }
    };
    let latest = name == "LATEST_BY_OFFSET";
    Ok(Arc::new(ByOffset { t: ValType::new(name, t, false)?, n, ignore_nulls, latest }))
}

#[derive(Debug)]
struct ByOffset {
    t: ValType,
    /// `Some(n)`: the ARRAY form.
    n: Option<usize>,
    ignore_nulls: bool,
    latest: bool,
}

#[derive(Debug)]
struct ByOffsetState {
    t: ValType,
    n: Option<usize>,
    ignore_nulls: bool,
    latest: bool,
    /// Oldest first.
    kept: Kept,
}

/// The kept (sequence, value) pairs, oldest first: inline for the single-value form (no
/// allocation per group), a deque for the ARRAY form.
#[derive(Debug)]
enum Kept {
    One(Option<(u64, Val)>),
    Many(VecDeque<(u64, Val)>),
}

impl Kept {
    fn new(n: Option<usize>) -> Self {
        match n {
            None => Kept::One(None),
            Some(_) => Kept::Many(VecDeque::new()),
        }
    }
    fn len(&self) -> usize {
        match self {
            Kept::One(v) => v.is_some() as usize,
            Kept::Many(d) => d.len(),
        }
    }
    /// Adds a newest pair; the single-value form must be empty.
    fn push_back(&mut self, pair: (u64, Val)) {
        match self {
            Kept::One(v) => {
                debug_assert!(v.is_none(), "one value kept at most");
                *v = Some(pair);
            }
            Kept::Many(d) => d.push_back(pair),
        }
    }
    fn pop_front(&mut self) -> Option<(u64, Val)> {
        match self {
            Kept::One(v) => v.take(),
            Kept::Many(d) => d.pop_front(),
        }
    }
    fn front(&self) -> Option<&(u64, Val)> {
        match self {
            Kept::One(v) => v.as_ref(),
            Kept::Many(d) => d.front(),
        }
    }
    fn iter(&self) -> impl Iterator<Item = &(u64, Val)> {
        let (one, many) = match self {
            Kept::One(v) => (v.as_ref(), None),
            Kept::Many(d) => (None, Some(d.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
    /// Every pair, oldest first, leaving none.
    fn take_all(&mut self) -> Vec<(u64, Val)> {
        match self {
            Kept::One(v) => v.take().into_iter().collect(),
            Kept::Many(d) => d.drain(..).collect(),
        }
    }
}

impl ByOffset {
    fn name_(&self) -> &'static str {
        if self.latest {
            "LATEST_BY_OFFSET"
        } else {
            "EARLIEST_BY_OFFSET"
        }
    }
    fn cap(&self) -> usize {
        self.n.unwrap_or(1)
    }
    fn state(&self, kept: Kept) -> ByOffsetState {
        ByOffsetState { t: self.t.clone(), n: self.n, ignore_nulls: self.ignore_nulls, latest: self.latest, kept }
    }
}

impl AggFunction for ByOffset {
    fn name(&self) -> &'static str {
        self.name_()
    }
    fn return_type(&self) -> DataType {
        match self.n {
            Some(_) => self.t.list_type(),
            None => self.t.dt.clone(),
        }
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::new(self.state(Kept::new(self.n)))
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let corrupt = || AggError::Corrupt(self.name_());
        let mut at = 0;
        let count = get_varint(b, &mut at).ok_or_else(corrupt)? as usize;
        if count > self.cap() {
            return Err(corrupt());
        }
        let mut kept = Kept::new(self.n);
        for _ in 0..count {
            let seq = get_varint(b, &mut at).ok_or_else(corrupt)?;
            kept.push_back((seq, self.t.load(b, &mut at).ok_or_else(corrupt)?));
        }
        if at != b.len() {
            return Err(corrupt());
        }
        if let Some(&(max, _)) = kept.iter().max_by_key(|(s, _)| *s) {
            sequence().fetch_max(max.saturating_add(1), Ordering::Relaxed);
        }
        Ok(Box::new(self.state(kept)))
    }
}

impl ByOffsetState {
    fn cap(&self) -> usize {
        self.n.unwrap_or(1)
    }
}

impl AggState for ByOffsetState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        let v = self.t.read(&args[0], row);
        if v.is_null() && self.ignore_nulls {
            return;
        }
        if self.latest {
            // Reuse the evicted slot's buffer: strings then cost no allocation per row.
            let mut slot = if self.kept.len() == self.cap() { self.kept.pop_front().expect("full").1 } else { V::Null };
            slot.assign(&v);
            self.kept.push_back((next_seq(), slot));
        } else if self.kept.len() < self.cap() {
            self.kept.push_back((next_seq(), v.into_owned()));
        }
    }
    fn merge(&mut self, other: &dyn AggState) {
        let Some(o) = other.as_any().downcast_ref::<ByOffsetState>() else {
            return;
        };
        let mut all = self.kept.take_all();
        all.extend(o.kept.iter().cloned());
        all.sort_by_key(|(s, _)| *s);
        let cap = self.cap();
        let skip = if self.latest { all.len().saturating_sub(cap) } else { 0 };
        for pair in all.into_iter().skip(skip).take(cap) {
            self.kept.push_back(pair);
        }
    }
    fn evaluate(&self) -> ScalarValue {
        match self.n {
            Some(_) => self.t.list(self.kept.iter().map(|(_, v)| v)),
            None => match self.kept.front() {
                Some((_, v)) => self.t.to_scalar(v),
                None => ScalarValue::try_from(&self.t.dt).unwrap_or(ScalarValue::Null),
            },
        }
    }
    fn save(&self, out: &mut Vec<u8>) {
        put_varint(self.kept.len() as u64, out);
        for (seq, v) in self.kept.iter() {
            put_varint(*seq, out);
            self.t.save(v, out);
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn int(v: Option<i64>) -> ScalarValue {
        ScalarValue::Int64(v)
    }

    fn p_int(n: i32) -> ScalarValue {
        ScalarValue::Int32(Some(n))
    }

    fn p_bool(b: bool) -> ScalarValue {
        ScalarValue::Boolean(Some(b))
    }

    #[test]
    fn latest_and_earliest_single() {
        // latest-offset-udaf.json "nulls ignored - single" / "nulls not ignored - single".
        let col = ints(&[Some(12), None, Some(13)]);
        let cases = [
            ("LATEST_BY_OFFSET", vec![], [Some(12), Some(12), Some(13)]),
            ("LATEST_BY_OFFSET", vec![p_bool(true)], [Some(12), Some(12), Some(13)]),
            ("LATEST_BY_OFFSET", vec![p_bool(false)], [Some(12), None, Some(13)]),
            ("EARLIEST_BY_OFFSET", vec![], [Some(12), Some(12), Some(12)]),
            ("EARLIEST_BY_OFFSET", vec![p_bool(false)], [Some(12), Some(12), Some(12)]),
        ];
        for (name, params, want) in cases {
            let f = bind(name, &[DataType::Int64], &params);
            assert_eq!(f.return_type(), DataType::Int64);
            let mut st = f.new_state();
            let got = feed(&mut st, std::slice::from_ref(&col));
            assert_eq!(got, want.iter().map(|v| int(*v)).collect::<Vec<_>>(), "{name} {params:?}");
            reload(&f, st.as_ref());
        }
        let f = bind("EARLIEST_BY_OFFSET", &[DataType::Int64], &[p_bool(false)]);
        let mut st = f.new_state();
        assert_eq!(feed(&mut st, &[ints(&[None, Some(1)])]), vec![int(None), int(None)]);
        assert_eq!(f.new_state().evaluate(), int(None));
    }

    #[test]
    fn n_forms_return_arrays_oldest_first() {
        let col = ints(&[Some(12), None, Some(13), Some(14)]);
        let cases = [
            (
                "LATEST_BY_OFFSET",
                vec![p_int(2), p_bool(true)],
                vec![vec![Some(12)], vec![Some(12)], vec![Some(12), Some(13)], vec![Some(13), Some(14)]],
            ),
            (
                "LATEST_BY_OFFSET",
                vec![p_int(2), p_bool(false)],
                vec![vec![Some(12)], vec![Some(12), None], vec![None, Some(13)], vec![Some(13), Some(14)]],
            ),
            (
                "EARLIEST_BY_OFFSET",
                vec![p_int(2)],
                vec![vec![Some(12)], vec![Some(12)], vec![Some(12), Some(13)], vec![Some(12), Some(13)]],
            ),
            (
                "EARLIEST_BY_OFFSET",
                vec![p_int(2), p_bool(false)],
                vec![vec![Some(12)], vec![Some(12), None], vec![Some(12), None], vec![Some(12), None]],
            ),
        ];
        for (name, params, want) in cases {
            let f = bind(name, &[DataType::Int64], &params);
            assert_eq!(f.return_type(), super::super::value::list_of(DataType::Int64));
            let mut st = f.new_state();
            let got = feed(&mut st, std::slice::from_ref(&col));
            assert_eq!(got, want.iter().map(|w| int_list(w)).collect::<Vec<_>>(), "{name} {params:?}");
            reload(&f, st.as_ref());
        }
        // "latest n by offset with all nulls": an empty array.
        let f = bind("LATEST_BY_OFFSET", &[DataType::Int64], &[p_int(2)]);
        let mut st = f.new_state();
        assert_eq!(feed(&mut st, &[ints(&[None, None])]), vec![int_list(&[]), int_list(&[])]);
    }

    #[test]
    fn session_merges_follow_processing_order() {
        // latest-offset-udaf.json "merging session windows": 1 at 0, 3 at 1500, then 2 at 700
        // bridges both sessions: the merged latest is 2.
        for (params, want) in [(vec![], int(Some(2))), (vec![p_int(2), p_bool(false)], int_list(&[Some(3), Some(2)]))] {
            let f = bind("LATEST_BY_OFFSET", &[DataType::Int64], &params);
            let (mut a, mut b) = (f.new_state(), f.new_state());
            feed(&mut a, &[ints(&[Some(1)])]);
            feed(&mut b, &[ints(&[Some(3)])]);
            let mut merged = f.new_state();
            // The operator merges the sessions in its own order; the result must not depend on it.
            merged.merge(b.as_ref());
            merged.merge(reload(&f, a.as_ref()).as_ref());
            feed(&mut merged, &[ints(&[Some(2)])]);
            assert_eq!(merged.evaluate(), want);
        }
        // "with nulls not ignored - N": [1] and [null] merge to [1, null], then 2 gives [null, 2].
        let f = bind("LATEST_BY_OFFSET", &[DataType::Int64], &[p_int(2), p_bool(false)]);
        let (mut a, mut b) = (f.new_state(), f.new_state());
        feed(&mut a, &[ints(&[Some(1)])]);
        feed(&mut b, &[ints(&[None])]);
        let mut merged = f.new_state();
        merged.merge(b.as_ref());
        merged.merge(a.as_ref());
        assert_eq!(merged.evaluate(), int_list(&[Some(1), None]));
        feed(&mut merged, &[ints(&[Some(2)])]);
        assert_eq!(merged.evaluate(), int_list(&[None, Some(2)]));
        // Earliest keeps the first processed.
        let f = bind("EARLIEST_BY_OFFSET", &[DataType::Int64], &[]);
        let (mut a, mut b) = (f.new_state(), f.new_state());
        feed(&mut a, &[ints(&[Some(1)])]);
        feed(&mut b, &[ints(&[Some(3)])]);
        b.merge(a.as_ref());
        assert_eq!(b.evaluate(), int(Some(1)));
    }

    #[test]
    fn loading_raises_the_sequence() {
        let f = bind("LATEST_BY_OFFSET", &[DataType::Int64], &[]);
        // A state saved by a process whose clock ran ahead.
        let future = sequence().load(Ordering::Relaxed) + 1_000_000_000;
        let mut bytes = Vec::new();
        put_varint(1, &mut bytes);
        put_varint(future, &mut bytes);
        f.new_state().save(&mut Vec::new());
        let t = ValType::new("T", &DataType::Int64, false).unwrap();
        t.save(&super::super::value::V::Int(7), &mut bytes);
        let old = f.load(&bytes).unwrap();
        let mut fresh = f.new_state();
        feed(&mut fresh, &[ints(&[Some(8)])]);
        fresh.merge(old.as_ref());
        assert_eq!(fresh.evaluate(), int(Some(8)));
    }

    #[test]
    fn nested_values() {
        use datafusion::arrow::datatypes::{Field, Fields};
        let st_t = DataType::Struct(Fields::from(vec![
            Field::new("A", DataType::Utf8, true),
            Field::new("B", DataType::Int64, true),
        ]));
        let f = bind("LATEST_BY_OFFSET", std::slice::from_ref(&st_t), &[]);
        let s = |a: &str, b: i64| {
            ScalarValue::Struct(Arc::new(
                datafusion::arrow::array::StructArray::try_new(
                    match &st_t {
                        DataType::Struct(f) => f.clone(),
                        _ => unreachable!(),
                    },
                    vec![
                        ScalarValue::Utf8(Some(a.into())).to_array().unwrap(),
                        ScalarValue::Int64(Some(b)).to_array().unwrap(),
                    ],
                    None,
                )
                .unwrap(),
            ))
        };
        let mut st = f.new_state();
        let got = feed(&mut st, &[col(vec![s("Early0", 1), s("Later0", 3)])]);
        assert_eq!(got, vec![s("Early0", 1), s("Later0", 3)]);
        reload(&f, st.as_ref());
    }

    #[test]
    fn bad_parameters() {
        let err = super::super::super::function::create_aggregate(
            "EARLIEST_BY_OFFSET",
            &[DataType::Int32, DataType::Int32],
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("Parameter 2 passed to function EARLIEST_BY_OFFSET must be a literal constant"),
            "{err}"
        );
        for params in [
            vec![p_int(0)],
            vec![p_bool(true), p_int(2)],
            vec![p_int(2), p_int(2)],
            vec![p_int(1), p_bool(true), p_bool(true)],
        ] {
            assert!(
                super::super::super::function::create_aggregate("LATEST_BY_OFFSET", &[DataType::Int32], &params)
                    .is_err(),
                "{params:?}"
            );
        }
    }
}
