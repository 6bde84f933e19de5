//! Costs of retention and compaction (issue 14), each against a baseline measured in the same run.
//!
//! ```text
//! retention --mode q0 [--events N] [--rounds R]     # Nexmark q0 with and without the cleaner
//! retention --mode compact [--mb 1024]              # one compaction pass over a changelog topic
//! retention --mode soak [--hours 24] [--rate 200]   # simulated time, 1-hour retention: disk use
//! ```
//!
//! - `q0`: Nexmark q0 (pass-through of bids) to completion in a fresh data directory, twice per
//!   round: without cleaning (baseline) and with the cleaner's pass run every 100 ms from when q0
//!   starts (300 times as often as the default), both over topics with `retention.bytes` so that
//!   it deletes consumed segments of `bid` and old output as q0 runs. Checks that q0 wrote one
//!   record per bid; reports events per CPU-second of each and their ratio.
//! - `compact`: writes a compacted topic of `--mb` MB (keys drawn from 100,000, each written many
//!   times, 64 MiB segments), then times one compaction pass: MB/s of log scanned and rewritten.
//! - `soak`: a persistent query copies a stream with `RETENTION_MS` of one hour at a steady rate of
//!   simulated time (records stamped with it); every simulated 5 minutes the query checkpoints and
//!   the cleaner runs at that simulated time. Reports the data directory's topic bytes per
//!   simulated hour: flat after the first hour.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use eddy_benches::process_cpu_time;
use engine::nexmark::{load_topics, GeneratorConfig};
use engine::EngineConfig;
use planner::Eddy;
use storage::{CleanRequest, CleanupPolicy, FileLog, LogOptions, Offset, RecordIn, TopicAdmin, TopicConfig, TopicLog};

#[derive(Parser, Debug)]
struct Args {
    /// q0, compact or soak.
    #[arg(long)]
    mode: String,
    /// q0: Nexmark events.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// q0: rounds (each runs the baseline and the cleaner once, alternating).
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// compact: size of the topic in MB.
    #[arg(long, default_value_t = 1024)]
    mb: u64,
    /// soak: simulated hours.
    #[arg(long, default_value_t = 24)]
    hours: u64,
    /// soak: records per simulated second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Work directory (default: a temporary one).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    match args.mode.as_str() {
        "q0" => q0(&args, &dir),
        "compact" => compact(&args, &dir),
        "soak" => soak(&args, &dir),
        m => anyhow::bail!("unknown mode {m}: expected q0, compact or soak"),
    }
}

/// One q0 run; returns (events per CPU-second, wall seconds, bytes the cleaner freed).
fn q0_run(dir: &Path, events: u64, cleaner: bool) -> Result<(f64, f64, u64)> {
    let _ = std::fs::remove_dir_all(dir);
    // The background cleaner is off in both runs; with `cleaner`, the bench runs the same passes
    // (`Engine::clean_now`) every 100 ms once q0 runs. Started before q0, passes would delete
    // `bid` segments that no query reads yet (as Kafka would), and q0 would have less to do.
    let config = EngineConfig { cleanup_interval: Duration::from_secs(1 << 30), ..EngineConfig::default() };
    let eddy = Eddy::open(dir, config)?;
    let log = eddy.engine().log().clone();
    // Both runs have the same topic settings; only the cleaner differs.
    let limited = TopicConfig { segment_bytes: 8 << 20, retention_bytes: Some(32 << 20), ..TopicConfig::new(1) };
    for t in ["person", "auction", "bid", "NEXMARK_Q0"] {
        log.create_topic(t, &limited)?;
    }
    let counts = load_topics(&log, GeneratorConfig::default(), events, 1, |_, _| Ok(()))?;
    let bids = counts.bids;
    let mut s = eddy.session();
    s.execute_all(include_str!("../../nexmark/sources.sql"))?;
    let sql = include_str!("../../nexmark/q0.sql");
    let cpu0 = process_cpu_time();
    let t0 = Instant::now();
    s.execute_all(sql)?;
    let stop = Arc::new(AtomicBool::new(false));
    let passes = cleaner.then(|| {
        let (engine, stop) = (eddy.engine().clone(), stop.clone());
        std::thread::spawn(move || -> Result<()> {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                engine.clean_now(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64)?;
            }
            Ok(())
        })
    });
    eddy.engine().wait_caught_up(None, Duration::from_secs(7200))?;
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = passes {
        t.join().map_err(|_| anyhow::anyhow!("the cleaner thread panicked"))??;
    }
    let (cpu, wall) = (process_cpu_time() - cpu0, t0.elapsed());
    let freed = eddy.engine().cleaner_stats().total.bytes_freed;
    // Every bid went through q0.
    let out: u64 = log.describe_topic("NEXMARK_Q0")?.partitions.iter().map(|p| p.end_offset as u64).sum();
    anyhow::ensure!(out == bids, "q0 wrote {out} records for {bids} bids");
    eddy.shutdown()?;
    Ok((bids as f64 / cpu.as_secs_f64(), wall.as_secs_f64(), freed))
}

