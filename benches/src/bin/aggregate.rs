//! Aggregation benchmarks (issue 3), each reported against a pass-through baseline measured in
//! the same run:
//! - `--mode windows`: tumbling-window COUNT and SUM by key over JSON records with 10k keys
//!   (EMIT FINAL and EMIT CHANGES), and a hopping window (size 10 s, advance 2 s) by panes and,
//!   as its baseline, per window (a floating-point SUM, which panes do not take);
//! - `--mode distinct`: a non-windowed GROUP BY over records with all-distinct keys, reporting peak
//!   RSS, then pull-query latency (p50/p99) by key on the resulting table.
//!
//! `cargo run --release -p eddy-benches --bin aggregate -- --mode windows --records 10000000`
//! `cargo run --release -p eddy-benches --bin aggregate -- --mode distinct --records 10000000`

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use eddy_benches::{load_topic, peak_rss_bytes, run_to_completion, Rng};
use storage::TopicConfig;

#[derive(Parser)]
struct Args {
    /// `windows` or `distinct`.
    #[arg(long, default_value = "windows")]
    mode: String,
    /// Records to load.
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Distinct keys (`windows` mode).
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Records per millisecond of event time: 1 gives each 10 s window about one record per key
    /// (the worst case: nothing to reduce), 100 about a hundred.
    #[arg(long, default_value_t = 1)]
    per_ms: u64,
    /// Pull queries to time (`distinct` mode).
    #[arg(long, default_value_t = 20_000)]
    lookups: u64,
    /// `windows` mode: run only the aggregates whose name contains this (after the baseline),
    /// e.g. `hopping` or `EMIT FINAL`, to profile one of them alone.
    #[arg(long)]
    only: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let eddy = planner::Eddy::open(tmp.path(), engine::EngineConfig::default())?;
    let log = eddy.engine().log().clone();
    log.create_topic("src", &TopicConfig::new(args.partitions))?;
    let distinct = args.mode == "distinct";
    let keys = if distinct { args.records } else { args.keys };
    let t0 = Instant::now();
    // `{"k": "key_<i>", "v": <int>}` keyed by id, `per_ms` records per millisecond.
    let (n, per_ms) = (args.records, args.per_ms.max(1));
    load_topic(&*log, "src", args.partitions, n, &mut Rng::new(42), |id, rng| {
        let k = if keys >= n { id } else { rng.below(keys) };
        (id as i64, format!(r#"{{"k":"key_{k}","v":{}}}"#, rng.below(1000)), 1_700_000_000_000 + (id / per_ms) as i64)
    })?;
    println!(
        "loaded {} records with {} keys, {} per ms of event time, in {:.1}s",
        args.records,
        keys,
        args.per_ms,
        t0.elapsed().as_secs_f64()
    );
    let mut s = eddy.session();
    s.execute_all(
        "CREATE STREAM src (id BIGINT KEY, k STRING, v BIGINT) WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON');
         SET 'auto.offset.reset'='earliest';",
    )?;
    let mut results = vec![run_to_completion(&eddy, &mut s, "pass-through (SELECT *)", "CREATE STREAM copy AS SELECT * FROM src;", args.records)?];
    if distinct {
        let rss_before = peak_rss_bytes();
        results.push(run_to_completion(
            &eddy,
            &mut s,
            "GROUP BY distinct keys",
            "CREATE TABLE counts AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM src GROUP BY k;",
            args.records,
        )?);
        println!("peak RSS: {:.0} MB (before the aggregation: {:.0} MB)", peak_rss_bytes() as f64 / 1e6, rss_before as f64 / 1e6);
        pull_latency(&eddy, args.records, args.lookups)?;
    } else {
        for (name, sql) in [
            ("tumbling 10s COUNT+SUM, EMIT FINAL", "CREATE TABLE t1 AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM src WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 0 SECONDS) GROUP BY k EMIT FINAL;"),
            ("tumbling 10s COUNT+SUM, EMIT CHANGES", "CREATE TABLE t2 AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM src WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY k;"),
            ("hopping 10s/2s COUNT+SUM, EMIT FINAL", "CREATE TABLE t3 AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM src WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 2 SECONDS, GRACE PERIOD 0 SECONDS) GROUP BY k EMIT FINAL;"),
            // A floating-point SUM does not merge exactly, so this one keeps a state per window
            // (the path every hopping aggregate took before panes): the baseline of the one above.
            ("hopping 10s/2s, per window", "CREATE TABLE t4 AS SELECT k, COUNT(*) AS n, SUM(CAST(v AS DOUBLE)) AS total FROM src WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 2 SECONDS, GRACE PERIOD 0 SECONDS) GROUP BY k EMIT FINAL;"),
        ] {
            if args.only.as_deref().is_some_and(|o| !name.contains(o)) {
                continue;
            }
            results.push(run_to_completion(&eddy, &mut s, name, sql, args.records)?);
        }
    }
    let base = results[0].per_cpu_sec();
    for m in &results {
        println!("{}  ({:.2}x pass-through)", m.line(), m.per_cpu_sec() / base);
    }
    eddy.shutdown()?;
    Ok(())
}


/// Random key lookups through the Session API, as a client would run them.
fn pull_latency(eddy: &planner::Eddy, keys: u64, n: u64) -> Result<()> {
    let mut s = eddy.session();
    let mut rng = Rng::new(7);
    // Warm up and flush the materialized table.
    s.execute_all("SELECT * FROM counts WHERE k = 'key_0';")?;
    let mut lat = Vec::with_capacity(n as usize);
    let mut found = 0;
    for _ in 0..n {
        let k = rng.below(keys);
        let sql = format!("SELECT * FROM counts WHERE k = 'key_{k}';");
        let t = Instant::now();
        let out = s.execute_all(&sql)?;
        lat.push(t.elapsed());
        if let Some(planner::Output::Rows(r)) = out.first() {
            found += r.num_rows();
        }
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "pull query by key over {keys} keys: {n} queries, {found} rows, p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
    Ok(())
}

