//! The HTTP API over HTTP/2 as ksqlDB's clients use it: prior knowledge and the h2c upgrade on
//! the HTTP/1.1 port, `/query-stream` in its delimited and JSON forms, `/inserts-stream`,
//! `/close-query`, and a stream reset in the middle of a push query, which ends that query only.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use support::{wait_until, Server};

const SETUP: &str = "CREATE STREAM clicks (id INT KEY, page STRING) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=1);
    INSERT INTO clicks (id, page) VALUES (1, 'a');
    INSERT INTO clicks (id, page) VALUES (2, 'b');";

/// An HTTP/2 connection by prior knowledge.
async fn connect(s: &Server) -> h2::client::SendRequest<Bytes> {
    let addr = s.http.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let (send, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// Starts a POST with a JSON body; returns the response's body stream.
async fn post(send: &mut h2::client::SendRequest<Bytes>, s: &Server, path: &str, accept: &str, body: &str) -> (u16, h2::RecvStream) {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("{}{path}", s.http))
        .header("accept", accept)
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let mut ready = send.clone().ready().await.expect("ready");
    let (resp, mut stream) = ready.send_request(req, false).expect("send");
    stream.send_data(Bytes::from(body.to_string()), true).expect("body");
    let resp = resp.await.expect("response");
    *send = ready;
    (resp.status().as_u16(), resp.into_body())
}

/// Reads the body until it holds `n` complete lines (or ends).
async fn lines(body: &mut h2::RecvStream, n: usize, buf: &mut String) -> Vec<String> {
    while buf.matches('\n').count() < n {
        match tokio::time::timeout(Duration::from_secs(20), body.data()).await.expect("data in time") {
            Some(Ok(d)) => {
                let _ = body.flow_control().release_capacity(d.len());
                buf.push_str(std::str::from_utf8(&d).unwrap());
            }
            _ => break,
        }
    }
    buf.lines().map(str::to_string).collect()
}

async fn read_all(mut body: h2::RecvStream) -> String {
    let mut out = String::new();
    while let Some(d) = body.data().await {
        let d = d.expect("data");
        let _ = body.flow_control().release_capacity(d.len());
        out.push_str(std::str::from_utf8(&d).unwrap());
    }
    out
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn prior_knowledge_queries_in_both_forms_and_inserts_stream() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.ksql(SETUP);
    rt().block_on(async {
        let mut send = connect(&s).await;
        let q = serde_json::json!({ "sql": "SELECT * FROM clicks EMIT CHANGES LIMIT 2;", "properties": { "auto.offset.reset": "earliest" } }).to_string();
        // Delimited (the default): a header line, then a line per row.
        let (status, body) = post(&mut send, &s, "/query-stream", "application/vnd.ksqlapi.delimited.v1", &q).await;
        assert_eq!(status, 200);
        let text = read_all(body).await;
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines[0].contains("\"columnNames\":[\"ID\",\"PAGE\"]"), "{text}");
        assert_eq!(&lines[1..], ["[1,\"a\"]", "[2,\"b\"]"]);
        // JSON: one array of header and rows.
        let (_, body) = post(&mut send, &s, "/query-stream", "application/json", &q).await;
        let v: serde_json::Value = serde_json::from_str(&read_all(body).await).expect("one JSON array");
        assert_eq!(v[0]["columnNames"], serde_json::json!(["ID", "PAGE"]));
        assert_eq!(v[1], serde_json::json!([1, "a"]));
        assert_eq!(v.as_array().unwrap().len(), 3);
        // Inserts: acks per row, an error ack for a bad row.
        let rows = "{\"target\":\"CLICKS\"}\n{\"ID\":3,\"PAGE\":\"c\"}\n{\"ID\":4,\"NOPE\":1}\n";
        let (status, body) = post(&mut send, &s, "/inserts-stream", "application/vnd.ksqlapi.delimited.v1", rows).await;
        assert_eq!(status, 200);
        let acks = read_all(body).await;
        let acks: Vec<serde_json::Value> = acks.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(acks[0], serde_json::json!({"status": "ok", "seq": 0}));
        assert_eq!(acks[1]["status"], "error");
        assert_eq!(acks[1]["seq"], 1);
        assert!(acks[1]["message"].as_str().unwrap().contains("unknown column"), "{acks:?}");
        // Errors are ksqlDB's error bodies.
        let (status, body) = post(&mut send, &s, "/query-stream", "application/json", "{\"sql\":\"SELECT * FROM nowhere;\",\"extra\":1}").await;
        assert_eq!(status, 400);
        let e: serde_json::Value = serde_json::from_str(&read_all(body).await).unwrap();
        assert_eq!(e["@type"], "statement_error");
        assert_eq!(e["error_code"], 40001);
        assert!(e["message"].as_str().unwrap().contains("NOWHERE"), "{e}");
    });
    let lines = s.query("SELECT * FROM clicks EMIT CHANGES LIMIT 3;");
    assert_eq!(lines[3], "[3,\"c\"]");
}

