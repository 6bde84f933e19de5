//! Helpers for the batches that flow between operators: every batch ends with the internal
//! columns `_ts` (Int64 event time, ms) and `_op` (Int8 row op).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array, Int8Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int64Type, Int8Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::types::{OP_COLUMN, TS_COLUMN};

/// The `_ts` and `_op` fields.
pub fn internal_fields() -> [Field; 2] {
    [Field::new(TS_COLUMN, DataType::Int64, false), Field::new(OP_COLUMN, DataType::Int8, false)]
}

/// A schema of `fields` followed by `_ts` and `_op`.
pub fn with_internal(fields: impl IntoIterator<Item = Field>) -> SchemaRef {
    let mut v: Vec<Field> = fields.into_iter().collect();
    v.extend(internal_fields());
    Arc::new(Schema::new(v))
}

/// The user-visible fields of a schema (without `_ts`/`_op`).
pub fn user_fields(schema: &Schema) -> Fields {
    let n = schema.fields().len().saturating_sub(2);
    schema.fields()[..n].iter().cloned().collect()
}

/// The event times of a batch.
pub fn ts_column(batch: &RecordBatch) -> &Int64Array {
    batch.column(batch.num_columns() - 2).as_primitive::<Int64Type>()
}

/// The row ops of a batch.
pub fn op_column(batch: &RecordBatch) -> &Int8Array {
    batch.column(batch.num_columns() - 1).as_primitive::<Int8Type>()
}

/// Casts each column to the type of the matching schema field where they differ (the planner
/// fixes types; this absorbs representation differences such as a literal's narrower type).
pub fn cast_columns(cols: Vec<ArrayRef>, schema: &Schema) -> Result<Vec<ArrayRef>> {
    cols.into_iter()
        .zip(schema.fields())
        .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { Ok(cast(&c, f.data_type())?) })
        .collect()
}
