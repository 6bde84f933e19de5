//! A full disk pauses persistent queries instead of killing them, and they resume when space
//! returns, without losing or duplicating output.
//!
//! The full disk is a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so that a write past it
//! fails with EFBIG instead of killing the process), set by the shell that starts the child and
//! lifted from outside with `prlimit`. Skipped where `bash` or `prlimit` is missing.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn eddy() -> &'static str {
    env!("CARGO_BIN_EXE_eddy")
}

fn run_ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(eddy())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "eddy {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Size of the largest segment file of a topic.
fn segment_bytes(dir: &Path, topic: &str) -> u64 {
    let pdir = dir.join("topics").join(topic).join("0");
    std::fs::read_dir(pdir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[test]
fn full_disk_pauses_queries_and_they_resume() {
    if !have("bash") || !have("prlimit") {
        eprintln!("skipped: needs bash and prlimit");
        return;
    }
    const N: usize = 20_000;
    const LIMIT_KB: u64 = 1536;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    run_ok(d, &["-e", "CREATE STREAM s (k STRING KEY, id INT, v STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);"], "");
    let pad = "x".repeat(100);
    let lines: String = (0..N).map(|i| format!("{{\"k\":\"k{i}\",\"id\":{i},\"v\":\"{pad}{i}\"}}\n")).collect();
    run_ok(d, &["produce", "s", "--key", "k"], &lines);

    // The child creates the queries; every file it writes is limited to LIMIT_KB, which the
    // copy's segment reaches after its first batches (a source reads up to 1 MiB at a time).
    let script = "SET 'auto.offset.reset'='earliest';
                  CREATE STREAM copy AS SELECT k, id, v FROM s;
                  CREATE TABLE counts AS SELECT id % 10 AS bucket, COUNT(*) AS n FROM s GROUP BY id % 10;
                  SET 'eddy.pull.timeout.ms'='300000'; SELECT * FROM counts WHERE bucket = 99;";
    let shell = format!(
        "trap '' XFSZ; ulimit -S -f {LIMIT_KB}; exec \"$0\" --data-dir \"$1\" -e \"$2\"",
    );
    let mut child = Command::new("bash")
        .args(["-c", &shell, eddy(), d.to_str().unwrap(), script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the copy's segment stops growing at the limit.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (0, Instant::now());
    loop {
        assert!(child.try_wait().unwrap().is_none(), "eddy must not exit while the disk is full");
        let size = segment_bytes(d, "COPY");
        if size != last.0 {
            last = (size, Instant::now());
        } else if size > 0 && last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(Instant::now() < deadline, "the copy never stalled (size {size})");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stalled = last.0;
    assert!(stalled <= LIMIT_KB * 1024, "segment of {stalled} bytes is past the limit");
    // Still alive after a while at the limit: paused, not dead.
    std::thread::sleep(Duration::from_secs(1));
    assert!(child.try_wait().unwrap().is_none(), "eddy must not exit while the disk is full");

    // Space returns: the queries resume and the pull query (which waits for them) completes.
    let st = Command::new("prlimit").args(["--pid", &child.id().to_string(), "--fsize=unlimited:"]).status().unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "queries did not finish after space returned");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Every record once, in order; the counts are exact.
    let copied = run_ok(d, &["consume", "COPY", "--from-beginning", "--timeout", "0.5"], "");
    let ids: Vec<i64> = copied
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["value"]["ID"].as_i64().unwrap())
        .collect();
    if ids != (0..N as i64).collect::<Vec<_>>() {
        let mut seen = std::collections::HashMap::new();
        for i in &ids {
            *seen.entry(*i).or_insert(0) += 1;
        }
        let lost = (0..N as i64).filter(|i| !seen.contains_key(i)).count();
        let dup: usize = seen.values().map(|n| n - 1).sum();
        let first_gap = ids.windows(2).position(|w| w[1] != w[0] + 1);
        panic!(
            "output after the pause: {} records, lost {lost}, duplicated {dup}, first {:?}, first break at index {first_gap:?} ({:?})",
            ids.len(),
            ids.first(),
            first_gap.map(|g| &ids[g..(g + 2).min(ids.len())])
        );
    }
    let counts = run_ok(d, &["--output", "json", "-e", "SELECT bucket, n FROM counts;"], "");
    let mut n: Vec<String> = counts.lines().map(String::from).collect();
    n.sort();
    let expected: Vec<String> = (0..10).map(|b| format!("{{\"BUCKET\":{b},\"N\":{}}}", N / 10)).collect();
    assert_eq!(n, expected);
    eprintln!("disk full: the copy stalled at {stalled} bytes (limit {} bytes), resumed and finished", LIMIT_KB * 1024);
}
