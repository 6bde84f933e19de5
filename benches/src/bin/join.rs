//! Join benchmarks (issue 4), each reported against a pass-through baseline measured in the same
//! run:
//! - `--mode stream-table`: Nexmark q3's shape, a stream of bids enriched from a table of auctions
//!   (`--table-rows`, default 1M) keyed by auction id; the table is loaded first (its records are
//!   older), then every bid looks its auction up.
//! - `--mode stream-stream`: two streams of `--records` each, joined `WITHIN 10 SECONDS` on a key
//!   (`--keys` distinct keys, one record per stream per millisecond), reporting peak RSS: run it
//!   with two stream lengths to see that the buffers expire with the window. `--grace MS` sets the
//!   GRACE PERIOD (default 0); `--grace none` leaves it out, so that ksqlDB's legacy 24 hours keep
//!   every row of these streams buffered: memory then holds the newest rows up to the join's
//!   budget and RocksDB the rest.
//!
//! `cargo run --release -p eddy-benches --bin join -- --mode stream-table --records 10000000`
//! `cargo run --release -p eddy-benches --bin join -- --mode stream-stream --records 5000000`
//! `cargo run --release -p eddy-benches --bin join -- --mode stream-stream --records 5000000 --grace none`

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use eddy_benches::{load_topic, peak_rss_bytes, run_to_completion, Rng};
use storage::TopicConfig;

#[derive(Parser)]
struct Args {
    /// `stream-table` or `stream-stream`.
    #[arg(long, default_value = "stream-table")]
    mode: String,
    /// Stream records to load (per stream in `stream-stream` mode).
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Rows of the auctions table (`stream-table` mode).
    #[arg(long, default_value_t = 1_000_000)]
    table_rows: u64,
    /// Distinct join keys (`stream-stream` mode).
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// GRACE PERIOD of the stream-stream join in ms, or `none` for no GRACE PERIOD clause.
    #[arg(long, default_value = "0")]
    grace: String,
}

const T0: i64 = 1_700_000_000_000;

fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let eddy = planner::Eddy::open(tmp.path(), engine::EngineConfig::default())?;
    let log = eddy.engine().log().clone();
    let mut s = eddy.session();
    s.execute_all("SET 'auto.offset.reset'='earliest';")?;
    let t0 = Instant::now();
    let results = if args.mode == "stream-stream" {
        for t in ["lefts", "rights"] {
            log.create_topic(t, &TopicConfig::new(1))?;
        }
        let mut rng = Rng::new(42);
        load_topic(&*log, "lefts", 1, args.records, &mut rng, |i, rng| (rng.below(args.keys) as i64, format!(r#"{{"a":{}}}"#, i % 1000), T0 + i as i64))?;
        load_topic(&*log, "rights", 1, args.records, &mut rng, |i, rng| (rng.below(args.keys) as i64, format!(r#"{{"b":{}}}"#, i % 777), T0 + i as i64))?;
        println!("loaded 2 x {} records with {} keys in {:.1}s", args.records, args.keys, t0.elapsed().as_secs_f64());
        s.execute_all(
            "CREATE STREAM lefts (k BIGINT KEY, a BIGINT) WITH (KAFKA_TOPIC='lefts', VALUE_FORMAT='JSON');
             CREATE STREAM rights (k BIGINT KEY, b BIGINT) WITH (KAFKA_TOPIC='rights', VALUE_FORMAT='JSON');",
        )?;
        let base = run_to_completion(&eddy, &mut s, "pass-through (both streams)", "CREATE STREAM copy_l AS SELECT * FROM lefts; CREATE STREAM copy_r AS SELECT * FROM rights;", 2 * args.records)?;
        let rss_before = peak_rss_bytes();
        let (within, name) = match args.grace.as_str() {
            "none" => ("WITHIN 10 SECONDS".to_string(), "stream-stream WITHIN 10s (legacy 24h grace)".to_string()),
            ms => {
                let ms: u64 = ms.parse()?;
                (format!("WITHIN 10 SECONDS GRACE PERIOD {ms} MILLISECONDS"), format!("stream-stream WITHIN 10s GRACE {ms}ms"))
            }
        };
        let join = run_to_completion(
            &eddy,
            &mut s,
            &name,
            &format!("CREATE STREAM joined AS SELECT l.k AS k, l.a, r.b FROM lefts l JOIN rights r {within} ON l.k = r.k;"),
            2 * args.records,
        )?;
        let out: i64 = log.describe_topic("JOINED")?.partitions.iter().map(|p| p.end_offset).sum();
        println!(
            "join output: {out} records; peak RSS {:.0} MB (before the join: {:.0} MB)",
            peak_rss_bytes() as f64 / 1e6,
            rss_before as f64 / 1e6
        );
        vec![base, join]
    } else {
        log.create_topic("auctions", &TopicConfig::new(1))?;
        log.create_topic("bids", &TopicConfig::new(1))?;
        let mut rng = Rng::new(42);
        let rows = args.table_rows;
        load_topic(&*log, "auctions", 1, rows, &mut rng, |i, rng| (i as i64, format!(r#"{{"seller":{},"category":{}}}"#, rng.below(100_000), 10 + rng.below(10)), T0))?;
        load_topic(&*log, "bids", 1, args.records, &mut rng, |i, rng| (rng.below(rows) as i64, format!(r#"{{"bidder":{},"price":{}}}"#, rng.below(1_000_000), 1 + rng.below(10_000)), T0 + 1 + i as i64))?;
        println!("loaded {} auctions and {} bids in {:.1}s", rows, args.records, t0.elapsed().as_secs_f64());
        s.execute_all(
            "CREATE TABLE auctions (id BIGINT PRIMARY KEY, seller BIGINT, category BIGINT) WITH (KAFKA_TOPIC='auctions', VALUE_FORMAT='JSON');
             CREATE STREAM bids (auction BIGINT KEY, bidder BIGINT, price BIGINT) WITH (KAFKA_TOPIC='bids', VALUE_FORMAT='JSON');",
        )?;
        let base = run_to_completion(&eddy, &mut s, "pass-through (bids)", "CREATE STREAM copy AS SELECT * FROM bids;", args.records)?;
        let join = run_to_completion(
            &eddy,
            &mut s,
            "bids JOIN auctions (enrich)",
            "CREATE STREAM enriched AS SELECT b.auction AS auction, b.bidder, b.price, a.seller, a.category FROM bids b JOIN auctions a ON b.auction = a.id;",
            args.records,
        )?;
        let out: i64 = log.describe_topic("ENRICHED")?.partitions.iter().map(|p| p.end_offset).sum();
        println!("join output: {out} records (of {} bids); peak RSS {:.0} MB", args.records, peak_rss_bytes() as f64 / 1e6);
        println!("(the join's figures count bids only; its CPU time includes loading the {rows} auctions into the table state)");
        vec![base, join]
    };
    let base = results[0].per_cpu_sec();
    for m in &results {
        println!("{}  ({:.2}x pass-through)", m.line(), m.per_cpu_sec() / base);
    }
    eddy.shutdown()?;
    Ok(())
}