fn q0(args: &Args, dir: &Path) -> Result<()> {
    let mut base = Vec::new();
    let mut with = Vec::new();
    for r in 0..args.rounds {
        // Alternate the order so that neither always runs on a warmer machine.
        for cleaner in if r % 2 == 0 { [false, true] } else { [true, false] } {
            let (eps, wall, freed) = q0_run(&dir.join("run"), args.events, cleaner)?;
            println!(
                "round {r} {:<8} {eps:>10.0} bids/cpu-s  wall {wall:>6.2} s  cleaner freed {:>6.1} MB",
                if cleaner { "cleaner" } else { "baseline" },
                freed as f64 / 1e6
            );
            if cleaner { with.push(eps) } else { base.push(eps) }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (b, w) = (mean(&base), mean(&with));
    println!("q0 bids per CPU-second: baseline {b:.0}, with the cleaner every 100 ms {w:.0}: ratio {:.3} (cost {:.1}%)", w / b, (1.0 - w / b) * 100.0);
    Ok(())
}

fn compact(args: &Args, dir: &Path) -> Result<()> {
    let log = FileLog::open(&dir.join("topics"), LogOptions::default())?;
    let cfg = TopicConfig { cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::new(1) };
    log.create_topic("changelog", &cfg)?;
    let target = args.mb << 20;
    let value = vec![b'x'; 200];
    let mut rng = eddy_benches::Rng::new(7);
    let mut n = 0u64;
    while log.describe_topic("changelog")?.partitions[0].size_bytes < target {
        let keys: Vec<Vec<u8>> = (0..10_000).map(|_| format!("key-{:06}", rng.below(100_000)).into_bytes()).collect();
        let recs: Vec<RecordIn<'_>> = keys.iter().map(|k| RecordIn { timestamp: n as i64, key: Some(k), value: Some(&value), headers: &[] }).collect();
        log.append("changelog", 0, &recs)?;
        n += recs.len() as u64;
    }
    log.sync()?;
    let before = log.describe_topic("changelog")?.partitions[0];
    let request = CleanRequest { now_ms: 0, floors: vec![Offset::MAX], delete_consumed: false };
    let cpu0 = process_cpu_time();
    let t0 = Instant::now();
    let report = log.clean_topic("changelog", &request)?;
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), (process_cpu_time() - cpu0).as_secs_f64());
    let after = log.describe_topic("changelog")?.partitions[0];
    let mb = before.size_bytes as f64 / (1 << 20) as f64;
    println!(
        "compaction of {mb:.0} MB ({n} records, 100,000 keys, 64 MiB segments): {wall:.2} s wall, {cpu:.2} s cpu, {:.0} MB/s; {} records removed, {:.0} MB -> {:.0} MB",
        mb / wall,
        report.records_compacted,
        mb,
        after.size_bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn soak(args: &Args, dir: &Path) -> Result<()> {
    let config = EngineConfig { cleanup_interval: Duration::from_secs(1 << 30), ..EngineConfig::default() };
    let eddy = Eddy::open(dir, config)?;
    let engine = eddy.engine().clone();
    let mut s = eddy.session();
    s.execute_all(
        "CREATE STREAM events (id BIGINT KEY, payload STRING) WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON', PARTITIONS=1, RETENTION_MS=3600000, SEGMENT_BYTES=1048576);
         SET 'auto.offset.reset'='earliest';
         CREATE STREAM copy WITH (RETENTION_MS=3600000, SEGMENT_BYTES=1048576) AS SELECT id, payload FROM events;",
    )?;
    let start_ms: i64 = 1_704_067_200_000;
    let step_s: u64 = 300; // a cleaner pass every simulated 5 minutes
    let payload = format!("{{\"PAYLOAD\":\"{}\"}}", "p".repeat(80));
    let mut id: i64 = 0;
    let t0 = Instant::now();
    println!("simulated hour  topic bytes (events + copy)  records so far");
    for step in 0..(args.hours * 3600 / step_s) {
        let base = start_ms + (step * step_s * 1000) as i64;
        let n = args.rate * step_s;
        let keys: Vec<[u8; 8]> = (0..n).map(|i| (id + i as i64).to_be_bytes()).collect();
        let recs: Vec<RecordIn<'_>> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| RecordIn { timestamp: base + (i as u64 * 1000 / args.rate) as i64, key: Some(k), value: Some(payload.as_bytes()), headers: &[] })
            .collect();
        for chunk in recs.chunks(10_000) {
            engine.append("events", 0, chunk)?;
        }
        id += n as i64;
        engine.wait_caught_up(None, Duration::from_secs(600))?;
        engine.checkpoint()?;
        let now = base + (step_s * 1000) as i64;
        engine.clean_now(now).context("cleaner pass")?;
        if (step + 1) % (3600 / step_s) == 0 {
            println!("{:>14}  {:>27}  {id:>14}", (step + 1) * step_s / 3600, dir_bytes(&dir.join("topics")));
        }
    }
    let stats = engine.cleaner_stats();
    println!(
        "{} simulated hours in {:.1} s: {} segments deleted, {:.0} MB freed",
        args.hours,
        t0.elapsed().as_secs_f64(),
        stats.total.segments_deleted,
        stats.total.bytes_freed as f64 / 1e6
    );
    eddy.shutdown()?;
    Ok(())
}
