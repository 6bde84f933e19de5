//! What every planning stage reads and hands on: the [`PlanContext`] (the query, what kind of
//! query it is, the catalog and functions, the FROM source), the [`Relation`] a stage passes to
//! the next (the pipeline so far and the columns in scope), and the steps several stages share:
//! binding a condition (WHERE, HAVING) and building a projection node.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::Expr as AstExpr;
use engine::spec::{OpSpec, ProjectSpec};

use super::names::uses_offset_columns;
use super::pipeline::{batch_schema, Pipeline};
use crate::ast::{ColumnKind, Query};
use crate::binder::functions::FunctionRegistry;
use crate::binder::{physical_expr, Binder, Scope, Typed};
use crate::catalog::{Catalog, Column, SourceDef};
use crate::error::{invalid, PlanError, Result};

/// What is being planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// CREATE ... AS SELECT / INSERT INTO ... SELECT: must select the key.
    Persistent,
    /// A push query or a scan.
    Transient,
}

/// Everything a stage needs to know about the query being planned.
pub struct PlanContext<'a> {
    /// The query.
    pub query: &'a Query,
    /// Persistent or transient.
    pub kind: QueryKind,
    /// The name of the stream or table a persistent query writes (for messages).
    pub sink_name: Option<&'a str>,
    /// The query id (internal topics are named after it).
    pub id: &'a str,
    /// The catalog.
    pub catalog: &'a Catalog,
    /// Scalar functions.
    pub functions: &'a FunctionRegistry,
    /// The FROM source.
    pub from: &'a SourceDef,
    /// The name the FROM source's columns are qualified by: its alias, else its name.
    pub qualifier: String,
    /// Whether the sources read ROWPARTITION and ROWOFFSET (the query refers to one).
    pub offsets: bool,
}

impl<'a> PlanContext<'a> {
    /// The context for planning `query`; fails when its FROM source does not exist.
    pub fn new(
        query: &'a Query,
        kind: QueryKind,
        sink_name: Option<&'a str>,
        id: &'a str,
        catalog: &'a Catalog,
        functions: &'a FunctionRegistry,
    ) -> Result<Self> {
        let from = source(catalog, &query.from.name)?;
        let qualifier = super::names::alias(&query.from);
        let offsets = uses_offset_columns(query);
        Ok(PlanContext { query, kind, sink_name, id, catalog, functions, from, qualifier, offsets })
    }

    /// True for CREATE ... AS SELECT and INSERT INTO ... SELECT.
    pub fn persistent(&self) -> bool {
        self.kind == QueryKind::Persistent
    }

    /// The name of the result in messages.
    pub fn sink(&self) -> &str {
        self.sink_name.unwrap_or("OUTPUT")
    }

    /// The source called `name`.
    pub fn source(&self, name: &str) -> Result<&'a SourceDef> {
        source(self.catalog, name)
    }

    /// A binder over `scope`, whose columns are the fields of `schema`.
    pub fn binder<'b>(&'b self, scope: &'b Scope, schema: &Schema) -> Result<Binder<'b>> {
        Binder::new(scope, schema, &self.catalog.types, self.functions)
    }
}

fn source<'a>(catalog: &'a Catalog, name: &str) -> Result<&'a SourceDef> {
    catalog.sources.get(name).ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: name.to_string() })
}

/// The rows as one stage leaves them for the next: the pipeline, the columns in scope and
/// the batch schema of the pipeline's last node.
pub struct Relation {
    /// The pipeline so far.
    pub p: Pipeline,
    /// Columns expressions may refer to.
    pub scope: Scope,
    /// The batch schema the scope's fields are in.
    pub schema: SchemaRef,
}

/// Binds a WHERE or HAVING condition: a BOOLEAN (or NULL) expression; errors say the clause.
pub fn bind_condition(binder: &Binder<'_>, clause: &str, e: &AstExpr) -> Result<Typed> {
    let t = binder.bind(e).map_err(|err| in_clause(clause, err))?;
    check_boolean(clause, e, t)
}

/// `t` (the bound `e`) as a condition of `clause`: it must be a BOOLEAN (or NULL).
pub fn check_boolean(clause: &str, e: &AstExpr, t: Typed) -> Result<Typed> {
    if t.dt != DataType::Boolean && t.dt != DataType::Null {
        return Err(invalid(format!("{clause} must be a BOOLEAN expression, but {e} is {}", crate::types::type_name(&t.dt))));
    }
    Ok(t.cast_to(&DataType::Boolean))
}

/// Prefixes a binding error with the clause it happened in.
pub fn in_clause(clause: &str, e: PlanError) -> PlanError {
    match e {
        PlanError::Invalid(m) => PlanError::Invalid(format!("Error in {clause} expression: {m}")),
        other => other,
    }
}

/// A reference to the batch column `name`.
pub fn column_ref(name: &str, dt: DataType) -> Typed {
    Typed::new(datafusion::logical_expr::col(datafusion::common::Column::new_unqualified(name)), dt)
}

/// A projection node under construction: its fields and their expressions.
#[derive(Default)]
pub struct Projection {
    fields: Vec<Field>,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
}

impl Projection {
    /// Adds a result column `name` computing `t` over `input`, and records it in `columns`;
    /// an untyped NULL becomes a STRING.
    pub fn column(&mut self, columns: &mut Vec<Column>, name: &str, t: &Typed, kind: ColumnKind, input: &DFSchema) -> Result<()> {
        let dt = if t.dt == DataType::Null { DataType::Utf8 } else { t.dt.clone() };
        self.fields.push(Field::new(name, dt.clone(), true));
        self.exprs.push(physical_expr(&t.clone().cast_to(&dt), input)?);
        columns.push(Column { name: name.to_string(), data_type: dt, kind });
        Ok(())
    }

    /// Adds a column that is not a result column (window bounds, headers, join keys).
    pub fn internal(&mut self, field: Field, t: &Typed, input: &DFSchema) -> Result<()> {
        self.fields.push(field);
        self.exprs.push(physical_expr(t, input)?);
        Ok(())
    }

    /// Appends the projection node to `p`; returns its batch schema.
    pub fn push(self, p: &mut Pipeline) -> SchemaRef {
        let schema = batch_schema(self.fields);
        p.push(OpSpec::Project(ProjectSpec { exprs: self.exprs, timestamp: None }), schema.clone());
        schema
    }

    /// The projection as a node spec and its batch schema, for a node with explicit inputs.
    pub fn into_node(self) -> (OpSpec, SchemaRef) {
        (OpSpec::Project(ProjectSpec { exprs: self.exprs, timestamp: None }), batch_schema(self.fields))
    }
}
