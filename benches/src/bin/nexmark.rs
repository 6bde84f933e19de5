//! Nexmark driver (issue 8): generates N events once into a template data directory, then runs
//! each query of `benches/nexmark/qN.sql` as persistent queries to completion, each in a fresh
//! process (so that peak RSS is per query) over hard links of the template's topics, and reports
//! per query:
//! - events/s (wall) and events per CPU-second (whole-process CPU time, so robust to other load),
//!   counting the events of the topics the query reads (its `-- inputs:` line);
//! - peak RSS of the process;
//! - p50/p99 end-to-end latency at a fixed input rate of half the measured maximum: events are
//!   generated before the run and appended in 1 ms batches on a wall-clock schedule (one append
//!   per topic per tick); a batch's latency is the time from its append until the queries reading
//!   the Nexmark topics have processed it (decoded, computed and written their output or state);
//!   window results additionally wait for event time to pass;
//! - the longest checkpoint pause during the latency measurement (the tasks wait until the
//!   checkpoint's cut is staged, not until it is durable), and how much of it went to gathering
//!   the cut (every task reaching its barrier and flushing its operators) rather than staging it;
//! - the output record count and a sample record (a query with no output is flagged).
//!
//! ```text
//! benches/nexmark/run [--events N] [--queries q0,q1] [--json FILE] [--no-latency]
//! nexmark --events N --dir D --load-only [--export-json DIR]   # data for compare-flink
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use eddy_benches::{peak_rss_bytes, process_cpu_time};
use engine::nexmark::{load_topics, EventKind, GeneratorConfig, LoadCounts};
use serde_json::{json, Value};
use storage::{FileLog, LogOptions, TopicLog};

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Events to generate (persons:auctions:bids = 1:3:46).
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Events per second of event time.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Partitions per topic.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Queries to run, comma-separated (default: every qN.sql).
    #[arg(long, value_delimiter = ',')]
    queries: Vec<String>,
    /// Work directory: the template data and one directory per run (default: a temporary one).
    /// A template generated with the same events, rate, seed and partitions is reused.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Directory of the query files.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/nexmark"))]
    sql_dir: PathBuf,
    /// Also write the events as JSON lines to DIR/{person,auction,bid}.json (for compare-flink).
    #[arg(long)]
    export_json: Option<PathBuf>,
    /// Only generate the template (and the export), run nothing.
    #[arg(long)]
    load_only: bool,
    /// Skip the latency measurement.
    #[arg(long)]
    no_latency: bool,
    /// Seconds of fixed-rate input for the latency measurement.
    #[arg(long, default_value_t = 10.0)]
    latency_secs: f64,
    /// Milliseconds between checkpoints (the engine's `checkpoint.interval.ms`).
    #[arg(long, default_value_t = 1000)]
    checkpoint_ms: u64,
    /// Write the results as JSON to FILE.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Internal: run one query in this process (the run directory is `--dir`).
    #[arg(long, hide = true)]
    child: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(q) = &args.child {
        let r = child(&args, q)?;
        println!("RESULT {}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let template = dir.join("template");
    let counts = ensure_template(&args, &template)?;
    if args.load_only {
        return Ok(());
    }
    let queries = if args.queries.is_empty() { all_queries(&args.sql_dir)? } else { args.queries.clone() };
    let mut results = Vec::new();
    for q in &queries {
        let run_dir = dir.join(format!("run-{q}"));
        let _ = std::fs::remove_dir_all(&run_dir);
        link_topics(&template, &run_dir)?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["--child", q, "--dir"]).arg(&run_dir).arg("--sql-dir").arg(&args.sql_dir);
        cmd.args(["--events", &args.events.to_string(), "--rate", &args.rate.to_string()]);
        cmd.args(["--seed", &args.seed.to_string(), "--partitions", &args.partitions.to_string()]);
        cmd.args(["--latency-secs", &args.latency_secs.to_string(), "--checkpoint-ms", &args.checkpoint_ms.to_string()]);
        if args.no_latency {
            cmd.arg("--no-latency");
        }
        eprintln!("== {q}");
        let out = cmd.output()?;
        std::io::stderr().write_all(&out.stderr)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let _ = std::fs::remove_dir_all(&run_dir);
        match stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) {
            Some(r) if out.status.success() => {
                let v: Value = serde_json::from_str(r)?;
                eprintln!("{}", row(&v));
                results.push(v);
            }
            _ => {
                eprintln!("{q} failed: {}", out.status);
                results.push(json!({"query": q, "error": format!("{}", out.status)}));
            }
        }
    }
    println!("Nexmark: {} events ({} persons, {} auctions, {} bids), rate {}/s of event time, seed {}, {} partition(s)",
        counts.total(), counts.persons, counts.auctions, counts.bids, args.rate, args.seed, args.partitions);
    println!("{}", header());
    for r in &results {
        println!("{}", row(r));
    }
    if let Some(path) = &args.json {
        let doc = json!({
            "events": counts.total(), "persons": counts.persons, "auctions": counts.auctions, "bids": counts.bids,
            "rate": args.rate, "seed": args.seed, "partitions": args.partitions, "results": results,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}

fn header() -> String {
    format!(
        "{:<13} {:>10} {:>11} {:>12} {:>9} {:>9} {:>9} {:>12} {:>10}  {}",
        "query", "events", "events/s", "ev/cpu-s", "rss MB", "p50 ms", "p99 ms", "pause/gather", "output", "sample output"
    )
}

fn row(r: &Value) -> String {
    if let Some(e) = r.get("error") {
        return format!("{:<13} error: {}", r["query"].as_str().unwrap_or("?"), e);
    }
    let f = |k: &str| r.get(k).and_then(|v| v.as_f64());
    let opt = |v: Option<f64>, p: usize| v.map(|x| format!("{x:.p$}")).unwrap_or_else(|| "-".into());
    let mut sample = r["sample"].as_str().unwrap_or("").to_string();
    sample.truncate(60);
    format!(
        "{:<13} {:>10} {:>11.0} {:>12.0} {:>9.0} {:>9} {:>9} {:>12} {:>10}  {}{}",
        r["query"].as_str().unwrap_or("?"),
        r["events"],
        f("events_per_sec").unwrap_or(0.0),
        f("events_per_cpu_sec").unwrap_or(0.0),
        f("peak_rss_mb").unwrap_or(0.0),
        opt(f("latency_p50_ms"), 1),
        opt(f("latency_p99_ms"), 1),
        match (f("checkpoint_pause_max_ms"), f("checkpoint_pause_gather_ms")) {
            (Some(p), Some(g)) => format!("{p:.1}/{g:.1}"),
            (p, _) => opt(p, 1),
        },
        r["output_records"],
        sample,
        if r["output_records"].as_u64() == Some(0) { "  << NO OUTPUT" } else { "" }
    )
}

/// Every `qN.sql` (and other query files) in the SQL directory, in query-number order.
fn all_queries(sql_dir: &Path) -> Result<Vec<String>> {
    let mut qs: Vec<String> = std::fs::read_dir(sql_dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".sql").map(str::to_string))
        .filter(|n| n != "sources")
        .collect();
    let num = |q: &str| q.strip_prefix('q').and_then(|n| n.parse::<u32>().ok()).unwrap_or(1000);
    qs.sort_by_key(|q| (num(q), q.clone()));
    Ok(qs)
}

/// The topics a query reads, from its `-- inputs:` line.
fn query_inputs(sql: &str) -> Vec<EventKind> {
    let line = sql.lines().find_map(|l| l.trim().strip_prefix("-- inputs:")).unwrap_or("bid");
    EventKind::ALL.into_iter().filter(|k| line.split_whitespace().any(|w| w == k.topic())).collect()
}

/// Generates the template (topics only, no catalog) unless one with the same settings is there.
fn ensure_template(args: &Args, template: &Path) -> Result<LoadCounts> {
    let stamp = format!("events={} rate={} seed={} partitions={}", args.events, args.rate, args.seed, args.partitions);
    let stamp_file = template.join("GENERATED");
    let json_done = args.export_json.as_ref().is_none_or(|d| d.join("bid.json").exists());
    if std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(&stamp) && json_done {
        eprintln!("reusing {} ({stamp})", template.display());
        return Ok(counts_for(args.events));
    }
    let _ = std::fs::remove_dir_all(template);
    std::fs::create_dir_all(template)?;
    let log: Arc<dyn TopicLog> = Arc::new(FileLog::open(&template.join("topics"), LogOptions::default())?);
    let mut files: Option<HashMap<EventKind, std::io::BufWriter<std::fs::File>>> = match &args.export_json {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            let mut m = HashMap::new();
            for k in EventKind::ALL {
                m.insert(k, std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(d.join(format!("{}.json", k.topic())))?));
            }
            Some(m)
        }
        None => None,
    };
    let config = GeneratorConfig { seed: args.seed, rate: args.rate, ..Default::default() };
    let (cpu0, t0) = (process_cpu_time(), Instant::now());
    let mut io_err = None;
    let counts = load_topics(&log, config, args.events, args.partitions, |meta, json| {
        if let Some(files) = files.as_mut() {
            let f = files.get_mut(&meta.kind).expect("all kinds");
            if let Err(e) = f.write_all(json).and_then(|_| f.write_all(b"\n")) {
                io_err.get_or_insert(e);
            }
        }
        Ok(())
    })?;
    if let Some(e) = io_err {
        return Err(e).context("cannot write the JSON export");
    }
    if let Some(files) = files.as_mut() {
        for f in files.values_mut() {
            f.flush()?;
        }
    }
    log.sync()?;
    drop(log);
    eprintln!(
        "generated {} events ({:.0} MB of JSON) in {:.1}s, {:.0} events/cpu-s including the log appends",
        counts.total(),
        counts.bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64(),
        counts.total() as f64 / (process_cpu_time() - cpu0).as_secs_f64()
    );
    std::fs::write(&stamp_file, stamp)?;
    Ok(counts)
}

