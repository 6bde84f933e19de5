//! The group store of an aggregate: group states cached in memory, backed by the state store.
//!
//! Keys are the operator's state prefix followed by a suffix the aggregate chooses (window start
//! and group row for windows, the group row otherwise); values are each aggregate's saved state,
//! each behind a u32 length. Reads go through the cache: the aggregate prefetches a batch's
//! missing keys with one `multi_get`. A value is the event time of the latest update (8 bytes)
//! followed by each aggregate's state behind a u32 length.
//!
//! Writes behind. A barrier pauses every task of the query until each has written its dirty
//! state, so writing every group dirtied in a checkpoint interval at the barrier puts its whole
//! cost (mostly cache misses: a group's states are a tree of small allocations) into the pause.
//! So only the [`WRITE_BEHIND_GROUPS`] groups dirtied last are left for the barrier: past that
//! many, the oldest dirty groups are encoded after a batch straight into the epoch's writes
//! ([`crate::operator::OpContext::writes_ahead`]), which come before the barrier's own. A group
//! written ahead and then changed again is written again, by the barrier (the later write
//! wins): a group is written ahead at most once per checkpoint, and a group found hot that way
//! is left for the barrier for the next few checkpoints, so that hot groups are not encoded
//! twice per checkpoint. What is written ahead is not committed before the barrier, so a group
//! written ahead stays cached until then.
//!
//! Eviction is not in the pause either: after each batch a clock over the cached keys (in the
//! order they were cached) drops a few closed windows, and, while the cache holds more than its
//! capacity, clean entries not used since the clock last passed them (second chance).
//!
//! Keys that cannot be stored yet are not looked up: windows later than the latest window start
//! flushed, and, without windows, keys a [`KeyFilter`] of every key flushed has never seen.

use std::collections::VecDeque;
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use storage::{KvStore, StateBatch};

use super::function::{AggFunctionRef, AggState};
use crate::error::{EngineError, Result};
use crate::key_filter::KeyFilter;

/// Stored keys read back on start into the filter of keys written (with more: look them up).
const REBUILD_FILTER_KEYS: usize = 1_000_000;

/// Dirty groups left for the barrier to write; the ones dirtied before them are written ahead.
/// Debug builds (the test suites) leave 64, so that every test with more groups per checkpoint
/// writes ahead.
pub(crate) const WRITE_BEHIND_GROUPS: usize = if cfg!(debug_assertions) { 64 } else { 4096 };

/// Keys the eviction clock looks at after a batch, at least (else twice the keys the batch
/// touched: an entry it passes once more than it evicts, so eviction keeps up with new keys).
const EVICT_PER_BATCH: usize = 256;

/// `Entry::ahead` of a group not written ahead.
const NOT_AHEAD: u64 = u64::MAX;

/// Checkpoints for which a group found hot (dirtied again after it was written ahead) is left
/// for the barrier without being written ahead first.
const HOT_CHECKPOINTS: u64 = 8;

/// The states of one group (one per aggregate call).
#[derive(Debug)]
pub(crate) struct Entry {
    pub accs: Vec<Box<dyn AggState>>,
    /// Event time of the latest update.
    pub ts: i64,
    pub dirty: bool,
    /// No row has reached this group yet (it has no previous result).
    pub fresh: bool,
    /// Used since the eviction clock last passed it.
    referenced: bool,
    /// The flush generation in which the group was last written ahead ([`NOT_AHEAD`]: never).
    ahead: u64,
    /// Until this flush generation, the group is hot: it is not written ahead.
    hot_until: u64,
}

impl Entry {
    fn new(accs: Vec<Box<dyn AggState>>, ts: i64, fresh: bool) -> Self {
        Entry { accs, ts, dirty: false, fresh, referenced: true, ahead: NOT_AHEAD, hot_until: 0 }
    }

    /// A group no row has reached yet.
    fn empty(funcs: &[AggFunctionRef]) -> Self {
        Entry::new(funcs.iter().map(|f| f.new_state()).collect(), 0, true)
    }
}

