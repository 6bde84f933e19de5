//! `eddy server`: the engine headless, serving an HTTP API close to ksqlDB's REST API
//! ([`http`]) and the PostgreSQL wire protocol ([`pg`]). Persistent queries keep running whatever
//! the clients do; SIGTERM or SIGINT takes a final checkpoint and exits 0, and the next start
//! resumes every query from it.
//!
//! Each HTTP request gets its own session; each PostgreSQL connection keeps one. Statements run
//! on tokio's blocking pool, never on the async workers that move bytes, so slow pull queries or
//! many clients do not stall each other; persistent queries run on the engine's own threads.

pub mod api;
pub mod auth;
pub mod error;
pub mod exec;
pub mod h2c;
pub mod http;
pub mod inserts;
pub mod json;
pub mod metrics;
pub mod pg;
pub mod pgcatalog;
pub mod pgcompat;
pub mod pgparams;
pub mod pgsql;
pub mod pgtypes;
pub mod query;
pub mod registry;
pub mod topics;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use planner::Eddy;
use tokio::net::TcpListener;
use tokio::sync::watch;

use auth::Credentials;
use error::ServerError;
use metrics::Stats;

/// What `eddy server` was asked to do.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to run: the data directory, or over Kafka.
    pub place: crate::place::Place,
    /// HTTP listen address; `None` disables the HTTP API.
    pub http: Option<String>,
    /// PostgreSQL listen address; `None` disables it.
    pub pg: Option<String>,
    /// `user:password` lines.
    pub credentials: Option<PathBuf>,
}

/// What every connection shares.
pub struct Shared {
    /// The engine and catalog.
    pub eddy: Eddy,
    /// Who may connect; `None`: anyone (loopback only).
    pub creds: Option<Credentials>,
    /// Server counters.
    pub stats: Stats,
    /// Numbers pull-query ids.
    pub ids: AtomicU64,
    /// Push queries streaming over HTTP, for `/close-query`.
    pub running: query::Running,
    /// The data directory (the console shows its disk usage).
    pub data_dir: PathBuf,
    /// When the server started, in ms since the Unix epoch.
    pub started_ms: u64,
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(opts: &ServerOptions) -> Result<(), ServerError> {
    let http_addr = opts.http.as_deref().map(auth::resolve).transpose()?;
    let pg_addr = opts.pg.as_deref().map(auth::resolve).transpose()?;
    let creds = Credentials::load(opts.credentials.as_deref())?;
    for a in http_addr.iter().chain(pg_addr.iter()) {
        auth::require_auth_off_loopback(*a, creds.as_ref())?;
    }
    let eddy = opts.place.open().map_err(|e| ServerError::Unavailable(format!("{e:#}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("eddy-server")
        .build()
        .map_err(|e| ServerError::Unavailable(format!("cannot start the runtime: {e}")))?;
    let started_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let shared = Arc::new(Shared {
        eddy: eddy.clone(),
        creds,
        stats: Stats::default(),
        ids: AtomicU64::new(0),
        running: Default::default(),
        data_dir: opts.place.data_dir.clone(),
        started_ms,
    });
    let result = rt.block_on(serve(shared, http_addr, pg_addr));
    // Stop queries with a final checkpoint even when a listener failed.
    let stopped = eddy.shutdown();
    rt.shutdown_timeout(Duration::from_secs(2));
    // The runtime's tasks have let go of the engine: wait for its state store to close.
    let _ = eddy.close();
    result?;
    stopped.map_err(|e| ServerError::Unavailable(format!("shutdown failed: {}", engine::error_chain(&e))))?;
    eprintln!("eddy server stopped");
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })
}

async fn serve(shared: Arc<Shared>, http_addr: Option<SocketAddr>, pg_addr: Option<SocketAddr>) -> Result<(), ServerError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(addr) = http_addr {
        let l = bind(addr).await?;
        println!("http listening on {}", l.local_addr().unwrap_or(addr));
        tasks.push(tokio::spawn(http::serve(l, shared.clone(), stop_rx.clone())));
    }
    if let Some(addr) = pg_addr {
        let l = bind(addr).await?;
        println!("pg listening on {}", l.local_addr().unwrap_or(addr));
        tasks.push(tokio::spawn(pg::serve(l, shared.clone(), stop_rx.clone())));
    }
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    eprintln!("eddy server stopping: final checkpoint");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
