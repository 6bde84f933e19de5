//! The FROM stage: reading a stream or table. The source node's columns (key, value, header and
//! pseudo columns), its event-time expression, and the scope that expressions resolve against.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use engine::batch::with_internal;
use engine::runtime::headers_type;
use engine::spec::{SourceColumn, SourceKind, SourceSpec};
use engine::types::TS_COLUMN;

use super::context::{PlanContext, QueryKind, Relation};
use super::names::{ROWOFFSET, ROWPARTITION, ROWTIME, WINDOW_COLUMNS};
use super::pipeline::Pipeline;
use crate::ast::{ColumnKind, SourceType};
use crate::binder::functions::FunctionRegistry;
use crate::binder::{Binder, Scope, ScopeColumn, Typed};
use crate::catalog::{Catalog, SourceDef};
use crate::error::{invalid, Result};

/// Reads the FROM source: a pipeline of one source node (of the same kind as the source).
/// With `headers`, a persistent query's records keep their headers for the sink.
pub fn read(cx: &PlanContext<'_>, headers: bool) -> Result<Relation> {
    let def = cx.from;
    let mut src = plan_source(def, &cx.qualifier, cx.offsets, cx.catalog, cx.functions)?;
    if headers && cx.kind == QueryKind::Persistent {
        forward_headers(&mut src, def);
    }
    let mut p = Pipeline::new(def.source_type, vec![def.name.clone()]);
    p.push(engine::spec::OpSpec::Source(src.spec), src.schema.clone());
    Ok(Relation { p, scope: src.scope, schema: src.schema })
}

/// A planned source: its engine spec, its batch schema and the scope over it.
pub struct PlannedSource {
    /// The source node.
    pub spec: SourceSpec,
    /// Batch schema (with `_ts`, `_op`).
    pub schema: SchemaRef,
    /// Columns in scope, qualified by the alias.
    pub scope: Scope,
}

/// Plans reading `def`, with `qualifier` as the alias, including ROWPARTITION/ROWOFFSET columns
/// when `pseudo` is set.
pub fn plan_source(
    def: &SourceDef,
    qualifier: &str,
    pseudo: bool,
    catalog: &Catalog,
    functions: &FunctionRegistry,
) -> Result<PlannedSource> {
    let key_fields = def.key_fields();
    let value_fields = def.value_fields();
    let mut columns = Vec::new();
    let mut fields = Vec::new();
    let mut scope = Scope::default();
    let (mut ki, mut vi) = (0, 0);
    let nkeys = def.key_columns().count();
    for (pos, c) in def.columns.iter().enumerate() {
        if pos == nkeys && def.window.is_some() {
            push_window_columns(&mut columns, &mut fields, &mut scope, qualifier);
        }
        let (sc, dt) = match &c.kind {
            ColumnKind::Key => {
                ki += 1;
                (SourceColumn::Key(ki - 1), c.data_type.clone())
            }
            ColumnKind::Value => {
                vi += 1;
                (SourceColumn::Value(vi - 1), c.data_type.clone())
            }
            ColumnKind::Headers => (SourceColumn::Headers, headers_type()),
            ColumnKind::Header(k) => (SourceColumn::Header(k.clone()), DataType::Binary),
        };
        columns.push(sc);
        fields.push(Field::new(&c.name, dt.clone(), true));
        scope.columns.push(ScopeColumn { qualifier: Some(qualifier.to_string()), name: c.name.clone(), field: c.name.clone(), data_type: dt });
    }
    if def.window.is_some() && nkeys == def.columns.len() {
        push_window_columns(&mut columns, &mut fields, &mut scope, qualifier);
    }
    if pseudo {
        for (name, sc, dt) in [
            (ROWPARTITION, SourceColumn::RowPartition, DataType::Int32),
            (ROWOFFSET, SourceColumn::RowOffset, DataType::Int64),
        ] {
            columns.push(sc);
            fields.push(Field::new(name, dt.clone(), true));
            scope.columns.push(ScopeColumn { qualifier: Some(qualifier.to_string()), name: name.into(), field: name.into(), data_type: dt });
        }
    }
    let timestamp = match &def.timestamp {
        None => None,
        Some(ts) => Some(timestamp_column(ts, &scope, &Schema::new(fields.clone()), catalog, functions)?),
    };
    scope.columns.push(ScopeColumn { qualifier: Some(qualifier.to_string()), name: ROWTIME.into(), field: TS_COLUMN.into(), data_type: DataType::Int64 });
    let schema = with_internal(fields);
    let spec = SourceSpec {
        topic: def.topic.clone(),
        kind: match def.source_type {
            SourceType::Stream => SourceKind::Stream,
            SourceType::Table => SourceKind::Table,
        },
        key_format: def.key_format,
        value_format: def.value_format,
        key_fields,
        value_fields,
        columns,
        timestamp,
        window: def.window.map(|w| match w {
            crate::catalog::WindowType::Time { size_ms } => engine::spec::SourceWindow { session: false, size_ms: size_ms as i64 },
            crate::catalog::WindowType::Session => engine::spec::SourceWindow { session: true, size_ms: 0 },
        }),
        internal: false,
        error_topic: def.error_topic.clone(),
        late_topic: def.late_topic.clone(),
    };
    Ok(PlannedSource { spec, schema, scope })
}

