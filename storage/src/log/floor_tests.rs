//! Tests of cleaning passes limited by floors ([`TopicLog::clean_topic`]): nothing at or after a
//! partition's floor is deleted or compacted, whatever the policy.

use super::*;

type Rec = (Offset, Option<Vec<u8>>, Option<Vec<u8>>);

fn topic(log: &FileLog, name: &str, policy: CleanupPolicy, retention_ms: Option<i64>) {
    let cfg = TopicConfig {
        cleanup_policy: policy,
        retention_ms,
        segment_bytes: 300,
        ..TopicConfig::new(1)
    };
    log.create_topic(name, &cfg).unwrap();
}

/// `n` records, one append each: key `k{i % keys}`, value `v{i}`, timestamp `1000 + i`.
fn fill(log: &FileLog, topic: &str, n: i64, keys: i64) {
    for i in 0..n {
        let (k, v) = (format!("k{}", i % keys), format!("v{i}"));
        let r = RecordIn { timestamp: 1000 + i, key: Some(k.as_bytes()), value: Some(v.as_bytes()), headers: &[] };
        log.append(topic, 0, &[r]).unwrap();
    }
}

fn read_all(log: &FileLog, topic: &str) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let b = log.read(topic, 0, from, 1 << 16).unwrap();
        if b.is_empty() {
            return out;
        }
        out.extend(b.iter().map(|r| (r.offset, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec))));
        from = b.next_offset;
    }
}

fn clean(log: &FileLog, topic: &str, now_ms: i64, floor: Offset, delete_consumed: bool) -> RetentionReport {
    let request = CleanRequest { now_ms, floors: vec![floor], delete_consumed };
    log.clean_topic(topic, &request).unwrap()
}

#[test]
fn delete_keeps_every_segment_reaching_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), LogOptions::default()).unwrap();
    topic(&log, "t", CleanupPolicy::Delete, Some(1000));
    fill(&log, "t", 100, 1000);
    // Everything is past retention, but a reader is at offset 30.
    let report = clean(&log, "t", i64::MAX, 30, false);
    assert!(report.segments_deleted > 0, "{report:?}");
    let start = log.describe_topic("t").unwrap().partitions[0].start_offset;
    assert!(start > 15 && start <= 30, "start {start}");
    let recs = read_all(&log, "t");
    assert_eq!(recs.first().map(|r| r.0), Some(start));
    assert_eq!(recs.len() as i64, 100 - start);
    // The reader moves on: the log follows it, never past it.
    clean(&log, "t", i64::MAX, 70, false);
    let start = log.describe_topic("t").unwrap().partitions[0].start_offset;
    assert!(start > 50 && start <= 70, "start {start}");
    // Time retention still applies below the floor: nothing is older than now - 1000 here.
    assert_eq!(clean(&log, "t", 1500, 100, false), RetentionReport::default());
}

#[test]
fn delete_consumed_drops_what_every_reader_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), LogOptions::default()).unwrap();
    topic(&log, "rp", CleanupPolicy::Delete, None);
    fill(&log, "rp", 100, 1000);
    assert_eq!(clean(&log, "rp", 0, 50, false), RetentionReport::default(), "kept forever without delete_consumed");
    let report = clean(&log, "rp", 0, 50, true);
    assert!(report.segments_deleted > 0 && report.bytes_freed > 0, "{report:?}");
    let start = log.describe_topic("rp").unwrap().partitions[0].start_offset;
    assert!(start > 35 && start <= 50, "start {start}");
    assert_eq!(read_all(&log, "rp").len() as i64, 100 - start);
}

#[test]
fn compaction_leaves_records_at_and_after_the_floor_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), LogOptions::default()).unwrap();
    topic(&log, "c", CleanupPolicy::Compact, None);
    fill(&log, "c", 120, 3);
    let before = read_all(&log, "c");
    let floor = 60;
    let report = clean(&log, "c", 0, floor, false);
    assert!(report.records_compacted > 0, "{report:?}");
    let after = read_all(&log, "c");
    // At and after the floor: every record as it was.
    let tail = |v: &[Rec]| v.iter().filter(|r| r.0 >= floor).cloned().collect::<Vec<_>>();
    assert_eq!(tail(&after), tail(&before));
    // Below it (the segment reaching the floor, about 7 records, is left alone too): at most one
    // record per key.
    let head: Vec<&Rec> = after.iter().filter(|r| r.0 < floor - 12).collect();
    for k in ["k0", "k1", "k2"] {
        assert!(head.iter().filter(|r| r.1.as_deref() == Some(k.as_bytes())).count() <= 1, "{k}: {head:?}");
    }
    assert!(after.len() < before.len());
    // Nothing new below the floor: a second pass does nothing; a higher floor compacts further.
    assert_eq!(clean(&log, "c", 0, floor, false), RetentionReport::default());
    assert!(clean(&log, "c", 0, 120, false).records_compacted > 0);
    let after = read_all(&log, "c");
    for k in ["k0", "k1", "k2"] {
        let latest = before.iter().rev().find(|r| r.1.as_deref() == Some(k.as_bytes())).unwrap();
        assert!(after.contains(latest), "{k}");
    }
}

#[test]
fn compact_delete_compacts_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), LogOptions::default()).unwrap();
    topic(&log, "cd", CleanupPolicy::CompactDelete, Some(1000));
    fill(&log, "cd", 100, 1000);
    fill(&log, "cd", 100, 1000); // the same keys again, later offsets, timestamps 1000..1100 again
    let before = read_all(&log, "cd");
    // Compaction removes the first round (superseded); time retention then finds nothing old
    // enough at now = 1500.
    let report = clean(&log, "cd", 1500, Offset::MAX, false);
    assert!(report.records_compacted >= 80, "{report:?}");
    let after = read_all(&log, "cd");
    assert!(after.len() < before.len() && after.iter().all(|r| r.0 >= 80), "{:?}", after.first());
    // Later everything closed is past retention.
    clean(&log, "cd", 10_000, Offset::MAX, false);
    assert!(log.describe_topic("cd").unwrap().partitions[0].start_offset > 150);
}

#[test]
fn policy_names_are_kafkas() {
    for p in [CleanupPolicy::Delete, CleanupPolicy::Compact, CleanupPolicy::CompactDelete] {
        assert_eq!(CleanupPolicy::from_kafka_name(p.kafka_name()), Some(p));
    }
    assert_eq!(CleanupPolicy::from_kafka_name(" Delete , COMPACT"), Some(CleanupPolicy::CompactDelete));
    assert_eq!(CleanupPolicy::from_kafka_name("compacted"), None);
    assert_eq!(CleanupPolicy::from_kafka_name(""), None);
}