/// The counts of `events` events (they depend only on the number).
fn counts_for(events: u64) -> LoadCounts {
    let mut c = LoadCounts::default();
    for n in 0..events.min(50) {
        let k = EventKind::of(n);
        let full = events / 50 + u64::from(n < events % 50);
        match k {
            EventKind::Person => c.persons += full,
            EventKind::Auction => c.auctions += full,
            EventKind::Bid => c.bids += full,
        }
    }
    c
}

/// A fresh data directory whose Nexmark topics are hard links of the template's (sources are
/// only read, so the template stays intact).
fn link_topics(template: &Path, run_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(run_dir.join("topics"))?;
    for k in EventKind::ALL {
        let st = Command::new("cp")
            .arg("-al")
            .arg(template.join("topics").join(k.topic()))
            .arg(run_dir.join("topics"))
            .status()?;
        if !st.success() {
            bail!("cp -al failed for {}", k.topic());
        }
    }
    Ok(())
}

/// Runs one query over the linked topics, then the latency measurement on fresh topics.
fn child(args: &Args, q: &str) -> Result<Value> {
    let run_dir = args.dir.clone().context("--dir is required with --child")?;
    let sources = std::fs::read_to_string(args.sql_dir.join("sources.sql"))?;
    let sql = std::fs::read_to_string(args.sql_dir.join(format!("{q}.sql")))
        .with_context(|| format!("no query file {q}.sql in {}", args.sql_dir.display()))?;
    let inputs = query_inputs(&sql);
    let counts = counts_for(args.events);
    let events: u64 = inputs.iter().map(|k| counts.of(*k)).sum();
    let eddy = planner::Eddy::open(&run_dir, engine_config(args))?;
    let mut s = eddy.session();
    s.execute_all(&sources)?;
    let (cpu0, t0) = (process_cpu_time(), Instant::now());
    s.execute_all(&sql)?;
    eddy.engine().wait_caught_up(None, Duration::from_secs(7200))?;
    let (wall, cpu) = (t0.elapsed(), process_cpu_time() - cpu0);
    let rss = peak_rss_bytes();
    // The output: the sink of the query written last.
    let infos = eddy.engine().queries();
    let errors: u64 = infos.iter().map(|i| i.errors).sum();
    let late: u64 = infos.iter().map(|i| i.late_records).sum();
    let last = infos.iter().max_by_key(|i| i.id.rsplit('_').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0));
    let (mut output_records, mut sample, mut output_topic) = (0u64, String::new(), String::new());
    if let Some(last) = last {
        for t in &last.sink_topics {
            let info = eddy.engine().log().describe_topic(t)?;
            output_records += info.partitions.iter().map(|p| p.end_offset - p.start_offset).sum::<i64>() as u64;
            let rb = eddy.engine().log().read(t, 0, 0, 4096)?;
            if !rb.is_empty() {
                let r = rb.get(rb.len() / 2);
                sample = r.value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_else(|| "null".into());
            }
            output_topic = t.clone();
        }
    }
    eddy.shutdown()?;
    drop(s);
    drop(eddy);
    let per_cpu = events as f64 / cpu.as_secs_f64();
    let mut r = json!({
        "query": q, "events": events, "wall_s": wall.as_secs_f64(), "cpu_s": cpu.as_secs_f64(),
        "events_per_sec": events as f64 / wall.as_secs_f64(), "events_per_cpu_sec": per_cpu,
        "peak_rss_mb": rss as f64 / 1e6, "output_topic": output_topic, "output_records": output_records,
        "sample": sample, "errors": errors, "late_records": late,
    });
    if !args.no_latency {
        // Half the measured maximum: events per wall-second when alone, capped by what one core does.
        let max_rate = (events as f64 / wall.as_secs_f64()).min(per_cpu);
        let (p50, p99, n, ckpt) = latency(args, &run_dir, &sources, &sql, (max_rate / 2.0).max(1000.0))?;
        r["checkpoint_pause_max_ms"] = json!(ckpt.0.as_secs_f64() * 1000.0);
        r["checkpoint_duration_max_ms"] = json!(ckpt.1.as_secs_f64() * 1000.0);
        r["checkpoint_pause_gather_ms"] = json!(ckpt.2.as_secs_f64() * 1000.0);
        r["latency_input_rate"] = json!((max_rate / 2.0).round());
        r["latency_p50_ms"] = json!(p50);
        r["latency_p99_ms"] = json!(p99);
        r["latency_batches"] = json!(n);
    }
    Ok(r)
}

