//! Literals: numbers become INT, BIGINT, DECIMAL (with a point) or DOUBLE (with an exponent), as
//! in ksqlDB; strings STRING; TRUE/FALSE BOOLEAN; NULL an untyped null.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::lit;
use datafusion::sql::sqlparser::ast::Value;

use super::Typed;
use crate::error::{invalid, PlanError, Result};

/// Binds a literal value.
pub fn bind_value(v: &Value) -> Result<Typed> {
    match v {
        Value::Number(n, _) => bind_number(&n.to_string()),
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) | Value::EscapedStringLiteral(s) => {
            Ok(Typed::new(lit(s.clone()), DataType::Utf8))
        }
        Value::Boolean(b) => Ok(Typed::new(lit(*b), DataType::Boolean)),
        Value::Null => Ok(Typed::new(lit(ScalarValue::Null), DataType::Null)),
        other => Err(PlanError::Unsupported { feature: format!("literal {other}") }),
    }
}

/// Binds a numeric literal written as `text` (possibly with a leading `-`).
pub fn bind_number(text: &str) -> Result<Typed> {
    if text.contains(['e', 'E']) {
        let v: f64 = text.parse().map_err(|_| invalid(format!("invalid number {text}")))?;
        if v.is_infinite() {
            return Err(PlanError::Parse(format!("Number overflows DOUBLE: {text}")));
        }
        return Ok(Typed::new(lit(v), DataType::Float64));
    }
    if let Some(dot) = text.find('.') {
        let neg = text.starts_with('-');
        let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
        let scale = (text.len() - dot - 1) as i8;
        let unscaled: i128 = digits.parse().map_err(|_| invalid(format!("number {text} is too large")))?;
        let significant = digits.trim_start_matches('0').len().max(1) as u8;
        let precision = significant.max(scale as u8).max(1);
        if precision > 38 {
            return Err(invalid(format!("number {text} has more than 38 digits")));
        }
        let v = if neg { -unscaled } else { unscaled };
        return Ok(Typed::new(
            lit(ScalarValue::Decimal128(Some(v), precision, scale)),
            DataType::Decimal128(precision, scale),
        ));
    }
    if let Ok(v) = text.parse::<i32>() {
        return Ok(Typed::new(lit(v), DataType::Int32));
    }
    if let Ok(v) = text.parse::<i64>() {
        return Ok(Typed::new(lit(v), DataType::Int64));
    }
    if text.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) {
        // ksqlDB: an integer literal must fit a BIGINT.
        return Err(PlanError::Parse(format!("Invalid numeric literal: {text}")));
    }
    bind_number(&format!("{text}.0")).map(|t| {
        let DataType::Decimal128(p, _) = t.dt else { return t };
        t.cast_to(&DataType::Decimal128(p.saturating_sub(1).max(1), 0))
    })
}

/// ksqlDB's partial datetime text, as compared with ROWTIME, WINDOWSTART and WINDOWEND:
/// `yyyy[-MM[-dd[THH[:mm[:ss[.SSS]]]]]]` with an optional zone (`Z`, `+hh:mm`, `+hhmm`,
/// `+hh`), missing parts completed with their lowest value; UTC unless a zone is given.
pub fn partial_timestamp(text: &str) -> Option<i64> {
    let s = text.trim();
    let zone_at = s.char_indices().skip(4).find(|&(i, c)| c == 'Z' || c == '+' || (c == '-' && i > 10)).map(|(i, _)| i);
    let (dt, zone) = match zone_at {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let offset_secs = match zone {
        "" | "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            let (h, m) = match digits.len() {
                2 => (digits.parse::<i32>().ok()?, 0),
                4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
                _ => return None,
            };
            sign * (h * 3600 + m * 60)
        }
    };
    let (date, time) = match dt.split_once('T') {
        Some((d, t)) => (d, t),
        None => (dt, ""),
    };
    let mut d = date.split('-');
    let year: i32 = d.next()?.parse().ok()?;
    let month: u32 = d.next().map(|x| x.parse().ok()).unwrap_or(Some(1))?;
    let day: u32 = d.next().map(|x| x.parse().ok()).unwrap_or(Some(1))?;
    if d.next().is_some() {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, b),
        None => (time, ""),
    };
    let mut t = hms.split(':').filter(|x| !x.is_empty());
    let hour: u32 = t.next().map(|x| x.parse().ok()).unwrap_or(Some(0))?;
    let minute: u32 = t.next().map(|x| x.parse().ok()).unwrap_or(Some(0))?;
    let second: u32 = t.next().map(|x| x.parse().ok()).unwrap_or(Some(0))?;
    let millis: u32 = if frac.is_empty() { 0 } else { format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()? };
    // Hour 24 is midnight of the next day, as Java's lenient parsing has it.
    let (hour, extra_day) = if hour == 24 && minute == 0 && second == 0 && millis == 0 { (0, 86_400_000) } else { (hour, 0) };
    let naive = chrono::NaiveDate::from_ymd_opt(year, month, day)?.and_hms_milli_opt(hour, minute, second, millis)?;
    Some(naive.and_utc().timestamp_millis() + extra_day - offset_secs as i64 * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_literal_types() {
        assert_eq!(bind_number("12").unwrap().dt, DataType::Int32);
        assert_eq!(bind_number("3000000000").unwrap().dt, DataType::Int64);
        assert_eq!(bind_number("1.50").unwrap().dt, DataType::Decimal128(3, 2));
        assert_eq!(bind_number("0.05").unwrap().dt, DataType::Decimal128(2, 2));
        assert_eq!(bind_number("-1.5").unwrap().dt, DataType::Decimal128(2, 1));
        assert_eq!(bind_number("1e3").unwrap().dt, DataType::Float64);
    }

    #[test]
    fn partial_datetimes() {
        assert_eq!(partial_timestamp("2018"), Some(1514764800000));
        assert_eq!(partial_timestamp("2020-02-22T23:45"), Some(1582415100000));
        assert_eq!(partial_timestamp("2020-02-22T23:45:00.5Z"), Some(1582415100500));
        assert_eq!(partial_timestamp("2020-02-22T23:45+01:00"), Some(1582411500000));
        assert_eq!(partial_timestamp("2020-02-24T24"), Some(1582588800000));
        assert_eq!(partial_timestamp("not a time"), None);
    }
}
