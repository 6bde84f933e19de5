//! The fake's semantics, pinned: topics, offsets and watermarks, idempotent and transactional
//! producers (markers, last stable offset, fencing, timeouts, offsets in transactions), readers,
//! consumer groups (eager range rebalances, session timeouts, static membership), faults.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use storage::{Header, RecordIn};

use super::*;
use crate::client::{GroupEvent, GroupOptions, Producer, ProducerOptions, Tp};
use crate::error::KafkaError;

const T: Duration = Duration::from_secs(5);

fn rec(v: &[u8]) -> RecordIn<'_> {
    RecordIn { timestamp: 100, key: Some(b"k"), value: Some(v), headers: &[] }
}

fn txn_opts(tid: &str) -> ProducerOptions {
    ProducerOptions { transactional_id: Some(tid.into()), transaction_timeout: Some(Duration::from_secs(60)) }
}

fn cluster_with(topics: &[(&str, u32)]) -> FakeCluster {
    let c = FakeCluster::new();
    for (t, n) in topics {
        c.create_topic(t, *n, &BTreeMap::new()).unwrap();
    }
    c
}

fn txn_producer(c: &FakeCluster, tid: &str) -> Arc<dyn Producer> {
    let p = c.producer(&txn_opts(tid)).unwrap();
    p.init_transactions(T).unwrap();
    p
}

fn values(c: &FakeCluster, tp: &Tp) -> Vec<(i64, Vec<u8>)> {
    c.committed_records(tp).into_iter().map(|f| (f.offset, f.value.unwrap_or_default())).collect()
}

fn read_all(r: &mut dyn PartitionReader) -> Vec<(i64, Vec<u8>)> {
    r.poll(Duration::ZERO, usize::MAX).unwrap().into_iter().map(|f| (f.offset, f.value.unwrap_or_default())).collect()
}

fn group_opts(group: &str, topics: &[&str], instance: Option<&str>) -> GroupOptions {
    GroupOptions {
        group_id: group.into(),
        instance_id: instance.map(str::to_string),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        session_timeout: Duration::from_secs(10),
    }
}

fn events(c: &mut dyn GroupConsumer) -> Vec<GroupEvent> {
    c.poll(Duration::ZERO, 100).unwrap().events
}

fn tps(list: &[(&str, u32)]) -> Vec<Tp> {
    list.iter().map(|(t, p)| Tp::new(*t, *p)).collect()
}

// ---- topics ----

#[test]
fn topics_are_created_listed_described_and_deleted_with_kafkas_errors() {
    let c = FakeCluster::new();
    let mut cfg = BTreeMap::new();
    cfg.insert("cleanup.policy".to_string(), "compact".to_string());
    c.create_topic("b", 3, &cfg).unwrap();
    c.create_topic("a", 1, &BTreeMap::new()).unwrap();
    assert!(matches!(c.create_topic("a", 1, &BTreeMap::new()), Err(KafkaError::TopicExists(t)) if t == "a"));
    let listed: Vec<(String, u32)> = c.list_topics().unwrap().into_iter().map(|t| (t.name, t.partitions)).collect();
    assert_eq!(listed, vec![("a".to_string(), 1), ("b".to_string(), 3)]);
    let b = c.topic("b").unwrap();
    assert_eq!(b.partitions, 3);
    assert_eq!(b.config["cleanup.policy"], "compact");
    assert_eq!(b.config["retention.ms"], "604800000", "Kafka's default is described");
    assert!(matches!(c.topic("zz"), Err(KafkaError::UnknownTopic(t)) if t == "zz"));
    c.delete_topic("a").unwrap();
    assert!(matches!(c.delete_topic("a"), Err(KafkaError::UnknownTopic(_))));
    assert_eq!(c.list_topics().unwrap().len(), 1);
    // The data path reports missing partitions as librdkafka does.
    let e = c.watermarks(&Tp::new("a", 0)).unwrap_err();
    assert!(e.to_string().contains("unknown topic or partition"), "{e}");
    assert!(c.watermarks(&Tp::new("b", 3)).is_err());
}

#[test]
fn bad_topics_are_refused_with_the_reason() {
    let c = FakeCluster::new();
    let bad = |name: &str, n: u32, cfg: &[(&str, &str)]| {
        let cfg: BTreeMap<String, String> = cfg.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match c.create_topic(name, n, &cfg) {
            Err(KafkaError::CreateTopic { message, .. }) => message,
            other => panic!("{name}: {other:?}"),
        }
    };
    assert!(bad("a b", 1, &[]).contains("illegal"));
    assert!(bad("", 1, &[]).contains("empty"));
    assert!(bad("x", 0, &[]).contains("partitions"));
    assert!(bad("x", 1, &[("cleanup.policy", "shred")]).contains("cleanup.policy"));
    assert!(bad("x", 1, &[("retention.ms", "soon")]).contains("retention.ms"));
    assert!(bad("x", 1, &[("colour", "red")]).contains("unknown topic config"));
    assert!(c.list_topics().unwrap().is_empty(), "nothing half-created");
}