/// Feeds fresh topics at `rate` events per wall-second for `--latency-secs` and returns the p50
/// and p99 batch latency in ms, the number of batches, and the checkpoint figures. The input is
/// held in memory for the whole run (about 200 bytes per event: 1.3 GB for 5 s at 1.3M events/s).
fn latency(args: &Args, run_dir: &Path, sources: &str, sql: &str, rate: f64) -> Result<(f64, f64, usize, CheckpointFigures)> {
    // The input is generated before the clock starts, so that the feeder only appends: one
    // batch per topic per 1 ms tick, on a wall-clock schedule.
    let input = LatencyInput::generate(args, rate);
    let dir = run_dir.with_extension("latency");
    let _ = std::fs::remove_dir_all(&dir);
    let eddy = planner::Eddy::open(&dir, engine_config(args))?;
    let log = eddy.engine().log().clone();
    for k in EventKind::ALL {
        log.create_topic(k.topic(), &storage::TopicConfig::new(args.partitions))?;
    }
    let mut s = eddy.session();
    s.execute_all(sources)?;
    s.execute_all(sql)?;
    let engine = eddy.engine().clone();
    let nexmark_topics: Vec<&str> = EventKind::ALL.iter().map(|k| k.topic()).collect();
    // Pending batches: (append time, cumulative appended per topic).
    type Pending = std::collections::VecDeque<(Instant, [u64; 3])>;
    let pending: Arc<Mutex<Pending>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (pending, done, log) = (pending.clone(), done.clone(), log.clone());
        std::thread::spawn(move || -> Result<()> {
            let mut appended = [0u64; 3];
            let start = Instant::now();
            for (i, tick) in input.ticks.iter().enumerate() {
                let due = start + Duration::from_millis(i as u64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                for (k, kind) in EventKind::ALL.iter().enumerate() {
                    let ins: Vec<storage::RecordIn<'_>> = tick[k]
                        .iter()
                        .map(|(a, b, ts, key)| storage::RecordIn { timestamp: *ts, key: Some(key), value: Some(&input.buf[*a..*b]), headers: &[] })
                        .collect();
                    // One partition per topic is what the driver measures; spread by key otherwise.
                    if !ins.is_empty() {
                        for (p, part) in split_by_partition(&ins, args_partitions(&*log, kind.topic())).into_iter().enumerate() {
                            if !part.is_empty() {
                                log.append(kind.topic(), p as u32, &part)?;
                            }
                        }
                    }
                    appended[k] += tick[k].len() as u64;
                }
                pending.lock().expect("lock").push_back((Instant::now(), appended));
            }
            done.store(true, Ordering::Release);
            Ok(())
        })
    };
    let mut lat = Vec::new();
    let mut ckpt = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs_f64(args.latency_secs + 60.0);
    loop {
        let pause = engine.last_checkpoint_pause();
        if pause > ckpt.0 {
            // The gather (tasks reaching the barrier and flushing) of the longest pause.
            (ckpt.0, ckpt.2) = (pause, engine.last_checkpoint_gather());
        }
        ckpt.1 = ckpt.1.max(engine.last_checkpoint_duration());
        let infos = engine.queries();
        let readers: Vec<_> = infos.iter().filter(|i| i.source_topics.iter().any(|t| nexmark_topics.contains(&t.as_str()))).collect();
        let now = Instant::now();
        {
            let mut p = pending.lock().expect("lock");
            while let Some((t, app)) = p.front() {
                let caught = readers.iter().all(|i| {
                    let need: u64 = EventKind::ALL
                        .iter()
                        .enumerate()
                        .filter(|(_, k)| i.source_topics.iter().any(|t| t == k.topic()))
                        .map(|(j, _)| app[j])
                        .sum();
                    i.records_in >= need
                });
                if !caught {
                    break;
                }
                lat.push(now.duration_since(*t));
                p.pop_front();
            }
            if done.load(Ordering::Acquire) && p.is_empty() {
                break;
            }
        }
        if now > deadline {
            eprintln!("latency: queries did not catch up within 60 s after the input ended");
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    feeder.join().expect("feeder")?;
    eddy.shutdown()?;
    drop(s);
    drop(eddy);
    let _ = std::fs::remove_dir_all(&dir);
    if lat.is_empty() {
        return Ok((f64::NAN, f64::NAN, 0, ckpt));
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    Ok((pct(0.5), pct(0.99), lat.len(), ckpt))
}

/// Of a latency run's checkpoints: the longest pause, the longest checkpoint, and the gathering
/// part of the longest pause.
type CheckpointFigures = (Duration, Duration, Duration);

/// One record of a tick: (value start, value end, timestamp, key).
type TickRecord = (usize, usize, i64, [u8; 8]);

/// The records of one 1 ms tick, per topic.
type Tick = [Vec<TickRecord>; 3];

/// The latency run's input, generated before it starts: the JSON of every event in one buffer,
/// and per 1 ms tick and topic the records due in it.
struct LatencyInput {
    buf: Vec<u8>,
    /// Per tick, per topic, the records due.
    ticks: Vec<Tick>,
}

impl LatencyInput {
    /// `--latency-secs` of events at `rate` events per wall-second.
    fn generate(args: &Args, rate: f64) -> LatencyInput {
        let config = GeneratorConfig { seed: args.seed, rate: args.rate, ..Default::default() };
        let mut gen = engine::nexmark::Generator::new(config);
        let n_ticks = (args.latency_secs * 1000.0).ceil() as u64;
        let (mut buf, mut ticks, mut sent) = (Vec::new(), Vec::with_capacity(n_ticks as usize), 0u64);
        for i in 0..n_ticks {
            let due = ((i + 1) as f64 * rate / 1000.0) as u64;
            let mut tick: Tick = Default::default();
            for _ in sent..due {
                let from = buf.len();
                let m = gen.next_json(&mut buf);
                tick[m.kind as usize].push((from, buf.len(), m.timestamp, m.key.to_be_bytes()));
            }
            sent = due.max(sent);
            ticks.push(tick);
        }
        LatencyInput { buf, ticks }
    }
}

/// The engine's settings for a run.
fn engine_config(args: &Args) -> engine::EngineConfig {
    engine::EngineConfig { checkpoint_interval: Duration::from_millis(args.checkpoint_ms.max(1)), ..Default::default() }
}

fn args_partitions(log: &dyn TopicLog, topic: &str) -> u32 {
    log.describe_topic(topic).map(|i| i.config.partitions).unwrap_or(1)
}

fn split_by_partition<'a>(recs: &[storage::RecordIn<'a>], n: u32) -> Vec<Vec<storage::RecordIn<'a>>> {
    let mut out: Vec<Vec<storage::RecordIn<'a>>> = (0..n).map(|_| Vec::new()).collect();
    for r in recs {
        let p = storage::partition_for_key(r.key.unwrap_or(&[]), n);
        out[p as usize].push(storage::RecordIn { timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers });
    }
    out
}
