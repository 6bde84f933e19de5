//! Tests of [`FileLog`] through the [`TopicLog`] interface: round trips, segments, indexes, crash
//! recovery, truncation, retention, compaction, listeners, errors and concurrency.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::*;
use crate::StorageError;

type Rec = (Offset, i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn open(dir: &Path) -> FileLog {
    FileLog::open(dir, LogOptions::default()).unwrap()
}

fn config(segment_bytes: u64) -> TopicConfig {
    TopicConfig {
        segment_bytes,
        ..TopicConfig::new(1)
    }
}

fn rec<'a>(ts: i64, key: &'a [u8], value: &'a [u8]) -> RecordIn<'a> {
    RecordIn {
        timestamp: ts,
        key: Some(key),
        value: Some(value),
        headers: &[],
    }
}

/// Appends `n` records one call each: key `k{i % keys}`, value `v{i}`, timestamp `1000 + i`.
fn fill(log: &FileLog, topic: &str, n: i64, keys: i64) {
    for i in 0..n {
        let (k, v) = (format!("k{}", i % keys), format!("v{i}"));
        log.append(topic, 0, &[rec(1000 + i, k.as_bytes(), v.as_bytes())])
            .unwrap();
    }
}

fn read_all(log: &FileLog, topic: &str, partition: u32) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let b = log.read(topic, partition, from, 200).unwrap();
        if b.is_empty() {
            return out;
        }
        out.extend(b.iter().map(|r| {
            (
                r.offset,
                r.timestamp,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
            )
        }));
        from = b.next_offset;
    }
}

fn offsets(recs: &[Rec]) -> Vec<Offset> {
    recs.iter().map(|r| r.0).collect()
}

fn partition_dir(dir: &Path, topic: &str) -> PathBuf {
    dir.join(topic).join("0")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn file_log_is_a_shareable_topic_log() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<FileLog>();
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn TopicLog> = Arc::new(open(dir.path()));
    log.create_topic("t", &TopicConfig::new(1)).unwrap();
    assert_eq!(log.list_topics(), ["t"]);
}

#[test]
fn round_trip_with_nulls_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", &TopicConfig::new(2)).unwrap();
    let headers = vec![
        Header {
            key: "trace".into(),
            value: Some(b"abc".to_vec()),
        },
        Header {
            key: "empty".into(),
            value: Some(Vec::new()),
        },
        Header {
            key: "null".into(),
            value: None,
        },
    ];
    let records = [
        RecordIn {
            timestamp: 5,
            key: Some(b"k1"),
            value: Some(b"v1"),
            headers: &headers,
        },
        RecordIn {
            timestamp: -3,
            key: None,
            value: Some(b""),
            headers: &[],
        },
        RecordIn {
            timestamp: i64::MAX,
            key: Some(b""),
            value: None,
            headers: &[],
        },
    ];
    assert_eq!(log.append("t", 1, &records).unwrap(), 0);
    assert_eq!(log.append("t", 1, &records[..1]).unwrap(), 3);
    assert_eq!(log.append("t", 1, &[]).unwrap(), 4);
    let b = log.read("t", 1, 0, usize::MAX).unwrap();
    assert_eq!(b.len(), 4);
    assert_eq!(b.next_offset, 4);
    let r: Vec<_> = b.iter().collect();
    assert_eq!(
        (r[0].offset, r[0].timestamp, r[0].key, r[0].value),
        (0, 5, Some(&b"k1"[..]), Some(&b"v1"[..]))
    );
    assert_eq!(r[0].headers(), headers);
    assert_eq!(
        (r[1].timestamp, r[1].key, r[1].value),
        (-3, None, Some(&b""[..]))
    );
    assert!(r[1].headers().is_empty());
    assert_eq!(
        (r[2].timestamp, r[2].key, r[2].value),
        (i64::MAX, Some(&b""[..]), None)
    );
    assert_eq!(r[3].offset, 3);
    assert!(log.read("t", 0, 0, 100).unwrap().is_empty());
    let empty = log.read("t", 1, 4, 100).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.next_offset, 4);
    let info = log.describe_topic("t").unwrap();
    assert_eq!(
        (
            info.partitions[1].start_offset,
            info.partitions[1].end_offset
        ),
        (0, 4)
    );
    assert!(info.partitions[1].size_bytes > 0);
}

