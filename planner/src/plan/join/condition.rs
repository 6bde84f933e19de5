//! A join condition: `a.x = b.y [AND ...]`, each equality between an expression of the left
//! side and one of the right side, bound on its own side and cast to the pair's common type.

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as AstExpr};

use super::super::names::column_text;
use super::side::Side;
use super::super::context::PlanContext;
use crate::binder::coerce::{can_widen, common_type};
use crate::binder::{Binder, Scope, Typed};
use crate::error::{invalid, PlanError, Result};

/// The bound equalities of one join condition.
pub struct JoinKeyExprs {
    /// Left side of each equality, cast to the pair's common type.
    pub left: Vec<Typed>,
    /// Right side of each equality, likewise.
    pub right: Vec<Typed>,
    /// Left expressions as text (`ALIAS_COL` for columns).
    pub left_texts: Vec<String>,
    /// Right expressions as text.
    pub right_texts: Vec<String>,
    /// Per equality, its sides' column texts where they are plain columns.
    pub plain: Vec<(Option<String>, Option<String>)>,
}

impl JoinKeyExprs {
    /// The condition as ksqlDB prints it: `A.X = B.Y AND ...`.
    pub fn shown(&self) -> String {
        let shown = |texts: &[String]| texts.iter().map(|t| t.replacen('_', ".", 1)).collect::<Vec<_>>();
        shown(&self.left_texts).iter().zip(shown(&self.right_texts)).map(|(a, b)| format!("{a} = {b}")).collect::<Vec<_>>().join(" AND ")
    }
}

/// Binds `on` between `left` and `right`.
pub fn bind_condition(cx: &PlanContext<'_>, on: &AstExpr, left: &Side, right: &Side) -> Result<JoinKeyExprs> {
    let pairs = equalities(on)?;
    let lbinder = cx.binder(&left.scope, &left.schema)?;
    let rbinder = cx.binder(&right.scope, &right.schema)?;
    let mut out = JoinKeyExprs { left: Vec::new(), right: Vec::new(), left_texts: Vec::new(), right_texts: Vec::new(), plain: Vec::new() };
    for (a, b) in &pairs {
        let ((lt, le), (rt, re)) = bind_pair(&lbinder, &rbinder, a, b)?;
        for (t, e) in [(&lt, le), (&rt, re)] {
            if t.expr.column_refs().is_empty() {
                return Err(invalid(format!(
                    "Invalid comparison expression '{e}' in join '({a} = {b})'. Each side of the join comparision must contain references from exactly one source."
                )));
            }
        }
        let t = common_type(&lt.dt, &rt.dt).filter(|t| can_widen(&lt.dt, t) && can_widen(&rt.dt, t)).ok_or_else(|| {
            invalid(format!(
                "Invalid join condition: types don't match. Got {le}{{{}}} = {re}{{{}}}.",
                crate::types::type_name(&lt.dt),
                crate::types::type_name(&rt.dt)
            ))
        })?;
        out.plain.push((column_text(le, &left.scope), column_text(re, &right.scope)));
        out.left_texts.push(expr_text(le, &left.scope));
        out.right_texts.push(expr_text(re, &right.scope));
        out.left.push(lt.cast_to(&t));
        out.right.push(rt.cast_to(&t));
    }
    Ok(out)
}

/// Binds one equality `a = b`, whichever way round its sides are written.
#[allow(clippy::type_complexity)]
fn bind_pair<'e>(l: &Binder<'_>, r: &Binder<'_>, a: &'e AstExpr, b: &'e AstExpr) -> Result<((Typed, &'e AstExpr), (Typed, &'e AstExpr))> {
    match (l.bind(a), r.bind(b)) {
        (Ok(lt), Ok(rt)) => Ok(((lt, a), (rt, b))),
        _ => match (l.bind(b), r.bind(a)) {
            (Ok(lt), Ok(rt)) => Ok(((lt, b), (rt, a))),
            (Err(e), _) | (_, Err(e)) => Err(match e {
                PlanError::UnknownObject { .. } | PlanError::Invalid(_) => invalid(format!(
                    "Invalid comparison expression '{b}' in join '({a} = {b})'. Each side of the join comparision must contain references from exactly one source."
                )),
                other => other,
            }),
        },
    }
}

/// Splits `a = b AND c = d` into pairs.
fn equalities(e: &AstExpr) -> Result<Vec<(AstExpr, AstExpr)>> {
    match e {
        AstExpr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut v = equalities(left)?;
            v.extend(equalities(right)?);
            Ok(v)
        }
        AstExpr::BinaryOp { left, op: BinaryOperator::Eq, right } => Ok(vec![((**left).clone(), (**right).clone())]),
        AstExpr::Nested(inner) => equalities(inner),
        other => Err(invalid(format!(
            "Unsupported join expression: {other}. Joins need equality conditions between the sides, joined with AND"
        ))),
    }
}

/// The text of a join expression: its column text, or its normalised expression text.
pub fn expr_text(e: &AstExpr, scope: &Scope) -> String {
    column_text(e, scope).unwrap_or_else(|| crate::binder::aggregate::norm_text(e))
}
