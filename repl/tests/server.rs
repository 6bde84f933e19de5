//! `eddy server` as clients see it: the HTTP API (through a Rust client), the PostgreSQL wire
//! protocol (through `psql` when it is installed, and through tokio-postgres for the extended
//! protocol), the REPL as a client, restarts, cancellation and authentication.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{eddy, wait_until, Server};

const SETUP: &str = "CREATE STREAM clicks (id INT KEY, page STRING) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=2);
    INSERT INTO clicks (id, page) VALUES (1, 'a');
    INSERT INTO clicks (id, page) VALUES (2, 'b');
    INSERT INTO clicks (id, page) VALUES (1, 'c');";

fn ctas(s: &Server) {
    let body = serde_json::json!({
        "ksql": "CREATE TABLE per_user AS SELECT id, COUNT(*) AS n FROM clicks GROUP BY id;",
        "streamsProperties": { "auto.offset.reset": "earliest" }
    });
    let (status, text) = s.post("/ksql", &body.to_string());
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Created query with ID CTAS_PER_USER_"), "{text}");
}

#[test]
fn http_api_runs_ddl_inserts_ctas_pull_and_push() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    assert_eq!(s.get("/healthcheck").0, 200);
    let (status, info) = s.get("/info");
    assert_eq!(status, 200);
    assert!(info.contains("\"serverStatus\":\"RUNNING\""), "{info}");

    let out = s.ksql(SETUP);
    assert_eq!(out[0]["commandStatus"]["message"], "Stream created");
    assert_eq!(out.as_array().unwrap().len(), 4);
    // Rows through /inserts, column names in any case.
    let (status, acks) = s.post("/inserts", "{\"target\":\"clicks\"}\n{\"ID\":2,\"PAGE\":\"d\"}\n{\"id\":3,\"page\":\"e\"}\n");
    assert_eq!(status, 200, "{acks}");
    assert_eq!(acks, "{\"status\":\"ok\",\"seq\":0}\n{\"status\":\"ok\",\"seq\":1}\n");
    ctas(&s);

    // Pull: sees its own writes (the CTAS catches up first).
    let lines = s.query("SELECT * FROM per_user WHERE id = 1;");
    assert!(lines[0].contains("\"columnNames\":[\"ID\",\"N\"]") && lines[0].contains("\"kind\":\"pull\""), "{lines:?}");
    assert_eq!(&lines[1..], ["[1,2]"]);
    let lines = s.query("SELECT * FROM per_user WHERE id = 2;");
    assert_eq!(&lines[1..], ["[2,2]"]);

    // ksqlDB's v1 format on /query.
    let (status, text) = s.post("/query", &serde_json::json!({ "ksql": "SELECT * FROM per_user WHERE id = 3;" }).to_string());
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&text).expect("a JSON array");
    assert_eq!(v[0]["header"]["schema"], "`ID` INTEGER, `N` BIGINT");
    assert_eq!(v[1]["row"]["columns"], serde_json::json!([3, 1]));

    // Push with LIMIT: header, then exactly the limit, then the end.
    let lines = s.query("SELECT page FROM clicks WHERE id = 1 EMIT CHANGES LIMIT 2;");
    assert!(lines[0].contains("\"kind\":\"push\""), "{lines:?}");
    assert_eq!(&lines[1..], ["[\"a\"]", "[\"c\"]"]);
    let body = serde_json::json!({ "ksql": "SELECT * FROM clicks EMIT CHANGES LIMIT 1;", "streamsProperties": { "auto.offset.reset": "earliest" } });
    let (_, text) = s.post("/query", &body.to_string());
    let v: serde_json::Value = serde_json::from_str(&text).expect("a JSON array");
    assert_eq!(v.as_array().unwrap().last().unwrap()["finalMessage"], "Limit Reached");

    // Metrics per query.
    let (status, metrics) = s.get("/metrics");
    assert_eq!(status, 200);
    let line = metrics.lines().find(|l| l.starts_with("eddy_query_records_in_total{query=\"CTAS_PER_USER_")).expect(&metrics);
    assert!(line.ends_with(" 5"), "{line}");
    assert!(metrics.contains("eddy_query_source_lag_records{query=\"CTAS_PER_USER_"), "{metrics}");
    assert!(metrics.contains("eddy_checkpoint_duration_seconds "), "{metrics}");
    assert!(metrics.contains("eddy_checkpoint_pause_seconds "), "{metrics}");
    assert!(metrics.contains("eddy_checkpoint_failures_total 0\n") && metrics.contains("eddy_cleaner_passes_total "), "{metrics}");
    assert_eq!(s.stop().code(), Some(0));
}