#[test]
fn offsets_continue_across_segment_rolls_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic("t", &config(300)).unwrap();
        fill(&log, "t", 100, 1000);
        let recs = read_all(&log, "t", 0);
        assert_eq!(offsets(&recs), (0..100).collect::<Vec<_>>());
        assert_eq!(recs[42].3.as_deref(), Some(&b"v42"[..]));
        assert!(files(&partition_dir(dir.path(), "t"), "log").len() > 10);
        for from in [0, 1, 17, 55, 99] {
            let b = log.read("t", 0, from, 1).unwrap();
            assert_eq!(
                (b.len(), b.get(0).offset, b.next_offset),
                (1, from, from + 1)
            );
        }
        let b = log.read("t", 0, 10, 500).unwrap();
        assert!(b.len() > 1 && b.len() < 20, "{}", b.len());
        assert_eq!(b.next_offset, 10 + b.len() as i64);
        log.sync().unwrap();
    }
    let log = open(dir.path());
    assert!(
        log.recovery_report().iter().all(RecoveryReport::is_clean),
        "{:?}",
        log.recovery_report()
    );
    assert_eq!(log.recovery_report()[0].end_offset, 100);
    assert_eq!(log.append("t", 0, &[rec(0, b"k", b"v")]).unwrap(), 100);
    assert_eq!(
        offsets(&read_all(&log, "t", 0)),
        (0..101).collect::<Vec<_>>()
    );
}

#[test]
fn batch_larger_than_max_bytes_still_returns_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", &config(1 << 20)).unwrap();
    let big = vec![7u8; 100_000];
    log.append("t", 0, &[rec(1, b"a", &big), rec(2, b"b", &big)])
        .unwrap();
    let b = log.read("t", 0, 0, 10).unwrap();
    assert_eq!((b.len(), b.next_offset), (1, 1));
    assert_eq!(b.get(0).value.unwrap().len(), 100_000);
    let b = log.read("t", 0, 0, 1 << 20).unwrap();
    assert_eq!(b.len(), 2);
}

#[test]
fn offset_for_timestamp_uses_the_max_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", &config(2000)).unwrap();
    // Timestamps rise with noise: 10*i, with every 7th record 500 late.
    let value = [1u8; 60];
    for i in 0..400i64 {
        let ts = if i % 7 == 0 { 10 * i - 500 } else { 10 * i };
        log.append("t", 0, &[rec(ts, b"k", &value)]).unwrap();
    }
    let recs = read_all(&log, "t", 0);
    for target in [-1000, 0, 5, 10, 995, 1000, 2345, 3990, 3991] {
        let want = recs.iter().find(|r| r.1 >= target).map(|r| r.0);
        assert_eq!(
            log.offset_for_timestamp("t", 0, target).unwrap(),
            want,
            "ts {target}"
        );
    }
    // The same after the indexes are rebuilt.
    drop(log);
    for p in files(&partition_dir(dir.path(), "t"), "timeindex") {
        std::fs::remove_file(p).unwrap();
    }
    let log = open(dir.path());
    for target in [0, 995, 2345, 3990, 3991] {
        let want = recs.iter().find(|r| r.1 >= target).map(|r| r.0);
        assert_eq!(
            log.offset_for_timestamp("t", 0, target).unwrap(),
            want,
            "ts {target}"
        );
    }
}

#[test]
fn truncate_within_and_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", &config(300)).unwrap();
    fill(&log, "t", 100, 1000);
    log.truncate("t", 0, 95).unwrap(); // inside the active segment
    assert_eq!(
        offsets(&read_all(&log, "t", 0)),
        (0..95).collect::<Vec<_>>()
    );
    log.truncate("t", 0, 40).unwrap(); // back across several segments
    assert_eq!(
        offsets(&read_all(&log, "t", 0)),
        (0..40).collect::<Vec<_>>()
    );
    assert_eq!(
        log.describe_topic("t").unwrap().partitions[0].end_offset,
        40
    );
    log.truncate("t", 0, 1000).unwrap(); // past the end: nothing
    assert_eq!(log.append("t", 0, &[rec(1, b"x", b"new")]).unwrap(), 40);
    fill(&log, "t", 20, 1000);
    let recs = read_all(&log, "t", 0);
    assert_eq!(offsets(&recs), (0..61).collect::<Vec<_>>());
    assert_eq!(recs[40].3.as_deref(), Some(&b"new"[..]));
    drop(log);
    let log = open(dir.path());
    assert!(
        log.recovery_report()[0].is_clean(),
        "{:?}",
        log.recovery_report()
    );
    assert_eq!(
        offsets(&read_all(&log, "t", 0)),
        (0..61).collect::<Vec<_>>()
    );
    log.truncate("t", 0, 0).unwrap();
    assert!(read_all(&log, "t", 0).is_empty());
    assert_eq!(log.append("t", 0, &[rec(1, b"x", b"y")]).unwrap(), 0);
}

