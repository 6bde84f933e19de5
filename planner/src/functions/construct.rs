//! ksqlDB's ARRAY[...] and MAP(k := v, ...) constructors, with ksqlDB's type unification:
//! numbers widen, STRUCT elements with different fields merge into one STRUCT holding all of
//! them (missing fields NULL), string literals convert to the other elements' type (`'true'` in a
//! MAP of BOOLEAN values), MAP keys of mixed types become STRINGs, and a NULL MAP key is the
//! string `null`.

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{lit, Expr};

use super::udf::literal;
use crate::binder::coerce::common_type;
use crate::binder::functions::{values, Arg, FunctionRegistry};
use crate::binder::{call_udf, Binder, Typed};
use crate::error::{invalid, Result};
use crate::types::{list_of, map_of, type_name};

/// Registers the ARRAY and MAP constructors.
pub fn register(r: &mut FunctionRegistry) {
    r.register("ARRAY", make_array);
    r.register("MAP", make_map);
}

/// The type that merges two STRUCT types field by field (by name, in order of appearance).
fn merge_structs(a: &Fields, b: &Fields) -> Option<DataType> {
    let mut out: Vec<Field> = a.iter().map(|f| f.as_ref().clone()).collect();
    for f in b.iter() {
        match out.iter_mut().find(|o| o.name() == f.name()) {
            Some(o) => {
                let t = unify(o.data_type(), f.data_type())?;
                *o = Field::new(f.name(), t, true);
            }
            None => out.push(f.as_ref().clone()),
        }
    }
    Some(DataType::Struct(out.into()))
}

/// The common type of two element types, merging STRUCTs.
fn unify(a: &DataType, b: &DataType) -> Option<DataType> {
    match (a, b) {
        (DataType::Struct(x), DataType::Struct(y)) if x != y => merge_structs(x, y),
        _ => common_type(a, b),
    }
}

fn is_string_literal(t: &Typed) -> Option<&str> {
    match &t.expr {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _) if t.dt == DataType::Utf8 => Some(s),
        _ => None,
    }
}

/// The type all `items` share; string literals follow the others when those agree.
fn element_type(items: &[Typed], what: &str) -> Result<DataType> {
    let fold = |skip_literals: bool| -> Option<DataType> {
        items
            .iter()
            .filter(|t| !(skip_literals && is_string_literal(t).is_some()))
            .try_fold(DataType::Null, |acc, t| unify(&acc, &t.dt))
    };
    fold(false).or_else(|| fold(true)).ok_or_else(|| {
        let types: Vec<String> = items.iter().map(|t| type_name(&t.dt)).collect();
        invalid(format!("{what} must have one type, got {}", types.join(", ")))
    })
}

