//! ksqlDB's ARRAY set functions: ARRAY_DISTINCT, ARRAY_EXCEPT, ARRAY_INTERSECT, ARRAY_UNION,
//! ARRAY_CONCAT and ARRAY_REMOVE.
//!
//! Elements compare by value ([`super::value`]: NULL equals NULL, arrays and maps element-wise),
//! results keep the order of first appearance, and DISTINCT/EXCEPT/INTERSECT/UNION drop
//! duplicates. A NULL array gives NULL, except that ARRAY_CONCAT treats one NULL side as empty.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, ArrayRef, ListArray};
use datafusion::arrow::datatypes::DataType;

use super::array::array_arg;
use super::nested::{as_list, concat_all, gather_list, list_range};
use super::udf::{arity, call, no_match};
use super::value::key_of;
use crate::binder::coerce::common_type;
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;
use crate::types::list_of;

/// Registers the ARRAY set functions.
pub fn register(r: &mut FunctionRegistry) {
    r.register("ARRAY_DISTINCT", distinct);
    for n in ["ARRAY_EXCEPT", "ARRAY_INTERSECT", "ARRAY_UNION", "ARRAY_CONCAT"] {
        r.register(n, two_arrays);
    }
    r.register("ARRAY_REMOVE", remove);
}

/// The indices of row `i`'s elements whose value was not seen before (recording them in `seen`).
fn first_seen(l: &ListArray, i: usize, offset: u32, seen: &mut HashSet<Vec<u8>>, keep: impl Fn(&[u8]) -> bool) -> Vec<u32> {
    list_range(l, i)
        .filter(|&k| {
            let key = key_of(l.values().as_ref(), k);
            keep(&key) && seen.insert(key)
        })
        .map(|k| k as u32 + offset)
        .collect()
}

fn distinct(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let (x, item) = array_arg(name, &v, 0)?;
    let it = item.clone();
    Ok(call("array_distinct", list_of(item), vec![x], move |a, n| {
        let l = as_list(&a[0]);
        let rows: Vec<Option<Vec<u32>>> =
            (0..n).map(|i| l.is_valid(i).then(|| first_seen(l, i, 0, &mut HashSet::new(), |_| true))).collect();
        gather_list(&it, l.values(), &rows)
    }))
}

fn two_arrays(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let (x, xi) = array_arg(name, &v, 0)?;
    let (y, yi) = array_arg(name, &v, 1)?;
    let item = common_type(&xi, &yi).ok_or_else(|| no_match(name, &v))?;
    let t = list_of(item.clone());
    let args = vec![x.cast_to(&t), y.cast_to(&t)];
    let op = name.to_string();
    Ok(call(&name.to_lowercase(), t, args, move |a, n| {
        let (l, r) = (as_list(&a[0]), as_list(&a[1]));
        let values: ArrayRef = concat_all(&[l.values(), r.values()])?;
        let shift = l.values().len() as u32;
        let rows: Vec<Option<Vec<u32>>> = (0..n)
            .map(|i| {
                let keys_of = |x: &ListArray| -> HashSet<Vec<u8>> { list_range(x, i).map(|k| key_of(x.values().as_ref(), k)).collect() };
                match op.as_str() {
                    "ARRAY_CONCAT" => {
                        if l.is_null(i) && r.is_null(i) {
                            return None;
                        }
                        let mut idx: Vec<u32> = if l.is_valid(i) { list_range(l, i).map(|k| k as u32).collect() } else { vec![] };
                        if r.is_valid(i) {
                            idx.extend(list_range(r, i).map(|k| k as u32 + shift));
                        }
                        Some(idx)
                    }
                    _ if l.is_null(i) || r.is_null(i) => None,
                    "ARRAY_EXCEPT" => {
                        let other = keys_of(r);
                        Some(first_seen(l, i, 0, &mut HashSet::new(), |k| !other.contains(k)))
                    }
                    "ARRAY_INTERSECT" => {
                        let other = keys_of(r);
                        Some(first_seen(l, i, 0, &mut HashSet::new(), |k| other.contains(k)))
                    }
                    _ => {
                        let mut seen = HashSet::new();
                        let mut idx = first_seen(l, i, 0, &mut seen, |_| true);
                        idx.extend(first_seen(r, i, shift, &mut seen, |_| true));
                        Some(idx)
                    }
                }
            })
            .collect();
        gather_list(&item, &values, &rows)
    }))
}

fn remove(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let (x, xi) = array_arg(name, &v, 0)?;
    let item = match &v[1].dt {
        DataType::Null => xi,
        t => common_type(&xi, t).ok_or_else(|| no_match(name, &v))?,
    };
    let args = vec![x.cast_to(&list_of(item.clone())), v[1].clone().cast_to(&item)];
    let it = item.clone();
    Ok(call("array_remove", list_of(item), args, move |a, n| {
        let l = as_list(&a[0]);
        let rows: Vec<Option<Vec<u32>>> = (0..n)
            .map(|i| {
                if l.is_null(i) {
                    return None;
                }
                let gone = key_of(a[1].as_ref(), i);
                Some(list_range(l, i).filter(|&k| key_of(l.values().as_ref(), k) != gone).map(|k| k as u32).collect())
            })
            .collect();
        gather_list(&it, l.values(), &rows)
    }))
}
