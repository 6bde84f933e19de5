//! Tests of the state stores: the same random operations against `RocksStore` and `MemStore` must
//! read back identically, plus RocksDB specifics (reopen, locking, damage).

use super::*;
use crate::StorageError;
use std::sync::Arc;

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

/// A `MemStore` whose commits fail while `fail` is set (nothing applied, as the trait promises).
#[derive(Default)]
struct Flaky {
    mem: MemStore,
    fail: std::sync::atomic::AtomicBool,
}

impl KvStore for Flaky {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.mem.get(key)
    }
    fn multi_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        self.mem.multi_get(keys)
    }
    fn scan(&self, from: &[u8], to: &[u8]) -> Result<ScanIter<'_>> {
        self.mem.scan(from, to)
    }
    fn commit(&self, batch: &StateBatch, sync: bool) -> Result<()> {
        if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StorageError::Io {
                path: "flaky".into(),
                source: std::io::Error::other("injected"),
            });
        }
        self.mem.commit(batch, sync)
    }
    fn approximate_size(&self, _: &[u8], _: &[u8]) -> u64 {
        0
    }
}

/// A staged batch reads as committed at once, through commits that fail and are retried and
/// direct commits in between; at the end the inner store holds exactly what a plain store does.
#[test]
fn pending_store_reads_staged_batches_as_committed() {
    let flaky = Arc::new(Flaky::default());
    let pending = PendingStore::new(flaky.clone());
    let model = MemStore::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut batch = StateBatch::new();
    let check = |rng: &mut Rng, step: usize| {
        let k = rng.key();
        assert_eq!(pending.get(&k).unwrap(), model.get(&k).unwrap(), "get {k:?} at step {step}");
        let keys: Vec<Vec<u8>> = (0..4).map(|_| rng.key()).collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        assert_eq!(pending.multi_get(&refs).unwrap(), model.multi_get(&refs).unwrap(), "multi_get at step {step}");
        let (a, b) = (rng.key(), rng.key());
        assert_eq!(collect(&pending, &a, &b), collect(&model, &a, &b), "scan {a:?}..{b:?} at step {step}");
    };
    let (mut staged, mut failed) = (0, 0);
    for step in 0..4000 {
        match rng.below(12) {
            0..=3 => batch.put(&rng.key(), &rng.next().to_le_bytes()[..rng.below(9) as usize]),
            4..=5 => batch.delete(&rng.key()),
            6 => {
                let (a, b) = (rng.key(), rng.key());
                batch.delete_range(&a, &b);
            }
            7 => {
                // A direct commit: applied unless the inner store fails it.
                flaky.fail.store(rng.below(4) == 0, std::sync::atomic::Ordering::Relaxed);
                if pending.commit(&batch, false).is_ok() {
                    model.commit(&batch, false).unwrap();
                }
                batch.clear();
            }
            _ => {
                model.commit(&batch, false).unwrap();
                pending.stage(std::mem::take(&mut batch));
                staged += 1;
                check(&mut rng, step);
                flaky.fail.store(rng.below(3) == 0, std::sync::atomic::Ordering::Relaxed);
                if pending.commit_staged(false, || Ok(())).is_err() {
                    failed += 1;
                    assert!(pending.has_staged());
                } else {
                    assert!(!pending.has_staged());
                }
            }
        }
        check(&mut rng, step);
    }
    assert!(staged > 100 && failed > 10, "staged {staged} failed {failed}");
    flaky.fail.store(false, std::sync::atomic::Ordering::Relaxed);
    pending.stage(StateBatch::new());
    pending.commit_staged(true, || Ok(())).unwrap();
    assert!(!pending.has_staged());
    let all = |s: &dyn KvStore| collect(s, b"", b"\xff\xff\xff\xff");
    assert_eq!(all(flaky.as_ref()), all(&model));
}

/// A scan keeps the staged batch it started with, also when the batch commits meanwhile.
#[test]
fn pending_scan_is_a_consistent_view() {
    let pending = PendingStore::new(Arc::new(MemStore::new()));
    let mut b = StateBatch::new();
    b.put(b"a", b"1");
    b.put(b"c", b"3");
    pending.commit(&b, false).unwrap();
    let mut b = StateBatch::new();
    b.put(b"b", b"2");
    b.delete(b"c");
    pending.stage(b);
    let mut it = pending.scan(b"a", b"z").unwrap();
    assert_eq!(it.next().unwrap().unwrap(), (b"a".to_vec(), b"1".to_vec()));
    pending.commit_staged(false, || Ok(())).unwrap();
    let rest: Vec<_> = it.map(Result::unwrap).collect();
    assert_eq!(rest, [(b"b".to_vec(), b"2".to_vec())]);
    assert_eq!(collect(&pending, b"a", b"z"), [(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
}

/// The tasks a checkpoint releases before the staged batch is indexed read it all the same.
#[test]
fn reads_released_before_the_staged_index_is_built_see_the_batch() {
    let pending = Arc::new(PendingStore::new(Arc::new(MemStore::new())));
    let mut b = StateBatch::new();
    for i in 0..200_000u32 {
        b.put(&i.to_be_bytes(), b"v");
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let p = pending.clone();
        std::thread::spawn(move || {
            rx.recv().unwrap();
            (p.get(&7u32.to_be_bytes()).unwrap(), p.multi_get(&[&199_999u32.to_be_bytes()[..]]).unwrap())
        })
    };
    pending.stage_then(b, || tx.send(()).unwrap());
    assert_eq!(reader.join().unwrap(), (Some(b"v".to_vec()), vec![Some(b"v".to_vec())]));
}

/// Staged batches reach RocksDB as ordered writes (range deletes first, each key once, sorted):
/// the end state is the one the batches give applied in order.
#[test]
fn staged_batches_commit_to_rocks_as_applied_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = Arc::new(RocksStore::open(dir.path(), StateOptions::default()).unwrap());
    let pending = PendingStore::new(rocks.clone());
    let model = MemStore::new();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut batch = StateBatch::new();
    for _ in 0..3000 {
        match rng.below(10) {
            0..=4 => batch.put(&rng.key(), &rng.next().to_le_bytes()[..rng.below(9) as usize]),
            5..=6 => batch.delete(&rng.key()),
            7 => {
                let (a, b) = (rng.key(), rng.key());
                batch.delete_range(&a, &b);
            }
            _ => {
                model.commit(&batch, false).unwrap();
                pending.stage(std::mem::take(&mut batch));
                pending.commit_staged(false, || Ok(())).unwrap();
                let all = |s: &dyn KvStore| collect(s, b"", b"\xff\xff\xff\xff");
                assert_eq!(all(rocks.as_ref()), all(&model));
            }
        }
    }
}
