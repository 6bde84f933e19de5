//! Instances sharing a query's tasks through its consumer group ([`KafkaCommitters::join`]), on
//! the fake cluster: eager range rebalances that co-partition the query's source topics, static
//! membership across a restart, a killed instance's partitions moving after its session timeout,
//! and a paused instance that wakes after its task moved: fenced, it writes nothing more.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use engine::operator::TaskInfo;
use engine::runtime::{CommitError, Ownership, ProcessingGuarantee, QueryMembership, TaskCommitters};
use engine::spec::QuerySpec;
use engine::types::Epoch;
use eddy_kafka::fake::FakeCluster;
use eddy_kafka::{Cluster, KafkaCommitters, KafkaLog, Tp};
use storage::{MemStore, RecordIn, StateBatch};

fn spec() -> QuerySpec {
    QuerySpec { id: "Q1".into(), subtopologies: Vec::new() }
}

/// The query reads "clicks" and its repartition topic, 2 partitions each.
fn sources() -> Vec<String> {
    vec!["clicks".to_string(), "_eddy_Q1_repartition".to_string()]
}

fn cluster() -> FakeCluster {
    let fake = FakeCluster::new();
    fake.create_topic("clicks", 2, &BTreeMap::new()).unwrap();
    fake.create_topic("_eddy-svc-Q1_repartition", 2, &BTreeMap::new()).unwrap();
    fake.create_topic("out", 2, &BTreeMap::new()).unwrap();
    fake
}

/// One Eddy instance: its log and committers on its own host.
struct Instance {
    host: FakeCluster,
    committers: KafkaCommitters,
}

fn instance(fake: &FakeCluster, name: &str) -> Instance {
    let host = fake.host(name);
    let log = Arc::new(KafkaLog::new(host.arc(), "svc").unwrap());
    Instance { committers: KafkaCommitters::new(log, name), host }
}

fn join(i: &Instance) -> Box<dyn QueryMembership> {
    let eos = ProcessingGuarantee::ExactlyOnce;
    i.committers.prepare(&spec(), &[2], eos).unwrap();
    let state: Arc<dyn storage::KvStore> = Arc::new(MemStore::new());
    i.committers.join(&spec(), &[(sources(), 2)], eos, state).unwrap().expect("a group over Kafka")
}

fn poll(m: &mut Box<dyn QueryMembership>) -> Vec<Ownership> {
    m.poll(Duration::ZERO).unwrap()
}

fn parts(p: &[u32]) -> Vec<(String, u32)> {
    let mut v: Vec<(String, u32)> = p.iter().flat_map(|&p| sources().into_iter().map(move |t| (t, p))).collect();
    v.sort();
    v
}

fn assigned(p: &[u32]) -> Ownership {
    Ownership::Assigned(parts(p))
}

fn revoked(p: &[u32]) -> Ownership {
    Ownership::Revoked(parts(p))
}

#[test]
fn instances_share_the_partitions_of_every_source_topic_alike() {
    let fake = cluster();
    let (a, b) = (instance(&fake, "a"), instance(&fake, "b"));
    let mut ma = join(&a);
    assert_eq!(poll(&mut ma), vec![assigned(&[0, 1])], "internal topics come back under Eddy's names");
    let mut mb = join(&b);
    assert_eq!(poll(&mut mb), vec![]);
    assert_eq!(poll(&mut ma), vec![revoked(&[0, 1]), assigned(&[0])]);
    assert_eq!(poll(&mut mb), vec![assigned(&[1])]);
    // The group only assigns: the tasks read with readers of their own.
    let (_, assignment) = fake.group_assignment("_eddy-svc-query_Q1").unwrap();
    assert_eq!(assignment.len(), 2);
    // b stops (a static member: no leave) and comes back within its session: no rebalance.
    mb.leave();
    drop(mb);
    fake.advance(Duration::from_secs(5));
    assert_eq!(poll(&mut ma), vec![]);
    let mut mb = join(&b);
    assert_eq!(poll(&mut mb), vec![assigned(&[1])]);
    assert_eq!(poll(&mut ma), vec![]);
    // b's process is killed: after the session timeout a has everything.
    b.host.crash();
    fake.advance(Duration::from_millis(9_999));
    assert_eq!(poll(&mut ma), vec![]);
    fake.advance(Duration::from_millis(1));
    assert_eq!(poll(&mut ma), vec![revoked(&[0]), assigned(&[0, 1])]);
}

#[test]
fn a_paused_instance_that_wakes_after_its_task_moved_writes_nothing_more() {
    let fake = cluster();
    let (a, b) = (instance(&fake, "a"), instance(&fake, "b"));
    let (mut ma, mut mb) = (join(&a), join(&b));
    for _ in 0..2 {
        poll(&mut ma);
        poll(&mut mb);
    }
    let info = TaskInfo { query_id: "Q1".into(), subtopology: 0, partition: 1, persistent: true };
    let eos = ProcessingGuarantee::ExactlyOnce;
    a.committers.prepare(&spec(), &[2], eos).unwrap();
    // b owns partition 1 and is in an epoch when its process is paused.
    let state_b = MemStore::new();
    let mut task_b = b.committers.task(&info, &sources(), eos).unwrap();
    task_b.restore(&state_b).unwrap();
    let out = |v: &'static [u8]| [RecordIn { timestamp: 0, key: None, value: Some(v), headers: &[] }];
    task_b.output().append("out", 1, &out(b"b-epoch-1")).unwrap();
    b.host.disconnect();
    fake.advance(Duration::from_secs(10));
    assert_eq!(poll(&mut ma), vec![revoked(&[0]), assigned(&[0, 1])]);
    // a starts the task: its restore fences b and aborts b's open epoch.
    let state_a = MemStore::new();
    let mut task_a = a.committers.task(&info, &sources(), eos).unwrap();
    task_a.restore(&state_a).unwrap();
    task_a.output().append("out", 1, &out(b"a-epoch-1")).unwrap();
    let mut batch = StateBatch::default();
    batch.put(b"k", b"a");
    task_a.commit(Epoch(1), &batch, &[("clicks".into(), 1, 5)], &state_a).unwrap();
    // b wakes: its group membership is gone, and its task can neither commit nor write.
    b.host.reconnect();
    let changes = poll(&mut mb);
    assert_eq!(changes.first(), Some(&revoked(&[1])), "{changes:?}");
    let mut batch = StateBatch::default();
    batch.put(b"k", b"b");
    assert!(matches!(task_b.commit(Epoch(1), &batch, &[("clicks".into(), 1, 9)], &state_b), Err(CommitError::Fenced { .. })));
    assert!(task_b.output().append("out", 1, &out(b"b-late")).is_err());
    let seen: Vec<Vec<u8>> = fake.committed_records(&Tp::new("out", 1)).into_iter().filter_map(|f| f.value).collect();
    assert_eq!(seen, vec![b"a-epoch-1".to_vec()]);
    assert_eq!(fake.group_offsets("_eddy-svc-query_Q1").get(&Tp::new("clicks", 1)), Some(&5));
}
