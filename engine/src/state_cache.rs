//! [`StateCache`]: the bounded in-memory cache of an operator's keyed state over the state store
//! (RocksDB, or `MemStore` in tests): `prefix + key -> value`, latest value per key.
//!
//! How an operator uses it, per batch: [`StateCache::prefetch`] the batch's keys (the missing
//! ones come with one `multi_get`), then [`StateCache::get`] and [`StateCache::set`] them; at a
//! barrier, [`StateCache::flush`] writes the dirty entries into the epoch's batch.
//!
//! Bounds. The cache counts the bytes of its entries (key, value and [`ENTRY_OVERHEAD`] each).
//! Clean entries are evicted, least recently used first, down to three quarters of the byte
//! budget whenever it is exceeded, after a flush and before a prefetch (never the keys of the
//! batch being prefetched, so that every key it returns stays readable until the next prefetch).
//! Dirty entries cannot be evicted before they are written: past `capacity` of them, or past
//! half the byte budget of them, [`StateCache::over_budget`] tells the operator to ask for a
//! checkpoint, whose barrier flushes them. So memory stays within the byte budget plus what
//! arrives between a checkpoint request and its barrier.
//!
//! Used by the table sides of the stream-table, table-table and foreign-key joins and by
//! materialize. Not by the aggregate's group store (it caches decoded aggregate states and
//! evicts closed windows first, see `ops::aggregate::groups`), the stream-stream join's buffers
//! (evicted by time, with the join window) or the write buffers of the sink and the foreign-key
//! join's left side (emptied at every barrier).

use std::cell::Cell;

use hashbrown::HashMap;
use storage::{KvStore, StateBatch};

use crate::error::Result;

/// Bookkeeping bytes counted per cached entry on top of its key and value.
pub const ENTRY_OVERHEAD: usize = 64;

/// Bytes a cache may hold by default: enough for a table of about a million small rows per task,
/// so that an enrichment join reads RocksDB only for keys it has not seen.
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

struct Slot {
    value: Option<Vec<u8>>,
    dirty: bool,
    /// When the entry was last prefetched, read or written (a tick of the cache's clock).
    used: Cell<u64>,
}

/// Latest value per key, cached over the state store within a byte budget.
pub struct StateCache {
    /// The prefix of every key in the state store (the operator's table prefix).
    pub prefix: Vec<u8>,
    map: HashMap<Vec<u8>, Slot>,
    /// Entries written since the last flush.
    dirty: usize,
    /// Bytes of the dirty entries.
    dirty_bytes: usize,
    /// Dirty entries past which the operator should ask for a checkpoint.
    capacity: usize,
    /// Bytes of all entries.
    bytes: usize,
    max_bytes: usize,
    /// Advances at every prefetch, read and write.
    clock: Cell<u64>,
}

fn entry_bytes(k: &[u8], v: &Option<Vec<u8>>) -> usize {
    k.len() + v.as_ref().map_or(0, |v| v.len()) + ENTRY_OVERHEAD
}

impl StateCache {
    /// A cache that asks for a checkpoint past `capacity` unwritten keys and keeps up to
    /// [`DEFAULT_CACHE_BYTES`] cached.
    pub fn new(capacity: usize) -> Self {
        Self::with_budget(capacity, DEFAULT_CACHE_BYTES)
    }

    /// A cache with its own byte budget.
    pub fn with_budget(capacity: usize, max_bytes: usize) -> Self {
        StateCache {
            prefix: Vec::new(),
            map: HashMap::new(),
            dirty: 0,
            dirty_bytes: 0,
            capacity,
            bytes: 0,
            max_bytes,
            clock: Cell::new(0),
        }
    }

    fn tick(&self) -> u64 {
        let t = self.clock.get() + 1;
        self.clock.set(t);
        t
    }

    /// Makes `keys` readable with [`StateCache::get`] until the next prefetch: loads the ones
    /// that are not cached with one multi_get (after evicting others if the cache is over its
    /// budget).
    pub fn prefetch(&mut self, keys: &[Vec<u8>], state: &dyn KvStore) -> Result<()> {
        let now = self.tick();
        let mut missing: Vec<&Vec<u8>> = Vec::new();
        for k in keys {
            match self.map.get(k.as_slice()) {
                Some(slot) => slot.used.set(now),
                None => missing.push(k),
            }
        }
        // Entries used at `now` are this batch's: eviction keeps them.
        self.evict(now);
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        missing.dedup();
        let full: Vec<Vec<u8>> = missing.iter().map(|k| [self.prefix.as_slice(), k].concat()).collect();
        let refs: Vec<&[u8]> = full.iter().map(|k| k.as_slice()).collect();
        for (k, v) in missing.into_iter().zip(state.multi_get(&refs)?) {
            self.bytes += entry_bytes(k, &v);
            self.map.insert(k.clone(), Slot { value: v, dirty: false, used: Cell::new(now) });
        }
        Ok(())
    }

