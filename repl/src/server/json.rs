//! The JSON the HTTP API speaks, close to ksqlDB's REST API: request bodies, statement results
//! (`currentStatus`, `rows`, `statement_error` entities), query headers and rows. Values are
//! rendered exactly as the REPL renders them (`planner::session::render`), so a client can print
//! them the same way.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use planner::session::render::{json_string, json_value};
use planner::types::type_name;
use serde::Deserialize;

use super::error::ServerError;

/// Body of POST /ksql, /query and /query-stream. Fields Eddy does not know are ignored, as
/// ksqlDB ignores them.
#[derive(Debug)]
pub struct StatementRequest {
    /// The statements (`ksql`, or `sql` as in ksqlDB's /query-stream).
    pub ksql: String,
    /// Session properties (`SET` values) for these statements.
    pub properties: BTreeMap<String, serde_json::Value>,
    /// Variables (`DEFINE`) for these statements.
    pub variables: BTreeMap<String, serde_json::Value>,
}

/// The request as sent: ksqlDB's clients name the same things differently per endpoint.
#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    ksql: Option<String>,
    #[serde(default)]
    sql: Option<String>,
    #[serde(default, rename = "streamsProperties")]
    streams_properties: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    properties: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, rename = "sessionVariables")]
    variables: Option<BTreeMap<String, serde_json::Value>>,
}

impl StatementRequest {
    /// Parses a request body; `properties` extend `streamsProperties`.
    pub fn parse(body: &[u8]) -> Result<StatementRequest, ServerError> {
        let raw: RawRequest =
            serde_json::from_slice(body).map_err(|e| ServerError::BadRequest(format!("invalid request body: {e}")))?;
        let ksql = raw
            .ksql
            .or(raw.sql)
            .ok_or_else(|| ServerError::BadRequest("invalid request body: no \"ksql\" (or \"sql\") field with the statements".into()))?;
        let mut properties = raw.streams_properties.unwrap_or_default();
        properties.extend(raw.properties.unwrap_or_default());
        Ok(StatementRequest { ksql, properties, variables: raw.variables.unwrap_or_default() })
    }
}

/// A property or variable value as text (`"earliest"`, `5`, `true`).
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One row as a JSON array: `[1,"a",null]`.
pub fn row_array(batch: &RecordBatch, row: usize, out: &mut String) {
    out.push('[');
    for (i, c) in batch.columns().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_value(c, row, out);
    }
    out.push(']');
}

/// ksqlDB's schema text: `` `ID` INTEGER, `NAME` STRING ``.
pub fn schema_text(schema: &SchemaRef) -> String {
    schema.fields().iter().map(|f| format!("`{}` {}", f.name(), type_name(f.data_type()))).collect::<Vec<_>>().join(", ")
}

fn names_and_types(schema: &SchemaRef, out: &mut String) {
    out.push_str("\"columnNames\":[");
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(f.name(), out);
    }
    out.push_str("],\"columnTypes\":[");
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&type_name(f.data_type()), out);
    }
    out.push(']');
}

/// The first line of a /query-stream response: query id, column names and types, and whether
/// rows keep coming (`push`) or the result is finite (`pull`).
pub fn stream_header(query_id: &str, schema: &SchemaRef, push: bool) -> String {
    let mut s = String::from("{\"queryId\":");
    json_string(query_id, &mut s);
    s.push(',');
    names_and_types(schema, &mut s);
    s.push_str(if push { ",\"kind\":\"push\"}" } else { ",\"kind\":\"pull\"}" });
    s
}

/// The first element of a /query response (ksqlDB's v1 format).
pub fn v1_header(query_id: &str, schema: &SchemaRef) -> String {
    let mut s = String::from("{\"header\":{\"queryId\":");
    json_string(query_id, &mut s);
    s.push_str(",\"schema\":");
    json_string(&schema_text(schema), &mut s);
    s.push_str("}}");
    s
}

/// A row element of a /query response.
pub fn v1_row(batch: &RecordBatch, row: usize) -> String {
    let mut s = String::from("{\"row\":{\"columns\":");
    row_array(batch, row, &mut s);
    s.push_str("}}");
    s
}

/// The result of a statement that changed something or said something.
pub fn status_entity(statement: &str, message: &str) -> String {
    let mut s = String::from("{\"@type\":\"currentStatus\",\"statementText\":");
    json_string(statement, &mut s);
    s.push_str(",\"commandStatus\":{\"status\":\"SUCCESS\",\"message\":");
    json_string(message, &mut s);
    s.push_str("},\"warnings\":[]}");
    s
}

/// The result of a statement that returns rows (SHOW, DESCRIBE, EXPLAIN).
pub fn rows_entity(statement: &str, rows: &planner::RowSet) -> String {
    let mut s = String::from("{\"@type\":\"rows\",\"statementText\":");
    json_string(statement, &mut s);
    s.push(',');
    names_and_types(&rows.schema, &mut s);
    s.push_str(",\"rows\":[");
    let mut first = true;
    for b in &rows.batches {
        for r in 0..b.num_rows() {
            if !first {
                s.push(',');
            }
            first = false;
            row_array(b, r, &mut s);
        }
    }
    s.push_str("],\"warnings\":[]}");
    s
}

/// An error body: `{"@type":"statement_error","error_code":40001,"message":...}`; statement
/// errors also carry the statement and the results of the statements before it.
pub fn error_body(e: &ServerError, entities: &[String]) -> String {
    let mut s = String::from("{\"@type\":");
    let kind = if matches!(e, ServerError::Statement { .. }) { "statement_error" } else { "generic_error" };
    json_string(kind, &mut s);
    s.push_str(&format!(",\"error_code\":{},\"message\":", e.code()));
    json_string(&e.to_string(), &mut s);
    if let ServerError::Statement { statement, .. } = e {
        s.push_str(",\"statementText\":");
        json_string(statement, &mut s);
        s.push_str(",\"entities\":[");
        s.push_str(&entities.join(","));
        s.push(']');
    }
    s.push('}');
    s
}

/// A plain error body for a status code without a [`ServerError`] (404, 401, 405).
pub fn plain_error(code: u16, message: &str) -> String {
    let mut s = format!("{{\"@type\":\"generic_error\",\"error_code\":{},\"message\":", code as u32 * 100);
    json_string(message, &mut s);
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::StatementRequest;

    #[test]
    fn requests_ignore_unknown_fields_and_take_either_name() {
        let r = StatementRequest::parse(br#"{"ksql":"SHOW STREAMS;","sql":"other","extra":{"x":1},"commandSequenceNumber":4}"#).unwrap();
        assert_eq!(r.ksql, "SHOW STREAMS;");
        let r = StatementRequest::parse(br#"{"sql":"SELECT 1;","properties":{"a":"b"},"streamsProperties":{"a":"c","d":1}}"#).unwrap();
        assert_eq!(r.ksql, "SELECT 1;");
        assert_eq!(r.properties["a"], "b");
        assert_eq!(r.properties["d"], 1);
        let e = StatementRequest::parse(br#"{"properties":{}}"#).unwrap_err();
        assert!(e.to_string().contains("no \"ksql\""), "{e}");
        assert!(StatementRequest::parse(b"[1]").is_err());
    }
}
