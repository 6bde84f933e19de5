//! [`HttpRegistry`]: a client of an external Confluent-compatible Schema Registry over its REST
//! API (`--schema-registry URL`, `schema.registry.url`). Schemas by id never change, so they are
//! cached for the life of the client; everything else goes to the registry every time.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    Compatibility, RegistryError, RegistryResult, Schema, SchemaReference, SchemaRegistry, SchemaType, SubjectVersion,
    VersionRef,
};

/// A client of a schema registry's REST API.
pub struct HttpRegistry {
    base: String,
    agent: ureq::Agent,
    by_id: Mutex<HashMap<u32, Schema>>,
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<SchemaReference>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    version: Option<i32>,
    #[serde(default)]
    id: Option<u32>,
}

/// The subject, version and id a registry's answer named, when it did.
type Named = (Option<String>, Option<i32>, Option<u32>);

impl SchemaBody {
    /// The schema, and the subject, version and id the answer named.
    fn schema(self) -> RegistryResult<(Schema, Named)> {
        let schema_type = match self.schema_type.as_deref() {
            None => SchemaType::Avro,
            Some(t) => SchemaType::from_name(t).ok_or_else(|| RegistryError::Remote { code: 0, message: format!("unknown schemaType {t}") })?,
        };
        Ok((Schema { schema_type, schema: self.schema, references: self.references }, (self.subject, self.version, self.id)))
    }
}

impl HttpRegistry {
    /// A client of the registry at `url` (`http://host:port`, optionally with a path prefix).
    pub fn new(url: &str) -> HttpRegistry {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        HttpRegistry { base: url.trim_end_matches('/').to_string(), agent: config.into(), by_id: Mutex::new(HashMap::new()) }
    }

    fn unreachable(&self, reason: impl std::fmt::Display) -> RegistryError {
        RegistryError::Unreachable { url: self.base.clone(), reason: reason.to_string() }
    }

