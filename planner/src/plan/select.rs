//! Planning a SELECT over one stream or table: WHERE, the projection and PARTITION BY, into
//! `Source -> [Filter] -> Project`; the caller adds the sink.
//!
//! Output columns follow ksqlDB: key columns first. Without PARTITION BY the key is the
//! source's key, and a persistent query must select it; with PARTITION BY the key is the
//! partitioning expression (PARTITION BY NULL: no key).

use std::collections::HashSet;

use datafusion::arrow::datatypes::Field;
use datafusion::sql::sqlparser::ast::{Expr as AstExpr, SelectItem, SelectItemQualifiedWildcardKind};
use engine::spec::{FilterMode, FilterSpec, OpSpec, ProjectSpec};

use super::source::{batch_schema, plan_source, RESERVED};
use super::Pipeline;
use crate::ast::{ColumnKind, Query, SourceType};
use crate::binder::functions::FunctionRegistry;
use crate::binder::{Binder, Typed};
use crate::catalog::{Catalog, Column};
use crate::error::{invalid, PlanError, Result};
use crate::parser::norm_ident;

/// What is being planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// CREATE ... AS SELECT / INSERT INTO ... SELECT: must select the key.
    Persistent,
    /// A push query or a scan.
    Transient,
}

/// Plans `q` up to its projection.
pub fn plan_select(
    q: &Query,
    kind: QueryKind,
    sink_name: Option<&str>,
    id: &str,
    catalog: &Catalog,
    functions: &FunctionRegistry,
) -> Result<Pipeline> {
    if super::aggregate::is_aggregation(q) {
        return super::aggregate::plan_aggregate(q, kind, sink_name, id, catalog, functions);
    }
    if !q.joins.is_empty() {
        return super::join::plan_join(q, kind, sink_name, id, catalog, functions);
    }
    let def = catalog
        .sources
        .get(&q.from.name)
        .ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: q.from.name.clone() })?;
    let qualifier = q.from.alias.clone().unwrap_or_else(|| def.name.clone());
    let text = query_text(q);
    let pseudo = text.contains("ROWPARTITION") || text.contains("ROWOFFSET");
    let mut src = plan_source(def, &qualifier, pseudo, catalog, functions)?;
    if kind == QueryKind::Persistent {
        super::source::forward_headers(&mut src, def);
    }
    let is_table = def.source_type == SourceType::Table;
    let mut p = Pipeline::new(def.source_type, vec![def.name.clone()]);
    p.push(OpSpec::Source(src.spec.clone()), src.schema.clone());
    let binder = Binder::new(&src.scope, &src.schema, &catalog.types, functions)?;

    if let Some(w) = &q.selection {
        let t = binder.bind(w).map_err(|e| in_clause("WHERE", e))?;
        if t.dt != datafusion::arrow::datatypes::DataType::Boolean && t.dt != datafusion::arrow::datatypes::DataType::Null {
            return Err(invalid(format!("WHERE must be a BOOLEAN expression, but {w} is {}", crate::types::type_name(&t.dt))));
        }
        let predicate = binder.physical(&crate::binder::predicate(t.cast_to(&datafusion::arrow::datatypes::DataType::Boolean)))?;
        // A push query on a table judges deletes by the predicate too, so that rows it never
        // showed do not come out as tombstones.
        let mode = match (is_table, kind) {
            (true, QueryKind::Persistent) => FilterMode::Table,
            (true, QueryKind::Transient) => FilterMode::Changelog,
            (false, _) => FilterMode::Stream,
        };
        p.push(OpSpec::Filter(FilterSpec { predicate, mode }), src.schema.clone());
    }

    if kind == QueryKind::Persistent && is_table && def.window.is_some() {
        return Err(invalid("KSQL does not support persistent queries on windowed tables."));
    }
    // Table functions: an Explode node; the projection then refers to their results.
    let select_exprs = q.select.iter().filter_map(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    });
    let calls = super::table_function::find_calls(select_exprs)?;
    let exploded_scope;
    let exploded_binder;
    let binder = if calls.is_empty() {
        binder
    } else {
        if is_table {
            return Err(invalid("Table source is not supported with table functions"));
        }
        exploded_scope = super::table_function::plan_table_functions(&mut p, &binder, &src.scope, &calls)?;
        exploded_binder = Binder::new(&exploded_scope, &p.schema(), &catalog.types, functions)?;
        exploded_binder
    };
    let bind_item = |e: &AstExpr| -> Result<Typed> {
        if calls.is_empty() {
            binder.bind(e)
        } else {
            binder.bind(&super::table_function::rewrite(e, &calls))
        }
    };
    let star = StarOrder {
        window_columns: kind == QueryKind::Transient,
        values_first: !q.partition_by.is_empty(),
    };
    // Projection items: (name, bound expression, source text).
    let mut items: Vec<(String, Typed, AstExpr)> = Vec::new();
    let mut generated = super::GeneratedNames::new(def.columns.iter().map(|c| c.name.as_str()));
    for item in &q.select {
        match item {
            SelectItem::Wildcard(_) => expand_star(def, star, &binder, &mut items)?,
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                let qn = n.0.last().and_then(|p| p.as_ident()).map(norm_ident).unwrap_or_default();
                if qn != qualifier {
                    return Err(invalid(format!("'{qn}' is not a valid stream/table name or alias")));
                }
                expand_star(def, star, &binder, &mut items)?
            }
            SelectItem::UnnamedExpr(e) if crate::binder::struct_star::struct_star(e).is_some() => {
                let left = crate::binder::struct_star::struct_star(e).expect("checked");
                items.extend(crate::binder::struct_star::expand_struct_star(&binder, left)?);
            }
            SelectItem::UnnamedExpr(e) => {
                let t = bind_item(e)?;
                let name = match derived_name(e) {
                    // A struct field is named after the field, with _1, _2... where a source
                    // column or an earlier field has the name.
                    Some(base) if matches!(e, AstExpr::BinaryOp { op: datafusion::sql::sqlparser::ast::BinaryOperator::Arrow, .. }) => {
                        let taken = |n: &str| def.columns.iter().any(|c| c.name == n) || items.iter().any(|(x, _, _)| x == n);
                        let mut name = base.clone();
                        let mut i = 0;
                        while taken(&name) {
                            i += 1;
                            name = format!("{base}_{i}");
                        }
                        name
                    }
                    Some(n) => n,
                    None => generated.next_name(),
                };
                items.push((name, t, e.clone()));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let name = norm_ident(alias);
                if RESERVED.contains(&name.as_str()) {
                    return Err(invalid(format!("`{name}` is a reserved column name. You cannot use it as an alias for a column.")));
                }
                items.push((name, bind_item(expr)?, expr.clone()));
            }
            other => return Err(PlanError::Unsupported { feature: format!("select item {other}") }),
        }
    }
    if items.iter().any(|(_, _, e)| crate::binder::is_null_literal(e)) {
        return Err(invalid("Can't infer a type of null. Please explicitly cast it to a required type, e.g. CAST(null AS VARCHAR)."));
    }
    for (name, _, _) in &items {
        if RESERVED.contains(&name.as_str()) && kind == QueryKind::Persistent {
            return Err(invalid(format!("Reserved column name in select: `{name}`. Please remove or alias the column.")));
        }
    }
    let mut seen = HashSet::new();
    for (name, _, _) in &items {
        if !seen.insert(name.clone()) {
            return Err(invalid(format!("duplicate column name \"{name}\" in the projection: alias one of them")));
        }
    }

    // Which items are keys: (position in the projection, name, expression); keys that the
    // projection lacks (PARTITION BY with a star) come first.
    let mut keys: Vec<(usize, String, Typed)> = Vec::new();
    let mut values: Vec<(usize, String, Typed)> = Vec::new();
    let mut items: Vec<Option<(String, Typed, AstExpr)>> = items.into_iter().map(Some).collect();
    let persistent = kind == QueryKind::Persistent;
    if !q.partition_by.is_empty() {
        let is_null = |e: &AstExpr| matches!(e, AstExpr::Value(v) if v.value == datafusion::sql::sqlparser::ast::Value::Null);
        if q.partition_by.len() > 1 && q.partition_by.iter().any(is_null) {
            return Err(invalid("Cannot PARTITION BY multiple columns including NULL"));
        }
        let has_star = q.select.iter().any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)));
        let mut missing = Vec::new();
        for pe in q.partition_by.iter().filter(|e| !is_null(e)) {
            let t = binder.bind(pe).map_err(|e| in_clause("PARTITION BY", e))?;
            let text = qualified_text(pe, &qualifier);
            let pos = items.iter().position(|it| it.as_ref().is_some_and(|(_, _, x)| qualified_text(x, &qualifier) == text));
            match pos {
                Some(i) => {
                    let (name, t, _) = items[i].take().expect("present");
                    if persistent {
                        check_key_once(&name, &text, &qualifier, &items)?;
                    }
                    keys.push((i, name, t));
                }
                None if has_star || !persistent => {
                    let name = derived_name(pe).unwrap_or_else(|| generated.next_name());
                    keys.push((0, name, t));
                }
                None => missing.push(qualified_text(pe, &qualifier)),
            }
        }
        if !missing.is_empty() {
            let (what, list) = if missing.len() == 1 {
                ("expression", missing[0].clone())
            } else {
                let (last, first) = missing.split_last().expect("non-empty");
                ("expressions", format!("{} and {last}", first.join(", ")))
            };
            return Err(invalid(format!(
                "The query used to build `{}` must include the partitioning {what} {list} in its projection (eg, SELECT {}...).",
                sink_name.unwrap_or("OUTPUT"),
                missing.join(", ")
            )));
        }
    } else {
        let key_names: Vec<String> = def.key_columns().map(|c| c.name.clone()).collect();
        let mut found = vec![false; key_names.len()];
        for i in 0..items.len() {
            let Some((_, _, src)) = &items[i] else { continue };
            let key_ix = key_names.iter().position(|k| src_is_column(src, k, &qualifier));
            if let Some(k) = key_ix {
                if !found[k] {
                    found[k] = true;
                    let (name, t, src) = items[i].take().expect("present");
                    if persistent {
                        check_key_once(&name, &qualified_text(&src, &qualifier), &qualifier, &items)?;
                    }
                    keys.push((i, name, t));
                }
            }
        }
        if persistent {
            if let Some(i) = found.iter().position(|f| !f) {
                let sink = sink_name.unwrap_or("OUTPUT");
                return Err(invalid(format!(
                    "The query used to build `{sink}` must include the key column {k} in its projection (eg, SELECT {k}...).",
                    k = key_names[i]
                )));
            }
        }
    }
    for (i, it) in items.into_iter().enumerate() {
        if let Some((name, t, _)) = it {
            values.push((i, name, t));
        }
    }
    if persistent && values.is_empty() && !is_table {
        // ksqlDB refuses a stream with no value columns.
        return Err(invalid("The projection contains no value columns."));
    }

    // Persistent queries write key columns first; push queries show the projection's order.
    let mut ordered: Vec<(usize, String, Typed, ColumnKind)> = keys
        .into_iter()
        .map(|(i, n, t)| (i, n, t, ColumnKind::Key))
        .chain(values.into_iter().map(|(i, n, t)| (i, n, t, ColumnKind::Value)))
        .collect();
    if !persistent {
        ordered.sort_by_key(|o| o.0);
    }
    let mut fields = Vec::new();
    let mut exprs = Vec::new();
    for (_, name, t, kind) in ordered {
        let dt = if t.dt == datafusion::arrow::datatypes::DataType::Null { datafusion::arrow::datatypes::DataType::Utf8 } else { t.dt.clone() };
        fields.push(Field::new(&name, dt.clone(), true));
        exprs.push(binder.physical(&t.clone().cast_to(&dt))?);
        p.columns.push(Column { name, data_type: dt, kind });
    }
    // A windowed stream's results keep the window in their key.
    if persistent && q.partition_by.is_empty() && def.window.is_some() {
        for (w, col) in super::source::WINDOW_COLUMNS.iter().zip(["_WINDOWSTART", "_WINDOWEND"]) {
            let id = datafusion::sql::sqlparser::ast::Ident::with_quote('`', w.to_string());
            let t = binder.bind(&AstExpr::Identifier(id))?;
            fields.push(Field::new(col, datafusion::arrow::datatypes::DataType::Int64, false));
            exprs.push(binder.physical(&t)?);
        }
        p.window = def.window;
    }
    // Record headers, when the source forwards them, go on to the sink.
    if let Ok(f) = p.schema().field_with_name(engine::types::HEADERS_COLUMN).cloned() {
        let t = Typed::new(datafusion::logical_expr::col(datafusion::common::Column::new_unqualified(f.name())), f.data_type().clone());
        exprs.push(binder.physical(&t)?);
        fields.push(f);
    }
    p.push(OpSpec::Project(ProjectSpec { exprs, timestamp: None }), batch_schema(fields));
    if !q.partition_by.is_empty() && is_table {
        return Err(invalid("PARTITION BY is not supported on tables: use GROUP BY to re-key a table"));
    }
    Ok(p)
}

