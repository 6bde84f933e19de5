//! The projection of a join's result. Unaliased columns keep their own name when no other
//! source has a column of that name, else `ALIAS_COL`; a star lists every source's columns as
//! `ALIAS_COL`. The key: the PARTITION BY expressions if any; else the synthetic `ROWKEY` for
//! FULL OUTER joins and joins on expressions; else the first selected column among each key
//! pair's plain columns (the left side's first).

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as AstExpr, SelectItem, SelectItemQualifiedWildcardKind};

use super::super::context::{column_ref, PlanContext, Projection, Relation};
use super::super::join::JoinKeys;
use super::super::names::{self, column_text, is_null, RESERVED, ROWKEY};
use crate::ast::ColumnKind;
use crate::binder::aggregate::norm_text;
use crate::binder::{Binder, Scope, ScopeColumn, Typed};
use crate::error::{invalid, Result};
use crate::parser::norm_ident;

/// A select item: its name, its bound expression, and what identifies it (`ALIAS_COL` for a
/// column, else the expression's text).
type Item = (String, Typed, Option<String>);

/// Plans `select` (with `partition_by`) over a join's result.
pub fn plan_projection(cx: &PlanContext<'_>, mut rel: Relation, keys: &JoinKeys, select: &[SelectItem], partition_by: &[AstExpr]) -> Result<Relation> {
    let binder = cx.binder(&rel.scope, &rel.schema)?;
    let (mut items, mut generated) = select_items(&binder, &rel.scope, select)?;
    let key_index = key_items(cx, &binder, &rel.scope, keys, select, partition_by, &mut items, &mut generated)?;
    if cx.persistent() {
        names::check_not_reserved(items.iter().map(|i| i.0.as_str()))?;
        for &k in &key_index {
            let id = items[k].2.clone();
            let same: Vec<&str> = items.iter().filter(|(_, _, c)| *c == id).map(|(n, _, _)| n.as_str()).collect();
            if same.len() > 1 {
                return Err(invalid(format!(
                    "The projection contains a key column (`{}`) more than once, aliased as: {}.",
                    id.unwrap_or_default(),
                    same.join(" and ")
                )));
            }
        }
    }
    let order: Vec<usize> = key_index.iter().copied().chain((0..items.len()).filter(|i| !key_index.contains(i))).collect();
    names::check_unique(order.iter().map(|&i| items[i].0.as_str()))?;
    let mut out = Projection::default();
    for i in order {
        let kind = if key_index.contains(&i) { ColumnKind::Key } else { ColumnKind::Value };
        out.column(&mut rel.p.columns, &items[i].0, &items[i].1, kind, &binder.schema)?;
    }
    rel.schema = out.push(&mut rel.p);
    Ok(rel)
}

fn select_items(binder: &Binder<'_>, scope: &Scope, select: &[SelectItem]) -> Result<(Vec<Item>, usize)> {
    let mut items: Vec<Item> = Vec::new();
    let mut generated = 0;
    let visible = |c: &&ScopeColumn| !RESERVED.contains(&c.name.as_str());
    for item in select {
        match item {
            SelectItem::Wildcard(_) => {
                items.extend(scope.columns.iter().filter(|c| c.qualifier.is_some()).filter(visible).map(star_item));
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                let qn = n.0.last().and_then(|p| p.as_ident()).map(norm_ident).unwrap_or_default();
                let cols: Vec<&ScopeColumn> = scope.columns.iter().filter(|c| c.qualifier.as_deref() == Some(qn.as_str())).filter(visible).collect();
                if cols.is_empty() {
                    return Err(invalid(format!("'{qn}' is not a valid stream/table name or alias")));
                }
                items.extend(cols.into_iter().map(star_item));
            }
            SelectItem::UnnamedExpr(e) => {
                let t = binder.bind(e)?;
                let name = join_name(e, scope).unwrap_or_else(|| {
                    generated += 1;
                    format!("KSQL_COL_{}", generated - 1)
                });
                items.push((name, t, Some(column_text(e, scope).unwrap_or_else(|| norm_text(e)))));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let id = column_text(expr, scope).unwrap_or_else(|| norm_text(expr));
                items.push((norm_ident(alias), binder.bind(expr)?, Some(id)));
            }
            other => return Err(names::unsupported_item(other)),
        }
    }
    Ok((items, generated))
}

