//! COLLECT_LIST(x [, limit]) and COLLECT_SET(x [, limit]) → ARRAY<x>: the values of a group in
//! offset order (COLLECT_SET: each distinct value once, at its first arrival). Nulls are values,
//! as in ksqlDB (`[500.9, 300.8, null]`), and `x` may be of any type; maps compare by content.
//!
//! Like ksqlDB (`ksql.functions.collect_list.limit` / `collect_set.limit`, default 1000), values
//! beyond the limit are silently ignored. The optional integer literal `limit` (1..=10000) is an
//! Eddy extension the planner may use to pass that setting.
//!
//! Tables are supported: a retraction removes the first equal value from the list. COLLECT_SET
//! keeps a count per value and drops a value when its last row goes (ksqlDB drops it as soon as
//! any row holding it goes, although others may still hold it). Sessions merge by appending.
//!
//! State: the values (COLLECT_SET: with counts) and, in memory only, their stable hashes for a
//! fast scan. Bytes: varint count, then per value the value (see `value.rs`) and, for
//! COLLECT_SET, a varint count. At most `limit` values, holding at most [`MAX_VALUE_BYTES`] of
//! strings, bytes and nested values (further values are ignored, like those past the limit).

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::super::function::{AggError, AggFunction, AggFunctionRef, AggState};
use super::value::{Val, ValType, V};
use super::{at_most, columns, get_varint, int_param, put_varint, MAX_VALUE_BYTES};

/// ksqlDB's default limit.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest limit a query may ask for.
pub const MAX_LIMIT: i64 = 10_000;

pub(super) fn create(name: &str, args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    let [t] = columns(name, args, 1)? else { unreachable!("one column") };
    at_most(name, params, 1)?;
    let limit = match params.first() {
        Some(p) => int_param(name, "limit", p, MAX_LIMIT)? as usize,
        None => DEFAULT_LIMIT,
    };
    let set = name == "COLLECT_SET";
    Ok(Arc::new(Collect { t: ValType::new(name, t, true)?, limit, set }))
}

#[derive(Debug)]
struct Collect {
    t: ValType,
    limit: usize,
    set: bool,
}

#[derive(Debug)]
struct CollectState {
    t: ValType,
    limit: usize,
    set: bool,
    vals: Vec<Val>,
    hashes: Vec<u64>,
    /// COLLECT_SET: rows holding each value.
    counts: Vec<u32>,
    /// Σ heap bytes of `vals`.
    bytes: usize,
}

impl Collect {
    fn name_(&self) -> &'static str {
        if self.set {
            "COLLECT_SET"
        } else {
            "COLLECT_LIST"
        }
    }
    fn state(&self) -> CollectState {
        CollectState {
            t: self.t.clone(),
            limit: self.limit,
            set: self.set,
            vals: Vec::new(),
            hashes: Vec::new(),
            counts: Vec::new(),
            bytes: 0,
        }
    }
}

impl AggFunction for Collect {
    fn name(&self) -> &'static str {
        self.name_()
    }
    fn return_type(&self) -> DataType {
        self.t.list_type()
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::new(self.state())
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let corrupt = || AggError::Corrupt(self.name_());
        let mut at = 0;
        let n = get_varint(b, &mut at).ok_or_else(corrupt)? as usize;
        if n > self.limit {
            return Err(corrupt());
        }
        let mut st = self.state();
        for _ in 0..n {
            let v = self.t.load(b, &mut at).ok_or_else(corrupt)?;
            st.bytes += v.heap_len();
            st.hashes.push(v.stable_hash());
            st.vals.push(v);
            if self.set {
                let c = get_varint(b, &mut at).ok_or_else(corrupt)?;
                st.counts.push(u32::try_from(c).map_err(|_| corrupt())?);
            }
        }
        if at != b.len() {
            return Err(corrupt());
        }
        Ok(Box::new(st))
    }
    fn supports_retract(&self) -> bool {
        true
    }
}

impl CollectState {
    fn find(&self, v: &V<'_>, h: u64) -> Option<usize> {
        self.hashes.iter().enumerate().position(|(i, &x)| x == h && self.vals[i].same(v))
    }

    fn add(&mut self, v: V<'_>, times: u32) {
        let h = v.stable_hash();
        if self.set {
            if let Some(i) = self.find(&v, h) {
                self.counts[i] = self.counts[i].saturating_add(times);
                return;
            }
        }
        if self.vals.len() < self.limit && self.bytes + v.heap_len() <= MAX_VALUE_BYTES {
            self.bytes += v.heap_len();
            self.vals.push(v.into_owned());
            self.hashes.push(h);
            if self.set {
                self.counts.push(times);
            }
        }
    }
}