#[test]
fn http_errors_are_json_with_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.ksql(SETUP);
    let error = |status: u16, text: &str, needle: &str| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        assert!(v["message"].as_str().unwrap().contains(needle), "{text}");
        assert_eq!(v["error_code"].as_u64().unwrap() / 100, status as u64, "{text}");
    };
    let (st, t) = s.post("/ksql", "{not json");
    assert_eq!(st, 400);
    error(400, &t, "invalid request body");
    let (st, t) = s.post("/ksql", &serde_json::json!({ "ksql": "SELECT * FROM nowhere;" }).to_string());
    assert_eq!(st, 400);
    error(400, &t, "/query");
    let (st, t) = s.post("/query", &serde_json::json!({ "ksql": "SELECT * FROM nowhere;" }).to_string());
    assert_eq!(st, 400);
    error(400, &t, "unknown stream or table \"NOWHERE\"");
    // The statements before a failing one ran; their results come with the error.
    let (st, t) = s.post("/ksql", &serde_json::json!({ "ksql": "INSERT INTO clicks (id, page) VALUES (9, 'z'); DROP STREAM nope;" }).to_string());
    assert_eq!(st, 400);
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["@type"], "statement_error");
    assert_eq!(v["statementText"], "DROP STREAM nope");
    assert_eq!(v["entities"].as_array().unwrap().len(), 1);
    let (st, t) = s.get("/nope");
    assert_eq!(st, 404);
    error(404, &t, "no endpoint");
    let (st, _) = s.get("/ksql");
    assert_eq!(st, 405);
    let big = format!("{{\"ksql\":\"{}\"}}", "x".repeat(2 << 20));
    let (st, t) = s.post("/ksql", &big);
    assert_eq!(st, 413);
    error(413, &t, "larger than the limit");
    let (st, t) = s.post("/inserts", "{\"target\":\"clicks\"}\n{\"nope\":1}\n");
    assert_eq!(st, 400);
    assert!(t.contains("unknown column"), "{t}");
    // Garbage on the socket does not hurt the next client.
    let addr = s.http.trim_start_matches("http://").to_string();
    let mut raw = TcpStream::connect(&addr).unwrap();
    raw.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
    let mut sink = Vec::new();
    let _ = raw.read_to_end(&mut sink);
    assert_eq!(s.get("/healthcheck").0, 200);
}

/// A push query ends when its client disconnects.
#[test]
fn push_query_ends_when_the_http_client_disconnects() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.ksql(SETUP);
    let addr = s.http.trim_start_matches("http://").to_string();
    let body = serde_json::json!({ "ksql": "SELECT * FROM clicks EMIT CHANGES;", "streamsProperties": { "auto.offset.reset": "earliest" } }).to_string();
    let mut conn = TcpStream::connect(&addr).unwrap();
    write!(conn, "POST /query-stream HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut seen = String::new();
    while !seen.contains("\"c\"") {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended early: {seen}");
        seen.push_str(&line);
    }
    assert_eq!(s.metric("eddy_push_queries_active"), Some(1.0));
    drop(reader);
    conn.shutdown(std::net::Shutdown::Both).unwrap();
    drop(conn);
    wait_until("the push query to end", || s.metric("eddy_push_queries_active") == Some(0.0));
    // The transient query is gone from the engine too.
    wait_until("the transient query to stop", || !s.get("/metrics").1.contains("transient_"));
}

