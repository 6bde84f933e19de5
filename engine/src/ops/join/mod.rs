//! Joins: stream-table, stream-stream (windowed) and table-table, on equality of key columns.
//!
//! Every join emits rows made of the left input's user columns followed by the right input's,
//! either side null-padded for outer joins, with the larger of the two event times. Rows are
//! kept as Arrow row-format bytes in state; keys are compared as the row-format bytes of the
//! key columns (the planner casts both sides' keys to the same types).

pub mod foreign_key;
pub mod stream_stream;
pub mod stream_table;
pub mod table_table;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, Int8Array, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, Rows, SortField};

pub use foreign_key::ForeignKeyJoinOp;
pub use stream_stream::StreamStreamJoinOp;
pub use stream_table::StreamTableJoinOp;
pub use table_table::TableTableJoinOp;

use crate::error::Result;
use crate::types::RowOp;

/// Encodes a side's user columns (or key columns) as row-format bytes and back.
pub(crate) struct Codec {
    conv: RowConverter,
    columns: Vec<usize>,
}

impl Codec {
    /// A codec of `columns` of `schema`.
    pub fn new(schema: &Schema, columns: Vec<usize>) -> Result<Self> {
        let fields = columns.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect();
        Ok(Codec { conv: RowConverter::new(fields)?, columns })
    }

    /// A codec of the first `n` columns of `schema`.
    pub fn first(schema: &Schema, n: usize) -> Result<Self> {
        Self::new(schema, (0..n).collect())
    }

    /// Encodes the codec's columns of every row of `batch`.
    pub fn rows(&self, batch: &RecordBatch) -> Result<Rows> {
        let cols: Vec<ArrayRef> = self.columns.iter().map(|&i| batch.column(i).clone()).collect();
        Ok(self.conv.convert_columns(&cols)?)
    }

    /// True when row `i` has a null in one of the codec's columns.
    pub fn has_null(&self, batch: &RecordBatch, i: usize) -> bool {
        self.columns.iter().any(|&c| batch.column(c).is_null(i))
    }

    /// Decodes rows; `None` entries become all-null rows.
    pub fn decode(&self, rows: &[Option<&[u8]>]) -> Result<Vec<ArrayRef>> {
        let present: Vec<&[u8]> = rows.iter().flatten().copied().collect();
        let parser = self.conv.parser();
        let parsed: Vec<_> = present.iter().map(|b| parser.parse(b)).collect();
        let arrays = self.conv.convert_rows(parsed.iter().copied())?;
        if present.len() == rows.len() {
            return Ok(arrays);
        }
        let mut next = 0u32;
        let idx: UInt32Array = rows
            .iter()
            .map(|r| {
                r.map(|_| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        arrays.iter().map(|a| Ok(take(a.as_ref(), &idx, None)?)).collect()
    }
}

use datafusion::arrow::array::Array;

/// One joined output row.
pub(crate) struct Joined {
    pub left: Option<Vec<u8>>,
    pub right: Option<Vec<u8>>,
    pub ts: i64,
    pub op: RowOp,
}

/// Builds the output batch (left columns, right columns, `_ts`, `_op`).
pub(crate) fn build(schema: &SchemaRef, left: &Codec, right: &Codec, rows: &[Joined]) -> Result<Option<RecordBatch>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let l: Vec<Option<&[u8]>> = rows.iter().map(|r| r.left.as_deref()).collect();
    let r: Vec<Option<&[u8]>> = rows.iter().map(|r| r.right.as_deref()).collect();
    let mut cols = left.decode(&l)?;
    cols.extend(right.decode(&r)?);
    cols.push(Arc::new(Int64Array::from(rows.iter().map(|r| r.ts).collect::<Vec<_>>())));
    cols.push(Arc::new(Int8Array::from(rows.iter().map(|r| r.op as i8).collect::<Vec<_>>())));
    let cols = crate::batch::cast_columns(cols, schema)?;
    Ok(Some(RecordBatch::try_new(schema.clone(), cols)?))
}

/// A row's stored form: event time then row bytes.
pub(crate) fn stored(ts: i64, row: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + row.len());
    v.extend_from_slice(&ts.to_le_bytes());
    v.extend_from_slice(row);
    v
}

/// Splits a stored row.
pub(crate) fn unstored(v: &[u8]) -> Option<(i64, &[u8])> {
    Some((i64::from_le_bytes(v.get(..8)?.try_into().ok()?), &v[8..]))
}
