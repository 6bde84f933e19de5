//! Joins: stream-table, stream-stream (windowed) and table-table, on equality of key columns.
//!
//! Every join emits rows made of the left input's user columns followed by the right input's,
//! either side null-padded for outer joins, with the larger of the two event times. Rows are
//! kept as Arrow row-format bytes in state; keys are compared as the row-format bytes of the
//! key columns (the planner casts both sides' keys to the same types).

pub mod foreign_key;
pub mod stream_stream;
pub mod stream_table;
pub mod table_table;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, Int8Array, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, Rows, SortField};

pub use foreign_key::ForeignKeyJoinOp;
pub use stream_stream::StreamStreamJoinOp;
pub use stream_table::StreamTableJoinOp;
pub use table_table::TableTableJoinOp;

use crate::error::Result;
use crate::types::RowOp;

/// Encodes a side's user columns (or key columns) as row-format bytes and back.
pub(crate) struct Codec {
    conv: RowConverter,
    columns: Vec<usize>,
}

impl Codec {
    /// A codec of `columns` of `schema`.
    pub fn new(schema: &Schema, columns: Vec<usize>) -> Result<Self> {
        let fields = columns.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect();
        Ok(Codec { conv: RowConverter::new(fields)?, columns })
    }

    /// A codec of the first `n` columns of `schema`.
    pub fn first(schema: &Schema, n: usize) -> Result<Self> {
        Self::new(schema, (0..n).collect())
    }

    /// Encodes the codec's columns of every row of `batch`.
    pub fn rows(&self, batch: &RecordBatch) -> Result<Rows> {
        let cols: Vec<ArrayRef> = self.columns.iter().map(|&i| batch.column(i).clone()).collect();
        Ok(self.conv.convert_columns(&cols)?)
    }

    /// True when row `i` has a null in one of the codec's columns.
    pub fn has_null(&self, batch: &RecordBatch, i: usize) -> bool {
        self.columns.iter().any(|&c| batch.column(c).is_null(i))
    }

    /// Decodes rows; `None` entries become all-null rows.
    pub fn decode(&self, rows: &[Option<&[u8]>]) -> Result<Vec<ArrayRef>> {
        let present: Vec<&[u8]> = rows.iter().flatten().copied().collect();
        let parser = self.conv.parser();
        let parsed: Vec<_> = present.iter().map(|b| parser.parse(b)).collect();
        let arrays = self.conv.convert_rows(parsed.iter().copied())?;
        if present.len() == rows.len() {
            return Ok(arrays);
        }
        let mut next = 0u32;
        let idx: UInt32Array = rows
            .iter()
            .map(|r| {
                r.map(|_| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        arrays.iter().map(|a| Ok(take(a.as_ref(), &idx, None)?)).collect()
    }
}

use datafusion::arrow::array::Array;

/// One joined output row.
pub(crate) struct Joined {
    pub left: Option<Vec<u8>>,
    pub right: Option<Vec<u8>>,
    pub ts: i64,
    pub op: RowOp,
}

/// Builds the output batch (left columns, right columns, `_ts`, `_op`).
pub(crate) fn build(schema: &SchemaRef, left: &Codec, right: &Codec, rows: &[Joined]) -> Result<Option<RecordBatch>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let l: Vec<Option<&[u8]>> = rows.iter().map(|r| r.left.as_deref()).collect();
    let r: Vec<Option<&[u8]>> = rows.iter().map(|r| r.right.as_deref()).collect();
    let mut cols = left.decode(&l)?;
    cols.extend(right.decode(&r)?);
    cols.push(Arc::new(Int64Array::from(rows.iter().map(|r| r.ts).collect::<Vec<_>>())));
    cols.push(Arc::new(Int8Array::from(rows.iter().map(|r| r.op as i8).collect::<Vec<_>>())));
    let cols = crate::batch::cast_columns(cols, schema)?;
    Ok(Some(RecordBatch::try_new(schema.clone(), cols)?))
}

/// A row's stored form: event time then row bytes.
pub(crate) fn stored(ts: i64, row: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + row.len());
    v.extend_from_slice(&ts.to_le_bytes());
    v.extend_from_slice(row);
    v
}

/// Splits a stored row.
pub(crate) fn unstored(v: &[u8]) -> Option<(i64, &[u8])> {
    Some((i64::from_le_bytes(v.get(..8)?.try_into().ok()?), &v[8..]))
}

/// Latest value per key, cached over the state store: `prefix + key -> value`.
pub(crate) struct KeyedStore {
    pub prefix: Vec<u8>,
    cache: hashbrown::HashMap<Vec<u8>, (Option<Vec<u8>>, bool)>,
    dirty: usize,
    capacity: usize,
    /// Bytes the cached entries take (keys, values and a fixed overhead each).
    bytes: usize,
    max_bytes: usize,
}

/// Bytes a [`KeyedStore`] may cache: beyond both this and its entry capacity, clean entries are
/// evicted at the next flush. Enough for a table of about a million small rows per task, so that
/// an enrichment join reads RocksDB only for keys it has not seen.
pub(crate) const KEYED_CACHE_BYTES: usize = 128 << 20;

/// Bookkeeping bytes counted per cached entry on top of its key and value.
const ENTRY_OVERHEAD: usize = 64;

fn entry_bytes(k: &[u8], v: &Option<Vec<u8>>) -> usize {
    k.len() + v.as_ref().map_or(0, |v| v.len()) + ENTRY_OVERHEAD
}

impl KeyedStore {
    /// A store that asks for a checkpoint past `capacity` unwritten keys, and keeps at least
    /// `capacity` entries (and up to [`KEYED_CACHE_BYTES`]) cached.
    pub fn new(capacity: usize) -> Self {
        Self::with_budget(capacity, KEYED_CACHE_BYTES)
    }

