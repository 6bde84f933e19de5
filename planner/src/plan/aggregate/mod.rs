//! The GROUP BY / WINDOW / HAVING stage:
//!
//! ```text
//! (relation after WHERE) -> Project (group keys, aggregate arguments)
//!   -> [repartition by the group key through an internal topic]
//!   -> Aggregate [window] -> [Filter HAVING: failing groups become tombstones]
//! ```
//!
//! Select expressions are bound after the aggregation: GROUP BY expressions and aggregate calls
//! become references to the aggregate's output columns (the projection stage then picks them).
//! The result is a table keyed by the GROUP BY expressions (and the window). A table input is
//! materialized first, so that each change carries the old row to take back.

mod groups;
pub mod window;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DFSchema;
use datafusion::sql::sqlparser::ast::Expr as AstExpr;
use engine::format::{FormatKind, FormatSpec};
use engine::spec::{AggCall, AggregateSpec, FilterMode, FilterSpec, MaterializeSpec, OpSpec, SourceKind, WindowDef};
use engine::types::TableId;

use self::groups::{bind_select, group_by, post_scope, Groups};
use super::context::{bind_condition, PlanContext, QueryKind, Relation};
use super::names::{select_exprs, strip_nested};
use super::pipeline::batch_schema;
use super::repartition::{topic_specs, TopicFormat};
use super::table_function::has_call;
use crate::ast::{Emit, Query, SourceType};
use crate::binder::aggregate::{contains_aggregate, norm_text, AggCallBound, AggScope, GroupExpr};
use crate::binder::{physical_expr, predicate, Binder, Scope, ScopeColumn, Typed};
use crate::error::{invalid, PlanError, Result};
use crate::parser::norm_ident;

/// True when `q` needs an aggregation.
pub fn is_aggregation(q: &Query) -> bool {
    !q.group_by.is_empty() || q.window.is_some() || q.having.is_some() || select_exprs(&q.select).any(contains_aggregate)
}

/// An aggregation planned up to its HAVING: what the projection of its result needs.
pub struct Aggregated {
    /// The relation after the aggregate (and HAVING).
    pub rel: Relation,
    /// The select list bound after the aggregation: (name, expression, normalised text).
    pub items: Vec<(String, Typed, String)>,
    /// The GROUP BY expressions.
    pub groups: Vec<GroupExpr>,
    /// The aggregate's output schema, which the select expressions refer to.
    pub output: DFSchema,
    /// The window, if any.
    pub window: Option<WindowDef>,
}