    /// Sends a request and returns the JSON answer, or the registry's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> RegistryResult<Value> {
        let url = format!("{}{path}", self.base);
        let ct = "application/vnd.schemaregistry.v1+json";
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            ("PUT", b) => self.agent.put(&url).header("content-type", ct).send(b.unwrap_or(Value::Null).to_string()),
            (_, b) => self.agent.post(&url).header("content-type", ct).send(b.unwrap_or(Value::Null).to_string()),
        };
        let mut resp = result.map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(|e| self.unreachable(e))?;
        let v: Value = serde_json::from_str(&text).map_err(|_| self.unreachable(format!("status {status}, not JSON: {text:.200}")))?;
        if status >= 400 {
            let code = v.get("error_code").and_then(Value::as_i64).unwrap_or(i64::from(status));
            let message = v.get("message").and_then(Value::as_str).unwrap_or("").to_string();
            return Err(RegistryError::Remote { code, message });
        }
        Ok(v)
    }

    /// Maps Confluent's "not found" codes to this crate's variants.
    fn not_found(e: RegistryError, subject: &str, version: Option<VersionRef>, id: Option<u32>) -> RegistryError {
        match (&e, id) {
            (RegistryError::Remote { code: 40403, .. }, Some(id)) => RegistryError::SchemaNotFound { id },
            (RegistryError::Remote { code: 40403, .. }, None) => RegistryError::SchemaNotInSubject { subject: subject.to_string() },
            (RegistryError::Remote { code: 40401, .. }, _) => RegistryError::SubjectNotFound { subject: subject.to_string() },
            (RegistryError::Remote { code: 40402, .. }, _) => RegistryError::VersionNotFound {
                subject: subject.to_string(),
                version: match version {
                    Some(VersionRef::Number(n)) => n.to_string(),
                    _ => "latest".into(),
                },
            },
            (RegistryError::Remote { code: 409, message }, _) => {
                RegistryError::Incompatible { subject: subject.to_string(), level: "the registry's level", reason: message.clone() }
            }
            (RegistryError::Remote { code: 42201, message }, _) => {
                RegistryError::InvalidSchema { schema_type: "registered", reason: message.clone() }
            }
            _ => e,
        }
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn version_path(v: VersionRef) -> String {
    match v {
        VersionRef::Latest => "latest".into(),
        VersionRef::Number(n) => n.to_string(),
    }
}

fn body_of(schema: &Schema) -> Value {
    let mut b = json!({ "schema": schema.schema });
    if schema.schema_type != SchemaType::Avro {
        b["schemaType"] = json!(schema.schema_type.name());
    }
    if !schema.references.is_empty() {
        b["references"] = serde_json::to_value(&schema.references).expect("references serialize");
    }
    b
}

fn parse<T: for<'de> Deserialize<'de>>(v: Value) -> RegistryResult<T> {
    serde_json::from_value(v).map_err(|e| RegistryError::Remote { code: 0, message: format!("unexpected answer: {e}") })
}

impl SchemaRegistry for HttpRegistry {
    fn schema_by_id(&self, id: u32) -> RegistryResult<Schema> {
        if let Some(s) = self.by_id.lock().get(&id) {
            return Ok(s.clone());
        }
        let v = self.call("GET", &format!("/schemas/ids/{id}"), None).map_err(|e| Self::not_found(e, "", None, Some(id)))?;
        let (schema, _) = parse::<SchemaBody>(v)?.schema()?;
        self.by_id.lock().insert(id, schema.clone());
        Ok(schema)
    }

    fn subjects(&self) -> RegistryResult<Vec<String>> {
        let mut s: Vec<String> = parse(self.call("GET", "/subjects", None)?)?;
        s.sort();
        Ok(s)
    }

    fn versions(&self, subject: &str) -> RegistryResult<Vec<i32>> {
        let v = self.call("GET", &format!("/subjects/{}/versions", enc(subject)), None).map_err(|e| Self::not_found(e, subject, None, None))?;
        parse(v)
    }

    fn version(&self, subject: &str, version: VersionRef) -> RegistryResult<SubjectVersion> {
        let path = format!("/subjects/{}/versions/{}", enc(subject), version_path(version));
        let v = self.call("GET", &path, None).map_err(|e| Self::not_found(e, subject, Some(version), None))?;
        let (schema, (_, number, id)) = parse::<SchemaBody>(v)?.schema()?;
        Ok(SubjectVersion { subject: subject.to_string(), version: number.unwrap_or(0), id: id.unwrap_or(0), schema })
    }

    fn lookup(&self, subject: &str, schema: &Schema) -> RegistryResult<SubjectVersion> {
        let v = self.call("POST", &format!("/subjects/{}", enc(subject)), Some(body_of(schema))).map_err(|e| Self::not_found(e, subject, None, None))?;
        let (schema, (_, number, id)) = parse::<SchemaBody>(v)?.schema()?;
        Ok(SubjectVersion { subject: subject.to_string(), version: number.unwrap_or(0), id: id.unwrap_or(0), schema })
    }

    fn register(&self, subject: &str, schema: &Schema, id: Option<u32>) -> RegistryResult<u32> {
        let path = format!("/subjects/{}/versions", enc(subject));
        let mut body = body_of(schema);
        if let Some(id) = id {
            body["id"] = json!(id);
        }
        let v = self.call("POST", &path, Some(body)).map_err(|e| Self::not_found(e, subject, None, None))?;
        let id = v.get("id").and_then(Value::as_u64).and_then(|i| u32::try_from(i).ok());
        let id = id.ok_or_else(|| RegistryError::Remote { code: 0, message: format!("no id in {v}") })?;
        self.by_id.lock().insert(id, schema.clone());
        Ok(id)
    }

    fn test_compatibility(&self, subject: &str, schema: &Schema, version: VersionRef) -> RegistryResult<Vec<String>> {
        let path = format!("/compatibility/subjects/{}/versions/{}?verbose=true", enc(subject), version_path(version));
        let v = match self.call("POST", &path, Some(body_of(schema))) {
            Ok(v) => v,
            Err(RegistryError::Remote { code: 40401, .. }) if version == VersionRef::Latest => return Ok(Vec::new()),
            Err(e) => return Err(Self::not_found(e, subject, Some(version), None)),
        };
        if v.get("is_compatible").and_then(Value::as_bool) == Some(true) {
            return Ok(Vec::new());
        }
        let msgs: Vec<String> = v
            .get("messages")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string)).collect())
            .unwrap_or_default();
        Ok(if msgs.is_empty() { vec!["the registry says the schema is incompatible".into()] } else { msgs })
    }

    fn compatibility(&self, subject: Option<&str>) -> RegistryResult<Compatibility> {
        let v = match subject {
            Some(s) => match self.call("GET", &format!("/config/{}?defaultToGlobal=true", enc(s)), None) {
                Err(RegistryError::Remote { code: 40408 | 40401, .. }) => self.call("GET", "/config", None)?,
                other => other?,
            },
            None => self.call("GET", "/config", None)?,
        };
        let level = v.get("compatibilityLevel").or_else(|| v.get("compatibility")).and_then(Value::as_str).unwrap_or("BACKWARD");
        Compatibility::from_name(level).ok_or_else(|| RegistryError::InvalidCompatibility(level.to_string()))
    }

    fn set_compatibility(&self, subject: Option<&str>, level: Compatibility) -> RegistryResult<()> {
        let path = subject.map_or_else(|| "/config".to_string(), |s| format!("/config/{}", enc(s)));
        self.call("PUT", &path, Some(json!({ "compatibility": level.name() })))?;
        Ok(())
    }

    fn delete_subject(&self, subject: &str) -> RegistryResult<Vec<i32>> {
        let v = self.call("DELETE", &format!("/subjects/{}", enc(subject)), None).map_err(|e| Self::not_found(e, subject, None, None))?;
        parse(v)
    }
}
