//! The whole engine over Kafka (catalog in the command topic, query groups, per-task
//! transactions) on the in-process fake cluster, which hides aborted records as Kafka does:
//! SQL in, `read_committed` output checked exactly-once, with faults injected into the commits
//! and an instance killed and replaced by another.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka::fake::{EntryKind, FakeCluster, Fault, Injection, Op};
use kafka::{Cluster, Tp};

/// One Eddy instance on its own host of the fake cluster, with in-memory local state.
fn instance(fake: &FakeCluster, name: &str) -> planner::Eddy {
    instance_on(&fake.host(name), name)
}

fn instance_on(host: &FakeCluster, name: &str) -> planner::Eddy {
    let log = Arc::new(kafka::KafkaLog::new(host.arc(), "svc").unwrap());
    let committers = kafka::KafkaCommitters::new(log.clone(), name);
    let config = engine::EngineConfig { instance_id: Some(name.into()), checkpoint_interval: Duration::from_millis(100), ..Default::default() };
    let engine = engine::Engine::with_committers(log, Arc::new(storage::MemStore::new()), config, Arc::new(committers)).unwrap();
    planner::Eddy::with_engine(engine).unwrap()
}

fn run(eddy: &planner::Eddy, sql: &str) {
    eddy.session().execute_all(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn insert(eddy: &planner::Eddy, from: i64, to: i64) {
    let sql: String = (from..to).map(|n| format!("INSERT INTO clicks (user, n) VALUES ('u{}', {n});\n", n % USERS)).collect();
    run(eddy, &sql);
}

/// The `n` of every record a `read_committed` reader sees in `BIG`, sorted.
fn big(fake: &FakeCluster) -> Vec<i64> {
    let mut out: Vec<i64> = (0..2)
        .flat_map(|p| fake.committed_records(&Tp::new("BIG", p)))
        .map(|f| {
            let v: serde_json::Value = serde_json::from_slice(&f.value.unwrap()).unwrap();
            v["N"].as_i64().unwrap()
        })
        .collect();
    out.sort();
    out
}

/// The last count per user a `read_committed` reader sees in `COUNTS`.
fn counts(fake: &FakeCluster) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for p in 0..2 {
        for f in fake.committed_records(&Tp::new("COUNTS", p)) {
            let k = String::from_utf8(f.key.unwrap()).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&f.value.unwrap()).unwrap();
            out.insert(k, v["C"].as_i64().unwrap());
        }
    }
    out
}

fn expected_counts(to: i64) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for n in 0..to {
        *m.entry(format!("u{}", n % USERS)).or_insert(0) += 1;
    }
    m
}

/// Waits (real time) until both query groups have two members with one partition each.
fn wait_split(fake: &FakeCluster) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let split = |g: &str| fake.group_assignment(g).is_some_and(|(_, m)| m.len() == 2 && m.values().all(|p| p.len() == 1));
    while !(split("_eddy-svc-query_CSAS_BIG_1") && split("_eddy-svc-query_CTAS_COUNTS_2")) {
        assert!(Instant::now() < deadline, "the groups did not split: {:?}", fake.group_members("_eddy-svc-query_CSAS_BIG_1"));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (real time) until `COUNTS` says inputs `[0, to)` were counted.
fn wait_for_counts(fake: &FakeCluster, to: i64, what: &str, eddy: &planner::Eddy) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while counts(fake) != expected_counts(to) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if counts(fake) != expected_counts(to) {
        dump(fake, eddy);
    }
    assert_eq!(counts(fake), expected_counts(to), "{what}: the counts");
}

