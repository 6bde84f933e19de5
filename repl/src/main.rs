//! `eddy`: the REPL, the non-interactive CLI, and the tools around them.
//!
//! ```text
//! eddy [--data-dir D]                       REPL on a terminal; SQL from stdin otherwise
//! eddy -f FILE | -e 'SQL' [--output table|json|csv] [--define NAME=VALUE]...
//! eddy produce TOPIC [--partitions N] [--key FIELD] [--timestamp FIELD]  < lines.json
//! eddy consume TOPIC [--from-beginning] [--limit N] [--timeout SECS]
//! eddy test FILE.slt...
//! eddy server [--http ADDR] [--pg ADDR] [--credentials FILE]   HTTP API + PostgreSQL protocol
//! eddy --server http://HOST:PORT [-f FILE | -e 'SQL']     the REPL/CLI against a server
//! eddy nexmark --events N [--rate R] [--seed S] [--partitions P]
//! ```

mod backend;
mod client;
mod consume;
mod nexmark;
mod place;
mod print;
mod produce;
mod repl;
mod script;
mod server;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

/// jemalloc instead of glibc's malloc: stateful queries allocate and free per group and per
/// row, and glibc's bins (`_int_malloc`, `unlink_chunk`, `malloc_consolidate`) were a third of
/// their CPU; measured in docs/performance.md ("Allocations cut, and jemalloc adopted").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Output modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    /// Aligned tables.
    Table,
    /// One JSON object per row per line.
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

