//! ksqlDB's implicit coercion of literals and of expression lists (its "Type coercion" page):
//!
//! - any literal may become a STRING; a STRING literal holding a number may become a number of a
//!   type wide enough for it (`'2e1'` is a DECIMAL(2, 0)); one holding a boolean (`true`,
//!   `false`, `yes`, `no`, or a prefix of one of these, any case) may become a BOOLEAN;
//! - in a list of expressions (the elements of ARRAY[...], MAP values, an IN list with its left
//!   side) the first non-null element decides: a STRING makes every other element a STRING (only
//!   literals may be converted), a number makes the list the narrowest numeric type holding every
//!   number (string literals included), a BOOLEAN makes it BOOLEAN; ARRAYs, MAPs and STRUCTs
//!   combine their element, key, value and field types the same way, STRUCTs taking the union
//!   of the fields.

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{lit, Expr};

use super::coerce::{is_numeric, numeric_common};
use super::{call_udf, Binder, Typed};
use crate::error::{invalid, Result};
use crate::functions::udf::literal;
use crate::types::type_name;

/// The text of a STRING literal.
pub fn string_literal(t: &Typed) -> Option<&str> {
    match &t.expr {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _) if t.dt == DataType::Utf8 => Some(s),
        _ => None,
    }
}

/// True for a literal (a negated number included).
pub fn is_literal(t: &Typed) -> bool {
    match &t.expr {
        Expr::Literal(..) => true,
        Expr::Negative(e) => matches!(e.as_ref(), Expr::Literal(..)),
        _ => false,
    }
}

/// A number written as text: its unscaled digits and scale (never negative), as BigDecimal
/// reads it (`'2e1'` is 20, `' 1.50 '` is 150 with scale 2).
pub fn parse_decimal(text: &str) -> Option<(i128, i8)> {
    let s = text.trim();
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, m) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    if int.is_empty() && frac.is_empty() || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut unscaled: i128 = digits.parse().ok()?;
    let mut scale = frac.len() as i32 - exp;
    while scale < 0 {
        unscaled = unscaled.checked_mul(10)?;
        scale += 1;
    }
    if scale > 38 {
        return None;
    }
    Some((if neg { -unscaled } else { unscaled }, scale as i8))
}

/// The DECIMAL type of a number written as text (precision at least its scale, as ksqlDB has it).
pub fn decimal_type_of(text: &str) -> Option<DataType> {
    let (unscaled, scale) = parse_decimal(text)?;
    let digits = unscaled.unsigned_abs().to_string().len() as u8;
    let precision = digits.max(scale as u8).max(1);
    (precision <= 38).then_some(DataType::Decimal128(precision, scale))
}

/// A boolean written as text: `true`, `false`, `yes`, `no` or a prefix of one, any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim().to_lowercase();
    if t.is_empty() {
        return None;
    }
    if "true".starts_with(&t) || "yes".starts_with(&t) {
        Some(true)
    } else if "false".starts_with(&t) || "no".starts_with(&t) {
        Some(false)
    } else {
        None
    }
}

/// The type a literal of type `t` may take to stand beside a value of type `want`, if any.
fn literal_as(t: &Typed, want: &DataType) -> Option<DataType> {
    if *want == DataType::Utf8 {
        return Some(DataType::Utf8);
    }
    let s = string_literal(t)?;
    if is_numeric(want) {
        return numeric_common(&decimal_type_of(s)?, want);
    }
    if *want == DataType::Boolean {
        return parse_bool(s).map(|_| DataType::Boolean);
    }
    // Text for a time type is read by the type's parser when converted.
    if matches!(want, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Time32(_)) {
        return Some(want.clone());
    }
    None
}

/// The type `acc` (the list's type so far) and `t` share, with the literal rules.
fn combine(acc: &DataType, t: &Typed) -> Option<DataType> {
    if *acc == DataType::Null {
        return Some(t.dt.clone());
    }
    if t.dt == DataType::Null || t.dt == *acc {
        return Some(acc.clone());
    }
    if is_literal(t) {
        if let Some(x) = literal_as(t, acc) {
            return Some(x);
        }
    }
    common(acc, &t.dt)
}

/// The common type of two types by the general rules: numeric widening; ARRAYs, MAPs and
/// STRUCTs element-, key-, value- and field-wise, STRUCTs with the union of their fields.
pub fn common(a: &DataType, b: &DataType) -> Option<DataType> {
    if a == b {
        return Some(a.clone());
    }
    match (a, b) {
        (DataType::Null, x) | (x, DataType::Null) => Some(x.clone()),
        (x, y) if is_numeric(x) && is_numeric(y) => numeric_common(x, y),
        (DataType::List(x), DataType::List(y)) => Some(crate::types::list_of(common(x.data_type(), y.data_type())?)),
        (DataType::Map(x, _), DataType::Map(y, _)) => {
            let (DataType::Struct(xf), DataType::Struct(yf)) = (x.data_type(), y.data_type()) else { return None };
            let k = common(xf[0].data_type(), yf[0].data_type())?;
            let v = common(xf[1].data_type(), yf[1].data_type())?;
            Some(crate::types::map_of(k, v))
        }
        (DataType::Struct(x), DataType::Struct(y)) => {
            let mut out: Vec<Field> = x.iter().map(|f| f.as_ref().clone()).collect();
            for f in y.iter() {
                match out.iter_mut().find(|o| o.name() == f.name()) {
                    Some(o) => *o = Field::new(f.name(), common(o.data_type(), f.data_type())?, true),
                    None => out.push(f.as_ref().clone()),
                }
            }
            Some(DataType::Struct(Fields::from(out)))
        }
        _ => None,
    }
}

