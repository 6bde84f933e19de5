//! Record formats: turning the key or value bytes of topic records into Arrow columns, and
//! columns back into bytes, with ksqlDB's semantics for `JSON`, `DELIMITED`, `KAFKA` and `NONE`.
//!
//! A decoder is set up once per source (format, role, columns) and then fed one record at a
//! time: [`RecordDecoder::append`] appends exactly one row to the decoder's column builders,
//! whether the record decodes or not (a failed record appends an all-null row and returns the
//! error, so rows stay aligned with records and the caller drops the failed ones).
//! [`RecordDecoder::finish`] hands out the columns and resets. Encoders turn whole batches of
//! columns into an [`EncodedBatch`], one entry per row.
//!
//! SQL types map to Arrow as fixed by the design: BOOLEAN→Boolean, INT→Int32, BIGINT→Int64,
//! DOUBLE→Float64, DECIMAL(p,s)→Decimal128(p,s), STRING→Utf8, BYTES→Binary,
//! TIMESTAMP→Timestamp(ms), DATE→Date32, TIME→Time32(ms), ARRAY→List, MAP→Map, STRUCT→Struct.
//!
//! Stateless apart from reusable buffers: nothing happens on watermarks or barriers.

mod batch;
mod builder;
mod delimited;
mod error;
mod json;
mod kafka;
mod none;
mod text;
mod types;
mod view;

#[cfg(test)]
mod tests;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::Fields;
use serde::{Deserialize, Serialize};

pub use batch::EncodedBatch;
pub use error::{DecodeError, EncodeError, FormatError};
pub use types::sql_type_name;

/// The serialization format of a record key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FormatKind {
    /// A JSON object with one member per column (or the bare value of a single column).
    Json,
    /// One line of delimiter-separated fields in column order, RFC 4180 quoting.
    Delimited,
    /// Kafka's primitive serializers: one INT, BIGINT, DOUBLE, STRING or BYTES column.
    Kafka,
    /// No columns: the bytes are ignored when reading and null when writing.
    None,
}

impl FormatKind {
    /// The format's name as written in SQL (`JSON`, `DELIMITED`, `KAFKA`, `NONE`).
    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Json => "JSON",
            FormatKind::Delimited => "DELIMITED",
            FormatKind::Kafka => "KAFKA",
            FormatKind::None => "NONE",
        }
    }
}

/// A format with its options, as given by `KEY_FORMAT`/`VALUE_FORMAT`, `VALUE_DELIMITER` and
/// `WRAP_SINGLE_VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FormatSpec {
    /// The format.
    pub kind: FormatKind,
    /// Field separator of `DELIMITED` (default `b','`; `TAB` and `SPACE` are `b'\t'` and
    /// `b' '`). Must be a single ASCII byte other than `"`, CR and LF. Ignored by other formats.
    pub delimiter: u8,
    /// For a `JSON` value with exactly one column: `true` (default) reads and writes an object
    /// `{"COL": v}`, `false` the bare value `v`. Keys ignore it: a single key column is always
    /// bare. `DELIMITED` and `KAFKA` values are always bare (ksqlDB rejects `true` for them when
    /// given explicitly; that check belongs to the planner), so they ignore it too.
    pub wrap_single_value: bool,
}

impl FormatSpec {
    /// `kind` with the default options.
    pub fn new(kind: FormatKind) -> Self {
        FormatSpec { kind, delimiter: b',', wrap_single_value: true }
    }

    /// `JSON` with single values wrapped.
    pub fn json() -> Self {
        Self::new(FormatKind::Json)
    }

    /// `DELIMITED` with this separator.
    pub fn delimited(delimiter: u8) -> Self {
        FormatSpec { delimiter, ..Self::new(FormatKind::Delimited) }
    }

    /// `KAFKA`.
    pub fn kafka() -> Self {
        Self::new(FormatKind::Kafka)
    }

    /// `NONE`.
    pub fn none() -> Self {
        Self::new(FormatKind::None)
    }

    /// The same spec with `wrap_single_value` set.
    pub fn with_wrap_single_value(self, wrap: bool) -> Self {
        FormatSpec { wrap_single_value: wrap, ..self }
    }
}

/// Whether columns travel in the record key or the record value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The record key.
    Key,
    /// The record value.
    Value,
}

/// Checks that a format can carry these columns in this role.
///
/// `KAFKA` takes at most one column of type INT, BIGINT, DOUBLE, STRING or BYTES; `DELIMITED`
/// takes no ARRAY, MAP or STRUCT; `NONE` takes no columns; `JSON` takes MAPs only with STRING
/// keys; no format takes a MAP (or a type containing one) in a key, as in ksqlDB. Any format
/// given zero columns (a keyless stream's key) behaves like `NONE`.
///
/// # Errors
/// A [`FormatError`] naming the column and its SQL type.
pub fn check_columns(spec: &FormatSpec, role: Role, fields: &Fields) -> Result<(), FormatError> {
    types::check_columns(spec, role, fields)
}

