//! The Kafka backend against real Kafka-protocol brokers on loopback: a capability probe (what
//! each test broker serves, which later tests consult), the topic log's round trip, and
//! transactions as the runtime uses them.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_kafka::{Cluster, KafkaLog, ProducerOptions, RdCluster, Tp};
use storage::{partition_for_key, Header, RecordIn, TopicAdmin, TopicConfig, TopicLog};
use support::{broker, unique, Kind};

fn cluster(addr: &str) -> Arc<dyn Cluster> {
    Arc::new(RdCluster::connect(addr, BTreeMap::new()).expect("connect"))
}

/// A record read back: (offset, key, value, headers).
type Read = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<Header>);

/// Reads a partition from `from` until `count` records came or 10 s passed.
fn read_n(log: &dyn TopicLog, topic: &str, p: u32, from: i64, count: usize) -> Vec<Read> {
    let mut out = Vec::new();
    let mut pos = from;
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < count && Instant::now() < deadline {
        let b = log.read(topic, p, pos, 1 << 20).expect("read");
        for r in b.iter() {
            out.push((r.offset, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec), r.headers()));
        }
        pos = b.next_offset;
    }
    out
}

/// What a broker serves, found by trying it. Printed, so that CI logs say which broker did what.
#[derive(Debug, Default)]
struct Capabilities {
    transactions: bool,
    hides_aborted: bool,
    right_end_offset: bool,
    compaction_config: bool,
}

fn probe(addr: &str) -> Capabilities {
    let c = cluster(addr);
    let mut caps = Capabilities::default();
    let t = unique("probe");
    let mut cfg = BTreeMap::new();
    cfg.insert("cleanup.policy".to_string(), "compact".to_string());
    c.create_topic(&t, 1, &cfg).expect("create topic");
    caps.compaction_config = c.topic(&t).expect("describe").config.get("cleanup.policy").is_some_and(|v| v == "compact");
    // End offset after multi-record batches.
    let p = c.producer(&ProducerOptions::default()).expect("producer");
    let recs: Vec<Vec<u8>> = (0..50).map(|i| format!("v{i}").into_bytes()).collect();
    let ins: Vec<RecordIn<'_>> = recs.iter().map(|v| RecordIn { timestamp: 1, key: None, value: Some(v), headers: &[] }).collect();
    p.send_and_wait(&t, 0, &ins).expect("produce 50");
    p.send_and_wait(&t, 0, &ins[..7]).expect("produce 7");
    caps.right_end_offset = c.watermarks(&Tp::new(&t, 0)).expect("watermarks").1 == 57;
    // Transactions: abort one, commit one.
    let tt = unique("probe-txn");
    c.create_topic(&tt, 1, &BTreeMap::new()).expect("create");
    let tp = c.producer(&ProducerOptions { transactional_id: Some(unique("probe-tid")), transaction_timeout: None }).expect("txn producer");
    if tp.init_transactions(Duration::from_secs(10)).is_ok() {
        caps.transactions = true;
        tp.begin_transaction().expect("begin");
        tp.send(&tt, 0, &[RecordIn { timestamp: 1, key: None, value: Some(b"aborted"), headers: &[] }]).expect("send");
        tp.abort_transaction(Duration::from_secs(10)).expect("abort");
        tp.begin_transaction().expect("begin");
        tp.send(&tt, 0, &[RecordIn { timestamp: 1, key: None, value: Some(b"committed"), headers: &[] }]).expect("send");
        tp.commit_transaction(Duration::from_secs(10)).expect("commit");
        let log = KafkaLog::new(c.clone(), "probe").expect("log");
        let got = read_n(&log, &tt, 0, 0, 2);
        let values: Vec<&[u8]> = got.iter().filter_map(|r| r.2.as_deref()).collect();
        caps.hides_aborted = values == [b"committed".as_slice()];
    }
    eprintln!("broker {addr}: {caps:?}");
    caps
}

#[test]
fn capability_probe_matches_what_kafka_md_says_of_each_broker() {
    if let Some(b) = broker(Kind::Transactions) {
        let caps = probe(&b.addr);
        assert!(caps.transactions, "nisshi 0.7.0 serves transactions");
    }
    if let Some(b) = broker(Kind::Offsets) {
        let caps = probe(&b.addr);
        assert!(caps.right_end_offset, "nisshi 0.8.1 reports the right end offset");
    }
}

