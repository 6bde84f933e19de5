//! The plumbing every function family shares: a DataFusion scalar UDF around a closure over
//! whole argument arrays ([`KsqlUdf`]), ksqlDB's "does not accept parameters" errors, and small
//! helpers to read arguments and build results with the canonical Arrow types.
//!
//! A closure receives every argument as an array of the batch's length (literals are expanded)
//! and returns an array of that length. When every argument is a literal it runs once, on one
//! row, and the result is a scalar, so constant sub-expressions cost one evaluation per batch.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, GenericListArray, MapArray, StructArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::binder::functions::{values, Arg};
use crate::binder::{call_udf, Typed};
use crate::error::{invalid, PlanError, Result};
use crate::types::type_name;

/// DataFusion's result type, used inside UDF bodies.
pub type DfResult<T> = datafusion::error::Result<T>;

/// The body of a [`KsqlUdf`]: argument arrays and the row count in, one array of that length out.
pub type EvalFn = dyn Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync;

/// A scalar UDF whose body is a closure over whole argument arrays.
pub struct KsqlUdf {
    name: String,
    ret: DataType,
    signature: Signature,
    f: Arc<EvalFn>,
}

impl fmt::Debug for KsqlUdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KsqlUdf").field("name", &self.name).field("ret", &self.ret).finish()
    }
}

impl PartialEq for KsqlUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.ret == other.ret && Arc::ptr_eq(&self.f, &other.f)
    }
}

impl Eq for KsqlUdf {}

impl Hash for KsqlUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.ret.hash(state);
    }
}

