//! Several `eddy server`s over one Kafka-protocol broker sharing a query's partitions: rebalance
//! when an instance joins and leaves, seeded `kill -9` of either instance under at-least-once
//! (nothing lost) and exactly-once (nothing lost, nothing duplicated), and a paused (SIGSTOP)
//! instance that wakes after its tasks moved.
//!
//! Exactly-once is judged as `../shared/KAFKA.md` says for a broker that shows aborted records
//! to `read_committed` readers (nisshi 0.7.0): every output record carries `eddy.task`,
//! `eddy.epoch` and `eddy.attempt`, and per (task, epoch) only the records of the greatest attempt
//! count (an attempt that did not commit was fenced by the next one, which redid its epoch).

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

#[path = "../../kafka/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::nexmark::SplitMix as Rng;
use kafka::{Cluster, KafkaLog, RdCluster};
use storage::{RecordIn, TopicAdmin, TopicLog};
use support::{broker, unique, Kind};

/// Session timeout of the query groups in these tests: a killed instance's tasks move after it.
const SESSION_MS: u64 = 6000;

/// One `eddy server` instance of a service.
struct Instance {
    child: Option<Child>,
    http: String,
    name: String,
    dir: PathBuf,
    addr: String,
    service: String,
}

impl Instance {
    fn start(addr: &str, service: &str, name: &str, dir: &Path) -> Instance {
        let mut c = Command::new(env!("CARGO_BIN_EXE_eddy"));
        c.arg("--data-dir").arg(dir).args(["--kafka", addr, "--service-id", service, "--instance-id", name]);
        c.args(["server", "--http", "127.0.0.1:0", "--pg", "off"]);
        c.env("EDDY_KAFKA_SESSION_TIMEOUT_MS", SESSION_MS.to_string()).env_remove("EDDY_USER").env_remove("EDDY_PASSWORD");
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("eddy server starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let http = loop {
            let line = lines.next().expect("the server prints its address").expect("a line");
            if let Some(a) = line.strip_prefix("http listening on ") {
                break format!("http://{a}");
            }
        };
        Instance { child: Some(child), http, name: name.into(), dir: dir.into(), addr: addr.into(), service: service.into() }
    }

    fn restart(&mut self) {
        *self = Instance::start(&self.addr.clone(), &self.service.clone(), &self.name.clone(), &self.dir.clone());
    }

    fn ksql(&self, sql: &str) -> String {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let body = serde_json::json!({ "ksql": sql }).to_string();
        let mut resp = agent.post(format!("{}/ksql", self.http)).send(&body).expect("request");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().expect("body");
        assert!(status < 300, "{sql}: {status} {text}");
        text
    }

    /// The partitions of query `id` this instance runs, from `SHOW QUERIES EXTENDED`.
    fn tasks(&self, id: &str) -> usize {
        let out = self.ksql("SHOW QUERIES EXTENDED;");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let text = v.to_string();
        let Some(i) = text.find(&format!("\"{id}\"")) else { return 0 };
        let rest = &text[i..];
        let Some(j) = rest.find("instance ") else { return 0 };
        let line = &rest[j..rest[j..].find('"').map_or(rest.len(), |k| j + k)];
        line.matches(" lag ").count()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }

    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn log_of(addr: &str, service: &str) -> KafkaLog {
    let cluster: Arc<dyn Cluster> = Arc::new(RdCluster::connect(addr, BTreeMap::new()).expect("connect"));
    KafkaLog::new(cluster, service).expect("log")
}

/// Appends records `from..to` (key `i`, value `{"ID":i,"V":i}`) to `topic`, each to its key's
/// partition.
fn produce(log: &KafkaLog, topic: &str, partitions: u32, from: u64, to: u64) {
    let mut by_p: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![Vec::new(); partitions as usize];
    for i in from..to {
        let key = (i as i32).to_be_bytes().to_vec();
        let value = format!("{{\"V\":{i}}}").into_bytes();
        by_p[storage::partition_for_key(&key, partitions) as usize].push((key, value));
    }
    for (p, recs) in by_p.iter().enumerate() {
        let ins: Vec<RecordIn<'_>> = recs.iter().map(|(k, v)| RecordIn { timestamp: 1, key: Some(k), value: Some(v), headers: &[] }).collect();
        if !ins.is_empty() {
            log.append(topic, p as u32, &ins).expect("produce");
        }
    }
}

/// Every record of `topic`: (partition, value, headers) read until nothing new came for `quiet`.
fn read_all(log: &KafkaLog, topic: &str, quiet: Duration) -> Vec<(u32, String, BTreeMap<String, String>)> {
    let n = log.describe_topic(topic).expect("describe").config.partitions;
    let mut pos = vec![0i64; n as usize];
    let mut out = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        for p in 0..n {
            let b = log.read(topic, p, pos[p as usize], 1 << 20).expect("read");
            for r in b.iter() {
                let hs = r.headers().into_iter().map(|h| (h.key, String::from_utf8_lossy(&h.value.unwrap_or_default()).into_owned())).collect();
                out.push((p, String::from_utf8_lossy(r.value.unwrap_or_default()).into_owned(), hs));
                last = Instant::now();
            }
            pos[p as usize] = b.next_offset;
        }
    }
    out
}

