//! [`ColumnBuilder`]: the growable column the decoders append to, one per field, for every
//! Arrow type of the fixed mapping, nested ones included.
//!
//! Unlike Arrow's builders these can be truncated back to a row count, which is how a decoder
//! undoes the columns of a record that failed halfway: it truncates every builder to the rows
//! before the record and appends an all-null row instead.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    ListArray, MapArray, StringArray, StructArray, Time32MillisecondArray, TimestampMillisecondArray,
};
use datafusion::arrow::array::{BooleanBufferBuilder, NullBufferBuilder};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit};

use super::text::DecimalFit;
use super::types::{map_fields, type_name};

/// Why a value does not fit its column, with the path to it inside nested values.
#[derive(Debug)]
pub(crate) struct Problem {
    /// Path segments from the innermost outwards (`.A`, `[2]`), pushed while unwinding.
    pub path: Vec<String>,
    /// What is wrong.
    pub reason: String,
}

impl Problem {
    pub fn new(reason: impl Into<String>) -> Self {
        Problem { path: Vec::new(), reason: reason.into() }
    }

    /// Adds the segment of an enclosing value.
    pub fn within(mut self, segment: String) -> Self {
        self.path.push(segment);
        self
    }

    /// A DECIMAL that does not fit its type.
    pub fn decimal(fit: DecimalFit, text: &[u8], ty: &DataType) -> Self {
        let text = String::from_utf8_lossy(&text[..text.len().min(60)]);
        let ty = type_name(ty);
        Problem::new(match fit {
            DecimalFit::Overflow => format!("{text} overflows {ty}"),
            DecimalFit::Rounding => format!("cannot fit {text} into {ty} without rounding"),
        })
    }

    /// The field path starting at column `name`: `S.A[2]`.
    pub fn field(&self, name: &str) -> String {
        let mut s = name.to_string();
        for seg in self.path.iter().rev() {
            s.push_str(seg);
        }
        s
    }
}

/// The values of a [`ColumnBuilder`], by physical layout.
pub(crate) enum Kind {
    Boolean(BooleanBufferBuilder),
    /// Int32, Date32 (days), Time32 (ms).
    I32(Vec<i32>),
    /// Int64, Timestamp (ms).
    I64(Vec<i64>),
    F64(Vec<f64>),
    Decimal(Vec<i128>, u8, i8),
    /// Utf8 (`utf8`, every value checked on append) or Binary.
    Bytes { offsets: Vec<i32>, data: Vec<u8>, utf8: bool },
    List { item: FieldRef, offsets: Vec<i32>, child: Box<ColumnBuilder> },
    Map { entries: FieldRef, sorted: bool, offsets: Vec<i32>, keys: Box<ColumnBuilder>, values: Box<ColumnBuilder> },
    Struct { fields: Fields, children: Vec<ColumnBuilder> },
}

/// A growable, truncatable column of one field.
pub(crate) struct ColumnBuilder {
    pub data_type: DataType,
    /// Whether a null value may be appended ([`append_null`](Self::append_null) errs if not).
    pub nullable: bool,
    pub nulls: NullBufferBuilder,
    pub kind: Kind,
}

impl ColumnBuilder {
    /// A builder for `field`, whose type must be of the fixed mapping (checked by
    /// `check_columns` before any decoder is made).
    pub fn new(field: &Field) -> Self {
        let data_type = field.data_type().clone();
        let kind = match &data_type {
            DataType::Boolean => Kind::Boolean(BooleanBufferBuilder::new(0)),
            DataType::Int32 | DataType::Date32 | DataType::Time32(TimeUnit::Millisecond) => Kind::I32(Vec::new()),
            DataType::Int64 | DataType::Timestamp(TimeUnit::Millisecond, None) => Kind::I64(Vec::new()),
            DataType::Float64 => Kind::F64(Vec::new()),
            DataType::Decimal128(p, s) => Kind::Decimal(Vec::new(), *p, *s),
            DataType::Utf8 => Kind::Bytes { offsets: vec![0], data: Vec::new(), utf8: true },
            DataType::Binary => Kind::Bytes { offsets: vec![0], data: Vec::new(), utf8: false },
            DataType::List(item) => {
                Kind::List { item: item.clone(), offsets: vec![0], child: Box::new(ColumnBuilder::new(item)) }
            }
            DataType::Map(entries, sorted) => {
                let (k, v) = map_fields(entries).expect("map entries are a key/value struct");
                Kind::Map {
                    entries: entries.clone(),
                    sorted: *sorted,
                    offsets: vec![0],
                    keys: Box::new(ColumnBuilder::new(k)),
                    values: Box::new(ColumnBuilder::new(v)),
                }
            }
            DataType::Struct(fields) => {
                Kind::Struct { fields: fields.clone(), children: fields.iter().map(|f| ColumnBuilder::new(f)).collect() }
            }
            other => panic!("type {other} passed check_columns but has no builder"),
        };
        ColumnBuilder { data_type, nullable: field.is_nullable(), nulls: NullBufferBuilder::new(0), kind }
    }

    /// Rows appended.
    pub fn len(&self) -> usize {
        self.nulls.len()
    }

    /// Appends a null value; errs when the field is not nullable.
    pub fn append_null(&mut self) -> Result<(), Problem> {
        if !self.nullable {
            return Err(Problem::new("null value for a non-nullable field"));
        }
        self.append_masked_null();
        Ok(())
    }

