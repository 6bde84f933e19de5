//! A Nexmark q1-style projection (every record, a computed column) over AVRO in and AVRO out,
//! against the same query over JSON in and JSON out, in the same run: records per second of
//! wall time and per CPU-second of the whole process.
//!
//! The JSON input is generated; the AVRO input is the same records converted by a persistent
//! query (not timed), so both runs read identical rows.
//!
//! `cargo run --release -p eddy-benches --bin avro_pipeline -- --records 5000000`

use anyhow::Result;
use clap::Parser;
use eddy_benches::{load_topic, run_to_completion, Rng};
use storage::TopicConfig;

#[derive(Parser)]
struct Args {
    /// Records to load.
    #[arg(long, default_value_t = 5_000_000)]
    records: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let eddy = planner::Eddy::open(tmp.path(), engine::EngineConfig::default())?;
    let log = eddy.engine().log().clone();
    log.create_topic("bid_json", &TopicConfig::new(1))?;
    load_topic(&*log, "bid_json", 1, args.records, &mut Rng::new(7), |id, rng| {
        let value = format!(
            r#"{{"auction":{},"bidder":{},"price":{},"channel":"{}","url":"https://example.com/item/{}","ts":{}}}"#,
            1000 + rng.below(10_000),
            rng.below(100_000),
            rng.below(1_000_000),
            ["web", "app", "partner"][rng.below(3) as usize],
            rng.below(1000),
            1_700_000_000_000u64 + id
        );
        (id as i64, value, 1_700_000_000_000 + id as i64)
    })?;
    let mut s = eddy.session();
    s.execute_all(
        "CREATE STREAM bid_json (id BIGINT KEY, auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, ts BIGINT) \
         WITH (KAFKA_TOPIC='bid_json', VALUE_FORMAT='JSON');
         SET 'auto.offset.reset'='earliest';",
    )?;
    let convert = run_to_completion(
        &eddy,
        &mut s,
        "convert JSON -> AVRO (setup, not compared)",
        "CREATE STREAM bid_avro WITH (KAFKA_TOPIC='bid_avro', VALUE_FORMAT='AVRO') AS SELECT * FROM bid_json;",
        args.records,
    )?;
    let bytes = |t: &str| -> Result<u64> { Ok(log.describe_topic(t)?.partitions.iter().map(|p| p.size_bytes).sum()) };
    println!(
        "{} records: JSON {:.0} bytes/record, AVRO {:.0} bytes/record",
        args.records,
        bytes("bid_json")? as f64 / args.records as f64,
        bytes("bid_avro")? as f64 / args.records as f64
    );
    let q1 = |from: &str, to: &str, format: &str| {
        format!(
            "CREATE STREAM {to} WITH (VALUE_FORMAT='{format}') AS SELECT auction, bidder, CAST(price AS DOUBLE) * 0.908 AS price, ts FROM {from};"
        )
    };
    let json = run_to_completion(&eddy, &mut s, "q1 JSON -> JSON", &q1("bid_json", "q1_json", "JSON"), args.records)?;
    let avro = run_to_completion(&eddy, &mut s, "q1 AVRO -> AVRO", &q1("bid_avro", "q1_avro", "AVRO"), args.records)?;
    println!("{}", convert.line());
    println!("{}", json.line());
    println!("{}", avro.line());
    println!("AVRO / JSON: {:.2}x rec/cpu-s", avro.per_cpu_sec() / json.per_cpu_sec());
    eddy.shutdown()?;
    Ok(())
}
