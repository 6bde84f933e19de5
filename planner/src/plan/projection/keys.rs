//! The key of a query over one source (the PARTITION BY stage): the PARTITION BY expressions,
//! else the source's own key columns. Key items leave the select list; a persistent query must
//! select each key once.

use datafusion::sql::sqlparser::ast::Expr as AstExpr;

use super::super::context::{in_clause, PlanContext};
use super::super::names::{derived_name, is_null, GeneratedNames};
use super::qualified_text;
use super::single::{Item, Placed};
use crate::binder::Binder;
use crate::error::{invalid, Result};
use crate::parser::norm_ident;

/// Splits the select list into key and value columns (each with its position in the list);
/// keys that the select list lacks (PARTITION BY with a star) come first.
pub fn single_keys(cx: &PlanContext<'_>, binder: &Binder<'_>, items: Vec<Item>, generated: &mut GeneratedNames) -> Result<(Vec<Placed>, Vec<Placed>)> {
    let mut items: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    let keys = if cx.query.partition_by.is_empty() {
        source_keys(cx, &mut items)?
    } else {
        partition_keys(cx, binder, &mut items, generated)?
    };
    let values = items.into_iter().enumerate().filter_map(|(i, it)| it.map(|(n, t, _)| (i, n, t))).collect();
    Ok((keys, values))
}

fn partition_keys(cx: &PlanContext<'_>, binder: &Binder<'_>, items: &mut [Option<Item>], generated: &mut GeneratedNames) -> Result<Vec<Placed>> {
    let q = cx.query;
    if q.partition_by.len() > 1 && q.partition_by.iter().any(is_null) {
        return Err(invalid("Cannot PARTITION BY multiple columns including NULL"));
    }
    let has_star = q.select.iter().any(|i| matches!(i, datafusion::sql::sqlparser::ast::SelectItem::Wildcard(_) | datafusion::sql::sqlparser::ast::SelectItem::QualifiedWildcard(..)));
    let mut keys = Vec::new();
    let mut missing = Vec::new();
    for pe in q.partition_by.iter().filter(|e| !is_null(e)) {
        let t = binder.bind(pe).map_err(|e| in_clause("PARTITION BY", e))?;
        let text = qualified_text(pe, &cx.qualifier);
        let pos = items.iter().position(|it| it.as_ref().is_some_and(|(_, _, x)| qualified_text(x, &cx.qualifier) == text));
        match pos {
            Some(i) => {
                let (name, t, _) = items[i].take().expect("present");
                if cx.persistent() {
                    check_key_once(&name, &text, &cx.qualifier, items)?;
                }
                keys.push((i, name, t));
            }
            None if has_star || !cx.persistent() => {
                let name = derived_name(pe).unwrap_or_else(|| generated.next_name());
                keys.push((0, name, t));
            }
            None => missing.push(text),
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
            cx.sink(),
            missing.join(", ")
        )));
    }
    Ok(keys)
}

fn source_keys(cx: &PlanContext<'_>, items: &mut [Option<Item>]) -> Result<Vec<Placed>> {
    let key_names: Vec<String> = cx.from.key_columns().map(|c| c.name.clone()).collect();
    let mut found = vec![false; key_names.len()];
    let mut keys = Vec::new();
    for i in 0..items.len() {
        let Some((_, _, src)) = &items[i] else { continue };
        let Some(k) = key_names.iter().position(|k| is_column(src, k, &cx.qualifier)) else { continue };
        if !found[k] {
            found[k] = true;
            let (name, t, src) = items[i].take().expect("present");
            if cx.persistent() {
                check_key_once(&name, &qualified_text(&src, &cx.qualifier), &cx.qualifier, items)?;
            }
            keys.push((i, name, t));
        }
    }
    if cx.persistent() {
        if let Some(i) = found.iter().position(|f| !f) {
            return Err(invalid(format!(
                "The query used to build `{}` must include the key column {k} in its projection (eg, SELECT {k}...).",
                cx.sink(),
                k = key_names[i]
            )));
        }
    }
    Ok(keys)
}

/// True when a select item is a reference to column `name` (bare or qualified).
fn is_column(src: &AstExpr, name: &str, qualifier: &str) -> bool {
    match src {
        AstExpr::Identifier(id) => norm_ident(id) == name,
        AstExpr::CompoundIdentifier(parts) => match parts.as_slice() {
            [q, c] => norm_ident(q) == qualifier && norm_ident(c) == name,
            _ => false,
        },
        AstExpr::Nested(inner) => is_column(inner, name, qualifier),
        _ => false,
    }
}

/// ksqlDB refuses a key column selected more than once (under another alias).
fn check_key_once(name: &str, text: &str, qualifier: &str, rest: &[Option<Item>]) -> Result<()> {
    if let Some((other, _, _)) = rest.iter().flatten().find(|(_, _, x)| qualified_text(x, qualifier) == text) {
        return Err(invalid(format!(
            "The projection contains a key column (`{name}`) more than once, aliased as: {name} and {other}."
        )));
    }
    Ok(())
}
