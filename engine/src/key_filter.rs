//! [`KeyFilter`]: which keys an operator has ever written to the state store, as a Bloom filter,
//! so that a key it never wrote starts empty without a RocksDB lookup.
//!
//! An aggregate whose groups are mostly new (a GROUP BY over ids, sessions, users seen once)
//! otherwise pays a `multi_get` miss per record: a memtable skiplist search and a filter probe per
//! SST file, about a quarter of its CPU at 2M distinct keys (docs/performance.md, "New keys").
//! The filter answers "never written" for all but a small fraction of new keys and "maybe" for
//! every key written, so a lookup is skipped only when it would have missed.
//!
//! Layout: a chain of segments, each a blocked Bloom filter (one 512-bit block per key, 8 probes
//! in it, 16 bits per key: about 0.2% false positives per full segment). A key goes into the
//! newest segment; when that one holds its capacity, a segment twice as large is added, so the
//! filter grows with the keys written (2 bytes per key) without being rebuilt. Past
//! [`MAX_FILTER_BYTES`] it stops taking keys and the owner falls back to lookups: memory stays
//! bounded however many keys the state holds. The filter is never persisted; after a restart the
//! owner rebuilds it from a scan of its keys, or does without it.

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;

/// Keys the first segment holds; each next one holds twice as many.
const FIRST_SEGMENT_KEYS: usize = 1 << 16;

/// Bits per key of a segment (a 512-bit block per 32 keys).
const BITS_PER_KEY: usize = 16;

/// Bits set and tested per key, all within one 512-bit block (one cache line).
const PROBES: u32 = 8;

/// Bytes the filter may hold (about 32M keys); past them it takes no more keys.
pub const MAX_FILTER_BYTES: usize = 64 << 20;

struct Segment {
    blocks: Vec<[u64; 8]>,
    capacity: usize,
    len: usize,
}

impl Segment {
    fn new(capacity: usize) -> Self {
        Segment { blocks: vec![[0; 8]; (capacity * BITS_PER_KEY / 512).max(1)], capacity, len: 0 }
    }

    /// The block of hash `h` and the bit positions in it.
    fn probe(&self, h: u64) -> (usize, impl Iterator<Item = usize>) {
        let block = (((h >> 32) * self.blocks.len() as u64) >> 32) as usize;
        let (h1, h2) = (h as u32, (h.rotate_left(21) as u32) | 1);
        (block, (0..PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) & 511) as usize))
    }

    fn contains(&self, h: u64) -> bool {
        let (b, mut bits) = self.probe(h);
        let block = &self.blocks[b];
        bits.all(|bit| block[bit / 64] & (1 << (bit % 64)) != 0)
    }

    fn insert(&mut self, h: u64) {
        let (b, bits) = self.probe(h);
        let block = &mut self.blocks[b];
        for bit in bits {
            block[bit / 64] |= 1 << (bit % 64);
        }
        self.len += 1;
    }

    fn bytes(&self) -> usize {
        self.blocks.len() * 64
    }
}

/// The keys written so far, as a growing chain of Bloom filters.
pub struct KeyFilter {
    hasher: DefaultHashBuilder,
    segments: Vec<Segment>,
    bytes: usize,
    max_bytes: usize,
}

impl Default for KeyFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyFilter {
    /// An empty filter (no key was written) of at most [`MAX_FILTER_BYTES`].
    pub fn new() -> Self {
        Self::with_max_bytes(MAX_FILTER_BYTES)
    }

    /// An empty filter that takes no keys past `max_bytes` (its first segment, 128 KiB, always).
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        let first = Segment::new(FIRST_SEGMENT_KEYS);
        KeyFilter { hasher: DefaultHashBuilder::default(), bytes: first.bytes(), segments: vec![first], max_bytes }
    }

    /// False when `key` was certainly never inserted; true when it was, or (rarely) was not.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.contains_hash(self.hasher.hash_one(key))
    }

    fn contains_hash(&self, h: u64) -> bool {
        self.segments.iter().any(|s| s.contains(h))
    }

    /// Records that `key` was written. False when the filter is full (past its byte bound): it
    /// no longer knows every key written, and must not be asked.
    #[must_use]
    pub fn insert(&mut self, key: &[u8]) -> bool {
        let h = self.hasher.hash_one(key);
        if self.contains_hash(h) {
            return true;
        }
        let last = self.segments.last().expect("one segment at least");
        if last.len >= last.capacity {
            let next = Segment::new(last.capacity * 2);
            if self.bytes + next.bytes() > self.max_bytes {
                return false;
            }
            self.bytes += next.bytes();
            self.segments.push(next);
        }
        self.segments.last_mut().expect("one segment at least").insert(h);
        true
    }

    /// Bytes the filter holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Vec<u8> {
        format!("key_{i}").into_bytes()
    }

    #[test]
    fn every_key_written_is_found_and_few_others_are() {
        let mut f = KeyFilter::new();
        let n = 1_000_000u64;
        for i in 0..n {
            assert!(f.insert(&key(i)));
        }
        assert!((0..n).all(|i| f.may_contain(&key(i))), "no false negatives");
        let false_positives = (n..2 * n).filter(|&i| f.may_contain(&key(i))).count();
        // Five segments (64k..1M keys), each about 0.2% when full.
        assert!(false_positives < (n / 100) as usize, "{false_positives} false positives in {n}");
        // 2 bytes per key of capacity, which is less than twice the keys taken.
        assert!(f.bytes() <= 4 * n as usize + (FIRST_SEGMENT_KEYS * 2), "bytes: {}", f.bytes());
    }

    #[test]
    fn an_empty_filter_knows_nothing_was_written_and_rewrites_do_not_grow_it() {
        let mut f = KeyFilter::new();
        assert!(!(0..10_000).any(|i| f.may_contain(&key(i))));
        for _ in 0..10 {
            for i in 0..FIRST_SEGMENT_KEYS as u64 {
                assert!(f.insert(&key(i)));
            }
        }
        assert_eq!(f.segments.len(), 1, "a key written again is not counted again");
    }

    #[test]
    fn a_full_filter_refuses_keys_instead_of_losing_them() {
        // Segments of 128, 256 and 512 KiB fit in 1 MiB; the 1 MiB one does not.
        let mut f = KeyFilter::with_max_bytes(1 << 20);
        let refused = (0..1_000_000u64).find(|&i| !f.insert(&key(i))).expect("the filter fills up");
        assert_eq!(f.bytes(), 7 << 17);
        assert!(refused >= 7 * FIRST_SEGMENT_KEYS as u64 - 100, "took {refused} keys");
        assert!((0..refused).all(|i| f.may_contain(&key(i))), "what it took, it still knows");
    }
}
