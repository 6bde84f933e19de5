//! Building ARRAY and MAP results by gathering: a function computes, per row, which elements
//! (indices into a flat values array) the result holds, and one `take` builds the values, so
//! that any element type (structs, nested arrays, maps) works the same way.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, MapArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::DataType;

use super::udf::{exec_err, list_array, map_array, nulls_from, DfResult};

/// The positions in `l.values()` of row `i`'s elements.
pub fn list_range(l: &ListArray, i: usize) -> Range<usize> {
    let o = l.value_offsets();
    o[i] as usize..o[i + 1] as usize
}

/// The positions in the entries of row `i` of a map.
pub fn map_range(m: &MapArray, i: usize) -> Range<usize> {
    let o = m.value_offsets();
    o[i] as usize..o[i + 1] as usize
}

/// The indices and offsets of gathered rows.
fn plan(rows: &[Option<Vec<u32>>]) -> (UInt32Array, Vec<i32>, Vec<bool>) {
    let mut idx = Vec::new();
    let mut offsets = vec![0i32];
    let mut valid = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(r) = r {
            idx.extend_from_slice(r);
        }
        valid.push(r.is_some());
        offsets.push(idx.len() as i32);
    }
    (UInt32Array::from(idx), offsets, valid)
}

/// An `ARRAY<item_type>` whose row `i` holds `values[k]` for each `k` in `rows[i]` (None: NULL).
pub fn gather_list(item_type: &DataType, values: &ArrayRef, rows: &[Option<Vec<u32>>]) -> DfResult<ArrayRef> {
    let (idx, offsets, valid) = plan(rows);
    let vals = take(values.as_ref(), &idx, None).map_err(|e| exec_err(e.to_string()))?;
    list_array(item_type, offsets, vals, nulls_from(&valid))
}

/// A `MAP<key_type, value_type>` whose row `i` holds the entries `(keys[k], vals[k])` for each
/// `k` in `rows[i]` (None: NULL).
pub fn gather_map(
    key_type: &DataType,
    value_type: &DataType,
    keys: &ArrayRef,
    vals: &ArrayRef,
    rows: &[Option<Vec<u32>>],
) -> DfResult<ArrayRef> {
    let (idx, offsets, valid) = plan(rows);
    let k = take(keys.as_ref(), &idx, None).map_err(|e| exec_err(e.to_string()))?;
    let v = take(vals.as_ref(), &idx, None).map_err(|e| exec_err(e.to_string()))?;
    map_array(key_type, value_type, offsets, k, v, nulls_from(&valid))
}

/// The list array of an argument (of type ARRAY).
pub fn as_list(a: &ArrayRef) -> &ListArray {
    a.as_list::<i32>()
}

/// Concatenates arrays of one type.
pub fn concat_all(parts: &[&ArrayRef]) -> DfResult<ArrayRef> {
    let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    datafusion::arrow::compute::concat(&refs).map_err(|e| exec_err(e.to_string()))
}

/// The keys of a map argument, as a list sharing the map's offsets (no copy).
pub fn map_keys_list(m: &MapArray, key_type: &DataType) -> DfResult<ArrayRef> {
    let DataType::List(field) = crate::types::list_of(key_type.clone()) else { unreachable!("list_of builds a list") };
    Ok(Arc::new(ListArray::try_new(field, m.offsets().clone(), m.keys().clone(), m.nulls().cloned())?))
}

/// The values of a map argument, as a list sharing the map's offsets (no copy).
pub fn map_values_list(m: &MapArray, value_type: &DataType) -> DfResult<ArrayRef> {
    let DataType::List(field) = crate::types::list_of(value_type.clone()) else { unreachable!("list_of builds a list") };
    Ok(Arc::new(ListArray::try_new(field, m.offsets().clone(), m.values().clone(), m.nulls().cloned())?))
}