#[test]
fn records_keep_offsets_timestamps_keys_values_and_headers() {
    let c = cluster_with(&[("t", 2)]);
    let p = c.producer(&ProducerOptions::default()).unwrap();
    let hs = vec![Header { key: "h".into(), value: Some(b"1".to_vec()) }, Header { key: "n".into(), value: None }];
    let recs = [
        RecordIn { timestamp: 10, key: None, value: Some(b"a"), headers: &hs },
        RecordIn { timestamp: 20, key: Some(b"k"), value: None, headers: &[] },
    ];
    assert_eq!(p.send_and_wait("t", 1, &recs).unwrap(), 0);
    assert_eq!(p.send_and_wait("t", 1, &recs[..1]).unwrap(), 2);
    p.send("t", 0, &recs[..1]).unwrap();
    p.flush(T).unwrap();
    let got = c.committed_records(&Tp::new("t", 1));
    assert_eq!(got.len(), 3);
    assert_eq!((got[0].offset, got[0].timestamp, got[0].key.clone(), got[0].value.clone()), (0, 10, None, Some(b"a".to_vec())));
    assert_eq!(got[0].headers, hs);
    assert_eq!((got[1].offset, got[1].timestamp, got[1].key.clone(), got[1].value.clone()), (1, 20, Some(b"k".to_vec()), None));
    assert_eq!(c.watermarks(&Tp::new("t", 1)).unwrap(), (0, 3));
    assert_eq!(c.watermarks(&Tp::new("t", 0)).unwrap(), (0, 1));
    assert_eq!(p.send_and_wait("t", 0, &[]).unwrap(), -1);
    assert!(p.send("t", 2, &recs).unwrap_err().to_string().contains("unknown topic or partition"));
}

#[test]
fn records_over_max_message_bytes_are_refused() {
    let c = FakeCluster::new();
    let mut cfg = BTreeMap::new();
    cfg.insert("max.message.bytes".to_string(), "10".to_string());
    c.create_topic("t", 1, &cfg).unwrap();
    let p = c.producer(&ProducerOptions::default()).unwrap();
    let big = [0u8; 11];
    assert!(matches!(p.send_and_wait("t", 0, &[rec(&big)]), Err(KafkaError::RecordTooLarge { bytes: 12, .. })));
    assert_eq!(c.log_end(&Tp::new("t", 0)), Some(0));
}

#[test]
fn offset_for_timestamp_is_the_first_offset_at_or_after_below_the_stable_offset() {
    let c = cluster_with(&[("t", 1)]);
    let p = c.producer(&ProducerOptions::default()).unwrap();
    let at = |ts| RecordIn { timestamp: ts, key: None, value: Some(b"v"), headers: &[] };
    p.send_and_wait("t", 0, &[at(10), at(30), at(20), at(40)]).unwrap();
    let tp = Tp::new("t", 0);
    assert_eq!(c.offset_for_timestamp(&tp, 5).unwrap(), Some(0));
    assert_eq!(c.offset_for_timestamp(&tp, 25).unwrap(), Some(1));
    assert_eq!(c.offset_for_timestamp(&tp, 40).unwrap(), Some(3));
    assert_eq!(c.offset_for_timestamp(&tp, 41).unwrap(), None);
    // A record of an open transaction is past the last stable offset: not an answer yet.
    let tx = txn_producer(&c, "x");
    tx.begin_transaction().unwrap();
    tx.send("t", 0, &[at(50)]).unwrap();
    assert_eq!(c.offset_for_timestamp(&tp, 45).unwrap(), None);
    tx.commit_transaction(T).unwrap();
    assert_eq!(c.offset_for_timestamp(&tp, 45).unwrap(), Some(4));
}

// ---- transactions ----

#[test]
fn a_transaction_takes_offsets_at_send_and_becomes_visible_at_its_commit_marker() {
    let c = cluster_with(&[("t", 1)]);
    let tp = Tp::new("t", 0);
    let p = txn_producer(&c, "tx");
    p.begin_transaction().unwrap();
    assert_eq!(p.send_and_wait("t", 0, &[rec(b"a"), rec(b"b")]).unwrap(), 0);
    assert_eq!(c.log_end(&tp), Some(2), "written at send time");
    assert_eq!(c.watermarks(&tp).unwrap(), (0, 0), "the open transaction holds the stable offset back");
    let mut r = c.reader().unwrap();
    r.assign(&[(tp.clone(), 0)]).unwrap();
    assert!(read_all(r.as_mut()).is_empty());
    assert_eq!(r.position(&tp).unwrap(), Some(0));
    p.commit_transaction(T).unwrap();
    assert_eq!(c.watermarks(&tp).unwrap(), (0, 3), "the commit marker takes offset 2");
    assert_eq!(read_all(r.as_mut()), vec![(0, b"a".to_vec()), (1, b"b".to_vec())]);
    assert_eq!(r.position(&tp).unwrap(), Some(3), "past the marker");
    let log = c.log_entries(&tp);
    assert_eq!(log[2].kind, EntryKind::Marker { commit: true });
    assert_eq!(log[0].txn, Some(TxnOutcome::Committed));
}

#[test]
fn aborted_records_are_never_delivered_and_offsets_are_not_dense() {
    let c = cluster_with(&[("t", 1)]);
    let tp = Tp::new("t", 0);
    let p = txn_producer(&c, "tx");
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"gone1"), rec(b"gone2")]).unwrap();
    p.abort_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"kept")]).unwrap();
    p.commit_transaction(T).unwrap();
    assert_eq!(c.watermarks(&tp).unwrap(), (0, 5));
    assert_eq!(values(&c, &tp), vec![(3, b"kept".to_vec())]);
    let mut r = c.reader().unwrap();
    r.assign(&[(tp.clone(), 0)]).unwrap();
    assert_eq!(read_all(r.as_mut()), vec![(3, b"kept".to_vec())]);
    assert_eq!(r.position(&tp).unwrap(), Some(5));
    // A reader whose partition ends in an aborted transaction moves past it with nothing to hand out.
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"gone3")]).unwrap();
    p.abort_transaction(T).unwrap();
    assert!(read_all(r.as_mut()).is_empty());
    assert_eq!(r.position(&tp).unwrap(), Some(7));
}

