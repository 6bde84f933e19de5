//! Damaged log files, through the public API only: segments cut at random bytes, bytes flipped
//! at random places, index files removed or overwritten. After reopening, the log must keep what
//! is intact, report what it cut or rebuilt, never hand out a record that differs from what was
//! written, and take appends again at the right offset.
//!
//! Every case is seeded; a failure prints the seed (`EDDY_CORRUPTION_SEED` replays one seed,
//! `EDDY_CORRUPTION_ROUNDS` changes the number of rounds).

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use eddy_storage::{FileLog, LogOptions, RecordIn, StorageError, TopicAdmin, TopicConfig, TopicLog};

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What was written at one offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

fn written(rng: &mut Rng, i: usize) -> Written {
    let vlen = rng.below(120) as usize;
    Written {
        ts: 1_000 + i as i64,
        key: (rng.below(5) != 0).then(|| format!("key-{}", rng.below(50)).into_bytes()),
        value: (rng.below(10) != 0).then(|| (0..vlen).map(|j| (i + j) as u8).collect()),
    }
}

/// A log with one topic of small segments holding `n` random records; returns what was written.
fn fill(dir: &Path, rng: &mut Rng, n: usize) -> Vec<Written> {
    let log = FileLog::open(dir, LogOptions::default()).unwrap();
    let config = TopicConfig { segment_bytes: 2_000 + rng.below(3_000), ..TopicConfig::new(1) };
    log.create_topic("t", &config).unwrap();
    let mut all = Vec::new();
    while all.len() < n {
        let batch: Vec<Written> = (0..1 + rng.below(8) as usize).map(|j| written(rng, all.len() + j)).collect();
        let recs: Vec<RecordIn<'_>> = batch
            .iter()
            .map(|w| RecordIn { timestamp: w.ts, key: w.key.as_deref(), value: w.value.as_deref(), headers: &[] })
            .collect();
        log.append("t", 0, &recs).unwrap();
        all.extend(batch);
    }
    log.sync().unwrap();
    all
}

