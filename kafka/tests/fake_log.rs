//! [`KafkaLog`], the engine's topic log over Kafka, on the fake cluster: admin through Eddy's
//! names, records round trip, and reads over transactional topics, where offsets are not dense
//! and a caught-up reader must reach the end offset (the last stable offset).

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use eddy_kafka::fake::FakeCluster;
use eddy_kafka::{Cluster, KafkaLog, Producer, ProducerOptions, Tp};
use storage::{CleanupPolicy, Header, RecordIn, StorageError, TopicAdmin, TopicConfig, TopicLog};

const T: Duration = Duration::from_secs(5);

fn log(fake: &FakeCluster) -> KafkaLog {
    KafkaLog::new(fake.arc(), "svc").unwrap()
}

fn rec(v: &[u8]) -> RecordIn<'_> {
    RecordIn { timestamp: 7, key: Some(b"k"), value: Some(v), headers: &[] }
}

/// Reads a partition from `from` until a read returns nothing: the values and the offset after.
fn read_to_end(log: &KafkaLog, topic: &str, from: i64) -> (Vec<(i64, Vec<u8>)>, i64) {
    let mut out = Vec::new();
    let mut pos = from;
    loop {
        let b = log.read(topic, 0, pos, 1 << 20).unwrap();
        assert!(b.next_offset >= pos, "next_offset never goes back");
        let done = b.is_empty() && b.next_offset == pos;
        out.extend(b.iter().map(|r| (r.offset, r.value.unwrap().to_vec())));
        pos = b.next_offset;
        if done {
            return (out, pos);
        }
    }
}

fn txn(fake: &FakeCluster, tid: &str) -> Arc<dyn Producer> {
    let p = fake.producer(&ProducerOptions { transactional_id: Some(tid.into()), transaction_timeout: None }).unwrap();
    p.init_transactions(T).unwrap();
    p
}

#[test]
fn topics_are_administered_under_the_services_names() {
    let fake = FakeCluster::new();
    let log = log(&fake);
    let mut cfg = TopicConfig::new(3);
    cfg.cleanup_policy = CleanupPolicy::Compact;
    log.create_topic("_eddy_commands", &cfg).unwrap();
    log.create_topic("pageviews", &TopicConfig::new(2)).unwrap();
    fake.create_topic("_eddy-other-commands", 1, &BTreeMap::new()).unwrap();
    fake.create_topic("__consumer_offsets", 1, &BTreeMap::new()).unwrap();
    assert_eq!(log.list_topics(), vec!["_eddy_commands".to_string(), "pageviews".to_string()]);
    let kafka = fake.topic("_eddy-svc-commands").unwrap();
    assert_eq!((kafka.partitions, kafka.config["cleanup.policy"].as_str(), kafka.config["retention.ms"].as_str()), (3, "compact", "-1"));
    let info = log.describe_topic("_eddy_commands").unwrap();
    assert_eq!(info.config.partitions, 3);
    assert_eq!(info.config.cleanup_policy, CleanupPolicy::Compact);
    assert_eq!(info.config.retention_ms, None, "kept forever, as Eddy asked");
    assert!(matches!(log.create_topic("pageviews", &TopicConfig::new(2)), Err(StorageError::TopicExists { .. })));
    assert!(matches!(log.describe_topic("nope"), Err(StorageError::UnknownTopic { topic }) if topic == "nope"));
    log.delete_topic("pageviews").unwrap();
    assert!(matches!(log.delete_topic("pageviews"), Err(StorageError::UnknownTopic { .. })));
    assert!(log.create_topic("x", &TopicConfig::new(0)).is_err());
    assert!(!log.can_truncate());
    assert!(log.truncate("_eddy_commands", 0, 0).is_err());
}

#[test]
fn records_round_trip_with_headers_null_keys_and_values() {
    let fake = FakeCluster::new();
    let log = log(&fake);
    log.create_topic("t", &TopicConfig::new(2)).unwrap();
    let hs = vec![Header { key: "a".into(), value: Some(b"1".to_vec()) }, Header { key: "n".into(), value: None }];
    let recs = [
        RecordIn { timestamp: 10, key: None, value: Some(b"v0"), headers: &hs },
        RecordIn { timestamp: 20, key: Some(b"k1"), value: None, headers: &[] },
    ];
    assert_eq!(log.append("t", 1, &recs).unwrap(), 0);
    assert_eq!(log.append("t", 1, &recs[..1]).unwrap(), 2);
    let b = log.read("t", 1, 0, 1 << 20).unwrap();
    let got: Vec<_> = b.iter().map(|r| (r.offset, r.timestamp, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec), r.headers())).collect();
    assert_eq!(got[0], (0, 10, None, Some(b"v0".to_vec()), hs.clone()));
    assert_eq!(got[1], (1, 20, Some(b"k1".to_vec()), None, vec![]));
    assert_eq!(b.next_offset, 3);
    // A small budget still returns one record; the next read goes on from there.
    let b = log.read("t", 1, 1, 1).unwrap();
    assert_eq!((b.len(), b.next_offset), (1, 2));
    assert_eq!(log.read("t", 1, 3, 1 << 20).unwrap().next_offset, 3, "at the end: empty");
    assert_eq!(log.offset_for_timestamp("t", 1, 15).unwrap(), Some(1));
    assert!(matches!(log.append("t", 2, &recs), Err(StorageError::UnknownPartition { partitions: 2, .. })));
    assert_eq!(log.describe_topic("t").unwrap().partitions[1].end_offset, 3);
}