#[test]
fn the_oldest_open_transaction_holds_back_everything_after_it() {
    let c = cluster_with(&[("t", 1)]);
    let tp = Tp::new("t", 0);
    let a = txn_producer(&c, "a");
    let b = txn_producer(&c, "b");
    let plain = c.producer(&ProducerOptions::default()).unwrap();
    a.begin_transaction().unwrap();
    b.begin_transaction().unwrap();
    a.send("t", 0, &[rec(b"a0")]).unwrap(); // 0
    b.send("t", 0, &[rec(b"b1")]).unwrap(); // 1
    plain.send_and_wait("t", 0, &[rec(b"p2")]).unwrap(); // 2
    b.commit_transaction(T).unwrap(); // marker 3
    assert_eq!(c.watermarks(&tp).unwrap(), (0, 0));
    assert!(values(&c, &tp).is_empty());
    a.commit_transaction(T).unwrap(); // marker 4
    assert_eq!(c.watermarks(&tp).unwrap(), (0, 5));
    assert_eq!(values(&c, &tp), vec![(0, b"a0".to_vec()), (1, b"b1".to_vec()), (2, b"p2".to_vec())]);
    // Other partitions are not held back.
    c.create_topic("u", 2, &BTreeMap::new()).unwrap();
    a.begin_transaction().unwrap();
    a.send("u", 0, &[rec(b"x")]).unwrap();
    plain.send_and_wait("u", 1, &[rec(b"y")]).unwrap();
    assert_eq!(c.watermarks(&Tp::new("u", 0)).unwrap(), (0, 0));
    assert_eq!(c.watermarks(&Tp::new("u", 1)).unwrap(), (0, 1));
}

#[test]
fn init_transactions_fences_the_older_producer_and_aborts_its_transaction() {
    let c = cluster_with(&[("t", 1), ("u", 1)]);
    let tp = Tp::new("t", 0);
    let old = txn_producer(&c, "task");
    assert_eq!(c.producer_epoch("task"), Some(0));
    old.begin_transaction().unwrap();
    old.send("t", 0, &[rec(b"zombie")]).unwrap();
    let new = txn_producer(&c, "task");
    assert_eq!(c.producer_epoch("task"), Some(1));
    assert!(!c.has_open_transaction("task"), "the old transaction was aborted");
    assert_eq!(c.watermarks(&tp).unwrap(), (0, 2), "the record and the abort marker");
    assert!(values(&c, &tp).is_empty());
    // Every later call of the old producer is refused, and nothing it sends is written.
    assert!(old.send("u", 0, &[rec(b"more")]).unwrap_err().is_fenced());
    assert_eq!(c.log_end(&Tp::new("u", 0)), Some(0));
    assert!(old.commit_transaction(T).unwrap_err().is_fenced());
    assert!(old.abort_transaction(T).unwrap_err().is_fenced());
    assert!(old.begin_transaction().unwrap_err().is_fenced());
    // The new one works.
    new.begin_transaction().unwrap();
    new.send("t", 0, &[rec(b"ok")]).unwrap();
    new.commit_transaction(T).unwrap();
    assert_eq!(values(&c, &tp), vec![(2, b"ok".to_vec())]);
}

#[test]
fn a_fenced_producer_learns_it_at_its_next_broker_call_not_at_begin() {
    let c = cluster_with(&[("t", 1)]);
    let old = txn_producer(&c, "task");
    let _new = txn_producer(&c, "task");
    // begin_transaction is local in librdkafka: it succeeds; the first send finds the fence.
    old.begin_transaction().unwrap();
    assert!(old.send("t", 0, &[rec(b"x")]).unwrap_err().is_fenced());
    assert_eq!(c.log_end(&Tp::new("t", 0)), Some(0));
}

#[test]
fn the_transactional_state_machine_refuses_calls_out_of_order() {
    let c = cluster_with(&[("t", 1)]);
    let p = c.producer(&txn_opts("tx")).unwrap();
    let other = |e: KafkaError| matches!(e, KafkaError::Other { .. });
    assert!(other(p.begin_transaction().unwrap_err()), "before init");
    assert!(other(p.send("t", 0, &[rec(b"x")]).unwrap_err()), "before init");
    p.init_transactions(T).unwrap();
    assert!(other(p.init_transactions(T).unwrap_err()), "init twice");
    assert!(other(p.send("t", 0, &[rec(b"x")]).unwrap_err()), "outside a transaction");
    assert!(other(p.commit_transaction(T).unwrap_err()), "no transaction");
    p.begin_transaction().unwrap();
    assert!(other(p.begin_transaction().unwrap_err()), "begin twice");
    p.commit_transaction(T).unwrap();
    let idem = c.producer(&ProducerOptions::default()).unwrap();
    assert!(idem.init_transactions(T).unwrap_err().to_string().contains("transactional.id"));
    assert_eq!(c.log_end(&Tp::new("t", 0)), Some(0), "an empty transaction writes no marker");
}