/// Frames of records appended by `fill`: 36 bytes of overhead plus key and value.
fn frame_size(i: i64, keys: i64) -> u64 {
    36 + format!("k{}", i % keys).len() as u64 + format!("v{i}").len() as u64
}

#[test]
fn torn_tail_is_cut_at_every_byte_of_the_last_record() {
    let n = 50;
    let total: u64 = (0..n).map(|i| frame_size(i, 1000)).sum();
    let last = frame_size(n - 1, 1000);
    for cut in (total - last)..total {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open(dir.path());
            log.create_topic("t", &config(1 << 20)).unwrap();
            fill(&log, "t", n, 1000);
        }
        let seg = partition_dir(dir.path(), "t").join(format!("{:020}.log", 0));
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), total);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let log = open(dir.path());
        let report = &log.recovery_report()[0];
        assert_eq!(report.truncated_bytes, cut - (total - last), "cut {cut}");
        assert_eq!(report.end_offset, n - 1);
        assert_eq!(
            offsets(&read_all(&log, "t", 0)),
            (0..n - 1).collect::<Vec<_>>()
        );
        assert_eq!(
            log.append("t", 0, &[rec(1, b"k", b"again")]).unwrap(),
            n - 1
        );
        assert_eq!(read_all(&log, "t", 0).len() as i64, n);
    }
}

#[test]
fn garbage_and_wrong_offsets_after_the_last_record_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic("t", &config(1 << 20)).unwrap();
        fill(&log, "t", 10, 1000);
    }
    let seg = partition_dir(dir.path(), "t").join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let len = bytes.len();
    // A valid frame that repeats offset 3: a non-consecutive offset.
    let mut frame = Vec::new();
    super::record::encode(&rec(1, b"k", b"v"), 3, &mut frame);
    bytes.extend_from_slice(&frame);
    bytes.extend_from_slice(&[0xab; 100]);
    std::fs::write(&seg, &bytes).unwrap();
    let log = open(dir.path());
    assert_eq!(
        log.recovery_report()[0].truncated_bytes,
        (bytes.len() - len) as u64
    );
    assert_eq!(
        offsets(&read_all(&log, "t", 0)),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn flipped_byte_in_a_middle_record_stops_reads_there() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic("t", &config(1000)).unwrap();
        fill(&log, "t", 100, 1000);
    }
    let pdir = partition_dir(dir.path(), "t");
    // Flip a value byte of record 5, in the first (closed) segment.
    let seg = pdir.join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let at: u64 = (0..5).map(|i| frame_size(i, 1000)).sum::<u64>() + frame_size(5, 1000) - 2;
    bytes[at as usize] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let log = open(dir.path());
    let b = log.read("t", 0, 0, 1 << 20).unwrap();
    assert_eq!(
        offsets(
            &b.iter()
                .map(|r| (r.offset, 0, None, None))
                .collect::<Vec<_>>()
        ),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(b.next_offset, 5);
    let err = log.read("t", 0, 5, 1 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupt {
                offset: 5,
                partition: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "corrupt record at offset 5 in partition 0 of topic \"t\""
    );
    // Later segments still read.
    let last_base = log.read("t", 0, 99, 100).unwrap();
    assert_eq!(last_base.get(0).offset, 99);
    // Compaction refuses to rewrite around the bad record.
    assert_eq!(
        log.enforce_retention(0).unwrap(),
        RetentionReport::default()
    );
}

#[test]
fn flipped_byte_early_in_the_active_segment_is_found_by_reads() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic("t", &config(1 << 20)).unwrap();
        fill(&log, "t", 300, 1000); // about 15 KiB: index entries after the bad record
    }
    let seg = partition_dir(dir.path(), "t").join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let at: u64 = (0..20).map(|i| frame_size(i, 1000)).sum::<u64>() + 30;
    bytes[at as usize] ^= 0x80;
    std::fs::write(&seg, &bytes).unwrap();
    let log = open(dir.path());
    assert_eq!(log.recovery_report()[0].truncated_bytes, 0);
    let b = log.read("t", 0, 0, 1 << 20).unwrap();
    assert_eq!((b.len(), b.next_offset), (20, 20));
    assert!(matches!(
        log.read("t", 0, 20, 100).unwrap_err(),
        StorageError::Corrupt { offset: 20, .. }
    ));
    assert_eq!(log.read("t", 0, 250, 1).unwrap().get(0).offset, 250);
}

