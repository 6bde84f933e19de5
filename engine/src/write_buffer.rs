//! [`WriteBuffer`]: the latest write per key since the last barrier, for an operator that only
//! writes state (a table sink's materialized rows), with the oldest keys written ahead.
//!
//! A barrier pauses every task of a query until each has handed over its writes. Keeping every
//! key written in a checkpoint interval for the barrier puts the cost of walking them (cache
//! misses, one allocation per key and value to free) into that pause. The buffer keeps the keys
//! in the order they were first written; past `limit` of them, [`WriteBuffer::write_ahead`]
//! writes the oldest into the epoch's writes ([`crate::operator::OpContext::writes_ahead`]),
//! which come before the barrier's own. A key written again while buffered is overwritten in
//! place. A key written again after it went ahead is hot: it stays buffered until the barrier
//! (its later write wins), so that a key is written ahead at most once per checkpoint and hot
//! keys are not encoded into the epoch at nearly every write.
//!
//! Keys written once per checkpoint (an EMIT FINAL windowed table writes each key and window
//! once) gain nothing from the buffer and pay for it per write (a hash, a slot, the key and value
//! allocations kept alive until they go ahead: cache misses). So the buffer watches for keys
//! written again, and after a checkpoint in which none was (of at least [`DIRECT_AFTER`]
//! writes) it goes *direct*: writes are appended, in order, to one batch handed over whole
//! (the epoch's later write of a key still wins). While direct it samples one key hash in
//! [`SAMPLE`]; a sampled key written twice in a checkpoint turns the buffer back on at the next
//! barrier.
//!
//! Nothing written here is readable before the checkpoint commits it: an operator that reads
//! its own writes back must not use this buffer.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashSet, HashTable};
use storage::StateBatch;

/// A buffered write.
struct Slot {
    key: Vec<u8>,
    /// `None`: delete.
    value: Option<Vec<u8>>,
    /// Its place in the queue ([`HOT`]: not queued).
    seq: u64,
}

/// `Slot::seq` of a key that stays for the barrier.
const HOT: u64 = u64::MAX;

/// Writes in a checkpoint with no key written twice after which the buffer goes direct.
const DIRECT_AFTER: usize = 4096;

/// While direct, one key hash in this many is remembered, to notice keys written again.
const SAMPLE: u64 = 16;

/// Latest write per key since the last barrier; past `limit` keys, the oldest are written ahead.
pub struct WriteBuffer {
    /// Buffered writes, by key hash (each key hashed once per write).
    slots: HashTable<Slot>,
    hasher: DefaultHashBuilder,
    /// Buffered keys that may go ahead, oldest first: (key hash, seq).
    queue: VecDeque<(u64, u64)>,
    next_seq: u64,
    /// Hashes of the keys written ahead since the last barrier (a collision only keeps a key
    /// for the barrier).
    went_ahead: HashSet<u64>,
    limit: usize,
    /// Direct mode: this checkpoint's writes, in order (see the module docs).
    direct: Option<StateBatch>,
    /// Writes since the last barrier, and how many of them were to a key written before in it
    /// (buffered: any; direct: among the sampled hashes).
    writes: usize,
    rewrites: usize,
    /// Direct mode: the sampled key hashes written since the last barrier.
    sampled: HashSet<u64>,
}

impl WriteBuffer {
    /// A buffer that keeps at most `limit` keys for the barrier, besides hot ones.
    pub fn new(limit: usize) -> Self {
        WriteBuffer {
            slots: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            queue: VecDeque::new(),
            next_seq: 0,
            went_ahead: HashSet::new(),
            limit,
            direct: None,
            writes: 0,
            rewrites: 0,
            sampled: HashSet::new(),
        }
    }

    /// True while writes go straight into one batch (see the module docs).
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Keys written since the last barrier (buffered or ahead, counting a key written ahead
    /// and then again twice).
    pub fn len(&self) -> usize {
        self.slots.len() + self.went_ahead.len() + self.direct.as_ref().map_or(0, StateBatch::len)
    }

    /// True when nothing was written since the last barrier.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets `key` to `value` (`None`: deletes it).
    pub fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes += 1;
        let hash = self.hasher.hash_one(&key);
        if let Some(batch) = &mut self.direct {
            if hash.is_multiple_of(SAMPLE) && !self.sampled.insert(hash) {
                self.rewrites += 1;
            }
            match value {
                Some(v) => batch.put(&key, &v),
                None => batch.delete(&key),
            }
            return;
        }
        if let Some(slot) = self.slots.find_mut(hash, |s| s.key == key) {
            slot.value = value;
            self.rewrites += 1;
            return;
        }
        let seq = if !self.went_ahead.is_empty() && self.went_ahead.contains(&hash) {
            self.rewrites += 1;
            HOT
        } else {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.queue.push_back((hash, seq));
            seq
        };
        let hasher = &self.hasher;
        self.slots.insert_unique(hash, Slot { key, value, seq }, |s| hasher.hash_one(&s.key));
    }

    /// Writes the oldest buffered keys past the limit to `ahead`, the epoch's writes (direct:
    /// every write since the last call).
    pub fn write_ahead(&mut self, ahead: &mut StateBatch) {
        if let Some(batch) = &mut self.direct {
            ahead.extend(std::mem::take(batch));
            return;
        }
        while self.queue.len() > self.limit {
            let Some((hash, seq)) = self.queue.pop_front() else { break };
            let Ok(entry) = self.slots.find_entry(hash, |s| s.seq == seq) else { continue };
            let (slot, _) = entry.remove();
            match slot.value {
                Some(v) => ahead.put(&slot.key, &v),
                None => ahead.delete(&slot.key),
            }
            self.went_ahead.insert(hash);
        }
    }

