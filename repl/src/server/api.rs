//! The console's API (`/api/...`) and the console itself (`/`, `/console/...`); see
//! docs/http-api.md. Everything the console shows comes from these endpoints and the
//! statement endpoints, so a script sees what a person sees.
//!
//! - `GET /api/queries`: every running query with its counters and lag.
//! - `GET /api/queries/{id}`: one query's operator graph (its plan) and, per task this instance
//!   runs, per node: rows in and out, batches, errors, late rows, state bytes; per input: lag.
//! - `GET /api/topics`: topics with their partitions' offsets and sizes.
//! - `GET /api/health`: checkpoints, recovery notes, disk.
//!
//! Counters are totals since the task started on this instance; `timeMs` (the server's clock)
//! comes with each answer, so that a client computes rates from two answers.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use engine::runtime::keys::{prefix_end, query_prefix, state_prefix, state_table_prefix};
use engine::plan_data::{OpData, PlanData};
use engine::{QueryInfo, QueryState};
use hyper::{Method, Request, Response};
use serde_json::{json, Value};

use super::exec::blocking;
use super::http::{respond, Body};
use super::{json as wire, Shared};

/// The console page and its script and styles, built into the binary.
const INDEX_HTML: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const APP_CSS: &str = include_str!("../../console/app.css");

/// Whether `path` (without a trailing slash) is the console's or its API's.
pub fn handles(path: &str) -> bool {
    path.is_empty() || path == "/console" || path.starts_with("/console/") || path == "/api" || path.starts_with("/api/")
}

/// Serves a console or API request (authentication already checked).
pub async fn serve<B>(shared: &Arc<Shared>, req: Request<B>, path: &str) -> Response<Body> {
    if req.method() != Method::GET {
        return respond(405, "application/json", wire::plain_error(405, &format!("{} takes GET requests, not {}", display(path), req.method())));
    }
    let page = |ty: &str, body: &'static str| {
        let mut r = respond(200, ty, body);
        r.headers_mut().insert("cache-control", hyper::header::HeaderValue::from_static("no-cache"));
        r
    };
    match path {
        "" | "/console" => return page("text/html; charset=utf-8", INDEX_HTML),
        "/console/app.js" => return page("text/javascript; charset=utf-8", APP_JS),
        "/console/app.css" => return page("text/css; charset=utf-8", APP_CSS),
        _ => {}
    }
    let (shared, path) = (shared.clone(), path.to_string());
    let answer = blocking(move || api(&shared, &path)).await;
    match answer {
        Ok((status, body)) => respond(status, "application/json", body.to_string()),
        Err(e) => super::http::error_response(&e, &[]),
    }
}

fn display(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// The API's answer: status and body.
fn api(shared: &Shared, path: &str) -> (u16, Value) {
    match path {
        "/api/queries" => (200, queries(shared)),
        "/api/topics" => (200, topics(shared)),
        "/api/health" => (200, health(shared)),
        _ => match path.strip_prefix("/api/queries/") {
            Some(id) => match query(shared, &percent_decode(id)) {
                Some(v) => (200, v),
                None => (404, not_found(&format!("unknown query \"{}\"", percent_decode(id)))),
            },
            None => (404, not_found(&format!("no endpoint {path}"))),
        },
    }
}

fn not_found(message: &str) -> Value {
    json!({"@type": "generic_error", "error_code": 40400, "message": message})
}

/// `%XX` escapes decoded (query ids are plain, but a client may escape them).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn instance(shared: &Shared) -> String {
    shared.eddy.engine().instance_id().unwrap_or("embedded").to_string()
}

/// End offsets of the topics one answer looks at, each topic described once per answer
/// (a query's tasks share their input topics).
#[derive(Default)]
struct Ends(std::collections::HashMap<String, Vec<i64>>);

impl Ends {
    /// The end offset of `topic`'s partition `p`; `None` when the topic cannot be described.
    fn of(&mut self, shared: &Shared, topic: &str, p: u32) -> Option<i64> {
        let ends = self.0.entry(topic.to_string()).or_insert_with(|| {
            shared.eddy.engine().log().describe_topic(topic).map(|t| t.partitions.iter().map(|p| p.end_offset).collect()).unwrap_or_default()
        });
        ends.get(p as usize).copied()
    }
}