#[test]
fn truncate_into_a_compacted_segment_then_append_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cut;
    {
        let log = open(dir.path());
        let cfg = TopicConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..config(300)
        };
        log.create_topic("c", &cfg).unwrap();
        fill(&log, "c", 60, 3);
        log.enforce_retention(0).unwrap();
        let segs = files(&partition_dir(dir.path(), "c"), "log");
        let active_base: Offset = segs
            .last()
            .unwrap()
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // The last record of the closed segments; the compacted segment holding it starts with a gap.
        let recs = read_all(&log, "c", 0);
        let closed: Vec<_> = recs.iter().filter(|r| r.0 < active_base).collect();
        assert!(closed.len() >= 2 && segs.len() >= 2, "{closed:?}");
        cut = closed[closed.len() - 1].0;
        log.truncate("c", 0, cut).unwrap();
        assert_eq!(log.append("c", 0, &[rec(1, b"k0", b"after")]).unwrap(), cut);
    }
    let log = open(dir.path());
    assert!(
        log.recovery_report()[0].is_clean(),
        "{:?}",
        log.recovery_report()
    );
    let recs = read_all(&log, "c", 0);
    assert_eq!(recs.last().unwrap().0, cut);
    assert_eq!(recs.last().unwrap().3.as_deref(), Some(&b"after"[..]));
    assert_eq!(
        log.describe_topic("c").unwrap().partitions[0].end_offset,
        cut + 1
    );
}

#[test]
fn full_disk_is_its_own_error() {
    let err = StorageError::io(
        Path::new("/data/t/0/x.log"),
        std::io::ErrorKind::StorageFull.into(),
    );
    assert!(err.is_no_space());
    assert_eq!(
        err.to_string(),
        "no space left on device while writing /data/t/0/x.log"
    );
    let err = StorageError::io(Path::new("/x"), std::io::ErrorKind::PermissionDenied.into());
    assert_eq!(err.to_string(), "i/o error on /x");
}

#[test]
fn missing_or_damaged_index_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let log = open(dir.path());
        log.create_topic("t", &config(3000)).unwrap();
        fill(&log, "t", 300, 1000);
        before = read_all(&log, "t", 0);
    }
    let pdir = partition_dir(dir.path(), "t");
    let idx = files(&pdir, "index");
    assert!(idx.len() >= 3);
    std::fs::remove_file(&idx[0]).unwrap();
    std::fs::write(&idx[1], [0xffu8; 20]).unwrap(); // not a whole number of entries
    std::fs::remove_file(idx.last().unwrap()).unwrap();
    let log = open(dir.path());
    let rebuilt = &log.recovery_report()[0].rebuilt_indexes;
    assert_eq!(rebuilt.len(), 3, "{rebuilt:?}");
    assert_eq!(read_all(&log, "t", 0), before);
    for from in [0, 150, 299] {
        assert_eq!(log.read("t", 0, from, 1).unwrap().get(0).offset, from);
    }
    assert_eq!(log.offset_for_timestamp("t", 0, 1150).unwrap(), Some(150));
    assert_eq!(log.append("t", 0, &[rec(1, b"k", b"v")]).unwrap(), 300);
}