impl AggState for CollectState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        let v = self.t.read(&args[0], row);
        self.add(v, 1);
    }
    fn retract(&mut self, args: &[ArrayRef], row: usize) {
        let v = self.t.read(&args[0], row);
        let Some(i) = self.find(&v, v.stable_hash()) else {
            return;
        };
        if self.set && self.counts[i] > 1 {
            self.counts[i] -= 1;
            return;
        }
        self.bytes -= self.vals.remove(i).heap_len();
        self.hashes.remove(i);
        if self.set {
            self.counts.remove(i);
        }
    }
    fn merge(&mut self, other: &dyn AggState) {
        let Some(o) = other.as_any().downcast_ref::<CollectState>() else {
            return;
        };
        for (i, v) in o.vals.iter().enumerate() {
            self.add(v.clone(), if o.set { o.counts[i] } else { 1 });
        }
    }
    fn evaluate(&self) -> ScalarValue {
        self.t.list(self.vals.iter())
    }
    fn save(&self, out: &mut Vec<u8>) {
        put_varint(self.vals.len() as u64, out);
        for (i, v) in self.vals.iter().enumerate() {
            self.t.save(v, out);
            if self.set {
                put_varint(self.counts[i] as u64, out);
            }
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

    #[test]
    fn collect_list_keeps_order_duplicates_and_nulls() {
        // collect-list.json "collect_list string".
        let f = bind("COLLECT_LIST", &[DataType::Utf8], &[]);
        assert!(f.supports_retract());
        let mut st = f.new_state();
        let got = feed(&mut st, &[strs(&[Some("baz"), Some("baz"), Some("foo"), None])]);
        assert_eq!(got[3], str_list(&[Some("baz"), Some("baz"), Some("foo"), None]));
        let mut st = reload(&f, st.as_ref());
        // A table retraction removes the first equal value.
        let got = unfeed(&mut st, &[strs(&[Some("baz"), None, Some("nope")])]);
        assert_eq!(got[0], str_list(&[Some("baz"), Some("foo"), None]));
        assert_eq!(got[2], str_list(&[Some("baz"), Some("foo")]));
        reload(&f, st.as_ref());
    }

    #[test]
    fn collect_set_keeps_first_arrival_order() {
        // collect-set.json "collect_set string".
        let f = bind("COLLECT_SET", &[DataType::Utf8], &[]);
        let mut st = f.new_state();
        let got = feed(&mut st, &[strs(&[Some("baz"), Some("baz"), Some("foo"), None, None])]);
        assert_eq!(got[1], str_list(&[Some("baz")]));
        assert_eq!(got[4], str_list(&[Some("baz"), Some("foo"), None]));
        let mut st = reload(&f, st.as_ref());
        // Two rows hold "baz": it stays until both have gone.
        assert_eq!(unfeed(&mut st, &[strs(&[Some("baz")])])[0], str_list(&[Some("baz"), Some("foo"), None]));
        assert_eq!(unfeed(&mut st, &[strs(&[Some("baz")])])[0], str_list(&[Some("foo"), None]));
        reload(&f, st.as_ref());
    }

    #[test]
    fn limits_are_honoured() {
        // collect-list.json "collect_list with limit of 1".
        for name in ["COLLECT_LIST", "COLLECT_SET"] {
            let f = bind(name, &[DataType::Int64], &[ScalarValue::Int32(Some(1))]);
            let mut st = f.new_state();
            assert_eq!(feed(&mut st, &[ints(&[Some(0), Some(100)])]), vec![int_list(&[Some(0)]), int_list(&[Some(0)])]);
            let f = bind(name, &[DataType::Int64], &[]);
            let mut st = f.new_state();
            feed(&mut st, &[ints(&(0..2000).map(Some).collect::<Vec<_>>())]);
            let ScalarValue::List(l) = st.evaluate() else { panic!() };
            assert_eq!(l.value(0).len(), DEFAULT_LIMIT);
            reload(&f, st.as_ref());
        }
    }

    #[test]
    fn bounded_in_bytes() {
        let f = bind("COLLECT_LIST", &[DataType::Utf8], &[]);
        let mut st = f.new_state();
        let big = "x".repeat(300 * 1024);
        feed(&mut st, &[strs(&[Some(&big), Some(&big), Some(&big), Some(&big), Some("small")])]);
        let ScalarValue::List(l) = st.evaluate() else { panic!() };
        assert_eq!(l.value(0).len(), 4, "three big strings and the small one fit in 1 MiB");
        let mut st = reload(&f, st.as_ref());
        unfeed(&mut st, &[strs(&[Some(&big)])]);
        feed(&mut st, &[strs(&[Some(&big)])]);
        let ScalarValue::List(l) = st.evaluate() else { panic!() };
        assert_eq!(l.value(0).len(), 4);
    }

    #[test]
    fn merges_append() {
        let f = bind("COLLECT_SET", &[DataType::Int64], &[]);
        let (mut a, mut b) = (f.new_state(), f.new_state());
        feed(&mut a, &[ints(&[Some(1), Some(2)])]);
        feed(&mut b, &[ints(&[Some(2), Some(3)])]);
        a.merge(b.as_ref());
        assert_eq!(a.evaluate(), int_list(&[Some(1), Some(2), Some(3)]));
        // 2 came from both sides: it takes two retractions to go.
        unfeed(&mut a, &[ints(&[Some(2)])]);
        assert_eq!(a.evaluate(), int_list(&[Some(1), Some(2), Some(3)]));
        let f = bind("COLLECT_LIST", &[DataType::Int64], &[]);
        let (mut a, mut b) = (f.new_state(), f.new_state());
        feed(&mut a, &[ints(&[Some(1), Some(2)])]);
        feed(&mut b, &[ints(&[Some(2), None])]);
        a.merge(b.as_ref());
        assert_eq!(a.evaluate(), int_list(&[Some(1), Some(2), Some(2), None]));
    }

    #[test]
    fn maps_compare_by_content() {
        // collect-set.json "collect_set maps": {Record0: 100, Record2: 2} twice, in either order.
        use datafusion::arrow::array::{Array, Int64Builder, MapBuilder, StringBuilder};
        let mut b = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        for pairs in [[("Record0", 100), ("Record2", 2)], [("Record2", 2), ("Record0", 100)]] {
            for (k, v) in pairs {
                b.keys().append_value(k);
                b.values().append_value(v);
            }
            b.append(true).unwrap();
        }
        let maps: ArrayRef = Arc::new(b.finish());
        let f = bind("COLLECT_SET", &[maps.data_type().clone()], &[]);
        let mut st = f.new_state();
        let got = feed(&mut st, &[maps]);
        let ScalarValue::List(l) = &got[1] else { panic!() };
        assert_eq!(l.value(0).len(), 1);
        reload(&f, st.as_ref());
    }
}
