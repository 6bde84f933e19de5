//! Arrow values as PostgreSQL values: BOOLEAN -> bool, INTEGER -> int4, BIGINT -> int8, DOUBLE
//! -> float8, DECIMAL -> numeric, STRING -> text, BYTES -> bytea, TIMESTAMP -> timestamp, DATE
//! -> date, TIME -> time; ARRAY, MAP and STRUCT -> json (the JSON the REPL shows). Both the text
//! and the binary encodings, since drivers ask for either.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    Time32MillisecondType, TimeUnit, TimestampMillisecondType,
};
use pgwire::api::Type;
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use planner::session::render::{decimal_text, json_value};
use postgres_types::{to_sql_checked, IsNull, ToSql};

/// Milliseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_MS: i64 = 946_684_800_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// The PostgreSQL type of an Arrow type.
pub fn pg_type(dt: &DataType) -> Type {
    match dt {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Type::INT4,
        DataType::Int64 => Type::INT8,
        DataType::Float32 | DataType::Float64 => Type::FLOAT8,
        DataType::Decimal128(_, _) => Type::NUMERIC,
        DataType::Binary => Type::BYTEA,
        DataType::Timestamp(TimeUnit::Millisecond, _) => Type::TIMESTAMP,
        DataType::Date32 => Type::DATE,
        DataType::Time32(TimeUnit::Millisecond) => Type::TIME,
        DataType::List(_) | DataType::Map(_, _) | DataType::Struct(_) => Type::JSON,
        _ => Type::TEXT,
    }
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum PgValue {
    /// SQL NULL.
    Null,
    /// bool.
    Bool(bool),
    /// int4.
    Int4(i32),
    /// int8.
    Int8(i64),
    /// float8.
    Float8(f64),
    /// numeric: unscaled value and scale.
    Numeric(i128, i8),
    /// text and json.
    Text(String),
    /// bytea.
    Bytes(Vec<u8>),
    /// timestamp, ms since 1970 (UTC, no zone).
    Timestamp(i64),
    /// date, days since 1970.
    Date(i32),
    /// time, ms since midnight.
    Time(i32),
}

/// The value of row `row` of `a`, for a column of type [`pg_type`]`(a.data_type())`.
pub fn value(a: &ArrayRef, row: usize) -> PgValue {
    if a.is_null(row) {
        return PgValue::Null;
    }
    match a.data_type() {
        DataType::Boolean => PgValue::Bool(a.as_boolean().value(row)),
        DataType::Int8 => PgValue::Int4(a.as_primitive::<Int8Type>().value(row) as i32),
        DataType::Int16 => PgValue::Int4(a.as_primitive::<Int16Type>().value(row) as i32),
        DataType::Int32 => PgValue::Int4(a.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => PgValue::Int8(a.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => PgValue::Float8(a.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => PgValue::Float8(a.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, s) => PgValue::Numeric(a.as_primitive::<Decimal128Type>().value(row), *s),
        DataType::Utf8 => PgValue::Text(a.as_string::<i32>().value(row).to_string()),
        DataType::Binary => PgValue::Bytes(a.as_binary::<i32>().value(row).to_vec()),
        DataType::Timestamp(TimeUnit::Millisecond, _) => PgValue::Timestamp(a.as_primitive::<TimestampMillisecondType>().value(row)),
        DataType::Date32 => PgValue::Date(a.as_primitive::<Date32Type>().value(row)),
        DataType::Time32(TimeUnit::Millisecond) => PgValue::Time(a.as_primitive::<Time32MillisecondType>().value(row)),
        _ => {
            let mut s = String::new();
            json_value(a, row, &mut s);
            // Strings of other types (JSON-quoted by json_value) are shown bare.
            if !matches!(a.data_type(), DataType::List(_) | DataType::Map(_, _) | DataType::Struct(_)) {
                if let Ok(v) = serde_json::from_str::<String>(&s) {
                    return PgValue::Text(v);
                }
            }
            PgValue::Text(s)
        }
    }
}

type BoxErr = Box<dyn Error + Sync + Send>;

impl ToSql for PgValue {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
        match self {
            PgValue::Null => return Ok(IsNull::Yes),
            PgValue::Bool(b) => out.put_u8(*b as u8),
            PgValue::Int4(v) => out.put_i32(*v),
            PgValue::Int8(v) => out.put_i64(*v),
            PgValue::Float8(v) => out.put_f64(*v),
            PgValue::Numeric(v, s) => numeric_binary(*v, *s, out),
            PgValue::Text(s) => out.put_slice(s.as_bytes()),
            PgValue::Bytes(b) => out.put_slice(b),
            PgValue::Timestamp(ms) => out.put_i64((ms - PG_EPOCH_MS) * 1000),
            PgValue::Date(d) => out.put_i32(d - PG_EPOCH_DAYS),
            PgValue::Time(ms) => out.put_i64(*ms as i64 * 1000),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl ToSqlText for PgValue {
    fn to_sql_text(&self, _ty: &Type, out: &mut BytesMut, _options: &FormatOptions) -> Result<IsNull, BoxErr> {
        let s = match self {
            PgValue::Null => return Ok(IsNull::Yes),
            PgValue::Bool(b) => (if *b { "t" } else { "f" }).to_string(),
            PgValue::Int4(v) => v.to_string(),
            PgValue::Int8(v) => v.to_string(),
            PgValue::Float8(v) if v.is_nan() => "NaN".into(),
            PgValue::Float8(v) if v.is_infinite() => (if *v > 0.0 { "Infinity" } else { "-Infinity" }).into(),
            PgValue::Float8(v) => v.to_string(),
            PgValue::Numeric(v, s) => decimal_text(*v, *s),
            PgValue::Text(s) => s.clone(),
            PgValue::Bytes(b) => {
                let mut s = String::from("\\x");
                for x in b {
                    s.push_str(&format!("{x:02x}"));
                }
                s
            }
            PgValue::Timestamp(ms) => chrono::DateTime::from_timestamp_millis(*ms)
                .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string())
                .unwrap_or_else(|| ms.to_string()),
            PgValue::Date(d) => chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)
                .map(|d| d.to_string())
                .unwrap_or_else(|| d.to_string()),
            PgValue::Time(ms) => chrono::NaiveTime::from_num_seconds_from_midnight_opt((ms / 1000) as u32, (ms % 1000) as u32 * 1_000_000)
                .map(|t| t.format("%H:%M:%S%.f").to_string())
                .unwrap_or_else(|| ms.to_string()),
        };
        out.put_slice(s.as_bytes());
        Ok(IsNull::No)
    }
}

/// PostgreSQL's binary numeric: digit count, weight, sign, display scale, base-10000 digits.
fn numeric_binary(unscaled: i128, scale: i8, out: &mut BytesMut) {
    let dscale = scale.max(0) as usize;
    let text = decimal_text(unscaled.abs(), scale);
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int = int.trim_start_matches('0');
    let int_pad = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac_pad = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let group = |s: &str| -> Vec<i16> { s.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or("0").parse().unwrap_or(0)).collect() };
    let int_groups = group(&int_pad);
    let mut weight = int_groups.len() as i16 - 1;
    let mut digits: Vec<i16> = int_groups.into_iter().chain(group(&frac_pad)).collect();
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    out.put_i16(digits.len() as i16);
    out.put_i16(weight);
    out.put_u16(if unscaled < 0 { 0x4000 } else { 0 });
    out.put_u16(dscale as u16);
    for d in digits {
        out.put_i16(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(v: i128, s: i8) -> Vec<u8> {
        let mut b = BytesMut::new();
        numeric_binary(v, s, &mut b);
        b.to_vec()
    }

    #[test]
    fn numeric_binary_matches_postgres() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        assert_eq!(numeric(12_345_678, 3), vec![0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]);
        // -0.05 = [500], weight -1, negative, dscale 2
        assert_eq!(numeric(-5, 2), vec![0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4]);
        // 0 = no digits
        assert_eq!(numeric(0, 2), vec![0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn text_values_look_like_postgres() {
        let text = |v: PgValue| {
            let mut b = BytesMut::new();
            v.to_sql_text(&Type::TEXT, &mut b, &FormatOptions::default()).unwrap();
            String::from_utf8(b.to_vec()).unwrap()
        };
        assert_eq!(text(PgValue::Bool(true)), "t");
        assert_eq!(text(PgValue::Float8(1.5)), "1.5");
        assert_eq!(text(PgValue::Numeric(110, 2)), "1.10");
        assert_eq!(text(PgValue::Timestamp(1_700_000_000_123)), "2023-11-14 22:13:20.123");
        assert_eq!(text(PgValue::Date(19_000)), "2022-01-08");
        assert_eq!(text(PgValue::Bytes(vec![1, 255])), "\\x01ff");
    }
}
