//! `JsonEncoder`: Arrow columns to JSON record bytes, as ksqlDB's JSON serializer writes them.
//!
//! An object per row with the columns in field order under their (upper-case) names, or the
//! bare value of an unwrapped single column (null then writes a null record, not `null`).
//! DOUBLE as Java prints it (`1.0`, `1.5E10`; NaN and infinities as the strings `"NaN"`,
//! `"Infinity"`, `"-Infinity"`, as Jackson does by default), DECIMAL as a plain number keeping
//! its scale (`1.10`), TIMESTAMP/TIME as integer ms, DATE as integer days, BYTES as base64.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::Fields;

use super::scan::write_string;
use crate::format::text::{write_base64, write_decimal, write_f64, write_int};
use crate::format::view::{views, View};
use crate::format::{EncodeError, EncodedBatch, RecordEncoder};

/// Encodes rows as JSON objects or bare values.
pub(crate) struct JsonEncoder {
    fields: Fields,
    unwrapped: bool,
    /// `{"A":` for the first column, `,"B":` for the others.
    prefixes: Vec<Vec<u8>>,
}

impl JsonEncoder {
    pub fn new(fields: &Fields, unwrapped: bool) -> Self {
        let prefixes = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut p = vec![if i == 0 { b'{' } else { b',' }];
                write_string(&mut p, f.name().as_bytes());
                p.push(b':');
                p
            })
            .collect();
        JsonEncoder { fields: fields.clone(), unwrapped, prefixes }
    }
}

impl RecordEncoder for JsonEncoder {
    fn encode_rows(&mut self, columns: &[ArrayRef], rows: usize, out: &mut EncodedBatch) -> Result<(), EncodeError> {
        let views = views(columns, &self.fields, rows)?;
        out.reserve(rows, rows * 16 * views.len());
        if self.unwrapped {
            let v = &views[0];
            for i in 0..rows {
                if v.is_null(i) {
                    out.push_null();
                } else {
                    write_value(out.buffer(), v, i);
                    out.end_entry();
                }
            }
            return Ok(());
        }
        for i in 0..rows {
            let buf = out.buffer();
            for (v, prefix) in views.iter().zip(&self.prefixes) {
                buf.extend_from_slice(prefix);
                write_value(buf, v, i);
            }
            buf.push(b'}');
            out.end_entry();
        }
        Ok(())
    }
}

/// Appends the JSON form of row `i` of `v`.
fn write_value(out: &mut Vec<u8>, v: &View<'_>, i: usize) {
    if v.is_null(i) {
        out.extend_from_slice(b"null");
        return;
    }
    match v {
        View::Boolean(a) => out.extend_from_slice(if a.value(i) { b"true" } else { b"false" }),
        View::Int32(a) => write_int(out, a.value(i)),
        View::Int64(a) => write_int(out, a.value(i)),
        View::Float64(a) => {
            let x = a.value(i);
            if x.is_finite() {
                write_f64(out, x);
            } else {
                out.push(b'"');
                write_f64(out, x);
                out.push(b'"');
            }
        }
        View::Decimal(a, scale) => write_decimal(out, a.value(i), *scale),
        View::Utf8(a) => write_string(out, a.value(i).as_bytes()),
        View::Binary(a) => {
            out.push(b'"');
            write_base64(out, a.value(i));
            out.push(b'"');
        }
        View::Timestamp(a) => write_int(out, a.value(i)),
        View::Date(a) => write_int(out, a.value(i)),
        View::Time(a) => write_int(out, a.value(i)),
        View::List(a, child) => {
            let offsets = a.value_offsets();
            out.push(b'[');
            for (n, k) in (offsets[i] as usize..offsets[i + 1] as usize).enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_value(out, child, k);
            }
            out.push(b']');
        }
        View::Map(a, keys, values) => {
            let offsets = a.value_offsets();
            out.push(b'{');
            for (n, k) in (offsets[i] as usize..offsets[i + 1] as usize).enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                match keys.as_ref() {
                    View::Utf8(s) => write_string(out, s.value(k).as_bytes()),
                    other => {
                        // Only STRING keys pass check_columns for JSON; quote anything else.
                        let mut tmp = Vec::new();
                        write_value(&mut tmp, other, k);
                        write_string(out, &tmp);
                    }
                }
                out.push(b':');
                write_value(out, values, k);
            }
            out.push(b'}');
        }
        View::Struct(_, children, fields) => {
            out.push(b'{');
            for (n, (child, f)) in children.iter().zip(fields.iter()).enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_string(out, f.name().as_bytes());
                out.push(b':');
                write_value(out, child, i);
            }
            out.push(b'}');
        }
    }
}