/// The type every item of an expression list takes; `what` names the list in the error.
pub fn list_type(items: &[&Typed], what: &str) -> Result<DataType> {
    let mut acc = DataType::Null;
    for t in items {
        acc = match combine(&acc, t) {
            Some(x) => x,
            None => match string_literal(t) {
                Some(s) if is_numeric(&acc) || acc == DataType::Boolean => {
                    return Err(invalid(format!("invalid input syntax for type {}: \"{s}\".", type_name(&acc))))
                }
                _ => {
                    let types: Vec<String> = items.iter().map(|t| type_name(&t.dt)).collect();
                    return Err(invalid(format!("{what} must have one type, got {}", types.join(", "))));
                }
            },
        };
    }
    Ok(acc)
}

/// `t` converted to `to`: literals converted now (an error naming the text when one does not
/// convert), STRUCTs rebuilt field by field, anything else cast.
pub fn coerce_to(b: &Binder<'_>, t: Typed, to: &DataType) -> Result<Typed> {
    if t.dt == *to || t.dt == DataType::Null {
        return Ok(t.cast_to(to));
    }
    if let Some(s) = string_literal(&t) {
        let bad = || invalid(format!("invalid input syntax for type {}: \"{s}\".", type_name(to)));
        let v = match to {
            DataType::Boolean => ScalarValue::Boolean(Some(parse_bool(s).ok_or_else(bad)?)),
            DataType::Int32 | DataType::Int64 | DataType::Decimal128(_, _) => {
                let (unscaled, scale) = parse_decimal(s).ok_or_else(bad)?;
                let (p, want_scale) = match to {
                    DataType::Decimal128(p, s) => (*p, *s),
                    _ => (38, 0),
                };
                if scale > want_scale {
                    return Err(bad());
                }
                let v = unscaled.checked_mul(10i128.pow((want_scale - scale) as u32)).ok_or_else(bad)?;
                match to {
                    DataType::Int32 => ScalarValue::Int32(Some(i32::try_from(v).map_err(|_| bad())?)),
                    DataType::Int64 => ScalarValue::Int64(Some(i64::try_from(v).map_err(|_| bad())?)),
                    _ => {
                        if v.unsigned_abs() >= 10u128.pow(p as u32) {
                            return Err(bad());
                        }
                        ScalarValue::Decimal128(Some(v), p, want_scale)
                    }
                }
            }
            DataType::Float64 => ScalarValue::Float64(Some(s.trim().parse::<f64>().map_err(|_| bad())?)),
            _ => return b.cast(t, to),
        };
        return Ok(literal(v, to.clone()));
    }
    if *to == DataType::Utf8 && is_literal(&t) {
        return b.cast(t, to);
    }
    if let (DataType::Struct(from), DataType::Struct(want)) = (&t.dt, to) {
        let get = b.functions.datafusion("get_field").expect("DataFusion's get_field");
        let mut args = Vec::new();
        for f in want.iter() {
            args.push(lit(f.name().as_str()));
            let v = match from.iter().find(|x| x.name() == f.name()) {
                Some(x) => Typed::new(call_udf(get.clone(), vec![t.expr.clone(), lit(f.name().as_str())]), x.data_type().clone()),
                None => Typed::new(lit(ScalarValue::Null), DataType::Null),
            };
            args.push(coerce_to(b, v, f.data_type())?.expr);
        }
        if want.is_empty() {
            return Ok(t.cast_to(to));
        }
        let named = b.functions.datafusion("named_struct").expect("DataFusion's named_struct");
        return Ok(Typed::new(call_udf(named, args), to.clone()));
    }
    Ok(t.cast_to(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_text() {
        assert_eq!(parse_decimal("2e1"), Some((20, 0)));
        assert_eq!(parse_decimal(" 1.50 "), Some((150, 2)));
        assert_eq!(parse_decimal("-3"), Some((-3, 0)));
        assert_eq!(parse_decimal("1.5e-1"), Some((15, 2)));
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal("."), None);
        assert_eq!(decimal_type_of("2e1"), Some(DataType::Decimal128(2, 0)));
        assert_eq!(decimal_type_of("0.05"), Some(DataType::Decimal128(2, 2)));
    }

    #[test]
    fn booleans_in_text() {
        assert_eq!(parse_bool("y"), Some(true));
        assert_eq!(parse_bool("FAL"), Some(false));
        assert_eq!(parse_bool("No"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn general_rules() {
        assert_eq!(common(&DataType::Int32, &DataType::Int64), Some(DataType::Int64));
        assert_eq!(common(&DataType::Int64, &DataType::Decimal128(2, 0)), Some(DataType::Decimal128(19, 0)));
        let a = DataType::Struct(Fields::from(vec![Field::new("A", DataType::Int32, true)]));
        let b = DataType::Struct(Fields::from(vec![Field::new("A", DataType::Int64, true), Field::new("B", DataType::Utf8, true)]));
        assert_eq!(
            common(&a, &b),
            Some(DataType::Struct(Fields::from(vec![Field::new("A", DataType::Int64, true), Field::new("B", DataType::Utf8, true)])))
        );
        assert_eq!(common(&DataType::Utf8, &DataType::Int32), None);
    }
}