#[test]
fn topic_log_round_trip_with_headers_null_keys_and_null_values() {
    let Some(b) = broker(Kind::Offsets) else { return };
    let log = KafkaLog::new(cluster(&b.addr), "rt").expect("log");
    let t = unique("rt");
    log.create_topic(&t, &TopicConfig::new(3)).expect("create");
    assert!(log.list_topics().contains(&t));
    let info = log.describe_topic(&t).expect("describe");
    assert_eq!(info.partitions.len(), 3);
    let hs = [Header { key: "h1".into(), value: Some(b"x".to_vec()) }, Header { key: "h2".into(), value: None }];
    let recs = [
        RecordIn { timestamp: 1000, key: Some(b"k1"), value: Some(b"v1"), headers: &hs },
        RecordIn { timestamp: 1001, key: None, value: Some(b"v2"), headers: &[] },
        RecordIn { timestamp: 1002, key: Some(b"k3"), value: None, headers: &[] },
    ];
    let first = log.append(&t, 1, &recs).expect("append");
    assert_eq!(first, 0);
    let got = read_n(&log, &t, 1, 0, 3);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], (0, Some(b"k1".to_vec()), Some(b"v1".to_vec()), hs.to_vec()));
    assert_eq!(got[1], (1, None, Some(b"v2".to_vec()), vec![]));
    assert_eq!(got[2], (2, Some(b"k3".to_vec()), None, vec![]));
    // Reading from the middle, and the end offset.
    let mid = read_n(&log, &t, 1, 1, 2);
    assert_eq!(mid.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(log.describe_topic(&t).expect("describe").partitions[1].end_offset, 3);
    // Timestamps.
    assert_eq!(log.offset_for_timestamp(&t, 1, 1001).expect("offset for ts"), Some(1));
    // Errors name what is wrong.
    let e = log.describe_topic("no-such-topic").expect_err("unknown topic");
    assert!(e.to_string().contains("no-such-topic"), "{e}");
    assert!(log.create_topic(&t, &TopicConfig::new(3)).is_err(), "an existing topic");
    log.delete_topic(&t).expect("delete");
}

#[test]
fn keys_land_in_the_partitions_java_clients_choose() {
    // librdkafka's `murmur2_random` partitioner is the Java client's default; records it places
    // by key must be in the partition Eddy computes for the key.
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let Some(b) = broker(Kind::Offsets) else { return };
    let log = KafkaLog::new(cluster(&b.addr), "part").expect("log");
    let t = unique("part");
    log.create_topic(&t, &TopicConfig::new(6)).expect("create");
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    let keys: Vec<String> = (0..60).map(|i| format!("key-{i}")).collect();
    for k in &keys {
        p.send(BaseRecord::<str, str>::to(&t).key(k.as_str()).payload(k.as_str())).expect("send");
    }
    p.flush(Duration::from_secs(10)).expect("flush");
    let mut seen = 0;
    for part in 0..6u32 {
        let end = log.describe_topic(&t).expect("describe").partitions[part as usize].end_offset as usize;
        for (_, k, _, _) in read_n(&log, &t, part, 0, end) {
            let k = k.expect("keyed");
            assert_eq!(partition_for_key(&k, 6), part, "key {}", String::from_utf8_lossy(&k));
            seen += 1;
        }
    }
    assert_eq!(seen, keys.len());
}

#[test]
fn internal_topics_live_under_the_service_id() {
    let Some(b) = broker(Kind::Offsets) else { return };
    let c = cluster(&b.addr);
    let a = KafkaLog::new(c.clone(), "svc_a").expect("log");
    let other = KafkaLog::new(c.clone(), "svc_b").expect("log");
    a.create_topic("_eddy_commands", &TopicConfig::new(1)).expect("create");
    let kafka_names: Vec<String> = c.list_topics().expect("list").into_iter().map(|t| t.name).collect();
    assert!(kafka_names.contains(&"_eddy-svc_a-commands".to_string()), "{kafka_names:?}");
    assert!(a.list_topics().contains(&"_eddy_commands".to_string()));
    assert!(!other.list_topics().iter().any(|t| t.starts_with("_eddy")), "another service's internal topics are not listed");
}
