//! ksqlDB's ARRAY[...] and MAP(k := v, ...) constructors, with ksqlDB's type unification:
//! numbers widen, STRUCT elements with different fields merge into one STRUCT holding all of
//! them (missing fields NULL), string literals convert to the other elements' type (`'true'` in a
//! MAP of BOOLEAN values), MAP keys of mixed types become STRINGs, and a NULL MAP key is the
//! string `null`.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{lit, Expr};

use crate::binder::functions::{values, Arg, FunctionRegistry};
use crate::binder::{call_udf, Binder, Typed};
use crate::error::{invalid, Result};
use crate::types::{list_of, map_of};

/// Registers the ARRAY and MAP constructors.
pub fn register(r: &mut FunctionRegistry) {
    r.register("ARRAY", make_array);
    r.register("MAP", make_map);
}

/// The type all `items` share, by ksqlDB's rules for expression lists.
fn element_type(items: &[Typed], what: &str) -> Result<DataType> {
    let refs: Vec<&Typed> = items.iter().collect();
    crate::binder::lists::list_type(&refs, what)
}

fn convert(b: &Binder<'_>, t: Typed, to: &DataType) -> Result<Typed> {
    crate::binder::lists::coerce_to(b, t, to)
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
    let kt = keys.iter().try_fold(DataType::Null, |acc, k| crate::binder::lists::common(&acc, &k.dt)).unwrap_or(DataType::Utf8);
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
