//! TOPK(x, k) and TOPKDISTINCT(x, k) → ARRAY<x>: the k largest non-null values, largest first
//! (TOPKDISTINCT counts each value once).
//!
//! `x` is any orderable type (INT, BIGINT, DOUBLE, DECIMAL, STRING, BYTES, DATE, TIME,
//! TIMESTAMP, BOOLEAN); doubles order as Java's `Double.compareTo` (NaN largest), strings and
//! bytes by their bytes. `k` is an integer literal in 1..=1000.
//!
//! TOPK(sort_col, col0, col1, ..., k) (ksqlDB's variadic TOPK) also keeps the other columns
//! of each row kept, of any type: the result is `ARRAY<STRUCT<sort_col, col0, col1, ...>>`,
//! ordered by `sort_col`.
//!
//! State: the at most k values kept, sorted descending (each with its other columns); bytes:
//! varint count, then each value followed by its other columns (see `value.rs`). An update that cannot enter a full list is rejected with one comparison and
//! no allocation. Sessions merge by offering the other list's values. Tables are refused (a
//! value that left the top k cannot come back), as in ksqlDB.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, ListArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::ScalarValue;

use super::super::function::{wrong_types, AggError, AggFunction, AggFunctionRef, AggState};
use super::value::{Val, ValType, V};
use super::{columns, get_varint, int_param, put_varint, MAX_N};

pub(super) fn create(name: &str, args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    let (t, others) = match (name, args) {
        ("TOPK", [t, rest @ ..]) => (t, rest),
        _ => {
            let [t] = columns(name, args, 1)? else { unreachable!("one column") };
            (t, &[][..])
        }
    };
    let [k] = params else {
        return Err(AggError::Arguments(format!(
            "{name} takes a column and the number of values k, e.g. {name}(col, 3)"
        )));
    };
    let k = int_param(name, "k", k, MAX_N)? as usize;
    let t = ValType::new(name, t, false)?;
    if t.is_nested() {
        return Err(wrong_types(name, args, "a value of a primitive type (ARRAY, MAP and STRUCT have no order) and k"));
    }
    let others = others.iter().map(|o| ValType::new(name, o, false)).collect::<Result<Vec<_>, _>>()?;
    let name = if name == "TOPK" { "TOPK" } else { "TOPKDISTINCT" };
    let row = (!others.is_empty()).then(|| {
        let mut fields = vec![Field::new("sort_col", t.data_type().clone(), true)];
        fields.extend(others.iter().enumerate().map(|(i, o)| Field::new(format!("col{i}"), o.data_type().clone(), true)));
        Fields::from(fields)
    });
    Ok(Arc::new(TopK { name, t, k, distinct: name == "TOPKDISTINCT", others: Arc::new(others), row }))
}

#[derive(Debug)]
struct TopK {
    name: &'static str,
    t: ValType,
    k: usize,
    distinct: bool,
    /// The other columns of the variadic form.
    others: Arc<Vec<ValType>>,
    /// The variadic form's result fields: `sort_col`, `col0`, ...
    row: Option<Fields>,
}

#[derive(Debug)]
struct TopKState {
    t: ValType,
    k: usize,
    distinct: bool,
    /// Descending.
    vals: Vec<Val>,
    /// The other columns of each kept value (variadic form), parallel to `vals`.
    extra: Vec<Vec<Val>>,
    others: Arc<Vec<ValType>>,
    row: Option<Fields>,
}

