//! The `eddy` binary over Kafka-protocol brokers on loopback (`--kafka`): produce and consume,
//! and a differential test that runs one SQL script on the embedded log and over Kafka and
//! compares what the queries wrote.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

#[path = "../../kafka/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{broker, unique, Kind};

fn eddy(dir: &Path, kafka: Option<(&str, &str)>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eddy"));
    c.arg("--data-dir").arg(dir);
    if let Some((addr, service)) = kafka {
        c.args(["--kafka", addr, "--service-id", service, "--instance-id", "i1"]);
    }
    c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("eddy starts");
    {
        let mut si = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            si.write_all(s.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("eddy runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Records of a topic as `eddy consume` prints them, without offsets (Kafka's are not dense),
/// sorted: (partition, key, value, timestamp).
fn consume(dir: &Path, kafka: Option<(&str, &str)>, topic: &str) -> Vec<(i64, String, String, i64)> {
    let out = eddy(dir, kafka, &["consume", topic, "--from-beginning", "--timeout", "3"], None);
    assert!(out.status.success(), "consume {topic}: {}", text(&out.stderr));
    let mut rows: Vec<(i64, String, String, i64)> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            (v["partition"].as_i64().unwrap(), v["key"].to_string(), v["value"].to_string(), v["timestamp"].as_i64().unwrap())
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn produce_and_consume_over_kafka_agree_with_the_embedded_log_on_partitions() {
    let Some(b) = broker(Kind::Offsets) else { return };
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..40).map(|i| format!("{{\"id\":\"user-{i}\",\"n\":{i},\"ts\":{}}}\n", 1000 + i)).collect();
    let topic = unique("produced");
    let kafka = Some((b.addr.as_str(), "svc"));
    for place in [None, kafka] {
        let out = eddy(dir.path(), place, &["produce", &topic, "--partitions", "4", "--key", "id", "--timestamp", "ts"], Some(&lines));
        assert!(out.status.success(), "produce: {}", text(&out.stderr));
    }
    let embedded = consume(dir.path(), None, &topic);
    let over_kafka = consume(dir.path(), kafka, &topic);
    assert_eq!(embedded.len(), 40);
    assert_eq!(embedded, over_kafka, "the same keys land in the same partitions");
}

const SCRIPT: &str = "
SET 'auto.offset.reset'='earliest';
CREATE STREAM clicks (user_id STRING KEY, page STRING, ms BIGINT) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=2);
CREATE TABLE users (user_id STRING PRIMARY KEY, region STRING) WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=2);
INSERT INTO users (ROWTIME, user_id, region) VALUES (1, 'u1', 'eu');
INSERT INTO users (ROWTIME, user_id, region) VALUES (1, 'u2', 'us');
INSERT INTO users (ROWTIME, user_id, region) VALUES (1, 'u3', 'eu');
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (1000, 'u1', '/a', 5);
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (2000, 'u2', '/b', 50);
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (3000, 'u3', '/a', 500);
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (4000, 'u1', '/b', 20);
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (12000, 'u2', '/a', 7);
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (13000, 'u3', '/b', 70);
CREATE STREAM slow WITH (KAFKA_TOPIC='slow') AS SELECT * FROM clicks WHERE ms > 10;
CREATE STREAM enriched WITH (KAFKA_TOPIC='enriched') AS SELECT c.user_id AS user_id, c.page AS page, u.region AS region FROM clicks c JOIN users u ON c.user_id = u.user_id;
CREATE TABLE per_page WITH (KAFKA_TOPIC='per_page') AS SELECT page, COUNT(*) AS n FROM clicks WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY page;
CREATE STREAM eu_clicks WITH (KAFKA_TOPIC='eu_clicks') AS SELECT * FROM enriched WHERE region = 'eu';
SELECT * FROM slow EMIT CHANGES LIMIT 4;
SELECT * FROM eu_clicks EMIT CHANGES LIMIT 4;
SELECT * FROM per_page EMIT CHANGES LIMIT 6;
";

/// One script (a filter, a stream-table join, a windowed aggregate through a repartition, and a
/// chain of two queries) on the embedded log and over Kafka: the same records in the same
/// partitions of every output topic.
#[test]
fn the_same_script_writes_the_same_outputs_embedded_and_over_kafka() {
    let Some(b) = broker(Kind::Offsets) else { return };
    let embedded_dir = tempfile::tempdir().unwrap();
    let kafka_dir = tempfile::tempdir().unwrap();
    let service = unique("diff");
    let kafka = Some((b.addr.as_str(), service.as_str()));
    let mut results = BTreeMap::new();
    for (name, dir, place) in [("embedded", embedded_dir.path(), None), ("kafka", kafka_dir.path(), kafka)] {
        let out = eddy(dir, place, &["--output", "json", "-e", SCRIPT], None);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let mut pushed: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
        pushed.sort();
        let topics: Vec<_> = ["slow", "enriched", "per_page", "eu_clicks"].iter().map(|t| (t.to_string(), consume(dir, place, t))).collect();
        results.insert(name, (pushed, topics));
    }
    let (e, k) = (&results["embedded"], &results["kafka"]);
    assert_eq!(e.0.len(), 14, "{:?}", e.0);
    assert_eq!(e.0, k.0, "push query rows");
    for ((topic, er), (_, kr)) in e.1.iter().zip(&k.1) {
        assert!(!er.is_empty(), "{topic} has records");
        assert_eq!(er, kr, "records of {topic}");
    }
}

#[test]
fn an_unreachable_bootstrap_address_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = eddy(dir.path(), Some(("127.0.0.1:1", "svc")), &["-e", "SHOW STREAMS;"], None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn kafka_without_a_service_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_eddy"));
    let out = c.arg("--data-dir").arg(dir.path()).args(["--kafka", "127.0.0.1:1", "-e", "SHOW STREAMS;"]).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--service-id"), "{}", text(&out.stderr));
}
