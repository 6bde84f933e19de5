//! ksqlDB's type rules: which types mix, what arithmetic returns, and when a value of one type
//! may stand where another is expected.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// True for INT, BIGINT, DECIMAL and DOUBLE.
pub fn is_numeric(dt: &DataType) -> bool {
    matches!(dt, DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal128(_, _))
}

/// True for STRING.
pub fn is_string(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8)
}

/// The DECIMAL an integer type widens to.
pub fn as_decimal(dt: &DataType) -> Option<(u8, i8)> {
    match dt {
        DataType::Int32 => Some((10, 0)),
        DataType::Int64 => Some((19, 0)),
        DataType::Decimal128(p, s) => Some((*p, *s)),
        _ => None,
    }
}

fn rank(dt: &DataType) -> u8 {
    match dt {
        DataType::Int32 => 1,
        DataType::Int64 => 2,
        DataType::Decimal128(_, _) => 3,
        DataType::Float64 => 4,
        _ => 0,
    }
}

/// The numeric type both sides widen to (INT < BIGINT < DECIMAL < DOUBLE).
pub fn numeric_common(a: &DataType, b: &DataType) -> Option<DataType> {
    if !is_numeric(a) || !is_numeric(b) {
        return None;
    }
    let (ra, rb) = (rank(a), rank(b));
    if ra == 3 || rb == 3 {
        if ra == 4 || rb == 4 {
            return Some(DataType::Float64);
        }
        let (p1, s1) = as_decimal(a)?;
        let (p2, s2) = as_decimal(b)?;
        let s = s1.max(s2);
        let int_digits = (p1 as i16 - s1 as i16).max(p2 as i16 - s2 as i16);
        let p = (int_digits + s as i16).clamp(1, 38) as u8;
        return Some(DataType::Decimal128(p, s));
    }
    Some(if ra >= rb { a.clone() } else { b.clone() })
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
}

/// The result type of `a op b` on numbers, with ksqlDB's DECIMAL precision and scale rules.
pub fn arithmetic_result(op: Arith, a: &DataType, b: &DataType) -> Option<DataType> {
    let common = numeric_common(a, b)?;
    let DataType::Decimal128(_, _) = common else { return Some(common) };
    let (p1, s1) = as_decimal(a)?;
    let (p2, s2) = as_decimal(b)?;
    let (p1, s1, p2, s2) = (p1 as i32, s1 as i32, p2 as i32, s2 as i32);
    let (p, s) = match op {
        Arith::Add | Arith::Sub => ((s1.max(s2)) + (p1 - s1).max(p2 - s2) + 1, s1.max(s2)),
        Arith::Mul => (p1 + p2 + 1, s1 + s2),
        Arith::Div => {
            let s = 6.max(s1 + p2 + 1);
            (p1 - s1 + s2 + s, s)
        }
        Arith::Mod => ((p1 - s1).min(p2 - s2) + s1.max(s2), s1.max(s2)),
    };
    let p = p.clamp(1, 38);
    let s = s.clamp(0, p);
    Some(DataType::Decimal128(p as u8, s as i8))
}

/// True when a value of type `from` may be used where `to` is expected without an explicit CAST
/// (INSERT VALUES, function arguments, CASE branches): numeric widening, and nulls.
pub fn can_widen(from: &DataType, to: &DataType) -> bool {
    if from == to || *from == DataType::Null {
        return true;
    }
    match (from, to) {
        (DataType::Int32, DataType::Int64 | DataType::Float64 | DataType::Decimal128(_, _)) => true,
        (DataType::Int64, DataType::Float64 | DataType::Decimal128(_, _)) => true,
        (DataType::Decimal128(_, _), DataType::Float64) => true,
        (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) => {
            (*p1 as i16 - *s1 as i16) <= (*p2 as i16 - *s2 as i16) && s1 <= s2
        }
        (DataType::List(a), DataType::List(b)) => can_widen(a.data_type(), b.data_type()),
        (DataType::Map(a, _), DataType::Map(b, _)) => can_widen(a.data_type(), b.data_type()),
        // A STRUCT coerces to any STRUCT whose fields in common with it coerce (the target's
        // other fields are null, the source's other fields dropped).
        (DataType::Struct(a), DataType::Struct(b)) => {
            a.iter().all(|x| b.iter().find(|y| y.name() == x.name()).is_none_or(|y| can_widen(x.data_type(), y.data_type())))
        }
        _ => false,
    }
}

/// The type two values of a CASE, IN list, COALESCE... share: the wider of the two.
pub fn common_type(a: &DataType, b: &DataType) -> Option<DataType> {
    if a == b {
        return Some(a.clone());
    }
    if *a == DataType::Null {
        return Some(b.clone());
    }
    if *b == DataType::Null {
        return Some(a.clone());
    }
    if let Some(n) = numeric_common(a, b) {
        return Some(n);
    }
    if can_widen(a, b) {
        return Some(b.clone());
    }
    if can_widen(b, a) {
        return Some(a.clone());
    }
    None
}

/// The TIMESTAMP type.
pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_arithmetic_follows_ksqldb() {
        let a = DataType::Decimal128(4, 2);
        let b = DataType::Decimal128(3, 1);
        assert_eq!(arithmetic_result(Arith::Add, &a, &b), Some(DataType::Decimal128(5, 2)));
        assert_eq!(arithmetic_result(Arith::Mul, &a, &b), Some(DataType::Decimal128(8, 3)));
        assert_eq!(arithmetic_result(Arith::Div, &a, &b), Some(DataType::Decimal128(9, 6)));
        assert_eq!(arithmetic_result(Arith::Add, &DataType::Int32, &DataType::Int64), Some(DataType::Int64));
        assert_eq!(arithmetic_result(Arith::Add, &a, &DataType::Float64), Some(DataType::Float64));
        assert_eq!(arithmetic_result(Arith::Add, &a, &DataType::Int32), Some(DataType::Decimal128(13, 2)));
        assert_eq!(arithmetic_result(Arith::Add, &DataType::Utf8, &DataType::Int32), None);
    }

    #[test]
    fn widening() {
        assert!(can_widen(&DataType::Int32, &DataType::Int64));
        assert!(!can_widen(&DataType::Int64, &DataType::Int32));
        assert!(!can_widen(&DataType::Utf8, &DataType::Int32));
        assert_eq!(common_type(&DataType::Null, &DataType::Utf8), Some(DataType::Utf8));
    }
}
