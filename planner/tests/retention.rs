//! Retention and compaction while queries run: the background cleaner never removes what a
//! persistent query has not checkpointed past, the query's output stays whole while its input
//! shrinks, and a compacted changelog keeps the latest value per key.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eddy_planner::{Eddy, Session};
use engine::EngineConfig;
use storage::{Offset, TopicLog};

/// An engine whose checkpoints and cleaner passes run only when the test asks.
fn open(dir: &std::path::Path) -> Eddy {
    let config = EngineConfig {
        checkpoint_interval: Duration::from_secs(3600),
        cleanup_interval: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    Eddy::open(dir, config).unwrap()
}

fn run(s: &mut Session, sql: &str) {
    s.execute_all(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A record of a topic: (offset, key, value).
type Rec = (Offset, Option<Vec<u8>>, Option<Vec<u8>>);

/// Every (offset, key, value) of partition 0 of `topic`.
fn records(log: &dyn TopicLog, topic: &str) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let b = log.read(topic, 0, from, 1 << 20).unwrap();
        if b.is_empty() {
            return out;
        }
        out.extend(b.iter().map(|r| (r.offset, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec))));
        from = b.next_offset;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn retention_waits_for_the_checkpoint_and_the_output_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let eddy = open(dir.path());
    let engine = eddy.engine().clone();
    let mut s = eddy.session();
    run(&mut s, "SET 'auto.offset.reset' = 'earliest';");
    run(
        &mut s,
        "CREATE STREAM events (id INT KEY, v STRING) WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON', PARTITIONS=1, RETENTION_BYTES=2048, SEGMENT_BYTES=1024);",
    );
    run(&mut s, "CREATE STREAM copy AS SELECT id, v FROM events;");
    let mut expected = Vec::new();
    for round in 0..3 {
        for i in 0..40 {
            let n = round * 40 + i;
            let v = format!("payload-{n:04}-abcdefghijklmnopqrstuvwxyz");
            run(&mut s, &format!("INSERT INTO events (id, v) VALUES ({}, '{v}');", n % 3));
            expected.push(v);
        }
        engine.wait_caught_up(None, Duration::from_secs(30)).unwrap();
        // The query has read everything but checkpointed only up to the end of the last round:
        // records after that stay, whatever the limit.
        engine.clean_now(now_ms()).unwrap();
        let before = engine.log().describe_topic("events").unwrap().partitions[0];
        assert!(before.start_offset <= round * 40 && before.size_bytes > 2048, "round {round}: {before:?}");
        // After the checkpoint the log shrinks to its limit.
        engine.checkpoint().unwrap();
        let report = engine.clean_now(now_ms()).unwrap();
        let after = engine.log().describe_topic("events").unwrap().partitions[0];
        assert!(report.segments_deleted > 0 && after.start_offset > before.start_offset, "round {round}: {report:?} {after:?}");
        assert!(after.size_bytes <= 2048, "round {round}: {after:?}");
        assert_eq!(after.end_offset, (round + 1) * 40);
        let status = engine.cleanup_status("events").unwrap();
        assert_eq!(status.last, report);
        // The query's output has every record, in order.
        let out: Vec<String> = records(engine.log().as_ref(), "COPY")
            .into_iter()
            .map(|(_, _, v)| {
                let j: serde_json::Value = serde_json::from_slice(&v.unwrap()).unwrap();
                j["V"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(out, expected, "round {round}");
    }
    let stats = engine.cleaner_stats();
    assert!(stats.passes >= 6 && stats.total.segments_deleted > 0 && stats.failures == 0, "{stats:?}");
    eddy.shutdown().unwrap();
}

#[test]
fn a_compacted_changelog_keeps_the_latest_value_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let eddy = open(dir.path());
    let engine = eddy.engine().clone();
    let mut s = eddy.session();
    run(&mut s, "SET 'auto.offset.reset' = 'earliest';");
    run(&mut s, "CREATE STREAM prices_in (sku STRING KEY, price INT) WITH (KAFKA_TOPIC='prices_in', VALUE_FORMAT='JSON', PARTITIONS=1);");
    run(&mut s, "CREATE TABLE prices WITH (SEGMENT_BYTES=1024) AS SELECT sku, LATEST_BY_OFFSET(price) AS price FROM prices_in GROUP BY sku;");
    // Rounds with a checkpoint between them, so that the changelog gets many segments.
    for round in 0..10 {
        for i in 0..20 {
            let n = round * 20 + i;
            run(&mut s, &format!("INSERT INTO prices_in (sku, price) VALUES ('sku{}', {n});", n % 5));
        }
        engine.wait_caught_up(None, Duration::from_secs(30)).unwrap();
        engine.checkpoint().unwrap();
    }
    let before = records(engine.log().as_ref(), "PRICES");
    let report = engine.clean_now(now_ms()).unwrap();
    let after = records(engine.log().as_ref(), "PRICES");
    assert!(report.records_compacted > 0 && after.len() < before.len(), "{report:?}: {} -> {}", before.len(), after.len());
    // Offsets are kept; only superseded records went; the last record of each key is its latest.
    for r in &after {
        assert!(before.contains(r));
    }
    let last = |recs: &[Rec], key: &[u8]| {
        recs.iter().rev().find(|r| r.1.as_deref() == Some(key)).cloned()
    };
    for k in 0..5 {
        let key = format!("sku{k}");
        let latest = last(&after, key.as_bytes()).unwrap();
        assert_eq!(Some(latest.clone()), last(&before, key.as_bytes()));
        let j: serde_json::Value = serde_json::from_slice(latest.2.as_ref().unwrap()).unwrap();
        assert_eq!(j["PRICE"], 195 + k, "{key}");
    }
    // A table read from the compacted changelog sees the same rows as the aggregate.
    run(&mut s, "CREATE SOURCE TABLE prices_again (sku STRING PRIMARY KEY, price INT) WITH (KAFKA_TOPIC='PRICES', VALUE_FORMAT='JSON');");
    engine.wait_caught_up(None, Duration::from_secs(30)).unwrap();
    for table in ["prices", "prices_again"] {
        let out = s.execute_all(&format!("SELECT sku, price FROM {table} WHERE sku = 'sku3';")).unwrap();
        let eddy_planner::Output::Rows(rows) = &out[0] else { panic!("rows") };
        let b = &rows.batches[0];
        assert_eq!(b.num_rows(), 1, "{table}");
        let price = b.column(1).as_any().downcast_ref::<datafusion::arrow::array::Int32Array>().unwrap().value(0);
        assert_eq!(price, 198, "{table}");
    }
    eddy.shutdown().unwrap();
}
