//! HISTOGRAM(s) → MAP<STRING, BIGINT>: how many times each distinct STRING value occurs.
//!
//! As in ksqlDB: null values are not counted; at most 1000 distinct values are counted, and new
//! values beyond that are ignored (values already counted keep counting). Tables are supported:
//! a retraction decrements the value's count and removes it at zero. Sessions merge by adding
//! counts. Entries are in value order (ksqlDB's are in hash-map order).
//!
//! State: (value, count) pairs sorted by value, at most 1000 holding at most [`MAX_VALUE_BYTES`]
//! of strings (new values beyond are ignored too). Bytes: varint count, then per entry a varint
//! length, the UTF-8 bytes and a varint count.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, MapArray, StringArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::ScalarValue;

use super::super::function::{wrong_types, AggError, AggFunction, AggFunctionRef, AggState};
use super::{at_most, columns, get_varint, put_varint, MAX_VALUE_BYTES};

/// Distinct values counted at most (ksqlDB's limit).
pub const LIMIT: usize = 1000;

pub(super) fn create(args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    let [t] = columns("HISTOGRAM", args, 1)? else { unreachable!("one column") };
    at_most("HISTOGRAM", params, 0)?;
    if t != &DataType::Utf8 {
        return Err(wrong_types("HISTOGRAM", args, "a STRING: cast the argument to STRING"));
    }
    Ok(Arc::new(Histogram))
}

fn entries_fields() -> Fields {
    Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Int64, true)])
}

/// `MAP<STRING, BIGINT>` as the planner writes it.
fn map_type() -> DataType {
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries_fields()), false)), false)
}

#[derive(Debug)]
struct Histogram;

#[derive(Debug, Default)]
struct HistogramState {
    entries: Vec<(Box<str>, i64)>,
    /// Σ length of the values.
    bytes: usize,
}

impl AggFunction for Histogram {
    fn name(&self) -> &'static str {
        "HISTOGRAM"
    }
    fn return_type(&self) -> DataType {
        map_type()
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::<HistogramState>::default()
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let corrupt = || AggError::Corrupt("HISTOGRAM");
        let mut at = 0;
        let n = get_varint(b, &mut at).ok_or_else(corrupt)? as usize;
        if n > LIMIT {
            return Err(corrupt());
        }
        let mut entries: Vec<(Box<str>, i64)> = Vec::with_capacity(n);
        for _ in 0..n {
            let len = get_varint(b, &mut at).ok_or_else(corrupt)? as usize;
            let s = b.get(at..at.checked_add(len).ok_or_else(corrupt)?).ok_or_else(corrupt)?;
            at += len;
            let s = std::str::from_utf8(s).map_err(|_| corrupt())?;
            let c = get_varint(b, &mut at).ok_or_else(corrupt)?;
            entries.push((Box::from(s), c as i64));
        }
        if at != b.len() || entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(corrupt());
        }
        let bytes = entries.iter().map(|(k, _)| k.len()).sum();
        Ok(Box::new(HistogramState { entries, bytes }))
    }
    fn supports_retract(&self) -> bool {
        true
    }
}

impl HistogramState {
    fn add(&mut self, s: &str, n: i64) {
        match self.entries.binary_search_by(|(k, _)| k.as_ref().cmp(s)) {
            Ok(i) => self.entries[i].1 += n,
            Err(i) if self.entries.len() < LIMIT && self.bytes + s.len() <= MAX_VALUE_BYTES => {
                self.bytes += s.len();
                self.entries.insert(i, (Box::from(s), n));
            }
            Err(_) => {}
        }
    }
}

