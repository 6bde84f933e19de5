//! A compact byte encoding of single values, for aggregate states that keep values (MIN, MAX,
//! LATEST_BY_OFFSET, COLLECT_LIST, ...): one Arrow IPC-free layout per type, nulls included.
//!
//! Layout: a flag byte (0 null, 1 value), then the value, little-endian: BOOLEAN 1 byte; INT,
//! DATE, TIME 4; BIGINT, TIMESTAMP, DOUBLE 8; DECIMAL 16; STRING and BYTES a u32 length and the
//! bytes; ARRAY a u32 length and each element; MAP a u32 length and each key and value; STRUCT
//! each field in declaration order. The type is not written: the reader supplies it.

use std::sync::Arc;

use datafusion::arrow::array::{make_comparator, Array, ArrayRef, AsArray, ListArray, MapArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType, TimeUnit,
    TimestampMillisecondType,
};
use datafusion::common::ScalarValue;

/// True when values of type `t` can be encoded (the canonical SQL types, nested ones included).
pub fn supports(t: &DataType) -> bool {
    match t {
        DataType::Boolean
        | DataType::Int32
        | DataType::Int64
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Utf8
        | DataType::Binary
        | DataType::Date32
        | DataType::Time32(TimeUnit::Millisecond)
        | DataType::Timestamp(TimeUnit::Millisecond, _) => true,
        DataType::List(f) => supports(f.data_type()),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => supports(kv[0].data_type()) && supports(kv[1].data_type()),
            _ => false,
        },
        DataType::Struct(fs) => fs.iter().all(|f| supports(f.data_type())),
        _ => false,
    }
}

/// Appends `v`: a null flag byte, then the value.
pub fn encode(v: &ScalarValue, out: &mut Vec<u8>) {
    if v.is_null() {
        out.push(0);
        return;
    }
    match v {
        ScalarValue::Boolean(Some(b)) => {
            out.push(1);
            out.push(*b as u8)
        }
        ScalarValue::Int32(Some(x)) | ScalarValue::Date32(Some(x)) | ScalarValue::Time32Millisecond(Some(x)) => {
            out.push(1);
            out.extend_from_slice(&x.to_le_bytes())
        }
        ScalarValue::Int64(Some(x)) | ScalarValue::TimestampMillisecond(Some(x), _) => {
            out.push(1);
            out.extend_from_slice(&x.to_le_bytes())
        }
        ScalarValue::Float64(Some(x)) => {
            out.push(1);
            out.extend_from_slice(&x.to_bits().to_le_bytes())
        }
        ScalarValue::Decimal128(Some(x), _, _) => {
            out.push(1);
            out.extend_from_slice(&x.to_le_bytes())
        }
        ScalarValue::Utf8(Some(s)) => {
            out.push(1);
            put_bytes(s.as_bytes(), out);
        }
        ScalarValue::Binary(Some(b)) => {
            out.push(1);
            put_bytes(b, out);
        }
        other => match other.to_array() {
            Ok(a) => encode_array(a.as_ref(), 0, false, out),
            Err(_) => {
                panic!("value {other:?} of an unsupported type reached the aggregate state codec")
            }
        },
    }
}

fn put_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends row `row` of `a` in the layout of [`encode`]. With `canonical`, map entries are
/// written sorted by key, so that equal maps encode to equal bytes whatever their entry order.
///
/// Panics on a type [`supports`] refuses (callers check types when binding).
pub fn encode_array(a: &dyn Array, row: usize, canonical: bool, out: &mut Vec<u8>) {
    if a.is_null(row) {
        out.push(0);
        return;
    }
    out.push(1);
    match a.data_type() {
        DataType::Boolean => out.push(a.as_boolean().value(row) as u8),
        DataType::Int32 => out.extend_from_slice(&a.as_primitive::<Int32Type>().value(row).to_le_bytes()),
        DataType::Date32 => out.extend_from_slice(&a.as_primitive::<Date32Type>().value(row).to_le_bytes()),
        DataType::Time32(TimeUnit::Millisecond) => {
            out.extend_from_slice(&a.as_primitive::<Time32MillisecondType>().value(row).to_le_bytes())
        }
        DataType::Int64 => out.extend_from_slice(&a.as_primitive::<Int64Type>().value(row).to_le_bytes()),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            out.extend_from_slice(&a.as_primitive::<TimestampMillisecondType>().value(row).to_le_bytes())
        }
        DataType::Float64 => out.extend_from_slice(&a.as_primitive::<Float64Type>().value(row).to_bits().to_le_bytes()),
        DataType::Decimal128(_, _) => {
            out.extend_from_slice(&a.as_primitive::<Decimal128Type>().value(row).to_le_bytes())
        }
        DataType::Utf8 => put_bytes(a.as_string::<i32>().value(row).as_bytes(), out),
        DataType::Binary => put_bytes(a.as_binary::<i32>().value(row), out),
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(row);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for j in 0..items.len() {
                encode_array(items.as_ref(), j, canonical, out);
            }
        }
        DataType::Map(_, _) => {
            let entries = a.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            let mut order: Vec<usize> = (0..entries.len()).collect();
            if canonical && entries.len() > 1 {
                if let Ok(cmp) = make_comparator(keys.as_ref(), keys.as_ref(), SortOptions::default()) {
                    order.sort_by(|&x, &y| cmp(x, y));
                }
            }
            for j in order {
                encode_array(keys.as_ref(), j, canonical, out);
                encode_array(values.as_ref(), j, canonical, out);
            }
        }
        DataType::Struct(_) => {
            for c in a.as_struct().columns() {
                encode_array(c.as_ref(), row, canonical, out);
            }
        }
        other => panic!("type {other} reached the aggregate state codec"),
    }
}

