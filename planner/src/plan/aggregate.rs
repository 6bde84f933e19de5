//! Planning GROUP BY queries:
//!
//! ```text
//! Source -> [Materialize (tables)] -> [Filter WHERE] -> Project (group keys, aggregate arguments)
//!   -> [repartition by the group key through an internal topic]
//!   -> Aggregate [window] -> [Filter HAVING: failing groups become tombstones] -> Project (SELECT)
//! ```
//!
//! Select expressions are bound after the aggregation: GROUP BY expressions and aggregate calls
//! become references to the aggregate's output columns. The result is a table keyed by the GROUP
//! BY expressions (and the window).

use std::time::Duration;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DFSchema;
use datafusion::sql::sqlparser::ast::{Expr as AstExpr, SelectItem};
use engine::format::FormatSpec;
use engine::spec::{
    AggCall, AggregateSpec, FilterMode, FilterSpec, MaterializeSpec, OpSpec, ProjectSpec, SinkKind, SinkSpec,
    SourceColumn, SourceKind, SourceSpec, WindowDef, WindowKind,
};
use engine::types::TableId;

use super::select::QueryKind;
use super::source::{batch_schema, plan_source, RESERVED};
use super::Pipeline;
use crate::ast::{ColumnKind, Emit, Query, SourceType, WindowKind as AstWindow, WindowSpec};
use crate::binder::aggregate::{contains_aggregate, first_aggregate, norm_text, AggScope, GroupExpr};
use crate::binder::functions::FunctionRegistry;
use crate::binder::{physical_expr, Binder, Scope, ScopeColumn, Typed};
use crate::catalog::{Catalog, Column, WindowType};
use crate::error::{invalid, PlanError, Result};
use crate::parser::norm_ident;

/// ksqlDB's grace period when a window clause gives none.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// True when `q` needs an aggregation.
pub fn is_aggregation(q: &Query) -> bool {
    if !q.group_by.is_empty() || q.window.is_some() || q.having.is_some() {
        return true;
    }
    q.select.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => contains_aggregate(e),
        _ => false,
    })
}


/// Resolves a window clause.
pub fn window_def(w: &WindowSpec) -> Result<WindowDef> {
    let ms = |d: Duration| d.as_millis() as i64;
    let kind = match w.kind {
        AstWindow::Tumbling { size } => WindowKind::Tumbling { size_ms: ms(size) },
        AstWindow::Hopping { size, advance } => {
            if advance > size {
                return Err(invalid(format!(
                    "Window advance ({} ms) must not be larger than the window size ({} ms)",
                    ms(advance),
                    ms(size)
                )));
            }
            if advance.is_zero() {
                return Err(invalid("Window advance must be larger than zero"));
            }
            WindowKind::Hopping { size_ms: ms(size), advance_ms: ms(advance) }
        }
        AstWindow::Session { gap } => WindowKind::Session { gap_ms: ms(gap) },
    };
    let size = match kind {
        WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms, .. } => size_ms,
        WindowKind::Session { gap_ms } => gap_ms,
    };
    if size <= 0 {
        return Err(invalid("Window size must be larger than zero"));
    }
    let grace = ms(w.grace.unwrap_or(DEFAULT_GRACE));
    let retention = match w.retention {
        Some(r) => {
            let r = ms(r);
            if r < size + grace {
                return Err(invalid(format!(
                    "Retention ({r} ms) must be at least the window size plus the grace period ({} ms)",
                    size + grace
                )));
            }
            r
        }
        None => size + grace,
    };
    Ok(WindowDef { kind, grace_ms: grace, retention_ms: retention })
}

