//! CAST where ksqlDB's result differs from Arrow's: integers narrow as Java narrows them
//! (`CAST(2147483648 AS INT)` is -2147483648, also inside arrays, maps and structs), and maps
//! and structs become text as Java prints them (`{this=1}`, `Struct{F0=1,f1=3}`).
//!
//! [`needs_ksql_cast`] says when a cast must go through [`ksql_cast`]; every other cast stays
//! Arrow's.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, ListArray, MapArray, StringBuilder, StructArray,
};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int32Type, Int64Type};

use super::udf::DfResult;
use crate::session::render::{decimal_text, java_double};

/// True when casting `from` to `to` must follow Java's rules rather than Arrow's.
pub fn needs_ksql_cast(from: &DataType, to: &DataType) -> bool {
    match (from, to) {
        (DataType::Int64 | DataType::Float64 | DataType::Decimal128(_, _), DataType::Int32) => true,
        (DataType::Float64 | DataType::Decimal128(_, _), DataType::Int64) => true,
        (DataType::Map(_, _) | DataType::Struct(_), DataType::Utf8) => true,
        (DataType::List(a), DataType::List(b)) => needs_ksql_cast(a.data_type(), b.data_type()),
        (DataType::Map(a, _), DataType::Map(b, _)) => needs_ksql_cast(a.data_type(), b.data_type()),
        // STRUCTs convert field by field, by name: fields the target lacks are dropped, those the
        // source lacks are null.
        (DataType::Struct(a), DataType::Struct(b)) => {
            a.len() != b.len()
                || a.iter().zip(b.iter()).any(|(x, y)| x.name() != y.name() || needs_ksql_cast(x.data_type(), y.data_type()))
        }
        _ => false,
    }
}

/// Casts `a` to `to` with ksqlDB's semantics.
pub fn ksql_cast(a: &ArrayRef, to: &DataType) -> DfResult<ArrayRef> {
    let from = a.data_type().clone();
    if !needs_ksql_cast(&from, to) {
        return Ok(cast_with_options(a, to, &CastOptions::default())?);
    }
    Ok(match (&from, to) {
        (DataType::Int64, DataType::Int32) => {
            let v = a.as_primitive::<Int64Type>();
            Arc::new(v.unary::<_, Int32Type>(|x| x as i32))
        }
        // Java's (int) and (long) of a double: truncation, saturating, NaN is 0 (as Rust's `as`).
        (DataType::Float64, DataType::Int32) => Arc::new(a.as_primitive::<Float64Type>().unary::<_, Int32Type>(|x| x as i32)),
        (DataType::Float64, DataType::Int64) => Arc::new(a.as_primitive::<Float64Type>().unary::<_, Int64Type>(|x| x as i64)),
        // BigDecimal.intValue()/longValue(): the integer part, narrowed.
        (DataType::Decimal128(_, s), DataType::Int32) => {
            let d = 10i128.pow((*s).max(0) as u32);
            let v: Int32Array = a.as_primitive::<Decimal128Type>().unary(|x| (x / d) as i32);
            Arc::new(v)
        }
        (DataType::Decimal128(_, s), DataType::Int64) => {
            let d = 10i128.pow((*s).max(0) as u32);
            let v: Int64Array = a.as_primitive::<Decimal128Type>().unary(|x| (x / d) as i64);
            Arc::new(v)
        }
        (DataType::List(_), DataType::List(f)) => {
            let l = a.as_list::<i32>();
            let values = ksql_cast(l.values(), f.data_type())?;
            Arc::new(ListArray::try_new(f.clone(), l.offsets().clone(), values, l.nulls().cloned())?)
        }
        (DataType::Map(_, _), DataType::Map(f, sorted)) => {
            let m = a.as_map();
            let DataType::Struct(fields) = f.data_type() else { unreachable!("a map's entries are a struct") };
            let keys = ksql_cast(m.keys(), fields[0].data_type())?;
            let values = ksql_cast(m.values(), fields[1].data_type())?;
            let entries = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
            Arc::new(MapArray::try_new(f.clone(), m.offsets().clone(), entries, m.nulls().cloned(), *sorted)?)
        }
        (DataType::Struct(from), DataType::Struct(fields)) => {
            let s = a.as_struct();
            let cols = fields
                .iter()
                .map(|f| {
                    let i = from.iter().position(|x| x.name() == f.name()).or_else(|| from.iter().position(|x| x.name().eq_ignore_ascii_case(f.name())));
                    match i {
                        Some(i) => ksql_cast(s.column(i), f.data_type()),
                        None => Ok(datafusion::arrow::array::new_null_array(f.data_type(), s.len())),
                    }
                })
                .collect::<DfResult<Vec<_>>>()?;
            if fields.is_empty() {
                return Ok(Arc::new(StructArray::new_empty_fields(s.len(), s.nulls().cloned())));
            }
            Arc::new(StructArray::try_new(fields.clone(), cols, s.nulls().cloned())?)
        }
        (_, DataType::Utf8) => {
            let mut b = StringBuilder::with_capacity(a.len(), a.len() * 16);
            for i in 0..a.len() {
                if a.is_null(i) {
                    b.append_null();
                } else {
                    let mut s = String::new();
                    java_text(a, i, &mut s);
                    b.append_value(s);
                }
            }
            Arc::new(b.finish())
        }
        _ => unreachable!("needs_ksql_cast covers these"),
    })
}