#[test]
fn a_record_too_large_for_the_broker_is_refused_by_name() {
    let fake = FakeCluster::new();
    let mut cfg = BTreeMap::new();
    cfg.insert("max.message.bytes".to_string(), "100".to_string());
    fake.create_topic("t", 1, &cfg).unwrap();
    let log = log(&fake);
    let e = log.append("t", 0, &[rec(&[0; 200])]).unwrap_err();
    assert!(matches!(&e, StorageError::InvalidRecord { topic, .. } if topic == "t"), "{e}");
    assert!(e.to_string().contains("larger than the Kafka broker accepts"), "{e}");
}

#[test]
fn reads_skip_aborted_records_and_markers_and_reach_the_end_offset() {
    let fake = FakeCluster::new();
    let log = log(&fake);
    log.create_topic("t", &TopicConfig::new(1)).unwrap();
    let p = txn(&fake, "w");
    log.append("t", 0, &[rec(b"plain0")]).unwrap(); // 0
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"gone1"), rec(b"gone2")]).unwrap(); // 1, 2
    p.abort_transaction(T).unwrap(); // 3
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"kept4")]).unwrap(); // 4
    p.commit_transaction(T).unwrap(); // 5
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"gone6")]).unwrap(); // 6
    p.abort_transaction(T).unwrap(); // 7
    let end = log.describe_topic("t").unwrap().partitions[0].end_offset;
    assert_eq!(end, 8);
    let (got, pos) = read_to_end(&log, "t", 0);
    assert_eq!(got, vec![(0, b"plain0".to_vec()), (4, b"kept4".to_vec())]);
    assert_eq!(pos, end, "a caught-up reader stands at the end offset, past markers and aborted records");
    // A read that starts inside the aborted records goes on from the next visible one.
    let (got, pos) = read_to_end(&log, "t", 2);
    assert_eq!((got, pos), (vec![(4, b"kept4".to_vec())], end));
}

#[test]
fn reads_stop_at_an_open_transaction_and_go_on_when_it_commits() {
    let fake = FakeCluster::new();
    let log = log(&fake);
    log.create_topic("t", &TopicConfig::new(1)).unwrap();
    let p = txn(&fake, "w");
    log.append("t", 0, &[rec(b"a")]).unwrap(); // 0
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"b")]).unwrap(); // 1
    log.append("t", 0, &[rec(b"c")]).unwrap(); // 2: behind the open transaction
    let (got, pos) = read_to_end(&log, "t", 0);
    assert_eq!((got.len(), pos), (1, 1));
    assert_eq!(log.describe_topic("t").unwrap().partitions[0].end_offset, 1, "the end is the last stable offset");
    p.commit_transaction(T).unwrap(); // 3
    let (got, pos) = read_to_end(&log, "t", pos);
    assert_eq!(got, vec![(1, b"b".to_vec()), (2, b"c".to_vec())]);
    assert_eq!(pos, 4);
    assert_eq!(fake.watermarks(&Tp::new("t", 0)).unwrap(), (0, 4));
}

#[test]
fn many_threads_read_one_partition_at_their_own_offsets() {
    let fake = FakeCluster::new();
    let log = Arc::new(log(&fake));
    log.create_topic("t", &TopicConfig::new(1)).unwrap();
    for i in 0..200u32 {
        log.append("t", 0, &[rec(&i.to_be_bytes())]).unwrap();
    }
    let threads: Vec<_> = (0..6i64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut pos = t * 10;
                let mut seen = Vec::new();
                while pos < 200 {
                    let b = log.read("t", 0, pos, 16).unwrap();
                    seen.extend(b.iter().map(|r| r.offset));
                    pos = b.next_offset;
                }
                seen
            })
        })
        .collect();
    for (t, h) in threads.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), ((t as i64 * 10)..200).collect::<Vec<_>>());
    }
}