/// How `SELECT *` lists a source's columns.
#[derive(Clone, Copy)]
struct StarOrder {
    /// Include a windowed source's WINDOWSTART and WINDOWEND (after the key columns): push
    /// queries show them, persistent queries carry the window in their key.
    window_columns: bool,
    /// Value columns before key columns, as ksqlDB expands a star after PARTITION BY (the
    /// repartition moves the old key into the value, at its end).
    values_first: bool,
}

fn expand_star(def: &crate::catalog::SourceDef, order: StarOrder, binder: &Binder<'_>, items: &mut Vec<(String, Typed, AstExpr)>) -> Result<()> {
    let nkeys = def.key_columns().count();
    let mut names: Vec<&str> = def.columns.iter().map(|c| c.name.as_str()).collect();
    if def.window.is_some() && order.window_columns {
        for (i, w) in super::source::WINDOW_COLUMNS.iter().enumerate() {
            names.insert(nkeys + i, w);
        }
    }
    if order.values_first {
        let keys: Vec<&str> = names.drain(..nkeys).collect();
        names.extend(keys);
    }
    for name in names {
        let id = datafusion::sql::sqlparser::ast::Ident::with_quote('`', name.to_string());
        let e = AstExpr::Identifier(id);
        items.push((name.to_string(), binder.bind(&e)?, e.clone()));
    }
    Ok(())
}

