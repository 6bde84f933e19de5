//! Record formats: turning the key or value bytes of topic records into Arrow columns, and
//! columns back into bytes, with ksqlDB's semantics for `JSON`, `DELIMITED`, `KAFKA`, `NONE`
//! and the schema-registry formats `AVRO`, `PROTOBUF`, `PROTOBUF_NOSR` and `JSON_SR`.
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

pub mod avro;
mod batch;
mod builder;
mod delimited;
mod error;
mod json;
pub mod json_sr;
mod kafka;
mod none;
pub mod protobuf;
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

use crate::registry::Registry;

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
    /// Avro binary, Confluent-framed, schemas in the registry.
    Avro,
    /// Protobuf, Confluent-framed (schema id and message indexes), schemas in the registry.
    Protobuf,
    /// Protobuf without framing or registry: the message is derived from the columns.
    ProtobufNoSr,
    /// JSON, Confluent-framed, JSON Schemas in the registry.
    JsonSr,
}

impl FormatKind {
    /// The format's name as written in SQL (`JSON`, `DELIMITED`, `KAFKA`, `NONE`, `AVRO`,
    /// `PROTOBUF`, `PROTOBUF_NOSR`, `JSON_SR`).
    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Json => "JSON",
            FormatKind::Delimited => "DELIMITED",
            FormatKind::Kafka => "KAFKA",
            FormatKind::None => "NONE",
            FormatKind::Avro => "AVRO",
            FormatKind::Protobuf => "PROTOBUF",
            FormatKind::ProtobufNoSr => "PROTOBUF_NOSR",
            FormatKind::JsonSr => "JSON_SR",
        }
    }

    /// The format named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<FormatKind> {
        let all = [
            FormatKind::Json,
            FormatKind::Delimited,
            FormatKind::Kafka,
            FormatKind::None,
            FormatKind::Avro,
            FormatKind::Protobuf,
            FormatKind::ProtobufNoSr,
            FormatKind::JsonSr,
        ];
        all.into_iter().find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// Whether records carry a schema id and their schemas live in a registry (`AVRO`,
    /// `PROTOBUF`, `JSON_SR`): such formats support schema inference and register the
    /// schemas of what queries write.
    pub fn uses_registry(self) -> bool {
        matches!(self, FormatKind::Avro | FormatKind::Protobuf | FormatKind::JsonSr)
    }

    /// The registry's schema type of a registry format.
    pub fn schema_type(self) -> Option<crate::registry::SchemaType> {
        use crate::registry::SchemaType;
        match self {
            FormatKind::Avro => Some(SchemaType::Avro),
            FormatKind::Protobuf => Some(SchemaType::Protobuf),
            FormatKind::JsonSr => Some(SchemaType::Json),
            _ => None,
        }
    }
}

/// A format with its options, as given by `KEY_FORMAT`/`VALUE_FORMAT`, `VALUE_DELIMITER`,
/// `WRAP_SINGLE_VALUE`, `KEY_SCHEMA_ID`/`VALUE_SCHEMA_ID` and
/// `KEY_SCHEMA_FULL_NAME`/`VALUE_SCHEMA_FULL_NAME`.
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
    /// Registry formats: the id of the schema records are written with (`*_SCHEMA_ID`, or the
    /// one the planner registered). Decoders read each record's own id instead.
    #[serde(default)]
    pub schema_id: Option<u32>,
    /// Registry formats: the record (AVRO) or message (PROTOBUF) name of generated schemas,
    /// or the message of a registered Protobuf schema to use (`*_SCHEMA_FULL_NAME`).
    #[serde(default)]
    pub full_name: Option<SchemaName>,
    /// PROTOBUF: how nullable columns are written (`*_PROTOBUF_NULLABLE_REPRESENTATION`).
    #[serde(default)]
    pub nullable: protobuf::Nullable,
}

