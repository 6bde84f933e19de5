//! Load test of `eddy server`: pull-query throughput and latency with many concurrent clients
//! over HTTP and over the PostgreSQL protocol, then push-query clients while a persistent query
//! keeps processing new rows, then one push query delivering `--stream-rows` rows to one client
//! over HTTP/2 (as ksqlDB's clients read /query-stream), against HTTP/1.1 in the same run.
//!
//! ```text
//! cargo build --release -p eddy && cargo run --release -p eddy-benches --bin serverload -- \
//!     [--clients 100] [--push-clients 20] [--seconds 10] [--keys 1000]
//! ```
//! It starts the `eddy` binary built next to itself (same target directory and profile) on a
//! temporary data directory with free loopback ports, so load generator and server share the
//! machine's cores.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use eddy_benches::server::{eddy_binary, new_agent, post, Server};

#[derive(Parser, Debug)]
#[command(about = "Load test of eddy server: pull queries over HTTP and pgwire, push queries")]
struct Args {
    /// Concurrent pull-query clients (per protocol).
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Concurrent push-query clients.
    #[arg(long, default_value_t = 20)]
    push_clients: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Distinct keys in the table.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Rows per second appended during the push phase.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Rows of the single-client push query (HTTP/2 and HTTP/1.1); 0 skips it.
    #[arg(long, default_value_t = 1_000_000)]
    stream_rows: u64,
    /// The eddy binary (default: next to this one).
    #[arg(long)]
    eddy: Option<PathBuf>,
}

/// Latency percentiles and throughput of one phase.
struct Stats {
    ops: usize,
    errors: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(mut lat: Vec<Duration>, errors: u64, elapsed: Duration) -> Stats {
        lat.sort();
        let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or_default();
        Stats { ops: lat.len(), errors, elapsed, p50: pct(0.50), p99: pct(0.99), max: lat.last().copied().unwrap_or_default() }
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<28} {:>8} queries  {:>9.0} q/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  errors {}",
            self.ops,
            self.ops as f64 / self.elapsed.as_secs_f64(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3,
            self.errors
        );
    }
}

/// A small deterministic generator (xorshift) for keys.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn http_pulls(s: &Server, clients: usize, secs: u64, keys: u64) -> Stats {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (url, stop, errors) = (format!("{}/query-stream", s.http), stop.clone(), errors.clone());
            std::thread::spawn(move || {
                let agent = new_agent();
                let mut lat = Vec::new();
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
                while !stop.load(Ordering::Relaxed) {
                    let k = next(&mut rng) % keys;
                    let body = format!("{{\"ksql\":\"SELECT * FROM totals WHERE id = {k};\"}}");
                    let t = Instant::now();
                    match post(&agent, &url, &body) {
                        Ok(text) if text.lines().count() == 2 => lat.push(t.elapsed()),
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect();
    Stats::of(lat, errors.load(Ordering::Relaxed), start.elapsed())
}

fn pg_pulls(s: &Server, clients: usize, secs: u64, keys: u64) -> Result<Stats> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let port = s.pg;
    rt.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(AtomicU64::new(0));
        let mut conns = Vec::new();
        for _ in 0..clients {
            let conf = format!("host=127.0.0.1 port={port} user=eddy");
            let (client, conn) = tokio_postgres::connect(&conf, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            conns.push(client);
        }
        let start = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(c, client)| {
                let (stop, errors) = (stop.clone(), errors.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut rng = 0xD1B5_4A32_D192_ED03u64 ^ (c as u64 + 1);
                    while !stop.load(Ordering::Relaxed) {
                        let k = next(&mut rng) % keys;
                        let t = Instant::now();
                        match client.simple_query(&format!("SELECT * FROM totals WHERE id = {k}")).await {
                            Ok(m) if m.iter().any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))) => lat.push(t.elapsed()),
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    lat
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap_or_default());
        }
        Ok(Stats::of(lat, errors.load(Ordering::Relaxed), start.elapsed()))
    })
}