#[test]
fn retention_by_time_and_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let by_time = TopicConfig {
        retention_ms: Some(1000),
        ..config(300)
    };
    log.create_topic("time", &by_time).unwrap();
    fill(&log, "time", 100, 1000); // timestamps 1000..1100, about 6 records a segment
    assert_eq!(
        log.enforce_retention(0).unwrap(),
        RetentionReport::default()
    );
    // now - retention = 1050: segments whose newest record is older than 1050 go.
    let report = log.enforce_retention(2050).unwrap();
    assert!(
        report.segments_deleted > 0 && report.bytes_freed > 0,
        "{report:?}"
    );
    let info = log.describe_topic("time").unwrap().partitions[0];
    let recs = read_all(&log, "time", 0);
    assert_eq!(recs[0].0, info.start_offset);
    assert!(
        info.start_offset > 40 && info.start_offset <= 50,
        "{info:?}"
    );
    assert!(
        recs.iter().all(|r| r.0 >= info.start_offset)
            && recs.len() as i64 == 100 - info.start_offset
    );
    // Everything expired: only the active segment stays.
    log.enforce_retention(i64::MAX).unwrap();
    let segs = files(&partition_dir(dir.path(), "time"), "log");
    assert_eq!(segs.len(), 1);
    assert_eq!(
        log.read("time", 0, 0, 100).unwrap().get(0).offset,
        read_all(&log, "time", 0)[0].0
    );

    let by_size = TopicConfig {
        retention_bytes: Some(1000),
        ..config(300)
    };
    log.create_topic("size", &by_size).unwrap();
    fill(&log, "size", 100, 1000);
    log.enforce_retention(0).unwrap();
    let info = log.describe_topic("size").unwrap().partitions[0];
    assert!(info.size_bytes <= 1000 && info.size_bytes > 500, "{info:?}");
    assert_eq!(info.end_offset, 100);
    assert_eq!(
        read_all(&log, "size", 0).len() as i64,
        100 - info.start_offset
    );
    // Reading below the start reads from the start.
    assert_eq!(
        log.read("size", 0, 0, 1).unwrap().get(0).offset,
        info.start_offset
    );
}

#[test]
fn compaction_keeps_the_latest_record_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let cfg = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..config(400)
    };
    log.create_topic("c", &cfg).unwrap();
    fill(&log, "c", 200, 5); // keys k0..k4
    log.append(
        "c",
        0,
        &[RecordIn {
            timestamp: 1,
            key: None,
            value: Some(b"nokey"),
            headers: &[],
        }],
    )
    .unwrap();
    log.append(
        "c",
        0,
        &[RecordIn {
            timestamp: 1,
            key: Some(b"k0"),
            value: None,
            headers: &[],
        }],
    )
    .unwrap();
    fill(&log, "c", 30, 1000); // pushes the tombstone into a closed segment, older than the newest one
    let before = read_all(&log, "c", 0);
    let report = log.enforce_retention(0).unwrap();
    assert!(
        report.records_compacted > 150 && report.bytes_freed > 0,
        "{report:?}"
    );
    let after = read_all(&log, "c", 0);
    assert!(after.len() < before.len());
    // Offsets are preserved and only superseded records went away.
    for r in &after {
        assert_eq!(before.iter().find(|b| b.0 == r.0), Some(r));
    }
    let latest = |key: &[u8]| {
        before
            .iter()
            .rev()
            .find(|r| r.2.as_deref() == Some(key))
            .cloned()
    };
    for k in ["k1", "k2", "k3", "k4"] {
        assert!(after.contains(&latest(k.as_bytes()).unwrap()), "{k}");
        assert_eq!(
            after
                .iter()
                .filter(|r| r.2.as_deref() == Some(k.as_bytes()))
                .count(),
            1,
            "{k}"
        );
    }
    assert!(after
        .iter()
        .any(|r| r.2.is_none() && r.3.as_deref() == Some(&b"nokey"[..])));
    assert_eq!(
        log.describe_topic("c").unwrap().partitions[0].end_offset,
        232
    );
    // Reads skip the gaps.
    let b = log.read("c", 0, 0, 1).unwrap();
    assert_eq!(b.get(0).offset, after[0].0);
    assert_eq!(b.next_offset, after[1].0);
    // A second pass with nothing new does nothing; reopening reads the same.
    assert_eq!(
        log.enforce_retention(0).unwrap(),
        RetentionReport::default()
    );
    drop(log);
    let log = open(dir.path());
    assert!(
        log.recovery_report()[0].is_clean(),
        "{:?}",
        log.recovery_report()
    );
    assert_eq!(read_all(&log, "c", 0), after);
    assert_eq!(log.append("c", 0, &[rec(1, b"k1", b"x")]).unwrap(), 232);
}

