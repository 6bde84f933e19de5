//! Binding the expressions that follow an aggregation (SELECT list and HAVING of a GROUP BY):
//! a sub-expression equal to a GROUP BY expression becomes a reference to that group column; an
//! aggregate call binds its arguments against the source and becomes a reference to its result
//! column; any other column of the source is an error (not part of GROUP BY).

use std::cell::RefCell;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::logical_expr::Expr;
use datafusion::sql::sqlparser::ast::{Expr as AstExpr, FunctionArg, FunctionArgExpr, FunctionArguments};
use engine::ops::aggregate::{create_aggregate, is_aggregate, AggFunctionRef};

use super::{Binder, Typed};
use crate::error::{invalid, PlanError, Result};
use crate::parser::norm_ident;

/// A GROUP BY expression and the column holding it after the aggregation.
#[derive(Debug, Clone)]
pub struct GroupExpr {
    /// Normalised text of the expression.
    pub text: String,
    /// Column name after the aggregation.
    pub field: String,
    /// Type.
    pub data_type: DataType,
}

/// An aggregate call found while binding.
#[derive(Debug, Clone)]
pub struct AggCallBound {
    /// Normalised text of the call (identical calls share one result).
    pub text: String,
    /// Bound arguments (over the source).
    pub args: Vec<Typed>,
    /// Normalised text of each argument in `args`, the name a user knows it by.
    pub arg_texts: Vec<String>,
    /// The function.
    pub function: AggFunctionRef,
    /// Column name of its result after the aggregation.
    pub field: String,
}

/// What the post-aggregation binder substitutes.
pub struct AggScope<'a> {
    /// Binds aggregate arguments (against the source).
    pub source: &'a Binder<'a>,
    /// GROUP BY expressions.
    pub groups: Vec<GroupExpr>,
    /// Aggregate calls collected so far.
    pub calls: RefCell<Vec<AggCallBound>>,
}

/// An expression's text with identifiers upper-cased (outside quotes), for matching SELECT
/// expressions against GROUP BY expressions.
pub fn norm_text(e: &AstExpr) -> String {
    let s = e.to_string();
    let mut out = String::with_capacity(s.len());
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                if q == '\'' {
                    out.push(c);
                }
            }
            Some(_) => out.push(c),
            None if c == '\'' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '`' || c == '"' => quote = Some(c),
            None => out.extend(c.to_uppercase()),
        }
    }
    out
}

impl AggScope<'_> {
    /// The substitute of `e`, if it is a GROUP BY expression or an aggregate call; new
    /// aggregate result columns are added to `post`'s schema.
    pub fn substitute(&self, e: &AstExpr, post: &Binder<'_>) -> Result<Option<Typed>> {
        let text = norm_text(e);
        if let Some(g) = self.groups.iter().find(|g| g.text == text) {
            return Ok(Some(Typed::new(Expr::Column(Column::new_unqualified(&g.field)), g.data_type.clone())));
        }
        let AstExpr::Function(f) = e else { return Ok(None) };
        let name = match f.name.0.as_slice() {
            [part] => part.as_ident().map(norm_ident).unwrap_or_default(),
            _ => return Ok(None),
        };
        if !is_aggregate(&name) {
            return Ok(None);
        }
        if let Some(c) = self.calls.borrow().iter().find(|c| c.text == text) {
            return Ok(Some(Typed::new(Expr::Column(Column::new_unqualified(&c.field)), c.function.return_type())));
        }
        let list = match &f.args {
            FunctionArguments::List(l) => {
                if l.duplicate_treatment.is_some() {
                    return Err(PlanError::Unsupported { feature: format!("DISTINCT in {name}(...)") });
                }
                l.args.clone()
            }
            FunctionArguments::None => Vec::new(),
            FunctionArguments::Subquery(_) => return Err(PlanError::Unsupported { feature: "subqueries".into() }),
        };
        let mut args = Vec::new();
        let mut arg_texts = Vec::new();
        let mut params = Vec::new();
        for (i, a) in list.iter().enumerate() {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) if list.len() == 1 => {}
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => {
                    if self.substitute_aggregate_inside(x) {
                        return Err(invalid(format!("aggregate functions cannot be nested: {e}")));
                    }
                    let t = self.source.bind(x)?;
                    // Later literal arguments are parameters (TOPK's k, ...).
                    if i > 0 {
                        if let Expr::Literal(v, _) = &t.expr {
                            params.push(v.clone());
                            continue;
                        }
                    }
                    args.push(t);
                    arg_texts.push(norm_text(x));
                }
                other => return Err(invalid(format!("invalid argument {other} of {name}"))),
            }
        }
        let types: Vec<DataType> = args.iter().map(|a| a.dt.clone()).collect();
        let function = create_aggregate(&name, &types, &params).map_err(|e| invalid(format!("{e}")))?;
        let mut calls = self.calls.borrow_mut();
        let field = format!("_agg{}", calls.len());
        let t = Typed::new(Expr::Column(Column::new_unqualified(&field)), function.return_type());
        post.add_field(datafusion::arrow::datatypes::Field::new(&field, function.return_type(), true));
        calls.push(AggCallBound { text, args, arg_texts, function, field });
        Ok(Some(t))
    }

    fn substitute_aggregate_inside(&self, e: &AstExpr) -> bool {
        first_aggregate(e).is_some()
    }
}

/// The name of the first aggregate function called anywhere in `e` (a walk of the syntax tree,
/// so that `ARRAY_MAX(...)` is not taken for `MAX(...)`).
pub fn first_aggregate(e: &AstExpr) -> Option<String> {
    use std::ops::ControlFlow;
    let r = datafusion::sql::sqlparser::ast::visit_expressions(e, |x| {
        if let AstExpr::Function(f) = x {
            if let [part] = f.name.0.as_slice() {
                if let Some(id) = part.as_ident() {
                    let name = norm_ident(id);
                    if is_aggregate(&name) {
                        return ControlFlow::Break(name);
                    }
                }
            }
        }
        ControlFlow::Continue(())
    });
    match r {
        ControlFlow::Break(n) => Some(n),
        ControlFlow::Continue(()) => None,
    }
}

/// True when `e` calls an aggregate function anywhere.
pub fn contains_aggregate(e: &AstExpr) -> bool {
    first_aggregate(e).is_some()
}
