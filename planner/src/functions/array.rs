//! ksqlDB's ARRAY functions: ARRAY_LENGTH, ARRAY_CONTAINS, ARRAY_JOIN, ARRAY_MAX, ARRAY_MIN,
//! ARRAY_SORT, SLICE and GENERATE_SERIES (the set functions are in [`super::array_set`]).
//!
//! Positions are 1-based. ARRAY_MAX/ARRAY_MIN skip NULL elements, ARRAY_SORT puts them last in
//! both directions, ARRAY_JOIN prints elements as Java does (`null` for NULL) with `,` as the
//! default delimiter, and SLICE outside the array gives NULL.

use std::sync::Arc;

use datafusion::arrow::array::{
    make_comparator, Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListBuilder, PrimitiveBuilder,
    StringArray, UInt32Array,
};
use datafusion::arrow::compute::{take, SortOptions};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};

use super::json::text::java_text;
use super::nested::{as_list, gather_list, list_range};
use super::udf::{arity, call, exec_err, expect, no_match, DfResult};
use super::value;
use crate::binder::coerce::common_type;
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;
use crate::types::list_of;

/// Registers the ARRAY functions.
pub fn register(r: &mut FunctionRegistry) {
    r.register("ARRAY_LENGTH", array_length);
    r.register("ARRAY_CONTAINS", array_contains);
    r.register("ARRAY_JOIN", array_join);
    r.register("ARRAY_MAX", array_extreme);
    r.register("ARRAY_MIN", array_extreme);
    r.register("ARRAY_SORT", array_sort);
    r.register("SLICE", slice);
    r.register("GENERATE_SERIES", generate_series);
}

/// The first argument as an ARRAY (a NULL literal counts as an ARRAY<STRING>).
pub fn array_arg(name: &str, v: &[Typed], i: usize) -> Result<(Typed, DataType)> {
    match &v[i].dt {
        DataType::List(f) => Ok((v[i].clone(), f.data_type().clone())),
        DataType::Null => Ok((v[i].clone().cast_to(&list_of(DataType::Utf8)), DataType::Utf8)),
        _ => Err(no_match(name, v)),
    }
}

fn array_length(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let (x, _) = array_arg(name, &v, 0)?;
    Ok(call("array_length", DataType::Int32, vec![x], |a, n| {
        let l = as_list(&a[0]);
        Ok(Arc::new((0..n).map(|i| l.is_valid(i).then(|| list_range(l, i).len() as i32)).collect::<Int32Array>()) as ArrayRef)
    }))
}