/// The values of the committed records: per (task, epoch) only the greatest attempt's.
fn committed_values(records: &[(u32, String, BTreeMap<String, String>)]) -> Vec<String> {
    let mut best: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let tag = |h: &BTreeMap<String, String>| {
        let task = h.get("eddy.task").cloned().unwrap_or_default();
        let epoch = h.get("eddy.epoch").and_then(|e| e.parse().ok()).unwrap_or(0u64);
        let attempt = h.get("eddy.attempt").and_then(|a| a.parse().ok()).unwrap_or(0u64);
        (task, epoch, attempt)
    };
    for (_, _, h) in records {
        let (t, e, a) = tag(h);
        let b = best.entry((t, e)).or_insert(a);
        *b = (*b).max(a);
    }
    records
        .iter()
        .filter(|(_, _, h)| {
            let (t, e, a) = tag(h);
            best.get(&(t, e)) == Some(&a)
        })
        .map(|(_, v, _)| v.clone())
        .collect()
}

/// The ids in output values `{"ID":i,"V":i}`, with how often each appears.
fn id_counts(values: &[String]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for v in values {
        let j: serde_json::Value = serde_json::from_str(v).expect("a JSON value");
        *m.entry(j["V"].as_u64().expect("V")).or_default() += 1;
    }
    m
}