/// The event time of a source with `WITH (TIMESTAMP='col')`, over its user columns.
fn timestamp_column(
    ts: &crate::catalog::TimestampDef,
    scope: &Scope,
    user_schema: &Schema,
    catalog: &Catalog,
    functions: &FunctionRegistry,
) -> Result<std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>> {
    let binder = Binder::new(scope, user_schema, &catalog.types, functions)?;
    let col = scope.resolve(None, &ts.column)?;
    let t = Typed::new(datafusion::logical_expr::col(datafusion::common::Column::new_unqualified(&col.field)), col.data_type.clone());
    let t = event_time(t, &ts.column, ts.format.as_deref(), &binder, functions)?;
    binder.physical(&t)
}

/// Makes `src` carry its records' headers in the internal `_headers` column (before `_ts`),
/// for a sink to forward them, when its source declares header columns (ksqlDB forwards the
/// input record's headers; Eddy does when they are visible to the query).
pub fn forward_headers(src: &mut PlannedSource, def: &SourceDef) {
    if !def.columns.iter().any(|c| matches!(c.kind, ColumnKind::Headers | ColumnKind::Header(_))) {
        return;
    }
    src.spec.columns.push(SourceColumn::Headers);
    let n = src.schema.fields().len() - 2;
    let mut fields: Vec<Field> = src.schema.fields()[..n].iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(engine::types::HEADERS_COLUMN, headers_type(), true));
    src.schema = with_internal(fields);
}

/// The event time (BIGINT ms) held in `column`, whose value is `t`: a BIGINT, a TIMESTAMP, or a
/// STRING in `format` (a Java DateTimeFormatter pattern).
pub fn event_time(t: Typed, column: &str, format: Option<&str>, binder: &Binder<'_>, functions: &FunctionRegistry) -> Result<Typed> {
    Ok(match (&t.dt, format) {
        (DataType::Int64, None) => t,
        (DataType::Timestamp(_, _), None) => t.cast_to(&DataType::Int64),
        (DataType::Utf8, Some(fmt)) => {
            let f = Typed::new(datafusion::logical_expr::lit(fmt.to_string()), DataType::Utf8);
            functions.call(binder, "STRINGTOTIMESTAMP", vec![crate::binder::functions::Arg::Value(t), crate::binder::functions::Arg::Value(f)])?
        }
        (DataType::Utf8, None) => {
            return Err(invalid(format!("the TIMESTAMP column \"{column}\" is a STRING: give its TIMESTAMP_FORMAT")))
        }
        (other, _) => {
            return Err(invalid(format!(
                "Timestamp column, {column}, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified. Got {}",
                crate::types::type_name(other)
            )))
        }
    })
}

fn push_window_columns(columns: &mut Vec<SourceColumn>, fields: &mut Vec<Field>, scope: &mut Scope, qualifier: &str) {
    for (name, sc) in [(WINDOW_COLUMNS[0], SourceColumn::WindowStart), (WINDOW_COLUMNS[1], SourceColumn::WindowEnd)] {
        columns.push(sc);
        fields.push(Field::new(name, DataType::Int64, true));
        scope.columns.push(ScopeColumn { qualifier: Some(qualifier.to_string()), name: name.into(), field: name.into(), data_type: DataType::Int64 });
    }
}