/// A decoder of `fields` from records' keys or values in format `spec`.
///
/// # Errors
/// As [`check_columns`].
pub fn new_decoder(spec: &FormatSpec, role: Role, fields: &Fields) -> Result<Box<dyn RecordDecoder>, FormatError> {
    check_columns(spec, role, fields)?;
    if fields.is_empty() {
        return Ok(Box::new(none::NoneDecoder::default()));
    }
    Ok(match spec.kind {
        FormatKind::Json => Box::new(json::JsonDecoder::new(fields, unwrapped(spec, role, fields))),
        FormatKind::Delimited => Box::new(delimited::DelimitedDecoder::new(fields, spec.delimiter)),
        FormatKind::Kafka => Box::new(kafka::KafkaDecoder::new(fields)),
        FormatKind::None => Box::new(none::NoneDecoder::default()),
    })
}

/// An encoder of `fields` into records' keys or values in format `spec`.
///
/// # Errors
/// As [`check_columns`].
pub fn new_encoder(spec: &FormatSpec, role: Role, fields: &Fields) -> Result<Box<dyn RecordEncoder>, FormatError> {
    check_columns(spec, role, fields)?;
    if fields.is_empty() {
        return Ok(Box::new(none::NoneEncoder));
    }
    Ok(match spec.kind {
        FormatKind::Json => Box::new(json::JsonEncoder::new(fields, unwrapped(spec, role, fields))),
        FormatKind::Delimited => Box::new(delimited::DelimitedEncoder::new(fields, spec.delimiter)),
        FormatKind::Kafka => Box::new(kafka::KafkaEncoder::new(fields)),
        FormatKind::None => Box::new(none::NoneEncoder),
    })
}

/// Whether a JSON record is the bare value of its single column rather than an object.
fn unwrapped(spec: &FormatSpec, role: Role, fields: &Fields) -> bool {
    fields.len() == 1 && (role == Role::Key || !spec.wrap_single_value)
}

/// Decodes record keys or values into Arrow columns, one row per record.
pub trait RecordDecoder: Send {
    /// Decodes one record's key or value and appends one row to the internal builders. `None`
    /// (null bytes) appends an all-null row and is `Ok`; so does a JSON document `null`.
    ///
    /// # Errors
    /// When the bytes do not decode. The decoder has still appended exactly one (all-null)
    /// row, so rows stay aligned with the records; the caller drops failed rows.
    fn append(&mut self, bytes: Option<&[u8]>) -> Result<(), DecodeError>;

    /// Returns one array per field, in field order, holding the rows appended since the last
    /// `finish`, and resets. With zero fields it returns no arrays: read [`rows`](Self::rows)
    /// first to learn the row count.
    fn finish(&mut self) -> Vec<ArrayRef>;

    /// The number of rows appended since the last [`finish`](Self::finish).
    fn rows(&self) -> usize;

    /// Whether the last appended record was a null record: null bytes, or a JSON document that
    /// is `null`. ksqlDB treats both as a null value (a tombstone for tables). False after a
    /// failed append.
    fn last_was_null(&self) -> bool;
}

/// Encodes Arrow columns into record keys or values, one entry per row.
pub trait RecordEncoder: Send {
    /// Encodes rows `[0, len)` of these columns (one array per field, in field order, `len`
    /// the length of the first) into `out`, one entry per row, in row order. With no columns
    /// there is no length: use [`encode_rows`](Self::encode_rows), or this appends nothing.
    ///
    /// # Errors
    /// When the columns do not match the fields (count, types, lengths).
    fn encode(&mut self, columns: &[ArrayRef], out: &mut EncodedBatch) -> Result<(), EncodeError> {
        let rows = columns.first().map_or(0, |c| c.len());
        self.encode_rows(columns, rows, out)
    }

    /// Encodes rows `[0, rows)` of these columns into `out`. A row whose columns are all null
    /// in the Value role is still a value (e.g. `{"A":null}`): tombstones are the caller's
    /// decision. Entries are null where the format writes nothing: `NONE`, zero columns, a
    /// null `KAFKA` value, a null bare `JSON` value.
    ///
    /// # Errors
    /// When the columns do not match the fields (count, types, lengths).
    fn encode_rows(&mut self, columns: &[ArrayRef], rows: usize, out: &mut EncodedBatch) -> Result<(), EncodeError>;
}