#[test]
fn offsets_sent_to_a_transaction_commit_with_it_or_not_at_all() {
    let c = cluster_with(&[("in", 1), ("out", 1)]);
    let inp = Tp::new("in", 0);
    let p = txn_producer(&c, "tx");
    let g = c.group_meta("grp").unwrap();
    p.begin_transaction().unwrap();
    p.send("out", 0, &[rec(b"x")]).unwrap();
    p.send_offsets_to_transaction(&[(inp.clone(), 7)], &g, T).unwrap();
    assert!(c.group_offsets("grp").is_empty());
    // A read_committed consumer asking meanwhile gets UNSTABLE_OFFSET_COMMIT (retriable).
    let mut m = c.group_consumer(&group_opts("grp", &["in"], None)).unwrap();
    assert!(m.committed(std::slice::from_ref(&inp), T).unwrap_err().is_retriable());
    p.abort_transaction(T).unwrap();
    assert_eq!(m.committed(std::slice::from_ref(&inp), T).unwrap(), vec![None]);
    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction(&[(inp.clone(), 9)], &g, T).unwrap();
    p.commit_transaction(T).unwrap();
    assert_eq!(m.committed(std::slice::from_ref(&inp), T).unwrap(), vec![Some(9)]);
    assert_eq!(c.committed_offsets("grp", &[inp.clone(), Tp::new("out", 0)]).unwrap(), vec![Some(9), None]);
    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction(&[(inp.clone(), 11)], &g, T).unwrap();
    assert!(c.committed_offsets("grp", std::slice::from_ref(&inp)).unwrap_err().is_retriable(), "unstable while open");
    p.commit_transaction(T).unwrap();
    assert_eq!(c.committed_offsets("grp", std::slice::from_ref(&inp)).unwrap(), vec![Some(11)]);
    // A new member starts from the committed offset.
    let polled = m.poll(Duration::ZERO, 10).unwrap();
    assert_eq!(polled.events, vec![GroupEvent::Assigned(vec![inp.clone()])]);
    m.poll(Duration::ZERO, 10).unwrap();
    assert_eq!(m.position(&inp).unwrap(), Some(0), "reset to the log start: offset 11 is past the end");
}

#[test]
fn a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let c = cluster_with(&[("t", 1)]);
    let tp = Tp::new("t", 0);
    let p = c.producer(&ProducerOptions { transactional_id: Some("tx".into()), transaction_timeout: Some(Duration::from_secs(10)) }).unwrap();
    p.init_transactions(T).unwrap();
    p.begin_transaction().unwrap();
    // The coordinator's timer starts with the first partition added, not at begin.
    c.advance(Duration::from_secs(30));
    p.send("t", 0, &[rec(b"x")]).unwrap();
    c.advance(Duration::from_millis(9_999));
    assert!(c.has_open_transaction("tx"));
    assert_eq!(c.watermarks(&tp).unwrap(), (0, 0));
    c.advance(Duration::from_millis(1));
    assert!(!c.has_open_transaction("tx"));
    assert_eq!(c.watermarks(&tp).unwrap(), (0, 2), "aborted by the coordinator");
    assert!(values(&c, &tp).is_empty());
    assert!(p.commit_transaction(T).unwrap_err().is_fenced());
    let too_long = c.producer(&ProducerOptions { transactional_id: Some("y".into()), transaction_timeout: Some(Duration::from_secs(3600)) }).unwrap();
    assert!(too_long.init_transactions(T).unwrap_err().to_string().contains("transaction.timeout.ms"));
}

#[test]
fn offsets_of_a_zombie_member_make_the_transaction_abortable() {
    let c = cluster_with(&[("in", 2), ("out", 1)]);
    let mut a = c.fake_group_consumer(&group_opts("g", &["in"], None)).unwrap();
    assert_eq!(events(&mut a), vec![GroupEvent::Assigned(tps(&[("in", 0), ("in", 1)]))]);
    let zombie_meta = a.group_meta().unwrap();
    let mut b = c.group_consumer(&group_opts("g", &["in"], None)).unwrap();
    events(b.as_mut());
    events(&mut a);
    events(b.as_mut());
    let p = txn_producer(&c, "tx");
    p.begin_transaction().unwrap();
    p.send("out", 0, &[rec(b"x")]).unwrap();
    let e = p.send_offsets_to_transaction(&[(Tp::new("in", 0), 1)], &zombie_meta, T).unwrap_err();
    assert!(matches!(&e, KafkaError::Abortable { message, .. } if message.contains("ILLEGAL_GENERATION")), "{e}");
    assert!(matches!(p.commit_transaction(T), Err(KafkaError::Abortable { .. })));
    p.abort_transaction(T).unwrap();
    assert!(c.group_offsets("g").is_empty());
    // The member's current identity is accepted.
    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction(&[(Tp::new("in", 0), 1)], &a.group_meta().unwrap(), T).unwrap();
    p.commit_transaction(T).unwrap();
    assert_eq!(c.group_offsets("g").get(&Tp::new("in", 0)), Some(&1));
}

// ---- readers ----

