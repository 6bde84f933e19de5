//! ksqlDB's aggregate functions beyond COUNT, SUM, AVG, MIN and MAX, plus PERCENTILE_APPROX.
//!
//! One family per file; each file's header gives its state layout and size bound. Shared here:
//! literal parameter parsing and varints for state bytes.
//!
//! | function | result | tables | state bound (saved bytes) |
//! |---|---|---|---|
//! | COUNT_DISTINCT(x) | BIGINT | no | 4 KiB: 512 exact hashes, then a HyperLogLog (p = 12) |
//! | TOPK(x, k), TOPKDISTINCT(x, k) | ARRAY<x> | no | k ≤ 1000 values |
//! | LATEST_BY_OFFSET, EARLIEST_BY_OFFSET (x [, n] [, ignoreNulls]) | x or ARRAY<x> | no | n ≤ 1000 values |
//! | COLLECT_LIST(x), COLLECT_SET(x) | ARRAY<x> | yes | 1000 values (a limit parameter: ≤ 10000) |
//! | HISTOGRAM(s) | MAP<STRING, BIGINT> | yes | 1000 distinct strings |
//! | ATTR(x) | x | yes | 32 distinct values and a counter |
//! | STDDEV_SAMP, STDDEV_SAMPLE, STDDEV_POP, VARIANCE, VAR_SAMP, VAR_POP (x) | DOUBLE | yes | 17–26 bytes |
//! | CORRELATION(x, y) | DOUBLE | yes | 42–60 bytes |
//! | PERCENTILE_APPROX(x, fraction) | DOUBLE | no | < 5 KiB: ≤ 256 centroids and 63 buffered values |
//!
//! COLLECT_LIST, COLLECT_SET and HISTOGRAM also stop taking new values once the values they hold
//! reach [`MAX_VALUE_BYTES`] (as they stop at their count limit). The other states hold at most
//! 1000 values, each no larger than its input record. Results are rebuilt after every update
//! (the operator emits one row per input row), so functions returning collections cost time in
//! their size per row.

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

/// Bytes of strings, bytes and nested values a collecting state (COLLECT_LIST, COLLECT_SET,
/// HISTOGRAM) holds at most; values beyond are ignored like values beyond the count limit.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

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

    /// Per-row cost (update + evaluate, as the operator does) of each function over 1M rows
    /// in one group. Run: `cargo test --release -p eddy-engine per_row_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn per_row_cost() {
        use super::testing::{bind, ints, strs};
        let n = 1_000_000usize;
        let nums = ints(&(0..n as i64).map(|i| Some((i * 7919) % 10007)).collect::<Vec<_>>());
        let words: Vec<String> = (0..n).map(|i| format!("w{}", (i * 7919) % 5003)).collect();
        let words = strs(&words.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>());
        let three = ScalarValue::Int32(Some(3));
        type Case<'a> = (&'a str, Vec<DataType>, Vec<ScalarValue>, Vec<datafusion::arrow::array::ArrayRef>);
        let cases: Vec<Case> = vec![
            ("COUNT", vec![DataType::Int64], vec![], vec![nums.clone()]),
            ("COUNT_DISTINCT", vec![DataType::Int64], vec![], vec![nums.clone()]),
            ("COUNT_DISTINCT", vec![DataType::Utf8], vec![], vec![words.clone()]),
            ("TOPK", vec![DataType::Int64], vec![three.clone()], vec![nums.clone()]),
            ("TOPKDISTINCT", vec![DataType::Utf8], vec![three.clone()], vec![words.clone()]),
            ("LATEST_BY_OFFSET", vec![DataType::Int64], vec![], vec![nums.clone()]),
            ("LATEST_BY_OFFSET", vec![DataType::Utf8], vec![], vec![words.clone()]),
            ("EARLIEST_BY_OFFSET", vec![DataType::Int64], vec![three.clone()], vec![nums.clone()]),
            ("COLLECT_LIST", vec![DataType::Int64], vec![ScalarValue::Int32(Some(10))], vec![nums.clone()]),
            ("COLLECT_SET", vec![DataType::Int64], vec![ScalarValue::Int32(Some(10))], vec![nums.clone()]),
            ("HISTOGRAM", vec![DataType::Utf8], vec![], vec![words.clone()]),
            ("ATTR", vec![DataType::Int64], vec![], vec![nums.clone()]),
            ("STDDEV_SAMP", vec![DataType::Int64], vec![], vec![nums.clone()]),
            ("CORRELATION", vec![DataType::Int64, DataType::Int64], vec![], vec![nums.clone(), nums.clone()]),
            ("PERCENTILE_APPROX", vec![DataType::Int64], vec![ScalarValue::Float64(Some(0.5))], vec![nums.clone()]),
        ];
        for (name, types, params, args) in cases {
            let f = bind(name, &types, &params);
            let mut st = f.new_state();
            let start = std::time::Instant::now();
            let mut sink = 0usize;
            for i in 0..n {
                st.update(&args, i);
                sink += st.evaluate().size();
            }
            let ns = start.elapsed().as_nanos() as f64 / n as f64;
            eprintln!("{name:>20}({:<6}) {ns:>8.1} ns/row  (checksum {sink})", format!("{}", types[0]));
        }
    }
}
