//! The `eddy` CLI as a ksqlDB CLI user meets it: variables from `--define` and `DEFINE`,
//! `RUN SCRIPT`, statements run one by one, values rendered as ksqlDB's CLI renders them,
//! `PRINT` lines, and what a push query says when it ends.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn eddy(dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eddy"));
    c.arg("--data-dir").arg(dir).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.env_remove("COLUMNS");
    c.output().expect("eddy runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const SETUP: &str = "CREATE STREAM s (id INT KEY, ts TIMESTAMP, st STRUCT<C STRING, D INT>, a ARRAY<INT>, m MAP<STRING, INT>)
      WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
    INSERT INTO s (ROWTIME, id, ts, st, a, m) VALUES (1562634000000, 7, '2019-07-09T01:00', STRUCT(C:='v1', D:=5), ARRAY[2, 3], MAP('k':=1));";

/// Tables show TIMESTAMPs bare, structs and maps as `{C=v1, D=5}`, arrays as `[2, 3]`; a scan
/// that ends with its input says nothing of a limit.
#[test]
fn values_render_as_ksqldb_cli_renders_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = eddy(dir.path(), &["-e", &format!("{SETUP} SELECT ts, st, a, m FROM s;")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let row = stdout.lines().find(|l| l.contains("2019-07-09")).unwrap_or_else(|| panic!("{stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells, vec!["2019-07-09T01:00:00.000", "{C=v1, D=5}", "[2, 3]", "{k=1}"]);
    assert!(!stdout.contains("Limit Reached"), "{stdout}");
    // JSON output keeps JSON.
    let out = eddy(dir.path(), &["--output", "json", "-e", "SELECT st, a FROM s;"]);
    assert_eq!(text(&out.stdout), "{\"ST\":{\"C\":\"v1\",\"D\":5},\"A\":[2,3]}\n");
}

/// A push query's columns have fixed widths (from the terminal's width), not the first row's.
#[test]
fn push_query_columns_are_not_sized_by_the_first_row() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE STREAM w (id INT KEY, v STRING) WITH (KAFKA_TOPIC='w', VALUE_FORMAT='JSON', PARTITIONS=1);
        INSERT INTO w (id, v) VALUES (1, 'a');
        INSERT INTO w (id, v) VALUES (2, 'a much longer value than the first one');
        SET 'auto.offset.reset'='earliest';
        SELECT * FROM w EMIT CHANGES LIMIT 2;";
    let out = eddy(dir.path(), &["-e", sql]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with('|') || l.starts_with('+')).collect();
    let width = table[0].chars().count();
    assert!(table.iter().all(|l| l.chars().count() == width), "{stdout}");
    assert!(stdout.contains("a much longer value"), "{stdout}");
    assert!(stdout.trim_end().ends_with("Limit Reached"), "{stdout}");
}

/// PRINT prints ksqlDB's lines, with KAFKA INT keys as numbers.
#[test]
fn print_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = eddy(dir.path(), &["-e", &format!("{SETUP} PRINT 's' FROM BEGINNING LIMIT 1;")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("rowtime: 2019/07/09 01:00:00.000 Z, key: 7, value: {\"TS\":1562634000000,\"ST\":{\"C\":\"v1\",\"D\":5},\"A\":[2,3],\"M\":{\"k\":1}}, partition: 0\n"),
        "{stdout}"
    );
}

/// `--define` and DEFINE variables are substituted; `RUN SCRIPT` runs a file in place; the
/// statements before one that does not parse have run when it stops the script.
#[test]
fn variables_scripts_and_statement_by_statement() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("make.sql");
    std::fs::write(&script, "CREATE STREAM ${name} (id INT KEY) WITH (KAFKA_TOPIC='${name}', VALUE_FORMAT='${fmt}', PARTITIONS=1);\n").unwrap();
    let sql = format!("DEFINE name = 'orders'; RUN SCRIPT '{}'; SHOW STREAMS; CREATE WHAT;", script.display());
    let out = eddy(&dir.path().join("data"), &["--define", "fmt=JSON", "-e", &sql]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("| ORDERS "), "{stdout}");
    assert!(text(&out.stderr).contains("CREATE WHAT"), "{}", text(&out.stderr));
    let out = eddy(&dir.path().join("data"), &["--define", "bad", "-e", "SHOW STREAMS;"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("expected NAME=VALUE"), "{}", text(&out.stderr));
}

/// SHOW FUNCTIONS lists Eddy's functions with their kind and category, DataFusion's own
/// library left out.
#[test]
fn show_functions_lists_eddys_functions() {
    let dir = tempfile::tempdir().unwrap();
    let out = eddy(dir.path(), &["--output", "csv", "-e", "SHOW FUNCTIONS;"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "Function Name,Type,Category");
    for want in ["LATEST_BY_OFFSET,AGGREGATE,AGGREGATE", "EXPLODE,TABLE,TABLE", "LPAD,SCALAR,STRING", "TIMESTAMPTOSTRING,SCALAR,DATE / TIME"] {
        assert!(lines.contains(&want), "{want} missing: {stdout}");
    }
    assert!(!stdout.contains("ARROW_TYPEOF") && !stdout.contains("MAKE_ARRAY"), "{stdout}");
    assert!(lines.len() > 150 && lines.len() < 300, "{} functions", lines.len() - 1);
}