#[test]
fn a_reader_reads_its_partitions_from_their_offsets_and_resets_out_of_range() {
    let c = cluster_with(&[("t", 2)]);
    let p = c.producer(&ProducerOptions::default()).unwrap();
    for i in 0..5u8 {
        p.send_and_wait("t", 0, &[rec(&[i])]).unwrap();
        p.send_and_wait("t", 1, &[rec(&[10 + i])]).unwrap();
    }
    let (t0, t1) = (Tp::new("t", 0), Tp::new("t", 1));
    let mut r = c.reader().unwrap();
    r.assign(&[(t0.clone(), 3), (t1.clone(), 4)]).unwrap();
    let got = r.poll(Duration::ZERO, 2).unwrap();
    assert_eq!(got.iter().map(|f| (f.tp.partition, f.offset)).collect::<Vec<_>>(), vec![(0, 3), (0, 4)]);
    assert_eq!(r.position(&t0).unwrap(), Some(5));
    assert_eq!(r.position(&t1).unwrap(), Some(4));
    assert_eq!(r.poll(Duration::ZERO, 10).unwrap().len(), 1);
    assert_eq!(r.position(&Tp::new("t", 7)).unwrap(), None);
    // Past the end, or before the log start: back to the log start.
    c.delete_records(&t0, 2);
    r.assign(&[(t0.clone(), 99)]).unwrap();
    assert_eq!(r.poll(Duration::ZERO, 10).unwrap().first().map(|f| f.offset), Some(2));
    r.assign(&[(t0.clone(), 0)]).unwrap();
    assert_eq!(r.poll(Duration::ZERO, 10).unwrap().len(), 3);
    assert_eq!(c.watermarks(&t0).unwrap(), (2, 5));
}

#[test]
fn a_poll_with_real_waits_wakes_when_data_arrives() {
    let c = cluster_with(&[("t", 1)]);
    c.set_real_waits(true);
    let mut r = c.reader().unwrap();
    r.assign(&[(Tp::new("t", 0), 0)]).unwrap();
    let writer = c.clone();
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        writer.producer(&ProducerOptions::default()).unwrap().send_and_wait("t", 0, &[rec(b"late")]).unwrap();
    });
    let got = r.poll(Duration::from_secs(30), 10).unwrap();
    assert_eq!(got.len(), 1);
    h.join().unwrap();
}

#[test]
fn a_poll_waiting_when_its_process_is_killed_does_nothing_more() {
    let c = cluster_with(&[("t", 1)]);
    c.set_real_waits(true);
    let h = c.host("victim");
    let mut m = h.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    assert_eq!(events(&mut m), vec![GroupEvent::Assigned(tps(&[("t", 0)]))]);
    m.poll(Duration::ZERO, 1).unwrap(); // its position is known: the next poll waits
    let waiting = std::thread::spawn(move || {
        let r = m.poll(Duration::from_secs(30), 1);
        (r.map(|p| p.events), m)
    });
    std::thread::sleep(Duration::from_millis(100));
    h.crash();
    // The clock moves past the session timeout: the waiting poll wakes and must neither
    // heartbeat nor join again.
    c.advance(Duration::from_secs(11));
    let (r, m) = waiting.join().unwrap();
    assert!(matches!(r, Err(KafkaError::Unreachable { .. })), "{r:?}");
    assert!(c.group_members("g").is_empty(), "{:?}", c.group_members("g"));
    drop(m);
}

// ---- groups ----

#[test]
fn range_assignment_gives_contiguous_ranges_and_co_partitions_topics() {
    let c = cluster_with(&[("a", 5), ("b", 5), ("c", 2)]);
    let mut ms: Vec<FakeGroupConsumer> = (0..3).map(|_| c.fake_group_consumer(&group_opts("g", &["a", "b"], None)).unwrap()).collect();
    for _ in 0..3 {
        for m in ms.iter_mut() {
            m.poll(Duration::ZERO, 10).unwrap();
        }
    }
    let (gen, assignment) = c.group_assignment("g").unwrap();
    assert_eq!(gen, 2, "the second and third members joined in the same round");
    let by_member: Vec<Vec<Tp>> = assignment.values().cloned().collect();
    assert_eq!(by_member[0], tps(&[("a", 0), ("a", 1), ("b", 0), ("b", 1)]));
    assert_eq!(by_member[1], tps(&[("a", 2), ("a", 3), ("b", 2), ("b", 3)]));
    assert_eq!(by_member[2], tps(&[("a", 4), ("b", 4)]));
    for m in &ms {
        assert_eq!(m.assignment(), &assignment[m.member_id().unwrap()][..]);
    }
    // Static members sort by instance id, whatever their member ids.
    let mut s: Vec<FakeGroupConsumer> = ["z", "y"].iter().map(|i| c.fake_group_consumer(&group_opts("s", &["c"], Some(i))).unwrap()).collect();
    for _ in 0..3 {
        for m in s.iter_mut() {
            m.poll(Duration::ZERO, 10).unwrap();
        }
    }
    assert_eq!(s[0].assignment(), &tps(&[("c", 1)])[..], "\"z\" sorts after \"y\"");
    assert_eq!(s[1].assignment(), &tps(&[("c", 0)])[..]);
}

#[test]
fn every_membership_change_revokes_everything_before_the_new_assignment() {
    let c = cluster_with(&[("t", 2)]);
    let mut a = c.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    assert_eq!(events(&mut a), vec![GroupEvent::Assigned(tps(&[("t", 0), ("t", 1)]))]);
    assert_eq!(a.generation(), Some(1));
    let mut b = c.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    // B joins: the round waits for A to rejoin.
    assert_eq!(events(&mut b), vec![]);
    assert!(c.group_assignment("g").is_none(), "preparing a rebalance");
    assert_eq!(events(&mut a), vec![GroupEvent::Revoked(tps(&[("t", 0), ("t", 1)])), GroupEvent::Assigned(tps(&[("t", 0)]))]);
    assert_eq!(events(&mut b), vec![GroupEvent::Assigned(tps(&[("t", 1)]))]);
    assert_eq!(events(&mut a), vec![]);
    // B leaves: A gives up its partition and gets both.
    b.close();
    assert_eq!(events(&mut a), vec![GroupEvent::Revoked(tps(&[("t", 0)])), GroupEvent::Assigned(tps(&[("t", 0), ("t", 1)]))]);
    assert_eq!(a.generation(), Some(3));
    assert!(b.poll(Duration::ZERO, 1).is_err(), "closed");
}

