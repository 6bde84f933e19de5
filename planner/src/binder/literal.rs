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
    bind_number(&format!("{text}.0")).map(|t| {
        let DataType::Decimal128(p, _) = t.dt else { return t };
        t.cast_to(&DataType::Decimal128(p.saturating_sub(1).max(1), 0))
    })
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
}