    /// Appends a null that a null parent (or a failed record) hides; never errs.
    pub fn append_masked_null(&mut self) {
        self.nulls.append_null();
        match &mut self.kind {
            Kind::Boolean(b) => b.append(false),
            Kind::I32(v) => v.push(0),
            Kind::I64(v) => v.push(0),
            Kind::F64(v) => v.push(0.0),
            Kind::Decimal(v, ..) => v.push(0),
            Kind::Bytes { offsets, .. } | Kind::List { offsets, .. } | Kind::Map { offsets, .. } => {
                offsets.push(offsets[offsets.len() - 1]);
            }
            Kind::Struct { children, .. } => children.iter_mut().for_each(ColumnBuilder::append_masked_null),
        }
    }

    /// Marks the value just written into the kind's buffers (or children) as a non-null row.
    /// For Bytes/List/Map it also closes the offsets; errs when offsets would overflow.
    pub fn end_value(&mut self) -> Result<(), Problem> {
        let end = match &mut self.kind {
            Kind::Bytes { offsets, data, .. } => Some((offsets, data.len())),
            Kind::List { offsets, child, .. } => Some((offsets, child.len())),
            Kind::Map { offsets, keys, .. } => Some((offsets, keys.len())),
            _ => None,
        };
        if let Some((offsets, end)) = end {
            let end = i32::try_from(end).map_err(|_| Problem::new("batch too large: over 2 GiB in one column"))?;
            offsets.push(end);
        }
        self.nulls.append_non_null();
        Ok(())
    }

    /// Drops the rows from `rows` on, and whatever a value being written left in the buffers
    /// or children without closing its row.
    pub fn truncate(&mut self, rows: usize) {
        self.nulls.truncate(rows);
        match &mut self.kind {
            Kind::Boolean(b) => b.truncate(rows),
            Kind::I32(v) => v.truncate(rows),
            Kind::I64(v) => v.truncate(rows),
            Kind::F64(v) => v.truncate(rows),
            Kind::Decimal(v, ..) => v.truncate(rows),
            Kind::Bytes { offsets, data, .. } => {
                offsets.truncate(rows + 1);
                data.truncate(offsets[rows] as usize);
            }
            Kind::List { offsets, child, .. } => {
                offsets.truncate(rows + 1);
                child.truncate(offsets[rows] as usize);
            }
            Kind::Map { offsets, keys, values, .. } => {
                offsets.truncate(rows + 1);
                keys.truncate(offsets[rows] as usize);
                values.truncate(offsets[rows] as usize);
            }
            Kind::Struct { children, .. } => children.iter_mut().for_each(|c| c.truncate(rows)),
        }
    }

    /// The rows appended so far as an array of the field's type; resets the builder.
    pub fn finish(&mut self) -> ArrayRef {
        let rows = self.nulls.len();
        let nulls = self.nulls.finish();
        match &mut self.kind {
            Kind::Boolean(b) => Arc::new(BooleanArray::new(b.finish(), nulls)),
            Kind::I32(v) => {
                let v = ScalarBuffer::from(std::mem::take(v));
                match self.data_type {
                    DataType::Date32 => Arc::new(Date32Array::new(v, nulls)),
                    DataType::Time32(_) => Arc::new(Time32MillisecondArray::new(v, nulls)),
                    _ => Arc::new(Int32Array::new(v, nulls)),
                }
            }
            Kind::I64(v) => {
                let v = ScalarBuffer::from(std::mem::take(v));
                match self.data_type {
                    DataType::Timestamp(..) => Arc::new(TimestampMillisecondArray::new(v, nulls)),
                    _ => Arc::new(Int64Array::new(v, nulls)),
                }
            }
            Kind::F64(v) => Arc::new(Float64Array::new(ScalarBuffer::from(std::mem::take(v)), nulls)),
            Kind::Decimal(v, p, s) => Arc::new(
                Decimal128Array::new(ScalarBuffer::from(std::mem::take(v)), nulls)
                    .with_precision_and_scale(*p, *s)
                    .expect("decimal type was valid when the builder was made"),
            ),
            Kind::Bytes { offsets, data, utf8 } => {
                let offsets = take_offsets(offsets);
                let data = Buffer::from_vec(std::mem::take(data));
                if *utf8 {
                    Arc::new(StringArray::try_new(offsets, data, nulls).expect("strings are checked on append"))
                } else {
                    Arc::new(BinaryArray::new(offsets, data, nulls))
                }
            }
            Kind::List { item, offsets, child } => {
                let offsets = take_offsets(offsets);
                Arc::new(ListArray::try_new(item.clone(), offsets, child.finish(), nulls).expect("list invariants"))
            }
            Kind::Map { entries, sorted, offsets, keys, values } => {
                let offsets = take_offsets(offsets);
                let DataType::Struct(kv) = entries.data_type() else { unreachable!("map entries are a struct") };
                let entries_array =
                    StructArray::try_new(kv.clone(), vec![keys.finish(), values.finish()], None).expect("map entries");
                Arc::new(MapArray::try_new(entries.clone(), offsets, entries_array, nulls, *sorted).expect("map invariants"))
            }
            // STRUCT(): no children to take the length from.
            Kind::Struct { fields, .. } if fields.is_empty() => Arc::new(StructArray::new_empty_fields(rows, nulls)),
            Kind::Struct { fields, children } => {
                let arrays = children.iter_mut().map(ColumnBuilder::finish).collect();
                Arc::new(StructArray::try_new(fields.clone(), arrays, nulls).expect("struct invariants"))
            }
        }
    }
}

fn take_offsets(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, vec![0])))
}