/// SIGTERM takes a final checkpoint and exits 0; the next start resumes the persistent query,
/// which counts the rows inserted after the restart on top of the earlier ones.
#[test]
fn restart_resumes_persistent_queries() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.ksql(SETUP);
    ctas(&s);
    assert_eq!(&s.query("SELECT * FROM per_user WHERE id = 1;")[1..], ["[1,2]"]);
    assert_eq!(s.stop().code(), Some(0), "SIGTERM exits 0");

    let s = Server::start(dir.path());
    s.ksql("INSERT INTO clicks (id, page) VALUES (1, 'x'); INSERT INTO clicks (id, page) VALUES (4, 'y');");
    assert_eq!(&s.query("SELECT * FROM per_user WHERE id = 1;")[1..], ["[1,3]"]);
    assert_eq!(&s.query("SELECT * FROM per_user WHERE id = 4;")[1..], ["[4,1]"]);
    let queries = s.ksql("SHOW QUERIES;");
    assert!(queries.to_string().contains("CTAS_PER_USER_"), "{queries}");
    assert_eq!(s.stop().code(), Some(0));
}

#[test]
fn refuses_unauthenticated_non_loopback_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let out = eddy()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["server", "--http", "0.0.0.0:0", "--pg", "off"])
        .env_remove("EDDY_USER")
        .env_remove("EDDY_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0:0") && err.contains("--credentials"), "{err}");
    let out = eddy().arg("--data-dir").arg(dir.path()).args(["server", "--http", "off", "--pg", "0.0.0.0:0"]).env_remove("EDDY_USER").output().unwrap();
    assert!(!out.status.success());

    // With credentials it starts, and requests need them.
    let creds = dir.path().join("creds");
    std::fs::write(&creds, "# users\nalice:wonderland\n").unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--credentials", creds.to_str().unwrap()], &[]);
    assert_eq!(s.get("/info").0, 401);
    assert_eq!(s.get("/healthcheck").0, 200);
    drop(s);
    let s = Server::start_with(&dir.path().join("data"), &[], &[("EDDY_USER", "alice"), ("EDDY_PASSWORD", "wonderland")]);
    assert_eq!(s.get("/info").0, 200);
    s.ksql(SETUP);
    // The REPL as a client with credentials in the URL.
    let url = s.http.replace("http://", "http://alice:wonderland@");
    let out = eddy().args(["--server", &url, "--output", "json", "-e", "SELECT * FROM clicks WHERE id = 2;"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"ID\":2,\"PAGE\":\"b\"}\n");
    let out = eddy().args(["--server", &s.http, "-e", "SHOW STREAMS;"]).env_remove("EDDY_USER").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("requires credentials"));
    if let Some(psql) = psql() {
        let ok = Command::new(&psql)
            .args(["-h", "127.0.0.1", "-p", &s.pg.to_string(), "-U", "alice", "-X", "-A", "-t", "-c", "SELECT page FROM clicks WHERE id = 2;"])
            .env("PGPASSWORD", "wonderland")
            .output()
            .unwrap();
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
        assert_eq!(String::from_utf8_lossy(&ok.stdout), "b\n");
        let bad = Command::new(&psql)
            .args(["-h", "127.0.0.1", "-p", &s.pg.to_string(), "-U", "alice", "-X", "-c", "SHOW STREAMS;"])
            .env("PGPASSWORD", "wrong")
            .output()
            .unwrap();
        assert!(!bad.status.success());
        assert!(String::from_utf8_lossy(&bad.stderr).to_lowercase().contains("password authentication failed"), "{}", String::from_utf8_lossy(&bad.stderr));
    }
}

fn run_cli(args: &[&str]) -> Output {
    eddy().args(args).env_remove("EDDY_USER").output().unwrap()
}

