//! The aggregate function registry: every name the planner may call, and where it binds.
//!
//! COUNT, SUM, AVG, MIN and MAX live in `builtin.rs`; the others (COUNT_DISTINCT, TOPK, ...) in
//! `udaf/`, one family per file.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::function::{AggError, AggFunctionRef};
use super::{builtin, udaf};

/// Names of all aggregate functions, upper-case.
pub const NAMES: &[&str] = &[
    "COUNT",
    "SUM",
    "SUM_LIST",
    "AVG",
    "MIN",
    "MAX",
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

/// Binds `name` (upper-case) to argument types and literal parameters.
pub(super) fn create(name: &str, args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    if builtin::NAMES.contains(&name) {
        builtin::create(name, args, params)
    } else if udaf::NAMES.contains(&name) {
        udaf::create(name, args, params)
    } else {
        Err(AggError::Unknown(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_both_modules() {
        for n in builtin::NAMES.iter().chain(udaf::NAMES) {
            assert!(NAMES.contains(n), "{n} missing");
        }
        assert_eq!(NAMES.len(), builtin::NAMES.len() + udaf::NAMES.len());
    }
}
