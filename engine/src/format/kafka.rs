//! The `KAFKA` format: Kafka's primitive serializers for a single column. INT is 4 bytes
//! big-endian, BIGINT 8 bytes big-endian, DOUBLE 8 bytes big-endian IEEE 754, STRING UTF-8
//! (invalid UTF-8 is an error here, where Java would substitute U+FFFD), BYTES the raw bytes.
//! A null value is a null record both ways.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Fields};

use super::builder::{ColumnBuilder, Kind};
use super::view::{views, View};
use super::{DecodeError, EncodeError, EncodedBatch, RecordDecoder, RecordEncoder};

/// Decodes one primitive column.
pub(crate) struct KafkaDecoder {
    name: String,
    col: ColumnBuilder,
    rows: usize,
    last_null: bool,
}

impl KafkaDecoder {
    pub fn new(fields: &Fields) -> Self {
        KafkaDecoder { name: fields[0].name().clone(), col: ColumnBuilder::new(&fields[0]), rows: 0, last_null: false }
    }

    fn decode(&mut self, b: &[u8]) -> Result<(), DecodeError> {
        let size = |ty: &'static str, expected: usize| DecodeError::KafkaSize { ty, expected, got: b.len() };
        match &mut self.col.kind {
            Kind::I32(v) => v.push(i32::from_be_bytes(b.try_into().map_err(|_| size("INTEGER", 4))?)),
            Kind::I64(v) => v.push(i64::from_be_bytes(b.try_into().map_err(|_| size("BIGINT", 8))?)),
            Kind::F64(v) => v.push(f64::from_be_bytes(b.try_into().map_err(|_| size("DOUBLE", 8))?)),
            Kind::Bytes { data, utf8, .. } => {
                if *utf8 {
                    if let Err(e) = std::str::from_utf8(b) {
                        return Err(DecodeError::Utf8 { offset: e.valid_up_to() });
                    }
                }
                data.extend_from_slice(b);
            }
            _ => unreachable!("KAFKA columns are INT, BIGINT, DOUBLE, STRING or BYTES (checked by check_columns)"),
        }
        self.col.end_value().map_err(|p| DecodeError::Field { field: p.field(&self.name), reason: p.reason })
    }
}