/// `eddy --server URL` prints what the embedded CLI prints, in every output mode.
#[test]
fn client_output_matches_embedded() {
    let script = "CREATE STREAM s (id INT KEY, name STRING, d DECIMAL(4,2), ts TIMESTAMP, tags ARRAY<STRING>, ok BOOLEAN, x DOUBLE) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
        INSERT INTO s (id, name, d, ts, tags, ok, x) VALUES (1, 'a, \"quoted\"', 1.5, '2024-01-02T03:04:05.006', ARRAY['x', 'y'], true, 2.0);
        INSERT INTO s (id, name, d, ts, tags, ok, x) VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL);
        SET 'auto.offset.reset' = 'earliest';
        SELECT * FROM s EMIT CHANGES LIMIT 2;
        CREATE TABLE t AS SELECT id, COUNT(*) AS n, LATEST_BY_OFFSET(name) AS name FROM s GROUP BY id;
        SELECT * FROM t WHERE id = 1;
        DESCRIBE t;
        SHOW STREAMS;";
    for mode in ["table", "json", "csv"] {
        let dir = tempfile::tempdir().unwrap();
        let embedded = run_cli(&["--data-dir", dir.path().join("e").to_str().unwrap(), "--output", mode, "-e", script]);
        assert!(embedded.status.success(), "{}", String::from_utf8_lossy(&embedded.stderr));
        let s = Server::start(&dir.path().join("s"));
        let remote = run_cli(&["--server", &s.http, "--output", mode, "-e", script]);
        assert!(remote.status.success(), "{}", String::from_utf8_lossy(&remote.stderr));
        assert_eq!(String::from_utf8_lossy(&remote.stdout), String::from_utf8_lossy(&embedded.stdout), "mode {mode}");
        assert_eq!(String::from_utf8_lossy(&remote.stderr), String::from_utf8_lossy(&embedded.stderr), "mode {mode}");
        // Errors name the statement, with a non-zero status.
        let bad = run_cli(&["--server", &s.http, "-e", "SHOW STREAMS; DROP STREAM nope;"]);
        assert_eq!(bad.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("Error in statement: DROP STREAM nope\nunknown stream \"NOPE\""), "{}", String::from_utf8_lossy(&bad.stderr));
    }
}

fn psql() -> Option<String> {
    let found = Command::new("psql").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("psql is not installed: skipping the psql checks (apt-get install postgresql-client)");
    }
    found.then(|| "psql".to_string())
}

fn psql_run(s: &Server, sql: &[&str]) -> Output {
    let mut c = Command::new("psql");
    c.args(["-h", "127.0.0.1", "-p", &s.pg.to_string(), "-U", "eddy", "-X", "-A", "-F", "|", "-v", "ON_ERROR_STOP=1"]);
    for q in sql {
        c.args(["-c", q]);
    }
    c.output().unwrap()
}