/// Cached group states over the state store.
pub(crate) struct GroupStore {
    pub prefix: Vec<u8>,
    funcs: Vec<AggFunctionRef>,
    /// Keys are shared with `queue`, `behind` and `clock` (a clone is a reference count).
    map: HashMap<Arc<[u8]>, Entry>,
    deleted: HashSet<Vec<u8>>,
    capacity: usize,
    dirty: usize,
    /// Time-window keys start with their window start: a window that was never flushed cannot
    /// be in the store, so its keys need no lookup (most keys of a moving window are new).
    windowed: bool,
    /// The largest window start flushed so far (`i64::MAX` when unknown, after a restart).
    max_flushed_start: i64,
    /// Keys without a window: every key ever flushed, when known (see [`GroupStore::track_written`]),
    /// so that a group never written starts empty without a lookup.
    written: Option<KeyFilter>,
    /// Flushes so far.
    generation: u64,
    /// Keys in the order they became dirty (a key may be here twice, or no longer dirty: the
    /// entry's flag decides). Every dirty key is here or in `behind`.
    queue: VecDeque<Arc<[u8]>>,
    /// Dirty keys left for the barrier: written ahead once since it, and dirtied again.
    behind: Vec<Arc<[u8]>>,
    /// Groups written ahead since the last barrier.
    ahead_groups: usize,
    /// The largest window start written ahead since the last barrier (`i64::MIN`: none).
    ahead_max_start: i64,
    /// Cached keys in the order they were cached, for eviction by a clock: a key at the front
    /// that cannot go yet goes to the back (it may be here twice, or no longer cached).
    clock: VecDeque<Arc<[u8]>>,
    /// Window starts at or before this are closed (`i64::MIN`: none known), as of the last flush.
    closed_through: i64,
}

impl GroupStore {
    pub fn new(funcs: Vec<AggFunctionRef>, capacity: usize) -> Self {
        GroupStore {
            prefix: Vec::new(),
            funcs,
            map: HashMap::new(),
            deleted: HashSet::new(),
            capacity,
            dirty: 0,
            windowed: false,
            max_flushed_start: i64::MAX,
            written: None,
            generation: 0,
            queue: VecDeque::new(),
            behind: Vec::new(),
            ahead_groups: 0,
            ahead_max_start: i64::MIN,
            clock: VecDeque::new(),
            closed_through: i64::MIN,
        }
    }

    /// Tracks the keys flushed from now on in a [`KeyFilter`], so that keys not in it start
    /// empty without a lookup. The filter starts empty when nothing was `stored` before, else
    /// with the stored keys when there are at most [`REBUILD_FILTER_KEYS`]; with more, and once
    /// the filter is full, every key not cached is looked up.
    pub fn track_written(&mut self, state: &dyn KvStore, stored: bool) -> Result<()> {
        let mut f = KeyFilter::new();
        if stored {
            for (n, kv) in state.scan(&self.prefix, &self.groups_end())?.enumerate() {
                if n == REBUILD_FILTER_KEYS || !f.insert(&kv?.0[self.prefix.len()..]) {
                    return Ok(());
                }
            }
        }
        self.written = Some(f);
        Ok(())
    }

    /// The end (exclusive) of the group keys under the prefix: the operator's meta entries sort
    /// after it (`prefix + ff ff ...`), as no encoded group or window start begins with `ff ff`.
    pub fn groups_end(&self) -> Vec<u8> {
        let mut to = self.prefix.clone();
        to.extend_from_slice(&[0xff, 0xff]);
        to
    }

    /// Marks keys as starting with a window start (see [`super::window::encode_start`]), and
    /// sets the largest start flushed before (`i64::MIN`: none; `i64::MAX`: unknown).
    pub fn set_windowed(&mut self, max_flushed_start: i64) {
        self.windowed = true;
        self.max_flushed_start = max_flushed_start;
    }

    /// The largest window start flushed so far.
    pub fn max_flushed_start(&self) -> i64 {
        self.max_flushed_start
    }

    fn maybe_stored(&self, suffix: &[u8]) -> bool {
        if !self.windowed {
            return self.written.as_ref().is_none_or(|f| f.may_contain(suffix));
        }
        suffix.len() < 8 || super::window::decode_start(suffix) <= self.max_flushed_start
    }

