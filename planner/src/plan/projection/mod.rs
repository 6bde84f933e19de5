//! The projection stage: the select list with ksqlDB's names, the result's key columns first
//! (the PARTITION BY expressions, the source's key, the join key or the GROUP BY expressions),
//! into the last `Project` node before the sink. One module per shape of input: a single
//! source, a join's result, an aggregation's result.

pub mod grouped;
pub mod joined;
mod keys;
pub mod single;

use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr as AstExpr, Ident};

/// An expression as ksqlDB prints it in messages: upper-case, columns qualified by the source.
fn qualified_text(e: &AstExpr, qualifier: &str) -> String {
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        if let AstExpr::Identifier(id) = x {
            *x = AstExpr::CompoundIdentifier(vec![Ident::new(qualifier), id.clone()]);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    crate::binder::aggregate::norm_text(&e)
}
