//! The `eddy` binary as users run it: scripts, output modes, restarts, produce/consume, test.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn eddy(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eddy"));
    c.arg("--data-dir").arg(dir).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("eddy starts");
    {
        let mut si = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            si.write_all(s.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("eddy runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The README's quickstart prints what the README says it prints.
#[test]
fn readme_quickstart_is_true() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let sql = block_after(&readme, "```sql\n");
    let expected = block_after(&readme, "which prints\n\n```\n");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("quickstart.sql");
    std::fs::write(&script, sql).unwrap();
    let out = eddy(&dir.path().join("data"), &["-f", script.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), expected);
}

/// The README's Avro section, run after its quickstart on the same data directory, prints what
/// the README says: the CSAS registers its schema and the stream without value columns takes
/// them from the registry.
#[test]
fn readme_avro_section_is_true() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let quickstart = block_after(&readme, "```sql\n");
    let section = &readme[readme.find("## Avro, Protobuf and JSON Schema topics").expect("the Avro section")..];
    let sql = block_after(section, "```sql\n");
    let expected = block_after(section, "which, after the quickstart above, prints\n\n```\n");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first, second) = (dir.path().join("quickstart.sql"), dir.path().join("avro.sql"));
    std::fs::write(&first, quickstart).unwrap();
    std::fs::write(&second, sql).unwrap();
    let out = eddy(&data, &["-f", first.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = eddy(&data, &["-f", second.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), expected);
}

fn block_after<'a>(s: &'a str, marker: &str) -> &'a str {
    let start = s.find(marker).expect("marker") + marker.len();
    let end = s[start..].find("```").expect("end of block") + start;
    &s[start..end]
}

/// A persistent query resumes after the process restarts and processes the rows inserted
/// meanwhile exactly once.
#[test]
fn persistent_query_resumes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let setup = "CREATE STREAM s (id INT KEY, v INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=2);
                 INSERT INTO s (id, v) VALUES (1, 10);
                 SET 'auto.offset.reset'='earliest';
                 CREATE STREAM doubled AS SELECT id, v * 2 AS v2 FROM s;
                 INSERT INTO s (id, v) VALUES (2, 20);";
    let out = eddy(dir.path(), &["-e", setup], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Rows inserted while no query runs.
    let out = eddy(dir.path(), &["-e", "INSERT INTO s (id, v) VALUES (3, 30);"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The query picks them up after the restart, once.
    let out = eddy(dir.path(), &["--output", "json", "-e", "SET 'auto.offset.reset'='earliest'; SELECT * FROM doubled EMIT CHANGES LIMIT 3;"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut rows: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    rows.sort();
    assert_eq!(rows, vec![r#"{"ID":1,"V2":20}"#, r#"{"ID":2,"V2":40}"#, r#"{"ID":3,"V2":60}"#]);
    let out = eddy(dir.path(), &["consume", "DOUBLED", "--from-beginning", "--timeout", "0.5"], None);
    assert_eq!(text(&out.stdout).lines().count(), 3, "no duplicates in the output topic: {}", text(&out.stdout));
}

/// JSON and CSV modes keep stdout for rows; messages go to stderr.
#[test]
fn output_modes() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE STREAM s (id INT KEY, name STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
               INSERT INTO s (id, name) VALUES (1, 'a,b');
               SELECT * FROM s;";
    let out = eddy(dir.path(), &["--output", "csv"], Some(sql));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ID,NAME\n1,\"a,b\"\n");
    assert!(text(&out.stderr).contains("Stream created"));
    let out = eddy(dir.path(), &["--output", "json", "-e", "SELECT * FROM s;"], None);
    assert_eq!(text(&out.stdout), "{\"ID\":1,\"NAME\":\"a,b\"}\n");
}

/// The first failing statement stops the script with status 1 and an error naming it.
#[test]
fn failing_statement_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let out = eddy(dir.path(), &["-e", "SHOW STREAMS; SELECT * FROM missing; SHOW TOPICS;"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("SELECT * FROM missing"), "{err}");
    assert!(err.contains("unknown stream or table \"MISSING\""), "{err}");
    assert!(!text(&out.stdout).contains("Kafka Topic | Partitions"), "later statements must not run");
}

/// `eddy produce` appends JSON lines, keyed and timestamped from fields; a bad line stops it,
/// names its line number, and nothing after it is appended.
#[test]
fn produce_and_consume() {
    let dir = tempfile::tempdir().unwrap();
    let lines = "{\"id\": \"a\", \"t\": 5, \"x\": 1}\n{\"id\": \"b\", \"t\": 6, \"x\": 2}\nnot json\n{\"id\": \"c\", \"t\": 7}\n";
    let out = eddy(dir.path(), &["produce", "events", "--partitions", "1", "--key", "id", "--timestamp", "t"], Some(lines));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("line 3"), "{}", text(&out.stderr));
    let out = eddy(dir.path(), &["consume", "events", "--from-beginning", "--timeout", "0.3"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"topic\":\"events\",\"partition\":0,\"offset\":0,\"timestamp\":5,\"key\":\"a\",\"value\":{\"id\": \"a\", \"t\": 5, \"x\": 1}}\n\
         {\"topic\":\"events\",\"partition\":0,\"offset\":1,\"timestamp\":6,\"key\":\"b\",\"value\":{\"id\": \"b\", \"t\": 6, \"x\": 2}}\n"
    );
    // The produced records are readable as a stream.
    let out = eddy(
        dir.path(),
        &["--output", "csv", "-e", "CREATE STREAM ev (id STRING KEY, x INT) WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON'); SELECT id, x, ROWTIME FROM ev LIMIT 5;"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ID,X,ROWTIME\na,1,5\nb,2,6\n");
}

/// `eddy test` runs users' files and ends with a summary line.
#[test]
fn test_command_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.slt");
    std::fs::write(&good, "statement ok\nSHOW STREAMS;\n\nstatement error unknown stream\nDROP STREAM nope;\n").unwrap();
    let bad = dir.path().join("bad.slt");
    std::fs::write(&bad, "statement ok\nDROP STREAM nope;\n").unwrap();
    let out = eddy(dir.path(), &["test", good.to_str().unwrap(), bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).trim_end().ends_with("1 passed, 1 failed"), "{}", text(&out.stdout));
}