/// Plans an aggregation query up to its final projection.
pub fn plan_aggregate(
    q: &Query,
    kind: QueryKind,
    sink_name: Option<&str>,
    id: &str,
    catalog: &Catalog,
    functions: &FunctionRegistry,
) -> Result<Pipeline> {
    let def = catalog
        .sources
        .get(&q.from.name)
        .ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: q.from.name.clone() })?;
    let joined = !q.joins.is_empty();
    if joined && def.source_type == SourceType::Table {
        return Err(PlanError::Unsupported { feature: "GROUP BY over a table-table join".into() });
    }
    let is_table = def.source_type == SourceType::Table;
    let select_calls = q.select.iter().any(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => super::table_function::has_call(e),
        _ => false,
    });
    if select_calls {
        return Err(invalid("Table functions cannot be used with aggregations."));
    }
    if def.value_format.kind == engine::format::FormatKind::Kafka {
        return Err(invalid(format!(
            "Source(s) {} are using the 'KAFKA' value format. This format does not yet support GROUP BY.",
            def.name
        )));
    }
    if q.window.is_some() && is_table {
        return Err(invalid(format!("WINDOW is not supported on tables: {} is a table, windows apply to streams", def.name)));
    }
    if q.group_by.is_empty() {
        if q.window.is_some() {
            return Err(invalid("WINDOW clause requires a GROUP BY clause."));
        }
        if kind == QueryKind::Persistent {
            let calls: Vec<String> = q
                .select
                .iter()
                .filter_map(|i| match i {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => aggregate_calls(e),
                    _ => None,
                })
                .flatten()
                .collect();
            return Err(invalid(format!(
                "CREATE TABLE AS SELECT statement does not support aggregate function [{}] without a GROUP BY clause.",
                calls.join(", ")
            )));
        }
    }
    if q.emit == Some(Emit::Final) && q.window.is_none() {
        return Err(invalid("EMIT FINAL is only supported for windowed aggregations"));
    }
    if !q.partition_by.is_empty() {
        return Err(invalid("PARTITION BY cannot be used with GROUP BY"));
    }
    let window = q.window.as_ref().map(window_def).transpose()?;
    if q.emit == Some(Emit::Final) && matches!(window.map(|w| w.kind), Some(WindowKind::Session { .. })) {
        return Err(PlanError::Unsupported { feature: "EMIT FINAL with SESSION windows".into() });
    }
    let qualifier = q.from.alias.clone().unwrap_or_else(|| def.name.clone());
    let text: String = q.select.iter().map(|s| s.to_string().to_uppercase()).collect::<Vec<_>>().join(" ")
        + &q.selection.as_ref().map(|e| e.to_string().to_uppercase()).unwrap_or_default()
        + &q.group_by.iter().map(|e| e.to_string().to_uppercase()).collect::<String>();
    let pseudo = text.contains("ROWPARTITION") || text.contains("ROWOFFSET");
    if q.selection.as_ref().is_some_and(contains_aggregate) {
        return Err(invalid("Aggregate functions are not allowed in WHERE: use HAVING"));
    }
    let (mut p, in_scope, in_schema) = if joined {
        join_input(q, kind, id, catalog, functions)?
    } else {
        let src = plan_source(def, &qualifier, pseudo, catalog, functions)?;
        let mut p = Pipeline::new(SourceType::Table, vec![def.name.clone()]);
        p.push(OpSpec::Source(src.spec.clone()), src.schema.clone());
        if is_table {
            let key_columns = def.columns.iter().enumerate().filter(|(_, c)| c.is_key()).map(|(i, _)| i).collect();
            p.push(OpSpec::Materialize(MaterializeSpec { key_columns, table: TableId(1) }), src.schema.clone());
        }
        (p, src.scope, src.schema)
    };
    let binder = Binder::new(&in_scope, &in_schema, &catalog.types, functions)?;
    if let Some(w) = q.selection.as_ref().filter(|_| !joined) {
        let t = binder.bind(w)?;
        if t.dt != DataType::Boolean && t.dt != DataType::Null {
            return Err(invalid(format!("WHERE must be a BOOLEAN expression, but {w} is {}", crate::types::type_name(&t.dt))));
        }
        let predicate = binder.physical(&crate::binder::predicate(t.cast_to(&DataType::Boolean)))?;
        let mode = if is_table { FilterMode::Changelog } else { FilterMode::Stream };
        p.push(OpSpec::Filter(FilterSpec { predicate, mode }), in_schema.clone());
    }

    // GROUP BY expressions.
    // A push query may aggregate without GROUP BY: everything is one group, of a constant key.
    let constant_group = q.group_by.is_empty();
    let group_by: Vec<AstExpr> = if constant_group {
        vec![AstExpr::Value(datafusion::sql::sqlparser::ast::Value::Boolean(true).into())]
    } else {
        // `GROUP BY (a, b)` is `GROUP BY a, b`.
        match q.group_by.as_slice() {
            [AstExpr::Tuple(items)] => items.iter().map(|e| strip_nested(e).clone()).collect(),
            list => list.iter().map(|e| strip_nested(e).clone()).collect(),
        }
    };
    let mut groups = Vec::new();
    let mut group_typed = Vec::new();
    for (i, g) in group_by.iter().enumerate() {
        if contains_aggregate(g) {
            let name = first_aggregate(g).unwrap_or_default();
            return Err(invalid(format!("GROUP BY does not support aggregate functions: {name} is an aggregate function.")));
        }
        let t = binder.bind(g)?;
        if matches!(t.dt, DataType::Map(_, _)) {
            return Err(invalid(format!("cannot GROUP BY {g}: MAP values cannot be keys")));
        }
        let text = if constant_group { "\u{1}".to_string() } else { norm_text(g) };
        groups.push(GroupExpr { text, field: format!("_g{i}"), data_type: t.dt.clone() });
        group_typed.push(t);
    }

    // The scope after the aggregation: group columns (simple ones by name) and window bounds.
    let mut post_scope = Scope::default();
    let mut post_fields: Vec<Field> = Vec::new();
    for (g, e) in groups.iter().zip(&group_by) {
        let (q, name) = match e {
            AstExpr::Identifier(id) => (qualifier.clone(), norm_ident(id)),
            AstExpr::CompoundIdentifier(parts) if parts.len() == 2 => (norm_ident(&parts[0]), norm_ident(&parts[1])),
            AstExpr::CompoundIdentifier(parts) => (qualifier.clone(), parts.last().map(norm_ident).unwrap_or_default()),
            _ => (qualifier.clone(), g.field.clone()),
        };
        post_scope.columns.push(ScopeColumn { qualifier: Some(q), name, field: g.field.clone(), data_type: g.data_type.clone() });
        post_fields.push(Field::new(&g.field, g.data_type.clone(), true));
    }
    if window.is_some() {
        for w in ["WINDOWSTART", "WINDOWEND"] {
            post_scope.columns.push(ScopeColumn { qualifier: Some(qualifier.clone()), name: w.into(), field: w.into(), data_type: DataType::Int64 });
            post_fields.push(Field::new(w, DataType::Int64, true));
        }
    }
    let post_base = Schema::new(post_fields.clone());
    let mut post = Binder::new(&post_scope, &post_base, &catalog.types, functions)?;
    post.agg = Some(AggScope { source: &binder, groups: groups.clone(), calls: Default::default() });

    // Bind the select list and HAVING.
    let mut items: Vec<(String, Typed, String)> = Vec::new();
    let mut generated = super::GeneratedNames::new(in_scope.columns.iter().map(|c| c.name.as_str()));
    let mut select: Vec<(AstExpr, Option<String>)> = Vec::new();
    for item in &q.select {
        match item {
            SelectItem::UnnamedExpr(e) => select.push((e.clone(), None)),
            SelectItem::ExprWithAlias { expr, alias } => select.push((expr.clone(), Some(norm_ident(alias)))),
            // A star lists the source's key and value columns; each must be grouped.
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) if joined => {
                return Err(PlanError::Unsupported { feature: "SELECT * with GROUP BY over a join".into() });
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                for c in def.columns.iter().filter(|c| matches!(c.kind, ColumnKind::Key | ColumnKind::Value)) {
                    let id = datafusion::sql::sqlparser::ast::Ident::with_quote('`', c.name.clone());
                    select.push((AstExpr::Identifier(id), None));
                }
            }
            other => return Err(PlanError::Unsupported { feature: format!("select item {other}") }),
        }
    }
    for (e, alias) in &select {
        let alias = alias.clone();
        let t = post.bind(e)?;
        let name = match alias {
            Some(a) => {
                if RESERVED.contains(&a.as_str()) {
                    return Err(invalid(format!("`{a}` is a reserved column name. You cannot use it as an alias for a column.")));
                }
                a
            }
            None => derived_name(e).unwrap_or_else(|| generated.next_name()),
        };
        items.push((name, t, norm_text(strip_nested(e))));
    }
    let having = match &q.having {
        Some(h) => {
            let t = post.bind(h).map_err(|e| match e {
                PlanError::Invalid(m) => PlanError::Invalid(format!("Error in HAVING expression: {m}")),
                o => o,
            })?;
            if t.dt != DataType::Boolean && t.dt != DataType::Null {
                return Err(invalid(format!("HAVING must be a BOOLEAN expression, but {h} is {}", crate::types::type_name(&t.dt))));
            }
            Some(t.cast_to(&DataType::Boolean))
        }
        None => None,
    };
    let calls = post.agg.as_ref().expect("set above").calls.borrow().clone();
    // ksqlDB keeps these functions' intermediate STRUCTs in the source's value format.
    const STRUCT_STATE: &[&str] = &["AVG", "CORRELATION", "STDDEV_SAMP", "STDDEV_SAMPLE"];
    if def.value_format.kind == engine::format::FormatKind::Delimited
        && calls.iter().any(|c| STRUCT_STATE.contains(&c.function.name().to_uppercase().as_str()))
    {
        return Err(invalid(
            "One of the functions used in the statement has an intermediate type that the value format can not handle. Please remove the function or change the format.",
        ));
    }
    if is_table {
        if let Some(c) = calls.iter().find(|c| !c.function.supports_retract()) {
            return Err(invalid(format!(
                "{} cannot aggregate a table: aggregating a table takes changed rows back, which {} cannot do",
                c.function.name(),
                c.function.name()
            )));
        }
    }
    if calls.is_empty() && q.window.is_none() && kind == QueryKind::Persistent && items.iter().all(|(_, _, t)| groups.iter().any(|g| &g.text == t)) {
        // A GROUP BY without aggregates is allowed: it de-duplicates.
    }

    // Pre-aggregation projection: group keys, then every aggregate argument.
    let mut pre_fields = Vec::new();
    let mut pre_exprs = Vec::new();
    for (g, t) in groups.iter().zip(&group_typed) {
        let f = Field::new(&g.field, g.data_type.clone(), true);
        pre_fields.push(if constant_group { f } else { displayed(f, &g.text) });
        pre_exprs.push(binder.physical(t)?);
    }
    let mut agg_calls = Vec::new();
    let mut arg_fields = Vec::new();
    for c in &calls {
        let mut args = Vec::new();
        for (a, text) in c.args.iter().zip(&c.arg_texts) {
            let i = pre_fields.len();
            let f = displayed(Field::new(format!("_a{}", i - groups.len()), a.dt.clone(), true), text);
            arg_fields.push(f.clone());
            pre_fields.push(f);
            pre_exprs.push(binder.physical(a)?);
            args.push(i);
        }
        agg_calls.push(AggCall { function: c.function.clone(), args });
    }
    let pre_schema = batch_schema(pre_fields.clone());
    p.push(OpSpec::Project(ProjectSpec { exprs: pre_exprs, timestamp: None }), pre_schema.clone());

    // Repartition by the group key unless the rows are already where their group is.
    let log_partitions = Some(def.partitions);
    let by_source_key = !joined && {
        let keys: Vec<String> = def.key_columns().map(|c| c.name.clone()).collect();
        keys.len() == q.group_by.len()
            && q.group_by.iter().zip(&keys).all(|(e, k)| matches!(e, AstExpr::Identifier(id) if &norm_ident(id) == k))
    };
    if !by_source_key && log_partitions != Some(1) {
        let topic = format!("_eddy_{id}_repartition");
        let key_fields: datafusion::arrow::datatypes::Fields = pre_fields[..groups.len()].iter().cloned().collect();
        let value_fields: datafusion::arrow::datatypes::Fields = pre_fields[groups.len()..].iter().cloned().collect();
        let n = groups.len();
        let m = pre_fields.len() - n;
        let value_format = if m == 1 { FormatSpec::json().with_wrap_single_value(true) } else { FormatSpec::json() };
        let sink = SinkSpec {
            topic: topic.clone(),
            kind: SinkKind::Stream,
            key_format: FormatSpec::json(),
            value_format,
            key_columns: (0..n).collect(),
            value_columns: (n..n + m).collect(),
            key_fields: key_fields.clone(),
            value_fields: value_fields.clone(),
            window: None,
            append: true,
            materialize: None,
            internal: true,
        };
        let source = SourceSpec {
            topic: topic.clone(),
            kind: SourceKind::Stream,
            key_format: FormatSpec::json(),
            value_format,
            key_fields,
            value_fields,
            columns: (0..n).map(SourceColumn::Key).chain((0..m).map(SourceColumn::Value)).collect(),
            timestamp: None,
            window: None,
            internal: true,
            error_topic: None,
            late_topic: None,
        };
        p.split(OpSpec::Sink(sink), OpSpec::Source(source), pre_schema.clone());
        p.internal_topics.push((topic, log_partitions.unwrap_or(1)));
    }

    // The aggregate: output = group columns, window bounds, aggregate results.
    let mut agg_fields = post_fields.clone();
    for c in &calls {
        agg_fields.push(Field::new(&c.field, c.function.return_type(), true));
    }
    let agg_schema = batch_schema(agg_fields.clone());
    p.push(
        OpSpec::Aggregate(AggregateSpec {
            group_columns: (0..groups.len()).collect(),
            calls: agg_calls,
            window,
            emit_final: q.emit == Some(Emit::Final),
            retract: is_table,
            emit_old: having.is_some(),
            table: TableId(0),
        }),
        agg_schema.clone(),
    );
    let agg_df = DFSchema::try_from(agg_schema.as_ref().clone())?;
    if let Some(h) = &having {
        let predicate = physical_expr(&crate::binder::predicate(h.clone()), &agg_df)?;
        p.push(OpSpec::Filter(FilterSpec { predicate, mode: FilterMode::Having }), agg_schema.clone());
    }

    // Final projection: keys (GROUP BY order), then values; window bounds last for the sink.
    let mut keys: Vec<(String, Typed)> = Vec::new();
    let mut values: Vec<(String, Typed)> = Vec::new();
    let mut used = vec![false; items.len()];
    for g in &groups {
        match items.iter().position(|(_, _, t)| *t == g.text) {
            Some(i) if !used[i] => {
                used[i] = true;
                if kind == QueryKind::Persistent {
                    if let Some(j) = items.iter().enumerate().position(|(j, it)| j != i && it.2 == g.text) {
                        return Err(invalid(format!(
                            "The projection contains a key column more than once: `{}` and `{}`.",
                            items[i].0, items[j].0
                        )));
                    }
                }
                keys.push((items[i].0.clone(), items[i].1.clone()));
            }
            _ if kind == QueryKind::Persistent => {
                return Err(invalid(format!(
                    "The query used to build `{}` must include the grouping expression {} in its projection (eg, SELECT {}...).",
                    sink_name.unwrap_or("OUTPUT"),
                    g.text,
                    g.text
                )))
            }
            _ => {}
        }
    }
    for (i, (name, t, _)) in items.iter().enumerate() {
        if !used[i] {
            values.push((name.clone(), t.clone()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (n, _) in keys.iter().chain(values.iter()) {
        if !seen.insert(n.clone()) {
            return Err(invalid(format!("duplicate column name \"{n}\" in the projection: alias one of them")));
        }
    }
    if kind == QueryKind::Persistent && values.is_empty() {
        return Err(invalid("The projection contains no value columns."));
    }
    let mut out_fields = Vec::new();
    let mut exprs = Vec::new();
    // Push queries show what they select; persistent ones carry the window in their key.
    let window_cols = false;
    let wcol = |name: &str| Typed::new(datafusion::logical_expr::col(datafusion::common::Column::new_unqualified(name)), DataType::Int64);
    let mut ordered: Vec<(String, Typed, ColumnKind)> = keys.into_iter().map(|(n, t)| (n, t, ColumnKind::Key)).collect();
    if window_cols {
        for w in ["WINDOWSTART", "WINDOWEND"] {
            ordered.push((w.to_string(), wcol(w), ColumnKind::Key));
        }
    }
    ordered.extend(values.into_iter().map(|(n, t)| (n, t, ColumnKind::Value)));
    if kind == QueryKind::Transient {
        // Push queries show the projection's order.
        ordered.sort_by_key(|(n, _, _)| items.iter().position(|it| &it.0 == n).unwrap_or(0));
    }
    for (name, t, kind_) in &ordered {
        let dt = if t.dt == DataType::Null { DataType::Utf8 } else { t.dt.clone() };
        out_fields.push(Field::new(name, dt.clone(), true));
        exprs.push(physical_expr(&t.clone().cast_to(&dt), &agg_df)?);
        p.columns.push(Column { name: name.clone(), data_type: dt, kind: if window_cols { ColumnKind::Value } else { kind_.clone() } });
    }
    if window_cols {
        // A push query shows keys and window bounds as plain columns.
        let nkeys = ordered.iter().filter(|o| o.2 == ColumnKind::Key).count();
        for c in p.columns.iter_mut().take(nkeys) {
            c.kind = ColumnKind::Key;
        }
    }
    if let Some(w) = window {
        if kind == QueryKind::Persistent {
            for w in ["WINDOWSTART", "WINDOWEND"] {
                out_fields.push(Field::new(format!("_{w}"), DataType::Int64, false));
                exprs.push(physical_expr(&wcol(w), &agg_df)?);
            }
        }
        p.window = Some(match w.kind {
            WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms, .. } => WindowType::Time { size_ms: size_ms as u64 },
            WindowKind::Session { .. } => WindowType::Session,
        });
    }
    p.push(OpSpec::Project(ProjectSpec { exprs, timestamp: None }), batch_schema(out_fields));
    Ok(p)
}

/// The aggregate calls in `e`, as text (for messages).
fn aggregate_calls(e: &AstExpr) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |x| {
        if let AstExpr::Function(f) = x {
            let name = f.name.0.first().and_then(|p| p.as_ident()).map(norm_ident).unwrap_or_default();
            if f.name.0.len() == 1 && engine::ops::aggregate::is_aggregate(&name) {
                out.push(norm_text(x));
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    Some(out)
}

/// `e` without enclosing parentheses.
fn strip_nested(e: &AstExpr) -> &AstExpr {
    match e {
        AstExpr::Nested(inner) => strip_nested(inner),
        other => other,
    }
}

fn derived_name(e: &AstExpr) -> Option<String> {
    match e {
        AstExpr::Identifier(id) => Some(norm_ident(id)),
        AstExpr::CompoundIdentifier(parts) => parts.last().map(norm_ident),
        AstExpr::BinaryOp { op: datafusion::sql::sqlparser::ast::BinaryOperator::Arrow, right, .. } => derived_name(right),
        AstExpr::Nested(inner) => derived_name(inner),
        _ => None,
    }
}

/// `f` carrying `text` as the name users know it by (see [`engine::types::DISPLAY_NAME_KEY`]).
fn displayed(f: Field, text: &str) -> Field {
    f.with_metadata([(engine::types::DISPLAY_NAME_KEY.to_string(), text.to_string())].into())
}

/// A join's rows (after WHERE) as the input of an aggregation: the join planned as `SELECT *`,
/// each column in scope under its source's alias, and ROWTIME the joined row's event time.
fn join_input(
    q: &Query,
    kind: QueryKind,
    id: &str,
    catalog: &Catalog,
    functions: &FunctionRegistry,
) -> Result<(Pipeline, Scope, datafusion::arrow::datatypes::SchemaRef)> {
    let inner = Query {
        selection: q.selection.clone(),
        ..Query::new(vec![SelectItem::Wildcard(Default::default())], q.from.clone(), q.joins.clone())
    };
    let mut p = super::join::plan_join(&inner, kind, None, id, catalog, functions)?;
    if p.output_type == SourceType::Table {
        return Err(PlanError::Unsupported { feature: "GROUP BY over a table-table join".into() });
    }
    let mut aliases: Vec<String> = std::iter::once(&q.from)
        .chain(q.joins.iter().map(|j| &j.source))
        .map(|s| s.alias.clone().unwrap_or_else(|| s.name.clone()))
        .collect();
    // `A_B_X` is column `X` of `A_B` before column `B_X` of `A`.
    aliases.sort_by_key(|a| std::cmp::Reverse(a.len()));
    let mut scope = Scope::default();
    for c in &p.columns {
        let (qualifier, name) = match aliases.iter().find_map(|a| c.name.strip_prefix(a.as_str())?.strip_prefix('_').map(|n| (a, n))) {
            Some((a, n)) => (Some(a.clone()), n.to_string()),
            None => (None, c.name.clone()),
        };
        scope.columns.push(ScopeColumn { qualifier, name, field: c.name.clone(), data_type: c.data_type.clone() });
    }
    for a in std::iter::once(None).chain(aliases.iter().cloned().map(Some)) {
        let ts = engine::types::TS_COLUMN.to_string();
        scope.columns.push(ScopeColumn { qualifier: a, name: "ROWTIME".into(), field: ts, data_type: DataType::Int64 });
    }
    let schema = p.schema();
    p.columns.clear();
    p.output_type = SourceType::Table;
    Ok((p, scope, schema))
}
