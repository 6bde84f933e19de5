//! `CREATE ... WITH (TIMESTAMP='col') AS SELECT`: the result's records take their timestamp from
//! one of its columns, as ksqlDB's sink timestamp extractor does. Appends to a pipeline:
//!
//! ```text
//! ... -> Filter (the column gives a valid time) -> Project (every column, `_ts` = the column)
//! ```
//!
//! Rows whose column is null, negative or unparseable are dropped (ksqlDB logs and skips them).

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{col, lit, Expr};
use engine::spec::{FilterMode, FilterSpec, OpSpec, ProjectSpec};

use super::pipeline::Pipeline;
use crate::ast::SourceType;
use crate::binder::functions::FunctionRegistry;
use crate::binder::{Binder, Scope, ScopeColumn, Typed};
use crate::error::{invalid, Result};
use crate::types::SqlType;

/// Makes the records of `p` take their timestamp from its column `column` (a BIGINT, a
/// TIMESTAMP, or a STRING in `format`).
pub fn timestamp_from_column(
    p: &mut Pipeline,
    column: &str,
    format: Option<&str>,
    types: &BTreeMap<String, SqlType>,
    functions: &FunctionRegistry,
) -> Result<()> {
    let schema = p.schema();
    let c = p.columns.iter().find(|c| c.name == column).ok_or_else(|| {
        invalid(format!("The TIMESTAMP column set in the WITH clause does not exist in the schema: '{column}'"))
    })?;
    let mut scope = Scope::default();
    scope.columns.push(ScopeColumn { qualifier: None, name: c.name.clone(), field: c.name.clone(), data_type: c.data_type.clone() });
    let binder = Binder::new(&scope, &schema, types, functions)?;
    let value = Typed::new(col(datafusion::common::Column::new_unqualified(&c.name)), c.data_type.clone());
    let ts = super::source::event_time(value, column, format, &binder, functions)?;
    let valid = Typed::new(ts.expr.clone().is_not_null().and(ts.expr.clone().gt_eq(lit(0i64))), DataType::Boolean);
    let mode = if p.output_type == SourceType::Table { FilterMode::Changelog } else { FilterMode::Stream };
    p.push(OpSpec::Filter(FilterSpec { predicate: binder.physical(&valid)?, mode }), schema.clone());
    let n = schema.fields().len() - 2;
    let exprs = schema.fields()[..n]
        .iter()
        .map(|f| binder.physical(&Typed::new(Expr::Column(datafusion::common::Column::new_unqualified(f.name())), f.data_type().clone())))
        .collect::<Result<Vec<_>>>()?;
    p.push(OpSpec::Project(ProjectSpec { exprs, timestamp: Some(binder.physical(&ts)?) }), schema);
    Ok(())
}
