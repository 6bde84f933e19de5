//! The web console of `eddy server`: the API it reads (`/api/...`, asserted field by field
//! against a real server), the page itself, and a browser test (headless Debian Chromium driven
//! by Playwright for Python, `repl/tests/console/console_test.py`) that runs statements, watches a
//! push query's rows arrive and opens a query's graph. The browser test needs `EDDY_PYTHON` (a
//! venv of `.ci/requirements.txt`) and `/usr/bin/chromium`; under `CI=true` it fails without
//! them, elsewhere it is skipped, loudly. Its screenshots go to
//! `$CARGO_TARGET_TMPDIR/console-screenshots` (CI keeps that folder as an artifact).

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{wait_until, Server};

fn get_json(s: &Server, path: &str) -> Value {
    let (status, body) = s.get(path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}

/// A stream of clicks on two partitions and a table counting them per page.
fn setup(s: &Server) {
    s.ksql("CREATE STREAM clicks (id INT KEY, page STRING) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=2);");
    let body = serde_json::json!({
        "ksql": "CREATE TABLE per_page AS SELECT page, COUNT(*) AS n FROM clicks GROUP BY page;",
        "streamsProperties": { "auto.offset.reset": "earliest" }
    });
    let (status, text) = s.post("/ksql", &body.to_string());
    assert_eq!(status, 200, "{text}");
    for (id, page) in [(1, "a"), (2, "b"), (3, "a"), (4, "a")] {
        s.ksql(&format!("INSERT INTO clicks (id, page) VALUES ({id}, '{page}');"));
    }
    wait_until("the table to count the clicks", || s.query("SELECT * FROM per_page WHERE page = 'a';").get(1).map(String::as_str) == Some("[\"a\",3]"));
}

/// Whether query `q` (an /api/queries entry) writes `topic`.
fn writes(q: &Value, topic: &str) -> bool {
    q["sinkTopics"].as_array().is_some_and(|t| t.iter().any(|t| t == topic))
}

fn query_id(s: &Server) -> String {
    let v = get_json(s, "/api/queries");
    let q = v["queries"].as_array().unwrap().iter().find(|q| writes(q, "PER_PAGE")).unwrap_or_else(|| panic!("no query writes PER_PAGE: {v}"));
    q["id"].as_str().unwrap().to_string()
}

#[test]
fn the_console_page_and_its_files_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for (path, ty) in [("/", "text/html"), ("/console", "text/html"), ("/console/app.js", "text/javascript"), ("/console/app.css", "text/css")] {
        let resp = Server::agent().get(format!("{}{path}", s.http)).call().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let got = resp.headers().get("content-type").unwrap().to_str().unwrap().to_string();
        assert!(got.starts_with(ty), "{path}: {got}");
    }
    let (_, html) = s.get("/");
    assert!(html.contains("/console/app.js"), "{html}");
    let (status, body) = s.post("/api/queries", "{}");
    assert_eq!(status, 405, "{body}");
    let (status, body) = s.get("/api/nope");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no endpoint /api/nope"), "{body}");
}

