//! Real client libraries against `eddy server`: psycopg 3 with parameters, SQLAlchemy's
//! reflection, the `ksqldb` Python client (HTTP/2 queries and inserts), and psql's catalog
//! commands. The Python libraries come from PyPI (`.ci/requirements.txt`, installed by `.ci/run`
//! into a venv whose interpreter `EDDY_PYTHON` names). Without `EDDY_PYTHON` these tests fail
//! under `CI=true` and are skipped, loudly, elsewhere.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;

use support::{wait_until, Server};

/// The Python with the client libraries, if there is one.
fn python() -> Option<String> {
    match std::env::var("EDDY_PYTHON") {
        Ok(p) if !p.is_empty() && Path::new(&p).exists() => Some(p),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("EDDY_PYTHON is not set (or not there): .ci/run builds the venv of .ci/requirements.txt and sets it")
        }
        _ => {
            eprintln!("SKIPPED: EDDY_PYTHON is not set; set it to a Python with .ci/requirements.txt installed to run the client tests");
            None
        }
    }
}

/// Runs a script of `repl/tests/clients/`; panics with its output unless it succeeds.
fn run_script(python: &str, script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(script);
    let out = Command::new(python).arg(&path).args(args).output().expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Clicks and a table of counts per user: user 1 clicked twice, user 2 once.
fn setup(s: &Server) {
    s.ksql(
        "CREATE STREAM clicks (id INT KEY, page STRING) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=2);
         INSERT INTO clicks (id, page) VALUES (1, 'a');
         INSERT INTO clicks (id, page) VALUES (2, 'b');
         INSERT INTO clicks (id, page) VALUES (1, 'c');",
    );
    let body = serde_json::json!({
        "ksql": "CREATE TABLE per_user AS SELECT id, COUNT(*) AS n FROM clicks GROUP BY id;",
        "streamsProperties": { "auto.offset.reset": "earliest" }
    });
    let (status, text) = s.post("/ksql", &body.to_string());
    assert_eq!(status, 200, "{text}");
    wait_until("the table to count the clicks", || s.query("SELECT * FROM per_user WHERE id = 1;").get(1).map(String::as_str) == Some("[1,2]"));
}

#[test]
fn psycopg_binds_parameters_and_survives_errors() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    setup(&s);
    let out = run_script(&py, "psycopg_params.py", &[&s.pg.to_string()]);
    assert!(out.contains("ok session carries on"), "{out}");
}

#[test]
fn sqlalchemy_reflects_streams_and_tables() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    setup(&s);
    let out = run_script(&py, "sqlalchemy_reflect.py", &[&s.pg.to_string()]);
    assert!(out.contains("ok query through SQLAlchemy"), "{out}");
}

#[test]
fn ksqldb_python_client_queries_and_inserts_over_http2() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let out = run_script(&py, "ksqldb_client.py", &[&s.http]);
    assert!(out.contains("ok close_query"), "{out}");
}

fn psql() -> Option<String> {
    let found = Command::new("psql").arg("--version").output().is_ok_and(|o| o.status.success());
    match found {
        true => Some("psql".into()),
        false if std::env::var("CI").as_deref() == Ok("true") => panic!("psql is missing: .ci/run installs postgresql-client"),
        false => {
            eprintln!("SKIPPED: psql is not installed");
            None
        }
    }
}

#[test]
fn psql_lists_relations_and_describes_them() {
    let Some(psql) = psql() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    setup(&s);
    let run = |cmd: &str| {
        let out = Command::new(&psql)
            .args(["-h", "127.0.0.1", "-p", &s.pg.to_string(), "-U", "eddy", "-d", "eddy", "-X", "-v", "ON_ERROR_STOP=1", "-c", cmd])
            .env_remove("PGPASSWORD")
            .output()
            .expect("psql runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{cmd}: {text}\n{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    let dt = run("\\dt");
    assert!(dt.contains("CLICKS") && dt.contains("PER_USER") && dt.contains("public"), "{dt}");
    let d = run("\\d \"PER_USER\"");
    assert!(d.contains("ID") && d.contains("integer") && d.contains("bigint"), "{d}");
}