    fn full_key(&self, suffix: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + suffix.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(suffix);
        k
    }

    /// Loads the states of `suffixes` that are not cached (absent ones start empty).
    pub fn prefetch(&mut self, suffixes: &[&[u8]], state: &dyn KvStore) -> Result<()> {
        let mut missing: Vec<&[u8]> = suffixes.iter().copied().filter(|s| !self.map.contains_key(*s)).collect();
        // Sorted, new keys too: they are cached, queued and written in this order, and writing
        // a batch's keys in order is measurably cheaper downstream (the staged index, RocksDB's
        // memtable): a GROUP BY over 10M distinct keys ran 25% slower with them in batch order.
        missing.sort_unstable();
        missing.dedup();
        // Keys of windows never flushed, and keys without a window never written, start empty
        // without a lookup.
        let (missing, fresh): (Vec<&[u8]>, Vec<&[u8]>) = missing.into_iter().partition(|s| self.maybe_stored(s));
        for s in fresh {
            let e = self.empty();
            self.insert(s, e);
        }
        if missing.is_empty() {
            return Ok(());
        }
        let keys: Vec<Vec<u8>> = missing.iter().map(|s| self.full_key(s)).collect();
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        let values = state.multi_get(&refs)?;
        for (suffix, v) in missing.into_iter().zip(values) {
            let entry = match v {
                Some(bytes) if !self.deleted.contains(suffix) => self.decode(&bytes)?,
                _ => self.empty(),
            };
            self.insert(suffix, entry);
        }
        Ok(())
    }

    fn insert(&mut self, suffix: &[u8], e: Entry) {
        let k: Arc<[u8]> = Arc::from(suffix);
        self.clock.push_back(k.clone());
        self.map.insert(k, e);
    }

    fn empty(&self) -> Entry {
        Entry::empty(&self.funcs)
    }

