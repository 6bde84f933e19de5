//! Raw records over HTTP, the way Confluent's REST Proxy v2 moves them, so that clients with
//! their own serializers (a schema-registry client's Avro or Protobuf bytes) can write and read
//! topics while Eddy does not speak the Kafka protocol. See docs/http-api.md.
//!
//! - `POST /topics/{topic}` with `Content-Type: application/vnd.kafka.binary.v2+json` and
//!   `{"records":[{"key":B64|null,"value":B64|null,"partition":N?}]}`: appends (the topic is
//!   created with one partition when missing; a record without a partition goes to its key's
//!   partition, as Kafka's default partitioner does) and answers
//!   `{"offsets":[{"partition":P,"offset":O}]}`;
//! - `GET /topics`: the topic names;
//! - `GET /topics/{topic}/partitions/{p}/records?offset=O&limit=N`: up to N records (default
//!   100, at most 10,000) from offset O (default 0) as
//!   `[{"topic","partition","offset","timestamp","key":B64|null,"value":B64|null}]`.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use storage::{partition_for_key, RecordIn, TopicConfig};

use super::exec::blocking;
use super::Shared;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest produce body.
const MAX_BODY: usize = 16 << 20;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Whether `path` belongs to this API.
pub fn handles(path: &str) -> bool {
    path == "/topics" || path.starts_with("/topics/")
}

fn respond(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/vnd.kafka.v2+json")
        .body(Full::new(Bytes::from(body)).boxed_unsync())
        .expect("valid response")
}

fn error(status: u16, message: &str) -> Response<Body> {
    respond(status, json!({ "error_code": status, "message": message }).to_string())
}

#[derive(Deserialize)]
struct Produce {
    records: Vec<Rec>,
}

#[derive(Deserialize)]
struct Rec {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    partition: Option<u32>,
}

/// Serves one request.
pub async fn serve<B: super::http::ReqBody>(shared: &Arc<Shared>, req: Request<B>, path: &str) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    // Read as every endpoint reads (a body over the limit is drained, then refused).
    let body = match super::http::read_body(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(super::error::ServerError::TooLarge { .. }) => return error(413, &format!("request body over {MAX_BODY} bytes")),
        Err(e) => return error(400, &e.to_string()),
    };
    let eddy = shared.eddy.clone();
    let segments: Vec<String> = path.trim_start_matches('/').split('/').map(str::to_string).collect();
    let result = blocking(move || {
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (method.as_str(), s.as_slice()) {
            ("GET", ["topics"]) => Ok(json!(eddy.engine().log().list_topics().into_iter().filter(|t| !t.starts_with('_')).collect::<Vec<_>>())),
            ("POST", ["topics", topic]) => produce(&eddy, topic, &body),
            ("GET", ["topics", topic, "partitions", p, "records"]) => read(&eddy, topic, p, &query),
            (m, _) => Err((404, format!("no endpoint {m} /{}", segments.join("/")))),
        }
    })
    .await;
    match result {
        Ok(Ok(v)) => respond(200, v.to_string()),
        Ok(Err((status, message))) => error(status, &message),
        Err(e) => error(500, &e.to_string()),
    }
}

fn decode(field: &str, v: &Option<String>) -> Result<Option<Vec<u8>>, (u16, String)> {
    v.as_ref().map(|s| B64.decode(s).map_err(|e| (422, format!("record {field} is not base64: {e}")))).transpose()
}

fn produce(eddy: &planner::Eddy, topic: &str, body: &[u8]) -> Result<Value, (u16, String)> {
    let p: Produce = serde_json::from_slice(body).map_err(|e| (422, format!("expected {{\"records\":[...]}}: {e}")))?;
    let engine = eddy.engine();
    let log = engine.log();
    if log.describe_topic(topic).is_err() {
        log.create_topic(topic, &TopicConfig::new(1)).map_err(|e| (500, format!("cannot create topic \"{topic}\": {e}")))?;
    }
    let partitions = log.describe_topic(topic).map_err(|e| (500, e.to_string()))?.config.partitions;
    let now = chrono::Utc::now().timestamp_millis();
    let mut offsets = Vec::new();
    for r in &p.records {
        let (key, value) = (decode("key", &r.key)?, decode("value", &r.value)?);
        let partition = match (r.partition, &key) {
            (Some(n), _) if n >= partitions => return Err((422, format!("topic \"{topic}\" has no partition {n}"))),
            (Some(n), _) => n,
            (None, Some(k)) => partition_for_key(k, partitions),
            (None, None) => 0,
        };
        let rec = RecordIn { timestamp: now, key: key.as_deref(), value: value.as_deref(), headers: &[] };
        let offset = engine.append(topic, partition, &[rec]).map_err(|e| (500, engine::error_chain(&e)))?;
        offsets.push(json!({ "partition": partition, "offset": offset }));
    }
    Ok(json!({ "offsets": offsets, "key_schema_id": null, "value_schema_id": null }))
}

fn read(eddy: &planner::Eddy, topic: &str, partition: &str, query: &str) -> Result<Value, (u16, String)> {
    let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')));
    let p: u32 = partition.parse().map_err(|_| (404, format!("no partition {partition}")))?;
    let mut from: i64 = param("offset").map_or(Ok(0), str::parse).map_err(|_| (422, "offset must be a number".to_string()))?;
    let limit: usize = param("limit").map_or(Ok(100), str::parse).map_err(|_| (422, "limit must be a number".to_string()))?;
    let limit = limit.min(10_000);
    let log = eddy.engine().log();
    let info = log.describe_topic(topic).map_err(|_| (404, format!("unknown topic \"{topic}\"")))?;
    if p >= info.config.partitions {
        return Err((404, format!("topic \"{topic}\" has no partition {p}")));
    }
    let mut out = Vec::new();
    while out.len() < limit {
        let batch = log.read(topic, p, from, 1 << 20).map_err(|e| (500, e.to_string()))?;
        if batch.is_empty() {
            break;
        }
        for r in batch.iter().take(limit - out.len()) {
            out.push(json!({
                "topic": topic, "partition": p, "offset": r.offset, "timestamp": r.timestamp,
                "key": r.key.map(|k| B64.encode(k)), "value": r.value.map(|v| B64.encode(v)),
            }));
        }
        from = batch.next_offset;
    }
    Ok(Value::Array(out))
}
