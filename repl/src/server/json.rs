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

/// Body of POST /ksql, /query and /query-stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementRequest {
    /// The statements (`sql` as in ksqlDB's /query-stream).
    #[serde(alias = "sql")]
    pub ksql: String,
    /// Session properties (`SET` values) for these statements.
    #[serde(default, rename = "streamsProperties", alias = "properties")]
    pub properties: BTreeMap<String, serde_json::Value>,
    /// Variables (`DEFINE`) for these statements.
    #[serde(default, rename = "sessionVariables")]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Accepted for ksqlDB compatibility; ignored.
    #[serde(default, rename = "commandSequenceNumber")]
    pub _sequence: Option<i64>,
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
