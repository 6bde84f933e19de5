//! The GROUP BY expressions, the scope after the aggregation (group columns, simple ones by
//! name, and the window bounds), and the select list bound in that scope.

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::sql::sqlparser::ast::{Expr as AstExpr, Ident, SelectItem};

use super::super::context::PlanContext;
use super::super::names::{self, derived_name, strip_nested, GeneratedNames};
use crate::ast::ColumnKind;
use crate::binder::aggregate::{contains_aggregate, first_aggregate, norm_text, GroupExpr};
use crate::binder::{Binder, Scope, ScopeColumn, Typed};
use crate::error::{invalid, PlanError, Result};
use crate::parser::norm_ident;

/// The GROUP BY expressions, bound over the aggregation's input.
pub struct Groups {
    /// The expressions (without parentheses).
    pub exprs: Vec<AstExpr>,
    /// Each one's group column after the aggregation.
    pub groups: Vec<GroupExpr>,
    /// Each one bound over the input.
    pub typed: Vec<Typed>,
    /// No GROUP BY (a push query): everything is one group, of a constant key.
    pub constant: bool,
}

/// Binds the GROUP BY expressions.
pub fn group_by(cx: &PlanContext<'_>, binder: &Binder<'_>) -> Result<Groups> {
    let constant = cx.query.group_by.is_empty();
    let exprs = if constant {
        vec![AstExpr::Value(datafusion::sql::sqlparser::ast::Value::Boolean(true).into())]
    } else {
        super::group_exprs(cx.query)
    };
    let mut groups = Vec::new();
    let mut typed = Vec::new();
    for (i, g) in exprs.iter().enumerate() {
        if contains_aggregate(g) {
            let name = first_aggregate(g).unwrap_or_default();
            return Err(invalid(format!("GROUP BY does not support aggregate functions: {name} is an aggregate function.")));
        }
        let t = binder.bind(g)?;
        if matches!(t.dt, DataType::Map(_, _)) {
            return Err(invalid(format!("cannot GROUP BY {g}: MAP values cannot be keys")));
        }
        let text = if constant { "\u{1}".to_string() } else { norm_text(g) };
        groups.push(GroupExpr { text, field: format!("_g{i}"), data_type: t.dt.clone() });
        typed.push(t);
    }
    Ok(Groups { exprs, groups, typed, constant })
}

/// The scope after the aggregation and its fields: group columns (simple ones by name), then
/// the window bounds.
pub fn post_scope(cx: &PlanContext<'_>, groups: &Groups, windowed: bool) -> (Scope, Vec<Field>) {
    let qualifier = &cx.qualifier;
    let mut scope = Scope::default();
    let mut fields: Vec<Field> = Vec::new();
    for (g, e) in groups.groups.iter().zip(&groups.exprs) {
        let (q, name) = match e {
            AstExpr::Identifier(id) => (qualifier.clone(), norm_ident(id)),
            AstExpr::CompoundIdentifier(parts) if parts.len() == 2 => (norm_ident(&parts[0]), norm_ident(&parts[1])),
            AstExpr::CompoundIdentifier(parts) => (qualifier.clone(), parts.last().map(norm_ident).unwrap_or_default()),
            _ => (qualifier.clone(), g.field.clone()),
        };
        scope.columns.push(ScopeColumn { qualifier: Some(q), name, field: g.field.clone(), data_type: g.data_type.clone() });
        fields.push(Field::new(&g.field, g.data_type.clone(), true));
    }
    if windowed {
        for w in names::WINDOW_COLUMNS {
            scope.columns.push(ScopeColumn { qualifier: Some(qualifier.clone()), name: w.into(), field: w.into(), data_type: DataType::Int64 });
            fields.push(Field::new(w, DataType::Int64, true));
        }
    }
    (scope, fields)
}

/// Binds the select list after the aggregation: (name, expression, normalised text). A star
/// lists the source's key and value columns; each must be grouped.
pub fn bind_select(cx: &PlanContext<'_>, post: &Binder<'_>, input: &Scope) -> Result<Vec<(String, Typed, String)>> {
    let mut select: Vec<(AstExpr, Option<&Ident>)> = Vec::new();
    for item in &cx.query.select {
        match item {
            SelectItem::UnnamedExpr(e) => select.push((e.clone(), None)),
            SelectItem::ExprWithAlias { expr, alias } => select.push((expr.clone(), Some(alias))),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) if !cx.query.joins.is_empty() => {
                return Err(PlanError::Unsupported { feature: "SELECT * with GROUP BY over a join".into() });
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                for c in cx.from.columns.iter().filter(|c| matches!(c.kind, ColumnKind::Key | ColumnKind::Value)) {
                    select.push((AstExpr::Identifier(Ident::with_quote('`', c.name.clone())), None));
                }
            }
            other => return Err(names::unsupported_item(other)),
        }
    }
    let mut generated = GeneratedNames::new(input.columns.iter().map(|c| c.name.as_str()));
    let mut items = Vec::new();
    for (e, alias) in &select {
        let t = post.bind(e)?;
        let name = match alias {
            Some(a) => names::alias_name(a)?,
            None => derived_name(e).unwrap_or_else(|| generated.next_name()),
        };
        items.push((name, t, norm_text(strip_nested(e))));
    }
    Ok(items)
}
