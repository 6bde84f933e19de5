//! ksqlDB's NULL-handling and choosing functions: IFNULL, COALESCE, NULLIF, LEAST, GREATEST,
//! and AS_VALUE (the identity: the planner reads it to keep a key column in the value).
//!
//! LEAST and GREATEST resolve like ksqlDB's overloads: arguments of one type (any DECIMALs
//! together) use that type, numbers mixing in a DOUBLE use DOUBLE, other numeric mixes are
//! ambiguous; DATE, TIME and TIMESTAMP accept string literals. NULL arguments are skipped.

use datafusion::arrow::array::{new_null_array, ArrayRef, BooleanArray};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Case, Expr};

use super::udf::{arg_type_name, call, display_name, exec_err, is_null, no_match, plain_args};
use super::value;
use crate::binder::coerce::{common_type, is_numeric};
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{call_udf, Binder, Typed};
use crate::error::{invalid, Result};

/// Registers IFNULL, COALESCE, NULLIF, LEAST and GREATEST.
pub fn register(r: &mut FunctionRegistry) {
    r.register("IFNULL", coalesce);
    r.register("COALESCE", coalesce);
    r.register("NULLIF", nullif);
    r.register("LEAST", least_greatest);
    r.register("GREATEST", least_greatest);
    r.register("AS_VALUE", as_value);
}

fn as_value(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = plain_args(name, args)?;
    match <[Typed; 1]>::try_from(v) {
        Ok([x]) => Ok(x),
        Err(v) => Err(no_match(name, &v)),
    }
}

/// The type all `args` share (widening numbers), or ksqlDB's error.
fn unify(name: &str, args: &[Typed]) -> Result<DataType> {
    let mut t = DataType::Null;
    for a in args {
        t = common_type(&t, &a.dt).ok_or_else(|| no_match(name, args))?;
    }
    Ok(t)
}

fn coalesce(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = plain_args(name, args)?;
    let ok_count = if name == "IFNULL" { v.len() == 2 } else { !v.is_empty() };
    if !ok_count {
        let types: Vec<String> = v.iter().map(|a| arg_type_name(&a.dt)).collect();
        return Err(invalid(format!("Function '{}' does not accept parameters ({})", display_name(name), types.join(", "))));
    }
    let t = unify(name, &v)?;
    // CASE WHEN a IS NOT NULL THEN a ... ELSE last END: later arguments are evaluated only for
    // the rows that need them (DataFusion's own coalesce only exists to be rewritten this way).
    let mut v: Vec<Expr> = v.into_iter().map(|a| a.cast_to(&t).expr).collect();
    let last = v.pop().expect("at least one argument");
    let when_then = v.into_iter().map(|e| (Box::new(e.clone().is_not_null()), Box::new(e))).collect::<Vec<_>>();
    if when_then.is_empty() {
        return Ok(Typed::new(last, t));
    }
    Ok(Typed::new(Expr::Case(Case::new(None, when_then, Some(Box::new(last)))), t))
}

fn nullif(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = plain_args(name, args)?;
    if v.len() != 2 {
        return Err(no_match(name, &v));
    }
    let t = unify(name, &v)?;
    let v: Vec<Typed> = v.into_iter().map(|a| a.cast_to(&t)).collect();
    Ok(call("nullif", t, v, |a, n| {
        let same: BooleanArray = (0..n).map(|i| Some(a[0].is_valid(i) && a[1].is_valid(i) && value::equal(a[0].as_ref(), i, a[1].as_ref(), i))).collect();
        let nulls = new_null_array(a[0].data_type(), n);
        Ok(zip(&same, &nulls, &a[0]).map_err(|e| exec_err(e.to_string()))? as ArrayRef)
    }))
}

fn is_temporal(dt: &DataType) -> bool {
    matches!(dt, DataType::Date32 | DataType::Time32(_) | DataType::Timestamp(_, _))
}

/// The type LEAST/GREATEST compute in, following ksqlDB's overload resolution.
fn least_type(name: &str, v: &[Typed]) -> Result<DataType> {
    let typed: Vec<&DataType> = v.iter().filter(|a| !is_null(a)).map(|a| &a.dt).collect();
    let ambiguous = || {
        let types: Vec<String> = v.iter().map(|a| arg_type_name(&a.dt)).collect();
        invalid(format!("Function '{}' cannot be resolved due to ambiguous method parameters ({}).", display_name(name), types.join(", ")))
    };
    let Some(first) = typed.first() else {
        return Err(if v.is_empty() { no_match(name, v) } else { ambiguous() });
    };
    if typed.iter().all(|t| *t == *first) {
        return Ok((*first).clone());
    }
    if typed.iter().all(|t| is_numeric(t)) {
        if typed.iter().all(|t| matches!(t, DataType::Decimal128(_, _))) {
            return typed.iter().try_fold(DataType::Null, |acc, t| common_type(&acc, t)).ok_or_else(|| no_match(name, v));
        }
        if typed.contains(&&DataType::Float64) {
            return Ok(DataType::Float64);
        }
        return Err(ambiguous());
    }
    let temporal: Vec<&&DataType> = typed.iter().filter(|t| is_temporal(t)).collect();
    if let Some(t) = temporal.first() {
        if temporal.iter().all(|x| x == t) && typed.iter().all(|x| is_temporal(x) || **x == DataType::Utf8) {
            return Ok((**t).clone());
        }
    }
    Err(no_match(name, v))
}

fn least_greatest(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = plain_args(name, args)?;
    let t = least_type(name, &v)?;
    let mut cast = Vec::with_capacity(v.len());
    for a in v {
        cast.push(if a.dt == DataType::Utf8 && t != DataType::Utf8 { b.cast(a, &t)? } else { a.cast_to(&t) });
    }
    let udf = b.functions.datafusion(&name.to_lowercase()).expect("DataFusion's least and greatest");
    if cast.len() == 1 {
        return Ok(cast.pop().expect("one argument"));
    }
    Ok(Typed::new(call_udf(udf, cast.into_iter().map(|a| a.expr).collect()), t))
}
