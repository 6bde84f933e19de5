//! The `NONE` format, and what every format becomes with zero columns (a keyless stream's key):
//! reading ignores the bytes but counts the rows, writing gives a null record per row.

use datafusion::arrow::array::ArrayRef;

use super::{DecodeError, EncodeError, EncodedBatch, RecordDecoder, RecordEncoder};

/// Counts records; has no columns.
#[derive(Default)]
pub(crate) struct NoneDecoder {
    rows: usize,
    last_null: bool,
}

impl RecordDecoder for NoneDecoder {
    fn append(&mut self, bytes: Option<&[u8]>) -> Result<(), DecodeError> {
        self.rows += 1;
        self.last_null = bytes.is_none();
        Ok(())
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        Vec::new()
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn last_was_null(&self) -> bool {
        self.last_null
    }
}

/// Writes a null record per row.
pub(crate) struct NoneEncoder;

impl RecordEncoder for NoneEncoder {
    fn encode_rows(&mut self, columns: &[ArrayRef], rows: usize, out: &mut EncodedBatch) -> Result<(), EncodeError> {
        if !columns.is_empty() {
            return Err(EncodeError::ColumnCount { expected: 0, got: columns.len() });
        }
        out.reserve(rows, 0);
        for _ in 0..rows {
            out.push_null();
        }
        Ok(())
    }
}
