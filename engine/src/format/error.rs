//! Errors of the record formats: setting one up for a schema ([`FormatError`]), decoding one
//! record ([`DecodeError`]) and encoding a batch ([`EncodeError`]).

/// A format cannot carry the given columns in the given role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format cannot carry a column of this type.
    #[error("format {format} does not support type {ty} for column \"{column}\"")]
    UnsupportedType {
        /// Format name.
        format: &'static str,
        /// SQL type of the column.
        ty: String,
        /// Column name.
        column: String,
    },
    /// The format carries one column at most.
    #[error("format {format} supports a single column, got {count}: {columns}")]
    TooManyColumns {
        /// Format name.
        format: &'static str,
        /// Number of columns given.
        count: usize,
        /// The columns with their types.
        columns: String,
    },
    /// `NONE` carries no columns.
    #[error("format NONE can only be used when no columns are defined, got {columns}")]
    NoneWithColumns {
        /// The columns with their types.
        columns: String,
    },
    /// Keys cannot contain maps: their serialization is not deterministic.
    #[error("map types are not supported in keys: column \"{column}\" has type {ty}")]
    MapInKey {
        /// Column name.
        column: String,
        /// SQL type of the column.
        ty: String,
    },
    /// JSON object keys are strings.
    #[error("format JSON only supports MAP types with STRING keys: column \"{column}\" has type {ty}")]
    JsonMapKey {
        /// Column name.
        column: String,
        /// SQL type of the column.
        ty: String,
    },
    /// The columns cannot be carried by a schema-registry format (Avro names, map keys, ...).
    #[error("{reason}")]
    Schema {
        /// The column (or nested field) at fault.
        column: String,
        /// Why, in ksqlDB's words where it has them.
        reason: String,
    },
    /// The schema registry failed, or a registered schema does not fit the columns.
    #[error("{}{reason}", id.map(|i| format!("schema id {i}: ")).unwrap_or_default())]
    Registry {
        /// The schema id concerned, if any.
        id: Option<u32>,
        /// What went wrong.
        reason: String,
    },
    /// A schema-registry format was set up without a registry.
    #[error("format {format} needs a schema registry")]
    NeedsRegistry {
        /// Format name.
        format: &'static str,
    },
    /// A schema-registry format was set up for writing without a registered schema.
    #[error("format {format} needs a registered schema id to write records")]
    NoSchemaId {
        /// Format name.
        format: &'static str,
    },
    /// The `DELIMITED` separator cannot be used.
    #[error("invalid delimiter {delimiter:?}: it must be a single ASCII character other than '\"', CR and LF")]
    InvalidDelimiter {
        /// The separator given.
        delimiter: char,
    },
}

/// One record's key or value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not JSON.
    #[error("invalid JSON at byte {offset}: {reason}")]
    Json {
        /// Byte offset of the problem.
        offset: usize,
        /// What was expected there.
        reason: &'static str,
    },
    /// The bytes are not UTF-8.
    #[error("invalid UTF-8 at byte {offset}")]
    Utf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// A JSON value that should be an object with the columns is not.
    #[error("expected a JSON object, got {got}")]
    NotObject {
        /// The value found.
        got: String,
    },
    /// A field's value does not fit its column's type.
    #[error("field \"{field}\": {reason}")]
    Field {
        /// The column, with a path into nested values (`S.A`, `ARR[2]`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A `DELIMITED` record has the wrong number of fields.
    #[error("expected {expected} fields, got {got}")]
    FieldCount {
        /// Number of columns.
        expected: usize,
        /// Number of fields in the record.
        got: usize,
    },
    /// A `DELIMITED` record is not well-formed.
    #[error("invalid DELIMITED record at byte {offset}: {reason}")]
    Delimited {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `KAFKA` number has the wrong size.
    #[error("KAFKA {ty} value must be {expected} bytes, got {got}")]
    KafkaSize {
        /// SQL type of the column.
        ty: &'static str,
        /// Required size.
        expected: usize,
        /// Size found.
        got: usize,
    },
    /// The bytes are not in the schema registry's wire format.
    #[error("expected the schema registry wire format (magic byte 0 and a 4-byte schema id), got {len} bytes{}", first.map(|b| format!(" starting with 0x{b:02x}")).unwrap_or_default())]
    Framing {
        /// Length of the record's bytes.
        len: usize,
        /// Its first byte.
        first: Option<u8>,
    },
    /// The record's schema is unknown, cannot be read into the columns, or the payload does not
    /// match it.
    #[error("schema id {id}: {reason}")]
    Schema {
        /// The schema id of the record.
        id: u32,
        /// What is wrong.
        reason: String,
    },
    /// A `PROTOBUF_NOSR` message does not decode.
    #[error("{reason}")]
    Protobuf {
        /// What is wrong.
        reason: String,
    },
    /// The batch being built outgrew Arrow's 32-bit offsets; finish it sooner.
    #[error("batch too large: more than 2 GiB of data in one column")]
    BatchTooLarge,
}

/// A batch could not be encoded: its columns do not match the encoder's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Wrong number of columns.
    #[error("expected {expected} columns, got {got}")]
    ColumnCount {
        /// Number of fields.
        expected: usize,
        /// Number of columns given.
        got: usize,
    },
    /// A column's Arrow type is not its field's.
    #[error("column \"{column}\" has type {got}, expected {expected}")]
    ColumnType {
        /// Column name.
        column: String,
        /// The field's type.
        expected: String,
        /// The array's type.
        got: String,
    },
    /// A value cannot be written with the sink's schema.
    #[error("row {row}: {reason}")]
    Value {
        /// Row index within the batch.
        row: usize,
        /// Why.
        reason: String,
    },
    /// A column is shorter than the rows to encode.
    #[error("column \"{column}\" has {got} rows, expected at least {expected}")]
    ColumnLength {
        /// Column name.
        column: String,
        /// Rows to encode.
        expected: usize,
        /// Rows in the array.
        got: usize,
    },
}
