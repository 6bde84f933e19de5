//! The schema registry as clients see it: Confluent's REST API on `eddy server`'s HTTP port
//! (through a plain HTTP client), and Confluent's own Python serializers and deserializers
//! (`confluent-kafka`'s AvroSerializer/ProtobufSerializer) writing records that persistent
//! queries read, with the queries' output decoded by the same library.
//!
//! The Python test needs the venv `.ci/run` builds (`EDDY_PYTHON`); without it the test fails
//! under `CI=true` and is skipped, loudly, elsewhere.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    http: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .arg("--data-dir")
            .arg(dir)
            .args(["server", "--http", "127.0.0.1:0", "--pg", "off"])
            .env_remove("EDDY_USER")
            .env_remove("EDDY_PASSWORD")
            .env_remove("EDDY_SCHEMA_REGISTRY_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("eddy server starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let http = loop {
            let line = lines.next().expect("server prints its address").expect("stdout line");
            if let Some(a) = line.strip_prefix("http listening on ") {
                break format!("http://{a}");
            }
        };
        Server { child, http }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let url = format!("{}{path}", self.http);
        let ct = "application/vnd.schemaregistry.v1+json";
        let mut resp = match (method, body) {
            ("GET", _) => agent.get(&url).call(),
            ("DELETE", _) => agent.delete(&url).call(),
            ("PUT", b) => agent.put(&url).header("content-type", ct).send(b.unwrap_or("")),
            (_, b) => agent.post(&url).header("content-type", ct).send(b.unwrap_or("")),
        }
        .expect("request");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn avro(fields: &str) -> String {
    serde_json::json!({ "schema": format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#) }).to_string()
}

#[test]
fn confluent_registry_rest_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let v1 = avro(r#"{"name":"a","type":"int"}"#);
    assert_eq!(s.call("POST", "/subjects/t-value/versions", Some(&v1)), (200, serde_json::json!({ "id": 1 })));
    // The same schema again: the same id, no new version.
    assert_eq!(s.call("POST", "/subjects/t-value/versions", Some(&v1)).1["id"], 1);
    // A new field without a default cannot read old data: refused under BACKWARD.
    let bad = avro(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#);
    let (status, body) = s.call("POST", "/compatibility/subjects/t-value/versions/latest?verbose=true", Some(&bad));
    assert_eq!((status, &body["is_compatible"]), (200, &serde_json::json!(false)), "{body}");
    let (status, body) = s.call("POST", "/subjects/t-value/versions", Some(&bad));
    assert_eq!((status, &body["error_code"]), (409, &serde_json::json!(409)), "{body}");
    let good = avro(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#);
    assert_eq!(s.call("POST", "/subjects/t-value/versions", Some(&good)).1["id"], 2);
    assert_eq!(s.call("GET", "/subjects/t-value/versions", None).1, serde_json::json!([1, 2]));
    let (_, latest) = s.call("GET", "/subjects/t-value/versions/latest", None);
    assert_eq!((&latest["version"], &latest["id"], &latest["subject"]), (&serde_json::json!(2), &serde_json::json!(2), &serde_json::json!("t-value")));
    assert_eq!(s.call("POST", "/subjects/t-value", Some(&v1)).1["version"], 1);
    assert_eq!(s.call("GET", "/subjects", None).1, serde_json::json!(["t-value"]));
    let (_, by_id) = s.call("GET", "/schemas/ids/1", None);
    assert!(by_id["schema"].as_str().unwrap().contains(r#""name":"a""#), "{by_id}");
    // Levels: global BACKWARD by default; per subject after a PUT.
    assert_eq!(s.call("GET", "/config", None).1["compatibilityLevel"], "BACKWARD");
    assert_eq!(s.call("PUT", "/config/t-value", Some(r#"{"compatibility":"NONE"}"#)).1["compatibility"], "NONE");
    assert_eq!(s.call("GET", "/config/t-value", None).1["compatibilityLevel"], "NONE");
    assert_eq!(s.call("POST", "/subjects/t-value/versions", Some(&bad)).0, 200);
    // Confluent's error codes.
    assert_eq!(s.call("GET", "/subjects/nope/versions", None).1["error_code"], 40401);
    assert_eq!(s.call("GET", "/subjects/t-value/versions/9", None).1["error_code"], 40402);
    assert_eq!(s.call("GET", "/schemas/ids/99", None).1["error_code"], 40403);
    let (status, body) = s.call("POST", "/subjects/x/versions", Some(r#"{"schema":"{\"type\":\"nope\"}"}"#));
    assert_eq!((status, &body["error_code"]), (422, &serde_json::json!(42201)), "{body}");
    assert_eq!(s.call("PUT", "/config", Some(r#"{"compatibility":"SIDEWAYS"}"#)).1["error_code"], 42203);
    // Soft delete: the subject is gone, its schemas' ids stay readable.
    assert_eq!(s.call("DELETE", "/subjects/t-value", None).1, serde_json::json!([1, 2, 3]));
    assert_eq!(s.call("GET", "/subjects/t-value/versions", None).0, 404);
    assert_eq!(s.call("GET", "/schemas/ids/1", None).0, 200);
}

#[test]
fn schemas_survive_a_restart_and_feed_inference() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Server::start(dir.path());
        let v = avro(r#"{"name":"id","type":"long"},{"name":"name","type":["null","string"],"default":null}"#);
        assert_eq!(s.call("POST", "/subjects/people-value/versions", Some(&v)).1["id"], 1);
    }
    let s = Server::start(dir.path());
    assert_eq!(s.call("GET", "/subjects/people-value/versions", None).1, serde_json::json!([1]));
    // A record framed with schema id 1: id 7 (zig-zag 14), name "ann" (union branch 1).
    let value = [0u8, 0, 0, 0, 1, 14, 2, 6, b'a', b'n', b'n'];
    let b64 = planner::session::render::base64(&value);
    let body = serde_json::json!({ "records": [{ "key": null, "value": b64 }] }).to_string();
    let (status, out) = s.call("POST", "/topics/people", Some(&body));
    assert_eq!(status, 200, "{out}");
    let ksql = |sql: &str| {
        let body = serde_json::json!({ "ksql": sql, "streamsProperties": { "auto.offset.reset": "earliest" } }).to_string();
        let (status, out) = s.call("POST", "/ksql", Some(&body));
        assert_eq!(status, 200, "{sql}: {out}");
        out
    };
    ksql("CREATE STREAM people WITH (KAFKA_TOPIC='people', VALUE_FORMAT='AVRO');");
    let described = ksql("DESCRIBE people;").to_string();
    assert!(described.contains("ID") && described.contains("BIGINT") && described.contains("NAME"), "{described}");
    let body = serde_json::json!({ "ksql": "SELECT * FROM people;", "streamsProperties": { "auto.offset.reset": "earliest" } }).to_string();
    let (status, rows) = s.call("POST", "/query", Some(&body));
    assert_eq!(status, 200, "{rows}");
    assert!(rows.to_string().contains(r#"[7,"ann"]"#), "{rows}");
}

#[test]
fn confluent_python_clients() {
    let python = match std::env::var("EDDY_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "EDDY_PYTHON is not set: .ci/run builds the venv from .ci/requirements.txt");
            eprintln!("SKIPPED confluent_python_clients: set EDDY_PYTHON to a Python with .ci/requirements.txt installed");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sr_clients.py");
    let out = Command::new(&python).arg(&script).arg(&s.http).output().expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all checks passed"), "{text}");
}