fn array_contains(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let (x, item) = array_arg(name, &v, 0)?;
    let t = common_type(&item, &v[1].dt).ok_or_else(|| no_match(name, &v))?;
    let args = vec![x.cast_to(&list_of(t.clone())), v[1].clone().cast_to(&t)];
    Ok(call("array_contains", DataType::Boolean, args, |a, n| {
        let l = as_list(&a[0]);
        let out: BooleanArray = (0..n)
            .map(|i| {
                if l.is_null(i) {
                    return Some(false);
                }
                let needle = value::key_of(a[1].as_ref(), i);
                Some(list_range(l, i).any(|k| value::key_of(l.values().as_ref(), k) == needle))
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn array_join(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 2)?;
    let (x, _) = array_arg(name, &v, 0)?;
    let mut args = vec![x];
    if v.len() == 2 {
        args.push(expect(name, &v, 1, &DataType::Utf8)?);
    }
    Ok(call("array_join", DataType::Utf8, args, |a, n| {
        let l = as_list(&a[0]);
        let sep = a.get(1).map(|s| s.as_string::<i32>());
        let out: StringArray = (0..n)
            .map(|i| {
                if l.is_null(i) {
                    return None;
                }
                let d = match sep {
                    None => ",",
                    Some(s) if s.is_null(i) => "",
                    Some(s) => s.value(i),
                };
                let parts: Vec<String> = list_range(l, i).map(|k| java_text(l.values().as_ref(), k)).collect();
                Some(parts.join(d))
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

/// Row `i`'s element indices sorted (NULLs last).
fn sorted_indices(values: &ArrayRef, range: std::ops::Range<usize>, descending: bool) -> DfResult<Vec<u32>> {
    let cmp = make_comparator(values.as_ref(), values.as_ref(), SortOptions { descending, nulls_first: false })
        .map_err(|e| exec_err(e.to_string()))?;
    let mut idx: Vec<usize> = range.collect();
    idx.sort_by(|x, y| match (values.is_null(*x), values.is_null(*y)) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => cmp(*x, *y),
    });
    Ok(idx.into_iter().map(|k| k as u32).collect())
}

fn array_extreme(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let (x, item) = array_arg(name, &v, 0)?;
    if matches!(item, DataType::List(_) | DataType::Map(_, _) | DataType::Struct(_)) {
        return Err(no_match(name, &v));
    }
    let max = name == "ARRAY_MAX";
    Ok(call(&name.to_lowercase(), item, vec![x], move |a, n| {
        let l = as_list(&a[0]);
        let values = l.values().clone();
        let mut picks: Vec<Option<u32>> = Vec::with_capacity(n);
        for i in 0..n {
            let best = if l.is_null(i) { None } else { sorted_indices(&values, list_range(l, i), max)?.first().copied() };
            picks.push(best.filter(|k| values.is_valid(*k as usize)));
        }
        take(values.as_ref(), &UInt32Array::from(picks), None).map_err(|e| exec_err(e.to_string()))
    }))
}

fn array_sort(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 2)?;
    let (x, item) = array_arg(name, &v, 0)?;
    let mut args = vec![x];
    if v.len() == 2 {
        args.push(expect(name, &v, 1, &DataType::Utf8)?);
    }
    let it = item.clone();
    Ok(call("array_sort", list_of(item), args, move |a, n| {
        let l = as_list(&a[0]);
        let values = l.values().clone();
        let dir = a.get(1).map(|d| d.as_string::<i32>());
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let desc = match dir {
                None => Some(false),
                Some(d) if d.is_null(i) => None,
                Some(d) => match d.value(i).to_ascii_uppercase().as_str() {
                    "ASC" => Some(false),
                    "DESC" => Some(true),
                    _ => None,
                },
            };
            rows.push(match desc {
                Some(desc) if l.is_valid(i) => Some(sorted_indices(&values, list_range(l, i), desc)?),
                _ => None,
            });
        }
        gather_list(&it, &values, &rows)
    }))
}

fn slice(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 3, 3)?;
    let (x, item) = array_arg(name, &v, 0)?;
    let args = vec![x, expect(name, &v, 1, &DataType::Int32)?, expect(name, &v, 2, &DataType::Int32)?];
    let it = item.clone();
    Ok(call("slice", list_of(item), args, move |a, n| {
        let l = as_list(&a[0]);
        let (from, to) = (a[1].as_primitive::<Int32Type>(), a[2].as_primitive::<Int32Type>());
        let rows: Vec<Option<Vec<u32>>> = (0..n)
            .map(|i| {
                if l.is_null(i) {
                    return None;
                }
                let r = list_range(l, i);
                let start = if from.is_null(i) { 0 } else { from.value(i) as i64 - 1 };
                let end = if to.is_null(i) { r.len() as i64 } else { to.value(i) as i64 };
                if start < 0 || end > r.len() as i64 || start > end {
                    return None;
                }
                Some((r.start + start as usize..r.start + end as usize).map(|k| k as u32).collect())
            })
            .collect();
        gather_list(&it, l.values(), &rows)
    }))
}

/// `start..=end` by `step` (1 or -1 when not given); None for a zero step or one that points away.
fn series(start: i64, end: i64, step: Option<i64>) -> Option<Vec<i64>> {
    let step = step.unwrap_or(if end >= start { 1 } else { -1 });
    if step == 0 || (end - start).signum() * step.signum() < 0 {
        return None;
    }
    let count = (end - start) / step + 1;
    if count > 10_000_000 {
        return None;
    }
    Some((0..count).map(|k| start + k * step).collect())
}

fn generate_series(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 3)?;
    let t = if v.iter().any(|a| a.dt == DataType::Int64) { DataType::Int64 } else { DataType::Int32 };
    let args = (0..v.len()).map(|i| expect(name, &v, i, &t)).collect::<Result<Vec<_>>>()?;
    let wide = t == DataType::Int64;
    Ok(call("generate_series", list_of(t), args, move |a, n| {
        let get = |k: usize, i: usize| -> Option<i64> {
            let c = a.get(k)?;
            if c.is_null(i) {
                return None;
            }
            Some(if wide { c.as_primitive::<Int64Type>().value(i) } else { c.as_primitive::<Int32Type>().value(i) as i64 })
        };
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let (Some(s), Some(e)) = (get(0, i), get(1, i)) else {
                rows.push(None);
                continue;
            };
            let step = if a.len() == 3 { Some(get(2, i).ok_or_else(|| exec_err("generate_series: null step"))?) } else { None };
            rows.push(Some(series(s, e, step).ok_or_else(|| exec_err("generate_series: the step must move from start towards end"))?));
        }
        Ok(if wide {
            let mut b = ListBuilder::new(PrimitiveBuilder::<Int64Type>::new());
            for r in rows {
                match r {
                    Some(xs) => {
                        b.values().append_slice(&xs);
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        } else {
            let mut b = ListBuilder::new(PrimitiveBuilder::<Int32Type>::new());
            for r in rows {
                match r {
                    Some(xs) => {
                        b.values().append_slice(&xs.into_iter().map(|x| x as i32).collect::<Vec<_>>());
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            Arc::new(b.finish())
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_directions() {
        assert_eq!(series(0, 3, None), Some(vec![0, 1, 2, 3]));
        assert_eq!(series(4, 3, None), Some(vec![4, 3]));
        assert_eq!(series(-2, 1, Some(2)), Some(vec![-2, 0]));
        assert_eq!(series(1, -2, Some(-2)), Some(vec![1, -1]));
        assert_eq!(series(0, 3, Some(-1)), None);
        assert_eq!(series(0, 3, Some(0)), None);
    }
}