/// Records the query read from its input topics and wrote to its output topics, leaving out
/// the internal (repartition) topics between its sub-topologies, which `recordsIn` and
/// `recordsOut` count too.
fn external_counts(q: &QueryInfo, plan: Option<&PlanData>) -> (u64, u64) {
    let Some(plan) = plan else { return (q.records_in, q.records_out) };
    let (mut read, mut written) = (0, 0);
    for t in &q.task_status {
        let Some(dag) = plan.subtopologies.get(t.subtopology) else { continue };
        for n in &t.nodes {
            match dag.nodes.get(n.node).map(|d| &d.op) {
                Some(op @ OpData::Source { .. }) if op.topic().is_some_and(|(_, internal)| !internal) => read += n.rows_in,
                Some(op @ OpData::Sink { .. }) if op.topic().is_some_and(|(_, internal)| !internal) => written += n.rows_out,
                _ => {}
            }
        }
    }
    if q.persistent {
        (read, written)
    } else {
        // A push query's rows go to its client, counted by the query.
        (read, q.records_out)
    }
}

fn summary(shared: &Shared, q: &QueryInfo, sql: Option<&str>, plan: Option<&PlanData>, ends: &mut Ends) -> Value {
    let engine = shared.eddy.engine();
    let (input, output) = external_counts(q, plan);
    let (state, error) = match &q.state {
        QueryState::Error(m) => ("ERROR", Some(m.clone())),
        QueryState::Running if q.user_paused => ("PAUSED", None),
        QueryState::Running => ("RUNNING", None),
    };
    let mut lag = 0i64;
    for t in &q.task_status {
        for (topic, p, pos) in &t.inputs {
            if let Some(end) = ends.of(shared, topic, *p) {
                lag += (end - pos).max(0);
            }
        }
    }
    let state_bytes = if q.persistent {
        let prefix = query_prefix(&q.id);
        engine.state().approximate_size(&prefix, &prefix_end(&prefix))
    } else {
        0
    };
    json!({
        "id": q.id, "persistent": q.persistent, "state": state, "error": error,
        "waiting": q.paused.clone().or_else(|| q.checkpoint_error.clone()),
        "sql": sql, "sourceTopics": q.source_topics, "sinkTopics": q.sink_topics,
        "recordsIn": q.records_in, "recordsOut": q.records_out, "inputRecords": input, "outputRecords": output,
        "errors": q.errors.saturating_sub(q.late_records), "lateRecords": q.late_records,
        "tasks": q.tasks, "stateBytes": state_bytes, "lag": lag,
    })
}

fn queries(shared: &Shared) -> Value {
    let catalog = shared.eddy.catalog();
    let mut ends = Ends::default();
    let list: Vec<Value> = shared
        .eddy
        .engine()
        .queries()
        .iter()
        .map(|q| {
            let plan = shared.eddy.engine().query_spec(&q.id).map(|s| s.to_plan_data());
            summary(shared, q, catalog.queries.get(&q.id).map(|d| d.sql.as_str()), plan.as_ref(), &mut ends)
        })
        .collect();
    json!({"timeMs": now_ms(), "instance": instance(shared), "queries": list})
}