    /// True when `key` is cached (prefetched or set).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// The value of a prefetched (or set) key; `None` when it has none, or is not cached.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let slot = self.map.get(key)?;
        slot.used.set(self.tick());
        slot.value.as_deref()
    }

    /// Sets (or deletes, with `None`) a key; it is written at the next flush.
    pub fn set(&mut self, key: &[u8], value: Option<Vec<u8>>) {
        let new = entry_bytes(key, &value);
        let now = self.tick();
        let slot = match self.map.entry_ref(key) {
            hashbrown::hash_map::EntryRef::Occupied(o) => {
                let s = o.into_mut();
                let old = entry_bytes(key, &s.value);
                self.bytes -= old;
                if s.dirty {
                    self.dirty_bytes -= old;
                }
                s
            }
            hashbrown::hash_map::EntryRef::Vacant(v) => v.insert(Slot { value: None, dirty: false, used: Cell::new(now) }),
        };
        slot.value = value;
        slot.used.set(now);
        if !slot.dirty {
            slot.dirty = true;
            self.dirty += 1;
        }
        self.bytes += new;
        self.dirty_bytes += new;
    }

    /// Too much unwritten state (more than `capacity` keys, or half the byte budget): the
    /// operator should ask for a checkpoint.
    pub fn over_budget(&self) -> bool {
        self.dirty > self.capacity || self.dirty_bytes > self.max_bytes / 2
    }

    /// Bytes the cached entries take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries cached.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Writes the dirty entries to `batch`, then evicts the least recently used entries beyond
    /// the budget.
    pub fn flush(&mut self, batch: &mut StateBatch) {
        let mut key = self.prefix.clone();
        let plen = key.len();
        for (k, slot) in self.map.iter_mut().filter(|(_, s)| s.dirty) {
            key.truncate(plen);
            key.extend_from_slice(k);
            match &slot.value {
                Some(v) => batch.put(&key, v),
                None => batch.delete(&key),
            }
            slot.dirty = false;
        }
        self.dirty = 0;
        self.dirty_bytes = 0;
        self.evict(u64::MAX);
    }

    /// Over the byte budget: evicts clean entries last used before `keep_from`, oldest use first,
    /// down to 3/4 of the budget (so that evictions come in rounds, not at every batch).
    fn evict(&mut self, keep_from: u64) {
        if self.bytes <= self.max_bytes {
            return;
        }
        let target = self.max_bytes / 4 * 3;
        let mut by_age: Vec<(u64, &Vec<u8>, usize)> = self
            .map
            .iter()
            .filter(|(_, s)| !s.dirty && s.used.get() < keep_from)
            .map(|(k, s)| (s.used.get(), k, entry_bytes(k, &s.value)))
            .collect();
        by_age.sort_unstable_by_key(|e| e.0);
        let mut bytes = self.bytes;
        let mut victims = Vec::new();
        for (_, k, b) in by_age {
            if bytes <= target {
                break;
            }
            bytes -= b;
            victims.push(k.clone());
        }
        for v in victims {
            self.map.remove(&v);
        }
        self.bytes = bytes;
    }
}

#[cfg(test)]
mod tests {
    use storage::MemStore;

    use super::*;

    /// Bytes of an entry of a 4-byte key and a `v`-byte value.
    const fn size(v: usize) -> usize {
        4 + v + ENTRY_OVERHEAD
    }

    fn key(i: u32) -> Vec<u8> {
        i.to_be_bytes().to_vec()
    }

    fn flush(s: &mut StateCache, state: &MemStore) {
        let mut batch = StateBatch::default();
        s.flush(&mut batch);
        state.commit(&batch, false).expect("commits");
    }

    #[test]
    fn stays_within_its_byte_budget_and_reads_evicted_keys_back() {
        let state = MemStore::new();
        let mut s = StateCache::with_budget(10, 100 * size(6));
        for i in 0..1000u32 {
            s.set(&key(i), Some(vec![1; 6]));
        }
        s.set(&key(7), Some(vec![2; 6]));
        assert_eq!(s.bytes(), 1000 * size(6), "a rewrite counts its new value only");
        assert!(s.over_budget());
        flush(&mut s, &state);
        assert!(!s.over_budget());
        assert_eq!(s.len(), 75, "evicted to 3/4 of the budget");
        assert_eq!(s.bytes(), 75 * size(6));
        let keys: Vec<Vec<u8>> = (0..1000u32).map(key).collect();
        s.prefetch(&keys, &state).expect("reads");
        assert_eq!(s.get(&key(7)), Some(&[2u8; 6][..]));
        assert_eq!(s.get(&key(999)), Some(&[1u8; 6][..]));
        assert_eq!(s.get(&key(0)), Some(&[1u8; 6][..]));
    }

