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
