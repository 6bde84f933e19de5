//! Helpers for the UDAF unit tests: build argument columns, feed rows, round-trip states.

use datafusion::arrow::array::ArrayRef;
use datafusion::common::ScalarValue;

use super::super::function::{create_aggregate, AggFunctionRef, AggState};

/// Binds `name` like the planner does.
pub fn bind(name: &str, args: &[datafusion::arrow::datatypes::DataType], params: &[ScalarValue]) -> AggFunctionRef {
    create_aggregate(name, args, params).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A column of `values` (all of one type).
pub fn col(values: Vec<ScalarValue>) -> ArrayRef {
    ScalarValue::iter_to_array(values).expect("one type")
}

/// A column of nullable BIGINTs.
pub fn ints(values: &[Option<i64>]) -> ArrayRef {
    col(values.iter().map(|v| ScalarValue::Int64(*v)).collect())
}

/// A column of nullable STRINGs.
pub fn strs(values: &[Option<&str>]) -> ArrayRef {
    col(values.iter().map(|v| ScalarValue::Utf8(v.map(|s| s.to_string()))).collect())
}

/// A column of nullable DOUBLEs.
pub fn doubles(values: &[Option<f64>]) -> ArrayRef {
    col(values.iter().map(|v| ScalarValue::Float64(*v)).collect())
}

/// Adds every row of `args` to `st`, returning the result after each.
pub fn feed(st: &mut Box<dyn AggState>, args: &[ArrayRef]) -> Vec<ScalarValue> {
    (0..args[0].len())
        .map(|i| {
            st.update(args, i);
            st.evaluate()
        })
        .collect()
}

/// Takes back every row of `args` from `st`, returning the result after each.
pub fn unfeed(st: &mut Box<dyn AggState>, args: &[ArrayRef]) -> Vec<ScalarValue> {
    (0..args[0].len())
        .map(|i| {
            st.retract(args, i);
            st.evaluate()
        })
        .collect()
}

/// Saves and loads `st`, checking that the result and the bytes survive; returns the copy.
pub fn reload(f: &AggFunctionRef, st: &dyn AggState) -> Box<dyn AggState> {
    let mut bytes = Vec::new();
    st.save(&mut bytes);
    let back = f.load(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.name()));
    assert_eq!(back.evaluate(), st.evaluate(), "{} result after reload", f.name());
    let mut again = Vec::new();
    back.save(&mut again);
    assert_eq!(again, bytes, "{} bytes after reload", f.name());
    if !bytes.is_empty() {
        assert!(f.load(&bytes[..bytes.len() - 1]).is_err(), "{} loads truncated bytes", f.name());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(f.load(&longer).is_err(), "{} loads trailing bytes", f.name());
    back
}

/// The size of the saved state.
pub fn saved_len(st: &dyn AggState) -> usize {
    let mut bytes = Vec::new();
    st.save(&mut bytes);
    bytes.len()
}

/// An ARRAY<BIGINT> result.
pub fn int_list(values: &[Option<i64>]) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(
        &values.iter().map(|v| ScalarValue::Int64(*v)).collect::<Vec<_>>(),
        &datafusion::arrow::datatypes::DataType::Int64,
    ))
}

/// An ARRAY<STRING> result.
pub fn str_list(values: &[Option<&str>]) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(
        &values.iter().map(|v| ScalarValue::Utf8(v.map(|s| s.to_string()))).collect::<Vec<_>>(),
        &datafusion::arrow::datatypes::DataType::Utf8,
    ))
}