/// The checks that need no planning; returns the resolved window clause.
pub fn check(cx: &PlanContext<'_>) -> Result<Option<WindowDef>> {
    let (q, def) = (cx.query, cx.from);
    let is_table = def.source_type == SourceType::Table;
    if !q.joins.is_empty() && is_table {
        return Err(PlanError::Unsupported { feature: "GROUP BY over a table-table join".into() });
    }
    if select_exprs(&q.select).any(has_call) {
        return Err(invalid("Table functions cannot be used with aggregations."));
    }
    if def.value_format.kind == FormatKind::Kafka {
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
        if cx.kind == QueryKind::Persistent {
            let calls: Vec<String> = select_exprs(&q.select).flat_map(aggregate_calls).collect();
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
    let window = q.window.as_ref().map(window::window_def).transpose()?;
    if q.selection.as_ref().is_some_and(contains_aggregate) {
        return Err(invalid("Aggregate functions are not allowed in WHERE: use HAVING"));
    }
    Ok(window)
}

/// Prepares a single source for aggregating: the result is a table; a table's rows are
/// materialized first, so that each change carries the old row to take back.
pub fn source_input(cx: &PlanContext<'_>, rel: &mut Relation) {
    rel.p.output_type = SourceType::Table;
    let def = cx.from;
    if def.source_type == SourceType::Table {
        let key_columns = def.columns.iter().enumerate().filter(|(_, c)| c.is_key()).map(|(i, _)| i).collect();
        rel.p.push(OpSpec::Materialize(MaterializeSpec { key_columns, table: TableId(1) }), rel.schema.clone());
    }
}

/// A join's rows (projected as `SELECT *`) as the input of an aggregation: each column in
/// scope under its source's alias, and ROWTIME the joined row's event time.
pub fn join_input(cx: &PlanContext<'_>, mut rel: Relation) -> Relation {
    let aliases = super::names::aliases_longest_first(&cx.query.from, &cx.query.joins);
    let mut scope = Scope::default();
    for c in &rel.p.columns {
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
    rel.p.columns.clear();
    rel.p.output_type = SourceType::Table;
    rel.scope = scope;
    rel
}

/// Plans the aggregation of `rel` (with `window`), up to and including HAVING.
pub fn plan_aggregate(cx: &PlanContext<'_>, mut rel: Relation, window: Option<WindowDef>) -> Result<Aggregated> {
    let (input, input_schema) = (rel.scope.clone(), rel.schema.clone());
    let binder = cx.binder(&input, &input_schema)?;
    let groups = group_by(cx, &binder)?;
    let (post_scope, post_fields) = post_scope(cx, &groups, window.is_some());
    let post_base = Schema::new(post_fields.clone());
    let mut post = cx.binder(&post_scope, &post_base)?;
    post.agg = Some(AggScope { source: &binder, groups: groups.groups.clone(), calls: Default::default() });
    let items = bind_select(cx, &post, &input)?;
    let having = cx.query.having.as_ref().map(|h| bind_condition(&post, "HAVING", h)).transpose()?;
    let calls = post.agg.as_ref().expect("set above").calls.borrow().clone();
    check_calls(cx, &calls)?;
    let (agg_calls, pre_fields) = pre_projection(&mut rel, &binder, &groups, &calls)?;
    repartition(cx, &mut rel, groups.groups.len(), &pre_fields);
    let mut agg_fields = post_fields;
    agg_fields.extend(calls.iter().map(|c| Field::new(&c.field, c.function.return_type(), true)));
    let agg_schema = batch_schema(agg_fields);
    let spec = AggregateSpec {
        group_columns: (0..groups.groups.len()).collect(),
        calls: agg_calls,
        window,
        emit_final: cx.query.emit == Some(Emit::Final),
        retract: cx.from.source_type == SourceType::Table,
        emit_old: having.is_some(),
        table: TableId(0),
    };
    rel.p.push(OpSpec::Aggregate(spec), agg_schema.clone());
    let output = DFSchema::try_from(agg_schema.as_ref().clone())?;
    if let Some(h) = having {
        let predicate = physical_expr(&predicate(h), &output)?;
        rel.p.push(OpSpec::Filter(FilterSpec { predicate, mode: FilterMode::Having }), agg_schema.clone());
    }
    rel.schema = agg_schema;
    Ok(Aggregated { rel, items, groups: groups.groups, output, window })
}

/// Refuses aggregate functions the query's input cannot feed.
fn check_calls(cx: &PlanContext<'_>, calls: &[AggCallBound]) -> Result<()> {
    // ksqlDB keeps these functions' intermediate STRUCTs in the source's value format.
    const STRUCT_STATE: &[&str] = &["AVG", "CORRELATION", "STDDEV_SAMP", "STDDEV_SAMPLE"];
    if cx.from.value_format.kind == FormatKind::Delimited
        && calls.iter().any(|c| STRUCT_STATE.contains(&c.function.name().to_uppercase().as_str()))
    {
        return Err(invalid(
            "One of the functions used in the statement has an intermediate type that the value format can not handle. Please remove the function or change the format.",
        ));
    }
    if cx.from.source_type == SourceType::Table {
        if let Some(c) = calls.iter().find(|c| !c.function.supports_retract()) {
            return Err(invalid(format!(
                "{} cannot aggregate a table: aggregating a table takes changed rows back, which {} cannot do",
                c.function.name(),
                c.function.name()
            )));
        }
    }
    Ok(())
}

/// The projection before the aggregate: group keys, then every aggregate argument.
fn pre_projection(rel: &mut Relation, binder: &Binder<'_>, groups: &Groups, calls: &[AggCallBound]) -> Result<(Vec<AggCall>, Vec<Field>)> {
    let mut out = super::context::Projection::default();
    let mut fields = Vec::new();
    for (g, t) in groups.groups.iter().zip(&groups.typed) {
        let f = Field::new(&g.field, g.data_type.clone(), true);
        let f = if groups.constant { f } else { displayed(f, &g.text) };
        fields.push(f.clone());
        out.internal(f, t, &binder.schema)?;
    }
    let n = groups.groups.len();
    let mut agg_calls = Vec::new();
    for c in calls {
        let mut args = Vec::new();
        for (a, text) in c.args.iter().zip(&c.arg_texts) {
            let i = fields.len();
            let f = displayed(Field::new(format!("_a{}", i - n), a.dt.clone(), true), text);
            fields.push(f.clone());
            out.internal(f, a, &binder.schema)?;
            args.push(i);
        }
        agg_calls.push(AggCall { function: c.function.clone(), args });
    }
    rel.schema = out.push(&mut rel.p);
    Ok((agg_calls, fields))
}

/// Repartitions by the group key unless the rows are already where their group is.
fn repartition(cx: &PlanContext<'_>, rel: &mut Relation, n: usize, fields: &[Field]) {
    let q = cx.query;
    let by_source_key = q.joins.is_empty() && {
        let keys: Vec<String> = cx.from.key_columns().map(|c| c.name.clone()).collect();
        keys.len() == q.group_by.len()
            && q.group_by.iter().zip(&keys).all(|(e, k)| matches!(e, AstExpr::Identifier(id) if &norm_ident(id) == k))
    };
    let partitions = cx.from.partitions;
    if by_source_key || partitions == 1 {
        return;
    }
    let topic = format!("_eddy_{}_repartition", cx.id);
    let value = if fields.len() - n == 1 { FormatSpec::json().with_wrap_single_value(true) } else { FormatSpec::json() };
    let format = TopicFormat { key: FormatSpec::json(), value, kind: SourceKind::Stream };
    let (sink, source) = topic_specs(&topic, fields, n, format);
    rel.p.split(OpSpec::Sink(sink), OpSpec::Source(source), rel.schema.clone());
    rel.p.internal_topics.push((topic, partitions));
}

/// The aggregate calls in `e`, as text (for messages).
fn aggregate_calls(e: &AstExpr) -> Vec<String> {
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
    out
}

/// `f` carrying `text` as the name users know it by (see [`engine::types::DISPLAY_NAME_KEY`]).
fn displayed(f: Field, text: &str) -> Field {
    f.with_metadata([(engine::types::DISPLAY_NAME_KEY.to_string(), text.to_string())].into())
}

/// The GROUP BY expressions without parentheses; `GROUP BY (a, b)` is `GROUP BY a, b`.
fn group_exprs(q: &Query) -> Vec<AstExpr> {
    match q.group_by.as_slice() {
        [AstExpr::Tuple(items)] => items.iter().map(|e| strip_nested(e).clone()).collect(),
        list => list.iter().map(|e| strip_nested(e).clone()).collect(),
    }
}