#[test]
fn compaction_with_more_keys_than_its_map_holds_goes_on_in_passes() {
    // Tests map 1,000 keys a pass: 2,500 keys written twice take several passes, each keeping
    // every record that is the latest of its key.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let cfg = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..config(4000)
    };
    log.create_topic("c", &cfg).unwrap();
    // Every seventh record deletes its key.
    for i in 0..5000i64 {
        let k = format!("k{}", i % 2500);
        let v = format!("v{i}");
        let value = (i % 7 != 3).then_some(v.as_bytes());
        log.append("c", 0, &[RecordIn { timestamp: 1000 + i, key: Some(k.as_bytes()), value, headers: &[] }]).unwrap();
    }
    fill(&log, "c", 100, 100_000); // k0..k99 once more, then closes the last segment of the rest
    let before = read_all(&log, "c", 0);
    // What a reader of the whole log ends up with: the latest value per key, deletes applied.
    let table = |recs: &[Rec]| {
        let mut t = std::collections::BTreeMap::new();
        for r in recs {
            match &r.3 {
                Some(v) => t.insert(r.2.clone(), v.clone()),
                None => t.remove(&r.2),
            };
        }
        t
    };
    let is_latest = |r: &Rec| !before.iter().any(|b| b.2 == r.2 && b.0 > r.0);
    let latest: Vec<Rec> = before.iter().filter(|r| is_latest(r)).cloned().collect();
    // A pass maps the next 1,000 dirty keys; the first maps k0..k999, whose later records it
    // has not seen, so it keeps their older ones.
    let mut superseded_left = Vec::new();
    for pass in 0..8 {
        log.enforce_retention(0).unwrap();
        let after = read_all(&log, "c", 0);
        // Nothing that is the latest value of its key ever goes (a delete may, once nothing older
        // of its key is left), and offsets stay.
        for r in latest.iter().filter(|r| r.3.is_some()) {
            assert!(after.contains(r), "pass {pass}: lost {r:?}");
        }
        assert!(table(&after) == table(&before), "pass {pass}: the latest values differ");
        for r in &after {
            assert_eq!(before.iter().find(|b| b.0 == r.0), Some(r));
        }
        superseded_left.push(after.iter().filter(|r| !is_latest(r)).count());
    }
    assert!(superseded_left[0] > 2000, "the first pass mapped more keys than its bound: {superseded_left:?}");
    // In the end only the latest records of the keys in the cleanable segments are left there:
    // the older round of every key below the newest segment is gone.
    let after = read_all(&log, "c", 0);
    let superseded = after.iter().filter(|r| !is_latest(r)).count();
    assert!(superseded < 200, "superseded records left after each pass: {superseded_left:?}");
    assert!(after.len() < before.len() * 6 / 10, "{} of {} records left", after.len(), before.len());
}

#[test]
fn compaction_drops_old_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let cfg = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..config(200)
    };
    log.create_topic("c", &cfg).unwrap();
    log.append("c", 0, &[rec(1, b"gone", b"v")]).unwrap();
    log.append(
        "c",
        0,
        &[RecordIn {
            timestamp: 2,
            key: Some(b"gone"),
            value: None,
            headers: &[],
        }],
    )
    .unwrap();
    fill(&log, "c", 40, 1000);
    log.enforce_retention(0).unwrap();
    let after = read_all(&log, "c", 0);
    assert!(
        after.iter().all(|r| r.2.as_deref() != Some(&b"gone"[..])),
        "{after:?}"
    );
    assert_eq!(
        log.describe_topic("c").unwrap().partitions[0].end_offset,
        42
    );
}

#[test]
fn listeners_see_every_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", &TopicConfig::new(2)).unwrap();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = seen.clone();
    log.add_listener(Arc::new(move |t: &str, p, end| {
        s.lock().push((t.to_string(), p, end))
    }));
    log.append("t", 1, &[rec(1, b"a", b"b"), rec(2, b"a", b"b")])
        .unwrap();
    log.append("t", 0, &[rec(1, b"a", b"b")]).unwrap();
    log.append("t", 0, &[]).unwrap();
    assert!(log.append("t", 5, &[rec(1, b"a", b"b")]).is_err());
    assert_eq!(
        *seen.lock(),
        [("t".to_string(), 1, 2), ("t".to_string(), 0, 1)]
    );
}

