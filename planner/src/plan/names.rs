//! The names planning gives and reserves: pseudo columns (`ROWTIME`, `ROWPARTITION`,
//! `ROWOFFSET`, `WINDOWSTART`, `WINDOWEND`), the synthetic join key `ROWKEY`, ksqlDB's
//! `KSQL_COL_n` names for unaliased expressions, and the name an unaliased column or struct
//! field keeps. A leaf module: every stage may use it, it uses no stage.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{visit_expressions, BinaryOperator, Expr as AstExpr, SelectItem};

use crate::ast::{Join, Query, SourceRef};
use crate::binder::Scope;
use crate::error::{invalid, PlanError, Result};
use crate::parser::norm_ident;

/// Pseudo columns every source offers.
pub const ROWTIME: &str = "ROWTIME";
/// Partition of the record.
pub const ROWPARTITION: &str = "ROWPARTITION";
/// Offset of the record.
pub const ROWOFFSET: &str = "ROWOFFSET";
/// Names of a windowed source's window columns.
pub const WINDOW_COLUMNS: [&str; 2] = ["WINDOWSTART", "WINDOWEND"];
/// Names users may not give columns.
pub const RESERVED: &[&str] = &[ROWTIME, ROWPARTITION, ROWOFFSET, "WINDOWSTART", "WINDOWEND"];
/// The name of the synthetic key column of joins on expressions.
pub const ROWKEY: &str = "ROWKEY";

/// ksqlDB's names for unaliased select expressions: `KSQL_COL_0`, `KSQL_COL_1`, ..., skipping
/// numbers that a source column already uses.
pub struct GeneratedNames {
    next: usize,
    taken: HashSet<usize>,
}

impl GeneratedNames {
    /// A generator avoiding the `KSQL_COL_n` names among `columns`.
    pub fn new<'a>(columns: impl IntoIterator<Item = &'a str>) -> Self {
        let taken = columns.into_iter().filter_map(|c| c.strip_prefix("KSQL_COL_")?.parse().ok()).collect();
        GeneratedNames { next: 0, taken }
    }

    /// The next free name.
    pub fn next_name(&mut self) -> String {
        while self.taken.contains(&self.next) {
            self.next += 1;
        }
        self.next += 1;
        format!("KSQL_COL_{}", self.next - 1)
    }
}

/// The name ksqlDB gives an unaliased select item: a column's name, a struct field's name.
pub fn derived_name(e: &AstExpr) -> Option<String> {
    match e {
        AstExpr::Identifier(id) => Some(norm_ident(id)),
        AstExpr::CompoundIdentifier(parts) => parts.last().map(norm_ident),
        AstExpr::BinaryOp { op: BinaryOperator::Arrow, right, .. } => derived_name(right),
        AstExpr::Nested(inner) => derived_name(inner),
        _ => None,
    }
}

/// The name of an aliased select item; a pseudo column's name is refused.
pub fn alias_name(alias: &datafusion::sql::sqlparser::ast::Ident) -> Result<String> {
    let name = norm_ident(alias);
    if RESERVED.contains(&name.as_str()) {
        return Err(invalid(format!("`{name}` is a reserved column name. You cannot use it as an alias for a column.")));
    }
    Ok(name)
}

/// A persistent query may not write a column named like a pseudo column.
pub fn check_not_reserved<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    match names.into_iter().find(|n| RESERVED.contains(n)) {
        Some(name) => Err(invalid(format!("Reserved column name in select: `{name}`. Please remove or alias the column."))),
        None => Ok(()),
    }
}

/// The output columns must have distinct names.
pub fn check_unique<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mut seen = HashSet::new();
    match names.into_iter().find(|n| !seen.insert(*n)) {
        Some(name) => Err(invalid(format!("duplicate column name \"{name}\" in the projection: alias one of them"))),
        None => Ok(()),
    }
}

/// The expressions of a select list (stars have none).
pub fn select_exprs(select: &[SelectItem]) -> impl Iterator<Item = &AstExpr> {
    select.iter().filter_map(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    })
}

/// `e` without enclosing parentheses.
pub fn strip_nested(e: &AstExpr) -> &AstExpr {
    match e {
        AstExpr::Nested(inner) => strip_nested(inner),
        other => other,
    }
}

/// True for a NULL literal.
pub fn is_null(e: &AstExpr) -> bool {
    matches!(e, AstExpr::Value(v) if v.value == datafusion::sql::sqlparser::ast::Value::Null)
}

