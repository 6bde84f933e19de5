//! ksqlDB's lambda functions: TRANSFORM, FILTER and REDUCE over ARRAY and MAP values, e.g.
//! `TRANSFORM(arr, x => x + 1)`, `FILTER(m, (k, v) => v > 0)`, `REDUCE(arr, 0, (s, x) => s + x)`.
//!
//! A lambda body is bound by a binder whose scope adds the parameters (typed by the collection's
//! element, key or value type) to the outer columns, then compiled to a `PhysicalExpr` over a
//! compact schema: the parameters, then the outer columns it captures. The UDF evaluates it
//! once over the flattened elements of the whole batch (captured columns repeated per element)
//! and rebuilds the offsets; REDUCE folds position by position across all rows at once, over a
//! MAP in the order Java's `HashMap` iterates it (ksqlDB's maps are HashMaps, and a fold's result
//! can depend on the order).
//!
//! As in ksqlDB, where Java would fail on a NULL inside a lambda (arithmetic on NULL), the whole
//! call fails for that row and the engine makes its result NULL; AND and OR short-circuit, so
//! the right side is not evaluated where the left decides (`len(k) > 5 AND v % 2 = 0`).

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array};
use datafusion::arrow::compute::{interleave, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{lit, BinaryExpr, Case, Expr, ExprSchemable, Operator};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use datafusion::sql::sqlparser::ast::{LambdaFunction, OneOrManyWithParens};

use super::nested::{as_list, gather_list, gather_map};
use super::udf::{call, call_volatile, exec_err, list_array, map_array, map_types, no_match, DfResult};
use super::value::{java_hashmap_order, key_of};
use crate::binder::coerce::common_type;
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::{invalid, Result};
use crate::parser::norm_ident;
use crate::types::{list_of, map_of, type_name};

/// Registers TRANSFORM, FILTER and REDUCE.
pub fn register(r: &mut FunctionRegistry) {
    r.register("TRANSFORM", transform);
    r.register("FILTER", filter);
    r.register("REDUCE", reduce);
}

/// A compiled lambda body.
struct Lambda {
    body: Arc<dyn PhysicalExpr>,
    /// The body's type.
    dt: DataType,
    /// Parameters, then captured columns.
    schema: SchemaRef,
    params: usize,
}

impl Lambda {
    /// Evaluates the body: `params` are arrays of one length, `captured` are the call's captured
    /// argument arrays (one row per batch row), `parents` the batch row of each element.
    fn eval(&self, params: Vec<ArrayRef>, captured: &[ArrayRef], parents: &UInt32Array) -> DfResult<ArrayRef> {
        let rows = parents.len();
        let mut cols = params;
        for c in captured {
            cols.push(take(c.as_ref(), parents, None)?);
        }
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), cols, &RecordBatchOptions::new().with_row_count(Some(rows)))?;
        self.body.evaluate(&batch)?.into_array(rows)
    }
}

fn param_names(l: &LambdaFunction) -> Vec<String> {
    match &l.params {
        OneOrManyWithParens::One(p) => vec![norm_ident(&p.name)],
        OneOrManyWithParens::Many(ps) => ps.iter().map(|p| norm_ident(&p.name)).collect(),
    }
}

/// Binds and compiles `l` with parameters of `types`; returns it with the outer expressions it
/// captures (to pass as extra arguments of the call).
fn compile(b: &Binder<'_>, name: &str, l: &LambdaFunction, types: &[DataType]) -> Result<(Lambda, Vec<Typed>)> {
    let names = param_names(l);
    if names.len() != types.len() {
        return Err(invalid(format!("the lambda of {name} must take {} arguments, got {}: {l}", types.len(), names.len())));
    }
    let depth = b.lambda_params.len();
    let fields: Vec<Field> = (0..names.len()).map(|i| Field::new(format!("__lambda{depth}_{i}"), types[i].clone(), true)).collect();
    let outer = b.type_schema()?;
    let mut all: Vec<Field> = outer.fields().iter().map(|f| f.as_ref().clone()).collect();
    all.extend(fields.iter().cloned());
    let mut inner = Binder::new(b.scope, &Schema::new(all), b.types, b.functions)?;
    inner.lambda_params = b.lambda_params.clone();
    for (n, f) in names.iter().zip(&fields) {
        inner.lambda_params.push((n.clone(), f.name().clone(), f.data_type().clone()));
    }
    let bound = inner.bind(&l.body)?;
    let bound = if bound.dt == DataType::Null { bound.cast_to(&DataType::Utf8) } else { bound };
    let body = java_semantics(bound.expr, inner.type_schema()?.as_ref())?;
    let own: HashSet<&String> = fields.iter().map(|f| f.name()).collect();
    let mut captured_names: Vec<String> = body.column_refs().into_iter().map(|c| c.name.clone()).filter(|n| !own.contains(n)).collect();
    captured_names.sort();
    captured_names.dedup();
    let mut compact = fields;
    let mut captured = Vec::new();
    for n in &captured_names {
        let f = inner.type_schema()?.field_with_unqualified_name(n)?.as_ref().clone();
        captured.push(Typed::new(Expr::Column(datafusion::common::Column::new_unqualified(n)), f.data_type().clone()));
        compact.push(f);
    }
    let params = types.len();
    let schema = Arc::new(Schema::new(compact));
    // Compiled as bound: a simplifier would undo the laziness above (it turns
    // `CASE WHEN v IS NULL THEN FALSE ELSE v + 1 > 0 END` into an eager AND).
    let props = datafusion::logical_expr::execution_props::ExecutionProps::new();
    let compiled = create_physical_expr(&body, &DFSchema::try_from(schema.as_ref().clone())?, &props, &Default::default())?;
    Ok((Lambda { body: compiled, dt: bound.dt, schema, params }, captured))
}

