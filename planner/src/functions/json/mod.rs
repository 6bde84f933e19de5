//! ksqlDB's JSON functions: EXTRACTJSONFIELD, IS_JSON_STRING, JSON_ARRAY_LENGTH,
//! JSON_ARRAY_CONTAINS, JSON_KEYS, JSON_RECORDS, JSON_ITEMS, JSON_CONCAT and TO_JSON_STRING.
//!
//! JSON text is read with [`doc`] (order-preserving, numbers kept as written); text that is not
//! JSON gives NULL (FALSE for the predicates). EXTRACTJSONFIELD returns strings unquoted and
//! anything else as compact JSON, as ksqlDB does.

pub mod doc;
pub mod path;
pub mod text;

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListBuilder, MapBuilder, MapFieldNames, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};

use self::doc::Json;
use super::string::all_strings;
use super::udf::{arity, call, exec_err, expect, no_match, plain_args};
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;
use crate::types::{list_of, map_of};

/// Registers the JSON functions.
pub fn register(r: &mut FunctionRegistry) {
    r.register("EXTRACTJSONFIELD", extract_json_field);
    r.register("IS_JSON_STRING", is_json_string);
    r.register("JSON_ARRAY_LENGTH", json_array_length);
    r.register("JSON_ARRAY_CONTAINS", json_array_contains);
    r.register("JSON_KEYS", json_keys);
    r.register("JSON_RECORDS", json_records);
    r.register("JSON_ITEMS", json_items);
    r.register("JSON_CONCAT", json_concat);
    r.register("TO_JSON_STRING", to_json_string);
}

fn docs(a: &ArrayRef) -> Vec<Option<Json>> {
    a.as_string::<i32>().iter().map(|s| s.and_then(doc::parse)).collect()
}