/// Appends `n` rows (keys cycling over `keys`) through /inserts.
fn insert(agent: &ureq::Agent, s: &Server, from: u64, n: u64, keys: u64) -> Result<()> {
    let mut body = String::from("{\"target\":\"EVENTS\"}\n");
    for i in from..from + n {
        body.push_str(&format!("{{\"ID\":{},\"V\":{}}}\n", i % keys, i % 7));
    }
    post(agent, &format!("{}/inserts", s.http), &body)?;
    Ok(())
}

fn metric(agent: &ureq::Agent, s: &Server, prefix: &str) -> f64 {
    let Ok(mut r) = agent.get(format!("{}/metrics", s.http)).call() else { return f64::NAN };
    let text = r.body_mut().read_to_string().unwrap_or_default();
    text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

fn push_phase(s: &Server, args: &Args) -> Result<()> {
    let agent = new_agent();
    let stop = Arc::new(AtomicBool::new(false));
    let received: Vec<Arc<AtomicU64>> = (0..args.push_clients).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut readers = Vec::new();
    for r in &received {
        let (url, r, stop) = (format!("{}/query-stream", s.http), r.clone(), stop.clone());
        let mut resp = new_agent().post(url).send("{\"ksql\":\"SELECT * FROM events EMIT CHANGES;\"}")?;
        if resp.status() != 200 {
            bail!("push query refused: {}", resp.body_mut().read_to_string()?);
        }
        readers.push(std::thread::spawn(move || {
            let reader = BufReader::new(resp.into_body().into_with_config().limit(u64::MAX).reader());
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if line.starts_with('[') {
                    r.fetch_add(1, Ordering::Relaxed);
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let in_before = metric(&agent, s, "eddy_query_records_in_total{query=\"CTAS_TOTALS");
    let start = Instant::now();
    let per_tick = (args.rate / 10).max(1);
    let mut sent = 0;
    let mut max_lag = 0f64;
    let mut tick = Instant::now();
    while start.elapsed() < Duration::from_secs(args.seconds) {
        insert(&agent, s, 1_000_000 + sent, per_tick, args.keys)?;
        sent += per_tick;
        max_lag = max_lag.max(metric(&agent, s, "eddy_query_source_lag_records{query=\"CTAS_TOTALS"));
        tick += Duration::from_millis(100);
        if let Some(d) = tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let write_time = start.elapsed();
    // The persistent query catches up: a pull query waits for it.
    let t = Instant::now();
    post(&agent, &format!("{}/query-stream", s.http), "{\"ksql\":\"SELECT * FROM totals WHERE id = 0;\"}")?;
    let catch_up = t.elapsed();
    let in_after = metric(&agent, s, "eddy_query_records_in_total{query=\"CTAS_TOTALS");
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.iter().any(|r| r.load(Ordering::Relaxed) < sent) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let counts: Vec<u64> = received.iter().map(|r| r.load(Ordering::Relaxed)).collect();
    let active = metric(&agent, s, "eddy_push_queries_active");
    stop.store(true, Ordering::Relaxed);
    println!(
        "push phase: {} push clients, {sent} rows appended in {:.1} s ({:.0} rows/s)",
        args.push_clients,
        write_time.as_secs_f64(),
        sent as f64 / write_time.as_secs_f64()
    );
    println!(
        "  rows received per push client: min {} max {} (of {sent}); push queries active on the server: {active}",
        counts.iter().min().unwrap_or(&0),
        counts.iter().max().unwrap_or(&0)
    );
    println!(
        "  persistent query CTAS_TOTALS: {} records in during the phase, max source lag {max_lag} records, caught up {:.1} ms after the last append",
        in_after - in_before,
        catch_up.as_secs_f64() * 1e3
    );
    drop(readers);
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let eddy = eddy_binary(args.eddy.as_deref())?;
    let dir = tempfile::tempdir()?;
    if args.stream_rows > 0 {
        prefill(dir.path(), args.stream_rows)?;
    }
    let s = Server::start(&eddy, dir.path())?;
    let agent = new_agent();
    let ksql = |sql: &str| post(&agent, &format!("{}/ksql", s.http), &serde_json::json!({ "ksql": sql, "streamsProperties": { "auto.offset.reset": "earliest" } }).to_string());
    ksql("CREATE STREAM events (id BIGINT KEY, v INT) WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON', PARTITIONS=4);")?;
    ksql("CREATE TABLE totals AS SELECT id, COUNT(*) AS n, SUM(v) AS total FROM events GROUP BY id;")?;
    insert(&agent, &s, 0, args.keys * 2, args.keys)?;
    post(&agent, &format!("{}/query-stream", s.http), "{\"ksql\":\"SELECT * FROM totals WHERE id = 1;\"}")?;
    println!(
        "eddy server {}, {} keys, {} CPUs; {} s per phase",
        eddy.display(),
        args.keys,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        args.seconds
    );
    http_pulls(&s, args.clients, args.seconds, args.keys).print(&format!("HTTP pull, {} clients", args.clients));
    pg_pulls(&s, args.clients, args.seconds, args.keys)?.print(&format!("pgwire pull, {} clients", args.clients));
    push_phase(&s, &args)?;
    if args.stream_rows > 0 {
        stream_phase(&s, args.stream_rows)?;
    }
    Ok(())
}

/// Writes `rows` records into stream WIDE before the server starts.
fn prefill(dir: &std::path::Path, rows: u64) -> Result<()> {
    let eddy = planner::Eddy::open(dir, engine::EngineConfig::default())?;
    let log = eddy.engine().log().clone();
    log.create_topic("wide", &storage::TopicConfig::new(1))?;
    eddy_benches::load_topic(&*log, "wide", 1, rows, &mut eddy_benches::Rng::new(3), |id, rng| {
        (id as i64, format!(r#"{{"k":"key_{}","v":{}}}"#, id % 1000, rng.below(1000)), 1_700_000_000_000 + id as i64)
    })?;
    eddy.session().execute_all("CREATE STREAM wide (id BIGINT KEY, k STRING, v BIGINT) WITH (KAFKA_TOPIC='wide', VALUE_FORMAT='JSON');")?;
    eddy.shutdown()?;
    Ok(())
}

/// One push query of `rows` rows to one client: HTTP/1.1 (the baseline), then HTTP/2.
fn stream_phase(s: &Server, rows: u64) -> Result<()> {
    let body = serde_json::json!({ "sql": format!("SELECT * FROM wide EMIT CHANGES LIMIT {rows};"), "properties": { "auto.offset.reset": "earliest" } }).to_string();
    let t = Instant::now();
    let resp = new_agent().post(format!("{}/query-stream", s.http)).header("content-type", "application/json").send(&body)?;
    let mut n = 0u64;
    for line in BufReader::new(resp.into_body().into_reader()).lines() {
        if line?.starts_with('[') {
            n += 1;
        }
    }
    let h1 = t.elapsed();
    println!("push query, one client, HTTP/1.1: {n} rows in {:.2} s, {:.0} rows/s", h1.as_secs_f64(), n as f64 / h1.as_secs_f64());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let addr = s.http.trim_start_matches("http://").to_string();
    let (n2, h2) = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(&addr).await?;
        let (send, conn) = h2::client::handshake(tcp).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = http::Request::builder().method("POST").uri(format!("http://{addr}/query-stream")).header("content-type", "application/json").body(())?;
        let t = Instant::now();
        let mut send = send.ready().await?;
        let (resp, mut out) = send.send_request(req, false)?;
        out.send_data(bytes::Bytes::from(body), true)?;
        let mut recv = resp.await?.into_body();
        let mut lines = 0u64;
        while let Some(d) = recv.data().await {
            let d = d?;
            let _ = recv.flow_control().release_capacity(d.len());
            lines += d.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        anyhow::Ok((lines.saturating_sub(1), t.elapsed()))
    })?;
    println!(
        "push query, one client, HTTP/2:   {n2} rows in {:.2} s, {:.0} rows/s ({:.2}x HTTP/1.1)",
        h2.as_secs_f64(),
        n2 as f64 / h2.as_secs_f64(),
        h1.as_secs_f64() / h2.as_secs_f64()
    );
    Ok(())
}