/// The name ksqlDB gives an unaliased select item: a column's name, a struct field's name.
fn derived_name(e: &AstExpr) -> Option<String> {
    match e {
        AstExpr::Identifier(id) => Some(norm_ident(id)),
        AstExpr::CompoundIdentifier(parts) => parts.last().map(norm_ident),
        AstExpr::BinaryOp { op: datafusion::sql::sqlparser::ast::BinaryOperator::Arrow, right, .. } => derived_name(right),
        AstExpr::Nested(inner) => derived_name(inner),
        _ => None,
    }
}

/// True when a select item is a reference to column `name` (bare or qualified).
fn src_is_column(src: &AstExpr, name: &str, qualifier: &str) -> bool {
    match src {
        AstExpr::Identifier(id) => norm_ident(id) == name,
        AstExpr::CompoundIdentifier(parts) => match parts.as_slice() {
            [q, c] => norm_ident(q) == qualifier && norm_ident(c) == name,
            _ => false,
        },
        AstExpr::Nested(inner) => src_is_column(inner, name, qualifier),
        _ => false,
    }
}

/// ksqlDB refuses a key column selected more than once (under another alias).
fn check_key_once(name: &str, text: &str, qualifier: &str, rest: &[Option<(String, Typed, AstExpr)>]) -> Result<()> {
    if let Some((other, _, _)) = rest.iter().flatten().find(|(_, _, x)| qualified_text(x, qualifier) == text) {
        return Err(invalid(format!(
            "The projection contains a key column (`{name}`) more than once, aliased as: {name} and {other}."
        )));
    }
    Ok(())
}

/// An expression as ksqlDB prints it in messages: upper-case, columns qualified by the source.
fn qualified_text(e: &AstExpr, qualifier: &str) -> String {
    let mut e = e.clone();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut e, |x| {
        if let AstExpr::Identifier(id) = x {
            let q = datafusion::sql::sqlparser::ast::Ident::new(qualifier);
            *x = AstExpr::CompoundIdentifier(vec![q, id.clone()]);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    crate::binder::aggregate::norm_text(&e)
}

fn in_clause(clause: &str, e: PlanError) -> PlanError {
    match e {
        PlanError::Invalid(m) => PlanError::Invalid(format!("Error in {clause} expression: {m}")),
        other => other,
    }
}

fn query_text(q: &Query) -> String {
    let mut s = String::new();
    for i in &q.select {
        s.push_str(&i.to_string().to_uppercase());
        s.push(' ');
    }
    for e in q.selection.iter().chain(q.partition_by.iter()).chain(q.group_by.iter()).chain(q.having.iter()) {
        s.push_str(&e.to_string().to_uppercase());
        s.push(' ');
    }
    s
}