#[test]
fn a_member_of_a_dead_process_is_removed_after_its_session_timeout() {
    let c = cluster_with(&[("t", 2)]);
    let hb = c.host("b");
    let mut a = c.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    let mut b = hb.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    for _ in 0..2 {
        events(&mut a);
        events(&mut b);
    }
    assert_eq!(a.assignment(), &tps(&[("t", 0)])[..]);
    hb.crash();
    c.advance(Duration::from_millis(9_999));
    assert_eq!(events(&mut a), vec![]);
    c.advance(Duration::from_millis(1));
    assert_eq!(events(&mut a), vec![GroupEvent::Revoked(tps(&[("t", 0)])), GroupEvent::Assigned(tps(&[("t", 0), ("t", 1)]))]);
    assert!(matches!(b.poll(Duration::ZERO, 1), Err(KafkaError::Unreachable { .. })));
}

#[test]
fn a_live_member_heartbeats_between_polls_until_max_poll_interval() {
    let c = cluster_with(&[("t", 2)]);
    let mut a = c.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    let mut b = c.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    for _ in 0..2 {
        events(&mut a);
        events(&mut b);
    }
    // Far past the session timeout, but its process runs: it stays.
    c.advance(Duration::from_secs(60));
    assert_eq!(events(&mut a), vec![]);
    // A polls, B does not: B leaves the group at max.poll.interval.ms.
    c.advance(Duration::from_millis(MAX_POLL_INTERVAL_MS as u64 - 60_000));
    assert_eq!(events(&mut a), vec![GroupEvent::Revoked(tps(&[("t", 0)])), GroupEvent::Assigned(tps(&[("t", 0), ("t", 1)]))]);
    // When B polls again, it finds its partitions lost and joins as a new member.
    let old_id = b.member_id().unwrap().to_string();
    assert_eq!(events(&mut b), vec![GroupEvent::Revoked(tps(&[("t", 1)]))]);
    assert_ne!(b.member_id().unwrap(), old_id);
}

#[test]
fn a_disconnected_member_that_returns_after_its_session_rejoins_as_new() {
    let c = cluster_with(&[("t", 2)]);
    let hb = c.host("b");
    let mut a = c.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    let mut b = hb.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    for _ in 0..2 {
        events(&mut a);
        events(&mut b);
    }
    hb.disconnect();
    assert!(matches!(b.poll(Duration::ZERO, 1), Err(KafkaError::Unreachable { .. })));
    c.advance(Duration::from_secs(11));
    events(&mut a);
    assert_eq!(a.assignment().len(), 2);
    hb.reconnect();
    assert_eq!(events(&mut b), vec![GroupEvent::Revoked(tps(&[("t", 1)]))]);
    assert_eq!(events(&mut a), vec![GroupEvent::Revoked(tps(&[("t", 0), ("t", 1)])), GroupEvent::Assigned(tps(&[("t", 0)]))]);
    assert_eq!(events(&mut b), vec![GroupEvent::Assigned(tps(&[("t", 1)]))]);
}

#[test]
fn a_static_member_back_within_its_session_keeps_its_partitions_without_a_rebalance() {
    let c = cluster_with(&[("t", 2)]);
    let mut a = c.fake_group_consumer(&group_opts("g", &["t"], Some("ia"))).unwrap();
    let mut b = c.fake_group_consumer(&group_opts("g", &["t"], Some("ib"))).unwrap();
    for _ in 0..2 {
        events(&mut a);
        events(&mut b);
    }
    let (gen, _) = c.group_assignment("g").unwrap();
    b.close();
    c.advance(Duration::from_secs(9));
    assert_eq!(events(&mut a), vec![], "a static member's close does not rebalance");
    let mut b2 = c.fake_group_consumer(&group_opts("g", &["t"], Some("ib"))).unwrap();
    assert_eq!(events(&mut b2), vec![GroupEvent::Assigned(tps(&[("t", 1)]))]);
    assert_eq!(b2.generation(), Some(gen));
    assert_eq!(events(&mut a), vec![]);
    assert_eq!(c.group_assignment("g").unwrap().0, gen);
    // A consumer whose place was taken while it still ran is fenced.
    let mut b3 = c.fake_group_consumer(&group_opts("g", &["t"], Some("ib"))).unwrap();
    events(&mut b3);
    let e = b2.poll(Duration::ZERO, 1).unwrap_err();
    assert!(e.to_string().contains("FENCED_INSTANCE_ID"), "{e}");
    // Past the session timeout the static member is gone and the group rebalances.
    drop(b3);
    c.advance(Duration::from_secs(10));
    assert_eq!(events(&mut a), vec![GroupEvent::Revoked(tps(&[("t", 0)])), GroupEvent::Assigned(tps(&[("t", 0), ("t", 1)]))]);
}

