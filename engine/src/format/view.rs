//! [`View`]: a column downcast once per batch to its concrete Arrow array (nested types
//! recursively), so that encoders read values without per-value downcasts.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    Int64Array, ListArray, MapArray, StringArray, StructArray, Time32MillisecondArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Fields, Float64Type, Int32Type, Int64Type, Time32MillisecondType,
    TimeUnit, TimestampMillisecondType,
};

use super::types::type_name;
use super::EncodeError;

/// A typed view of one column (or nested child) of a batch.
pub(crate) enum View<'a> {
    Boolean(&'a BooleanArray),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Float64(&'a Float64Array),
    Decimal(&'a Decimal128Array, i8),
    Utf8(&'a StringArray),
    Binary(&'a BinaryArray),
    Timestamp(&'a TimestampMillisecondArray),
    Date(&'a Date32Array),
    Time(&'a Time32MillisecondArray),
    List(&'a ListArray, Box<View<'a>>),
    Map(&'a MapArray, Box<View<'a>>, Box<View<'a>>),
    /// The struct and its children, in the order of `fields`.
    Struct(&'a StructArray, Vec<View<'a>>, &'a Fields),
}

impl<'a> View<'a> {
    /// Views `array` as the type of `field`.
    ///
    /// # Errors
    /// When the array's type is not the field's (nested field names and nullability aside).
    pub fn new(array: &'a dyn Array, field: &'a Field) -> Result<Self, EncodeError> {
        let mismatch = || EncodeError::ColumnType {
            column: field.name().clone(),
            expected: type_name(field.data_type()),
            got: type_name(array.data_type()),
        };
        if !same_shape(array.data_type(), field.data_type()) {
            return Err(mismatch());
        }
        Ok(match field.data_type() {
            DataType::Boolean => View::Boolean(array.as_boolean()),
            DataType::Int32 => View::Int32(array.as_primitive::<Int32Type>()),
            DataType::Int64 => View::Int64(array.as_primitive::<Int64Type>()),
            DataType::Float64 => View::Float64(array.as_primitive::<Float64Type>()),
            DataType::Decimal128(_, s) => View::Decimal(array.as_primitive::<Decimal128Type>(), *s),
            DataType::Utf8 => View::Utf8(array.as_string::<i32>()),
            DataType::Binary => View::Binary(array.as_binary::<i32>()),
            DataType::Timestamp(TimeUnit::Millisecond, None) => {
                View::Timestamp(array.as_primitive::<TimestampMillisecondType>())
            }
            DataType::Date32 => View::Date(array.as_primitive::<Date32Type>()),
            DataType::Time32(TimeUnit::Millisecond) => View::Time(array.as_primitive::<Time32MillisecondType>()),
            DataType::List(item) => {
                let list = array.as_list::<i32>();
                View::List(list, Box::new(View::new(list.values().as_ref(), item)?))
            }
            DataType::Map(entries, _) => {
                let map = array.as_map();
                let (kf, vf) = super::types::map_fields(entries).ok_or_else(mismatch)?;
                let keys = View::new(map.keys().as_ref(), kf)?;
                let values = View::new(map.values().as_ref(), vf)?;
                View::Map(map, Box::new(keys), Box::new(values))
            }
            DataType::Struct(fields) => {
                let st = array.as_struct();
                let children =
                    st.columns().iter().zip(fields.iter()).map(|(c, f)| View::new(c.as_ref(), f)).collect::<Result<_, _>>()?;
                View::Struct(st, children, fields)
            }
            _ => return Err(mismatch()),
        })
    }

    /// Whether row `i` is null.
    #[inline]
    pub fn is_null(&self, i: usize) -> bool {
        match self {
            View::Boolean(a) => a.is_null(i),
            View::Int32(a) => a.is_null(i),
            View::Int64(a) => a.is_null(i),
            View::Float64(a) => a.is_null(i),
            View::Decimal(a, _) => a.is_null(i),
            View::Utf8(a) => a.is_null(i),
            View::Binary(a) => a.is_null(i),
            View::Timestamp(a) => a.is_null(i),
            View::Date(a) => a.is_null(i),
            View::Time(a) => a.is_null(i),
            View::List(a, _) => a.is_null(i),
            View::Map(a, ..) => a.is_null(i),
            View::Struct(a, ..) => a.is_null(i),
        }
    }
}

/// Views every column of a batch, checking count, types and lengths against `fields`.
pub(crate) fn views<'a>(columns: &'a [ArrayRef], fields: &'a Fields, rows: usize) -> Result<Vec<View<'a>>, EncodeError> {
    if columns.len() != fields.len() {
        return Err(EncodeError::ColumnCount { expected: fields.len(), got: columns.len() });
    }
    columns
        .iter()
        .zip(fields.iter())
        .map(|(c, f)| {
            if c.len() < rows {
                return Err(EncodeError::ColumnLength { column: f.name().clone(), expected: rows, got: c.len() });
            }
            View::new(c.as_ref(), f)
        })
        .collect()
}

/// Whether two types are the same but for nested field names, nullability and metadata (the
/// encoders take names from their own fields and write nulls wherever they are).
fn same_shape(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(a), DataType::List(b)) => same_shape(a.data_type(), b.data_type()),
        (DataType::Map(a, _), DataType::Map(b, _)) => same_shape(a.data_type(), b.data_type()),
        (DataType::Struct(a), DataType::Struct(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| same_shape(a.data_type(), b.data_type()))
        }
        _ => a == b,
    }
}
