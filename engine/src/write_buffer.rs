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
        }
    }

    /// Keys written since the last barrier (buffered or ahead, counting a key written ahead
    /// and then again twice).
    pub fn len(&self) -> usize {
        self.slots.len() + self.went_ahead.len()
    }

    /// True when nothing was written since the last barrier.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets `key` to `value` (`None`: deletes it).
    pub fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let hash = self.hasher.hash_one(&key);
        if let Some(slot) = self.slots.find_mut(hash, |s| s.key == key) {
            slot.value = value;
            return;
        }
        let seq = if !self.went_ahead.is_empty() && self.went_ahead.contains(&hash) {
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

    /// Writes the oldest buffered keys past the limit to `ahead`, the epoch's writes.
    pub fn write_ahead(&mut self, ahead: &mut StateBatch) {
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
    pub fn drain_into(&mut self, batch: &mut StateBatch) {
        for slot in self.slots.drain() {
            match slot.value {
                Some(v) => batch.put(&slot.key, &v),
                None => batch.delete(&slot.key),
            }
        }
        self.queue.clear();
        self.went_ahead.clear();
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