#[test]
fn a_stream_reset_ends_its_query_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.ksql(SETUP);
    rt().block_on(async {
        let mut send = connect(&s).await;
        let q = serde_json::json!({ "sql": "SELECT * FROM clicks EMIT CHANGES;", "properties": { "auto.offset.reset": "earliest" } }).to_string();
        let (_, mut first) = post(&mut send, &s, "/query-stream", "application/vnd.ksqlapi.delimited.v1", &q).await;
        let (_, mut second) = post(&mut send, &s, "/query-stream", "application/vnd.ksqlapi.delimited.v1", &q).await;
        let (mut b1, mut b2) = (String::new(), String::new());
        assert_eq!(lines(&mut first, 3, &mut b1).await.len(), 3);
        assert_eq!(lines(&mut second, 3, &mut b2).await.len(), 3);
        let header: serde_json::Value = serde_json::from_str(b2.lines().next().unwrap()).unwrap();
        assert_eq!(s.metric("eddy_push_queries_active"), Some(2.0));
        // Reset the first stream: its query ends, the second goes on.
        drop(first);
        wait_until("the reset query to end", || s.metric("eddy_push_queries_active") == Some(1.0));
        s.ksql("INSERT INTO clicks (id, page) VALUES (5, 'e');");
        let got = lines(&mut second, 4, &mut b2).await;
        assert_eq!(got[3], "[5,\"e\"]");
        // The connection still takes new streams.
        let (status, _) = post(&mut send, &s, "/query-stream", "application/json", &q.replace("EMIT CHANGES", "EMIT CHANGES LIMIT 1")).await;
        assert_eq!(status, 200);
        // /close-query ends the second one.
        let close = serde_json::json!({ "queryId": header["queryId"] }).to_string();
        let (status, _) = post(&mut send, &s, "/close-query", "application/json", &close).await;
        assert_eq!(status, 200);
        let rest = read_all(second).await;
        assert!(rest.is_empty() || rest.trim().is_empty(), "{rest}");
    });
    wait_until("no push query left", || s.metric("eddy_push_queries_active") == Some(0.0));
}

/// curl speaks the h2c upgrade (`--http2` on an http:// URL) and prior knowledge.
#[test]
fn curl_upgrades_to_h2c_and_speaks_prior_knowledge() {
    if Command::new("curl").arg("--version").output().map(|o| !String::from_utf8_lossy(&o.stdout).contains("HTTP2")).unwrap_or(true) {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "curl with HTTP/2 is missing");
        eprintln!("SKIPPED: no curl with HTTP/2");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.ksql(SETUP);
    let body = serde_json::json!({ "sql": "SELECT * FROM clicks EMIT CHANGES LIMIT 2;", "properties": { "auto.offset.reset": "earliest" } }).to_string();
    for mode in ["--http2", "--http2-prior-knowledge"] {
        let out = Command::new("curl")
            .args(["-sS", "-i", mode, "-X", "POST", "-H", "content-type: application/json", "--data", &body])
            .arg(format!("{}/query-stream", s.http))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{mode}: {text}{}", String::from_utf8_lossy(&out.stderr));
        if mode == "--http2" {
            assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        }
        assert!(text.contains("HTTP/2 200"), "{mode}: {text}");
        assert!(text.contains("[1,\"a\"]\n[2,\"b\"]"), "{mode}: {text}");
    }
}
