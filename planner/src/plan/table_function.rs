//! Table functions in a SELECT (`EXPLODE`, `CUBE_EXPLODE`): the calls are found in the
//! projection, their arguments computed, and an `Explode` node turns each row into as many as
//! the calls give:
//!
//! ```text
//! ... -> Project (the source's columns, each call's argument) -> Explode -> (the projection)
//! ```
//!
//! The projection is then bound with every call replaced by a reference to its result column.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::logical_expr::col;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, Expr as AstExpr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
};
use engine::spec::{ExplodeSpec, OpSpec, ProjectSpec, TableFunction, TableFunctionCall};

use super::pipeline::batch_schema;
use super::pipeline::Pipeline;
use crate::binder::aggregate::norm_text;
use crate::binder::{Binder, Scope, ScopeColumn, Typed};
use crate::error::{invalid, Result};
use crate::parser::norm_ident;
use crate::types::type_name;

/// A table function call found in the projection.
#[derive(Debug, Clone)]
pub struct TableCall {
    /// Normalised text of the call (equal calls share one result).
    pub text: String,
    /// Which function.
    pub function: TableFunction,
    /// Its argument.
    pub arg: AstExpr,
}

impl TableCall {
    /// The column holding the call's result.
    pub fn field(i: usize) -> String {
        format!("_TF{i}")
    }
}

/// The table function a name stands for.
pub fn table_function(name: &str) -> Option<TableFunction> {
    match name {
        "EXPLODE" => Some(TableFunction::Explode),
        "CUBE_EXPLODE" => Some(TableFunction::CubeExplode),
        _ => None,
    }
}

fn call_of(e: &AstExpr) -> Option<(TableFunction, &datafusion::sql::sqlparser::ast::Function)> {
    let AstExpr::Function(f) = e else { return None };
    let [part] = f.name.0.as_slice() else { return None };
    let name = norm_ident(part.as_ident()?);
    table_function(&name).map(|t| (t, f))
}

/// The distinct table function calls in `exprs`, in order.
pub fn find_calls<'a>(exprs: impl IntoIterator<Item = &'a AstExpr>) -> Result<Vec<TableCall>> {
    let mut out: Vec<TableCall> = Vec::new();
    for e in exprs {
        let mut err = None;
        let _ = visit_expressions(e, |x| {
            if let Some((function, f)) = call_of(x) {
                let text = norm_text(x);
                if out.iter().any(|c| c.text == text) {
                    return ControlFlow::<()>::Continue(());
                }
                let args: Vec<&AstExpr> = match &f.args {
                    FunctionArguments::List(l) => l
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                match args.as_slice() {
                    [arg] if find_calls([*arg]).map(|c| c.is_empty()).unwrap_or(false) => {
                        out.push(TableCall { text, function, arg: (*arg).clone() })
                    }
                    [_] => err = Some(invalid("Table functions cannot be nested")),
                    _ => err = Some(invalid(format!("Function '{}' takes one argument", f.name.to_string().to_lowercase()))),
                }
            }
            ControlFlow::Continue(())
        });
        if let Some(e) = err {
            return Err(e);
        }
    }
    Ok(out)
}

/// True when `e` calls a table function.
pub fn has_call(e: &AstExpr) -> bool {
    visit_expressions(e, |x| if call_of(x).is_some() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }).is_break()
}

/// `e` with every call of `calls` replaced by a reference to its result column.
pub fn rewrite(e: &AstExpr, calls: &[TableCall]) -> AstExpr {
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        if call_of(x).is_some() {
            let text = norm_text(x);
            if let Some(i) = calls.iter().position(|c| c.text == text) {
                *x = AstExpr::Identifier(Ident::with_quote('`', TableCall::field(i)));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    e
}

/// Appends the argument projection and the Explode node to `p` (whose last node has the
/// columns of `scope`, bound by `binder`); returns the scope after it: the same columns plus
/// each call's result.
pub fn plan_table_functions(p: &mut Pipeline, binder: &Binder<'_>, scope: &Scope, calls: &[TableCall]) -> Result<Scope> {
    let input = p.schema();
    let n = input.fields().len() - 2;
    let mut fields: Vec<Field> = input.fields()[..n].iter().map(|f| f.as_ref().clone()).collect();
    let mut exprs = fields
        .iter()
        .map(|f| binder.physical(&Typed::new(col(datafusion::common::Column::new_unqualified(f.name())), f.data_type().clone())))
        .collect::<Result<Vec<_>>>()?;
    let mut results = Vec::new();
    let mut spec = ExplodeSpec { functions: Vec::new() };
    for (i, c) in calls.iter().enumerate() {
        let t = binder.bind(&c.arg)?;
        let DataType::List(item) = &t.dt else {
            let name = if c.function == TableFunction::Explode { "explode" } else { "cube_explode" };
            return Err(invalid(format!(
                "Function '{name}' does not accept parameters ({}).\nValid alternatives are:\n{name}(ARRAY<DECIMAL> input)\n{name}(ARRAY<T> list)",
                type_name(&t.dt)
            )));
        };
        let out_type = match c.function {
            TableFunction::Explode => item.data_type().clone(),
            TableFunction::CubeExplode => t.dt.clone(),
        };
        spec.functions.push(TableFunctionCall { function: c.function, arg: fields.len() });
        fields.push(Field::new(format!("_TFARG{i}"), t.dt.clone(), true));
        exprs.push(binder.physical(&t)?);
        results.push(Field::new(TableCall::field(i), out_type, true));
    }
    let args_schema = batch_schema(fields.clone());
    p.push(OpSpec::Project(ProjectSpec { exprs, timestamp: None }), args_schema);
    let mut out_fields = fields;
    out_fields.extend(results.iter().cloned());
    p.push(OpSpec::Explode(spec), batch_schema(out_fields));
    let mut out = scope.clone();
    for f in results {
        out.columns.push(ScopeColumn { qualifier: None, name: f.name().clone(), field: f.name().clone(), data_type: f.data_type().clone() });
    }
    Ok(out)
}