#[test]
fn api_queries_lists_counters_and_lag() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    setup(&s);
    let v = get_json(&s, "/api/queries");
    assert!(v["timeMs"].as_u64().unwrap() > 1_600_000_000_000, "{v}");
    assert_eq!(v["instance"], "embedded");
    let q = v["queries"].as_array().unwrap().iter().find(|q| writes(q, "PER_PAGE")).unwrap().clone();
    assert_eq!(q["persistent"], true);
    assert_eq!(q["state"], "RUNNING");
    assert_eq!(q["error"], Value::Null);
    assert!(q["sql"].as_str().unwrap().starts_with("CREATE TABLE per_page AS SELECT"), "{q}");
    assert_eq!(q["sourceTopics"][0], "clicks");
    // Four clicks read; the aggregate's output goes through a repartition topic and the table's topic.
    assert!(q["recordsIn"].as_u64().unwrap() >= 4, "{q}");
    assert_eq!(q["lag"], 0, "{q}");
    assert!(q["tasks"].as_u64().unwrap() >= 2, "{q}");
    // Without the repartition topic's reads and writes: the four clicks in, one or more
    // upserts per page out (two pages).
    assert_eq!(q["inputRecords"], 4, "{q}");
    let out = q["outputRecords"].as_u64().unwrap();
    assert!((2..=4).contains(&out), "{q}");
    assert!(q["recordsIn"].as_u64().unwrap() >= 8, "the repartition topic is read too: {q}");
    let id = q["id"].as_str().unwrap().to_string();
    s.ksql(&format!("PAUSE {id};"));
    let v = get_json(&s, "/api/queries");
    let q = v["queries"].as_array().unwrap().iter().find(|q| q["id"] == id.as_str()).unwrap().clone();
    assert_eq!(q["state"], "PAUSED", "{q}");
    s.ksql("INSERT INTO clicks (id, page) VALUES (5, 'b');");
    wait_until("the paused query's lag to show", || {
        let v = get_json(&s, "/api/queries");
        v["queries"].as_array().unwrap().iter().any(|q| q["id"] == id.as_str() && q["lag"] == 1)
    });
    s.ksql(&format!("RESUME {id};"));
    wait_until("the resumed query to catch up", || {
        let v = get_json(&s, "/api/queries");
        v["queries"].as_array().unwrap().iter().any(|q| q["id"] == id.as_str() && q["lag"] == 0 && q["state"] == "RUNNING")
    });
}

#[test]
fn api_query_shows_the_graph_and_per_node_counters() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    setup(&s);
    let id = query_id(&s);
    let v = get_json(&s, &format!("/api/queries/{id}"));
    assert_eq!(v["query"]["id"], id.as_str());
    let subs = v["plan"]["subtopologies"].as_array().unwrap();
    let kinds: Vec<Vec<&str>> = subs.iter().map(|d| d["nodes"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect()).collect();
    // Grouping by a value column repartitions: a sub-topology that re-keys, then the aggregate.
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0].first(), Some(&"Source"), "{kinds:?}");
    assert_eq!(kinds[0].last(), Some(&"Sink"), "{kinds:?}");
    assert!(kinds[1].contains(&"Aggregate"), "{kinds:?}");
    let repartition = subs[0]["nodes"].as_array().unwrap().last().unwrap();
    assert_eq!(repartition["internal"], true, "{repartition}");
    let next_source = &subs[1]["nodes"][0];
    assert_eq!(next_source["topic"], repartition["topic"], "the repartition topic links the sub-topologies");
    let agg = subs[1]["nodes"].as_array().unwrap().iter().find(|n| n["kind"] == "Aggregate").unwrap();
    assert!(agg["label"].as_str().unwrap().starts_with("Aggregate"), "{agg}");
    assert!(agg["stateBytes"].is_u64(), "{agg}");
    let agg_id = agg["id"].as_u64().unwrap();
    // Tasks: both partitions of both sub-topologies; the clicks read in sub-topology 0 and the
    // aggregate's input in sub-topology 1 add up to the four clicks.
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4, "{tasks:?}");
    let sum = |sub: u64, node: u64, field: &str| -> u64 {
        tasks
            .iter()
            .filter(|t| t["subtopology"] == sub)
            .flat_map(|t| t["nodes"].as_array().unwrap().iter().filter(|n| n["node"] == node).map(|n| n[field].as_u64().unwrap()))
            .sum()
    };
    assert_eq!(sum(0, 0, "rowsOut"), 4);
    // The repartition sink wrote the four clicks; the table's sink its upserts.
    let last0 = subs[0]["nodes"].as_array().unwrap().len() as u64 - 1;
    assert_eq!(sum(0, last0, "rowsOut"), 4);
    let last1 = subs[1]["nodes"].as_array().unwrap().len() as u64 - 1;
    assert_eq!(sum(1, last1, "rowsOut"), v["query"]["outputRecords"].as_u64().unwrap());
    assert_eq!(sum(1, agg_id, "rowsIn"), 4);
    assert!(sum(0, 0, "batches") >= 1);
    assert_eq!(sum(1, agg_id, "errors"), 0);
    for t in tasks {
        for i in t["inputs"].as_array().unwrap() {
            assert_eq!(i["lag"], 0, "{t}");
            assert_eq!(i["offset"], i["end"], "{t}");
        }
    }
    let (status, body) = s.get("/api/queries/NOPE_1");
    assert_eq!(status, 404);
    assert!(body.contains("unknown query \\\"NOPE_1\\\""), "{body}");
}

