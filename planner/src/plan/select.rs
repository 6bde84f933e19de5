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
    let src = plan_source(def, &qualifier, pseudo, catalog, functions)?;
    let is_table = def.source_type == SourceType::Table;
    let mut p = Pipeline::new(def.source_type, vec![def.name.clone()]);
    p.push(OpSpec::Source(src.spec.clone()), src.schema.clone());
    let binder = Binder::new(&src.scope, &src.schema, &catalog.types, functions)?;

    if let Some(w) = &q.selection {
        let t = binder.bind(w).map_err(|e| in_clause("WHERE", e))?;
        if t.dt != datafusion::arrow::datatypes::DataType::Boolean && t.dt != datafusion::arrow::datatypes::DataType::Null {
            return Err(invalid(format!("WHERE must be a BOOLEAN expression, but {w} is {}", crate::types::type_name(&t.dt))));
        }
        let predicate = binder.physical(&t.cast_to(&datafusion::arrow::datatypes::DataType::Boolean))?;
        let mode = if is_table { FilterMode::Table } else { FilterMode::Stream };
        p.push(OpSpec::Filter(FilterSpec { predicate, mode }), src.schema.clone());
    }

    // Projection items: (name, bound expression, source text).
    let mut items: Vec<(String, Typed, String)> = Vec::new();
    let mut generated = 0;
    for item in &q.select {
        match item {
            SelectItem::Wildcard(_) => expand_star(def, None, &binder, &mut items)?,
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                let qn = n.0.last().and_then(|p| p.as_ident()).map(norm_ident).unwrap_or_default();
                if qn != qualifier {
                    return Err(invalid(format!("'{qn}' is not a valid stream/table name or alias")));
                }
                expand_star(def, Some(&qualifier), &binder, &mut items)?
            }
            SelectItem::UnnamedExpr(e) => {
                let t = binder.bind(e)?;
                let name = derived_name(e).unwrap_or_else(|| {
                    generated += 1;
                    format!("KSQL_COL_{}", generated - 1)
                });
                items.push((name, t, e.to_string()));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let name = norm_ident(alias);
                if RESERVED.contains(&name.as_str()) {
                    return Err(invalid(format!("`{name}` is a reserved column name. You cannot use it as an alias for a column.")));
                }
                items.push((name, binder.bind(expr)?, expr.to_string()));
            }
            other => return Err(PlanError::Unsupported { feature: format!("select item {other}") }),
        }
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

    // Which items are keys.
    let mut keys: Vec<(String, Typed)> = Vec::new();
    let mut values: Vec<(String, Typed)> = Vec::new();
    if !q.partition_by.is_empty() {
        let mut remaining = items;
        for pe in &q.partition_by {
            if matches!(pe, AstExpr::Value(v) if v.value == datafusion::sql::sqlparser::ast::Value::Null) {
                continue;
            }
            let t = binder.bind(pe).map_err(|e| in_clause("PARTITION BY", e))?;
            let text = pe.to_string();
            let pos = remaining.iter().position(|(n, _, src)| *src == text || derived_name(pe).as_deref() == Some(n.as_str()));
            let name = match pos {
                Some(i) => remaining.remove(i).0,
                None => derived_name(pe).unwrap_or_else(|| format!("KSQL_COL_{}", generated + keys.len())),
            };
            keys.push((name, t));
        }
        values = remaining.into_iter().map(|(n, t, _)| (n, t)).collect();
    } else {
        let key_names: Vec<String> = def.key_columns().map(|c| c.name.clone()).collect();
        let mut found = vec![false; key_names.len()];
        for (name, t, src) in items {
            let key_ix = key_names.iter().position(|k| {
                src_is_column(&src, k, &qualifier)
            });
            match key_ix {
                Some(i) if !found[i] => {
                    found[i] = true;
                    keys.push((name, t));
                }
                _ => values.push((name, t)),
            }
        }
        if kind == QueryKind::Persistent {
            if let Some(i) = found.iter().position(|f| !f) {
                let sink = sink_name.unwrap_or("OUTPUT");
                return Err(invalid(format!(
                    "The query used to build `{sink}` must include the key column {k} in its projection (eg, SELECT {k}...).",
                    k = key_names[i]
                )));
            }
        }
    }
    if kind == QueryKind::Persistent && values.is_empty() && !is_table {
        // ksqlDB refuses a stream with no value columns.
        return Err(invalid("The projection contains no value columns."));
    }

    let mut fields = Vec::new();
    let mut exprs = Vec::new();
    for (i, (name, t)) in keys.iter().chain(values.iter()).enumerate() {
        let kind = if i < keys.len() { ColumnKind::Key } else { ColumnKind::Value };
        let dt = if t.dt == datafusion::arrow::datatypes::DataType::Null { datafusion::arrow::datatypes::DataType::Utf8 } else { t.dt.clone() };
        fields.push(Field::new(name, dt.clone(), true));
        exprs.push(binder.physical(&t.clone().cast_to(&dt))?);
        p.columns.push(Column { name: name.clone(), data_type: dt, kind });
    }
    p.push(OpSpec::Project(ProjectSpec { exprs, timestamp: None }), batch_schema(fields));
    if !q.partition_by.is_empty() && is_table {
        return Err(invalid("PARTITION BY is not supported on tables: use GROUP BY to re-key a table"));
    }
    Ok(p)
}

fn expand_star(
    def: &crate::catalog::SourceDef,
    _qualifier: Option<&str>,
    binder: &Binder<'_>,
    items: &mut Vec<(String, Typed, String)>,
) -> Result<()> {
    let nkeys = def.key_columns().count();
    let mut names: Vec<&str> = def.columns.iter().map(|c| c.name.as_str()).collect();
    if def.window.is_some() {
        for (i, w) in super::source::WINDOW_COLUMNS.iter().enumerate() {
            names.insert(nkeys + i, w);
        }
    }
    for name in names {
        let id = datafusion::sql::sqlparser::ast::Ident::with_quote('`', name.to_string());
        let e = AstExpr::Identifier(id);
        items.push((name.to_string(), binder.bind(&e)?, e.to_string()));
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

/// True when a select item's text is a reference to column `name` (bare or qualified).
fn src_is_column(src: &str, name: &str, qualifier: &str) -> bool {
    let unquote = |s: &str| -> String {
        if (s.starts_with('`') && s.ends_with('`')) || (s.starts_with('"') && s.ends_with('"')) {
            s[1..s.len() - 1].to_string()
        } else {
            s.to_uppercase()
        }
    };
    let parts: Vec<&str> = src.split('.').collect();
    match parts.as_slice() {
        [c] => unquote(c) == name,
        [q, c] => unquote(q) == qualifier && unquote(c) == name,
        _ => false,
    }
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