fn extract_json_field(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let v = all_strings(name, &v)?;
    Ok(call("extractjsonfield", DataType::Utf8, v, |a, n| {
        let (json, paths) = (a[0].as_string::<i32>(), a[1].as_string::<i32>());
        let mut last: Option<(String, Option<Vec<path::Step>>)> = None;
        let out: StringArray = (0..n)
            .map(|i| {
                if json.is_null(i) || paths.is_null(i) {
                    return None;
                }
                if last.as_ref().is_none_or(|(p, _)| p != paths.value(i)) {
                    last = Some((paths.value(i).to_string(), path::parse(paths.value(i)).ok()));
                }
                let steps = last.as_ref()?.1.as_ref()?;
                let d = doc::parse(json.value(i))?;
                path::select(&d, steps)?.as_text()
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn one_json(name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    expect(name, &v, 0, &DataType::Utf8)
}

fn is_json_string(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let x = one_json(name, args)?;
    Ok(call("is_json_string", DataType::Boolean, vec![x], |a, _n| {
        Ok(Arc::new(docs(&a[0]).into_iter().map(|d| Some(d.is_some())).collect::<BooleanArray>()) as ArrayRef)
    }))
}

fn json_array_length(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let x = one_json(name, args)?;
    Ok(call("json_array_length", DataType::Int32, vec![x], |a, _n| {
        let out: Int32Array = docs(&a[0])
            .into_iter()
            .map(|d| match d {
                Some(Json::Arr(items)) => Some(items.len() as i32),
                _ => None,
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

/// True if JSON value `j` equals row `i` of the SQL value `v` (strings with strings, numbers by
/// value with numbers, booleans with booleans, NULL with null).
fn json_equals(j: &Json, v: &ArrayRef, i: usize) -> bool {
    if v.is_null(i) {
        return *j == Json::Null;
    }
    match (j, v.data_type()) {
        (Json::Str(s), DataType::Utf8) => s == v.as_string::<i32>().value(i),
        (Json::Bool(b), DataType::Boolean) => *b == v.as_boolean().value(i),
        (Json::Num(n), DataType::Int32) => n.parse::<i64>().ok() == Some(v.as_primitive::<Int32Type>().value(i) as i64),
        (Json::Num(n), DataType::Int64) => n.parse::<i64>().ok() == Some(v.as_primitive::<Int64Type>().value(i)),
        (Json::Num(n), DataType::Float64) => n.parse::<f64>().ok() == Some(v.as_primitive::<Float64Type>().value(i)),
        _ => false,
    }
}

fn json_array_contains(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let json = expect(name, &v, 0, &DataType::Utf8)?;
    let value = match &v[1].dt {
        DataType::Utf8 | DataType::Boolean | DataType::Int32 | DataType::Int64 | DataType::Float64 => v[1].clone(),
        DataType::Null => v[1].clone().cast_to(&DataType::Utf8),
        _ => return Err(no_match(name, &v)),
    };
    Ok(call("json_array_contains", DataType::Boolean, vec![json, value], |a, _n| {
        let out: BooleanArray = docs(&a[0])
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                Some(match d {
                    Some(Json::Arr(items)) => items.iter().any(|j| json_equals(j, &a[1], i)),
                    _ => false,
                })
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn json_keys(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let x = one_json(name, args)?;
    Ok(call("json_keys", list_of(DataType::Utf8), vec![x], |a, _n| {
        let mut out = ListBuilder::new(StringBuilder::new());
        for d in docs(&a[0]) {
            match d {
                Some(Json::Obj(fields)) => {
                    for (k, _) in fields {
                        out.values().append_value(k);
                    }
                    out.append(true);
                }
                _ => out.append(false),
            }
        }
        Ok(Arc::new(out.finish()) as ArrayRef)
    }))
}

fn json_records(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let x = one_json(name, args)?;
    Ok(call("json_records", map_of(DataType::Utf8, DataType::Utf8), vec![x], |a, _n| {
        let names = MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() };
        let mut out = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
        for d in docs(&a[0]) {
            let valid = match d {
                Some(Json::Obj(fields)) => {
                    for (k, v) in fields {
                        out.keys().append_value(k);
                        out.values().append_option(v.as_text());
                    }
                    true
                }
                _ => false,
            };
            out.append(valid).map_err(|e| exec_err(e.to_string()))?;
        }
        Ok(Arc::new(out.finish()) as ArrayRef)
    }))
}

fn json_items(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let x = one_json(name, args)?;
    Ok(call("json_items", list_of(DataType::Utf8), vec![x], |a, _n| {
        let mut out = ListBuilder::new(StringBuilder::new());
        for d in docs(&a[0]) {
            match d {
                Some(Json::Arr(items)) => {
                    for v in items {
                        out.values().append_value(v.to_text());
                    }
                    out.append(true);
                }
                _ => out.append(false),
            }
        }
        Ok(Arc::new(out.finish()) as ArrayRef)
    }))
}

/// JSON_CONCAT of parsed documents: objects merge (later keys win), anything else concatenates
/// into one array (arrays spliced, other values appended).
pub fn concat_docs(docs: Vec<Json>) -> Json {
    if docs.iter().all(|d| matches!(d, Json::Obj(_))) {
        let mut fields: Vec<(String, Json)> = Vec::new();
        for d in docs {
            let Json::Obj(fs) = d else { unreachable!("checked objects") };
            for (k, v) in fs {
                match fields.iter_mut().find(|(fk, _)| *fk == k) {
                    Some(f) => f.1 = v,
                    None => fields.push((k, v)),
                }
            }
        }
        return Json::Obj(fields);
    }
    let mut items = Vec::new();
    for d in docs {
        match d {
            Json::Arr(xs) => items.extend(xs),
            other => items.push(other),
        }
    }
    Json::Arr(items)
}

fn json_concat(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = plain_args(name, args)?;
    if v.len() < 2 {
        return Err(no_match(name, &v));
    }
    let v = all_strings(name, &v)?;
    Ok(call("json_concat", DataType::Utf8, v, |a, n| {
        let cols: Vec<&StringArray> = a.iter().map(|c| c.as_string::<i32>()).collect();
        let out: StringArray = (0..n)
            .map(|i| {
                let ds = cols.iter().map(|c| c.is_valid(i).then(|| doc::parse(c.value(i))).flatten()).collect::<Option<Vec<_>>>()?;
                Some(concat_docs(ds).to_text())
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn to_json_string(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let x = if v[0].dt == DataType::Null { v[0].clone().cast_to(&DataType::Utf8) } else { v[0].clone() };
    Ok(call("to_json_string", DataType::Utf8, vec![x], |a, n| {
        let out: StringArray = (0..n)
            .map(|i| {
                let mut s = String::new();
                text::write_json(a[0].as_ref(), i, &mut s);
                Some(s)
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(xs: &[&str]) -> String {
        concat_docs(xs.iter().map(|x| doc::parse(x).unwrap()).collect()).to_text()
    }

    #[test]
    fn json_concat_follows_ksqldb() {
        assert_eq!(cat(&[r#"{"a": 1}"#, r#"{"b": 2}"#]), r#"{"a":1,"b":2}"#);
        assert_eq!(cat(&[r#"{"a": {"5": 6}}"#, r#"{"a": {"3": 4}}"#]), r#"{"a":{"3":4}}"#);
        assert_eq!(cat(&["null", "null"]), "[null,null]");
        assert_eq!(cat(&["[1, 2]", r#"{"a": 1}"#, "4"]), r#"[1,2,{"a":1},4]"#);
        assert_eq!(cat(&["[1, [2]]", "[[[3]], [[[4]]]]"]), "[1,[2],[[3]],[[[4]]]]");
    }
}