impl AggFunction for TopK {
    fn name(&self) -> &'static str {
        self.name
    }
    fn return_type(&self) -> DataType {
        match &self.row {
            Some(fields) => DataType::List(Arc::new(Field::new("item", DataType::Struct(fields.clone()), true))),
            None => self.t.list_type(),
        }
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::new(TopKState {
            t: self.t.clone(),
            k: self.k,
            distinct: self.distinct,
            vals: Vec::with_capacity(self.k.min(16)),
            extra: Vec::new(),
            others: self.others.clone(),
            row: self.row.clone(),
        })
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let corrupt = || AggError::Corrupt(self.name);
        let mut at = 0;
        let n = get_varint(b, &mut at).ok_or_else(corrupt)? as usize;
        if n > self.k {
            return Err(corrupt());
        }
        let mut vals = Vec::with_capacity(n);
        let mut extra = Vec::new();
        for _ in 0..n {
            vals.push(self.t.load(b, &mut at).ok_or_else(corrupt)?);
            if !self.others.is_empty() {
                let row = self.others.iter().map(|o| o.load(b, &mut at).ok_or_else(corrupt)).collect::<Result<Vec<_>, _>>()?;
                extra.push(row);
            }
        }
        if at != b.len() {
            return Err(corrupt());
        }
        Ok(Box::new(TopKState {
            t: self.t.clone(),
            k: self.k,
            distinct: self.distinct,
            vals,
            extra,
            others: self.others.clone(),
            row: self.row.clone(),
        }))
    }
}

impl TopKState {
    fn offer(&mut self, v: V<'_>) {
        self.offer_row(v, Vec::new());
    }

    /// Offers a value with its other columns (variadic form).
    fn offer_row(&mut self, v: V<'_>, extra: Vec<Val>) {
        if v.is_null() {
            return;
        }
        if self.vals.len() == self.k {
            let last = self.vals.last().expect("k >= 1");
            if v.total_cmp(last) != std::cmp::Ordering::Greater {
                return;
            }
        }
        // First position whose value is smaller (ties keep arrival order).
        let pos = self.vals.partition_point(|x| x.total_cmp(&v) != std::cmp::Ordering::Less);
        if self.distinct && pos > 0 && self.vals[pos - 1].same(&v) {
            return;
        }
        self.vals.insert(pos, v.into_owned());
        self.vals.truncate(self.k);
        if !self.others.is_empty() {
            self.extra.insert(pos, extra);
            self.extra.truncate(self.k);
        }
    }
}