#[test]
fn names_topics_and_partitions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a b",
        "tópico",
        &"x".repeat(250),
        "a~b",
    ] {
        let err = log.create_topic(bad, &TopicConfig::new(1)).unwrap_err();
        assert_eq!(err.to_string(), format!("invalid topic name \"{bad}\""));
    }
    log.create_topic(&"x".repeat(249), &TopicConfig::new(1))
        .unwrap();
    log.create_topic("a.B_c-9", &TopicConfig::new(2)).unwrap();
    let err = log
        .create_topic("a.B_c-9", &TopicConfig::new(2))
        .unwrap_err();
    assert_eq!(err.to_string(), "topic \"a.B_c-9\" already exists");
    let err = log.create_topic("zero", &TopicConfig::new(0)).unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidTopicConfig { .. }),
        "{err}"
    );
    let err = log.read("nope", 0, 0, 1).unwrap_err();
    assert_eq!(err.to_string(), "unknown topic \"nope\"");
    let err = log.append("a.B_c-9", 3, &[rec(1, b"a", b"b")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "partition 3 of topic \"a.B_c-9\" does not exist (topic has 2 partitions)"
    );
    assert!(matches!(
        log.delete_topic("nope").unwrap_err(),
        StorageError::UnknownTopic { .. }
    ));
    let long_key = Header {
        key: "h".repeat(70_000),
        value: None,
    };
    let bad = RecordIn {
        timestamp: 0,
        key: None,
        value: None,
        headers: std::slice::from_ref(&long_key),
    };
    assert!(matches!(
        log.append("a.B_c-9", 0, &[bad]).unwrap_err(),
        StorageError::InvalidRecord { .. }
    ));
    assert_eq!(
        log.list_topics(),
        vec!["a.B_c-9".to_string(), "x".repeat(249)]
    );
    let err = FileLog::open(dir.path(), LogOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::LogLocked { .. }), "{err}");
}

#[test]
fn delete_and_recreate_a_topic() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", &TopicConfig::new(1)).unwrap();
    fill(&log, "t", 10, 3);
    log.delete_topic("t").unwrap();
    assert!(log.list_topics().is_empty());
    assert!(!dir.path().join("t").exists());
    log.create_topic("t", &TopicConfig::new(3)).unwrap();
    assert!(read_all(&log, "t", 0).is_empty());
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.describe_topic("t").unwrap().config.partitions, 3);
}

#[test]
fn fsync_policies_work() {
    for fsync in [FsyncPolicy::Never, FsyncPolicy::OnSync, FsyncPolicy::Always] {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = FileLog::open(dir.path(), LogOptions { fsync }).unwrap();
            log.create_topic("t", &config(200)).unwrap();
            fill(&log, "t", 20, 1000);
            log.sync().unwrap();
        }
        let log = open(dir.path());
        assert_eq!(read_all(&log, "t", 0).len(), 20, "{fsync:?}");
    }
}

#[test]
fn concurrent_appends_to_two_partitions_and_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()));
    log.create_topic(
        "t",
        &TopicConfig {
            segment_bytes: 64 << 10,
            ..TopicConfig::new(2)
        },
    )
    .unwrap();
    let seen_end = Arc::new(AtomicI64::new(0));
    let s = seen_end.clone();
    log.add_listener(Arc::new(move |_: &str, p, end| {
        if p == 0 {
            s.fetch_max(end, Ordering::Relaxed);
        }
    }));
    const BATCHES: i64 = 200;
    const PER: i64 = 50;
    let writers: Vec<_> = (0..2u32)
        .map(|p| {
            let log = log.clone();
            std::thread::spawn(move || {
                for b in 0..BATCHES {
                    let values: Vec<String> =
                        (0..PER).map(|i| format!("p{p}-{}", b * PER + i)).collect();
                    let recs: Vec<_> = values
                        .iter()
                        .map(|v| rec(b, b"key", v.as_bytes()))
                        .collect();
                    assert_eq!(log.append("t", p, &recs).unwrap(), b * PER);
                }
            })
        })
        .collect();
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut next = 0;
            while next < BATCHES * PER {
                let b = log.read("t", 0, next, 4096).unwrap();
                for r in b.iter() {
                    assert_eq!(r.offset, next);
                    assert_eq!(r.value.unwrap(), format!("p0-{next}").as_bytes());
                    next += 1;
                }
                assert_eq!(b.next_offset, next);
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    assert_eq!(seen_end.load(Ordering::Relaxed), BATCHES * PER);
    assert_eq!(read_all(&log, "t", 1).len() as i64, BATCHES * PER);
}