/// Rewrites a lambda body so that arithmetic on NULL fails (as Java's unboxing does in ksqlDB)
/// and AND/OR evaluate their right side only where the left does not decide.
fn java_semantics(e: Expr, schema: &DFSchema) -> Result<Expr> {
    let out = e.transform_up(|e| {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else { return Ok(Transformed::no(e)) };
        match op {
            Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo => {
                let dt = e.get_type(schema)?;
                let either_null = left.as_ref().clone().is_null().or(right.as_ref().clone().is_null());
                let fail = call_volatile("__lambda_null_arithmetic", dt.clone(), vec![], move |_a, n| {
                    if n > 0 {
                        return Err(exec_err("arithmetic on NULL inside a lambda"));
                    }
                    Ok(new_null_array(&dt, 0))
                });
                Ok(Transformed::yes(Expr::Case(Case::new(None, vec![(Box::new(either_null), Box::new(fail.expr))], Some(Box::new(e))))))
            }
            Operator::And | Operator::Or => {
                let decided = lit(*op == Operator::Or);
                let when = Expr::BinaryExpr(BinaryExpr::new(left.clone(), Operator::IsNotDistinctFrom, Box::new(decided.clone())));
                Ok(Transformed::yes(Expr::Case(Case::new(None, vec![(Box::new(when), Box::new(decided))], Some(Box::new(e))))))
            }
            _ => Ok(Transformed::no(e)),
        }
    })?;
    Ok(out.data)
}

/// Splits the arguments into values and lambdas, in order.
fn split(name: &str, args: Vec<Arg>) -> Result<(Vec<Typed>, Vec<LambdaFunction>)> {
    let mut vals = Vec::new();
    let mut lambdas = Vec::new();
    for a in args {
        match a {
            Arg::Value(v) if lambdas.is_empty() => vals.push(v),
            Arg::Lambda(l) => lambdas.push(l),
            _ => return Err(invalid(format!("invalid arguments for {name}: expected a collection, then lambdas"))),
        }
    }
    Ok((vals, lambdas))
}

/// The batch row of every element of a list (or map) argument, over `range` of its children.
fn parents_of(offsets: &[i32], n: usize) -> UInt32Array {
    let mut p = Vec::with_capacity((offsets[n] - offsets[0]) as usize);
    for i in 0..n {
        p.extend(std::iter::repeat_n(i as u32, (offsets[i + 1] - offsets[i]) as usize));
    }
    UInt32Array::from(p)
}

fn shifted(offsets: &[i32], n: usize) -> Vec<i32> {
    offsets[..=n].iter().map(|o| o - offsets[0]).collect()
}