impl AggState for TopKState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        let v = self.t.read(&args[0], row);
        if self.others.is_empty() {
            return self.offer(v);
        }
        let others = self.others.clone();
        let extra = others.iter().zip(&args[1..]).map(|(t, a)| t.read(a, row).into_owned()).collect();
        self.offer_row(v, extra);
    }
    fn merge(&mut self, other: &dyn AggState) {
        if let Some(o) = other.as_any().downcast_ref::<TopKState>() {
            for (i, v) in o.vals.iter().enumerate() {
                self.offer_row(v.clone(), o.extra.get(i).cloned().unwrap_or_default());
            }
        }
    }
    fn evaluate(&self) -> ScalarValue {
        let Some(fields) = &self.row else { return self.t.list(self.vals.iter()) };
        let mut cols = vec![self.t.to_array(self.vals.iter())];
        for (c, t) in self.others.iter().enumerate() {
            cols.push(t.to_array(self.extra.iter().map(|r| &r[c])));
        }
        let rows = StructArray::new(fields.clone(), cols, None);
        let item = Arc::new(Field::new("item", DataType::Struct(fields.clone()), true));
        let n = rows.len();
        ScalarValue::List(Arc::new(ListArray::new(item, OffsetBuffer::from_lengths([n]), Arc::new(rows), None)))
    }
    fn save(&self, out: &mut Vec<u8>) {
        put_varint(self.vals.len() as u64, out);
        for (i, v) in self.vals.iter().enumerate() {
            self.t.save(v, out);
            for (t, x) in self.others.iter().zip(self.extra.get(i).into_iter().flatten()) {
                t.save(x, out);
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

    fn k(n: i32) -> ScalarValue {
        ScalarValue::Int32(Some(n))
    }

    #[test]
    fn topkdistinct_integers() {
        // topk-distinct.json "topk distinct integer" (BIGINT here).
        let f = bind("TOPKDISTINCT", &[DataType::Int64], &[k(3)]);
        let mut st = f.new_state();
        let got = feed(&mut st, &[ints(&[Some(0), Some(100), Some(99), None, Some(7), Some(100)])]);
        let want = [
            int_list(&[Some(0)]),
            int_list(&[Some(100), Some(0)]),
            int_list(&[Some(100), Some(99), Some(0)]),
            int_list(&[Some(100), Some(99), Some(0)]),
            int_list(&[Some(100), Some(99), Some(7)]),
            int_list(&[Some(100), Some(99), Some(7)]),
        ];
        assert_eq!(got, want);
        reload(&f, st.as_ref());
        assert_eq!(f.return_type(), super::super::value::list_of(DataType::Int64));
    }

    #[test]
    fn topk_keeps_duplicates() {
        let f = bind("TOPK", &[DataType::Utf8], &[k(3)]);
        let mut st = f.new_state();
        let got = feed(&mut st, &[strs(&[Some("a"), Some("b"), Some("b"), Some("c"), Some("a")])]);
        assert_eq!(got[2], str_list(&[Some("b"), Some("b"), Some("a")]));
        assert_eq!(got[4], str_list(&[Some("c"), Some("b"), Some("b")]));
        let back = reload(&f, st.as_ref());
        let mut other = f.new_state();
        feed(&mut other, &[strs(&[Some("d"), Some("b")])]);
        let mut merged = back;
        merged.merge(other.as_ref());
        assert_eq!(merged.evaluate(), str_list(&[Some("d"), Some("c"), Some("b")]));
    }

    #[test]
    fn doubles_order_like_java() {
        let f = bind("TOPKDISTINCT", &[DataType::Float64], &[k(2)]);
        let mut st = f.new_state();
        feed(&mut st, &[doubles(&[Some(1.0), Some(f64::NAN), Some(f64::NAN), Some(2.0)])]);
        let ScalarValue::List(l) = st.evaluate() else { panic!() };
        let vals = l.value(0);
        let vals = datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Float64Type>(&vals);
        assert!(vals.value(0).is_nan());
        assert_eq!(vals.value(1), 2.0);
    }

    #[test]
    fn bad_parameters() {
        for params in [vec![], vec![k(0)], vec![k(1001)], vec![ScalarValue::Utf8(Some("3".into()))]] {
            assert!(create_err("TOPK", &[DataType::Int64], &params));
        }
        assert!(create_err("TOPK", &[DataType::Int64, DataType::Int64], &[]));
        assert!(create_err("TOPKDISTINCT", &[DataType::Int64, DataType::Int64], &[k(2)]));
        assert!(create_err("TOPK", &[super::super::value::list_of(DataType::Int64)], &[k(2)]));
    }

    fn create_err(name: &str, args: &[DataType], params: &[ScalarValue]) -> bool {
        super::super::super::function::create_aggregate(name, args, params).is_err()
    }

    #[test]
    fn variadic_topk_keeps_other_columns() {
        let f = bind("TOPK", &[DataType::Int64, DataType::Utf8], &[k(2)]);
        let mut st = f.new_state();
        let got = feed(&mut st, &[ints(&[Some(5), Some(9), Some(1)]), strs(&[Some("a"), Some("b"), Some("c")])]);
        let ScalarValue::List(l) = &got[2] else { panic!() };
        let rows = l.value(0);
        let rows = datafusion::arrow::array::AsArray::as_struct(&rows);
        assert_eq!(rows.column_names(), vec!["sort_col", "col0"]);
        let v = datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(rows.column(0));
        assert_eq!(v.values().to_vec(), vec![9, 5]);
        let s = datafusion::arrow::array::AsArray::as_string::<i32>(rows.column(1));
        assert_eq!((s.value(0), s.value(1)), ("b", "a"));
        let back = reload(&f, st.as_ref());
        assert_eq!(back.evaluate(), got[2]);
    }

    #[test]
    fn full_list_rejects_small_values_without_growing() {
        let f = bind("TOPK", &[DataType::Int64], &[k(2)]);
        let mut st = f.new_state();
        let a = ints(&(0..10_000).map(Some).collect::<Vec<_>>());
        feed(&mut st, &[a]);
        assert_eq!(st.evaluate(), int_list(&[Some(9999), Some(9998)]));
        assert!(saved_len(st.as_ref()) < 12);
    }
}