impl RecordDecoder for KafkaDecoder {
    fn append(&mut self, bytes: Option<&[u8]>) -> Result<(), DecodeError> {
        self.last_null = bytes.is_none();
        let res = match bytes {
            Some(b) => self.decode(b),
            None => {
                self.col.append_masked_null();
                Ok(())
            }
        };
        if res.is_err() {
            self.col.truncate(self.rows);
            self.col.append_masked_null();
        }
        self.rows += 1;
        res
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        vec![self.col.finish()]
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn last_was_null(&self) -> bool {
        self.last_null
    }
}

/// Encodes one primitive column.
pub(crate) struct KafkaEncoder {
    fields: Fields,
}

impl KafkaEncoder {
    pub fn new(fields: &Fields) -> Self {
        debug_assert!(matches!(
            fields[0].data_type(),
            DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Utf8 | DataType::Binary
        ));
        KafkaEncoder { fields: fields.clone() }
    }
}

impl RecordEncoder for KafkaEncoder {
    fn encode_rows(&mut self, columns: &[ArrayRef], rows: usize, out: &mut EncodedBatch) -> Result<(), EncodeError> {
        let views = views(columns, &self.fields, rows)?;
        let v = &views[0];
        for i in 0..rows {
            if v.is_null(i) {
                out.push_null();
                continue;
            }
            match v {
                View::Int32(a) => out.push(Some(&a.value(i).to_be_bytes())),
                View::Int64(a) => out.push(Some(&a.value(i).to_be_bytes())),
                View::Float64(a) => out.push(Some(&a.value(i).to_be_bytes())),
                View::Utf8(a) => out.push(Some(a.value(i).as_bytes())),
                View::Binary(a) => out.push(Some(a.value(i))),
                _ => unreachable!("KAFKA columns are INT, BIGINT, DOUBLE, STRING or BYTES (checked by check_columns)"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{AsArray, BinaryArray, Float64Array, Int32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Float64Type, Int32Type, Int64Type};

    use super::*;
    use crate::format::{new_decoder, new_encoder, FormatSpec, Role};

    fn one(name: &str, ty: DataType) -> Fields {
        Fields::from(vec![Field::new(name, ty, true)])
    }

    #[test]
    fn round_trips_every_supported_type() {
        let cases: Vec<(DataType, ArrayRef)> = vec![
            (DataType::Int32, Arc::new(Int32Array::from(vec![Some(1), None, Some(-2), Some(i32::MAX)]))),
            (DataType::Int64, Arc::new(Int64Array::from(vec![Some(1), None, Some(i64::MIN)]))),
            (DataType::Float64, Arc::new(Float64Array::from(vec![Some(1.5), None, Some(f64::NAN)]))),
            (DataType::Utf8, Arc::new(StringArray::from(vec![Some("héllo"), None, Some("")]))),
            (DataType::Binary, Arc::new(BinaryArray::from(vec![Some(&[0u8, 255][..]), None, Some(&[][..])]))),
        ];
        for (ty, array) in cases {
            let fields = one("V", ty);
            for role in [Role::Key, Role::Value] {
                let mut enc = new_encoder(&FormatSpec::kafka(), role, &fields).unwrap();
                let mut out = EncodedBatch::new();
                enc.encode(std::slice::from_ref(&array), &mut out).unwrap();
                let mut dec = new_decoder(&FormatSpec::kafka(), role, &fields).unwrap();
                for e in out.iter() {
                    dec.append(e).unwrap();
                }
                let back = dec.finish().remove(0);
                // NaN != NaN: compare the encodings instead.
                let mut again = EncodedBatch::new();
                enc.encode(std::slice::from_ref(&back), &mut again).unwrap();
                assert_eq!(out, again);
                assert_eq!(back.logical_nulls(), array.logical_nulls());
            }
        }
    }

    #[test]
    fn wire_layout_is_big_endian() {
        let fields = one("V", DataType::Int32);
        let mut dec = new_decoder(&FormatSpec::kafka(), Role::Value, &fields).unwrap();
        dec.append(Some(&[0, 0, 1, 2])).unwrap();
        assert_eq!(dec.finish()[0].as_primitive::<Int32Type>().value(0), 258);
        let fields = one("V", DataType::Int64);
        let mut dec = new_decoder(&FormatSpec::kafka(), Role::Key, &fields).unwrap();
        dec.append(Some(&[0, 0, 0, 0, 0, 0, 1, 0])).unwrap();
        assert_eq!(dec.finish()[0].as_primitive::<Int64Type>().value(0), 256);
        let fields = one("V", DataType::Float64);
        let mut dec = new_decoder(&FormatSpec::kafka(), Role::Value, &fields).unwrap();
        dec.append(Some(&1.5f64.to_be_bytes())).unwrap();
        assert_eq!(dec.finish()[0].as_primitive::<Float64Type>().value(0), 1.5);
    }

    #[test]
    fn wrong_sizes_and_bad_utf8_fail_with_a_null_row() {
        let fields = one("V", DataType::Int64);
        let mut dec = new_decoder(&FormatSpec::kafka(), Role::Value, &fields).unwrap();
        let e = dec.append(Some(&[1, 2, 3])).unwrap_err();
        assert_eq!(e.to_string(), "KAFKA BIGINT value must be 8 bytes, got 3");
        let e = dec.append(Some(&[])).unwrap_err();
        assert_eq!(e.to_string(), "KAFKA BIGINT value must be 8 bytes, got 0");
        dec.append(Some(&7i64.to_be_bytes())).unwrap();
        let a = dec.finish().remove(0);
        assert_eq!(a.len(), 3);
        assert_eq!(a.null_count(), 2);
        let fields = one("V", DataType::Int32);
        let mut dec = new_decoder(&FormatSpec::kafka(), Role::Value, &fields).unwrap();
        assert_eq!(dec.append(Some(&[1; 8])).unwrap_err().to_string(), "KAFKA INTEGER value must be 4 bytes, got 8");
        let fields = one("V", DataType::Utf8);
        let mut dec = new_decoder(&FormatSpec::kafka(), Role::Value, &fields).unwrap();
        assert_eq!(dec.append(Some(b"ab\xff")).unwrap_err().to_string(), "invalid UTF-8 at byte 2");
        dec.append(Some(b"")).unwrap();
        let a = dec.finish().remove(0);
        assert_eq!(a.as_string::<i32>().value(1), "");
        assert!(a.is_null(0));
    }

    #[test]
    fn null_bytes_are_a_null_row() {
        let fields = one("V", DataType::Utf8);
        let mut dec = new_decoder(&FormatSpec::kafka(), Role::Value, &fields).unwrap();
        dec.append(None).unwrap();
        assert!(dec.last_was_null());
        assert_eq!(dec.rows(), 1);
        assert!(dec.finish()[0].is_null(0));
    }
}