/// True when some expression of `q` (select list, join conditions, WHERE, GROUP BY, HAVING,
/// PARTITION BY) refers to ROWPARTITION or ROWOFFSET: its sources then read those columns.
pub fn uses_offset_columns(q: &Query) -> bool {
    let pseudo = |id: &datafusion::sql::sqlparser::ast::Ident| {
        let n = norm_ident(id);
        n == ROWPARTITION || n == ROWOFFSET
    };
    let refers = |e: &AstExpr| {
        visit_expressions(e, |x| {
            let hit = match x {
                AstExpr::Identifier(id) => pseudo(id),
                AstExpr::CompoundIdentifier(parts) => parts.last().is_some_and(pseudo),
                _ => false,
            };
            if hit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .is_break()
    };
    select_exprs(&q.select)
        .chain(q.joins.iter().map(|j| &j.on))
        .chain(q.selection.iter())
        .chain(q.group_by.iter())
        .chain(q.having.iter())
        .chain(q.partition_by.iter())
        .any(refers)
}

/// Refuses the select items no stage plans.
pub fn unsupported_item(item: &SelectItem) -> PlanError {
    PlanError::Unsupported { feature: format!("select item {item}") }
}

/// The name a source's columns are qualified by: its alias, else its name.
pub fn alias(r: &SourceRef) -> String {
    r.alias.clone().unwrap_or_else(|| r.name.clone())
}

/// The sources of a join and their aliases, longest alias first (`A_B_X` is column `X` of
/// `A_B` before column `B_X` of `A`).
pub fn aliases_longest_first(from: &SourceRef, joins: &[Join]) -> Vec<String> {
    let mut aliases: Vec<String> = std::iter::once(from).chain(joins.iter().map(|j| &j.source)).map(alias).collect();
    aliases.sort_by_key(|a| std::cmp::Reverse(a.len()));
    aliases
}

/// The text identifying a column reference in a join (`ALIAS_COL`), or `ROWKEY`.
pub fn column_text(e: &AstExpr, scope: &Scope) -> Option<String> {
    let (q, n) = match e {
        AstExpr::Identifier(id) => (None, norm_ident(id)),
        AstExpr::CompoundIdentifier(p) if p.len() == 2 => (Some(norm_ident(&p[0])), norm_ident(&p[1])),
        AstExpr::Nested(inner) => return column_text(inner, scope),
        _ => return None,
    };
    let c = scope.resolve(q.as_deref(), &n).ok()?;
    match &c.qualifier {
        // Unqualified columns of the join itself: ROWKEY, ROWTIME.
        None => Some(c.name.clone()),
        Some(q) => Some(format!("{q}_{}", c.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Statement;

    fn query(sql: &str) -> Query {
        match crate::parser::parse(sql).expect("parses").remove(0).statement {
            Statement::Query(q) => *q,
            other => panic!("not a query: {other:?}"),
        }
    }

    #[test]
    fn offset_columns_are_found_in_the_syntax_tree() {
        assert!(uses_offset_columns(&query("SELECT rowpartition FROM s EMIT CHANGES;")));
        assert!(uses_offset_columns(&query("SELECT id FROM s WHERE s.ROWOFFSET > 3 EMIT CHANGES;")));
        assert!(uses_offset_columns(&query("SELECT TRANSFORM(a, x => x + ROWOFFSET) FROM s EMIT CHANGES;")));
        assert!(uses_offset_columns(&query("SELECT a.id FROM a JOIN b WITHIN 1 SECOND ON a.ROWPARTITION = b.id EMIT CHANGES;")));
        assert!(uses_offset_columns(&query("SELECT id, COUNT(*) FROM s GROUP BY id HAVING MAX(ROWOFFSET) > 1 EMIT CHANGES;")));
    }

    #[test]
    fn text_that_merely_contains_the_names_is_not_a_reference() {
        // The planner used to search the query's text: a string literal or a longer column name
        // made every source read the offset columns.
        assert!(!uses_offset_columns(&query("SELECT id, 'ROWPARTITION' AS s FROM s EMIT CHANGES;")));
        assert!(!uses_offset_columns(&query("SELECT my_rowoffset FROM s EMIT CHANGES;")));
        assert!(!uses_offset_columns(&query("SELECT id AS x FROM s EMIT CHANGES;")));
    }

    #[test]
    fn generated_names_skip_those_in_use() {
        let mut g = GeneratedNames::new(["KSQL_COL_0", "KSQL_COL_2", "ID"]);
        assert_eq!([g.next_name(), g.next_name(), g.next_name()], ["KSQL_COL_1", "KSQL_COL_3", "KSQL_COL_4"]);
    }

    #[test]
    fn duplicate_and_reserved_names_are_refused() {
        assert!(check_unique(["A", "B"]).is_ok());
        let e = check_unique(["A", "B", "A"]).unwrap_err().to_string();
        assert!(e.contains("duplicate column name \"A\""), "{e}");
        let e = check_not_reserved(["A", "ROWTIME"]).unwrap_err().to_string();
        assert!(e.contains("`ROWTIME`"), "{e}");
    }
}
