//! `struct->*` in a projection: one column per field of the struct, named after the field.

use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as AstExpr, Ident};

use super::{Binder, Typed};
use crate::error::{invalid, Result};
use crate::types::type_name;

/// The struct expression of `e` when `e` is `struct->*`.
pub fn struct_star(e: &AstExpr) -> Option<&AstExpr> {
    match e {
        AstExpr::BinaryOp { left, op: BinaryOperator::Arrow, right } if matches!(right.as_ref(), AstExpr::Wildcard(_)) => Some(left),
        _ => None,
    }
}

/// The columns `struct->*` stands for: (field name, bound field access, its syntax).
pub fn expand_struct_star(binder: &Binder<'_>, left: &AstExpr) -> Result<Vec<(String, Typed, AstExpr)>> {
    let t = binder.bind(left)?;
    let DataType::Struct(fields) = &t.dt else {
        return Err(invalid(format!("cannot expand {left}->*: {} is not a STRUCT", type_name(&t.dt))));
    };
    let mut out = Vec::new();
    for f in fields.iter() {
        let e = AstExpr::BinaryOp {
            left: Box::new(left.clone()),
            op: BinaryOperator::Arrow,
            right: Box::new(AstExpr::Identifier(Ident::with_quote('`', f.name().clone()))),
        };
        out.push((f.name().clone(), binder.bind(&e)?, e));
    }
    Ok(out)
}
