//! GET /metrics: Prometheus text format. Per query: records in/out, processing errors, late
//! records dropped, lag per source partition, state size; engine-wide: checkpoint duration, epoch
//! and failures, the retention cleaner's passes and what it freed; server-wide: requests,
//! connections, running push queries.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use engine::runtime::keys::{prefix_end, query_prefix};
use planner::Eddy;

/// Counters of the server itself.
#[derive(Debug, Default)]
pub struct Stats {
    /// HTTP requests answered.
    pub http_requests: AtomicU64,
    /// HTTP requests answered with an error status.
    pub http_errors: AtomicU64,
    /// Pull queries run (HTTP and PostgreSQL).
    pub pull_queries: AtomicU64,
    /// Push queries started (HTTP and PostgreSQL).
    pub push_queries: AtomicU64,
    /// Push queries streaming now.
    pub push_active: AtomicI64,
    /// PostgreSQL connections accepted.
    pub pg_connections: AtomicU64,
    /// PostgreSQL connections open now.
    pub pg_active: AtomicI64,
}

/// Decrements a gauge when dropped.
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl<'a> GaugeGuard<'a> {
    /// Increments `g` until the guard drops.
    pub fn new(g: &'a AtomicI64) -> Self {
        g.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The metrics page.
pub fn render(eddy: &Eddy, stats: &Stats) -> String {
    let engine = eddy.engine();
    let queries = engine.queries();
    let mut out = String::new();
    type Counter = (&'static str, &'static str, &'static str, fn(&engine::QueryInfo) -> u64);
    let per_query: [Counter; 4] = [
        ("eddy_query_records_in_total", "counter", "Records read by the query.", |q| q.records_in),
        ("eddy_query_records_out_total", "counter", "Records written (persistent) or rows emitted (push) by the query.", |q| q.records_out),
        ("eddy_query_late_records_dropped_total", "counter", "Records dropped because they arrived after their window's grace period.", |q| q.late_records),
        (
            "eddy_query_processing_errors_total",
            "counter",
            "Rows dropped or nulled by errors other than lateness (decode errors, expression errors).",
            |q| q.errors.saturating_sub(q.late_records),
        ),
    ];
    for (name, kind, help, f) in per_query {
        head(&mut out, name, kind, help);
        for q in &queries {
            let _ = writeln!(out, "{name}{{query=\"{}\",persistent=\"{}\"}} {}", label(&q.id), q.persistent, f(q));
        }
    }
    head(&mut out, "eddy_query_running", "gauge", "1 while the query runs, 0 once it failed.");
    for q in &queries {
        let up = matches!(q.state, engine::QueryState::Running) as u8;
        let _ = writeln!(out, "eddy_query_running{{query=\"{}\",persistent=\"{}\"}} {up}", label(&q.id), q.persistent);
    }
    head(&mut out, "eddy_query_source_lag_records", "gauge", "Records appended to a source partition that the query has not processed yet.");
    for q in &queries {
        for (topic, p, pos) in engine.query_positions(&q.id) {
            let end = engine.log().describe_topic(&topic).ok().and_then(|i| i.partitions.get(p as usize).map(|x| x.end_offset));
            let lag = end.map(|e| (e - pos).max(0)).unwrap_or(0);
            let _ = writeln!(out, "eddy_query_source_lag_records{{query=\"{}\",topic=\"{}\",partition=\"{p}\"}} {lag}", label(&q.id), label(&topic));
        }
    }
    head(&mut out, "eddy_query_task", "gauge", "1 per task of a query this instance runs (over Kafka, the tasks are shared by the service's instances).");
    let instance = label(engine.instance_id().unwrap_or("embedded"));
    for q in &queries {
        for t in &q.task_status {
            let _ = writeln!(
                out,
                "eddy_query_task{{query=\"{}\",instance=\"{instance}\",subtopology=\"{}\",partition=\"{}\"}} 1",
                label(&q.id),
                t.subtopology,
                t.partition
            );
        }
    }
    head(&mut out, "eddy_query_state_bytes", "gauge", "Approximate bytes of the query's state in RocksDB.");
    for q in queries.iter().filter(|q| q.persistent) {
        let prefix = query_prefix(&q.id);
        let size = engine.state().approximate_size(&prefix, &prefix_end(&prefix));
        let _ = writeln!(out, "eddy_query_state_bytes{{query=\"{}\"}} {size}", label(&q.id));
    }
    head(&mut out, "eddy_checkpoint_duration_seconds", "gauge", "Duration of the last checkpoint.");
    let _ = writeln!(out, "eddy_checkpoint_duration_seconds {}", engine.last_checkpoint_duration().as_secs_f64());
    head(&mut out, "eddy_checkpoint_pause_seconds", "gauge", "How long the last checkpoint paused the tasks (until its cut was readable).");
    let _ = writeln!(out, "eddy_checkpoint_pause_seconds {}", engine.last_checkpoint_pause().as_secs_f64());
    head(&mut out, "eddy_checkpoint_epoch", "counter", "The last committed checkpoint.");
    let _ = writeln!(out, "eddy_checkpoint_epoch {}", engine.committed_epoch().0);
    let health = engine.checkpoint_health();
    head(&mut out, "eddy_checkpoint_failures_total", "counter", "Periodic checkpoints that failed (each is retried).");
    let _ = writeln!(out, "eddy_checkpoint_failures_total {}", health.failures_total);
    head(&mut out, "eddy_checkpoint_consecutive_failures", "gauge", "Failed checkpoints since the last one that committed.");
    let _ = writeln!(out, "eddy_checkpoint_consecutive_failures {}", health.consecutive_failures);
    let cleaner = engine.cleaner_stats();
    let cleaner_counters: [(&str, &str, u64); 5] = [
        ("eddy_cleaner_passes_total", "Passes of the retention and compaction cleaner.", cleaner.passes),
        ("eddy_cleaner_failures_total", "Topic cleanings that failed (retried at the next pass).", cleaner.failures),
        ("eddy_cleaner_segments_deleted_total", "Log segments deleted by retention.", cleaner.total.segments_deleted),
        ("eddy_cleaner_records_compacted_total", "Records removed by compaction.", cleaner.total.records_compacted),
        ("eddy_cleaner_bytes_freed_total", "Bytes of log freed by retention and compaction.", cleaner.total.bytes_freed),
    ];
    for (name, help, v) in cleaner_counters {
        head(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    head(&mut out, "eddy_cleaner_last_pass_seconds", "gauge", "Duration of the last cleaner pass.");
    let _ = writeln!(out, "eddy_cleaner_last_pass_seconds {}", cleaner.last_pass.as_secs_f64());
    let server: [(&str, &str, &str, i64); 7] = [
        ("eddy_http_requests_total", "counter", "HTTP requests answered.", stats.http_requests.load(Ordering::Relaxed) as i64),
        ("eddy_http_errors_total", "counter", "HTTP requests answered with an error status.", stats.http_errors.load(Ordering::Relaxed) as i64),
        ("eddy_pull_queries_total", "counter", "Pull queries run.", stats.pull_queries.load(Ordering::Relaxed) as i64),
        ("eddy_push_queries_total", "counter", "Push queries started.", stats.push_queries.load(Ordering::Relaxed) as i64),
        ("eddy_push_queries_active", "gauge", "Push queries streaming now.", stats.push_active.load(Ordering::Relaxed)),
        ("eddy_pg_connections_total", "counter", "PostgreSQL connections accepted.", stats.pg_connections.load(Ordering::Relaxed) as i64),
        ("eddy_pg_connections_active", "gauge", "PostgreSQL connections open now.", stats.pg_active.load(Ordering::Relaxed)),
    ];
    for (name, kind, help, v) in server {
        head(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    out
}
