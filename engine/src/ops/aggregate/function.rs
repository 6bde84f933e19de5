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

/// The error for argument types `name` does not take, worded as ksqlDB words it
/// (`Function 'SUM' does not accept parameters (STRING).`), plus what it does take.
pub fn wrong_types(name: &str, args: &[DataType], takes: &str) -> AggError {
    let types: Vec<String> = args.iter().map(sql_type_name).collect();
    AggError::Arguments(format!("Function '{name}' does not accept parameters ({}). It takes {takes}", types.join(", ")))
}

/// How ksqlDB writes an Arrow type (`INTEGER`, `ARRAY<STRING>`, `STRUCT<`A` INTEGER>`), for messages.
pub fn sql_type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 | DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 => "STRING".into(),
        DataType::Binary | DataType::LargeBinary => "BYTES".into(),
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time32(_) => "TIME".into(),
        DataType::List(f) => format!("ARRAY<{}>", sql_type_name(f.data_type())),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("MAP<{}, {}>", sql_type_name(kv[0].data_type()), sql_type_name(kv[1].data_type()))
            }
            other => other.to_string(),
        },
        DataType::Struct(fs) => {
            let fields: Vec<String> = fs.iter().map(|f| format!("`{}` {}", f.name(), sql_type_name(f.data_type()))).collect();
            format!("STRUCT<{}>", fields.join(", "))
        }
        DataType::Null => "NULL".into(),
        other => other.to_string(),
    }
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
    /// True when merging states gives exactly the state of adding their rows in any order
    /// (counts, integer sums, MIN and MAX of ordered values; not floating-point sums, whose
    /// rounding depends on the order, nor order-keeping aggregates). Hopping windows then keep
    /// one state per pane and merge panes when a window closes (`ops::aggregate::panes`).
    fn merges_exactly(&self) -> bool {
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
