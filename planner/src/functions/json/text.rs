//! SQL values as JSON text (TO_JSON_STRING) and as Java's `toString` prints them (ARRAY_JOIN).
//!
//! TO_JSON_STRING follows ksqlDB's JSON serializer: BYTES as base64 strings, DATE as
//! `"1972-09-27"`, TIME as `"16:43:40"`, TIMESTAMP as `"1971-11-28T23:46:40.000"` (UTC), DOUBLE as
//! Java prints it, DECIMAL with its scale, STRUCT fields and MAP keys as JSON members.

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType, TimestampMillisecondType,
};

use crate::session::render::{base64, decimal_text, java_double, json_string, timestamp_text};

fn date_text(days: i32) -> String {
    NaiveDate::from_num_days_from_ce_opt(days + 719_163).map(|d| d.to_string()).unwrap_or_else(|| days.to_string())
}

fn time_text(ms: i32) -> String {
    let (h, m, s, f) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if f == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{f:03}")
    }
}

/// Appends row `i` of `a` as JSON.
pub fn write_json(a: &dyn Array, i: usize, out: &mut String) {
    if a.is_null(i) {
        out.push_str("null");
        return;
    }
    match a.data_type() {
        DataType::Utf8 => json_string(a.as_string::<i32>().value(i), out),
        DataType::Binary => json_string(&base64(a.as_binary::<i32>().value(i)), out),
        DataType::Date32 => json_string(&date_text(a.as_primitive::<Date32Type>().value(i)), out),
        DataType::Time32(_) => json_string(&time_text(a.as_primitive::<Time32MillisecondType>().value(i)), out),
        DataType::Timestamp(_, _) => json_string(&timestamp_text(a.as_primitive::<TimestampMillisecondType>().value(i)), out),
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(i);
            out.push('[');
            for j in 0..items.len() {
                if j > 0 {
                    out.push(',');
                }
                write_json(items.as_ref(), j, out);
            }
            out.push(']');
        }
        DataType::Map(_, _) => {
            let entries = a.as_map().value(i);
            out.push('{');
            for j in 0..entries.len() {
                if j > 0 {
                    out.push(',');
                }
                json_string(&java_text(entries.column(0).as_ref(), j), out);
                out.push(':');
                write_json(entries.column(1).as_ref(), j, out);
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            out.push('{');
            for (k, f) in fields.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                json_string(f.name(), out);
                out.push(':');
                write_json(s.column(k).as_ref(), i, out);
            }
            out.push('}');
        }
        _ => out.push_str(&java_text(a, i)),
    }
}

/// Row `i` of `a` as Java's `String.valueOf` prints it (`null` for NULL).
pub fn java_text(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return "null".into();
    }
    match a.data_type() {
        DataType::Boolean => a.as_boolean().value(i).to_string(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Float64 => java_double(a.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, s) => decimal_text(a.as_primitive::<Decimal128Type>().value(i), *s),
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::Binary => base64(a.as_binary::<i32>().value(i)),
        DataType::Date32 => date_text(a.as_primitive::<Date32Type>().value(i)),
        DataType::Time32(_) => time_text(a.as_primitive::<Time32MillisecondType>().value(i)),
        DataType::Timestamp(_, _) => timestamp_text(a.as_primitive::<TimestampMillisecondType>().value(i)),
        _ => {
            let mut s = String::new();
            write_json(a, i, &mut s);
            s
        }
    }
}