    /// The states of a stored group value.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Entry> {
        let mut accs = Vec::with_capacity(self.funcs.len());
        let corrupt = || EngineError::CorruptState { what: "aggregate entry".into() };
        let ts = i64::from_le_bytes(bytes.get(..8).ok_or_else(corrupt)?.try_into().expect("8 bytes"));
        let mut at = 8usize;
        for f in &self.funcs {
            let corrupt = || EngineError::CorruptState { what: format!("aggregate {}", f.name()) };
            let len = u32::from_le_bytes(bytes.get(at..at + 4).ok_or_else(corrupt)?.try_into().expect("4 bytes")) as usize;
            at += 4;
            let body = bytes.get(at..at + len).ok_or_else(corrupt)?;
            at += len;
            accs.push(f.load(body).map_err(|_| corrupt())?);
        }
        Ok(Entry::new(accs, ts, false))
    }

    /// The states of a prefetched (or new) key, marked dirty.
    pub fn get_mut(&mut self, suffix: &[u8]) -> &mut Entry {
        if !self.deleted.is_empty() {
            self.deleted.remove(suffix);
        }
        let (funcs, clock, queue) = (&self.funcs, &mut self.clock, &mut self.queue);
        let e = match self.map.entry_ref(suffix) {
            hashbrown::hash_map::EntryRef::Occupied(o) => {
                if !o.get().dirty {
                    queue.push_back(o.key().clone());
                }
                o.into_mut()
            }
            hashbrown::hash_map::EntryRef::Vacant(v) => {
                let k: Arc<[u8]> = Arc::from(suffix);
                clock.push_back(k.clone());
                queue.push_back(k.clone());
                v.insert_with_key(k, Entry::empty(funcs))
            }
        };
        e.referenced = true;
        if !e.dirty {
            e.dirty = true;
            self.dirty += 1;
        }
        e
    }

    /// The states of a key if cached.
    pub fn peek(&self, suffix: &[u8]) -> Option<&Entry> {
        self.map.get(suffix)
    }

    /// Forgets a key (deleted at the next flush).
    pub fn remove(&mut self, suffix: &[u8]) {
        if let Some(e) = self.map.remove(suffix) {
            if e.dirty {
                self.dirty -= 1;
            }
        }
        self.deleted.insert(suffix.to_vec());
    }

    /// Drops the cached state of a closed window's group: it is not written (a flush skips
    /// closed windows) and no row reads it again (rows later than a closed window are dropped
    /// before they reach its state). Dropping it at the close keeps the cache to the open
    /// windows: a replay closes windows far faster than checkpoints come, and the eviction clock
    /// keeps dirty and written-ahead entries until the barrier.
    pub fn discard(&mut self, suffix: &[u8]) {
        if let Some(e) = self.map.remove(suffix) {
            if e.dirty {
                self.dirty -= 1;
            }
        }
    }

    /// Drops cached keys matching `pred` without writing them (their state was deleted by range).
    pub fn forget(&mut self, mut pred: impl FnMut(&[u8]) -> bool) {
        let mut dirty_gone = 0;
        self.map.retain(|k, e| {
            let drop = pred(k);
            if drop && e.dirty {
                dirty_gone += 1;
            }
            !drop
        });
        self.dirty -= dirty_gone;
        self.deleted.retain(|k| !pred(k));
    }

    /// Too much unflushed state (dirty or written ahead): the caller should ask for a checkpoint.
    pub fn over_budget(&self) -> bool {
        self.dirty + self.ahead_groups > self.capacity
    }

    /// The work between barriers, after a batch that touched `keys` keys: writes the oldest
    /// dirty groups past [`WRITE_BEHIND_GROUPS`] to `ahead` (the epoch's writes; `None` in a task
    /// that never checkpoints), and evicts (see [`EVICT_PER_BATCH`]).
    pub fn after_batch(&mut self, keys: usize, ahead: Option<&mut StateBatch>) {
        if let Some(ahead) = ahead {
            self.write_ahead(ahead);
        }
        self.evict((2 * keys).max(EVICT_PER_BATCH));
    }

    fn is_closed(&self, suffix: &[u8]) -> bool {
        self.windowed && suffix.len() >= 8 && super::window::decode_start(suffix) <= self.closed_through
    }

    /// Looks at up to `budget` keys at the front of the clock while the cache holds more than
    /// its capacity or the front key is a closed window: a closed window goes, and a clean
    /// entry not used since the clock last passed it; the others go to the back, their use
    /// forgotten. Dirty entries, and those written ahead, wait for the barrier's commit.
    fn evict(&mut self, budget: usize) {
        let generation = self.generation;
        for _ in 0..budget {
            let Some(k) = self.clock.front() else { break };
            let closed = self.is_closed(k);
            if !closed && self.map.len() <= self.capacity {
                break;
            }
            let k = self.clock.pop_front().expect("a front key");
            let Some(e) = self.map.get_mut(&k) else { continue };
            let committed = !e.dirty && e.ahead != generation;
            if committed && (closed || !e.referenced) {
                self.map.remove(&k);
            } else {
                e.referenced = false;
                self.clock.push_back(k);
            }
        }
        // Keys forgotten, removed or cached twice pile up: start the clock afresh now and then.
        if self.clock.len() > 2 * self.map.len() + 1024 {
            self.clock = self.map.keys().cloned().collect();
        }
    }

    fn write_ahead(&mut self, ahead: &mut StateBatch) {
        let mut buf = Vec::new();
        let mut key = self.prefix.clone();
        let plen = key.len();
        while self.queue.len() > WRITE_BEHIND_GROUPS {
            let k = self.queue.pop_front().expect("longer than the limit");
            let Some(e) = self.map.get_mut(&k).filter(|e| e.dirty) else { continue };
            if e.ahead == self.generation || e.hot_until > self.generation {
                // Dirtied again after it was written ahead: hot. Writing it ahead at every
                // change would encode it at nearly every row, and once per checkpoint besides
                // the barrier's write would double its cost.
                if e.ahead == self.generation {
                    e.hot_until = self.generation + HOT_CHECKPOINTS;
                }
                self.behind.push(k);
                continue;
            }
            if self.windowed && k.len() >= 8 {
                self.ahead_max_start = self.ahead_max_start.max(super::window::decode_start(&k));
            }
            encode_entry(e, &mut buf);
            key.truncate(plen);
            key.extend_from_slice(&k);
            ahead.put(&key, &buf);
            e.dirty = false;
            e.ahead = self.generation;
            self.dirty -= 1;
            self.ahead_groups += 1;
            if let Some(f) = &mut self.written {
                if !f.insert(&k) {
                    self.written = None;
                }
            }
        }
    }

    /// Writes dirty states and deletions to `batch` (after what was written ahead). Windows
    /// starting at or before `closed_through` are closed (no row can reach them any more): they
    /// are not written, and [`GroupStore::after_batch`] evicts them first.
    pub fn flush(&mut self, batch: &mut StateBatch, closed_through: Option<i64>) {
        self.ahead_groups = 0;
        let mut buf = Vec::new();
        let mut key = self.prefix.clone();
        let plen = key.len();
        for k in self.deleted.drain() {
            key.truncate(plen);
            key.extend_from_slice(&k);
            batch.delete(&key);
        }
        let mut max_start = self.max_flushed_start.max(self.ahead_max_start);
        self.ahead_max_start = i64::MIN;
        // A closed window's state is dead (no row can reach it; its result is in the table): it
        // is not written, and whatever an earlier flush wrote goes with retention.
        let cut = closed_through.filter(|_| self.windowed).unwrap_or(i64::MIN);
        let behind = std::mem::take(&mut self.behind);
        for k in self.queue.drain(..).chain(behind) {
            let Some(e) = self.map.get_mut(&k).filter(|e| e.dirty) else { continue };
            e.dirty = false;
            if e.ahead == self.generation {
                e.hot_until = self.generation + HOT_CHECKPOINTS;
            }
            if self.windowed && k.len() >= 8 {
                let start = super::window::decode_start(&k);
                if start <= cut {
                    continue;
                }
                max_start = max_start.max(start);
            }
            encode_entry(e, &mut buf);
            key.truncate(plen);
            key.extend_from_slice(&k);
            batch.put(&key, &buf);
            if let Some(f) = &mut self.written {
                if !f.insert(&k) {
                    self.written = None;
                }
            }
        }
        self.dirty = 0;
        self.max_flushed_start = max_start;
        self.generation += 1;
        self.closed_through = cut;
    }

    /// Cached keys (for iterating windows).
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.map.keys().map(|k| &**k)
    }
}

