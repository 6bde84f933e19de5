//! Every Nexmark query of `benches/nexmark/` runs in the driver and produces output: the files
//! are SQL that the engine's checks (ksqlDB's rules for joins, windows, keys) must go on
//! accepting, and nothing else runs them before a benchmark does.

// An integration test: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn every_nexmark_query_runs_and_produces_output() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    // 20k events at 200 events per second of event time: 100 s, so that 10 s windows close.
    let out = Command::new(env!("CARGO_BIN_EXE_nexmark"))
        .args(["--events", "20000", "--rate", "200", "--no-latency", "--dir"])
        .arg(dir.path().join("work"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the driver failed: {stderr}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = doc["results"].as_array().unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/nexmark")).unwrap();
    let expected = files.filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().ends_with(".sql")).count() - 1;
    assert_eq!(results.len(), expected, "one result per query file but sources.sql");
    for r in results {
        let q = r["query"].as_str().unwrap();
        assert!(r.get("error").is_none(), "{q} failed: {}\n{stderr}", r["error"]);
        assert!(r["output_records"].as_u64().unwrap() > 0, "{q} produced no output: {r}");
    }
}
