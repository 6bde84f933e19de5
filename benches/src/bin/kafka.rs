//! The same stateless persistent query (JSON in -> WHERE + projection -> JSON out) on the embedded
//! log and over Kafka (a loopback broker), exactly-once and at-least-once, measured in one run:
//! records per second of wall time and per second of this process's CPU time, with the broker's
//! CPU reported apart (on one machine the broker competes for the same cores). Then a task's
//! restore: a 1M-key aggregate's state rebuilt from its changelog, in keys per second.
//!
//! `cargo run --release -p eddy-benches --bin kafka -- --records 1000000 [--partitions 4] [--keys 1000000]`
//!
//! The broker: nisshi (see `../shared/KAFKA.md`), from `EDDY_NISSHI` or
//! `~/.cache/eddy/brokers/nisshi-0.7.0/bin/nisshi` (it serves transactions).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use eddy_benches::{load_topic, process_cpu_time, run_to_completion, Measurement, Rng};
use storage::TopicConfig;

#[derive(Parser)]
struct Args {
    /// Records to load.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Distinct keys of the aggregate whose restore is measured (0: skip it).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Runs only these phases (comma-separated: embedded, exactly_once, at_least_once, scale1,
    /// scale2, restore); all by default. Each phase prints its figures when it ends.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

impl Args {
    fn runs(&self, phase: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == phase)
    }
}

/// A phase's figures, with the broker's CPU when it ran over Kafka.
fn line(m: &Measurement, broker_cpu: Option<Duration>) -> String {
    let extra = broker_cpu.map(|c| format!("  broker cpu {:.2}s", c.as_secs_f64())).unwrap_or_default();
    format!("{}{extra}", m.line())
}

/// Prints a phase's figures as soon as it ends (a later phase that stalls keeps them).
fn report(m: &Measurement, broker_cpu: Option<Duration>) {
    println!("{}", line(m, broker_cpu));
}