fn partition_dir(dir: &Path) -> PathBuf {
    dir.join("t").join("0")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(partition_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// What reading the whole partition gave.
#[derive(Debug, Default)]
struct Scan {
    /// Offsets returned, in order.
    offsets: Vec<i64>,
    /// Offsets at which a read failed with `Corrupt`.
    corrupt: Vec<i64>,
}

/// Reads every offset it can, skipping past records that fail their checks. Panics if a record
/// differs from what was written.
fn scan(log: &FileLog, all: &[Written], seed: u64) -> Scan {
    let mut s = Scan::default();
    let end = log.describe_topic("t").unwrap().partitions[0].end_offset;
    let mut from = 0;
    while from < end {
        match log.read("t", 0, from, 1 + (from as usize * 37) % 3000) {
            Ok(b) => {
                for r in b.iter() {
                    let w = &all[r.offset as usize];
                    let got = Written { ts: r.timestamp, key: r.key.map(<[u8]>::to_vec), value: r.value.map(<[u8]>::to_vec) };
                    assert_eq!(&got, w, "seed {seed}: offset {} came back different", r.offset);
                    assert!(s.offsets.last().is_none_or(|l| *l < r.offset), "seed {seed}: offsets go back");
                    s.offsets.push(r.offset);
                }
                if b.is_empty() {
                    break;
                }
                from = b.next_offset;
            }
            Err(StorageError::Corrupt { offset, topic, partition }) => {
                assert_eq!((topic.as_str(), partition), ("t", 0));
                // A read that starts past a bad record may still have to scan across it (from the
                // index entry before `from`), and then names it.
                s.corrupt.push(offset);
                from = offset.max(from) + 1;
            }
            Err(e) => panic!("seed {seed}: unexpected error {e}"),
        }
    }
    s
}

/// After recovery, appends continue at the end offset and the log reopens without cutting
/// anything (with `clean`, without repairing anything: a closed segment whose first record is
/// damaged has no index entry to keep, so its index is reported as rebuilt at every open).
fn appends_continue(dir: &Path, seed: u64, clean: bool) {
    let end;
    {
        let log = FileLog::open(dir, LogOptions::default()).unwrap();
        end = log.describe_topic("t").unwrap().partitions[0].end_offset;
        let at = log.append("t", 0, &[RecordIn { timestamp: 9, key: None, value: Some(b"after"), headers: &[] }]).unwrap();
        assert_eq!(at, end, "seed {seed}: append after recovery");
        log.sync().unwrap();
    }
    let log = FileLog::open(dir, LogOptions::default()).unwrap();
    let report = &log.recovery_report()[0];
    assert_eq!(report.truncated_bytes, 0, "seed {seed}: second open cut again: {report:?}");
    assert!(!clean || report.is_clean(), "seed {seed}: second open repaired again: {report:?}");
    let b = log.read("t", 0, end, 100).unwrap();
    assert_eq!(b.get(0).value, Some(&b"after"[..]), "seed {seed}");
}

fn seeds() -> Vec<u64> {
    if let Some(s) = std::env::var("EDDY_CORRUPTION_SEED").ok().and_then(|v| v.parse().ok()) {
        return vec![s];
    }
    let rounds = std::env::var("EDDY_CORRUPTION_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(40u64);
    (1..=rounds).collect()
}

/// The last segment cut at a random byte: a prefix of the records survives, the cut is
/// reported, appends continue.
#[test]
fn torn_tail_at_a_random_byte() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let all = fill(dir.path(), &mut rng, 300);
        let logs = files(dir.path(), "log");
        let last = logs.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len();
        let cut = rng.below(len);
        std::fs::OpenOptions::new().write(true).open(last).unwrap().set_len(cut).unwrap();
        let log = FileLog::open(dir.path(), LogOptions::default()).unwrap();
        let report = log.recovery_report()[0].clone();
        let s = scan(&log, &all, seed);
        assert!(s.corrupt.is_empty(), "seed {seed}: {s:?}");
        let n = s.offsets.len() as i64;
        assert_eq!(s.offsets, (0..n).collect::<Vec<_>>(), "seed {seed}: a prefix survives");
        assert!(n < all.len() as i64, "seed {seed}: something was cut");
        assert_eq!(report.end_offset, n, "seed {seed}");
        // A cut inside a record leaves a torn frame, which recovery reports; a cut exactly at a
        // record boundary leaves nothing to repair.
        let torn = report.truncated_bytes > 0;
        let boundary = {
            let mut pos = 0u64;
            let mut at_boundary = cut == 0;
            let data = std::fs::read(last).unwrap();
            while (pos as usize) + 4 <= data.len() {
                pos += 4 + u32::from_le_bytes(data[pos as usize..pos as usize + 4].try_into().unwrap()) as u64;
                at_boundary |= pos == cut;
            }
            at_boundary
        };
        assert!(torn || boundary, "seed {seed}: a torn tail must be reported: {report:?}");
        drop(log);
        appends_continue(dir.path(), seed, true);
    }
}

/// A byte flipped anywhere: no record ever comes back different. Near the end of the last
/// segment recovery cuts from the bad record on (and reports it); elsewhere reads stop at it with
/// a `Corrupt` error naming its offset, and the records of later segments stay readable.
#[test]
fn flipped_byte_anywhere() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let all = fill(dir.path(), &mut rng, 300);
        let logs = files(dir.path(), "log");
        let which = rng.below(logs.len() as u64) as usize;
        let mut data = std::fs::read(&logs[which]).unwrap();
        let at = rng.below(data.len() as u64) as usize;
        data[at] ^= 1 << rng.below(8);
        std::fs::write(&logs[which], &data).unwrap();
        let log = FileLog::open(dir.path(), LogOptions::default()).unwrap();
        let report = log.recovery_report()[0].clone();
        let s = scan(&log, &all, seed);
        let lost = all.len() - s.offsets.len();
        assert!(lost >= 1, "seed {seed}: the damaged record cannot come back");
        // Recovery checks the last segment from its last index entry on and cuts a bad tail;
        // anything before (and closed segments) is checked by every read.
        assert!(
            report.truncated_bytes > 0 || !s.corrupt.is_empty(),
            "seed {seed}: the damage is reported, by recovery or by reads: {report:?}"
        );
        if which + 1 == logs.len() {
            assert!(s.offsets.iter().all(|o| *o < all.len() as i64), "seed {seed}");
        } else {
            assert!(!s.corrupt.is_empty(), "seed {seed}: reads report the bad record");
            // Everything after the damaged segment is intact.
            let next_base: i64 = logs[which + 1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let tail: Vec<i64> = s.offsets.iter().copied().filter(|o| *o >= next_base).collect();
            assert_eq!(tail, (next_base..all.len() as i64).collect::<Vec<_>>(), "seed {seed}");
        }
        drop(log);
        appends_continue(dir.path(), seed, false);
    }
}

