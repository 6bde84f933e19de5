//! The projection of a query over one stream or table (no join, no aggregation): table
//! functions (an `Explode` node), the select list with ksqlDB's names, and the result's key,
//! into one `Project` node.
//!
//! Output columns follow ksqlDB: key columns first. Without PARTITION BY the key is the
//! source's key, and a persistent query must select it; with PARTITION BY the key is the
//! partitioning expression (PARTITION BY NULL: no key).

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as AstExpr, Ident, SelectItem, SelectItemQualifiedWildcardKind};

use super::super::context::{column_ref, PlanContext, Projection, Relation};
use super::super::names::{self, derived_name, GeneratedNames, WINDOW_COLUMNS};
use super::super::table_function::{find_calls, plan_table_functions, rewrite, TableCall};
use crate::ast::{ColumnKind, SourceType};
use crate::binder::struct_star::{expand_struct_star, struct_star};
use crate::binder::{is_null_literal, Binder, Typed};
use crate::catalog::SourceDef;
use crate::error::{invalid, Result};
use crate::parser::norm_ident;

/// A select item: its name, its bound expression and its syntax.
pub type Item = (String, Typed, AstExpr);

/// A select item and its position in the select list.
pub type Placed = (usize, String, Typed);

/// Plans the projection over `rel`: the pipeline's last node is the result before its sink.
pub fn plan_projection(cx: &PlanContext<'_>, mut rel: Relation) -> Result<Relation> {
    let def = cx.from;
    let is_table = def.source_type == SourceType::Table;
    if cx.persistent() && is_table && def.window.is_some() {
        return Err(invalid("KSQL does not support persistent queries on windowed tables."));
    }
    let calls = find_calls(names::select_exprs(&cx.query.select))?;
    if !calls.is_empty() {
        if is_table {
            return Err(invalid("Table source is not supported with table functions"));
        }
        let binder = cx.binder(&rel.scope, &rel.schema)?;
        rel.scope = plan_table_functions(&mut rel.p, &binder, &rel.scope, &calls)?;
        rel.schema = rel.p.schema();
    }
    let (scope, schema) = (rel.scope.clone(), rel.schema.clone());
    let binder = cx.binder(&scope, &schema)?;
    let mut generated = GeneratedNames::new(def.columns.iter().map(|c| c.name.as_str()));
    let items = select_items(cx, &binder, &calls, &mut generated)?;
    if items.iter().any(|(_, _, e)| is_null_literal(e)) {
        return Err(invalid("Can't infer a type of null. Please explicitly cast it to a required type, e.g. CAST(null AS VARCHAR)."));
    }
    if cx.persistent() {
        names::check_not_reserved(items.iter().map(|i| i.0.as_str()))?;
    }
    names::check_unique(items.iter().map(|i| i.0.as_str()))?;
    let (keys, values) = super::keys::single_keys(cx, &binder, items, &mut generated)?;
    if cx.persistent() && values.is_empty() && !is_table {
        // ksqlDB refuses a stream with no value columns.
        return Err(invalid("The projection contains no value columns."));
    }
    output(cx, rel, &binder, keys, values)
}

/// The select list, bound (table function calls replaced by their results).
fn select_items(cx: &PlanContext<'_>, binder: &Binder<'_>, calls: &[TableCall], generated: &mut GeneratedNames) -> Result<Vec<Item>> {
    let def = cx.from;
    let bind_item = |e: &AstExpr| if calls.is_empty() { binder.bind(e) } else { binder.bind(&rewrite(e, calls)) };
    let star = StarOrder { window_columns: !cx.persistent(), values_first: !cx.query.partition_by.is_empty() };
    let mut items: Vec<Item> = Vec::new();
    for item in &cx.query.select {
        match item {
            SelectItem::Wildcard(_) => expand_star(def, star, binder, &mut items)?,
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                let qn = n.0.last().and_then(|p| p.as_ident()).map(norm_ident).unwrap_or_default();
                if qn != cx.qualifier {
                    return Err(invalid(format!("'{qn}' is not a valid stream/table name or alias")));
                }
                expand_star(def, star, binder, &mut items)?
            }
            SelectItem::UnnamedExpr(e) if struct_star(e).is_some() => {
                items.extend(expand_struct_star(binder, struct_star(e).expect("checked"))?);
            }
            SelectItem::UnnamedExpr(e) => {
                let t = bind_item(e)?;
                let name = match derived_name(e) {
                    // A struct field is named after the field, with _1, _2... where a source
                    // column or an earlier field has the name.
                    Some(base) if matches!(e, AstExpr::BinaryOp { op: BinaryOperator::Arrow, .. }) => {
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
                let name = names::alias_name(alias)?;
                items.push((name, bind_item(expr)?, expr.clone()));
            }
            other => return Err(names::unsupported_item(other)),
        }
    }
    Ok(items)
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

fn expand_star(def: &SourceDef, order: StarOrder, binder: &Binder<'_>, items: &mut Vec<Item>) -> Result<()> {
    let nkeys = def.key_columns().count();
    let mut names: Vec<&str> = def.columns.iter().map(|c| c.name.as_str()).collect();
    if def.window.is_some() && order.window_columns {
        for (i, w) in WINDOW_COLUMNS.iter().enumerate() {
            names.insert(nkeys + i, w);
        }
    }
    if order.values_first {
        let keys: Vec<&str> = names.drain(..nkeys).collect();
        names.extend(keys);
    }
    for name in names {
        let e = AstExpr::Identifier(Ident::with_quote('`', name.to_string()));
        items.push((name.to_string(), binder.bind(&e)?, e.clone()));
    }
    Ok(())
}

/// The `Project` node: persistent queries write key columns first, push queries show the
/// projection's order; a windowed source's window and the records' headers go on to the sink.
fn output(cx: &PlanContext<'_>, mut rel: Relation, binder: &Binder<'_>, keys: Vec<Placed>, values: Vec<Placed>) -> Result<Relation> {
    let mut ordered: Vec<(usize, String, Typed, ColumnKind)> = keys
        .into_iter()
        .map(|(i, n, t)| (i, n, t, ColumnKind::Key))
        .chain(values.into_iter().map(|(i, n, t)| (i, n, t, ColumnKind::Value)))
        .collect();
    if !cx.persistent() {
        ordered.sort_by_key(|o| o.0);
    }
    let mut out = Projection::default();
    for (_, name, t, kind) in ordered {
        out.column(&mut rel.p.columns, &name, &t, kind, &binder.schema)?;
    }
    // A windowed stream's results keep the window in their key.
    if cx.persistent() && cx.query.partition_by.is_empty() && cx.from.window.is_some() {
        for (w, col) in WINDOW_COLUMNS.iter().zip(["_WINDOWSTART", "_WINDOWEND"]) {
            let t = binder.bind(&AstExpr::Identifier(Ident::with_quote('`', w.to_string())))?;
            out.internal(Field::new(col, DataType::Int64, false), &t, &binder.schema)?;
        }
        rel.p.window = cx.from.window;
    }
    // Record headers, when the source forwards them, go on to the sink.
    if let Ok(f) = rel.p.schema().field_with_name(engine::types::HEADERS_COLUMN).cloned() {
        let t = column_ref(f.name(), f.data_type().clone());
        out.internal(f, &t, &binder.schema)?;
    }
    rel.schema = out.push(&mut rel.p);
    if !cx.query.partition_by.is_empty() && cx.from.source_type == SourceType::Table {
        return Err(invalid("PARTITION BY is not supported on tables: use GROUP BY to re-key a table"));
    }
    Ok(rel)
}