/// `t` as a `to`: string literals converted now (ksqlDB's error when they do not convert),
/// STRUCTs rebuilt field by field, anything else cast.
fn convert(b: &Binder<'_>, t: Typed, to: &DataType) -> Result<Typed> {
    if t.dt == *to || t.dt == DataType::Null {
        return Ok(t.cast_to(to));
    }
    if let Some(s) = is_string_literal(&t) {
        // Numbers in any notation: '2e1' is an INT 20.
        let text = match (to, s.trim().parse::<f64>()) {
            (DataType::Int32 | DataType::Int64, Ok(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => format!("{}", f as i64),
            _ => s.to_string(),
        };
        let arr = ScalarValue::Utf8(Some(text)).to_array()?;
        let opts = datafusion::arrow::compute::CastOptions { safe: false, ..Default::default() };
        let converted = datafusion::arrow::compute::cast_with_options(&arr, to, &opts)
            .map_err(|_| invalid(format!("invalid input syntax for type {}: \"{s}\".", type_name(to))))?;
        return Ok(literal(ScalarValue::try_from_array(&converted, 0)?, to.clone()));
    }
    if let (DataType::Struct(from), DataType::Struct(want)) = (&t.dt, to) {
        let get = b.functions.datafusion("get_field").expect("DataFusion's get_field");
        let mut args = Vec::new();
        for f in want.iter() {
            args.push(lit(f.name().as_str()));
            let v = match from.iter().find(|x| x.name() == f.name()) {
                Some(x) => Typed::new(call_udf(get.clone(), vec![t.expr.clone(), lit(f.name().as_str())]), x.data_type().clone()),
                None => Typed::new(lit(ScalarValue::Null), DataType::Null),
            };
            args.push(convert(b, v, f.data_type())?.expr);
        }
        let named = b.functions.datafusion("named_struct").expect("DataFusion's named_struct");
        return Ok(Typed::new(call_udf(named, args), to.clone()));
    }
    Ok(t.cast_to(to))
}

fn make_array(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let items = values(name, args)?;
    if items.is_empty() {
        return Err(invalid("Array constructor cannot be empty. Please supply at least one element (see https://github.com/confluentinc/ksql/issues/4239)."));
    }
    let t = element_type(&items, "array elements")?;
    if t == DataType::Null {
        return Err(invalid(
            "Cannot construct an array with all NULL elements (see https://github.com/confluentinc/ksql/issues/4239). As a workaround, you may cast a NULL value to the desired type.",
        ));
    }
    let items = items.into_iter().map(|i| convert(b, i, &t).map(|x| x.expr)).collect::<Result<Vec<_>>>()?;
    let udf = b.functions.datafusion("make_array").expect("DataFusion's make_array");
    Ok(Typed::new(call_udf(udf, items), list_of(t)))
}

fn make_map(b: &Binder<'_>, _name: &str, args: Vec<Arg>) -> Result<Typed> {
    let mut keys = Vec::new();
    let mut vals = Vec::new();
    for a in args {
        let Arg::KeyValue(k, v) = a else { return Err(invalid("MAP takes key := value arguments")) };
        keys.push(k);
        vals.push(v);
    }
    if keys.is_empty() {
        return Err(invalid(
            "Map constructor cannot be empty. Please supply at least one key value pair (see https://github.com/confluentinc/ksql/issues/4239).",
        ));
    }
    if keys.iter().all(|k| k.dt == DataType::Null) {
        return Err(invalid("Cannot construct a map with all NULL keys"));
    }
    if vals.iter().all(|v| v.dt == DataType::Null) {
        return Err(invalid("Cannot construct a map with all NULL values"));
    }
    // Keys of mixed types become strings.
    let kt = keys.iter().try_fold(DataType::Null, |acc, k| unify(&acc, &k.dt)).unwrap_or(DataType::Utf8);
    let keys = keys
        .into_iter()
        .map(|k| {
            if k.dt == DataType::Null && kt == DataType::Utf8 {
                return Ok(lit("null"));
            }
            let k = if k.dt != kt && kt == DataType::Utf8 { b.cast(k, &DataType::Utf8)? } else { convert(b, k, &kt)? };
            if kt == DataType::Utf8 {
                // A NULL key is the string "null", as ksqlDB serializes it.
                let when = (Box::new(k.expr.clone().is_null()), Box::new(lit("null")));
                return Ok(Expr::Case(datafusion::logical_expr::Case::new(None, vec![when], Some(Box::new(k.expr)))));
            }
            Ok(k.expr)
        })
        .collect::<Result<Vec<_>>>()?;
    let vt = element_type(&vals, "MAP values")?;
    let vals = vals.into_iter().map(|v| convert(b, v, &vt).map(|x| x.expr)).collect::<Result<Vec<_>>>()?;
    let arr = b.functions.datafusion("make_array").expect("DataFusion's make_array");
    let map = b.functions.datafusion("map").expect("DataFusion's map");
    let e = call_udf(map, vec![call_udf(arr.clone(), keys), call_udf(arr, vals)]);
    Ok(Typed::new(e, map_of(kt, vt)))
}
