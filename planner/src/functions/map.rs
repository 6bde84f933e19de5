//! ksqlDB's MAP functions: MAP_KEYS, MAP_VALUES, MAP_UNION, AS_MAP and ENTRIES.
//!
//! MAP_UNION lets the second map's entries win and treats a NULL map as empty (NULL only when
//! both are); AS_MAP pairs keys with values by position, skipping NULL keys; ENTRIES gives
//! `ARRAY<STRUCT<K, V>>`, sorted by key when asked.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, MapArray, StructArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Fields};

use super::nested::{as_list, concat_all, gather_map, list_range, map_keys_list, map_range, map_values_list};
use super::udf::{arity, call, exec_err, expect, list_array, map_types, no_match, nulls_from};
use super::value::key_of;
use crate::binder::coerce::common_type;
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;
use crate::types::{list_of, map_of};

/// Registers the MAP functions.
pub fn register(r: &mut FunctionRegistry) {
    r.register("MAP_KEYS", keys_or_values);
    r.register("MAP_VALUES", keys_or_values);
    r.register("MAP_UNION", map_union);
    r.register("AS_MAP", as_map);
    r.register("ENTRIES", entries);
}

/// Argument `i` as a MAP, with its key and value types.
fn map_arg(name: &str, v: &[Typed], i: usize) -> Result<(Typed, DataType, DataType)> {
    let (k, val) = map_types(&v[i].dt).ok_or_else(|| no_match(name, v))?;
    Ok((v[i].clone(), k.clone(), val.clone()))
}

fn keys_or_values(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let (m, kt, vt) = map_arg(name, &v, 0)?;
    let keys = name == "MAP_KEYS";
    let item = if keys { kt } else { vt };
    let it = item.clone();
    Ok(call(&name.to_lowercase(), list_of(item), vec![m], move |a, _n| {
        let m = a[0].as_map();
        if keys {
            map_keys_list(m, &it)
        } else {
            map_values_list(m, &it)
        }
    }))
}

fn map_union(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let (_, k1, v1) = map_arg(name, &v, 0)?;
    let (_, k2, v2) = map_arg(name, &v, 1)?;
    let kt = common_type(&k1, &k2).ok_or_else(|| no_match(name, &v))?;
    let vt = common_type(&v1, &v2).ok_or_else(|| no_match(name, &v))?;
    let t = map_of(kt.clone(), vt.clone());
    let args = vec![v[0].clone().cast_to(&t), v[1].clone().cast_to(&t)];
    Ok(call("map_union", t, args, move |a, n| {
        let (x, y) = (a[0].as_map(), a[1].as_map());
        let keys = concat_all(&[x.keys(), y.keys()])?;
        let vals = concat_all(&[x.values(), y.values()])?;
        let shift = x.keys().len() as u32;
        let rows: Vec<Option<Vec<u32>>> = (0..n)
            .map(|i| {
                if x.is_null(i) && y.is_null(i) {
                    return None;
                }
                let mut picked: Vec<(Vec<u8>, u32)> = Vec::new();
                let mut add = |m: &MapArray, shift: u32| {
                    if m.is_null(i) {
                        return;
                    }
                    for k in map_range(m, i) {
                        let key = key_of(m.keys().as_ref(), k);
                        match picked.iter_mut().find(|(pk, _)| *pk == key) {
                            Some(p) => p.1 = k as u32 + shift,
                            None => picked.push((key, k as u32 + shift)),
                        }
                    }
                };
                add(x, 0);
                add(y, shift);
                Some(picked.into_iter().map(|(_, k)| k).collect())
            })
            .collect();
        gather_map(&kt, &vt, &keys, &vals, &rows)
    }))
}

fn as_map(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let (DataType::List(kf), DataType::List(vf)) = (&v[0].dt, &v[1].dt) else { return Err(no_match(name, &v)) };
    let (kt, vt) = (kf.data_type().clone(), vf.data_type().clone());
    Ok(call("as_map", map_of(kt.clone(), vt.clone()), v, move |a, n| {
        let (ks, vs): (&ListArray, &ListArray) = (as_list(&a[0]), as_list(&a[1]));
        let vals = concat_all(&[vs.values(), &datafusion::arrow::array::new_null_array(&vt, 1)])?;
        let null_val = vs.values().len() as u32;
        let mut key_idx = Vec::new();
        let mut val_idx = Vec::new();
        let mut offsets = vec![0i32];
        let mut valid = Vec::with_capacity(n);
        for i in 0..n {
            let ok = ks.is_valid(i) && vs.is_valid(i);
            if ok {
                let (kr, vr) = (list_range(ks, i), list_range(vs, i));
                let mut seen: Vec<(Vec<u8>, usize)> = Vec::new();
                for (pos, k) in kr.enumerate() {
                    if ks.values().is_null(k) {
                        continue;
                    }
                    let v = if pos < vr.len() { (vr.start + pos) as u32 } else { null_val };
                    let key = key_of(ks.values().as_ref(), k);
                    match seen.iter().find(|(sk, _)| *sk == key) {
                        Some((_, slot)) => val_idx[*slot] = v,
                        None => {
                            seen.push((key, val_idx.len()));
                            key_idx.push(k as u32);
                            val_idx.push(v);
                        }
                    }
                }
            }
            valid.push(ok);
            offsets.push(key_idx.len() as i32);
        }
        let keys = take(ks.values().as_ref(), &UInt32Array::from(key_idx), None).map_err(|e| exec_err(e.to_string()))?;
        let values = take(vals.as_ref(), &UInt32Array::from(val_idx), None).map_err(|e| exec_err(e.to_string()))?;
        super::udf::map_array(&kt, &vt, offsets, keys, values, nulls_from(&valid))
    }))
}

fn entries(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let (m, kt, vt) = map_arg(name, &v, 0)?;
    let sorted = expect(name, &v, 1, &DataType::Boolean)?;
    let fields = Fields::from(vec![Field::new("K", kt.clone(), true), Field::new("V", vt.clone(), true)]);
    let entry = DataType::Struct(fields.clone());
    let it = entry.clone();
    Ok(call("entries", list_of(entry), vec![m, sorted], move |a, n| {
        let m = a[0].as_map();
        let sort = a[1].as_boolean();
        let cmp = datafusion::arrow::array::make_comparator(m.keys().as_ref(), m.keys().as_ref(), Default::default())
            .map_err(|e| exec_err(e.to_string()))?;
        let mut idx = Vec::new();
        let mut offsets = vec![0i32];
        let mut valid = Vec::with_capacity(n);
        for i in 0..n {
            if m.is_valid(i) {
                let mut r: Vec<usize> = map_range(m, i).collect();
                if sort.is_valid(i) && sort.value(i) {
                    r.sort_by(|x, y| cmp(*x, *y));
                }
                idx.extend(r.into_iter().map(|k| k as u32));
            }
            valid.push(m.is_valid(i));
            offsets.push(idx.len() as i32);
        }
        let idx = UInt32Array::from(idx);
        let k = take(m.keys().as_ref(), &idx, None).map_err(|e| exec_err(e.to_string()))?;
        let v = take(m.values().as_ref(), &idx, None).map_err(|e| exec_err(e.to_string()))?;
        let st: ArrayRef = Arc::new(StructArray::try_new(fields.clone(), vec![k, v], None)?);
        list_array(&it, offsets, st, nulls_from(&valid))
    }))
}