#[test]
fn psql_runs_ddl_insert_ctas_pull_push_and_cancel() {
    if psql().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let out = psql_run(&s, &[SETUP, "SET 'auto.offset.reset' = 'earliest';", "CREATE TABLE per_user AS SELECT id, COUNT(*) AS n FROM clicks GROUP BY id;"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NOTICE:  Stream created"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("INSERT 0 1"));
    let out = psql_run(&s, &["SELECT * FROM per_user WHERE id = 1;", "SET 'auto.offset.reset' = 'earliest'; SELECT id, page FROM clicks EMIT CHANGES LIMIT 3;"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("id|n\n1|2\n(1 row)\n"), "{stdout}");
    let mut rows: Vec<&str> = stdout.lines().skip_while(|l| *l != "id|page").skip(1).take(3).collect();
    rows.sort();
    assert_eq!(rows, ["1|a", "1|c", "2|b"], "{stdout}");
    assert!(stdout.contains("(3 rows)"), "{stdout}");

    // Ctrl-C in psql sends a cancel request, which stops the push query.
    let mut c = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &s.pg.to_string(), "-U", "eddy", "-X", "-c", "SELECT * FROM clicks EMIT CHANGES;"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the push query to start", || s.metric("eddy_push_queries_active") == Some(1.0));
    Command::new("kill").args(["-INT", &c.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "psql did not end after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("canceling statement due to user request"), "{err}");
    wait_until("the push query to end", || s.metric("eddy_push_queries_active") == Some(0.0));
    // The connection's errors do not affect others.
    let out = psql_run(&s, &["SELECT * FROM nowhere;"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown stream or table \"NOWHERE\""));
    assert_eq!(s.stop().code(), Some(0));
}

/// The extended protocol (what JDBC and most drivers use), with typed values.
#[test]
fn pg_extended_protocol_returns_typed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.ksql(SETUP);
    s.ksql("CREATE STREAM typed (id INT KEY, d DECIMAL(6,3), ts TIMESTAMP, ok BOOLEAN, x DOUBLE, big BIGINT, tags ARRAY<STRING>) WITH (KAFKA_TOPIC='typed', VALUE_FORMAT='JSON', PARTITIONS=1);
            INSERT INTO typed (id, d, ts, ok, x, big, tags) VALUES (7, 123.456, '2024-01-02T03:04:05.006', true, 2.5, 9000000000, ARRAY['a']);");
    ctas(&s);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conf = format!("host=127.0.0.1 port={} user=eddy", s.pg);
        let (client, conn) = tokio_postgres::connect(&conf, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        let rows = client.query("SELECT * FROM per_user WHERE id = 1", &[]).await.expect("pull");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, i32>("id"), 1);
        assert_eq!(rows[0].get::<_, i64>("n"), 2);
        // Prepared once, run twice: the second run sees the new row.
        let st = client.prepare("SELECT * FROM per_user WHERE id = 5").await.expect("prepare");
        assert!(client.query(&st, &[]).await.unwrap().is_empty());
        client.batch_execute("INSERT INTO clicks (id, page) VALUES (5, 'z');").await.unwrap();
        assert_eq!(client.query(&st, &[]).await.unwrap()[0].get::<_, i64>("n"), 1);
        client.execute("SET 'auto.offset.reset' = 'earliest'", &[]).await.unwrap();
        let rows = client.query("SELECT id, ok, x, big, ts, tags FROM typed EMIT CHANGES LIMIT 1", &[]).await.expect("push");
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.get::<_, i32>("id"), 7);
        assert!(r.get::<_, bool>("ok"));
        assert_eq!(r.get::<_, f64>("x"), 2.5);
        assert_eq!(r.get::<_, i64>("big"), 9_000_000_000);
        assert_eq!(r.get::<_, serde_json::Value>("tags"), serde_json::json!(["a"]));
        // Simple protocol: text values.
        let msgs = client.simple_query("SELECT d, ts FROM typed EMIT CHANGES LIMIT 1").await.expect("simple");
        let row = msgs.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((r.get(0).map(str::to_string), r.get(1).map(str::to_string))),
            _ => None,
        });
        assert_eq!(row, Some((Some("123.456".into()), Some("2024-01-02 03:04:05.006".into()))));
        let err = client.query("SELECT * FROM nowhere", &[]).await.unwrap_err();
        assert!(err.as_db_error().unwrap().message().contains("unknown stream or table"), "{err}");
    });
}

/// What drivers send on their own (transaction brackets, settings, probes) is answered as
/// PostgreSQL would, over both protocols, and ksqlDB statements inside a "transaction" run.
#[test]
fn pg_housekeeping_statements_of_drivers_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.ksql(SETUP);
    ctas(&s);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conf = format!("host=127.0.0.1 port={} user=eddy", s.pg);
        let (mut client, conn) = tokio_postgres::connect(&conf, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        client.batch_execute("SET extra_float_digits = 3; SET application_name = 'tool'").await.expect("pg SET");
        let one = client.query_one("SELECT 1", &[]).await.expect("SELECT 1");
        assert_eq!(one.get::<_, String>(0), "1");
        let version = client.query_one("SELECT version()", &[]).await.expect("version()");
        assert!(version.get::<_, String>(0).starts_with("PostgreSQL 14.0 (Eddy "));
        let msgs = client.simple_query("SHOW TRANSACTION ISOLATION LEVEL").await.expect("SHOW");
        let level = msgs.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        assert_eq!(level.as_deref(), Some("read committed"));
        // tokio-postgres brackets these with BEGIN and COMMIT.
        let tx = client.transaction().await.expect("BEGIN");
        let rows = tx.query("SELECT * FROM per_user WHERE id = 1", &[]).await.expect("pull in a transaction");
        assert_eq!(rows[0].get::<_, i64>("n"), 2);
        tx.commit().await.expect("COMMIT");
        // A simple query mixing both kinds runs each in turn; ksqlDB's quoted SET still goes to the engine.
        client.batch_execute("BEGIN; SET 'auto.offset.reset' = 'earliest'; COMMIT;").await.expect("mixed");
        let err = client.batch_execute("BEGIN; SELECT * FROM nowhere; COMMIT;").await.unwrap_err();
        assert!(err.as_db_error().unwrap().message().contains("unknown stream or table"), "{err}");
    });
}