#[derive(Parser, Debug)]
#[command(name = "eddy", version, about = "Eddy: a SQL stream query engine (ksqlDB's dialect, one binary)")]
struct Cli {
    /// Data directory holding topics and state.
    #[arg(long, env = "EDDY_DATA_DIR", default_value = "./eddy-data", global = true)]
    data_dir: PathBuf,
    /// Run the statements in FILE and exit.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Run these statements and exit.
    #[arg(short = 'e', long = "execute")]
    execute: Option<String>,
    /// Output format (default: table on a terminal, table otherwise too).
    #[arg(long, value_enum)]
    output: Option<OutputMode>,
    /// Run the statements on a server (`eddy server`), e.g. http://127.0.0.1:8088.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Run over Apache Kafka at these bootstrap servers instead of the embedded log.
    #[arg(long, env = "EDDY_KAFKA", global = true, value_name = "HOST:PORT[,HOST:PORT]")]
    kafka: Option<String>,
    /// Over Kafka: the service id. Instances with the same id share one catalog (the topic
    /// `_eddy-<ID>-commands`) and the work of its persistent queries.
    #[arg(long, env = "EDDY_SERVICE_ID", global = true, value_name = "ID")]
    service_id: Option<String>,
    /// Over Kafka: this instance's name in its service (static group membership, and the
    /// directory of its local state); default: the host name.
    #[arg(long, env = "EDDY_INSTANCE_ID", global = true, value_name = "NAME")]
    instance_id: Option<String>,
    /// Define a variable for the session, as `DEFINE name = 'value'` does (repeatable).
    #[arg(long = "define", value_name = "NAME=VALUE")]
    define: Vec<String>,
    /// Start even if the command log has records that cannot be read or replayed, or persistent
    /// queries that cannot start: they are left out and reported (default: refuse to start).
    #[arg(long, env = "EDDY_SKIP_DAMAGED_COMMANDS", global = true)]
    skip_damaged_commands: bool,
    /// An external Confluent-compatible schema registry for AVRO, PROTOBUF and JSON_SR
    /// (ksqlDB's `ksql.schema.registry.url`); default: the one embedded in the data directory.
    #[arg(long = "schema-registry", env = "EDDY_SCHEMA_REGISTRY_URL", value_name = "URL", global = true)]
    schema_registry: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Append JSON lines from stdin to a topic.
    Produce {
        /// Topic to append to (created when missing).
        topic: String,
        /// Partitions when creating the topic.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// Field whose value becomes the record key.
        #[arg(long)]
        key: Option<String>,
        /// Field holding the record timestamp (ms since the epoch).
        #[arg(long)]
        timestamp: Option<String>,
    },
    /// Print records of a topic as JSON lines.
    Consume {
        /// Topic to read.
        topic: String,
        /// Start at the first record (default: only new records).
        #[arg(long)]
        from_beginning: bool,
        /// Stop after this many records.
        #[arg(long)]
        limit: Option<u64>,
        /// Stop after this many seconds without new records.
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Generate Nexmark events into the topics person, auction and bid (JSON).
    Nexmark {
        /// Events to generate (persons:auctions:bids = 1:3:46).
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Events per second of event time.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        /// Random seed; the same seed gives the same events.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Partitions of each topic when creating it.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
    },
    /// Run the engine headless, serving the HTTP API and the PostgreSQL wire protocol.
    Server {
        /// HTTP listen address ("off" disables it; port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8088")]
        http: String,
        /// PostgreSQL listen address ("off" disables it).
        #[arg(long, default_value = "127.0.0.1:5433")]
        pg: String,
        /// File of `user:password` lines (else EDDY_USER/EDDY_PASSWORD); required off loopback.
        #[arg(long)]
        credentials: Option<PathBuf>,
    },
    /// Run sqllogictest files, each against a fresh engine.
    Test {
        /// Files to run.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Rewrite the expected results with the actual ones.
        #[arg(long)]
        complete: bool,
    },
}

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

/// How every command opens the data directory (set once from the command line).
static OPEN_OPTIONS: std::sync::OnceLock<planner::OpenOptions> = std::sync::OnceLock::new();

/// The options of `--skip-damaged-commands`.
pub fn open_options() -> planner::OpenOptions {
    OPEN_OPTIONS.get().copied().unwrap_or_default()
}

fn run() -> Result<i32> {
    let cli = Cli::parse();
    let place = place::Place {
        data_dir: cli.data_dir.clone(),
        kafka: cli.kafka.clone().map(|bootstrap| place::KafkaPlace {
            bootstrap,
            service_id: cli.service_id.clone(),
            instance_id: cli.instance_id.clone(),
        }),
    };
    let _ = OPEN_OPTIONS.set(planner::OpenOptions { skip_damaged_commands: cli.skip_damaged_commands });
    let registry = cli.schema_registry.as_deref().map(|url| {
        engine::registry::Registry(std::sync::Arc::new(engine::registry::HttpRegistry::new(url)))
    });
    let _ = ENGINE_CONFIG.set(engine::EngineConfig { registry, ..engine::EngineConfig::default() });
    match cli.command {
        Some(Cmd::Test { files, complete }) => {
            let (_, failed) = sql_tests::run_files(&files, complete);
            return Ok(if failed > 0 { 1 } else { 0 });
        }
        Some(Cmd::Produce { topic, partitions, key, timestamp }) => {
            return produce::run(&place, &topic, partitions, key.as_deref(), timestamp.as_deref());
        }
        Some(Cmd::Consume { topic, from_beginning, limit, timeout }) => {
            return consume::run(&place, &topic, from_beginning, limit, timeout);
        }
        Some(Cmd::Nexmark { events, rate, seed, partitions }) => {
            return nexmark::run(&place, events, rate, seed, partitions);
        }
        Some(Cmd::Server { http, pg, credentials }) => {
            let on = |a: String| (a != "off").then_some(a);
            let opts = server::ServerOptions { place: place.clone(), http: on(http), pg: on(pg), credentials };
            server::run(&opts).map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))?;
            return Ok(0);
        }
        None => {}
    }
    let mode = cli.output.unwrap_or(OutputMode::Table);
    let script = match (&cli.file, &cli.execute) {
        (Some(f), _) => Some(std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?),
        (None, Some(e)) => Some(e.clone()),
        (None, None) if !std::io::stdin().is_terminal() => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("cannot read stdin")?;
            Some(s)
        }
        _ => None,
    };
    let defines: Vec<(String, String)> = cli
        .define
        .iter()
        .map(|d| match d.split_once('=') {
            Some((n, v)) => Ok((n.trim().to_string(), v.to_string())),
            None => Err(anyhow::anyhow!("--define {d}: expected NAME=VALUE")),
        })
        .collect::<Result<_>>()?;
    if let Some(url) = &cli.server {
        let remote = client::Remote::connect(url).map_err(anyhow::Error::msg)?;
        let place = format!("server {}", remote.url());
        let mut backend: Box<dyn backend::Backend> = Box::new(remote);
        define_all(backend.as_mut(), &defines)?;
        return match script {
            Some(sql) => script::run(backend.as_mut(), &sql, mode),
            None => repl::run(&mut backend, &place, &cli.data_dir, mode),
        };
    }
    let eddy = place.open()?;
    let mut backend: Box<dyn backend::Backend> = Box::new(backend::Embedded::new(&eddy, place.describe())?);
    define_all(backend.as_mut(), &defines)?;
    let code = match script {
        Some(sql) => script::run(backend.as_mut(), &sql, mode),
        None => repl::run(&mut backend, &place.describe(), &cli.data_dir, mode),
    };
    drop(backend);
    eddy.close().context("shutdown failed")?;
    code
}

/// The variables of `--define` options.
fn define_all(backend: &mut dyn backend::Backend, defines: &[(String, String)]) -> Result<()> {
    for (n, v) in defines {
        backend.define(n, v).map_err(|e| anyhow::anyhow!("--define {n}={v}: {e}"))?;
    }
    Ok(())
}

/// The engine settings the command line asked for (set once, in `main`).
static ENGINE_CONFIG: std::sync::OnceLock<engine::EngineConfig> = std::sync::OnceLock::new();

/// The engine settings: the external schema registry when `--schema-registry` names one.
pub fn engine_config() -> engine::EngineConfig {
    ENGINE_CONFIG.get().cloned().unwrap_or_default()
}

/// Opens the data directory.
pub fn open(dir: &std::path::Path) -> Result<planner::Eddy> {
    let eddy = planner::Eddy::open_with(dir, engine_config(), open_options())
        .map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))
        .with_context(|| format!("cannot open data directory {}", dir.display()))?;
    for note in eddy.engine().recovery_notes().into_iter().chain(eddy.startup_notes()) {
        eprintln!("{note}");
    }
    Ok(eddy)
}
