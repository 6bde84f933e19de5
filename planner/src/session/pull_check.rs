//! What pull queries may say, with ksqlDB's errors: the clauses they refuse, the pseudo columns
//! they cannot read, and (when `ksql.query.pull.table.scan.enabled` is false) the key lookups a
//! WHERE must be made of: in every disjunct, each key column compared once with `=` (or `IN`)
//! to an expression without columns; window bounds and other columns may be compared besides.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{visit_expressions, BinaryOperator, Expr as AstExpr, SelectItem};

use crate::ast::Query;
use crate::binder::aggregate::norm_text;
use crate::binder::is_null_literal;
use crate::catalog::SourceDef;
use crate::error::{invalid, Result};
use crate::parser::norm_ident;
use crate::plan::names::{ROWOFFSET, ROWPARTITION, WINDOW_COLUMNS};
use crate::types::type_name;

/// Session property: may pull queries scan a whole table (default true)?
pub const TABLE_SCAN_ENABLED: &str = "ksql.query.pull.table.scan.enabled";
/// Session property: may pull queries have a LIMIT (default true)?
pub const LIMIT_ENABLED: &str = "ksql.query.pull.limit.clause.enabled";
/// Session property: the most state rows one pull query may read.
pub const MAX_SCANNED_ROWS: &str = "eddy.pull.max.scanned.rows";
/// The default of [`MAX_SCANNED_ROWS`].
pub const DEFAULT_MAX_SCANNED_ROWS: u64 = 10_000_000;

const MORE: &str = "See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query.";

/// ksqlDB's error for a clause pull queries do not have.
pub fn clause_error(what: &str) -> crate::error::PlanError {
    invalid(format!("Pull queries don't support {what} clauses. {MORE}"))
}

/// Refuses the clauses and columns pull queries on streams cannot have.
pub fn check_pull_query(q: &Query, limit_enabled: bool) -> Result<()> {
    if !q.joins.is_empty() {
        return Err(clause_error("JOIN"));
    }
    if !q.group_by.is_empty() {
        return Err(clause_error("GROUP BY"));
    }
    if q.having.is_some() {
        return Err(clause_error("HAVING"));
    }
    check_table_pull_query(q, limit_enabled)
}

/// Refuses what pull queries on tables cannot have: WINDOW and PARTITION BY (joins of tables,
/// GROUP BY and HAVING they have, see `pull_sql`), a LIMIT when disabled, pseudo columns.
pub fn check_table_pull_query(q: &Query, limit_enabled: bool) -> Result<()> {
    let clause = clause_error;
    if q.window.is_some() {
        return Err(clause("WINDOW"));
    }
    if !q.partition_by.is_empty() {
        return Err(clause("PARTITION BY"));
    }
    if q.limit.is_some() && !limit_enabled {
        return Err(invalid(format!(
            "LIMIT clause in pull queries is currently disabled. You can enable them by setting {LIMIT_ENABLED}=true. {MORE}"
        )));
    }
    let select: Vec<&AstExpr> = q
        .select
        .iter()
        .filter_map(|i| match i {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
            _ => None,
        })
        .collect();
    for (what, exprs) in [("SELECT", select), ("WHERE", q.selection.iter().collect())] {
        let mut found: Vec<String> = Vec::new();
        for e in exprs {
            for c in column_names(e) {
                if (c == ROWPARTITION || c == ROWOFFSET) && !found.contains(&c) {
                    found.push(c);
                }
            }
        }
        if !found.is_empty() {
            let list: Vec<String> = found.iter().map(|c| format!("`{c}`")).collect();
            return Err(invalid(format!("Pull queries don't support the following columns in {what} clauses: {}", list.join(", "))));
        }
    }
    Ok(())
}

