//! The projection of an aggregation's result: keys in GROUP BY order, then values; a
//! persistent query must select each GROUP BY expression exactly once, and carries the window
//! bounds (last) for its sink's windowed key.

use datafusion::arrow::datatypes::{DataType, Field};

use super::super::aggregate::window::window_type;
use super::super::aggregate::Aggregated;
use super::super::context::{column_ref, PlanContext, Projection, Relation};
use super::super::names::{self, WINDOW_COLUMNS};
use crate::ast::ColumnKind;
use crate::binder::Typed;
use crate::error::{invalid, Result};

/// Plans the select list over the aggregate's output.
pub fn plan_projection(cx: &PlanContext<'_>, agg: Aggregated) -> Result<Relation> {
    let Aggregated { mut rel, items, groups, output, window } = agg;
    let mut keys: Vec<(String, Typed)> = Vec::new();
    let mut used = vec![false; items.len()];
    for g in &groups {
        match items.iter().position(|(_, _, t)| *t == g.text) {
            Some(i) if !used[i] => {
                used[i] = true;
                if cx.persistent() {
                    if let Some(j) = items.iter().enumerate().position(|(j, it)| j != i && it.2 == g.text) {
                        return Err(invalid(format!(
                            "The projection contains a key column more than once: `{}` and `{}`.",
                            items[i].0, items[j].0
                        )));
                    }
                }
                keys.push((items[i].0.clone(), items[i].1.clone()));
            }
            _ if cx.persistent() => {
                return Err(invalid(format!(
                    "The query used to build `{}` must include the grouping expression {} in its projection (eg, SELECT {}...).",
                    cx.sink(),
                    g.text,
                    g.text
                )))
            }
            _ => {}
        }
    }
    let values: Vec<(String, Typed)> = items.iter().zip(&used).filter(|(_, u)| !**u).map(|((n, t, _), _)| (n.clone(), t.clone())).collect();
    names::check_unique(keys.iter().chain(values.iter()).map(|(n, _)| n.as_str()))?;
    if cx.persistent() && values.is_empty() {
        return Err(invalid("The projection contains no value columns."));
    }
    let mut ordered: Vec<(String, Typed, ColumnKind)> = keys.into_iter().map(|(n, t)| (n, t, ColumnKind::Key)).collect();
    ordered.extend(values.into_iter().map(|(n, t)| (n, t, ColumnKind::Value)));
    if !cx.persistent() {
        // Push queries show the projection's order.
        ordered.sort_by_key(|(n, _, _)| items.iter().position(|it| &it.0 == n).unwrap_or(0));
    }
    let mut out = Projection::default();
    for (name, t, kind) in ordered {
        out.column(&mut rel.p.columns, &name, &t, kind, &output)?;
    }
    if let Some(w) = window {
        // Persistent queries carry the window in their key.
        if cx.persistent() {
            for w in WINDOW_COLUMNS {
                out.internal(Field::new(format!("_{w}"), DataType::Int64, false), &column_ref(w, DataType::Int64), &output)?;
            }
        }
        rel.p.window = Some(window_type(&w));
    }
    rel.schema = out.push(&mut rel.p);
    Ok(rel)
}
