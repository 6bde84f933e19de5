//! A compact byte encoding of single values, for aggregate states that keep values (MIN, MAX,
//! LATEST_BY_OFFSET, COLLECT_LIST, ...): one Arrow IPC-free layout per type, nulls included.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;

/// Appends `v`: a null flag byte, then the value.
pub fn encode(v: &ScalarValue, out: &mut Vec<u8>) {
    if v.is_null() {
        out.push(0);
        return;
    }
    out.push(1);
    match v {
        ScalarValue::Boolean(Some(b)) => out.push(*b as u8),
        ScalarValue::Int32(Some(x)) | ScalarValue::Date32(Some(x)) | ScalarValue::Time32Millisecond(Some(x)) => {
            out.extend_from_slice(&x.to_le_bytes())
        }
        ScalarValue::Int64(Some(x)) | ScalarValue::TimestampMillisecond(Some(x), _) => out.extend_from_slice(&x.to_le_bytes()),
        ScalarValue::Float64(Some(x)) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        ScalarValue::Decimal128(Some(x), _, _) => out.extend_from_slice(&x.to_le_bytes()),
        ScalarValue::Utf8(Some(s)) => {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        ScalarValue::Binary(Some(b)) => {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        other => {
            // Nested values: their JSON-free text form is not needed yet; keep a debug string.
            let s = other.to_string();
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
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
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = b.get(*at..*at + n)?;
        *at += n;
        Some(s)
    };
    Some(match t {
        DataType::Boolean => ScalarValue::Boolean(Some(take(1)?[0] != 0)),
        DataType::Int32 => ScalarValue::Int32(Some(i32::from_le_bytes(take(4)?.try_into().ok()?))),
        DataType::Date32 => ScalarValue::Date32(Some(i32::from_le_bytes(take(4)?.try_into().ok()?))),
        DataType::Time32(TimeUnit::Millisecond) => {
            ScalarValue::Time32Millisecond(Some(i32::from_le_bytes(take(4)?.try_into().ok()?)))
        }
        DataType::Int64 => ScalarValue::Int64(Some(i64::from_le_bytes(take(8)?.try_into().ok()?))),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            ScalarValue::TimestampMillisecond(Some(i64::from_le_bytes(take(8)?.try_into().ok()?)), tz.clone())
        }
        DataType::Float64 => ScalarValue::Float64(Some(f64::from_bits(u64::from_le_bytes(take(8)?.try_into().ok()?)))),
        DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(i128::from_le_bytes(take(16)?.try_into().ok()?)), *p, *s),
        DataType::Utf8 => {
            let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            ScalarValue::Utf8(Some(std::str::from_utf8(take(n)?).ok()?.to_string()))
        }
        DataType::Binary => {
            let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            ScalarValue::Binary(Some(take(n)?.to_vec()))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let values = [
            ScalarValue::Int32(Some(-5)),
            ScalarValue::Int64(None),
            ScalarValue::Float64(Some(2.5)),
            ScalarValue::Utf8(Some("héllo".into())),
            ScalarValue::Decimal128(Some(12345), 10, 2),
            ScalarValue::Boolean(Some(true)),
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
}