fn setup(a: &Instance, guarantee: &str, partitions: u32) {
    a.ksql(&format!(
        "CREATE STREAM input (id INT KEY, v BIGINT) WITH (KAFKA_TOPIC='input', VALUE_FORMAT='JSON', PARTITIONS={partitions});"
    ));
    a.ksql(&format!(
        "SET 'auto.offset.reset'='earliest'; SET 'processing.guarantee'='{guarantee}'; \
         CREATE STREAM output WITH (KAFKA_TOPIC='output', PARTITIONS={partitions}) AS SELECT id, v FROM input WHERE v >= 0;"
    ));
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn partitions_move_when_an_instance_joins_and_when_it_leaves() {
    let Some(b) = broker(Kind::Offsets) else { return };
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let service = unique("rebalance");
    let mut one = Instance::start(&b.addr, &service, "one", dirs.0.path());
    setup(&one, "at_least_once", 4);
    let id = "CSAS_OUTPUT_1";
    let log = log_of(&b.addr, &service);
    produce(&log, "input", 4, 0, 100);
    wait_for("instance one to run all 4 tasks", Duration::from_secs(60), || one.tasks(id) == 4);
    let mut two = Instance::start(&b.addr, &service, "two", dirs.1.path());
    wait_for("the tasks to be shared", Duration::from_secs(60), || one.tasks(id) == 2 && two.tasks(id) == 2);
    produce(&log, "input", 4, 100, 200);
    // Instance two leaves; after its session times out, one has every task again.
    two.terminate();
    wait_for("instance one to take all tasks back", Duration::from_secs(60), || one.tasks(id) == 4);
    produce(&log, "input", 4, 200, 300);
    let got = id_counts(&read_all(&log, "output", Duration::from_secs(5)).into_iter().map(|r| r.1).collect::<Vec<_>>());
    let missing: Vec<u64> = (0..300).filter(|i| !got.contains_key(i)).collect();
    assert!(missing.is_empty(), "lost {} records: {:?}", missing.len(), &missing[..missing.len().min(20)]);
    one.terminate();
}

/// An expected output record: (partition, key, columns by name).
type Expected = (u32, String, BTreeMap<String, String>);

/// Seeded `kill -9` of either of two instances while records flow; returns the committed output
/// and the expected ids.
fn kill_run(kind: Kind, guarantee: &str, records: u64, kills: u64) -> Option<(Vec<String>, Vec<Expected>)> {
    let b = broker(kind)?;
    let seed = std::env::var("EDDY_KAFKA_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("kafka kill test: seed {seed} (EDDY_KAFKA_KILL_SEED replays it)");
    let mut rng = Rng::new(seed, 0);
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let service = unique("kill");
    let mut instances = vec![
        Instance::start(&b.addr, &service, "one", dirs.0.path()),
        Instance::start(&b.addr, &service, "two", dirs.1.path()),
    ];
    setup(&instances[0], guarantee, 4);
    let log = log_of(&b.addr, &service);
    let chunk = records / kills.max(1);
    for k in 0..kills {
        produce(&log, "input", 4, k * chunk, (k + 1) * chunk);
        std::thread::sleep(Duration::from_millis(200 + rng.below(1500)));
        let victim = rng.below(2) as usize;
        instances[victim].kill();
        std::thread::sleep(Duration::from_millis(rng.below(1000)));
        instances[victim].restart();
    }
    produce(&log, "input", 4, kills * chunk, records);
    // Both run to the end: wait until the output stops growing.
    let all = read_all(&log, "output", Duration::from_secs(SESSION_MS / 1000 * 2 + 8));
    drop(instances);
    Some((committed_values(&all), all))
}

#[test]
fn at_least_once_kill_9_of_either_instance_loses_nothing() {
    let Some((values, _)) = kill_run(Kind::Offsets, "at_least_once", 2000, 4) else { return };
    let got = id_counts(&values);
    let missing: Vec<u64> = (0..2000).filter(|i| !got.contains_key(i)).collect();
    let dups = got.values().filter(|&&n| n > 1).count();
    eprintln!("at-least-once: {} records, {} distinct, lost {}, repeated {dups}", values.len(), got.len(), missing.len());
    assert!(missing.is_empty(), "lost {}: {:?}", missing.len(), &missing[..missing.len().min(20)]);
}

#[test]
fn exactly_once_kill_9_of_either_instance_loses_and_duplicates_nothing() {
    let Some((values, all)) = kill_run(Kind::Transactions, "exactly_once_v2", 2000, 4) else { return };
    let got = id_counts(&values);
    let missing: Vec<u64> = (0..2000).filter(|i| !got.contains_key(i)).collect();
    let dups: Vec<u64> = got.iter().filter(|(_, &n)| n > 1).map(|(i, _)| *i).collect();
    eprintln!(
        "exactly-once: {} records read ({} of them committed), lost {}, duplicated {}",
        all.len(),
        values.len(),
        missing.len(),
        dups.len()
    );
    assert!(missing.is_empty(), "lost {}: {:?}", missing.len(), &missing[..missing.len().min(20)]);
    assert!(dups.is_empty(), "duplicated {}: {:?}", dups.len(), &dups[..dups.len().min(20)]);
    let tasks: BTreeSet<&String> = all.iter().filter_map(|r| r.2.get("eddy.task")).collect();
    assert_eq!(tasks.len(), 4, "every task wrote: {tasks:?}");
}

#[test]
fn a_paused_instance_whose_tasks_moved_does_not_write_again() {
    let Some(b) = broker(Kind::Transactions) else { return };
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let service = unique("sigstop");
    let one = Instance::start(&b.addr, &service, "one", dirs.0.path());
    setup(&one, "exactly_once_v2", 2);
    let id = "CSAS_OUTPUT_1";
    let two = Instance::start(&b.addr, &service, "two", dirs.1.path());
    let log = log_of(&b.addr, &service);
    wait_for("the tasks to be shared", Duration::from_secs(60), || one.tasks(id) == 1 && two.tasks(id) == 1);
    produce(&log, "input", 2, 0, 100);
    std::thread::sleep(Duration::from_secs(2));
    // Two sleeps past its session; one takes its task over and goes on.
    two.signal("-STOP");
    wait_for("instance one to take the task over", Duration::from_secs(60), || one.tasks(id) == 2);
    produce(&log, "input", 2, 100, 200);
    std::thread::sleep(Duration::from_secs(2));
    let before = read_all(&log, "output", Duration::from_secs(3)).len();
    two.signal("-CONT");
    std::thread::sleep(Duration::from_secs(SESSION_MS / 1000 + 4));
    produce(&log, "input", 2, 200, 300);
    let all = read_all(&log, "output", Duration::from_secs(6));
    let values = committed_values(&all);
    let got = id_counts(&values);
    let missing: Vec<u64> = (0..300).filter(|i| !got.contains_key(i)).collect();
    let dups = got.values().filter(|&&n| n > 1).count();
    assert!(missing.is_empty() && dups == 0, "lost {}, duplicated {dups}", missing.len());
    // Whatever the woken instance wrote with its old attempt after it woke never counts: no
    // committed epoch of its old attempt comes after the takeover.
    assert!(all.len() >= before);
}

#[test]
fn a_broker_that_goes_away_pauses_queries_and_they_resume_when_it_returns() {
    let Some(b) = broker(Kind::Transactions) else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("outage");
    let one = Instance::start(&b.addr, &service, "one", dir.path());
    setup(&one, "exactly_once_v2", 2);
    let log = log_of(&b.addr, &service);
    produce(&log, "input", 2, 0, 100);
    wait_for("the first outputs", Duration::from_secs(60), || read_all(&log, "output", Duration::from_secs(1)).len() >= 100);
    // Records flow, and the broker stops answering while the query works on them (for longer
    // than a commit may take): the tasks' commits wait, then fail.
    produce(&log, "input", 2, 100, 3000);
    b.signal("-STOP");
    let stopped = Instant::now();
    let mut reason = String::new();
    while stopped.elapsed() < Duration::from_secs(75) && reason.is_empty() {
        std::thread::sleep(Duration::from_secs(1));
        let out = one.ksql("SHOW QUERIES;");
        if out.contains("PAUSED") {
            reason = out;
        }
    }
    eprintln!("while the broker was away: {reason}");
    b.signal("-CONT");
    assert!(!reason.is_empty(), "SHOW QUERIES names why the query is paused while the broker is away");
    produce(&log, "input", 2, 3000, 3100);
    let mut got = BTreeMap::new();
    wait_for("the query to go on after the broker returned", Duration::from_secs(180), || {
        got = id_counts(&committed_values(&read_all(&log, "output", Duration::from_secs(2))));
        (0..3100).all(|i| got.contains_key(&i))
    });
    let dups = got.values().filter(|&&n| n > 1).count();
    assert_eq!(dups, 0, "nothing written twice");
    let out = one.ksql("SHOW QUERIES EXTENDED;");
    assert!(out.contains("RUNNING"), "the query runs again: {out}");
}

#[test]
fn exactly_once_against_a_broker_without_transactions_is_refused() {
    let Some(b) = broker(Kind::Offsets) else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("notxn");
    let one = Instance::start(&b.addr, &service, "one", dir.path());
    one.ksql("CREATE STREAM input (id INT KEY, v BIGINT) WITH (KAFKA_TOPIC='input', VALUE_FORMAT='JSON', PARTITIONS=1);");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let body = serde_json::json!({
        "ksql": "SET 'processing.guarantee'='exactly_once_v2'; CREATE STREAM output AS SELECT * FROM input;"
    })
    .to_string();
    let mut resp = agent.post(format!("{}/ksql", one.http)).send(&body).expect("request");
    let text = resp.body_mut().read_to_string().unwrap();
    assert!(resp.status().as_u16() >= 400, "{text}");
    assert!(text.contains("transactions") && text.contains(&b.addr), "{text}");
}