/// A group's value: the event time of its latest update, then each state behind a u32 length.
fn encode_entry(e: &Entry, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&e.ts.to_le_bytes());
    for acc in &e.accs {
        let at = buf.len();
        buf.extend_from_slice(&[0; 4]);
        acc.save(buf);
        let len = (buf.len() - at - 4) as u32;
        buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int64Array};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::scalar::ScalarValue;
    use storage::{KvStore, MemStore, StateBatch};

    use super::super::function::create_aggregate;
    use super::super::window::encode_start;
    use super::{GroupStore, EVICT_PER_BATCH, WRITE_BEHIND_GROUPS};

    fn key(start: i64, group: &[u8]) -> Vec<u8> {
        let mut k = Vec::new();
        encode_start(start, &mut k);
        k.extend_from_slice(group);
        k
    }

    fn store(capacity: usize) -> GroupStore {
        let count = create_aggregate("COUNT", &[DataType::Int64], &[]).unwrap();
        let mut s = GroupStore::new(vec![count], capacity);
        s.prefix = b"p".to_vec();
        s
    }

    fn bump(s: &mut GroupStore, state: &dyn KvStore, k: &[u8]) -> ScalarValue {
        s.prefetch(&[k], state).unwrap();
        let args: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![1]))];
        let e = s.get_mut(k);
        e.accs[0].update(&args, 0);
        e.accs[0].evaluate()
    }

    fn checkpoint(s: &mut GroupStore, state: &MemStore) {
        let mut batch = StateBatch::default();
        s.flush(&mut batch, None);
        state.commit(&batch, false).unwrap();
        s.after_batch(0, None);
    }

    #[test]
    fn windowed_keys_flushed_and_evicted_are_read_back() {
        let state = MemStore::new();
        let mut s = store(0);
        s.set_windowed(i64::MIN);
        let old = key(1_000, b"a");
        assert_eq!(bump(&mut s, &state, &old), ScalarValue::Int64(Some(1)));
        checkpoint(&mut s, &state);
        assert!(s.peek(&old).is_none(), "capacity 0 evicts every clean entry");
        assert_eq!(s.max_flushed_start(), 1_000);
        // Window 1000 was flushed: its state is looked up, not restarted.
        assert_eq!(bump(&mut s, &state, &old), ScalarValue::Int64(Some(2)));
        // A later window was never flushed: it starts empty.
        assert_eq!(bump(&mut s, &state, &key(2_000, b"a")), ScalarValue::Int64(Some(1)));
    }

    #[test]
    fn a_discarded_closed_window_is_neither_cached_nor_written() {
        let state = MemStore::new();
        let mut s = store(100);
        s.set_windowed(i64::MIN);
        let (closed, open) = (key(0, b"x"), key(100, b"x"));
        bump(&mut s, &state, &closed);
        bump(&mut s, &state, &open);
        s.discard(&closed);
        assert!(s.peek(&closed).is_none(), "gone from the cache at once, dirty as it was");
        let mut batch = StateBatch::default();
        s.flush(&mut batch, None);
        let written: Vec<Vec<u8>> = batch
            .iter()
            .map(|op| match op {
                storage::BatchOp::Put(k, _) => k.to_vec(),
                other => panic!("only puts: {other:?}"),
            })
            .collect();
        assert_eq!(written, vec![[b"p".as_slice(), &open].concat()], "only the open window is written, and no delete");
        assert!(!s.over_budget());
    }

    #[test]
    fn closed_windows_and_least_recently_used_groups_are_evicted_first() {
        let state = MemStore::new();
        let mut s = store(2);
        s.set_windowed(i64::MIN);
        let (closed, a, b, c) = (key(0, b"x"), key(100, b"a"), key(100, b"b"), key(100, b"c"));
        for k in [&closed, &a, &b, &c] {
            bump(&mut s, &state, k);
        }
        let mut batch = StateBatch::default();
        s.flush(&mut batch, Some(50));
        state.commit(&batch, false).unwrap();
        s.after_batch(0, None);
        assert!(s.peek(&closed).is_none(), "a closed window leaves the cache");
        assert_eq!(s.keys().count(), 2);
        // Touch whichever of a, b, c stayed and add a new group: the untouched one goes first.
        let kept: Vec<Vec<u8>> = s.keys().map(<[u8]>::to_vec).collect();
        bump(&mut s, &state, &kept[0]);
        bump(&mut s, &state, &key(100, b"d"));
        let mut batch = StateBatch::default();
        s.flush(&mut batch, Some(50));
        s.after_batch(0, None);
        assert!(s.peek(&kept[0]).is_some() && s.peek(&key(100, b"d")).is_some() && s.peek(&kept[1]).is_none());
    }

    #[test]
    fn groups_never_written_are_not_looked_up_and_written_ones_are() {
        let state = MemStore::new();
        // A group another store wrote under the same prefix: only a lookup could find it.
        let mut other = store(0);
        bump(&mut other, &state, b"planted");
        checkpoint(&mut other, &state);
        let mut s = store(0);
        s.track_written(&state, false).unwrap();
        assert_eq!(bump(&mut s, &state, b"planted"), ScalarValue::Int64(Some(1)), "not written by this store: no lookup");
        let mut fresh = store(0);
        assert_eq!(bump(&mut fresh, &state, b"planted"), ScalarValue::Int64(Some(2)), "untracked: looked up");
        // Written, flushed and evicted (capacity 0): read back.
        bump(&mut s, &state, b"g");
        checkpoint(&mut s, &state);
        assert!(s.peek(b"g").is_none());
        assert_eq!(bump(&mut s, &state, b"g"), ScalarValue::Int64(Some(2)));
        // A store that reads the stored keys back finds them.
        let mut again = store(0);
        again.prefix = b"q".to_vec();
        let mut moved = StateBatch::default();
        moved.put(b"qg", &state.get(b"pg").unwrap().expect("g was written"));
        state.commit(&moved, false).unwrap();
        again.track_written(&state, true).unwrap();
        assert_eq!(bump(&mut again, &state, b"g"), ScalarValue::Int64(Some(2)));
    }

    #[test]
    fn groups_written_ahead_reach_the_barrier_first_and_stay_cached_until_it() {
        let state = MemStore::new();
        let mut s = store(0);
        s.track_written(&state, false).unwrap();
        let keys: Vec<Vec<u8>> = (0..WRITE_BEHIND_GROUPS + 10).map(|i| format!("k{i}").into_bytes()).collect();
        for k in &keys {
            bump(&mut s, &state, k);
        }
        // The epoch's writes, as a task hands them to its operators between barriers.
        let mut epoch = StateBatch::default();
        s.after_batch(0, None);
        assert_eq!(s.dirty, keys.len(), "a task that never checkpoints writes nothing ahead");
        s.after_batch(0, Some(&mut epoch));
        assert_eq!((s.dirty, s.ahead_groups, epoch.iter().count()), (WRITE_BEHIND_GROUPS, 10, 10), "the ten dirtied first");
        // Written ahead, changed again: written again at the barrier, and the later write wins.
        assert_eq!(bump(&mut s, &state, &keys[0]), ScalarValue::Int64(Some(2)));
        s.after_batch(0, Some(&mut epoch));
        assert!(s.peek(&keys[1]).is_some(), "written ahead but not committed: still cached");
        s.flush(&mut epoch, None);
        assert_eq!(epoch.iter().count(), keys.len() + 1, "k0 twice, every other key once");
        state.commit(&epoch, false).unwrap();
        s.after_batch(0, None);
        assert!(s.keys().count() >= keys.len().saturating_sub(EVICT_PER_BATCH), "evicted a few per batch");
        s.after_batch(2 * keys.len(), None);
        assert!(s.peek(&keys[1]).is_none(), "committed: evicted (capacity 0)");
        assert_eq!(bump(&mut s, &state, &keys[0]), ScalarValue::Int64(Some(3)));
        assert_eq!(bump(&mut s, &state, &keys[1]), ScalarValue::Int64(Some(2)));
        assert_eq!(bump(&mut s, &state, &keys[WRITE_BEHIND_GROUPS + 9]), ScalarValue::Int64(Some(2)));
    }

    #[test]
    fn a_group_dirtied_again_after_it_was_written_ahead_waits_for_the_barrier_next_time() {
        let state = MemStore::new();
        let mut s = store(1 << 20);
        let keys: Vec<Vec<u8>> = (0..WRITE_BEHIND_GROUPS + 10).map(|i| format!("k{i}").into_bytes()).collect();
        let mut epoch = StateBatch::default();
        for k in &keys {
            bump(&mut s, &state, k);
        }
        s.after_batch(0, Some(&mut epoch));
        bump(&mut s, &state, &keys[0]);
        s.flush(&mut epoch, None);
        state.commit(&epoch, false).unwrap();
        // Next checkpoint, same order: k0 would go ahead first, but it was found hot.
        let mut epoch = StateBatch::default();
        for k in &keys {
            bump(&mut s, &state, k);
        }
        s.after_batch(0, Some(&mut epoch));
        assert_eq!(epoch.iter().count(), 9, "ten past the limit, k0 first, which stays");
        assert!(s.peek(&keys[0]).is_some_and(|e| e.dirty));
        s.flush(&mut epoch, None);
        assert_eq!(epoch.iter().count(), keys.len(), "each group written once");
        state.commit(&epoch, false).unwrap();
        assert_eq!(bump(&mut s, &state, &keys[0]), ScalarValue::Int64(Some(4)));
    }

    #[test]
    fn unknown_flush_history_looks_everything_up() {
        let state = MemStore::new();
        let mut first = store(0);
        let k = key(5_000, b"b");
        bump(&mut first, &state, &k);
        checkpoint(&mut first, &state);
        // A restart that lost the history (an older meta record) must not skip lookups.
        let mut s = store(0);
        s.set_windowed(i64::MAX);
        assert_eq!(bump(&mut s, &state, &k), ScalarValue::Int64(Some(2)));
    }
}