#[test]
fn the_offsets_of_a_fenced_static_instance_are_refused() {
    let c = cluster_with(&[("t", 1), ("out", 1)]);
    let mut a = c.fake_group_consumer(&group_opts("g", &["t"], Some("i"))).unwrap();
    events(&mut a);
    let old = a.group_meta().unwrap();
    let mut a2 = c.fake_group_consumer(&group_opts("g", &["t"], Some("i"))).unwrap();
    events(&mut a2);
    let p = txn_producer(&c, "tx");
    p.begin_transaction().unwrap();
    let e = p.send_offsets_to_transaction(&[(Tp::new("t", 0), 1)], &old, T).unwrap_err();
    assert!(e.to_string().contains("FENCED_INSTANCE_ID"), "{e}");
}

#[test]
fn group_members_fetch_from_committed_offsets_and_pause_resume_and_seek() {
    let c = cluster_with(&[("t", 1), ("out", 1)]);
    let tp = Tp::new("t", 0);
    let plain = c.producer(&ProducerOptions::default()).unwrap();
    for i in 0..4u8 {
        plain.send_and_wait("t", 0, &[rec(&[i])]).unwrap();
    }
    let p = txn_producer(&c, "tx");
    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction(&[(tp.clone(), 2)], &c.group_meta("g").unwrap(), T).unwrap();
    let mut m = c.fake_group_consumer(&group_opts("g", &["t"], None)).unwrap();
    assert_eq!(events(&mut m), vec![GroupEvent::Assigned(vec![tp.clone()])]);
    // UNSTABLE_OFFSET_COMMIT: not fetched while the offsets' transaction is open.
    assert!(m.poll(Duration::ZERO, 10).unwrap().records.is_empty());
    assert_eq!(m.position(&tp).unwrap(), None);
    p.commit_transaction(T).unwrap();
    let got = m.poll(Duration::ZERO, 10).unwrap().records;
    assert_eq!(got.iter().map(|f| f.offset).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(m.position(&tp).unwrap(), Some(4));
    m.seek(&tp, 1).unwrap();
    m.pause(std::slice::from_ref(&tp)).unwrap();
    assert!(m.poll(Duration::ZERO, 10).unwrap().records.is_empty());
    m.resume(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(m.poll(Duration::ZERO, 10).unwrap().records.len(), 3);
    assert!(m.seek(&Tp::new("out", 0), 0).is_err(), "not assigned");
}

#[test]
fn a_session_timeout_outside_the_brokers_bounds_is_refused() {
    let c = cluster_with(&[("t", 1)]);
    let mut o = group_opts("g", &["t"], None);
    o.session_timeout = Duration::from_secs(1);
    let mut m = c.group_consumer(&o).unwrap();
    assert!(m.poll(Duration::ZERO, 1).unwrap_err().to_string().contains("INVALID_SESSION_TIMEOUT"));
}

#[test]
fn a_topic_created_later_rebalances_its_subscribers() {
    let c = cluster_with(&[("a", 1)]);
    let mut m = c.fake_group_consumer(&group_opts("g", &["a", "b"], None)).unwrap();
    assert_eq!(events(&mut m), vec![GroupEvent::Assigned(tps(&[("a", 0)]))]);
    c.create_topic("b", 1, &BTreeMap::new()).unwrap();
    assert_eq!(events(&mut m), vec![GroupEvent::Revoked(tps(&[("a", 0)])), GroupEvent::Assigned(tps(&[("a", 0), ("b", 0)]))]);
}

// ---- faults ----

#[test]
fn a_fault_fires_at_the_nth_call_of_its_operation_in_its_scope() {
    let c = cluster_with(&[("t", 1)]);
    let a = txn_producer(&c, "a");
    let b = txn_producer(&c, "b");
    c.inject(Injection::new(Op::Send, Fault::Retriable).scope("a").nth(2));
    a.begin_transaction().unwrap();
    b.begin_transaction().unwrap();
    a.send("t", 0, &[rec(b"1")]).unwrap();
    b.send("t", 0, &[rec(b"b")]).unwrap();
    assert!(a.send("t", 0, &[rec(b"2")]).unwrap_err().is_retriable());
    assert_eq!(c.pending_faults(), 0);
    // A send that failed leaves its transaction unable to commit.
    assert!(matches!(a.commit_transaction(T), Err(KafkaError::Abortable { .. })));
    a.abort_transaction(T).unwrap();
    b.commit_transaction(T).unwrap();
    assert_eq!(values(&c, &Tp::new("t", 0)), vec![(1, b"b".to_vec())]);
    // times: several calls in a row.
    c.inject(Injection::new(Op::Watermarks, Fault::Unreachable).times(2));
    assert!(c.watermarks(&Tp::new("t", 0)).is_err());
    assert!(c.watermarks(&Tp::new("t", 0)).is_err());
    assert!(c.watermarks(&Tp::new("t", 0)).is_ok());
}

#[test]
fn recorded_calls_replay_as_injections_at_the_same_step() {
    let run = |fault: Option<(Call, Fault)>| {
        let c = cluster_with(&[("t", 1)]);
        let p = txn_producer(&c, "tx");
        c.record_calls();
        if let Some((call, f)) = &fault {
            c.inject(Injection::at(call, *f));
        }
        let r = (|| {
            p.begin_transaction()?;
            p.send("t", 0, &[rec(b"x")])?;
            p.send("t", 0, &[rec(b"y")])?;
            p.commit_transaction(T)
        })();
        (c.take_calls(), r)
    };
    let (calls, r) = run(None);
    r.unwrap();
    let ops: Vec<String> = calls.iter().map(|c| c.to_string()).collect();
    assert_eq!(ops, ["begin_transaction #1 of \"tx\"", "send #1 of \"tx\"", "send #2 of \"tx\"", "commit_transaction #1 of \"tx\""]);
    for call in &calls {
        let (_, r) = run(Some((call.clone(), Fault::Unreachable)));
        assert!(matches!(r, Err(KafkaError::Unreachable { .. })), "{call}");
    }
}

#[test]
fn a_crash_kills_every_client_of_the_host_and_leaves_the_transaction_open() {
    let c = cluster_with(&[("t", 1)]);
    let h = c.host("worker");
    let p = txn_producer(&h, "tx");
    let idem = h.producer(&ProducerOptions::default()).unwrap();
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"x")]).unwrap();
    c.inject(Injection::new(Op::CommitTransaction, Fault::Crash));
    assert!(matches!(p.commit_transaction(T), Err(KafkaError::Unreachable { .. })));
    assert!(!h.is_alive());
    assert!(matches!(idem.send_and_wait("t", 0, &[rec(b"y")]), Err(KafkaError::Unreachable { .. })));
    assert!(c.has_open_transaction("tx"));
    assert_eq!(c.watermarks(&Tp::new("t", 0)).unwrap(), (0, 0));
    // The next owner aborts it.
    let _p2 = txn_producer(&c.host("worker2"), "tx");
    assert_eq!(c.watermarks(&Tp::new("t", 0)).unwrap(), (0, 2));
    assert!(values(&c, &Tp::new("t", 0)).is_empty());
}