    /// A store with its own byte budget.
    pub fn with_budget(capacity: usize, max_bytes: usize) -> Self {
        KeyedStore { prefix: Vec::new(), cache: Default::default(), dirty: 0, capacity, bytes: 0, max_bytes }
    }

    /// Loads the keys that are not cached, with one multi_get.
    pub fn prefetch(&mut self, keys: &[Vec<u8>], state: &dyn storage::KvStore) -> Result<()> {
        let mut missing: Vec<&Vec<u8>> = keys.iter().filter(|k| !self.cache.contains_key(k.as_slice())).collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        missing.dedup();
        let full: Vec<Vec<u8>> = missing.iter().map(|k| [self.prefix.as_slice(), k].concat()).collect();
        let refs: Vec<&[u8]> = full.iter().map(|k| k.as_slice()).collect();
        for (k, v) in missing.into_iter().zip(state.multi_get(&refs)?) {
            self.bytes += entry_bytes(k, &v);
            self.cache.insert(k.clone(), (v, false));
        }
        Ok(())
    }

    /// The value of a prefetched key.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.cache.get(key).and_then(|(v, _)| v.as_deref())
    }

    /// Sets (or deletes, with `None`) a prefetched key.
    pub fn set(&mut self, key: &[u8], value: Option<Vec<u8>>) {
        self.bytes += entry_bytes(key, &value);
        let e = match self.cache.entry_ref(key) {
            hashbrown::hash_map::EntryRef::Occupied(o) => {
                let e = o.into_mut();
                self.bytes -= entry_bytes(key, &e.0).min(self.bytes);
                e
            }
            hashbrown::hash_map::EntryRef::Vacant(v) => v.insert((None, false)),
        };
        e.0 = value;
        if !e.1 {
            e.1 = true;
            self.dirty += 1;
        }
    }

    /// Too much unwritten state.
    pub fn over_budget(&self) -> bool {
        self.dirty > self.capacity
    }

    /// Writes dirty keys, then evicts clean ones beyond the capacity.
    pub fn flush(&mut self, batch: &mut storage::StateBatch) {
        let mut key = self.prefix.clone();
        let plen = key.len();
        for (k, (v, dirty)) in self.cache.iter_mut().filter(|(_, (_, d))| *d) {
            key.truncate(plen);
            key.extend_from_slice(k);
            match v {
                Some(v) => batch.put(&key, v),
                None => batch.delete(&key),
            }
            *dirty = false;
        }
        self.dirty = 0;
        if self.cache.len() > self.capacity && self.bytes > self.max_bytes {
            // Evict down to 3/4 of the budget (or the entry capacity), so that evictions come in
            // rounds rather than at every flush.
            let target = self.max_bytes / 4 * 3;
            let mut victims = Vec::new();
            let mut bytes = self.bytes;
            for (k, (v, _)) in self.cache.iter() {
                if bytes <= target || self.cache.len() - victims.len() <= self.capacity {
                    break;
                }
                bytes -= entry_bytes(k, v).min(bytes);
                victims.push(k.clone());
            }
            for v in victims {
                self.cache.remove(&v);
            }
            self.bytes = bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use storage::{KvStore, MemStore, StateBatch};

    use super::KeyedStore;

    #[test]
    fn keyed_store_stays_within_its_byte_budget_and_reads_evicted_keys_back() {
        let state = MemStore::new();
        let mut s = KeyedStore::with_budget(10, 100 * 74);
        for i in 0..1000u32 {
            s.set(&i.to_be_bytes(), Some(vec![1; 6]));
        }
        s.set(&7u32.to_be_bytes(), Some(vec![2; 6]));
        assert_eq!(s.bytes, 1000 * (4 + 6 + 64));
        let mut batch = StateBatch::default();
        s.flush(&mut batch);
        state.commit(&batch, false).unwrap();
        assert!(s.cache.len() <= 75 && s.cache.len() >= 10, "evicted to 3/4 of the budget: {}", s.cache.len());
        assert_eq!(s.bytes, s.cache.len() * 74);
        let keys: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_be_bytes().to_vec()).collect();
        s.prefetch(&keys, &state).unwrap();
        assert_eq!(s.get(&7u32.to_be_bytes()), Some(&[2u8; 6][..]));
        assert_eq!(s.get(&999u32.to_be_bytes()), Some(&[1u8; 6][..]));
    }
}
