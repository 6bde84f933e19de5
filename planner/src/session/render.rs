//! Rendering result values as text (tables, CSV, test runners) and as JSON, the way ksqlDB
//! shows them: DECIMAL with its scale, DOUBLE as Java prints it (`1.0`), TIMESTAMP as ISO-8601
//! with milliseconds, nested values as JSON.

use std::fmt::Write;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType, TimeUnit,
    TimestampMillisecondType,
};

/// The text of one value; `None` for null.
pub fn cell_text(a: &ArrayRef, row: usize) -> Option<String> {
    if a.is_null(row) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(row).to_string(),
        DataType::List(_) | DataType::Map(_, _) | DataType::Struct(_) | DataType::Binary => {
            let mut s = String::new();
            json_value(a, row, &mut s);
            s
        }
        _ => {
            let mut s = String::new();
            json_value(a, row, &mut s);
            s
        }
    })
}

/// Appends one value as JSON (null as `null`).
pub fn json_value(a: &ArrayRef, row: usize, out: &mut String) {
    if a.is_null(row) {
        out.push_str("null");
        return;
    }
    match a.data_type() {
        DataType::Boolean => out.push_str(if a.as_boolean().value(row) { "true" } else { "false" }),
        DataType::Int32 => {
            let _ = write!(out, "{}", a.as_primitive::<Int32Type>().value(row));
        }
        DataType::Int64 => {
            let _ = write!(out, "{}", a.as_primitive::<Int64Type>().value(row));
        }
        DataType::Float64 => out.push_str(&java_double(a.as_primitive::<Float64Type>().value(row))),
        DataType::Decimal128(_, s) => out.push_str(&decimal_text(a.as_primitive::<Decimal128Type>().value(row), *s)),
        DataType::Utf8 => json_string(a.as_string::<i32>().value(row), out),
        DataType::Binary => json_string(&base64(a.as_binary::<i32>().value(row)), out),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let ms = a.as_primitive::<TimestampMillisecondType>().value(row);
            json_string(&timestamp_text(ms), out)
        }
        DataType::Date32 => {
            let d = a.as_primitive::<Date32Type>().value(row);
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163).map(|d| d.to_string()).unwrap_or_else(|| d.to_string());
            json_string(&date, out)
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            let ms = a.as_primitive::<Time32MillisecondType>().value(row);
            let t = chrono::NaiveTime::from_num_seconds_from_midnight_opt((ms / 1000) as u32, (ms % 1000) as u32 * 1_000_000)
                .map(|t| t.format("%H:%M:%S%.3f").to_string())
                .unwrap_or_else(|| ms.to_string());
            json_string(&t, out)
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            let items = l.value(row);
            out.push('[');
            for i in 0..items.len() {
                if i > 0 {
                    out.push(',');
                }
                json_value(&items, i, out);
            }
            out.push(']');
        }
        DataType::Map(_, _) => {
            let m = a.as_map();
            let entries = m.value(row);
            let keys = entries.column(0);
            let values = entries.column(1);
            out.push('{');
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(',');
                }
                let k = cell_text(keys, i).unwrap_or_else(|| "null".into());
                json_string(&k, out);
                out.push(':');
                json_value(values, i, out);
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            out.push('{');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(f.name(), out);
                out.push(':');
                json_value(s.column(i), row, out);
            }
            out.push('}');
        }
        _ => {
            let f = datafusion::arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &Default::default());
            match f {
                Ok(f) => json_string(&f.value(row).to_string(), out),
                Err(_) => out.push_str("null"),
            }
        }
    }
}

/// A JSON string literal.
pub fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A DOUBLE as Java's `Double.toString` prints it (`1.0`, `1.5E10`, `NaN`).
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e7).contains(&a) {
        // Scientific: shortest round-trip mantissa, exponent without '+'.
        let s = format!("{v:E}");
        let (m, e) = s.split_once('E').unwrap_or((&s, "0"));
        let m = if m.contains('.') { m.to_string() } else { format!("{m}.0") };
        return format!("{m}E{e}");
    }
    let s = format!("{v}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// A DECIMAL's text with exactly `scale` digits after the point.
pub fn decimal_text(unscaled: i128, scale: i8) -> String {
    if scale <= 0 {
        return (unscaled * 10i128.pow((-scale) as u32)).to_string();
    }
    let neg = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let s = scale as usize;
    let padded = if digits.len() <= s { format!("{}{digits}", "0".repeat(s - digits.len() + 1)) } else { digits };
    let (int, frac) = padded.split_at(padded.len() - s);
    format!("{}{int}.{frac}", if neg { "-" } else { "" })
}

/// A TIMESTAMP as ksqlDB prints it: `2024-01-31T12:00:00.000` (UTC).
pub fn timestamp_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Standard base64 (padded), as ksqlDB shows BYTES values.
pub fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        s.push(if c.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(1.5e10), "1.5E10");
        assert_eq!(java_double(-2.0), "-2.0");
        assert_eq!(java_double(1e-4), "1.0E-4");
    }

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal_text(110, 2), "1.10");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(7, 0), "7");
    }

    #[test]
    fn base64_encodes_bytes() {
        assert_eq!(base64(b"abcd"), "YWJjZA==");
    }
}