fn transform(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let (vals, lambdas) = split(name, args)?;
    let [coll] = vals.as_slice() else { return Err(no_match(name, &vals)) };
    match (&coll.dt, lambdas.as_slice()) {
        (DataType::List(item), [f]) => {
            let (lam, captured) = compile(b, name, f, &[item.data_type().clone()])?;
            let mut args = vec![coll.clone()];
            args.extend(captured);
            let ret = list_of(lam.dt.clone());
            Ok(call("transform", ret, args, move |a, n| {
                let l = as_list(&a[0]);
                let o = l.value_offsets();
                let vals = l.values().slice(o[0] as usize, (o[n] - o[0]) as usize);
                let out = lam.eval(vec![vals], &a[1..], &parents_of(o, n))?;
                list_array(&lam.dt, shifted(o, n), out, l.nulls().cloned())
            }))
        }
        (DataType::Map(_, _), [kf, vf]) => {
            let (kt, vt) = map_types(&coll.dt).expect("map types");
            let types = [kt.clone(), vt.clone()];
            let (kl, kc) = compile(b, name, kf, &types)?;
            let (vl, vc) = compile(b, name, vf, &types)?;
            if matches!(kl.dt, DataType::List(_) | DataType::Map(_, _) | DataType::Struct(_)) {
                return Err(invalid(format!("TRANSFORM cannot make map keys of type {}", type_name(&kl.dt))));
            }
            let split_at = 1 + kc.len();
            let mut args = vec![coll.clone()];
            args.extend(kc);
            args.extend(vc);
            let ret = map_of(kl.dt.clone(), vl.dt.clone());
            Ok(call("transform", ret, args, move |a, n| {
                let m = a[0].as_map();
                let o = m.value_offsets();
                let (start, len) = (o[0] as usize, (o[n] - o[0]) as usize);
                let (k, v) = (m.keys().slice(start, len), m.values().slice(start, len));
                let parents = parents_of(o, n);
                let keys = kl.eval(vec![k.clone(), v.clone()], &a[1..split_at], &parents)?;
                let values = vl.eval(vec![k, v], &a[split_at..], &parents)?;
                let offsets = shifted(o, n);
                for i in 0..n {
                    let mut seen = HashSet::new();
                    for e in offsets[i] as usize..offsets[i + 1] as usize {
                        if keys.is_null(e) || !seen.insert(key_of(keys.as_ref(), e)) {
                            return Err(exec_err("TRANSFORM made a NULL or duplicate map key"));
                        }
                    }
                }
                map_array(&kl.dt, &vl.dt, offsets, keys, values, m.nulls().cloned())
            }))
        }
        _ => Err(no_match(name, &vals)),
    }
}

fn predicate(lam: &Lambda) -> Result<()> {
    if lam.dt != DataType::Boolean {
        return Err(invalid(format!("the lambda of FILTER must return a BOOLEAN, not {}", type_name(&lam.dt))));
    }
    Ok(())
}

fn filter(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let (vals, lambdas) = split(name, args)?;
    let ([coll], [f]) = (vals.as_slice(), lambdas.as_slice()) else { return Err(no_match(name, &vals)) };
    let types: Vec<DataType> = match &coll.dt {
        DataType::List(item) => vec![item.data_type().clone()],
        DataType::Map(_, _) => {
            let (k, v) = map_types(&coll.dt).expect("map types");
            vec![k.clone(), v.clone()]
        }
        _ => return Err(no_match(name, &vals)),
    };
    let (lam, captured) = compile(b, name, f, &types)?;
    predicate(&lam)?;
    let mut args = vec![coll.clone()];
    args.extend(captured);
    let ret = coll.dt.clone();
    Ok(call("filter", ret, args, move |a, n| {
        let keep = |o: &[i32], params: Vec<ArrayRef>| -> DfResult<Vec<Option<Vec<u32>>>> {
            let out = lam.eval(params, &a[1..], &parents_of(o, n))?;
            let out: &BooleanArray = out.as_boolean();
            Ok((0..n)
                .map(|i| {
                    a[0].is_valid(i).then(|| {
                        (o[i] as usize..o[i + 1] as usize).filter(|&e| out.is_valid(e - o[0] as usize) && out.value(e - o[0] as usize)).map(|e| e as u32).collect()
                    })
                })
                .collect())
        };
        if lam.params == 1 {
            let l = as_list(&a[0]);
            let o = l.value_offsets();
            let rows = keep(o, vec![l.values().slice(o[0] as usize, (o[n] - o[0]) as usize)])?;
            let item = l.values().data_type().clone();
            gather_list(&item, l.values(), &rows)
        } else {
            let m = a[0].as_map();
            let o = m.value_offsets();
            let (start, len) = (o[0] as usize, (o[n] - o[0]) as usize);
            let rows = keep(o, vec![m.keys().slice(start, len), m.values().slice(start, len)])?;
            gather_map(m.keys().data_type(), m.values().data_type(), m.keys(), m.values(), &rows)
        }
    }))
}

