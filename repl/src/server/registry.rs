//! The Confluent Schema Registry REST API over the engine's registry (the embedded one in the
//! data directory, or the external one `--schema-registry` names), on the HTTP API's port, so
//! that Kafka clients' serializers (`AvroSerializer`, `ProtobufSerializer`, ...) use Eddy as
//! their registry. See docs/http-api.md.
//!
//! - `GET /subjects`, `GET /subjects/{s}/versions`, `GET /subjects/{s}/versions/{v|latest}`
//!   (and `.../schema` for the bare text), `POST /subjects/{s}/versions` (register),
//!   `POST /subjects/{s}` (look up), `DELETE /subjects/{s}`;
//! - `GET /schemas/ids/{id}` (and `.../schema`), `GET /schemas/types`;
//! - `POST /compatibility/subjects/{s}/versions/{v|latest}`;
//! - `GET|PUT /config`, `GET|PUT /config/{s}`.
//!
//! Errors are Confluent's: `{"error_code": 40401, "message": "..."}` with its HTTP status.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use engine::registry::{Compatibility, Registry, RegistryError, Schema, SchemaReference, SchemaType, SubjectVersion, VersionRef};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::exec::blocking;
use super::Shared;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest schema registration body.
const MAX_BODY: usize = 4 << 20;

/// Whether `path` belongs to the registry API.
pub fn handles(path: &str) -> bool {
    ["/subjects", "/schemas", "/compatibility", "/config"].iter().any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

fn respond(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(Full::new(Bytes::from(body)).boxed_unsync())
        .expect("valid response")
}

fn error(code: i64, status: u16, message: &str) -> Response<Body> {
    respond(status, json!({ "error_code": code, "message": message }).to_string())
}

fn registry_error(e: &RegistryError) -> Response<Body> {
    let (code, status) = e.code();
    error(code, status, &e.to_string())
}

#[derive(Deserialize)]
struct Register {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<SchemaReference>,
    #[serde(default)]
    id: Option<u32>,
}

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

/// Percent-decodes a path segment.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn version_ref(s: &str) -> Option<VersionRef> {
    match s {
        "latest" | "-1" => Some(VersionRef::Latest),
        n => n.parse().ok().filter(|n: &i32| *n > 0).map(VersionRef::Number),
    }
}