/// Reads a value of type `t` written by [`encode`]; `None` if the bytes are malformed.
pub fn decode(t: &DataType, b: &[u8]) -> Option<ScalarValue> {
    decode_at(t, b, &mut 0)
}

/// Reads a value at `*at`, advancing it.
pub fn decode_at(t: &DataType, b: &[u8], at: &mut usize) -> Option<ScalarValue> {
    let flag = *b.get(*at)?;
    *at += 1;
    if flag == 0 {
        return ScalarValue::try_from(t).ok();
    }
    fn take<'b>(b: &'b [u8], at: &mut usize, n: usize) -> Option<&'b [u8]> {
        let s = b.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(s)
    }
    fn len(b: &[u8], at: &mut usize) -> Option<usize> {
        Some(u32::from_le_bytes(take(b, at, 4)?.try_into().ok()?) as usize)
    }
    Some(match t {
        DataType::Boolean => ScalarValue::Boolean(Some(take(b, at, 1)?[0] != 0)),
        DataType::Int32 => ScalarValue::Int32(Some(i32::from_le_bytes(take(b, at, 4)?.try_into().ok()?))),
        DataType::Date32 => ScalarValue::Date32(Some(i32::from_le_bytes(take(b, at, 4)?.try_into().ok()?))),
        DataType::Time32(TimeUnit::Millisecond) => {
            ScalarValue::Time32Millisecond(Some(i32::from_le_bytes(take(b, at, 4)?.try_into().ok()?)))
        }
        DataType::Int64 => ScalarValue::Int64(Some(i64::from_le_bytes(take(b, at, 8)?.try_into().ok()?))),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            ScalarValue::TimestampMillisecond(Some(i64::from_le_bytes(take(b, at, 8)?.try_into().ok()?)), tz.clone())
        }
        DataType::Float64 => {
            ScalarValue::Float64(Some(f64::from_bits(u64::from_le_bytes(take(b, at, 8)?.try_into().ok()?))))
        }
        DataType::Decimal128(p, s) => {
            ScalarValue::Decimal128(Some(i128::from_le_bytes(take(b, at, 16)?.try_into().ok()?)), *p, *s)
        }
        DataType::Utf8 => {
            let n = len(b, at)?;
            ScalarValue::Utf8(Some(std::str::from_utf8(take(b, at, n)?).ok()?.to_string()))
        }
        DataType::Binary => {
            let n = len(b, at)?;
            ScalarValue::Binary(Some(take(b, at, n)?.to_vec()))
        }
        DataType::List(f) => {
            let n = len(b, at)?;
            let items = decode_many(f.data_type(), n, b, at)?;
            ScalarValue::List(Arc::new(
                ListArray::try_new(f.clone(), OffsetBuffer::from_lengths([n]), items, None).ok()?,
            ))
        }
        DataType::Map(f, sorted) => {
            let DataType::Struct(kv) = f.data_type() else {
                return None;
            };
            let n = len(b, at)?;
            let (mut keys, mut values) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for _ in 0..n {
                keys.push(decode_at(kv[0].data_type(), b, at)?);
                values.push(decode_at(kv[1].data_type(), b, at)?);
            }
            let entries = StructArray::try_new(
                kv.clone(),
                vec![to_array(kv[0].data_type(), keys)?, to_array(kv[1].data_type(), values)?],
                None,
            )
            .ok()?;
            let map = MapArray::try_new(f.clone(), OffsetBuffer::from_lengths([n]), entries, None, *sorted).ok()?;
            ScalarValue::Map(Arc::new(map))
        }
        DataType::Struct(fs) => {
            let mut cols = Vec::with_capacity(fs.len());
            for f in fs.iter() {
                cols.push(decode_at(f.data_type(), b, at)?.to_array().ok()?);
            }
            ScalarValue::Struct(Arc::new(StructArray::try_new(fs.clone(), cols, None).ok()?))
        }
        _ => return None,
    })
}