fn reduce(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let (vals, lambdas) = split(name, args)?;
    let ([coll, init], [f]) = (vals.as_slice(), lambdas.as_slice()) else { return Err(no_match(name, &vals)) };
    let elems: Vec<DataType> = match &coll.dt {
        DataType::List(item) => vec![item.data_type().clone()],
        DataType::Map(_, _) => {
            let (k, v) = map_types(&coll.dt).expect("map types");
            vec![k.clone(), v.clone()]
        }
        _ => return Err(no_match(name, &vals)),
    };
    let mut state = if init.dt == DataType::Null { elems[elems.len() - 1].clone() } else { init.dt.clone() };
    let types = |s: &DataType| std::iter::once(s.clone()).chain(elems.iter().cloned()).collect::<Vec<_>>();
    let (mut lam, mut captured) = compile(b, name, f, &types(&state))?;
    if lam.dt != state {
        // The state takes the wider of the initial value's and the body's types.
        state = common_type(&state, &lam.dt).ok_or_else(|| invalid(format!("the lambda of REDUCE returns {} for a state of type {}", type_name(&lam.dt), type_name(&state))))?;
        (lam, captured) = compile(b, name, f, &types(&state))?;
        if lam.dt != state {
            return Err(invalid(format!("the lambda of REDUCE returns {} for a state of type {}", type_name(&lam.dt), type_name(&state))));
        }
    }
    let mut args = vec![coll.clone(), init.clone().cast_to(&state)];
    args.extend(captured);
    Ok(call("reduce", state, args, move |a, n| {
        let (offsets, children): (&[i32], Vec<ArrayRef>) = if lam.params == 2 {
            let l = as_list(&a[0]);
            (l.value_offsets(), vec![l.values().clone()])
        } else {
            let m = a[0].as_map();
            (m.value_offsets(), vec![m.keys().clone(), m.values().clone()])
        };
        // Elements in the order ksqlDB folds them: list order, or Java's HashMap order for maps.
        let order: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                let r = offsets[i] as usize..offsets[i + 1] as usize;
                match (a[0].is_valid(i), lam.params) {
                    (false, _) => Vec::new(),
                    (true, 2) => r.collect(),
                    (true, _) => java_hashmap_order(children[0].as_ref(), r),
                }
            })
            .collect();
        let mut acc = a[1].clone();
        let longest = order.iter().map(Vec::len).max().unwrap_or(0);
        for pos in 0..longest {
            let rows: Vec<u32> = (0..n).filter(|&i| order[i].len() > pos).map(|i| i as u32).collect();
            let rows = UInt32Array::from(rows);
            let elems = UInt32Array::from(rows.values().iter().map(|&i| order[i as usize][pos] as u32).collect::<Vec<_>>());
            let mut params = vec![take(acc.as_ref(), &rows, None)?];
            for c in &children {
                params.push(take(c.as_ref(), &elems, None)?);
            }
            let next = lam.eval(params, &a[2..], &rows)?;
            let mut picks: Vec<(usize, usize)> = (0..n).map(|i| (0, i)).collect();
            for (k, &i) in rows.values().iter().enumerate() {
                picks[i as usize] = (1, k);
            }
            acc = interleave(&[acc.as_ref(), next.as_ref()], &picks)?;
        }
        Ok(acc)
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::arrow::array::{Int32Builder, MapBuilder, MapFieldNames, StringBuilder};
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;
    use crate::binder::{Scope, ScopeColumn};
    use crate::parser::KsqlDialect;

    #[test]
    fn parents_and_offsets() {
        let p = parents_of(&[2, 4, 4, 7], 3);
        assert_eq!(p.values().to_vec(), vec![0, 0, 2, 2, 2]);
        assert_eq!(shifted(&[2, 4, 4, 7], 3), vec![0, 2, 2, 5]);
    }

    #[test]
    fn case_and_and_stay_lazy_inside_lambdas() {
        let dt = map_of(DataType::Utf8, DataType::Int32);
        let scope = Scope { columns: vec![ScopeColumn { qualifier: None, name: "M".into(), field: "M".into(), data_type: dt.clone() }] };
        let schema = Schema::new(vec![Field::new("M", dt.clone(), true)]);
        let types = BTreeMap::new();
        let reg = FunctionRegistry::new();
        let b = Binder::new(&scope, &schema, &types, &reg).unwrap();
        let names = MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() };
        let mut mb = MapBuilder::new(Some(names), StringBuilder::new(), Int32Builder::new());
        mb.keys().append_value("a");
        mb.values().append_null();
        mb.keys().append_value("bcdefg");
        mb.values().append_value(4);
        mb.append(true).unwrap();
        let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(mb.finish())]).unwrap();
        for (sql, want) in [
            ("TRANSFORM(m, (x, y) => x, (x, y) => CASE WHEN y IS NULL THEN false ELSE (y + 2) = 6 END)", r#"{"a":false,"bcdefg":true}"#),
            ("FILTER(m, (x, y) => LEN(x) > 5 AND y % 2 = 0)", r#"{"bcdefg":4}"#),
            ("FILTER(m, (x, y) => LEN(x) < 5 OR y % 2 = 0)", r#"{"a":null,"bcdefg":4}"#),
            ("TRANSFORM(m, (x, y) => x, (x, y) => y + 1)", "null"),
        ] {
            let e = Parser::new(&KsqlDialect::default()).try_with_sql(sql).unwrap().parse_expr().unwrap();
            let p = b.physical(&b.bind(&e).unwrap()).unwrap();
            let got = match p.evaluate(&batch) {
                Ok(v) => crate::session::render::cell_text(&v.into_array(1).unwrap(), 0).unwrap_or_default(),
                Err(_) => "null".to_string(),
            };
            assert_eq!(got, want, "{sql}");
        }
    }
}
