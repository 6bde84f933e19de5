//! ATTR(x) → the type of x: the group's value of `x` when every row has the same value, null
//! otherwise (ksqlDB's ATTR; null counts as a value, so `'1', null` gives null). Any type.
//!
//! Tables are supported (attr.json "table attr with tombstones"): the state counts rows per
//! distinct value, so a retraction can bring the single value back. It keeps at most 32
//! distinct values; rows with further values are only counted (`others`). While `others` is not
//! zero there are at least two distinct values and the result is null; if retractions empty the
//! tracked values while untracked ones remain, the result stays null although one value may be
//! left (the price of the bound).
//!
//! State bytes: varint n, n × (value, varint count), varint others. At most 32 values.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::super::function::{AggError, AggFunction, AggFunctionRef, AggState};
use super::value::{Val, ValType, V};
use super::{at_most, columns, get_varint, put_varint};

/// Distinct values tracked at most.
pub const TRACKED: usize = 32;

pub(super) fn create(args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    let [t] = columns("ATTR", args, 1)? else { unreachable!("one column") };
    at_most("ATTR", params, 0)?;
    Ok(Arc::new(Attr { t: ValType::new("ATTR", t, true)? }))
}

#[derive(Debug)]
struct Attr {
    t: ValType,
}

#[derive(Debug)]
struct AttrState {
    t: ValType,
    vals: Vec<(Val, u64)>,
    others: u64,
}

impl AggFunction for Attr {
    fn name(&self) -> &'static str {
        "ATTR"
    }
    fn return_type(&self) -> DataType {
        self.t.dt.clone()
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::new(AttrState { t: self.t.clone(), vals: Vec::new(), others: 0 })
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let corrupt = || AggError::Corrupt("ATTR");
        let mut at = 0;
        let n = get_varint(b, &mut at).ok_or_else(corrupt)? as usize;
        if n > TRACKED {
            return Err(corrupt());
        }
        let mut vals = Vec::with_capacity(n);
        for _ in 0..n {
            let v = self.t.load(b, &mut at).ok_or_else(corrupt)?;
            vals.push((v, get_varint(b, &mut at).ok_or_else(corrupt)?));
        }
        let others = get_varint(b, &mut at).ok_or_else(corrupt)?;
        if at != b.len() {
            return Err(corrupt());
        }
        Ok(Box::new(AttrState { t: self.t.clone(), vals, others }))
    }
    fn supports_retract(&self) -> bool {
        true
    }
}

impl AttrState {
    fn add(&mut self, v: V<'_>, n: u64) {
        if let Some(e) = self.vals.iter_mut().find(|(x, _)| x.same(&v)) {
            e.1 += n;
        } else if self.vals.len() < TRACKED {
            self.vals.push((v.into_owned(), n));
        } else {
            self.others += n;
        }
    }
}

impl AggState for AttrState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        let v = self.t.read(&args[0], row);
        self.add(v, 1);
    }
    fn retract(&mut self, args: &[ArrayRef], row: usize) {
        let v = self.t.read(&args[0], row);
        match self.vals.iter().position(|(x, _)| x.same(&v)) {
            Some(i) => {
                self.vals[i].1 -= 1;
                if self.vals[i].1 == 0 {
                    self.vals.remove(i);
                }
            }
            None => self.others = self.others.saturating_sub(1),
        }
    }
    fn merge(&mut self, other: &dyn AggState) {
        if let Some(o) = other.as_any().downcast_ref::<AttrState>() {
            for (v, n) in &o.vals {
                self.add(v.clone(), *n);
            }
            self.others += o.others;
        }
    }
    fn evaluate(&self) -> ScalarValue {
        match (self.vals.as_slice(), self.others) {
            ([(v, _)], 0) => self.t.to_scalar(v),
            _ => ScalarValue::try_from(&self.t.dt).unwrap_or(ScalarValue::Null),
        }
    }
    fn save(&self, out: &mut Vec<u8>) {
        put_varint(self.vals.len() as u64, out);
        for (v, n) in &self.vals {
            self.t.save(v, out);
            put_varint(*n, out);
        }
        put_varint(self.others, out);
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn s(v: Option<&str>) -> ScalarValue {
        ScalarValue::Utf8(v.map(String::from))
    }

    #[test]
    fn single_value_or_null() {
        // attr.json: "valid attr with nulls", "invalid attr", "invalid attr with nulls" and
        // "invalid attr with nulls as first entry".
        let f = bind("ATTR", &[DataType::Utf8], &[]);
        type Case<'a> = (&'a [Option<&'a str>], [Option<&'a str>; 3]);
        let cases: [Case; 4] = [
            (&[None, None, None], [None, None, None]),
            (&[Some("1"), Some("2"), Some("3")], [Some("1"), None, None]),
            (&[Some("1"), None, Some("1")], [Some("1"), None, None]),
            (&[None, Some("2"), Some("2")], [None, None, None]),
        ];
        for (input, want) in cases {
            let mut st = f.new_state();
            let got = feed(&mut st, &[strs(input)]);
            assert_eq!(got, want.iter().map(|v| s(*v)).collect::<Vec<_>>(), "{input:?}");
            reload(&f, st.as_ref());
        }
    }

    #[test]
    fn table_rows_come_and_go() {
        // attr.json "table attr with tombstones" for group 1.
        let f = bind("ATTR", &[DataType::Utf8], &[]);
        let mut st = f.new_state();
        let mut got = feed(&mut st, &[strs(&[Some("1"), Some("1")])]);
        got.extend(unfeed(&mut st, &[strs(&[Some("1"), Some("1")])]));
        got.extend(feed(&mut st, &[strs(&[Some("2"), Some("3")])]));
        got.extend(unfeed(&mut st, &[strs(&[Some("3")])]));
        let want = [Some("1"), Some("1"), Some("1"), None, Some("2"), None, Some("2")];
        assert_eq!(got, want.iter().map(|v| s(*v)).collect::<Vec<_>>());
        reload(&f, st.as_ref());
    }

    #[test]
    fn bounded_and_mergeable() {
        let f = bind("ATTR", &[DataType::Int64], &[]);
        let mut st = f.new_state();
        feed(&mut st, &[ints(&(0..1000).map(Some).collect::<Vec<_>>())]);
        assert_eq!(st.evaluate(), ScalarValue::Int64(None));
        let st = reload(&f, st.as_ref());
        assert!(saved_len(st.as_ref()) < 32 * 12 + 8);
        let (mut a, mut b) = (f.new_state(), f.new_state());
        feed(&mut a, &[ints(&[Some(7)])]);
        feed(&mut b, &[ints(&[Some(7)])]);
        a.merge(b.as_ref());
        assert_eq!(a.evaluate(), ScalarValue::Int64(Some(7)));
        unfeed(&mut a, &[ints(&[Some(7)])]);
        assert_eq!(a.evaluate(), ScalarValue::Int64(Some(7)));
        a.merge(st.as_ref());
        assert_eq!(a.evaluate(), ScalarValue::Int64(None));
    }
}