fn decode_many(t: &DataType, n: usize, b: &[u8], at: &mut usize) -> Option<ArrayRef> {
    let mut vals = Vec::with_capacity(n);
    for _ in 0..n {
        vals.push(decode_at(t, b, at)?);
    }
    to_array(t, vals)
}

/// An array of type `t` holding `vals` (which have that type).
pub fn to_array(t: &DataType, vals: Vec<ScalarValue>) -> Option<ArrayRef> {
    if vals.is_empty() {
        return Some(datafusion::arrow::array::new_empty_array(t));
    }
    let a = ScalarValue::iter_to_array(vals).ok()?;
    if a.data_type() == t {
        Some(a)
    } else {
        datafusion::arrow::compute::cast(&a, t).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Fields};

    fn map_type() -> DataType {
        let kv =
            Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Float64, true)]);
        DataType::Map(Arc::new(Field::new("entries", DataType::Struct(kv), false)), false)
    }

    #[test]
    fn round_trips() {
        let values = [
            ScalarValue::Int32(Some(-5)),
            ScalarValue::Int64(None),
            ScalarValue::Float64(Some(2.5)),
            ScalarValue::Utf8(Some("héllo".into())),
            ScalarValue::Decimal128(Some(12345), 10, 2),
            ScalarValue::Boolean(Some(true)),
            ScalarValue::Date32(Some(19000)),
            ScalarValue::TimestampMillisecond(Some(12), None),
            ScalarValue::Binary(Some(vec![0, 255])),
        ];
        let mut buf = Vec::new();
        for v in &values {
            encode(v, &mut buf);
        }
        let mut at = 0;
        for v in &values {
            assert_eq!(&decode_at(&v.data_type(), &buf, &mut at).unwrap(), v);
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn nested_values_round_trip() {
        let st = DataType::Struct(Fields::from(vec![
            Field::new("A", DataType::Utf8, true),
            Field::new("M", map_type(), true),
        ]));
        let list_t = DataType::List(Arc::new(Field::new("item", st.clone(), true)));
        // A list of a struct holding a map (built through the codec itself) and a null struct.
        let m = {
            let mut b = vec![1u8];
            b.extend_from_slice(&2u32.to_le_bytes());
            encode(&ScalarValue::Utf8(Some("k".into())), &mut b);
            encode(&ScalarValue::Float64(Some(1.5)), &mut b);
            encode(&ScalarValue::Utf8(Some("j".into())), &mut b);
            encode(&ScalarValue::Float64(None), &mut b);
            decode(&map_type(), &b).unwrap()
        };
        let s1 = ScalarValue::Struct(Arc::new(
            StructArray::try_new(
                match &st {
                    DataType::Struct(f) => f.clone(),
                    _ => unreachable!(),
                },
                vec![ScalarValue::Utf8(Some("x".into())).to_array().unwrap(), m.to_array().unwrap()],
                None,
            )
            .unwrap(),
        ));
        let s2 = ScalarValue::try_from(&st).unwrap();
        let list = ScalarValue::List(ScalarValue::new_list_nullable(&[s1.clone(), s2.clone()], &st));
        assert_eq!(list.data_type(), list_t);
        for v in [&m, &s1, &s2, &list] {
            let mut buf = Vec::new();
            encode(v, &mut buf);
            let back = decode(&v.data_type(), &buf).unwrap();
            assert_eq!(&back, v, "{v}");
            let mut again = Vec::new();
            encode(&back, &mut again);
            assert_eq!(buf, again);
        }
    }

    #[test]
    fn canonical_maps_ignore_entry_order() {
        let mk = |pairs: &[(&str, f64)]| {
            let mut b = vec![1u8];
            b.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
            for (k, v) in pairs {
                encode(&ScalarValue::Utf8(Some(k.to_string())), &mut b);
                encode(&ScalarValue::Float64(Some(*v)), &mut b);
            }
            decode(&map_type(), &b).unwrap().to_array().unwrap()
        };
        let (a, b) = (mk(&[("x", 1.0), ("y", 2.0)]), mk(&[("y", 2.0), ("x", 1.0)]));
        let enc = |a: &ArrayRef, canonical| {
            let mut out = Vec::new();
            encode_array(a.as_ref(), 0, canonical, &mut out);
            out
        };
        assert_ne!(enc(&a, false), enc(&b, false));
        assert_eq!(enc(&a, true), enc(&b, true));
    }

    #[test]
    fn supported_types() {
        assert!(supports(&map_type()));
        assert!(!supports(&DataType::Float32));
        assert!(!supports(&DataType::List(Arc::new(Field::new("item", DataType::UInt8, true)))));
    }
}
