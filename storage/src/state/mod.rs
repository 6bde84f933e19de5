//! The key-value state store: where the engine keeps operator state, source offsets and sink
//! positions, and commits them together.
//!
//! [`KvStore`] is the interface; [`RocksStore`] (RocksDB, one database with the default column
//! family) is the durable implementation and [`MemStore`] (a `BTreeMap`) the in-memory one for
//! tests. [`PendingStore`] goes in front of either: it shows a checkpoint's batch to readers
//! while the batch is still being made durable, so that tasks need not wait for the fsync. Both have the same semantics, checked by a randomized test that runs one sequence of
//! operations against both. Keys sort as unsigned bytes.

mod batch;
mod mem;
mod pending;
mod rocks;

#[cfg(test)]
mod tests;

pub use batch::{BatchOp, StateBatch};
pub use mem::MemStore;
pub use pending::PendingStore;
pub use rocks::{RocksStore, StateOptions};

use crate::Result;

/// Items of [`KvStore::scan`]: `(key, value)` pairs in key order.
pub type ScanIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// A sorted key-value store with atomic batch commits.
///
/// # Errors
/// Reads and commits fail with [`crate::StorageError::Rocks`] when the backend does; a failed
/// commit has applied nothing.
pub trait KvStore: Send + Sync {
    /// The value of `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The values of `keys`, in the same order (one lookup pass for all of them).
    fn multi_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Pairs with keys in `[from, to)`, in key order, from a consistent view taken when called
    /// (later commits are not seen). Empty when `from >= to`.
    fn scan(&self, from: &[u8], to: &[u8]) -> Result<ScanIter<'_>>;

    /// Applies the batch's operations in order, all or nothing. With `sync`, the commit is on disk
    /// (fsynced) when this returns; without, it survives a process crash but maybe not power loss.
    fn commit(&self, batch: &StateBatch, sync: bool) -> Result<()>;

    /// [`KvStore::commit`] of operations already in the order a store applies best: range
    /// deletes first, then point writes in key order, each key at most once. The default gathers
    /// them into a batch; a store that sorts its writes overrides it to skip the sort.
    fn commit_ordered(&self, ops: &mut dyn Iterator<Item = BatchOp<'_>>, sync: bool) -> Result<()> {
        let mut batch = StateBatch::new();
        for op in ops {
            batch.push_op(op);
        }
        self.commit(&batch, sync)
    }

    /// An estimate of the bytes that keys in `[from, to)` take; 0 when unknown. Cheap: it must not
    /// read the data.
    fn approximate_size(&self, from: &[u8], to: &[u8]) -> u64;

    /// Waits for the running background work (flushes, compactions) and starts no more; called
    /// once nothing writes any more, before the process exits. Reads still work afterwards;
    /// commits may fail (nothing is flushed or compacted any more). The default does nothing.
    fn quiesce(&self) {}
}
