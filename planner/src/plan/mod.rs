//! Planning SELECT statements into engine DAGs, as one pipeline of stages:
//!
//! ```text
//! FROM (source) -> JOIN (join) -> WHERE (filter) -> GROUP BY / WINDOW / HAVING (aggregate)
//!   -> SELECT (projection, with the key: PARTITION BY, the source's key, the join key or the
//!      GROUP BY expressions) -> the sink (added by the caller)
//! ```
//!
//! Each stage is a module that reads the [`context::PlanContext`] and the
//! [`context::Relation`] the previous stage left, and appends nodes to its pipeline. Stages do
//! not call each other: this module runs them in order. Shared steps (binding a condition,
//! building a projection node, repartitioning through an internal topic, ksqlDB's names) live
//! in `context`, `repartition` and `names`, which call no stage. Adding a clause means adding a
//! stage here.

pub mod aggregate;
pub mod context;
pub mod filter;
pub mod join;
pub mod names;
pub mod pipeline;
pub mod projection;
pub mod repartition;
pub mod source;
pub mod table_function;
pub mod timestamp;

use datafusion::sql::sqlparser::ast::SelectItem;
use engine::spec::FilterMode;

pub use self::context::QueryKind;
use self::context::{PlanContext, Relation};
use self::join::JoinKeys;
pub use self::pipeline::Pipeline;
use crate::ast::{Query, SourceType};
use crate::binder::functions::FunctionRegistry;
use crate::catalog::Catalog;
use crate::error::Result;

/// Plans `q` up to its sink: the caller finishes the pipeline with a sink or a collector.
/// `sink_name` names the result of a persistent query in messages; `id` is the query's id.
pub fn plan_query(
    q: &Query,
    kind: QueryKind,
    sink_name: Option<&str>,
    id: &str,
    catalog: &Catalog,
    functions: &FunctionRegistry,
) -> Result<Pipeline> {
    let cx = PlanContext::new(q, kind, sink_name, id, catalog, functions)?;
    let rel = if aggregate::is_aggregation(q) {
        plan_grouped(&cx)?
    } else if !q.joins.is_empty() {
        let (rel, keys) = plan_joined(&cx)?;
        projection::joined::plan_projection(&cx, rel, &keys, &q.select, &q.partition_by)?
    } else {
        plan_single(&cx)?
    };
    Ok(rel.p)
}

/// A query over one stream or table: source -> where -> projection.
fn plan_single(cx: &PlanContext<'_>) -> Result<Relation> {
    let mut rel = source::read(cx, true)?;
    // A push query on a table judges deletes by the predicate too, so that rows it never
    // showed do not come out as tombstones.
    let mode = match (cx.from.source_type, cx.kind) {
        (SourceType::Table, QueryKind::Persistent) => FilterMode::Table,
        (SourceType::Table, QueryKind::Transient) => FilterMode::Changelog,
        (SourceType::Stream, _) => FilterMode::Stream,
    };
    filter::plan_where(cx, &mut rel, mode)?;
    projection::single::plan_projection(cx, rel)
}

/// The sources and their joins, then WHERE over the joined rows.
fn plan_joined(cx: &PlanContext<'_>) -> Result<(Relation, JoinKeys)> {
    join::check(cx)?;
    let (mut rel, keys) = join::plan_joins(cx)?;
    let mode = if rel.p.output_type == SourceType::Table { FilterMode::Table } else { FilterMode::Stream };
    filter::plan_where(cx, &mut rel, mode)?;
    Ok((rel, keys))
}

/// An aggregation: (source | joins as `SELECT *`) -> where -> aggregate -> projection.
fn plan_grouped(cx: &PlanContext<'_>) -> Result<Relation> {
    let window = aggregate::check(cx)?;
    let rel = if cx.query.joins.is_empty() {
        let mut rel = source::read(cx, false)?;
        aggregate::source_input(cx, &mut rel);
        let mode = if cx.from.source_type == SourceType::Table { FilterMode::Changelog } else { FilterMode::Stream };
        filter::plan_where(cx, &mut rel, mode)?;
        rel
    } else {
        let (rel, keys) = plan_joined(cx)?;
        let star = [SelectItem::Wildcard(Default::default())];
        let rel = projection::joined::plan_projection(cx, rel, &keys, &star, &[])?;
        aggregate::join_input(cx, rel)
    };
    let agg = aggregate::plan_aggregate(cx, rel, window)?;
    projection::grouped::plan_projection(cx, agg)
}