impl FormatSpec {
    /// `kind` with the default options.
    pub fn new(kind: FormatKind) -> Self {
        FormatSpec { kind, delimiter: b',', wrap_single_value: true, schema_id: None, full_name: None, nullable: protobuf::Nullable::Default }
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

/// A schema's full name (`*_SCHEMA_FULL_NAME`), interned so that [`FormatSpec`] stays `Copy`:
/// each distinct name is stored once for the life of the process (a few bytes per CREATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchemaName(&'static str);

impl SchemaName {
    /// The interned name.
    pub fn new(name: &str) -> SchemaName {
        static NAMES: std::sync::OnceLock<parking_lot::Mutex<std::collections::HashSet<&'static str>>> = std::sync::OnceLock::new();
        let mut names = NAMES.get_or_init(Default::default).lock();
        if let Some(n) = names.get(name) {
            return SchemaName(n);
        }
        let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
        names.insert(leaked);
        SchemaName(leaked)
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl Serialize for SchemaName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for SchemaName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SchemaName::new(&String::deserialize(d)?))
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

/// A decoder of `fields` from records' keys or values in format `spec`, for formats without a
/// schema registry (see [`new_decoder_with`]).
///
/// # Errors
/// As [`check_columns`]; [`FormatError::NeedsRegistry`] for registry formats.
pub fn new_decoder(spec: &FormatSpec, role: Role, fields: &Fields) -> Result<Box<dyn RecordDecoder>, FormatError> {
    new_decoder_with(spec, role, fields, None)
}

/// A decoder of `fields` from records' keys or values in format `spec`; registry formats look
/// up each record's schema in `registry`.
///
/// # Errors
/// As [`check_columns`]; [`FormatError::NeedsRegistry`] for a registry format without one.
pub fn new_decoder_with(
    spec: &FormatSpec,
    role: Role,
    fields: &Fields,
    registry: Option<&Registry>,
) -> Result<Box<dyn RecordDecoder>, FormatError> {
    check_columns(spec, role, fields)?;
    if fields.is_empty() {
        return Ok(Box::new(none::NoneDecoder::default()));
    }
    let unwrapped = unwrapped(spec, role, fields);
    let registry = || registry.cloned().ok_or(FormatError::NeedsRegistry { format: spec.kind.name() });
    Ok(match spec.kind {
        FormatKind::Json => Box::new(json::JsonDecoder::new(fields, unwrapped)),
        FormatKind::Delimited => Box::new(delimited::DelimitedDecoder::new(fields, spec.delimiter)),
        FormatKind::Kafka => Box::new(kafka::KafkaDecoder::new(fields)),
        FormatKind::None => Box::new(none::NoneDecoder::default()),
        FormatKind::Avro => Box::new(avro::AvroDecoder::new(fields, unwrapped, registry()?)),
        FormatKind::JsonSr => Box::new(json_sr::JsonSrDecoder::new(fields, unwrapped)),
        FormatKind::Protobuf => protobuf::ProtobufDecoder::boxed(fields, unwrapped, Some(registry()?), spec)?,
        FormatKind::ProtobufNoSr => protobuf::ProtobufDecoder::boxed(fields, unwrapped, None, spec)?,
    })
}

/// An encoder of `fields` into records' keys or values in format `spec`, for formats without
/// a schema registry (see [`new_encoder_with`]).
///
/// # Errors
/// As [`check_columns`]; [`FormatError::NeedsRegistry`] for registry formats.
pub fn new_encoder(spec: &FormatSpec, role: Role, fields: &Fields) -> Result<Box<dyn RecordEncoder>, FormatError> {
    new_encoder_with(spec, role, fields, None)
}

/// An encoder of `fields` into records' keys or values in format `spec`; registry formats
/// write with the schema `spec.schema_id` names, fetched from `registry`.
///
/// # Errors
/// As [`check_columns`]; [`FormatError::NeedsRegistry`] or [`FormatError::NoSchemaId`] for a
/// registry format without a registry or schema id; [`FormatError::Registry`] when the schema
/// cannot be fetched or written from these columns.
pub fn new_encoder_with(
    spec: &FormatSpec,
    role: Role,
    fields: &Fields,
    registry: Option<&Registry>,
) -> Result<Box<dyn RecordEncoder>, FormatError> {
    check_columns(spec, role, fields)?;
    if fields.is_empty() {
        return Ok(Box::new(none::NoneEncoder));
    }
    let unwrapped = unwrapped(spec, role, fields);
    let format = spec.kind.name();
    let registry = || registry.ok_or(FormatError::NeedsRegistry { format });
    let id = || spec.schema_id.ok_or(FormatError::NoSchemaId { format });
    Ok(match spec.kind {
        FormatKind::Json => Box::new(json::JsonEncoder::new(fields, unwrapped)),
        FormatKind::Delimited => Box::new(delimited::DelimitedEncoder::new(fields, spec.delimiter)),
        FormatKind::Kafka => Box::new(kafka::KafkaEncoder::new(fields)),
        FormatKind::None => Box::new(none::NoneEncoder),
        FormatKind::Avro => Box::new(avro::AvroEncoder::new(fields, unwrapped, registry()?, id()?)?),
        FormatKind::JsonSr => {
            let id = id()?;
            // Without a registry (tests, tools) the record carries only the columns.
            let schema = match registry() {
                Ok(r) => Some(r.schema_by_id(id).map_err(|e| FormatError::Registry { id: Some(id), reason: e.to_string() })?.schema),
                Err(_) => None,
            };
            Box::new(json_sr::JsonSrEncoder::new(fields, unwrapped, id, schema.as_deref()))
        }
        FormatKind::Protobuf => protobuf::ProtobufEncoder::boxed(fields, role == Role::Key, Some((registry()?, id()?)), spec)?,
        FormatKind::ProtobufNoSr => protobuf::ProtobufEncoder::boxed(fields, role == Role::Key, None, spec)?,
    })
}

/// Encodes rows `[0, rows)` of `columns` into `out` (which must be empty) like
/// [`RecordEncoder::encode_rows`], except that a row whose value the format cannot write (a
/// null for a field its schema does not let be null, a string that is not a symbol of an
/// enum) gets a null entry and is returned with its error instead of failing the batch.
///
/// # Errors
/// When the columns do not match the fields at all (nothing is encoded then).
pub fn encode_each(
    enc: &mut dyn RecordEncoder,
    columns: &[ArrayRef],
    rows: usize,
    out: &mut EncodedBatch,
) -> Result<Vec<(usize, EncodeError)>, EncodeError> {
    match enc.encode_rows(columns, rows, out) {
        Ok(()) => Ok(Vec::new()),
        Err(EncodeError::Value { .. }) => {
            out.clear();
            let mut failed = Vec::new();
            for row in 0..rows {
                let one: Vec<ArrayRef> = columns.iter().map(|c| c.slice(row, 1)).collect();
                let before = out.len();
                if let Err(e) = enc.encode_rows(&one, 1, out) {
                    if out.len() == before {
                        out.push_null();
                    }
                    let e = match e {
                        EncodeError::Value { reason, .. } => EncodeError::Value { row, reason },
                        other => other,
                    };
                    failed.push((row, e));
                }
            }
            Ok(failed)
        }
        Err(e) => Err(e),
    }
}

/// Whether a record is the bare value of its single column rather than an object/record.
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
