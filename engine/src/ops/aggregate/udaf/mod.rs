//! ksqlDB's aggregate functions beyond COUNT, SUM, AVG, MIN and MAX, plus PERCENTILE_APPROX.
//!
//! One family per file; each file's header gives its state layout and size bound. Shared here:
//! literal parameter parsing and varints for state bytes.
//!
//! | function | result | tables | state bound |
//! |---|---|---|---|
//! | COUNT_DISTINCT(x) | BIGINT | no | 4 KiB (512 hashes, then HyperLogLog p=12) |
//! | TOPK(x, k), TOPKDISTINCT(x, k) | ARRAY<x> | no | k ≤ 1000 values |
//! | LATEST_BY_OFFSET, EARLIEST_BY_OFFSET (x [, n] [, ignoreNulls]) | x or ARRAY<x> | no | n ≤ 1000 values |
//! | COLLECT_LIST(x), COLLECT_SET(x) | ARRAY<x> | yes | 1000 values |
//! | HISTOGRAM(s) | MAP<STRING, BIGINT> | yes | 1000 keys |
//! | ATTR(x) | x | yes | 32 distinct values and a counter |
//! | STDDEV_SAMP, STDDEV_SAMPLE, STDDEV_POP, VARIANCE, VAR_SAMP, VAR_POP (x) | DOUBLE | yes | 24 bytes |
//! | CORRELATION(x, y) | DOUBLE | yes | 48 bytes |
//! | PERCENTILE_APPROX(x, fraction) | DOUBLE | no | ~4 KiB (t-digest, δ = 100) |

mod attr;
mod collect;
mod distinct;
mod histogram;
mod offset;
mod percentile;
mod stats;
mod topk;
pub(crate) mod value;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::function::{AggError, AggFunctionRef};

/// Names of the functions in this module.
pub const NAMES: &[&str] = &[
    "COUNT_DISTINCT",
    "TOPK",
    "TOPKDISTINCT",
    "LATEST_BY_OFFSET",
    "EARLIEST_BY_OFFSET",
    "COLLECT_LIST",
    "COLLECT_SET",
    "HISTOGRAM",
    "ATTR",
    "STDDEV_SAMP",
    "STDDEV_SAMPLE",
    "STDDEV_POP",
    "VARIANCE",
    "VAR_SAMP",
    "VAR_POP",
    "CORRELATION",
    "PERCENTILE_APPROX",
];

/// Largest k of TOPK, n of LATEST_BY_OFFSET and the like: bounds the state.
pub const MAX_N: i64 = 1000;

/// Binds one of [`NAMES`] (upper-case) to its argument types and literal parameters.
pub(crate) fn create(name: &str, args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    match name {
        "COUNT_DISTINCT" => distinct::create(args, params),
        "TOPK" | "TOPKDISTINCT" => topk::create(name, args, params),
        "LATEST_BY_OFFSET" | "EARLIEST_BY_OFFSET" => offset::create(name, args, params),
        "COLLECT_LIST" | "COLLECT_SET" => collect::create(name, args, params),
        "HISTOGRAM" => histogram::create(args, params),
        "ATTR" => attr::create(args, params),
        "CORRELATION" => stats::create_correlation(args, params),
        "STDDEV_SAMP" | "STDDEV_SAMPLE" | "STDDEV_POP" | "VARIANCE" | "VAR_SAMP" | "VAR_POP" => {
            stats::create(name, args, params)
        }
        "PERCENTILE_APPROX" => percentile::create(args, params),
        other => Err(AggError::Unknown(other.to_string())),
    }
}

/// Checks that `name` got exactly `n` column arguments; a surplus column argument stands where
/// a literal parameter belongs.
fn columns<'a>(name: &str, args: &'a [DataType], n: usize) -> Result<&'a [DataType], AggError> {
    if args.len() > n {
        return Err(AggError::Arguments(format!(
            "Parameter {} passed to function {name} must be a literal constant, but was an expression",
            n + 1
        )));
    }
    if args.len() < n {
        return Err(AggError::Arguments(format!("{name} takes {n} column argument(s), got {}", args.len())));
    }
    Ok(args)
}

/// A literal integer parameter in `1..=max`.
fn int_param(name: &str, what: &str, v: &ScalarValue, max: i64) -> Result<i64, AggError> {
    let n = match v {
        ScalarValue::Int8(Some(x)) => *x as i64,
        ScalarValue::Int16(Some(x)) => *x as i64,
        ScalarValue::Int32(Some(x)) => *x as i64,
        ScalarValue::Int64(Some(x)) => *x,
        other => {
            return Err(AggError::Arguments(format!("{name}: {what} must be an INTEGER literal, got {other}")));
        }
    };
    if n < 1 || n > max {
        return Err(AggError::Arguments(format!("{name}: {what} must be between 1 and {max}, got {n}")));
    }
    Ok(n)
}

/// True if `v` is an integer literal.
fn is_int(v: &ScalarValue) -> bool {
    matches!(v, ScalarValue::Int8(_) | ScalarValue::Int16(_) | ScalarValue::Int32(_) | ScalarValue::Int64(_))
}

/// Fails when more than `n` literal parameters were given.
fn at_most(name: &str, params: &[ScalarValue], n: usize) -> Result<(), AggError> {
    if params.len() > n {
        return Err(AggError::Arguments(format!(
            "Function '{name}' does not accept {} literal parameter(s): it takes at most {n}",
            params.len()
        )));
    }
    Ok(())
}

/// Appends `v` as a LEB128 varint.
pub(crate) fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint at `*at`, advancing it.
pub(crate) fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Reads 8 little-endian bytes at `*at` as a double, advancing it.
pub(crate) fn get_f64(b: &[u8], at: &mut usize) -> Option<f64> {
    let s = b.get(*at..*at + 8)?;
    *at += 8;
    Some(f64::from_bits(u64::from_le_bytes(s.try_into().ok()?)))
}

/// The numeric value of row `row` of a numeric column as a double (`None` for null).
pub(crate) fn number_at(a: &datafusion::arrow::array::ArrayRef, row: usize) -> Option<f64> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Decimal128Type, Float64Type, Int32Type, Int64Type};
    if a.is_null(row) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Int32 => a.as_primitive::<Int32Type>().value(row) as f64,
        DataType::Int64 => a.as_primitive::<Int64Type>().value(row) as f64,
        DataType::Float64 => a.as_primitive::<Float64Type>().value(row),
        DataType::Decimal128(_, s) => a.as_primitive::<Decimal128Type>().value(row) as f64 / 10f64.powi(*s as i32),
        other => panic!("numeric aggregate bound to {other}"),
    })
}

/// True for the numeric SQL types (INT, BIGINT, DOUBLE, DECIMAL).
pub(crate) fn is_numeric(t: &DataType) -> bool {
    matches!(t, DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal128(_, _))
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut b = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            put_varint(v, &mut b);
        }
        let mut at = 0;
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(get_varint(&b, &mut at), Some(v));
        }
        assert_eq!(at, b.len());
        assert_eq!(get_varint(&[0x80], &mut 0), None);
    }

    #[test]
    fn every_name_binds_or_explains() {
        for n in NAMES {
            match create(n, &[DataType::Int64], &[]) {
                Ok(f) => assert_eq!(f.name(), *n),
                Err(e) => assert!(!e.to_string().is_empty(), "{n}"),
            }
        }
    }
}