/// Index files removed, emptied or filled with garbage: every record is still there, lookups by
/// offset and time work, and the rebuilt indexes are reported.
#[test]
fn missing_and_garbage_indexes_are_rebuilt() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let all = fill(dir.path(), &mut rng, 300);
        let mut damaged = 0;
        for ext in ["index", "timeindex"] {
            for f in files(dir.path(), ext) {
                match rng.below(4) {
                    0 => std::fs::remove_file(&f).unwrap(),
                    1 => std::fs::write(&f, []).unwrap(),
                    2 => {
                        let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                        std::fs::write(&f, junk).unwrap();
                    }
                    _ => continue,
                }
                damaged += 1;
            }
        }
        let log = FileLog::open(dir.path(), LogOptions::default()).unwrap();
        let report = log.recovery_report()[0].clone();
        if damaged > 0 {
            assert!(!report.rebuilt_indexes.is_empty() || report.is_clean(), "seed {seed}: {report:?}");
        }
        assert_eq!(report.truncated_bytes, 0, "seed {seed}: no record is cut for a bad index");
        let s = scan(&log, &all, seed);
        assert_eq!(s.offsets, (0..all.len() as i64).collect::<Vec<_>>(), "seed {seed}");
        for _ in 0..20 {
            let o = rng.below(all.len() as u64) as i64;
            assert_eq!(log.read("t", 0, o, 1).unwrap().get(0).offset, o, "seed {seed}: read from {o}");
            assert_eq!(log.offset_for_timestamp("t", 0, all[o as usize].ts).unwrap(), Some(o), "seed {seed}: time lookup");
        }
        drop(log);
        appends_continue(dir.path(), seed, true);
    }
}

/// Several kinds of damage at once (a torn tail, a removed index of the last segment, garbage
/// appended after the last record): recovery still ends with an intact prefix.
#[test]
fn torn_tail_with_missing_index_and_garbage() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let all = fill(dir.path(), &mut rng, 200);
        let logs = files(dir.path(), "log");
        let last = logs.last().unwrap();
        let mut data = std::fs::read(last).unwrap();
        data.truncate(rng.below(data.len() as u64 + 1) as usize);
        data.extend((0..rng.below(300)).map(|_| rng.next() as u8));
        std::fs::write(last, &data).unwrap();
        for ext in ["index", "timeindex"] {
            let _ = std::fs::remove_file(last.with_extension(ext));
        }
        let log = FileLog::open(dir.path(), LogOptions::default()).unwrap();
        let s = scan(&log, &all, seed);
        assert!(s.corrupt.is_empty(), "seed {seed}: {s:?}");
        let n = s.offsets.len() as i64;
        assert_eq!(s.offsets, (0..n).collect::<Vec<_>>(), "seed {seed}");
        assert_eq!(log.recovery_report()[0].end_offset, n, "seed {seed}");
        drop(log);
        appends_continue(dir.path(), seed, true);
    }
}