impl AggState for HistogramState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        if args[0].is_valid(row) {
            self.add(args[0].as_string::<i32>().value(row), 1);
        }
    }
    fn retract(&mut self, args: &[ArrayRef], row: usize) {
        if args[0].is_null(row) {
            return;
        }
        let s = args[0].as_string::<i32>().value(row);
        if let Ok(i) = self.entries.binary_search_by(|(k, _)| k.as_ref().cmp(s)) {
            self.entries[i].1 -= 1;
            if self.entries[i].1 <= 0 {
                self.bytes -= self.entries.remove(i).0.len();
            }
        }
    }
    fn merge(&mut self, other: &dyn AggState) {
        if let Some(o) = other.as_any().downcast_ref::<HistogramState>() {
            for (k, n) in &o.entries {
                self.add(k, *n);
            }
        }
    }
    fn evaluate(&self) -> ScalarValue {
        let keys: StringArray = self.entries.iter().map(|(k, _)| Some(k.as_ref())).collect();
        let counts: Int64Array = self.entries.iter().map(|(_, n)| Some(*n)).collect();
        let entries = StructArray::new(entries_fields(), vec![Arc::new(keys), Arc::new(counts)], None);
        let DataType::Map(field, _) = map_type() else { unreachable!("a map type") };
        let n = self.entries.len();
        ScalarValue::Map(Arc::new(MapArray::new(field, OffsetBuffer::from_lengths([n]), entries, None, false)))
    }
    fn save(&self, out: &mut Vec<u8>) {
        put_varint(self.entries.len() as u64, out);
        for (k, n) in &self.entries {
            put_varint(k.len() as u64, out);
            out.extend_from_slice(k.as_bytes());
            put_varint(*n as u64, out);
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

    fn counts(v: &ScalarValue) -> Vec<(String, i64)> {
        let ScalarValue::Map(m) = v else { panic!("{v:?}") };
        let e = m.value(0);
        let (k, c) =
            (e.column(0).as_string::<i32>(), e.column(1).as_primitive::<datafusion::arrow::datatypes::Int64Type>());
        (0..e.len()).map(|i| (k.value(i).to_string(), c.value(i))).collect()
    }

    fn pairs(p: &[(&str, i64)]) -> Vec<(String, i64)> {
        p.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    }

    #[test]
    fn counts_values_and_takes_them_back() {
        // histogram.json "histogram on a table", region west.
        let f = bind("HISTOGRAM", &[DataType::Utf8], &[]);
        assert_eq!(f.return_type(), map_type());
        let mut st = f.new_state();
        let got = feed(&mut st, &[strs(&[Some("carol"), Some("dave"), None, Some("bob"), Some("bob")])]);
        assert_eq!(counts(&got[1]), pairs(&[("carol", 1), ("dave", 1)]));
        assert_eq!(counts(&got[4]), pairs(&[("bob", 2), ("carol", 1), ("dave", 1)]));
        let mut st = reload(&f, st.as_ref());
        unfeed(&mut st, &[strs(&[Some("bob"), Some("bob"), Some("zed"), None])]);
        assert_eq!(counts(&st.evaluate()), pairs(&[("carol", 1), ("dave", 1)]));
        reload(&f, st.as_ref());
        assert_eq!(counts(&f.new_state().evaluate()), vec![]);
    }

    #[test]
    fn ignores_new_values_past_the_limit_and_merges() {
        let f = bind("HISTOGRAM", &[DataType::Utf8], &[]);
        let mut st = f.new_state();
        let names: Vec<String> = (0..LIMIT + 5).map(|i| format!("v{i:05}")).collect();
        let col = strs(&names.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>());
        feed(&mut st, &[col]);
        feed(&mut st, &[strs(&[Some("v00000")])]);
        let c = counts(&st.evaluate());
        assert_eq!(c.len(), LIMIT);
        assert_eq!(c[0], ("v00000".to_string(), 2));
        let mut other = f.new_state();
        feed(&mut other, &[strs(&[Some("v00000"), Some("new")])]);
        other.merge(st.as_ref());
        let c = counts(&other.evaluate());
        assert_eq!(c.len(), LIMIT);
        assert_eq!(c[0], ("new".to_string(), 1));
        assert_eq!(c[1], ("v00000".to_string(), 3));
        reload(&f, other.as_ref());
    }

    #[test]
    fn only_strings() {
        assert!(super::super::super::function::create_aggregate("HISTOGRAM", &[DataType::Int64], &[]).is_err());
    }
}
