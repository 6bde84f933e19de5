//! Upgrade fixtures: data directories written by earlier versions of `eddy`, kept in
//! `repl/tests/fixtures/upgrade/<name>/`, each with the persistent queries of its day (an
//! aggregate, a stream-table join, a windowed table) and their state. This binary must resume
//! every one of them: the queries run again with their state (counts go on from where they were,
//! nothing is counted twice), and the statements of `resume.sql` print exactly `expected.txt`
//! (JSON lines), as they did for the version that wrote the fixture.
//!
//! A fixture is written once, by the version it records, and never rewritten:
//! `EDDY_WRITE_FIXTURE=<name> cargo test -p eddy --test upgrade -- --ignored write_fixture`
//! creates `fixtures/upgrade/<name>/` (data directory, `setup.sql`, `resume.sql`,
//! `expected.txt`); commit it. Add one whenever the on-disk format or the plans change.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// What a new fixture sets up (one partition per topic, so that output order is fixed).
const SETUP: &str = "\
CREATE STREAM clicks (user_id STRING KEY, page STRING, ms BIGINT) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=1);
CREATE TABLE users (id STRING PRIMARY KEY, region STRING) WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=1);
SET 'auto.offset.reset'='earliest';
CREATE TABLE clicks_per_user AS SELECT user_id, COUNT(*) AS n, SUM(ms) AS total_ms FROM clicks GROUP BY user_id;
CREATE STREAM clicks_by_region AS SELECT c.user_id AS user_id, u.region AS region, c.page AS page FROM clicks c JOIN users u ON c.user_id = u.id;
CREATE TABLE clicks_per_minute AS SELECT user_id, COUNT(*) AS n FROM clicks WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id;
INSERT INTO users (ROWTIME, id, region) VALUES (1000, 'alice', 'eu');
INSERT INTO users (ROWTIME, id, region) VALUES (1000, 'bob', 'us');
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (60000, 'alice', '/home', 10);
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (61000, 'bob', '/home', 20);
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (62000, 'alice', '/cart', 30);
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (125000, 'alice', '/pay', 40);
SELECT user_id, n, total_ms FROM clicks_per_user;
";

/// What is run against a copy of a new fixture; its output becomes `expected.txt`.
const RESUME: &str = "\
SET 'auto.offset.reset'='earliest';
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (126000, 'alice', '/done', 50);
INSERT INTO clicks (ROWTIME, user_id, page, ms) VALUES (127000, 'bob', '/cart', 60);
SELECT user_id, n, total_ms FROM clicks_per_user;
SELECT user_id, WINDOWSTART AS ws, n FROM clicks_per_minute WHERE user_id = 'alice';
SELECT user_id, region, page FROM clicks_by_region EMIT CHANGES LIMIT 6;
SELECT * FROM clicks_per_user EMIT CHANGES LIMIT 2;
";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade")
}

fn eddy(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("eddy runs")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Runs `resume.sql` of a fixture on a copy of its data directory; returns stdout.
fn resume(fixture: &Path) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture.join("data"), &data);
    let out = eddy(&data, &["--output", "json", "-f", fixture.join("resume.sql").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", fixture.display());
    // A clean shutdown left nothing to repair or cut.
    assert!(!stderr.contains("recovery:"), "{}: {stderr}", fixture.display());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_fixture_resumes_with_its_state() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures in {}", fixtures().display());
    for f in names {
        let expected = std::fs::read_to_string(f.join("expected.txt")).unwrap();
        // The same rows, in any order: a pull query without ORDER BY has none (a table read from
        // its aggregate's state lists its groups in their own order, not the one of the
        // materialized rows the fixtures were written with).
        let sorted = |s: &str| {
            let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&resume(&f)), sorted(&expected), "fixture {}", f.display());
    }
}

#[test]
#[ignore = "writes a new fixture: EDDY_WRITE_FIXTURE=<name>"]
fn write_fixture() {
    let name = std::env::var("EDDY_WRITE_FIXTURE").expect("EDDY_WRITE_FIXTURE=<name>");
    let dir = fixtures().join(&name);
    assert!(!dir.exists(), "{} exists: fixtures are never rewritten", dir.display());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("setup.sql"), SETUP).unwrap();
    std::fs::write(dir.join("resume.sql"), RESUME).unwrap();
    let out = eddy(&dir.join("data"), &["--output", "json", "-f", dir.join("setup.sql").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // RocksDB's info logs are not state.
    for e in std::fs::read_dir(dir.join("data/state")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n == "LOG" || n.starts_with("LOG.old")) {
            std::fs::remove_file(p).unwrap();
        }
    }
    std::fs::write(dir.join("expected.txt"), resume(&dir)).unwrap();
}
