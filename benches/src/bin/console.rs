//! What the web console costs a running query (issue 17): Nexmark q1 (a projection over the
//! bids) runs as a persistent query in `eddy server` from the earliest offset to the end of the
//! bid topic, alternately with nobody watching and with a console open on the query's page, and
//! the server's events per CPU-second are compared in the same run (rounds in ABBA order so that
//! warm caches favour neither).
//!
//! The console is the page's requests at the page's pace: while it shows a query, the page
//! fetches `GET /api/queries/{id}` once a second (repl/console/app.js); this client sends that
//! and the list view's `GET /api/queries` every `--poll-ms`, so it costs at least what the page
//! does. Both modes also poll `/api/queries` every 250 ms to see when the query is done, which
//! costs the same in each.
//!
//! ```text
//! cargo build --release -p eddy -p eddy-benches && \
//!   target/release/console [--events 5000000] [--rounds 4] [--poll-ms 1000]
//! ```

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use eddy_benches::server::{eddy_binary, get, new_agent, post, Server};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "The web console's cost to a running q1, in events per CPU-second of the server")]
struct Args {
    /// Nexmark events to generate (46 of every 50 are bids).
    #[arg(long, default_value_t = 5_000_000)]
    events: u64,
    /// Rounds in all (half without, half with the console), in ABBA order.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// How often the console polls, as the page does.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    /// The eddy binary (default: next to this one).
    #[arg(long)]
    eddy: Option<std::path::PathBuf>,
}

const BID: &str = "CREATE STREAM bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, \
    date_time BIGINT, extra STRING) WITH (KAFKA_TOPIC='bid', VALUE_FORMAT='JSON');";

fn ksql(agent: &ureq::Agent, s: &Server, sql: &str) -> Result<String> {
    let body = serde_json::json!({ "ksql": sql, "streamsProperties": { "auto.offset.reset": "earliest" } });
    post(agent, &format!("{}/ksql", s.http), &body.to_string())
}

fn json(agent: &ureq::Agent, url: &str) -> Result<Value> {
    Ok(serde_json::from_str(&get(agent, url)?)?)
}

/// Records in the bid topic.
fn bids(agent: &ureq::Agent, s: &Server) -> Result<u64> {
    let v = json(agent, &format!("{}/api/topics", s.http))?;
    let topic = v["topics"].as_array().into_iter().flatten().find(|t| t["name"] == "bid").context("no bid topic")?;
    Ok(topic["partitions"].as_array().into_iter().flatten().map(|p| (p["end"].as_i64().unwrap_or(0) - p["start"].as_i64().unwrap_or(0)) as u64).sum())
}

/// One q1 run from the first bid to the last: the server's CPU seconds.
fn round(agent: &ureq::Agent, s: &Server, name: &str, total: u64, console: Option<u64>) -> Result<Duration> {
    let cpu0 = s.cpu_time()?;
    ksql(agent, s, &format!("CREATE STREAM {name} AS SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid;"))?;
    let list = json(agent, &format!("{}/api/queries", s.http))?;
    let id = list["queries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| q["sinkTopics"].as_array().into_iter().flatten().any(|t| t.as_str().is_some_and(|t| t.eq_ignore_ascii_case(name))))
        .and_then(|q| q["id"].as_str())
        .context("the query did not start")?
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = console.map(|poll_ms| {
        let (stop, base, id) = (stop.clone(), s.http.clone(), id.clone());
        std::thread::spawn(move || {
            let agent = new_agent();
            while !stop.load(Ordering::Relaxed) {
                let _ = get(&agent, &format!("{base}/api/queries/{id}"));
                let _ = get(&agent, &format!("{base}/api/queries"));
                std::thread::sleep(Duration::from_millis(poll_ms));
            }
        })
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = json(agent, &format!("{}/api/queries", s.http))?;
        let q = list["queries"].as_array().into_iter().flatten().find(|q| q["id"] == id.as_str()).cloned().unwrap_or_default();
        if q["state"] == "ERROR" {
            bail!("{id} failed: {}", q["error"]);
        }
        if q["recordsIn"].as_u64().unwrap_or(0) >= total {
            break;
        }
        if Instant::now() > deadline {
            bail!("{id} did not finish in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let cpu = s.cpu_time()? - cpu0;
    stop.store(true, Ordering::Relaxed);
    if let Some(w) = watcher {
        let _ = w.join();
    }
    ksql(agent, s, &format!("DROP STREAM {name} DELETE TOPIC;"))?;
    Ok(cpu)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let eddy = eddy_binary(args.eddy.as_deref())?;
    let dir = tempfile::tempdir()?;
    let t0 = Instant::now();
    let ok = Command::new(&eddy).arg("--data-dir").arg(dir.path()).args(["nexmark", "--events", &args.events.to_string()]).status()?;
    if !ok.success() {
        bail!("eddy nexmark failed");
    }
    eprintln!("generated {} events in {:.1}s", args.events, t0.elapsed().as_secs_f64());
    let s = Server::start(&eddy, Path::new(dir.path()))?;
    let agent = new_agent();
    ksql(&agent, &s, BID)?;
    let total = bids(&agent, &s)?;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for r in 0..args.rounds {
        // ABBA: without, with, with, without, ...
        let console = matches!(r % 4, 1 | 2);
        let cpu = round(&agent, &s, &format!("q1_{r}"), total, console.then_some(args.poll_ms))?;
        let rate = total as f64 / cpu.as_secs_f64();
        println!("round {r}: console {:<5} {total} bids in {:.2} CPU-s: {:.0} events/CPU-s", if console { "open" } else { "off" }, cpu.as_secs_f64(), rate);
        if console { with.push(rate) } else { without.push(rate) }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (a, b) = (mean(&without), mean(&with));
    println!("q1 without console: {a:.0} events/CPU-s; with console polling every {} ms: {b:.0} events/CPU-s", args.poll_ms);
    println!("console cost: {:+.2}% of events per CPU-second (with/without = {:.4})", (1.0 - b / a) * 100.0, b / a);
    Ok(())
}
