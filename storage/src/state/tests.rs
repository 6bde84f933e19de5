//! Tests of the state stores: the same random operations against `RocksStore` and `MemStore` must
//! read back identically, plus RocksDB specifics (reopen, locking, damage).

use super::*;
use crate::StorageError;

/// A tiny deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Keys from a small space so that operations collide; lengths 0..=3 to test prefixes.
    fn key(&mut self) -> Vec<u8> {
        let len = self.below(4) as usize;
        (0..len)
            .map(|_| b"abcdefgh"[self.below(8) as usize])
            .collect()
    }
}

fn collect(s: &dyn KvStore, from: &[u8], to: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.scan(from, to).unwrap().map(Result::unwrap).collect()
}

#[test]
fn rocks_and_mem_agree_on_random_operations() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksStore::open(dir.path(), StateOptions::default()).unwrap();
    let mem = MemStore::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut batch = StateBatch::new();
    for step in 0..3000 {
        match rng.below(10) {
            0..=3 => batch.put(
                &rng.key(),
                &rng.next().to_le_bytes()[..rng.below(9) as usize],
            ),
            4..=5 => batch.delete(&rng.key()),
            6 => {
                let (a, b) = (rng.key(), rng.key());
                batch.delete_range(&a, &b);
            }
            _ => {
                rocks.commit(&batch, rng.below(4) == 0).unwrap();
                mem.commit(&batch, false).unwrap();
                batch.clear();
            }
        }
        let k = rng.key();
        assert_eq!(
            rocks.get(&k).unwrap(),
            mem.get(&k).unwrap(),
            "get {k:?} at step {step}"
        );
        let keys: Vec<Vec<u8>> = (0..4).map(|_| rng.key()).collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        assert_eq!(
            rocks.multi_get(&refs).unwrap(),
            mem.multi_get(&refs).unwrap(),
            "multi_get at step {step}"
        );
        let (a, b) = (rng.key(), rng.key());
        assert_eq!(
            collect(&rocks, &a, &b),
            collect(&mem, &a, &b),
            "scan {a:?}..{b:?} at step {step}"
        );
    }
    assert_eq!(
        collect(&rocks, b"", b"\xff\xff\xff\xff"),
        collect(&mem, b"", b"\xff\xff\xff\xff")
    );
}

#[test]
fn scan_is_a_consistent_view() {
    let dir = tempfile::tempdir().unwrap();
    let stores: [Box<dyn KvStore>; 2] = [
        Box::new(RocksStore::open(dir.path(), StateOptions::default()).unwrap()),
        Box::new(MemStore::new()),
    ];
    for s in &stores {
        let mut b = StateBatch::new();
        b.put(b"a", b"1");
        b.put(b"b", b"2");
        s.commit(&b, false).unwrap();
        let mut it = s.scan(b"a", b"z").unwrap();
        let mut b = StateBatch::new();
        b.delete(b"b");
        b.put(b"c", b"3");
        s.commit(&b, false).unwrap();
        let seen: Vec<_> = it.by_ref().map(Result::unwrap).collect();
        assert_eq!(
            seen,
            [
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
    }
}

#[test]
fn rocks_persists_across_reopen_and_reports_size() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path(), StateOptions::default()).unwrap();
        let mut b = StateBatch::new();
        for i in 0u32..1000 {
            b.put(&i.to_be_bytes(), &[7u8; 100]);
        }
        s.commit(&b, true).unwrap();
    }
    let s = RocksStore::open(dir.path(), StateOptions::default()).unwrap();
    assert_eq!(s.get(&5u32.to_be_bytes()).unwrap(), Some(vec![7u8; 100]));
    assert_eq!(collect(&s, &[], &[0xff; 5]).len(), 1000);
    assert_eq!(s.approximate_size(b"b", b"a"), 0);
    let _ = s.approximate_size(&[], &[0xff; 5]); // memtable only after reopen replays the WAL: any value
}

#[test]
fn rocks_locked_and_damaged_directories_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let _held = RocksStore::open(dir.path(), StateOptions::default()).unwrap();
    let err = RocksStore::open(dir.path(), StateOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::StateLocked { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );

    let damaged = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(damaged.path(), StateOptions::default()).unwrap();
        let mut b = StateBatch::new();
        b.put(b"k", b"v");
        s.commit(&b, true).unwrap();
    }
    std::fs::write(damaged.path().join("CURRENT"), b"MANIFEST-999999\n").unwrap();
    let err = RocksStore::open(damaged.path(), StateOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::StateOpen { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("cannot open state store at "),
        "{err}"
    );

    let file = damaged.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = RocksStore::open(&file, StateOptions::default()).unwrap_err();
    assert!(err.to_string().contains("plain-file"), "{err}");
}
