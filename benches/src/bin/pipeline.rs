//! End-to-end throughput of a stateless persistent query: JSON in -> WHERE + projection -> JSON
//! out, over records already in a topic. Reports records per second of wall time and per second
//! of whole-process CPU time, against a baseline measured in the same run: a pass-through query
//! (SELECT *) over the same records.
//!
//! `cargo run --release -p eddy-benches --bin pipeline -- --records 10000000 [--partitions N]`

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use eddy_benches::{load_topic, run_to_completion, Rng};
use storage::TopicConfig;

#[derive(Parser)]
struct Args {
    /// Records to load.
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Partitions of the input topic (= tasks = cores used).
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Data directory (default: a temporary one).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let eddy = planner::Eddy::open(&dir, engine::EngineConfig::default())?;
    let log = eddy.engine().log().clone();
    log.create_topic("src", &TopicConfig::new(args.partitions))?;
    let t0 = Instant::now();
    load(&*log, args.records, args.partitions)?;
    let load_time = t0.elapsed();
    let bytes: u64 = log.describe_topic("src")?.partitions.iter().map(|p| p.size_bytes).sum();
    println!(
        "loaded {} records ({:.1} MB, {:.0} bytes/record) into {} partition(s) in {:.2}s",
        args.records,
        bytes as f64 / 1e6,
        bytes as f64 / args.records as f64,
        args.partitions,
        load_time.as_secs_f64()
    );
    let mut s = eddy.session();
    s.execute_all(
        "CREATE STREAM src (id BIGINT KEY, user_id BIGINT, page STRING, amount DOUBLE, ts BIGINT, agent STRING) \
         WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON');
         SET 'auto.offset.reset'='earliest';",
    )?;
    let base = run_to_completion(&eddy, &mut s, "pass-through (SELECT *)", "CREATE STREAM all_rows AS SELECT * FROM src;", args.records)?;
    let filtered = run_to_completion(
        &eddy,
        &mut s,
        "WHERE + projection",
        "CREATE STREAM big AS SELECT id, user_id, page, amount * 100 AS cents FROM src WHERE amount > 50.0 AND page <> '/health';",
        args.records,
    )?;
    println!("{}", base.line());
    println!("{}", filtered.line());
    println!(
        "filter+projection / pass-through: {:.2}x rec/cpu-s",
        filtered.per_cpu_sec() / base.per_cpu_sec()
    );
    eddy.shutdown()?;
    Ok(())
}


/// Appends `n` JSON records of about 110 bytes, keyed by id.
pub fn load(log: &dyn storage::TopicLog, n: u64, partitions: u32) -> Result<()> {
    const PAGES: [&str; 6] = ["/home", "/search", "/cart", "/checkout", "/health", "/item"];
    load_topic(log, "src", partitions, n, &mut Rng::new(42), |id, rng| {
        let value = format!(
            r#"{{"user_id":{},"page":"{}","amount":{}.{:02},"ts":{},"agent":"bench/1.0"}}"#,
            rng.below(100_000),
            PAGES[rng.below(6) as usize],
            rng.below(100),
            rng.below(100),
            1_700_000_000_000u64 + id
        );
        (id as i64, value, 1_700_000_000_000 + id as i64)
    })
}