fn version_json(v: &SubjectVersion) -> Value {
    let mut o = json!({ "subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema.schema });
    if v.schema.schema_type != SchemaType::Avro {
        o["schemaType"] = json!(v.schema.schema_type.name());
    }
    if !v.schema.references.is_empty() {
        o["references"] = serde_json::to_value(&v.schema.references).expect("references serialize");
    }
    o
}

/// The schema of a registration request, or the error response (boxed: a response is large).
fn schema_of(body: &[u8]) -> Result<(Schema, Option<u32>), Box<Response<Body>>> {
    let r: Register = serde_json::from_slice(body).map_err(|e| Box::new(error(42201, 422, &format!("invalid schema request: {e}"))))?;
    let schema_type = match r.schema_type.as_deref() {
        None => SchemaType::Avro,
        Some(t) => SchemaType::from_name(t).ok_or_else(|| Box::new(error(42201, 422, &format!("unknown schemaType {t}"))))?,
    };
    Ok((Schema { schema_type, schema: r.schema, references: r.references }, r.id))
}

/// Serves one registry request.
pub async fn serve<B: super::http::ReqBody>(shared: &Arc<Shared>, req: Request<B>, path: &str) -> Response<Body> {
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    // Read as every endpoint reads (a body over the limit is drained, then refused).
    let body = match super::http::read_body(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(super::error::ServerError::TooLarge { .. }) => return error(413, 413, &format!("request body over {MAX_BODY} bytes")),
        Err(e) => return error(400, 400, &e.to_string()),
    };
    let registry = shared.eddy.engine().registry().clone();
    let segments: Vec<String> = path.trim_start_matches('/').split('/').map(decode).collect();
    let path = path.to_string();
    match blocking(move || dispatch(&registry, &method, &segments, &query, &body)).await {
        Ok(r) => r,
        Err(e) => error(50001, 500, &format!("{path}: {e}")),
    }
}

fn ok(v: Value) -> Response<Body> {
    respond(200, v.to_string())
}

fn dispatch(r: &Registry, method: &Method, seg: &[String], query: &str, body: &[u8]) -> Response<Body> {
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let result = match (method.as_str(), s.as_slice()) {
        ("GET", ["subjects"]) => r.subjects().map(|v| ok(json!(v))),
        ("GET", ["subjects", subject, "versions"]) => r.versions(subject).map(|v| ok(json!(v))),
        ("GET", ["subjects", subject, "versions", v]) | ("GET", ["subjects", subject, "versions", v, "schema"]) => {
            let Some(v) = version_ref(v) else { return error(42202, 422, &format!("invalid version {v}")) };
            let raw = s.len() == 5;
            r.version(subject, v).map(|sv| if raw { respond(200, sv.schema.schema) } else { ok(version_json(&sv)) })
        }
        ("POST", ["subjects", subject, "versions"]) => {
            let (schema, id) = match schema_of(body) {
                Ok(x) => x,
                Err(resp) => return *resp,
            };
            r.register(subject, &schema, id).map(|id| ok(json!({ "id": id })))
        }
        ("POST", ["subjects", subject]) => {
            let (schema, _) = match schema_of(body) {
                Ok(x) => x,
                Err(resp) => return *resp,
            };
            r.lookup(subject, &schema).map(|sv| ok(version_json(&sv)))
        }
        ("DELETE", ["subjects", subject]) => r.delete_subject(subject).map(|v| ok(json!(v))),
        ("GET", ["schemas", "types"]) => Ok(ok(json!(["AVRO", "PROTOBUF", "JSON"]))),
        ("GET", ["schemas", "ids", id]) | ("GET", ["schemas", "ids", id, "schema"]) => {
            let Ok(id) = id.parse::<u32>() else { return error(40403, 404, &format!("schema id {id} not found")) };
            let raw = s.len() == 4;
            r.schema_by_id(id).map(|schema| {
                if raw {
                    return respond(200, schema.schema);
                }
                let mut o = json!({ "schema": schema.schema });
                if schema.schema_type != SchemaType::Avro {
                    o["schemaType"] = json!(schema.schema_type.name());
                }
                if !schema.references.is_empty() {
                    o["references"] = serde_json::to_value(&schema.references).expect("references serialize");
                }
                ok(o)
            })
        }
        ("POST", ["compatibility", "subjects", subject, "versions", v]) => {
            let Some(v) = version_ref(v) else { return error(42202, 422, &format!("invalid version {v}")) };
            let (schema, _) = match schema_of(body) {
                Ok(x) => x,
                Err(resp) => return *resp,
            };
            let verbose = query.split('&').any(|p| p == "verbose=true");
            r.test_compatibility(subject, &schema, v).map(|why| {
                let mut o = json!({ "is_compatible": why.is_empty() });
                if verbose {
                    o["messages"] = json!(why);
                }
                ok(o)
            })
        }
        ("GET", ["config"]) => r.compatibility(None).map(|c| ok(json!({ "compatibilityLevel": c.name() }))),
        ("GET", ["config", subject]) => r.compatibility(Some(subject)).map(|c| ok(json!({ "compatibilityLevel": c.name() }))),
        ("PUT", ["config"]) | ("PUT", ["config", _]) => {
            let subject = s.get(1).copied();
            let level = match serde_json::from_slice::<ConfigBody>(body) {
                Ok(b) => b.compatibility.or(b.compatibility_level),
                Err(e) => return error(42203, 422, &format!("invalid config request: {e}")),
            };
            let Some(level) = level.as_deref().and_then(Compatibility::from_name) else {
                return error(42203, 422, &format!("invalid compatibility level {}", level.unwrap_or_default()));
            };
            r.set_compatibility(subject, level).map(|()| ok(json!({ "compatibility": level.name() })))
        }
        (m, _) => return error(404, 404, &format!("no registry endpoint {m} /{}", seg.join("/"))),
    };
    result.unwrap_or_else(|e| registry_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_only_registry_paths() {
        assert!(handles("/subjects") && handles("/subjects/t-value/versions") && handles("/schemas/ids/1") && handles("/config"));
        assert!(!handles("/ksql") && !handles("/query") && !handles("/subjectsx"));
        assert_eq!(decode("t%2Dvalue"), "t-value");
        assert_eq!(version_ref("latest"), Some(VersionRef::Latest));
        assert_eq!(version_ref("0"), None);
    }
}