/// Refuses `key IN (..., NULL, ...)` and text in the IN list of a numeric key, whatever the
/// table-scan setting.
pub fn check_null_keys(def: &SourceDef, w: &AstExpr) -> Result<()> {
    for d in split(w, &BinaryOperator::Or) {
        for c in split(d, &BinaryOperator::And) {
            if let AstExpr::InList { expr, list, negated: false } = c {
                if let Some(k) = key_column(def, expr) {
                    if list.iter().any(is_null_literal) {
                        return Err(invalid(format!("Primary key columns can not be NULL: ({k} = null)")));
                    }
                    // A key lookup takes literals of the key's type: text is not a number here.
                    let key = def.key_columns().find(|c| c.name == k).expect("a key column");
                    if crate::binder::coerce::is_numeric(&key.data_type) {
                        for item in list {
                            if let AstExpr::Value(v) = item {
                                if let datafusion::sql::sqlparser::ast::Value::SingleQuotedString(t) = &v.value {
                                    return Err(invalid(format!(
                                        "'{t}' can not be converted to the type of the key column: {k} {} KEY",
                                        type_name(&key.data_type)
                                    )));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// With table scans disabled: the WHERE must pin every key column in every disjunct.
pub fn check_key_lookup(def: &SourceDef, w: Option<&AstExpr>) -> Result<()> {
    let keys: Vec<&crate::catalog::Column> = def.key_columns().collect();
    let Some(w) = w else {
        return Err(invalid("WHERE clause missing key column"));
    };
    for disjunct in split(w, &BinaryOperator::Or) {
        // Per key column: the operators bounding it.
        let mut bounds: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
        for term in split(disjunct, &BinaryOperator::And) {
            let (left, op, right): (&AstExpr, String, Vec<&AstExpr>) = match term {
                AstExpr::BinaryOp { left, op, right }
                    if matches!(
                        op,
                        BinaryOperator::Eq
                            | BinaryOperator::NotEq
                            | BinaryOperator::Lt
                            | BinaryOperator::LtEq
                            | BinaryOperator::Gt
                            | BinaryOperator::GtEq
                    ) =>
                {
                    // Put the key side (if any) on the left.
                    if refers_to_key(def, right) && !refers_to_key(def, left) {
                        (right.as_ref(), op.to_string(), vec![left.as_ref()])
                    } else {
                        (left.as_ref(), op.to_string(), vec![right.as_ref()])
                    }
                }
                AstExpr::InList { expr, list, negated: false } => (expr.as_ref(), "IN".to_string(), list.iter().collect()),
                AstExpr::Like { expr, pattern, .. } | AstExpr::ILike { expr, pattern, .. } => {
                    if !refers_to_key(def, expr) && !refers_to_key(def, pattern) {
                        return Err(invalid("Like condition must be between strings"));
                    }
                    continue;
                }
                _ => continue,
            };
            if !refers_to_key(def, left) && !right.iter().any(|r| refers_to_key(def, r)) {
                continue; // a window bound or another column: evaluated after the lookup
            }
            let Some(k) = key_column(def, left) else {
                return Err(invalid("A comparison must directly reference a key column."));
            };
            if right.iter().any(|r| !column_names(r).is_empty()) {
                return Err(invalid("A comparison must be between a key column and a resolvable expression."));
            }
            let i = keys.iter().position(|c| c.name == k).expect("a key column");
            bounds[i].push(op);
        }
        if bounds.iter().all(|b| b.is_empty()) {
            return Err(invalid(format!("WHERE clause missing key column for disjunct: ({})", norm_text(disjunct))));
        }
        if bounds.iter().any(|b| b.len() > 1) {
            return Err(invalid(
                "A comparison condition on the key column cannot be combined with other comparisons such as an IN predicate",
            ));
        }
        if bounds.iter().any(|b| b.is_empty()) {
            return Err(invalid("Multi-column sources must specify every key in the WHERE clause"));
        }
        if bounds.iter().any(|b| b[0] != "=" && b[0] != "IN") {
            let list: Vec<String> = keys.iter().map(|c| format!("`{}` {} KEY", c.name, type_name(&c.data_type))).collect();
            return Err(invalid(format!("Bound on key columns '[{}]' must currently be '='. ", list.join(", "))));
        }
    }
    Ok(())
}

/// The parts of `e` joined by `op` (AND or OR), parentheses looked through.
fn split<'a>(e: &'a AstExpr, op: &BinaryOperator) -> Vec<&'a AstExpr> {
    match e {
        AstExpr::BinaryOp { left, op: o, right } if o == op => {
            let mut v = split(left, op);
            v.extend(split(right, op));
            v
        }
        AstExpr::Nested(inner) => match inner.as_ref() {
            AstExpr::BinaryOp { op: o, .. } if o == op => split(inner, op),
            _ => vec![e],
        },
        other => vec![other],
    }
}

/// The names of the columns `e` refers to (the last part of qualified names).
fn column_names(e: &AstExpr) -> Vec<String> {
    let mut out = Vec::new();
    let _ = visit_expressions(e, |x| {
        match x {
            AstExpr::Identifier(id) => out.push(norm_ident(id)),
            AstExpr::CompoundIdentifier(parts) => out.extend(parts.last().map(norm_ident)),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// The key column `e` is, if it is one (bare or qualified, in parentheses or not).
fn key_column(def: &SourceDef, e: &AstExpr) -> Option<String> {
    let name = match e {
        AstExpr::Identifier(id) => norm_ident(id),
        AstExpr::CompoundIdentifier(parts) if parts.len() == 2 => norm_ident(&parts[1]),
        AstExpr::Nested(inner) => return key_column(def, inner),
        _ => return None,
    };
    def.key_columns().any(|c| c.name == name).then_some(name)
}

/// True when `e` mentions a key column (window bounds are not key columns here).
fn refers_to_key(def: &SourceDef, e: &AstExpr) -> bool {
    column_names(e).iter().any(|n| !WINDOW_COLUMNS.contains(&n.as_str()) && def.key_columns().any(|c| &c.name == n))
}
