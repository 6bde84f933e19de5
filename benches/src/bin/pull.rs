//! Pull-query benchmarks (issue 18) through the Session API, on a materialized table of
//! `--rows` rows (a source table over JSON records, `--groups` distinct values of G):
//! - baseline: a raw scan of the table's state entries (RocksDB iteration, no decoding), the
//!   floor any full scan pays;
//! - a full-table scan through the simple pull path (`WHERE V < 0`: decode and filter, no rows);
//! - the full-SQL path: `SELECT G, COUNT(*), SUM(V) FROM t GROUP BY G` (DataFusion over the
//!   state): latency, and state rows scanned per CPU-second;
//! - key lookups: p50 / p99 over `--lookups` random keys (the fast path).
//!
//! `cargo run --release -p eddy-benches --bin pull -- --rows 1000000 --groups 100`

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use eddy_benches::{load_topic, process_cpu_time, Rng};
use storage::TopicConfig;

#[derive(Parser)]
struct Args {
    /// Rows of the table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Distinct values of the grouping column.
    #[arg(long, default_value_t = 100)]
    groups: u64,
    /// Timed runs of each full-table query.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Key lookups to time.
    #[arg(long, default_value_t = 20_000)]
    lookups: u64,
}

struct Timing {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Timing {
    fn median(v: &[Duration]) -> Duration {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    }

    fn line(&self, name: &str, rows: u64, base: Option<f64>) -> String {
        let (wall, cpu) = (Self::median(&self.wall), Self::median(&self.cpu));
        let per_cpu = rows as f64 / cpu.as_secs_f64().max(1e-9);
        let ratio = base.map(|b| format!(", {:.2}x the raw scan's CPU time", cpu.as_secs_f64() / b)).unwrap_or_default();
        format!("{name}: median {:.1} ms wall, {:.1} ms CPU; {:.2}M rows/s scanned per CPU-second{ratio}", wall.as_secs_f64() * 1e3, cpu.as_secs_f64() * 1e3, per_cpu / 1e6)
    }
}

fn time(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    f()?; // warm up
    let mut t = Timing { wall: Vec::new(), cpu: Vec::new() };
    for _ in 0..runs {
        let (c0, w0) = (process_cpu_time(), Instant::now());
        f()?;
        t.wall.push(w0.elapsed());
        t.cpu.push(process_cpu_time() - c0);
    }
    Ok(t)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let eddy = planner::Eddy::open(tmp.path(), engine::EngineConfig::default())?;
    let log = eddy.engine().log().clone();
    log.create_topic("t", &TopicConfig::new(1))?;
    let t0 = Instant::now();
    let groups = args.groups;
    load_topic(&*log, "t", 1, args.rows, &mut Rng::new(42), |id, rng| (id as i64, format!(r#"{{"g":{},"v":{}}}"#, id % groups, rng.below(1000)), 1_700_000_000_000 + id as i64))?;
    let mut s = eddy.session();
    s.execute_all(
        "SET 'auto.offset.reset'='earliest';
         SET 'eddy.pull.timeout.ms'='600000';
         CREATE SOURCE TABLE t (id BIGINT PRIMARY KEY, g INT, v BIGINT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');",
    )?;
    // The first pull query waits for the table to be materialized.
    let out = s.execute_all("SELECT COUNT(*) FROM t;")?;
    let n = match out.first() {
        Some(planner::Output::Rows(r)) => r.batches[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().map(|a| a.value(0)),
        _ => None,
    };
    println!("loaded and materialized {} rows ({} groups) in {:.1}s; COUNT(*) = {n:?}", args.rows, groups, t0.elapsed().as_secs_f64());

    let state = eddy.engine().state().clone();
    let prefix = engine::materialized::table_prefix("T");
    let end = engine::runtime::keys::prefix_end(&prefix);
    let raw = time(args.runs, || {
        let mut k = 0u64;
        for kv in state.scan(&prefix, &end)? {
            let (key, _) = kv?;
            k += key.len() as u64;
        }
        std::hint::black_box(k);
        Ok(())
    })?;
    let base = Timing::median(&raw.cpu).as_secs_f64();
    println!("{}", raw.line("baseline: raw state scan", args.rows, None));
    let scan = time(args.runs, || {
        s.execute_all("SELECT * FROM t WHERE v < 0;")?;
        Ok(())
    })?;
    println!("{}", scan.line("simple pull path, full scan (WHERE v < 0)", args.rows, Some(base)));
    let grouped = time(args.runs, || {
        let out = s.execute_all("SELECT g, COUNT(*) AS n, SUM(v) AS total FROM t GROUP BY g;")?;
        if let Some(planner::Output::Rows(r)) = out.first() {
            assert_eq!(r.num_rows() as u64, groups);
        }
        Ok(())
    })?;
    println!("{}", grouped.line(&format!("full-SQL pull, GROUP BY {groups} groups (COUNT, SUM)"), args.rows, Some(base)));

    let mut rng = Rng::new(7);
    let mut lat = Vec::with_capacity(args.lookups as usize);
    for _ in 0..args.lookups {
        let sql = format!("SELECT * FROM t WHERE id = {};", rng.below(args.rows));
        let t = Instant::now();
        s.execute_all(&sql)?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!("key lookups over {} rows: {} queries, p50 {:?}, p99 {:?}, max {:?}", args.rows, args.lookups, pct(0.5), pct(0.99), lat[lat.len() - 1]);
    eddy.shutdown()?;
    Ok(())
}