/// Waits (real time) until `BIG` holds the outputs of inputs `[0, to)`.
fn wait_for(fake: &FakeCluster, to: i64, what: &str, eddy: &planner::Eddy) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = big(fake);
        if seen.len() >= to as usize || Instant::now() > deadline {
            if seen.len() != to as usize {
                dump(fake, eddy);
            }
            assert_eq!(seen, (0..to).collect::<Vec<_>>(), "{what}: each input's output once");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Users u0..u6: their keys fall on both partitions.
const USERS: i64 = 7;

const SCHEMA: &str = "
    CREATE STREAM clicks (user VARCHAR KEY, n BIGINT) WITH (kafka_topic='clicks', partitions=2, value_format='JSON');
    CREATE STREAM big AS SELECT user, n FROM clicks EMIT CHANGES;
    CREATE TABLE counts AS SELECT user, COUNT(*) AS c FROM clicks GROUP BY user EMIT CHANGES;
";

#[test]
fn queries_over_the_fake_cluster_write_each_output_once_through_failed_commits() {
    let fake = FakeCluster::new();
    fake.set_real_waits(true);
    let a = instance(&fake, "a");
    run(&a, SCHEMA);
    insert(&a, 0, 20);
    wait_for(&fake, 20, "first inputs", &a);
    insert(&a, 20, 40);
    // Commits fail (the tasks' own, not the inserts'): their epochs abort, the tasks start again
    // from their last commit.
    fake.inject(Injection::new(Op::CommitTransaction, Fault::Abortable).times(3));
    fake.inject(Injection::new(Op::SendOffsets, Fault::Unreachable).nth(2));
    fake.inject(Injection::new(Op::CommitTransaction, Fault::AckLost).nth(6));
    wait_for(&fake, 40, "after failed commits", &a);
    // An output write fails: the task's epoch aborts, the task starts again.
    fake.inject(Injection::new(Op::Send, Fault::Retriable));
    insert(&a, 40, 60);
    wait_for(&fake, 60, "after a failed write", &a);
    wait_for_counts(&fake, 60, "after the faults", &a);
    assert_eq!(fake.pending_faults(), 0, "the faults fired");
    for p in 0..2 {
        assert!(!fake.committed_records(&Tp::new("BIG", p)).is_empty(), "both partitions have work");
    }
    a.shutdown().unwrap();
}

#[test]
fn another_instance_takes_over_a_killed_ones_tasks_exactly_once() {
    let fake = FakeCluster::new();
    fake.set_real_waits(true);
    let host_a = fake.host("a");
    let a = instance_on(&host_a, "a");
    run(&a, SCHEMA);
    insert(&a, 0, 20);
    wait_for(&fake, 20, "before the kill", &a);
    // kill -9 of instance a, in the middle of whatever it does.
    host_a.crash();
    let a_clients = a;
    let b = instance(&fake, "b");
    // b follows the catalog and joins the query groups; a's partitions move once a's session
    // timed out.
    fake.advance(Duration::from_secs(11));
    insert(&b, 20, 40);
    wait_for(&fake, 40, "after the take-over", &b);
    wait_for_counts(&fake, 40, "the counts restored from the changelog go on", &b);
    b.shutdown().unwrap();
    drop(a_clients);
}

#[test]
fn an_instance_that_joins_takes_half_the_tasks_and_processing_goes_on_exactly_once() {
    let fake = FakeCluster::new();
    fake.set_real_waits(true);
    let a = instance(&fake, "a");
    run(&a, SCHEMA);
    insert(&a, 0, 20);
    wait_for(&fake, 20, "a alone", &a);
    let b = instance(&fake, "b");
    // Each query's group rebalances: a gives up one partition, b starts its task from a's last
    // commit.
    wait_split(&fake);
    insert(&a, 20, 30);
    insert(&b, 30, 40);
    wait_for(&fake, 40, "a and b", &b);
    wait_for_counts(&fake, 40, "a and b", &b);
    let tasks = |e: &planner::Eddy| e.engine().queries().iter().map(|q| q.tasks).sum::<usize>();
    assert_eq!((tasks(&a), tasks(&b)), (2, 2), "each instance runs one task of each query");
    b.shutdown().unwrap();
    a.shutdown().unwrap();
}

#[test]
fn a_paused_instance_that_wakes_after_its_tasks_moved_writes_nothing_more() {
    let fake = FakeCluster::new();
    fake.set_real_waits(true);
    let host_a = fake.host("a");
    let a = instance_on(&host_a, "a");
    run(&a, SCHEMA);
    insert(&a, 0, 20);
    wait_for(&fake, 20, "before the pause", &a);
    // a stops answering (SIGSTOP, or a network partition) while b starts.
    host_a.disconnect();
    let b = instance(&fake, "b");
    fake.advance(Duration::from_secs(11));
    insert(&b, 20, 40);
    wait_for(&fake, 40, "b alone", &b);
    // a wakes: it finds its partitions gone, rejoins, and the groups split again; whatever a
    // had open was fenced by b.
    host_a.reconnect();
    insert(&b, 40, 50);
    wait_split(&fake);
    insert(&a, 50, 60);
    wait_for(&fake, 60, "after a woke", &b);
    wait_for_counts(&fake, 60, "after a woke", &b);
    let tasks = |e: &planner::Eddy| e.engine().queries().iter().map(|q| q.tasks).sum::<usize>();
    assert_eq!((tasks(&a), tasks(&b)), (2, 2), "a runs tasks again");
    b.shutdown().unwrap();
    a.shutdown().unwrap();
}

/// Prints what a failed check needs: every partition's watermarks, the changelogs and COUNTS
/// entry by entry, the query groups, and the queries of `eddy`.
fn dump(fake: &FakeCluster, eddy: &planner::Eddy) {
    for t in fake.list_topics().unwrap() {
        for p in 0..t.partitions {
            let tp = Tp::new(&t.name, p);
            eprintln!("== {tp}: {:?}, log end {:?}", fake.watermarks(&tp), fake.log_end(&tp));
            if !(t.name.contains("changelog") || t.name == "COUNTS") {
                continue;
            }
            for e in fake.log_entries(&tp) {
                let what = match &e.kind {
                    EntryKind::Record { key, value, headers } => {
                        let text = |b: &Option<Vec<u8>>| b.as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
                        let hs: Vec<String> = headers.iter().map(|h| format!("{}={:?}", h.key, text(&h.value))).collect();
                        format!("{:?} = {:?} [{}]", text(key), text(value), hs.join(" "))
                    }
                    marker => format!("{marker:?}"),
                };
                eprintln!("  {} producer {} {:?}: {what}", e.offset, e.producer_id, e.txn);
            }
        }
    }
    for q in eddy.engine().queries() {
        let g = format!("_eddy-svc-query_{}", q.id);
        eprintln!("{q:?}\n  group {g}: offsets {:?}, assignment {:?}, members {:?}", fake.group_offsets(&g), fake.group_assignment(&g), fake.group_members(&g));
    }
}