    #[test]
    fn evicts_the_least_recently_used_entries_first() {
        let state = MemStore::new();
        // Room for 10 entries; eviction goes down to 7.
        let mut s = StateCache::with_budget(0, 10 * size(1));
        for i in 0..12u32 {
            s.set(&key(i), Some(vec![0]));
        }
        // Keys 0 and 1 are the oldest writes, but read since.
        assert!(s.get(&key(0)).is_some() && s.get(&key(1)).is_some());
        flush(&mut s, &state);
        let cached: Vec<u32> = (0..12u32).filter(|&i| s.contains(&key(i))).collect();
        assert_eq!(cached, [0, 1, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn reads_alone_stay_within_the_budget_and_keep_the_batch_being_read() {
        let state = MemStore::new();
        let mut batch = StateBatch::default();
        for i in 0..100u32 {
            batch.put(&key(i), &[i as u8; 8]);
        }
        state.commit(&batch, false).expect("commits");
        // Room for 20 entries; no flush in between (a stream-table join's lookups).
        let mut s = StateCache::with_budget(1000, 20 * size(8));
        for chunk in (0..100u32).collect::<Vec<_>>().chunks(15) {
            let keys: Vec<Vec<u8>> = chunk.iter().map(|&i| key(i)).collect();
            s.prefetch(&keys, &state).expect("reads");
            for &i in chunk {
                assert_eq!(s.get(&key(i)), Some(&[i as u8; 8][..]), "key {i} of the batch is readable");
            }
            assert!(s.bytes() <= 15 * size(8) + 20 * size(8), "at most the budget and one batch: {}", s.bytes());
        }
        // A batch bigger than the budget stays whole until the next prefetch.
        let keys: Vec<Vec<u8>> = (0..50u32).map(key).collect();
        s.prefetch(&keys, &state).expect("reads");
        assert!((0..50u32).all(|i| s.contains(&key(i))));
        s.prefetch(&[key(99)], &state).expect("reads");
        assert!(s.bytes() <= 20 * size(8), "back within the budget: {}", s.bytes());
        assert!(!s.over_budget(), "clean entries never ask for a checkpoint");
    }

    #[test]
    fn unwritten_entries_are_never_evicted_and_ask_for_a_checkpoint_by_bytes() {
        let state = MemStore::new();
        let mut s = StateCache::with_budget(1000, 10 * size(100));
        for i in 0..5u32 {
            s.set(&key(i), Some(vec![9; 100]));
        }
        assert!(!s.over_budget(), "half the budget is not over it");
        s.set(&key(5), Some(vec![9; 100]));
        assert!(s.over_budget(), "past half the byte budget of unwritten entries");
        // Over the budget, a prefetch evicts only clean entries: none here.
        for i in 6..20u32 {
            s.set(&key(i), Some(vec![9; 100]));
        }
        s.prefetch(&[key(100)], &state).expect("reads");
        assert!((0..20u32).all(|i| s.get(&key(i)) == Some(&[9u8; 100][..])));
        flush(&mut s, &state);
        assert!(!s.over_budget());
        assert!(s.bytes() <= 10 * size(100));
        assert_eq!(state.get(&key(19)).expect("reads"), Some(vec![9; 100]), "written before eviction");
    }

    #[test]
    fn deletes_are_written_under_the_prefix_and_shrink_the_cache() {
        let state = MemStore::new();
        let mut s = StateCache::with_budget(100, 1 << 20);
        s.prefix = b"p/".to_vec();
        s.set(b"a", Some(b"1".to_vec()));
        s.set(b"b", Some(b"2".to_vec()));
        flush(&mut s, &state);
        let before = s.bytes();
        s.set(b"a", None);
        assert_eq!(s.bytes(), before - 1, "the deleted value no longer counts");
        flush(&mut s, &state);
        assert_eq!(state.get(b"p/a").expect("reads"), None);
        assert_eq!(state.get(b"p/b").expect("reads"), Some(b"2".to_vec()));
        assert_eq!(s.len(), 2, "within its budget nothing is evicted");
        s.prefetch(&[b"a".to_vec()], &state).expect("reads");
        assert_eq!(s.get(b"a"), None);
    }
}
