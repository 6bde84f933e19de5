//! Value identity for the functions that compare whole values of any type (NULLIF,
//! ARRAY_DISTINCT, ARRAY_UNION, ARRAY_REMOVE, ...): a canonical byte key per value, equal for
//! values that Java's `equals` considers equal (so doubles compare by bits, NaN equals NaN,
//! and 0.0 differs from -0.0; lists, maps and structs compare element-wise).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType, TimeUnit,
    TimestampMillisecondType,
};

/// Appends the key of row `i` of `a` to `out`.
pub fn key(a: &dyn Array, i: usize, out: &mut Vec<u8>) {
    if a.is_null(i) {
        out.push(0);
        return;
    }
    out.push(1);
    match a.data_type() {
        DataType::Boolean => out.push(a.as_boolean().value(i) as u8),
        DataType::Int32 => out.extend_from_slice(&a.as_primitive::<Int32Type>().value(i).to_le_bytes()),
        DataType::Int64 => out.extend_from_slice(&a.as_primitive::<Int64Type>().value(i).to_le_bytes()),
        DataType::Float64 => {
            let v = a.as_primitive::<Float64Type>().value(i);
            let bits = if v.is_nan() { f64::NAN.to_bits() } else { v.to_bits() };
            out.extend_from_slice(&bits.to_le_bytes());
        }
        DataType::Decimal128(_, _) => out.extend_from_slice(&a.as_primitive::<Decimal128Type>().value(i).to_le_bytes()),
        DataType::Date32 => out.extend_from_slice(&a.as_primitive::<Date32Type>().value(i).to_le_bytes()),
        DataType::Time32(TimeUnit::Millisecond) => {
            out.extend_from_slice(&a.as_primitive::<Time32MillisecondType>().value(i).to_le_bytes())
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            out.extend_from_slice(&a.as_primitive::<TimestampMillisecondType>().value(i).to_le_bytes())
        }
        DataType::Utf8 => bytes(a.as_string::<i32>().value(i).as_bytes(), out),
        DataType::Binary => bytes(a.as_binary::<i32>().value(i), out),
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(i);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for j in 0..items.len() {
                key(items.as_ref(), j, out);
            }
        }
        DataType::Map(_, _) => {
            // Java maps are equal regardless of entry order: sort the entry keys.
            let entries = a.as_map().value(i);
            let mut keys: Vec<Vec<u8>> = (0..entries.len())
                .map(|j| {
                    let mut k = Vec::new();
                    key(entries.column(0).as_ref(), j, &mut k);
                    key(entries.column(1).as_ref(), j, &mut k);
                    k
                })
                .collect();
            keys.sort();
            out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
            for k in keys {
                bytes(&k, out);
            }
        }
        DataType::Struct(_) => {
            let s = a.as_struct();
            for c in s.columns() {
                key(c.as_ref(), i, out);
            }
        }
        other => bytes(format!("{other}:{:?}", a.slice(i, 1)).as_bytes(), out),
    }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// The key of row `i` of `a`.
pub fn key_of(a: &dyn Array, i: usize) -> Vec<u8> {
    let mut k = Vec::new();
    key(a, i, &mut k);
    k
}

/// True when row `i` of `a` equals row `j` of `b` (two nulls are equal).
pub fn equal(a: &dyn Array, i: usize, b: &dyn Array, j: usize) -> bool {
    key_of(a, i) == key_of(b, j)
}

/// Java's `hashCode` of row `i`, for the key types whose hash is simple; None otherwise.
fn java_hash(a: &dyn Array, i: usize) -> Option<i32> {
    if a.is_null(i) {
        return Some(0);
    }
    Some(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32)),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i),
        DataType::Int64 => {
            let v = a.as_primitive::<Int64Type>().value(i);
            (v ^ ((v as u64) >> 32) as i64) as i32
        }
        DataType::Boolean => {
            if a.as_boolean().value(i) {
                1231
            } else {
                1237
            }
        }
        _ => return None,
    })
}

/// The order in which Java iterates a `HashMap` holding the keys `keys[range]`, inserted in
/// that order into `new HashMap<>(size)` (how ksqlDB's deserializers build maps): by bucket,
/// then by insertion. Keys without a simple Java hash keep their order.
pub fn java_hashmap_order(keys: &dyn Array, range: std::ops::Range<usize>) -> Vec<usize> {
    let n = range.len();
    let mut cap = n.max(1).next_power_of_two();
    while n as f64 > cap as f64 * 0.75 {
        cap *= 2;
    }
    let hashes: Option<Vec<i32>> = range.clone().map(|k| java_hash(keys, k)).collect();
    let Some(hashes) = hashes else { return range.collect() };
    let mut idx: Vec<(usize, usize)> = range
        .zip(hashes)
        .map(|(k, h)| {
            let spread = (h as u32) ^ ((h as u32) >> 16);
            ((spread as usize) & (cap - 1), k)
        })
        .collect();
    idx.sort_by_key(|(bucket, _)| *bucket);
    idx.into_iter().map(|(_, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Float64Array, ListArray};
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    #[test]
    fn keys_follow_java_equality() {
        let d: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN, f64::NAN, 0.0, -0.0]));
        assert!(equal(d.as_ref(), 0, d.as_ref(), 1));
        assert!(!equal(d.as_ref(), 2, d.as_ref(), 3));
        let l = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), None]), Some(vec![Some(1), None]), None]);
        assert!(equal(&l, 0, &l, 1));
        assert!(!equal(&l, 0, &l, 2));
    }

    #[test]
    fn java_hashmap_iteration_order() {
        use datafusion::arrow::array::StringArray;
        let keys = StringArray::from(vec!["yes, thanks", "nope", "sure, yeah"]);
        assert_eq!(java_hashmap_order(&keys, 0..3), vec![0, 2, 1]);
    }
}