#[test]
fn api_topics_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    setup(&s);
    let v = get_json(&s, "/api/topics");
    let clicks = v["topics"].as_array().unwrap().iter().find(|t| t["name"] == "clicks").unwrap().clone();
    assert_eq!(clicks["internal"], false);
    let parts = clicks["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let ends: i64 = parts.iter().map(|p| p["end"].as_i64().unwrap() - p["start"].as_i64().unwrap()).sum();
    assert_eq!(ends, 4, "{clicks}");
    assert!(parts.iter().map(|p| p["bytes"].as_u64().unwrap()).sum::<u64>() > 0, "{clicks}");
    wait_until("a checkpoint", || get_json(&s, "/api/health")["checkpoint"]["epoch"].as_u64().unwrap() > 0);
    let h = get_json(&s, "/api/health");
    assert_eq!(h["backend"], "embedded");
    assert!(h["checkpoint"]["lastAtMs"].as_u64().unwrap() <= h["timeMs"].as_u64().unwrap(), "{h}");
    assert_eq!(h["checkpoint"]["failuresTotal"], 0);
    assert_eq!(h["checkpoint"]["lastError"], Value::Null);
    assert!(h["recoveryNotes"].as_array().unwrap().is_empty(), "{h}");
    let disk = &h["disk"];
    assert_eq!(disk["dataDir"], dir.path().display().to_string());
    assert!(disk["freeBytes"].as_u64().unwrap() <= disk["totalBytes"].as_u64().unwrap(), "{disk}");
    assert!(disk["usedBytes"].as_u64().unwrap() > 0, "{disk}");
}

#[test]
fn the_console_asks_a_browser_for_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[], &[("EDDY_USER", "alice"), ("EDDY_PASSWORD", "secret")]);
    let resp = Server::agent().get(format!("{}/", s.http)).call().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers().get("www-authenticate").unwrap().to_str().unwrap(), "Basic realm=\"eddy\"");
    let (status, html) = s.get("/");
    assert_eq!(status, 200);
    assert!(html.contains("<html"), "{html}");
    assert_eq!(get_json(&s, "/api/health")["backend"], "embedded");
}

/// The Python with Playwright, and Chromium, if both are there.
fn browser() -> Option<String> {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let python = std::env::var("EDDY_PYTHON").ok().filter(|p| !p.is_empty() && Path::new(p).exists());
    let chromium = Path::new("/usr/bin/chromium").exists();
    match (python, chromium) {
        (Some(p), true) => Some(p),
        _ if ci => panic!("the console's browser test needs EDDY_PYTHON (the venv of .ci/requirements.txt) and /usr/bin/chromium; .ci/run installs both"),
        _ => {
            eprintln!("SKIPPED: the console's browser test needs EDDY_PYTHON (with Playwright) and /usr/bin/chromium");
            None
        }
    }
}

#[test]
fn a_browser_runs_statements_streams_rows_and_draws_a_query() {
    let Some(python) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/console_test.py");
    let out = Command::new(&python).arg(&script).arg(&s.http).arg(&shots).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "console_test.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok query page rates") && stdout.contains("ok all"), "{stdout}");
    assert!(shots.join("query.png").exists(), "no screenshot of the query page in {}", shots.display());
    eprintln!("console screenshots: {}", shots.display());
}
