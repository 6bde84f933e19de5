//! ksqlDB's scalar function library, family by family, registered into the binder's
//! [`FunctionRegistry`]. Names and semantics follow ksqlDB; DataFusion's own functions remain
//! available under their names for everything not listed here.
//!
//! Each family checks its argument types when a call is bound (with ksqlDB's "Function 'x' does
//! not accept parameters (...)" errors) and evaluates through a columnar UDF ([`udf::KsqlUdf`]).
//! Expected bad inputs (an unparsable date, a malformed JSON document) give NULL for the row.

pub mod array;
pub mod array_set;
pub mod bytes;
pub mod cast;
pub mod compare;
pub mod construct;
pub mod datetime;
pub mod docs;
pub mod json;
pub mod lambda;
pub mod map;
pub mod mask;
pub mod math;
pub mod nested;
pub mod regex;
pub mod string;
pub mod udf;
pub mod url;
pub mod value;

use crate::binder::functions::FunctionRegistry;

/// Registers every function of this library.
pub fn register_all(registry: &mut FunctionRegistry) {
    string::register(registry);
    mask::register(registry);
    regex::register(registry);
    bytes::register(registry);
    compare::register(registry);
    math::register(registry);
    datetime::register(registry);
    json::register(registry);
    url::register(registry);
    array::register(registry);
    array_set::register(registry);
    map::register(registry);
    lambda::register(registry);
    construct::register(registry);
}
