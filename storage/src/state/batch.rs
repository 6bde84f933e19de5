//! [`StateBatch`]: a list of writes committed atomically by [`super::KvStore::commit`].
//!
//! Layout: every key and value is appended to one byte buffer and each operation records where its
//! parts lie, so a batch of many small writes makes a handful of allocations, not one per write.

/// One operation of a batch, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Set `key` to `value`.
    Put(&'a [u8], &'a [u8]),
    /// Remove `key`.
    Delete(&'a [u8]),
    /// Remove every key in `[from, to)`.
    DeleteRange(&'a [u8], &'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Put,
    Delete,
    DeleteRange,
}

/// Where one operation's bytes lie: `data[start..start + a]` and the `b` bytes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Op {
    kind: Kind,
    start: usize,
    a: usize,
    b: usize,
}

/// Writes to commit together, applied in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateBatch {
    data: Vec<u8>,
    ops: Vec<Op>,
}

impl StateBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, kind: Kind, a: &[u8], b: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(a);
        self.data.extend_from_slice(b);
        self.ops.push(Op {
            kind,
            start,
            a: a.len(),
            b: b.len(),
        });
    }

    /// Appends every write of `other`, after this batch's own (into an empty batch: moves it).
    pub fn extend(&mut self, other: StateBatch) {
        if self.ops.is_empty() {
            *self = other;
            return;
        }
        let base = self.data.len();
        self.data.extend_from_slice(&other.data);
        self.ops.extend(other.ops.into_iter().map(|op| Op { start: op.start + base, ..op }));
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.push(Kind::Put, key, value);
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.push(Kind::Delete, key, &[]);
    }

    /// Removes every key in `[from, to)`. Does nothing when `from >= to`.
    pub fn delete_range(&mut self, from: &[u8], to: &[u8]) {
        if from < to {
            self.push(Kind::DeleteRange, from, to);
        }
    }

    /// Appends `op` (borrowed from another batch).
    pub fn push_op(&mut self, op: BatchOp<'_>) {
        match op {
            BatchOp::Put(k, v) => self.put(k, v),
            BatchOp::Delete(k) => self.delete(k),
            BatchOp::DeleteRange(from, to) => self.delete_range(from, to),
        }
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there is no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes of keys and values in the batch.
    pub fn byte_size(&self) -> usize {
        self.data.len()
    }

    /// Removes every operation, keeping the memory for reuse.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ops.clear();
    }

    /// The operations in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = BatchOp<'_>> + '_ {
        self.ops.iter().map(|op| self.view(op))
    }

    /// The operation at `index` (in the order they were added).
    ///
    /// # Panics
    /// When `index >= self.len()`.
    pub fn op(&self, index: usize) -> BatchOp<'_> {
        self.view(&self.ops[index])
    }

    fn view(&self, op: &Op) -> BatchOp<'_> {
        let a = &self.data[op.start..op.start + op.a];
        let b = &self.data[op.start + op.a..op.start + op.a + op.b];
        match op.kind {
            Kind::Put => BatchOp::Put(a, b),
            Kind::Delete => BatchOp::Delete(a),
            Kind::DeleteRange => BatchOp::DeleteRange(a, b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_ops_in_order() {
        let mut b = StateBatch::new();
        b.put(b"k", b"v");
        b.delete(b"d");
        b.delete_range(b"a", b"c");
        b.delete_range(b"c", b"a"); // empty range: ignored
        assert_eq!(b.len(), 3);
        assert_eq!(b.byte_size(), 5);
        let ops: Vec<_> = b.iter().collect();
        assert_eq!(
            ops,
            [
                BatchOp::Put(b"k", b"v"),
                BatchOp::Delete(b"d"),
                BatchOp::DeleteRange(b"a", b"c")
            ]
        );
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.byte_size(), 0);
    }
}
