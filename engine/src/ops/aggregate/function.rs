//! Aggregate functions: the traits every UDAF implements and the registry the planner asks.
//!
//! An [`AggFunction`] is bound to its argument types (and literal parameters such as TOPK's k);
//! it creates one [`AggState`] per group (and window). States add rows, take them back again
//! (table aggregations retract the old value of a changed row), merge (session windows), give
//! their current result, and serialise themselves for the state store.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

/// Why an aggregate call is refused.
#[derive(Debug, thiserror::Error)]
pub enum AggError {
    /// No aggregate of this name.
    #[error("unknown aggregate function {0}")]
    Unknown(String),
    /// The arguments do not fit.
    #[error("{0}")]
    Arguments(String),
    /// Saved state that cannot be read back.
    #[error("corrupt state of aggregate {0}")]
    Corrupt(&'static str),
}

/// One aggregate call, bound to its argument types.
pub trait AggFunction: Send + Sync + std::fmt::Debug {
    /// Upper-case name, e.g. `COUNT`.
    fn name(&self) -> &'static str;
    /// Type of the result.
    fn return_type(&self) -> DataType;
    /// A state for a new group.
    fn new_state(&self) -> Box<dyn AggState>;
    /// A state saved by [`AggState::save`].
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn AggState>, AggError>;
    /// True when states can take rows back (needed to aggregate a table).
    fn supports_retract(&self) -> bool {
        false
    }
}

/// The running value of one aggregate for one group.
pub trait AggState: Send + std::fmt::Debug {
    /// Adds row `row` of the argument columns.
    fn update(&mut self, args: &[ArrayRef], row: usize);
    /// Takes back a row added before. Only called when the function supports retraction.
    fn retract(&mut self, _args: &[ArrayRef], _row: usize) {}
    /// Adds everything `other` (a state of the same function) has seen.
    fn merge(&mut self, other: &dyn AggState);
    /// The current result.
    fn evaluate(&self) -> ScalarValue;
    /// Appends the serialised state.
    fn save(&self, out: &mut Vec<u8>);
    /// The state as `Any`, for `merge`.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A shared, bound aggregate function.
pub type AggFunctionRef = Arc<dyn AggFunction>;

/// Binds aggregate `name` to argument types and literal parameters (e.g. TOPK's k).
pub fn create_aggregate(name: &str, args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    super::registry::create(&name.to_uppercase(), args, params)
}

/// Names of all aggregate functions.
pub fn names() -> &'static [&'static str] {
    super::registry::NAMES
}

/// True if `name` is an aggregate function.
pub fn is_aggregate(name: &str) -> bool {
    super::registry::NAMES.contains(&name.to_uppercase().as_str())
}