fn query(shared: &Shared, id: &str) -> Option<Value> {
    let engine = shared.eddy.engine();
    let info = engine.query(id)?;
    let plan = engine.query_spec(id)?.to_plan_data();
    let catalog = shared.eddy.catalog();
    let instance = instance(shared);
    let mut ends = Ends::default();
    let tasks: Vec<Value> = info
        .task_status
        .iter()
        .map(|t| {
            let inputs: Vec<Value> = t
                .inputs
                .iter()
                .map(|(topic, p, pos)| {
                    let end = ends.of(shared, topic, *p);
                    json!({"topic": topic, "partition": p, "offset": pos, "end": end, "lag": end.map(|e| (e - pos).max(0))})
                })
                .collect();
            let dag = plan.subtopologies.get(t.subtopology);
            let nodes: Vec<Value> = t
                .nodes
                .iter()
                .map(|n| {
                    let table = dag.and_then(|d| d.nodes.get(n.node)).and_then(|d| d.op.state_table());
                    let bytes = table.map(|table| {
                        let prefix = state_prefix(id, table, t.subtopology, t.partition);
                        engine.state().approximate_size(&prefix, &prefix_end(&prefix))
                    });
                    json!({"node": n.node, "rowsIn": n.rows_in, "rowsOut": n.rows_out, "batches": n.batches,
                           "errors": n.errors, "late": n.late, "stateBytes": bytes})
                })
                .collect();
            json!({"subtopology": t.subtopology, "partition": t.partition, "instance": instance, "inputs": inputs, "nodes": nodes})
        })
        .collect();
    let subtopologies: Vec<Value> = plan
        .subtopologies
        .iter()
        .map(|dag| {
            let nodes: Vec<Value> = dag
                .nodes
                .iter()
                .map(|n| {
                    let (topic, internal) = n.op.topic().map(|(t, i)| (Some(t), i)).unwrap_or((None, false));
                    let state = n.op.state_table().map(|table| {
                        let prefix = state_table_prefix(id, table);
                        engine.state().approximate_size(&prefix, &prefix_end(&prefix))
                    });
                    let columns: Vec<&str> = n.schema.iter().filter(|f| !f.name.starts_with('_')).map(|f| f.name.as_str()).collect();
                    json!({"id": n.id, "kind": n.op.kind_name(), "label": n.op.to_string(), "inputs": n.inputs,
                           "columns": columns, "topic": topic, "internal": internal, "stateBytes": state})
                })
                .collect();
            json!({"nodes": nodes})
        })
        .collect();
    let sql = catalog.queries.get(id).map(|d| d.sql.as_str());
    Some(json!({"timeMs": now_ms(), "query": summary(shared, &info, sql, Some(&plan), &mut ends), "plan": {"subtopologies": subtopologies}, "tasks": tasks}))
}

fn topics(shared: &Shared) -> Value {
    let log = shared.eddy.engine().log();
    let mut names = log.list_topics();
    names.sort();
    let list: Vec<Value> = names
        .iter()
        .filter_map(|name| {
            let info = log.describe_topic(name).ok()?;
            let partitions: Vec<Value> = info
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| json!({"partition": i, "start": p.start_offset, "end": p.end_offset, "bytes": p.size_bytes}))
                .collect();
            Some(json!({"name": name, "internal": name.starts_with('_'), "partitions": partitions}))
        })
        .collect();
    json!({"timeMs": now_ms(), "topics": list})
}

fn health(shared: &Shared) -> Value {
    let engine = shared.eddy.engine();
    let h = engine.checkpoint_health();
    let mut notes = engine.recovery_notes();
    notes.extend(shared.eddy.startup_notes());
    json!({
        "timeMs": now_ms(),
        "backend": if engine.instance_id().is_some() { "kafka" } else { "embedded" },
        "instance": instance(shared),
        "startedMs": shared.started_ms,
        "checkpoint": {
            "epoch": engine.committed_epoch().0,
            "lastDurationMs": engine.last_checkpoint_duration().as_secs_f64() * 1000.0,
            "lastPauseMs": engine.last_checkpoint_pause().as_secs_f64() * 1000.0,
            "lastAtMs": engine.last_checkpoint_at_ms(),
            "failuresTotal": h.failures_total,
            "consecutiveFailures": h.consecutive_failures,
            "lastError": h.last_error,
        },
        "recoveryNotes": notes,
        "disk": disk(&shared.data_dir),
    })
}

/// The data directory's file system (total and free bytes) and the bytes under it.
fn disk(dir: &Path) -> Value {
    let Ok(fs) = nix::sys::statvfs::statvfs(dir) else { return Value::Null };
    let block = fs.fragment_size();
    json!({
        "dataDir": dir.display().to_string(),
        "totalBytes": fs.blocks() * block,
        "freeBytes": fs.blocks_available() * block,
        "usedBytes": du(dir),
    })
}

/// Bytes of the files under `dir` (symbolic links not followed).
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("CSAS_OUT_1"), "CSAS_OUT_1");
        assert_eq!(percent_decode("a%20b%2F"), "a b/");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
    }

    #[test]
    fn console_and_api_paths_are_ours() {
        assert!(handles(""));
        assert!(handles("/console/app.js"));
        assert!(handles("/api/queries/X"));
        assert!(!handles("/ksql"));
        assert!(!handles("/apis"));
    }
}