    /// Writes every buffered key to `batch` at a barrier (after what went ahead), and empties
    /// the buffer.
    /// the buffer; then decides whether the next checkpoint's writes go direct.
    pub fn drain_into(&mut self, batch: &mut StateBatch) {
        if let Some(direct) = &mut self.direct {
            batch.extend(std::mem::take(direct));
        }
        for slot in self.slots.drain() {
            match slot.value {
                Some(v) => batch.put(&slot.key, &v),
                None => batch.delete(&slot.key),
            }
        }
        self.queue.clear();
        self.went_ahead.clear();
        self.sampled.clear();
        let go_direct = match self.direct {
            Some(_) => self.rewrites == 0,
            None => self.rewrites == 0 && self.writes >= DIRECT_AFTER,
        };
        self.direct = go_direct.then(StateBatch::new);
        (self.writes, self.rewrites) = (0, 0);
    }
}

#[cfg(test)]
mod tests {
    use storage::{BatchOp, StateBatch};

    use super::WriteBuffer;

    fn ops(batch: &StateBatch) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        batch
            .iter()
            .map(|op| match op {
                BatchOp::Put(k, v) => (k.to_vec(), Some(v.to_vec())),
                BatchOp::Delete(k) => (k.to_vec(), None),
                BatchOp::DeleteRange(..) => unreachable!("no range deletes"),
            })
            .collect()
    }

    fn kv(k: &str, v: Option<&str>) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))
    }

    #[test]
    fn keeps_the_latest_write_per_key_and_writes_the_oldest_ahead_in_order() {
        let mut b = WriteBuffer::new(2);
        let mut batch = StateBatch::default();
        b.put(b"a".to_vec(), Some(b"1".to_vec()));
        b.put(b"b".to_vec(), Some(b"1".to_vec()));
        b.put(b"a".to_vec(), Some(b"2".to_vec()));
        assert_eq!(b.len(), 2, "a overwritten in place");
        b.put(b"c".to_vec(), None);
        b.write_ahead(&mut batch);
        // a went ahead (with its latest value); written again, it stays for the barrier.
        b.put(b"a".to_vec(), Some(b"3".to_vec()));
        b.put(b"a".to_vec(), Some(b"4".to_vec()));
        b.put(b"d".to_vec(), Some(b"1".to_vec()));
        b.write_ahead(&mut batch);
        assert_eq!(b.len(), 5, "a twice, b, c, d");
        b.drain_into(&mut batch);
        let mut written = ops(&batch);
        assert_eq!(written[..2], [kv("a", Some("2")), kv("b", Some("1"))], "written ahead first, oldest first");
        written[2..].sort();
        assert_eq!(written[2..], [kv("a", Some("4")), kv("c", None), kv("d", Some("1"))], "then the rest: a's last write after its first");
        assert!(b.is_empty());
        // After a drain the buffer starts afresh.
        b.put(b"x".to_vec(), Some(b"1".to_vec()));
        b.put(b"x".to_vec(), Some(b"2".to_vec()));
        let mut batch = StateBatch::default();
        b.drain_into(&mut batch);
        assert_eq!(ops(&batch), vec![kv("x", Some("2"))]);
    }

    #[test]
    fn keys_written_once_go_direct_and_a_key_written_again_turns_the_buffer_back_on() {
        let mut b = WriteBuffer::new(16);
        let mut batch = StateBatch::default();
        let key = |k: u32| k.to_be_bytes().to_vec();
        for k in 0..super::DIRECT_AFTER as u32 {
            b.put(key(k), Some(vec![1]));
        }
        assert!(!b.is_direct());
        b.drain_into(&mut batch);
        assert!(b.is_direct(), "a checkpoint of keys written once");
        // Direct: every write in order, the same key's later write after its earlier one.
        let mut ahead = StateBatch::default();
        for round in 0..2u8 {
            for k in 0..1000u32 {
                b.put(key(k), if k == 7 && round == 1 { None } else { Some(vec![round]) });
            }
        }
        assert_eq!(b.len(), 2000);
        b.write_ahead(&mut ahead);
        assert_eq!(b.len(), 0, "all of it handed over");
        let written = ops(&ahead);
        assert_eq!(written.len(), 2000);
        assert_eq!(written[0], (key(0), Some(vec![0])));
        assert_eq!(written[1007], (key(7), None));
        let mut barrier = StateBatch::default();
        b.drain_into(&mut barrier);
        assert!(!b.is_direct(), "sampled keys were written twice");
        // Buffered again: the latest write per key.
        b.put(key(1), Some(vec![1]));
        b.put(key(1), Some(vec![2]));
        let mut barrier = StateBatch::default();
        b.drain_into(&mut barrier);
        assert_eq!(ops(&barrier), vec![(key(1), Some(vec![2]))]);
    }

    #[test]
    fn many_keys_through_a_small_buffer_keep_their_last_value() {
        let mut b = WriteBuffer::new(16);
        let mut batch = StateBatch::default();
        for round in 0..3 {
            for k in 0..1000u32 {
                b.put(k.to_be_bytes().to_vec(), Some(vec![round]));
                if k % 10 == 0 {
                    b.write_ahead(&mut batch);
                }
            }
        }
        b.drain_into(&mut batch);
        let mut last = std::collections::HashMap::new();
        for (k, v) in ops(&batch) {
            last.insert(k, v);
        }
        assert_eq!(last.len(), 1000);
        assert!(last.values().all(|v| v.as_deref() == Some(&[2][..])));
    }
}
