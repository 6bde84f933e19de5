//! `DelimitedEncoder`: Arrow columns to DELIMITED record bytes, as ksqlDB's
//! `KsqlDelimitedSerializer` writes them: fields in column order, null as nothing, DOUBLE as
//! Java prints it (`1.0`, `1.5E10`), DECIMAL plain with its scale, TIMESTAMP/TIME as integer
//! ms, DATE as integer days, BYTES as base64, quoted only where Commons CSV's minimal quoting
//! quotes (see [`needs_quotes`](super::needs_quotes)). No line terminator.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::Fields;

use super::needs_quotes;
use crate::format::text::{write_base64, write_decimal, write_f64, write_int};
use crate::format::view::{views, View};
use crate::format::{EncodeError, EncodedBatch, RecordEncoder};

/// Encodes rows as delimited lines.
pub(crate) struct DelimitedEncoder {
    fields: Fields,
    delim: u8,
}

impl DelimitedEncoder {
    pub fn new(fields: &Fields, delim: u8) -> Self {
        DelimitedEncoder { fields: fields.clone(), delim }
    }
}

impl RecordEncoder for DelimitedEncoder {
    fn encode_rows(&mut self, columns: &[ArrayRef], rows: usize, out: &mut EncodedBatch) -> Result<(), EncodeError> {
        let views = views(columns, &self.fields, rows)?;
        out.reserve(rows, rows * 8 * views.len());
        for i in 0..rows {
            let buf = out.buffer();
            for (j, v) in views.iter().enumerate() {
                if j > 0 {
                    buf.push(self.delim);
                }
                if !v.is_null(i) {
                    write_field(buf, v, i, j == 0, self.delim);
                }
            }
            out.end_entry();
        }
        Ok(())
    }
}

/// Appends the text of row `i` of `v`, quoted if needed; `first` is whether it starts the line.
fn write_field(out: &mut Vec<u8>, v: &View<'_>, i: usize, first: bool, delim: u8) {
    let start = out.len();
    match v {
        View::Utf8(a) => {
            let s = a.value(i).as_bytes();
            if needs_quotes(s, first, delim) {
                out.push(b'"');
                for &c in s {
                    if c == b'"' {
                        out.push(b'"');
                    }
                    out.push(c);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(s);
            }
            return;
        }
        View::Boolean(a) => out.extend_from_slice(if a.value(i) { b"true" } else { b"false" }),
        View::Int32(a) => write_int(out, a.value(i)),
        View::Int64(a) => write_int(out, a.value(i)),
        View::Float64(a) => write_f64(out, a.value(i)),
        View::Decimal(a, scale) => write_decimal(out, a.value(i), *scale),
        View::Binary(a) => write_base64(out, a.value(i)),
        View::Timestamp(a) => write_int(out, a.value(i)),
        View::Date(a) => write_int(out, a.value(i)),
        View::Time(a) => write_int(out, a.value(i)),
        View::List(..) | View::Map(..) | View::Struct(..) => {
            unreachable!("DELIMITED columns are primitive (checked by check_columns)")
        }
    }
    // Numbers and base64 hold no quotes, so quoting them is just adding the two.
    if needs_quotes(&out[start..], first, delim) {
        out.insert(start, b'"');
        out.push(b'"');
    }
}