/// Appends a value as Java's `toString` of ksqlDB's value classes prints it.
fn java_text(a: &ArrayRef, i: usize, out: &mut String) {
    if a.is_null(i) {
        out.push_str("null");
        return;
    }
    match a.data_type() {
        DataType::Utf8 => out.push_str(a.as_string::<i32>().value(i)),
        DataType::Boolean => out.push_str(if a.as_boolean().value(i) { "true" } else { "false" }),
        DataType::Int32 => out.push_str(&a.as_primitive::<Int32Type>().value(i).to_string()),
        DataType::Int64 => out.push_str(&a.as_primitive::<Int64Type>().value(i).to_string()),
        DataType::Float64 => out.push_str(&java_double(a.as_primitive::<Float64Type>().value(i))),
        DataType::Decimal128(_, s) => out.push_str(&decimal_text(a.as_primitive::<Decimal128Type>().value(i), *s)),
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(i);
            out.push('[');
            for j in 0..items.len() {
                if j > 0 {
                    out.push_str(", ");
                }
                java_text(&items, j, out);
            }
            out.push(']');
        }
        DataType::Map(_, _) => {
            let entries = a.as_map().value(i);
            out.push('{');
            for j in 0..entries.len() {
                if j > 0 {
                    out.push_str(", ");
                }
                java_text(entries.column(0), j, out);
                out.push('=');
                java_text(entries.column(1), j, out);
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            // Kafka Connect's Struct.toString: fields with a value, comma-separated.
            let s = a.as_struct();
            out.push_str("Struct{");
            let mut first = true;
            for (k, f) in fields.iter().enumerate() {
                if s.column(k).is_null(i) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(f.name());
                out.push('=');
                java_text(s.column(k), i, out);
            }
            out.push('}');
        }
        _ => {
            let mut s = String::new();
            crate::session::render::json_value(a, i, &mut s);
            out.push_str(s.trim_matches('"'));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Fields};

    #[test]
    fn narrowing_wraps_like_java() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2_147_483_648, -2_147_483_649]));
        let r = ksql_cast(&a, &DataType::Int32).unwrap();
        assert_eq!(r.as_primitive::<Int32Type>().values().to_vec(), vec![1, -2_147_483_648, 2_147_483_647]);
    }

    #[test]
    fn structs_and_maps_print_like_java() {
        let fields = Fields::from(vec![Field::new("F0", DataType::Int32, true), Field::new("f1", DataType::Int32, true)]);
        let s: ArrayRef = Arc::new(
            StructArray::try_new(
                fields,
                vec![Arc::new(Int32Array::from(vec![Some(1)])), Arc::new(Int32Array::from(vec![Some(3)]))],
                None,
            )
            .unwrap(),
        );
        let r = ksql_cast(&s, &DataType::Utf8).unwrap();
        assert_eq!(r.as_string::<i32>().value(0), "Struct{F0=1,f1=3}");
    }
}