/// Chooses the key items (adding those the select list lacks); returns their indices.
#[allow(clippy::too_many_arguments)]
fn key_items(
    cx: &PlanContext<'_>,
    binder: &Binder<'_>,
    scope: &Scope,
    keys: &JoinKeys,
    select: &[SelectItem],
    partition_by: &[AstExpr],
    items: &mut Vec<Item>,
    generated: &mut usize,
) -> Result<Vec<usize>> {
    let mut key_index: Vec<usize> = Vec::new();
    for pe in partition_by.iter().filter(|e| !is_null(e)) {
        let t = binder.bind(pe)?;
        let id = column_text(pe, scope).unwrap_or_else(|| norm_text(pe));
        match items.iter().position(|(_, _, c)| c.as_deref() == Some(id.as_str())) {
            Some(i) => key_index.push(i),
            None => {
                let name = join_name(pe, scope).unwrap_or_else(|| format!("KSQL_COL_{generated}"));
                items.push((name, t, Some(id)));
                key_index.push(items.len() - 1);
            }
        }
    }
    let candidates: &[Vec<String>] = if partition_by.is_empty() { &keys.candidates } else { &[] };
    // An unqualified `*` brings the synthetic key along; qualified stars do not.
    let has_star = select.iter().any(|i| matches!(i, SelectItem::Wildcard(_)));
    for cands in candidates {
        let synthetic = keys.full_outer || cands.is_empty();
        let wanted: Vec<String> = if synthetic { vec![keys.rowkey_name.clone()] } else { cands.clone() };
        // The first candidate (left side first) that is selected.
        let found = wanted.iter().find_map(|w| items.iter().position(|(_, _, c)| c.as_deref() == Some(w.as_str())));
        match found {
            Some(i) if !key_index.contains(&i) => {
                // The key carries the join key, also where its own side is missing (a foreign-key
                // join's key is the left table's own key).
                if !keys.foreign_key {
                    items[i].1 = keys.rowkey.clone();
                }
                key_index.push(i);
            }
            None if synthetic && has_star => {
                items.push((keys.rowkey_name.clone(), keys.rowkey.clone(), Some(keys.rowkey_name.clone())));
                key_index.push(items.len() - 1);
            }
            _ if cx.persistent() => {
                let shown: Vec<String> = wanted.iter().map(|w| w.replacen('_', ".", 1)).collect();
                return Err(invalid(format!(
                    "The query used to build `{}` must include the join expressions {} in its projection (eg, SELECT {}...).",
                    cx.sink(),
                    shown.join(" or "),
                    shown[0]
                )));
            }
            _ => {}
        }
    }
    Ok(key_index)
}

fn star_item(c: &ScopeColumn) -> Item {
    let name = format!("{}_{}", c.qualifier.clone().unwrap_or_default(), c.name);
    (name.clone(), column_ref(&c.field, c.data_type.clone()), Some(name))
}

/// ksqlDB's name of an unaliased select item in a join: a column's own name when no other
/// source has a column of that name, else `ALIAS_COL`.
fn join_name(e: &AstExpr, scope: &Scope) -> Option<String> {
    match e {
        AstExpr::BinaryOp { op: BinaryOperator::Arrow, right, .. } => match right.as_ref() {
            AstExpr::Identifier(id) => Some(norm_ident(id)),
            _ => None,
        },
        _ => {
            let full = column_text(e, scope)?;
            if !full.contains('_') || full.starts_with(ROWKEY) {
                return Some(full);
            }
            let name = match e {
                AstExpr::Identifier(id) => norm_ident(id),
                AstExpr::CompoundIdentifier(p) => p.last().map(norm_ident)?,
                AstExpr::Nested(inner) => return join_name(inner, scope),
                _ => return Some(full),
            };
            let sources: std::collections::HashSet<&str> =
                scope.columns.iter().filter(|c| c.name == name && c.qualifier.is_some()).filter_map(|c| c.qualifier.as_deref()).collect();
            Some(if sources.len() > 1 { full } else { name })
        }
    }
}
