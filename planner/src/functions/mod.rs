//! ksqlDB's scalar function library, family by family, registered into the binder's
//! [`FunctionRegistry`]. Names and semantics follow ksqlDB; DataFusion's own functions remain
//! available under their names for everything not listed here.

use crate::binder::functions::FunctionRegistry;

/// Registers every function of this library.
pub fn register_all(_registry: &mut FunctionRegistry) {}