/// A broker process on a free loopback port.
struct Broker {
    child: Child,
    addr: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    fn start() -> Result<Broker> {
        let bin = std::env::var("EDDY_NISSHI").unwrap_or_else(|_| format!("{}/.cache/eddy/brokers/nisshi-0.7.0/bin/nisshi", std::env::var("HOME").unwrap_or_default()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let url = format!("tcp://{addr}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "memory://nisshi/"])
            .args(["--group-initial-rebalance-delay", "0s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start the broker {bin} (set EDDY_NISSHI)"))?;
        let b = Broker { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&b.addr).is_err() {
            if Instant::now() > deadline {
                bail!("the broker did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(b)
    }

    /// The broker's CPU time so far (user + system, from /proc).
    fn cpu(&self) -> Duration {
        eddy_benches::server::child_cpu_time(self.child.id()).unwrap_or_default()
    }
}

const SCHEMA: &str = "CREATE STREAM src (id BIGINT KEY, user_id BIGINT, page STRING, amount DOUBLE, ts BIGINT, agent STRING) \
                      WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON'); SET 'auto.offset.reset'='earliest';";
const QUERY: &str = "CREATE STREAM big AS SELECT id, user_id, page, amount * 100 AS cents FROM src WHERE amount > 50.0 AND page <> '/health';";

fn load(log: &dyn storage::TopicLog, topic: &str, n: u64, partitions: u32, keys: u64) -> Result<()> {
    const PAGES: [&str; 6] = ["/home", "/search", "/cart", "/checkout", "/health", "/item"];
    load_topic(log, topic, partitions, n, &mut Rng::new(42), |id, rng| {
        let value = format!(
            r#"{{"user_id":{},"page":"{}","amount":{}.{:02},"ts":{},"agent":"bench/1.0"}}"#,
            if keys > 0 { id % keys } else { rng.below(100_000) },
            PAGES[rng.below(6) as usize],
            rng.below(100),
            rng.below(100),
            1_700_000_000_000u64 + id
        );
        (id as i64, value, 1_700_000_000_000 + id as i64)
    })
}

fn kafka_eddy(b: &Broker, dir: &std::path::Path, service: &str) -> Result<planner::Eddy> {
    kafka_instance(b, dir, service, "bench")
}

/// Instance `instance` of `service` over the broker, with its local state in `dir`.
fn kafka_instance(b: &Broker, dir: &std::path::Path, service: &str, instance: &str) -> Result<planner::Eddy> {
    let cluster: Arc<dyn kafka::Cluster> = Arc::new(kafka::RdCluster::connect(&b.addr, BTreeMap::new()).map_err(|e| anyhow::anyhow!("{e}"))?);
    let log = Arc::new(kafka::KafkaLog::new(cluster, service).map_err(|e| anyhow::anyhow!("{e}"))?);
    let state = storage::RocksStore::open(&dir.join("state"), storage::StateOptions::default())?;
    let committers = Arc::new(kafka::KafkaCommitters::new(log.clone(), instance));
    let config = engine::EngineConfig { instance_id: Some(instance.into()), ..Default::default() };
    let engine = engine::Engine::with_committers(log, Arc::new(state), config, committers)?;
    Ok(planner::Eddy::with_engine(engine)?)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let broker = Broker::start()?;
    let mut results: Vec<(Measurement, Option<Duration>)> = Vec::new();

    // Embedded.
    if args.runs("embedded") {
        let tmp = tempfile::tempdir()?;
        let eddy = planner::Eddy::open(tmp.path(), engine::EngineConfig::default())?;
        eddy.engine().log().create_topic("src", &TopicConfig::new(args.partitions))?;
        load(eddy.engine().log().as_ref(), "src", args.records, args.partitions, 0)?;
        let mut s = eddy.session();
        s.execute_all(SCHEMA)?;
        let m = run_to_completion(&eddy, &mut s, "embedded", QUERY, args.records)?;
        report(&m, None);
        results.push((m, None));
        eddy.shutdown()?;
    }

    // Over Kafka, each guarantee in a service of its own over the same input topic.
    let mut loaded = false;
    let mut load_once = |eddy: &planner::Eddy| -> Result<()> {
        if !loaded {
            eddy.engine().log().create_topic("src", &TopicConfig::new(args.partitions))?;
            load(eddy.engine().log().as_ref(), "src", args.records, args.partitions, 0)?;
            loaded = true;
        }
        Ok(())
    };
    for (name, guarantee) in [("kafka exactly_once", "exactly_once_v2"), ("kafka at_least_once", "at_least_once")] {
        if !args.runs(guarantee.trim_end_matches("_v2")) {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let service = name.replace(' ', "_");
        let eddy = kafka_eddy(&broker, dir.path(), &service)?;
        load_once(&eddy)?;
        let mut s = eddy.session();
        s.execute_all(SCHEMA)?;
        s.execute_all(&format!("SET 'processing.guarantee'='{guarantee}';"))?;
        let broker0 = broker.cpu();
        let m = run_to_completion(&eddy, &mut s, name, QUERY.replace("big", &format!("big_{service}")).as_str(), args.records)?;
        report(&m, Some(broker.cpu() - broker0));
        results.push((m, Some(broker.cpu() - broker0)));
        eddy.shutdown()?;
    }
    // Scale-out: the exactly-once query in a service of one instance and of two (in this
    // process, so they share its cores as two processes would), over an input of its own. The
    // query starts on an empty input, and the measurement waits until its tasks are spread over
    // the instances (2 + 2), then pauses it (PAUSE ALL, a command every instance follows), loads
    // the records and times from RESUME ALL until every instance has processed them all: the
    // figure is the processing of a settled group, not the first instance running alone while
    // the second joins.
    for n in [1usize, 2] {
        if !args.runs(&format!("scale{n}")) {
            continue;
        }
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir()).collect::<std::io::Result<_>>()?;
        let service = format!("scale_{n}");
        let topic = format!("src_{service}");
        let instances: Vec<planner::Eddy> =
            dirs.iter().enumerate().map(|(i, d)| kafka_instance(&broker, d.path(), &service, &format!("i{i}"))).collect::<Result<_>>()?;
        instances[0].engine().log().create_topic(&topic, &TopicConfig::new(args.partitions))?;
        let mut s = instances[0].session();
        s.execute_all(&SCHEMA.replace("'src'", &format!("'{topic}'")))?;
        s.execute_all("SET 'processing.guarantee'='exactly_once_v2';")?;
        s.execute_all(&QUERY.replace("big", &format!("big_{service}")))?;
        let name = format!("kafka exactly_once, {n} instance{}", if n > 1 { "s" } else { "" });
        let tasks = |instances: &[planner::Eddy]| -> Vec<usize> {
            instances.iter().map(|e| e.engine().queries().iter().map(|q| q.tasks).sum()).collect()
        };
        let t0 = Instant::now();
        let fair = args.partitions as usize / n;
        while !tasks(&instances).iter().all(|&t| t == fair) {
            if t0.elapsed() > Duration::from_secs(120) {
                bail!("{name}: the tasks were not spread over the instances within 120 s: {:?}", tasks(&instances));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("{name}: tasks spread {:?} {:.1}s after the query was created", tasks(&instances), t0.elapsed().as_secs_f64());
        s.execute_all("PAUSE ALL;")?;
        let t0 = Instant::now();
        while !instances.iter().all(|e| e.engine().queries().iter().all(|q| q.user_paused)) {
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("{name}: PAUSE ALL did not reach every instance within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        load(instances[0].engine().log().as_ref(), &topic, args.records, args.partitions, 0)?;
        let broker0 = broker.cpu();
        let cpu0 = process_cpu_time();
        let t0 = Instant::now();
        s.execute_all("RESUME ALL;")?;
        instances[0].engine().wait_caught_up(None, Duration::from_secs(3600))?;
        let m = Measurement { name: name.clone(), records: args.records, wall: t0.elapsed(), cpu: process_cpu_time() - cpu0 };
        println!("{name}: tasks per instance at the end {:?}", tasks(&instances));
        report(&m, Some(broker.cpu() - broker0));
        results.push((m, Some(broker.cpu() - broker0)));
        for e in instances {
            e.shutdown()?;
        }
    }
    let base = results.first().map(|r| r.0.per_cpu_sec()).unwrap_or(f64::NAN);
    for (m, broker_cpu) in &results {
        println!("{}  {:.2}x embedded rec/cpu-s", line(m, *broker_cpu), m.per_cpu_sec() / base);
    }
    let wall = |name: &str| results.iter().find(|(m, _)| m.name.starts_with(name)).map(|(m, _)| m.records as f64 / m.wall.as_secs_f64());
    if let (Some(one), Some(two)) = (wall("kafka exactly_once, 1 instance"), wall("kafka exactly_once, 2 instances")) {
        println!("two instances against one: {:.2}x records per wall-second", two / one);
    }

    // Restore of a task's state from its changelog.
    if args.keys > 0 && args.runs("restore") {
        let dir = tempfile::tempdir()?;
        let eddy = kafka_eddy(&broker, dir.path(), "restore")?;
        eddy.engine().log().create_topic("keys_src", &TopicConfig::new(1))?;
        load(eddy.engine().log().as_ref(), "keys_src", args.keys, 1, args.keys)?;
        let mut s = eddy.session();
        s.execute_all(
            "CREATE STREAM keys_src (id BIGINT KEY, user_id BIGINT, page STRING, amount DOUBLE, ts BIGINT, agent STRING) \
             WITH (KAFKA_TOPIC='keys_src', VALUE_FORMAT='JSON'); SET 'auto.offset.reset'='earliest';",
        )?;
        run_to_completion(&eddy, &mut s, "aggregate", "CREATE TABLE per_user AS SELECT user_id, COUNT(*) AS n FROM keys_src GROUP BY user_id;", args.keys)?;
        eddy.shutdown()?;
        drop(eddy);
        // A new instance with empty local state restores the task from the changelog; the first
        // pull query waits for it.
        let fresh = tempfile::tempdir()?;
        let cpu0 = process_cpu_time();
        let t0 = Instant::now();
        let eddy = kafka_eddy(&broker, fresh.path(), "restore")?;
        let mut s = eddy.session();
        let rows = s.execute_all("SELECT * FROM per_user WHERE user_id = 7;")?;
        let wall = t0.elapsed();
        let cpu = process_cpu_time() - cpu0;
        println!(
            "restore of {} keys from the changelog into an empty local state (until the first pull query answers, {} result): {:.2}s wall, {:.2}s cpu, {:.0} keys/s",
            args.keys,
            rows.len(),
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            args.keys as f64 / wall.as_secs_f64()
        );
        eddy.shutdown()?;
    }
    Ok(())
}