#[test]
fn a_crash_after_the_commit_leaves_it_committed() {
    let c = cluster_with(&[("t", 1)]);
    let h = c.host("worker");
    let p = txn_producer(&h, "tx");
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"x")]).unwrap();
    c.inject(Injection::new(Op::CommitTransaction, Fault::CrashAfter).scope("tx"));
    assert!(p.commit_transaction(T).is_err());
    assert!(!h.is_alive());
    assert_eq!(values(&c, &Tp::new("t", 0)), vec![(0, b"x".to_vec())]);
}

#[test]
fn a_commit_whose_answer_was_lost_succeeds_when_called_again() {
    let c = cluster_with(&[("t", 1)]);
    let p = txn_producer(&c, "tx");
    p.begin_transaction().unwrap();
    p.send("t", 0, &[rec(b"x")]).unwrap();
    c.inject(Injection::new(Op::CommitTransaction, Fault::AckLost));
    assert!(p.commit_transaction(T).unwrap_err().is_retriable());
    assert_eq!(values(&c, &Tp::new("t", 0)).len(), 1, "committed already");
    assert!(matches!(p.begin_transaction(), Err(KafkaError::Other { .. })), "the commit must be acknowledged first");
    p.commit_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    assert_eq!(c.watermarks(&Tp::new("t", 0)).unwrap(), (0, 2), "one commit marker");
}

#[test]
fn an_injected_abortable_or_fenced_error_sets_the_producer_state() {
    let c = cluster_with(&[("t", 1)]);
    let p = txn_producer(&c, "tx");
    p.begin_transaction().unwrap();
    c.inject(Injection::new(Op::SendOffsets, Fault::Abortable));
    assert!(matches!(p.send_offsets_to_transaction(&[(Tp::new("t", 0), 1)], &c.group_meta("g").unwrap(), T), Err(KafkaError::Abortable { .. })));
    assert!(matches!(p.send("t", 0, &[rec(b"x")]), Err(KafkaError::Abortable { .. })));
    p.abort_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    c.inject(Injection::new(Op::CommitTransaction, Fault::Fenced));
    assert!(p.commit_transaction(T).unwrap_err().is_fenced());
    assert!(p.abort_transaction(T).unwrap_err().is_fenced());
    assert!(p.begin_transaction().unwrap_err().is_fenced());
}

// ---- threads ----

#[test]
fn clients_are_usable_from_many_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<FakeCluster>();
    send_sync::<FakeProducer>();
    send::<FakeReader>();
    send::<FakeGroupConsumer>();
    let c = cluster_with(&[("t", 1)]);
    let shared = c.producer(&ProducerOptions::default()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                let p = txn_producer(&c, &format!("tx{i}"));
                for n in 0..50u32 {
                    p.begin_transaction().unwrap();
                    let v = format!("{i}-{n}");
                    p.send("t", 0, &[rec(v.as_bytes())]).unwrap();
                    if n % 5 == 0 {
                        p.abort_transaction(T).unwrap();
                    } else {
                        p.commit_transaction(T).unwrap();
                    }
                    shared.send_and_wait("t", 0, &[rec(b"plain")]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let tp = Tp::new("t", 0);
    let got = values(&c, &tp);
    assert_eq!(got.len(), 8 * 40 + 8 * 50);
    let mut txn_values: Vec<Vec<u8>> = got.iter().map(|(_, v)| v.clone()).filter(|v| v != b"plain").collect();
    txn_values.sort();
    txn_values.dedup();
    assert_eq!(txn_values.len(), 8 * 40, "no duplicates, no aborted");
    // 8 * 50 transactional records, 8 * 50 markers, 8 * 50 plain records.
    assert_eq!(c.watermarks(&tp).unwrap(), (0, 1200));
}
