//! The WHERE stage: a `Filter` node over the relation FROM (and JOIN) produced. How a failing
//! row is treated depends on what flows: stream rows are dropped; a table's failing rows
//! become deletes of their keys (`FilterMode::Table`); where each change carries its old value
//! (a push query on a table, a table feeding an aggregation) every row is judged by the
//! predicate (`FilterMode::Changelog`).

use engine::spec::{FilterMode, FilterSpec, OpSpec};

use super::context::{bind_condition, PlanContext, Relation};
use crate::binder::predicate;
use crate::error::Result;

/// Appends the query's WHERE (if any) to `rel` as a filter in `mode`.
pub fn plan_where(cx: &PlanContext<'_>, rel: &mut Relation, mode: FilterMode) -> Result<()> {
    let Some(w) = &cx.query.selection else { return Ok(()) };
    let binder = cx.binder(&rel.scope, &rel.schema)?;
    let t = bind_condition(&binder, "WHERE", w)?;
    let predicate = binder.physical(&predicate(t))?;
    rel.p.push(OpSpec::Filter(FilterSpec { predicate, mode }), rel.schema.clone());
    Ok(())
}
