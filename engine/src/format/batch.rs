//! [`EncodedBatch`]: the encoded keys or values of a batch in one buffer.

/// Encoded keys or values of a batch in one buffer: entry `i` is `data[offsets[i]..offsets[i+1]]`,
/// or `None` when it is null.
///
/// Encoders write an entry either with [`push`](Self::push), or by appending its bytes to
/// [`buffer`](Self::buffer) and then calling [`end_entry`](Self::end_entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    data: Vec<u8>,
    /// `len() + 1` offsets into `data`; the first is 0.
    offsets: Vec<usize>,
    nulls: Vec<bool>,
}

impl Default for EncodedBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl EncodedBatch {
    /// An empty batch.
    pub fn new() -> Self {
        EncodedBatch { data: Vec::new(), offsets: vec![0], nulls: Vec::new() }
    }

    /// Removes every entry, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.offsets.truncate(1);
        self.nulls.clear();
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.nulls.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.nulls.is_empty()
    }

    /// Entry `i`: `None` when it is null, or when `i` is past the end (an encoder of zero
    /// columns called through [`RecordEncoder::encode`](super::RecordEncoder::encode) cannot
    /// know the row count and encodes nothing, which reads as all null).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if *self.nulls.get(i)? {
            return None;
        }
        Some(&self.data[self.offsets[i]..self.offsets[i + 1]])
    }

    /// Whether entry `i` is null (or past the end).
    pub fn is_null(&self, i: usize) -> bool {
        self.nulls.get(i).copied().unwrap_or(true)
    }

    /// Appends an entry.
    pub fn push(&mut self, entry: Option<&[u8]>) {
        match entry {
            Some(bytes) => {
                self.data.extend_from_slice(bytes);
                self.end_entry();
            }
            None => self.push_null(),
        }
    }

    /// Appends a null entry. Bytes appended to [`buffer`](Self::buffer) since the last entry
    /// are discarded.
    pub fn push_null(&mut self) {
        self.data.truncate(self.offsets[self.offsets.len() - 1]);
        self.offsets.push(self.data.len());
        self.nulls.push(true);
    }

    /// The buffer the next entry is written into; [`end_entry`](Self::end_entry) closes it.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Ends the entry made of the bytes appended to [`buffer`](Self::buffer) since the last one.
    pub fn end_entry(&mut self) {
        self.offsets.push(self.data.len());
        self.nulls.push(false);
    }

    /// All entries' bytes, back to back.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Reserves room for `entries` more entries of `bytes` bytes in all.
    pub fn reserve(&mut self, entries: usize, bytes: usize) {
        self.data.reserve(bytes);
        self.offsets.reserve(entries);
        self.nulls.reserve(entries);
    }
}