impl ScalarUDFImpl for KsqlUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.ret.clone())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        // The binder has cast every argument already.
        Ok(arg_types.to_vec())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let volatile = self.signature.volatility == Volatility::Volatile;
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar && !volatile { 1 } else { args.number_rows };
        let arrays = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<Vec<_>>>()?;
        let out = (self.f)(&arrays, rows)?;
        if out.len() != rows {
            return Err(DataFusionError::Execution(format!("{} returned {} rows for {rows}", self.name, out.len())));
        }
        if all_scalar && !volatile {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// A UDF named `name` returning `ret`, computed by `f`.
pub fn udf(
    name: &str,
    ret: DataType,
    f: impl Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync + 'static,
) -> Arc<ScalarUDF> {
    make(name, ret, Volatility::Immutable, Arc::new(f))
}

/// Like [`udf`], for functions whose result changes from call to call (RANDOM, UUID, clocks).
pub fn volatile_udf(
    name: &str,
    ret: DataType,
    f: impl Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync + 'static,
) -> Arc<ScalarUDF> {
    make(name, ret, Volatility::Volatile, Arc::new(f))
}

fn make(name: &str, ret: DataType, volatility: Volatility, f: Arc<EvalFn>) -> Arc<ScalarUDF> {
    let imp = KsqlUdf { name: name.to_lowercase(), ret, signature: Signature::user_defined(volatility), f };
    Arc::new(ScalarUDF::new_from_impl(imp))
}

/// The call of `f` on `args` (already cast to what `f` expects), typed `ret`.
pub fn call(
    name: &str,
    ret: DataType,
    args: Vec<Typed>,
    f: impl Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync + 'static,
) -> Typed {
    let u = udf(name, ret.clone(), f);
    Typed::new(call_udf(u, args.into_iter().map(|a| a.expr).collect()), ret)
}

/// Like [`call`] for a volatile function.
pub fn call_volatile(
    name: &str,
    ret: DataType,
    args: Vec<Typed>,
    f: impl Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync + 'static,
) -> Typed {
    let u = volatile_udf(name, ret.clone(), f);
    Typed::new(call_udf(u, args.into_iter().map(|a| a.expr).collect()), ret)
}

/// A failure inside a UDF body: the engine turns it into a null for the rows it happens on.
pub fn exec_err(msg: impl Into<String>) -> DataFusionError {
    DataFusionError::Execution(msg.into())
}

/// How ksqlDB writes a function's name in its errors.
pub fn display_name(name: &str) -> String {
    match name {
        "COALESCE" | "IFNULL" | "NULLIF" => name.to_string(),
        _ => name.to_lowercase(),
    }
}

/// How ksqlDB writes an argument type in its errors (`null` for an untyped NULL).
pub fn arg_type_name(dt: &DataType) -> String {
    if *dt == DataType::Null {
        "null".to_string()
    } else {
        type_name(dt)
    }
}

/// ksqlDB's error for a call that matches none of a function's signatures.
pub fn no_match(name: &str, args: &[Typed]) -> PlanError {
    let types: Vec<String> = args.iter().map(|a| arg_type_name(&a.dt)).collect();
    invalid(format!("Function '{}' does not accept parameters ({}).", display_name(name), types.join(", ")))
}

/// The argument values of a call that takes no lambdas (a `*` counts as no arguments, as in
/// ksqlDB, so that `F(*)` fails with "does not accept parameters ()").
pub fn plain_args(name: &str, args: Vec<Arg>) -> Result<Vec<Typed>> {
    if matches!(args.as_slice(), [Arg::Star]) {
        return Ok(Vec::new());
    }
    values(name, args)
}

/// The argument values, checking that there are between `min` and `max` of them.
pub fn arity(name: &str, args: Vec<Arg>, min: usize, max: usize) -> Result<Vec<Typed>> {
    let v = plain_args(name, args)?;
    if v.len() < min || v.len() > max {
        return Err(no_match(name, &v));
    }
    Ok(v)
}

/// True for an untyped NULL literal.
pub fn is_null(t: &Typed) -> bool {
    t.dt == DataType::Null
}

/// True when `t` may be used where a `want` is expected (same type, a NULL, or numeric widening).
pub fn accepts(t: &Typed, want: &DataType) -> bool {
    crate::binder::coerce::can_widen(&t.dt, want)
}

/// `t` as a `want` when [`accepts`] allows it, else ksqlDB's error for the whole call.
pub fn expect(name: &str, all: &[Typed], i: usize, want: &DataType) -> Result<Typed> {
    let t = &all[i];
    if accepts(t, want) {
        Ok(t.clone().cast_to(want))
    } else {
        Err(no_match(name, all))
    }
}

/// A list array with the canonical `ARRAY<item>` field from its parts.
pub fn list_array(item_type: &DataType, offsets: Vec<i32>, values: ArrayRef, nulls: Option<NullBuffer>) -> DfResult<ArrayRef> {
    let DataType::List(field) = crate::types::list_of(item_type.clone()) else { unreachable!("list_of builds a list") };
    Ok(Arc::new(GenericListArray::<i32>::try_new(field, OffsetBuffer::new(offsets.into()), values, nulls)?))
}

/// A map array with the canonical `MAP<key, value>` fields from its parts.
pub fn map_array(
    key_type: &DataType,
    value_type: &DataType,
    offsets: Vec<i32>,
    keys: ArrayRef,
    vals: ArrayRef,
    nulls: Option<NullBuffer>,
) -> DfResult<ArrayRef> {
    let DataType::Map(entries, sorted) = crate::types::map_of(key_type.clone(), value_type.clone()) else {
        unreachable!("map_of builds a map")
    };
    let DataType::Struct(fields) = entries.data_type() else { unreachable!("map entries are structs") };
    let st = StructArray::try_new(fields.clone(), vec![keys, vals], None)?;
    Ok(Arc::new(MapArray::try_new(entries, OffsetBuffer::new(offsets.into()), st, nulls, sorted)?))
}

/// The element type of a list type.
pub fn item_type(dt: &DataType) -> Option<&DataType> {
    match dt {
        DataType::List(f) => Some(f.data_type()),
        _ => None,
    }
}

/// The key and value types of a map type.
pub fn map_types(dt: &DataType) -> Option<(&DataType, &DataType)> {
    match dt {
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => Some((kv[0].data_type(), kv[1].data_type())),
            _ => None,
        },
        _ => None,
    }
}

/// A null buffer from per-row validity flags (None when every row is valid).
pub fn nulls_from(valid: &[bool]) -> Option<NullBuffer> {
    if valid.iter().all(|v| *v) {
        None
    } else {
        Some(NullBuffer::from(valid.to_vec()))
    }
}

/// Reads a string argument array.
pub fn strings(a: &ArrayRef) -> &datafusion::arrow::array::StringArray {
    a.as_string::<i32>()
}

/// A constant of type `dt` as an argument.
pub fn literal(v: ScalarValue, dt: DataType) -> Typed {
    Typed::new(datafusion::logical_expr::lit(v), dt)
}
