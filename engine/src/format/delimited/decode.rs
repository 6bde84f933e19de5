//! `DelimitedDecoder`: DELIMITED record bytes to Arrow columns, as ksqlDB's
//! `KsqlDelimitedDeserializer` parses each field: BOOLEAN as `Boolean.parseBoolean` (`true` in
//! any case, anything else false), INT/BIGINT as `Integer.parseInt`/`Long.parseLong`, DOUBLE
//! as `Double.parseDouble`, DECIMAL as `new BigDecimal` fitted without rounding, TIMESTAMP and
//! TIME as integer ms, DATE as integer days, BYTES as base64, STRING as is.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Fields};

use super::{split_record, Field};
use crate::format::builder::{ColumnBuilder, Kind, Problem};
use crate::format::text::{parse_decimal_text, parse_f64, parse_i32, parse_i64, parse_java_bool, read_base64};
use crate::format::types::type_name;
use crate::format::{DecodeError, RecordDecoder};

/// Decodes delimited lines into columns.
pub(crate) struct DelimitedDecoder {
    names: Vec<String>,
    cols: Vec<ColumnBuilder>,
    delim: u8,
    fields: Vec<Field>,
    scratch: Vec<u8>,
    rows: usize,
    last_null: bool,
}

impl DelimitedDecoder {
    pub fn new(fields: &Fields, delim: u8) -> Self {
        DelimitedDecoder {
            names: fields.iter().map(|f| f.name().clone()).collect(),
            cols: fields.iter().map(|f| ColumnBuilder::new(f)).collect(),
            delim,
            fields: Vec::new(),
            scratch: Vec::new(),
            rows: 0,
            last_null: false,
        }
    }

    fn decode(&mut self, b: &[u8]) -> Result<(), DecodeError> {
        if let Err(e) = std::str::from_utf8(b) {
            return Err(DecodeError::Utf8 { offset: e.valid_up_to() });
        }
        split_record(b, self.delim, &mut self.fields, &mut self.scratch)?;
        if self.fields.len() != self.cols.len() {
            return Err(DecodeError::FieldCount { expected: self.cols.len(), got: self.fields.len() });
        }
        for (j, col) in self.cols.iter_mut().enumerate() {
            let text = match self.fields[j] {
                Field::Record(s, e) => &b[s..e],
                Field::Scratch(s, e) => &self.scratch[s..e],
            };
            append_text(col, text).map_err(|p| DecodeError::Field { field: p.field(&self.names[j]), reason: p.reason })?;
        }
        Ok(())
    }
}

impl RecordDecoder for DelimitedDecoder {
    fn append(&mut self, bytes: Option<&[u8]>) -> Result<(), DecodeError> {
        self.last_null = bytes.is_none();
        let res = match bytes {
            Some(b) => self.decode(b),
            None => {
                self.cols.iter_mut().for_each(ColumnBuilder::append_masked_null);
                Ok(())
            }
        };
        if res.is_err() {
            for c in &mut self.cols {
                c.truncate(self.rows);
                c.append_masked_null();
            }
        }
        self.rows += 1;
        res
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        self.cols.iter_mut().map(ColumnBuilder::finish).collect()
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn last_was_null(&self) -> bool {
        self.last_null
    }
}

/// Parses one field's text into `col`; an empty field is null.
fn append_text(col: &mut ColumnBuilder, s: &[u8]) -> Result<(), Problem> {
    if s.is_empty() {
        return col.append_null();
    }
    let ty = &col.data_type;
    let bad = || {
        let text = String::from_utf8_lossy(&s[..s.len().min(40)]);
        Problem::new(format!("expected {}, got \"{text}\"", type_name(ty)))
    };
    match &mut col.kind {
        Kind::Boolean(v) => v.append(parse_java_bool(s)),
        Kind::I32(v) => {
            let x = match ty {
                DataType::Date32 => parse_i64(s).and_then(|d| i32::try_from(d).ok()),
                DataType::Time32(_) => parse_i64(s).filter(|t| (0..86_400_000).contains(t)).map(|t| t as i32),
                _ => parse_i32(s),
            };
            v.push(x.ok_or_else(bad)?);
        }
        Kind::I64(v) => v.push(parse_i64(s).ok_or_else(bad)?),
        Kind::F64(v) => v.push(parse_f64(s).ok_or_else(bad)?),
        Kind::Decimal(v, p, sc) => {
            let d = parse_decimal_text(s).ok_or_else(bad)?;
            v.push(d.fit(*p, *sc).map_err(|fit| Problem::decimal(fit, s, ty))?);
        }
        Kind::Bytes { data, utf8: true, .. } => data.extend_from_slice(s),
        Kind::Bytes { data, utf8: false, .. } => {
            if !read_base64(data, s) {
                return Err(Problem::new(format!("expected base64 BYTES, got \"{}\"", String::from_utf8_lossy(s))));
            }
        }
        Kind::List { .. } | Kind::Map { .. } | Kind::Struct { .. } => {
            unreachable!("DELIMITED columns are primitive (checked by check_columns)")
        }
    }
    col.end_value()
}
