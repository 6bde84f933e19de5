//! `JSON_SR`: JSON documents framed the Confluent way (magic byte 0 and a 4-byte schema id)
//! with JSON Schemas in the registry. The documents are read and written by the `JSON` codec;
//! this file adds the framing, the JSON Schema ksqlDB registers for a set of columns, and the
//! columns it infers from a registered JSON Schema.
//!
//! Stateless: nothing happens on watermarks or barriers.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use serde_json::{json, Map, Value};

use super::avro::{frame, unframe};
use super::json::{JsonDecoder, JsonEncoder};
use super::types::map_fields;
use super::{DecodeError, EncodeError, EncodedBatch, RecordDecoder, RecordEncoder};

/// Decodes framed JSON.
pub(crate) struct JsonSrDecoder {
    inner: JsonDecoder,
}

impl JsonSrDecoder {
    pub fn new(fields: &Fields, unwrapped: bool) -> Self {
        JsonSrDecoder { inner: JsonDecoder::new(fields, unwrapped) }
    }
}

impl RecordDecoder for JsonSrDecoder {
    fn append(&mut self, bytes: Option<&[u8]>) -> Result<(), DecodeError> {
        match bytes.map(unframe) {
            None => self.inner.append(None),
            Some(Ok((id, payload))) => self.inner.append(Some(payload)).map_err(|e| DecodeError::Schema { id, reason: e.to_string() }),
            Some(Err(e)) => {
                // Keep the rows aligned: a failed record is an all-null row.
                let _ = self.inner.append(None);
                Err(e)
            }
        }
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        self.inner.finish()
    }

    fn rows(&self) -> usize {
        self.inner.rows()
    }

    fn last_was_null(&self) -> bool {
        self.inner.last_was_null()
    }
}

/// Encodes framed JSON with one schema id.
pub(crate) struct JsonSrEncoder {
    inner: JsonEncoder,
    id: u32,
    scratch: EncodedBatch,
    /// `"name":value` pairs (comma-separated, no braces) for the registered schema's properties
    /// that no column writes: each takes its `default`, or null.
    extra: Vec<u8>,
}

impl JsonSrEncoder {
    /// An encoder of `fields` framed with schema `id`. `schema` is the registered JSON Schema's
    /// text, when known: an object's properties that match no column (ignoring case) are written
    /// too, as ksqlDB writes every field of the schema a `*_SCHEMA_ID` names.
    pub fn new(fields: &Fields, unwrapped: bool, id: u32, schema: Option<&str>) -> Self {
        let extra = match schema {
            Some(text) if !unwrapped => extra_properties(fields, text),
            _ => Vec::new(),
        };
        JsonSrEncoder { inner: JsonEncoder::new(fields, unwrapped), id, scratch: EncodedBatch::new(), extra }
    }
}

/// The `"name":default` pairs of the properties of the object schema `text` that no field of
/// `fields` names (ignoring case), in the schema's order; empty when `text` is not an object
/// schema or every property has a column.
fn extra_properties(fields: &Fields, text: &str) -> Vec<u8> {
    let Ok(v) = serde_json::from_str::<Value>(text) else { return Vec::new() };
    let Some(props) = non_null(&v).get("properties").and_then(Value::as_object) else { return Vec::new() };
    let mut out = Vec::new();
    for (name, p) in props {
        if fields.iter().any(|f| f.name().eq_ignore_ascii_case(name)) {
            continue;
        }
        if !out.is_empty() {
            out.push(b',');
        }
        let default = p.get("default").unwrap_or(&Value::Null);
        serde_json::to_writer(&mut out, name).expect("JSON serializes");
        out.push(b':');
        serde_json::to_writer(&mut out, default).expect("JSON serializes");
    }
    out
}

impl RecordEncoder for JsonSrEncoder {
    fn encode_rows(&mut self, columns: &[ArrayRef], rows: usize, out: &mut EncodedBatch) -> Result<(), EncodeError> {
        self.scratch.clear();
        self.inner.encode_rows(columns, rows, &mut self.scratch)?;
        for entry in self.scratch.iter() {
            match entry {
                None => out.push_null(),
                Some(b) => {
                    let buf = out.buffer();
                    frame(self.id, buf);
                    match b.split_last() {
                        Some((b'}', head)) if !self.extra.is_empty() => {
                            buf.extend_from_slice(head);
                            if head != b"{" {
                                buf.push(b',');
                            }
                            buf.extend_from_slice(&self.extra);
                            buf.push(b'}');
                        }
                        _ => buf.extend_from_slice(b),
                    }
                    out.end_entry();
                }
            }
        }
        Ok(())
    }
}

/// The JSON Schema ksqlDB registers for these columns: an object with one optional property per
/// column (`connect.index` giving the order), or the single column's own schema when
/// `unwrapped`.
pub fn generate(fields: &Fields, unwrapped: bool) -> Value {
    if unwrapped && fields.len() == 1 {
        return optional(type_schema(fields[0].data_type()));
    }
    object(fields)
}

fn object(fields: &Fields) -> Value {
    let mut props = Map::new();
    for (i, f) in fields.iter().enumerate() {
        let mut p = optional(type_schema(f.data_type()));
        p.as_object_mut().expect("object").insert("connect.index".into(), json!(i));
        props.insert(f.name().clone(), p);
    }
    json!({ "type": "object", "properties": props })
}

fn optional(t: Value) -> Value {
    json!({ "oneOf": [{ "type": "null" }, t] })
}

fn type_schema(ty: &DataType) -> Value {
    let logical = |name: &str, t: &str, connect: &str| {
        json!({ "type": t, "title": format!("org.apache.kafka.connect.data.{name}"), "connect.version": 1, "connect.type": connect })
    };
    match ty {
        DataType::Boolean => json!({ "type": "boolean" }),
        DataType::Int32 => json!({ "type": "integer", "connect.type": "int32" }),
        DataType::Int64 => json!({ "type": "integer", "connect.type": "int64" }),
        DataType::Float64 => json!({ "type": "number", "connect.type": "float64" }),
        DataType::Utf8 => json!({ "type": "string" }),
        DataType::Binary => json!({ "type": "string", "connect.type": "bytes" }),
        DataType::Decimal128(p, s) => json!({
            "type": "number", "title": "org.apache.kafka.connect.data.Decimal", "connect.version": 1, "connect.type": "bytes",
            "connect.parameters": { "scale": s.to_string(), "connect.decimal.precision": p.to_string() }
        }),
        DataType::Date32 => logical("Date", "integer", "int32"),
        DataType::Time32(_) => logical("Time", "integer", "int32"),
        DataType::Timestamp(..) => logical("Timestamp", "integer", "int64"),
        DataType::List(item) => json!({ "type": "array", "items": optional(type_schema(item.data_type())) }),
        DataType::Map(entries, _) => {
            let (_, v) = map_fields(entries).expect("map entries");
            json!({ "type": "object", "additionalProperties": optional(type_schema(v.data_type())), "connect.type": "map" })
        }
        DataType::Struct(fs) => object(fs),
        other => panic!("type {other} passed check_columns but has no JSON Schema"),
    }
}

/// The columns ksqlDB infers from a JSON Schema: an object's properties (upper-cased, in
/// `connect.index` order, else as written; upper-cased when `upper`), or one column `single`
/// when it is not an object with properties or `unwrapped` is set.
///
/// # Errors
/// When the text is not JSON or uses a type without a SQL type.
pub fn infer_fields(text: &str, single: &str, unwrapped: bool, upper: bool) -> Result<Fields, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON Schema: {e}"))?;
    let v = non_null(&v);
    if !unwrapped && v.get("properties").is_some() {
        return properties(v, 0, upper);
    }
    Ok(vec![Field::new(single, to_arrow(v, 0, upper)?, true)].into())
}

fn properties(v: &Value, depth: usize, upper: bool) -> Result<Fields, String> {
    let Some(props) = v.get("properties").and_then(Value::as_object) else { return Ok(Fields::empty()) };
    let mut list: Vec<(i64, usize, &String, &Value)> =
        props.iter().enumerate().map(|(i, (k, p))| (p.get("connect.index").and_then(Value::as_i64).unwrap_or(i64::MAX), i, k, p)).collect();
    list.sort_by_key(|(ci, i, ..)| (*ci, *i));
    list.into_iter()
        .map(|(_, _, k, p)| {
            let name = if upper { k.to_uppercase() } else { k.clone() };
            Ok(Field::new(name, to_arrow(non_null(p), depth + 1, upper).map_err(|e| format!("property {k}: {e}"))?, true))
        })
        .collect()
}

/// The schema without a `null` alternative.
fn non_null(v: &Value) -> &Value {
    if let Some(alts) = v.get("oneOf").or_else(|| v.get("anyOf")).and_then(Value::as_array) {
        let rest: Vec<&Value> = alts.iter().filter(|a| a.get("type").and_then(Value::as_str) != Some("null")).collect();
        if rest.len() == 1 {
            return rest[0];
        }
    }
    v
}

fn to_arrow(v: &Value, depth: usize, upper: bool) -> Result<DataType, String> {
    if depth > 32 {
        return Err("schema nests deeper than 32 levels".into());
    }
    let connect = v.get("connect.type").and_then(Value::as_str);
    let title = v.get("title").and_then(Value::as_str).unwrap_or("");
    let ty = match v.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
        _ if v.get("properties").is_some() => "object",
        _ => return Err(format!("no SQL type for JSON Schema {v}")),
    };
    Ok(match (ty, connect) {
        _ if title == "org.apache.kafka.connect.data.Decimal" => {
            let param = |k: &str| v.get("connect.parameters").and_then(|p| p.get(k)).and_then(Value::as_str).and_then(|s| s.parse::<u8>().ok());
            DataType::Decimal128(param("connect.decimal.precision").unwrap_or(38), param("scale").unwrap_or(0) as i8)
        }
        _ if title == "org.apache.kafka.connect.data.Date" => DataType::Date32,
        _ if title == "org.apache.kafka.connect.data.Time" => DataType::Time32(TimeUnit::Millisecond),
        _ if title == "org.apache.kafka.connect.data.Timestamp" => DataType::Timestamp(TimeUnit::Millisecond, None),
        ("boolean", _) => DataType::Boolean,
        ("integer", Some("int8" | "int16" | "int32")) => DataType::Int32,
        ("integer", _) => DataType::Int64,
        ("number", _) => DataType::Float64,
        ("string", Some("bytes")) => DataType::Binary,
        ("string", _) => DataType::Utf8,
        ("array", _) => {
            let items = v.get("items").map(non_null).ok_or("array without items")?;
            DataType::List(Field::new("item", to_arrow(items, depth + 1, upper)?, true).into())
        }
        ("object", _) => match v.get("additionalProperties") {
            Some(ap) if ap.is_object() && v.get("properties").is_none() => {
                super::avro::map_of(Field::new("value", to_arrow(non_null(ap), depth + 1, upper)?, true))
            }
            _ => {
                let fs = properties(v, depth, upper)?;
                if fs.is_empty() {
                    return Err("an object without properties has no SQL type".into());
                }
                DataType::Struct(fs)
            }
        },
        (t, _) => return Err(format!("no SQL type for JSON Schema type {t}")),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Fields};
    use storage::{FileLog, LogOptions, TopicLog};

    use crate::format::{new_encoder_with, FormatKind, FormatSpec, Role};
    use crate::registry::{EmbeddedRegistry, Registry, Schema, SchemaType};

    /// Writing with a registered schema, its properties that no column writes come out as their
    /// default or null, as ksqlDB's JSON_SR serializer writes every field of the schema.
    #[test]
    fn a_schema_id_writes_every_property_of_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn TopicLog> = Arc::new(FileLog::open(dir.path(), LogOptions::default()).unwrap());
        let r = Registry(Arc::new(EmbeddedRegistry::open(log).unwrap()));
        let text = r#"{"type":"object","properties":{"c1":{"type":"integer"},"c2":{"type":"string"},"c3":{"type":"integer","default":7}}}"#;
        let id = r.register("out-value", &Schema::new(SchemaType::Json, text), None).unwrap();
        let spec = FormatSpec { schema_id: Some(id), ..FormatSpec::new(FormatKind::JsonSr) };
        let fields = Fields::from(vec![Field::new("C1", DataType::Int64, true)]);
        let mut enc = new_encoder_with(&spec, Role::Value, &fields, Some(&r)).unwrap();
        let col: ArrayRef = Arc::new(Int64Array::from(vec![Some(4), None]));
        let mut out = crate::format::EncodedBatch::new();
        enc.encode_rows(&[col], 2, &mut out).unwrap();
        let docs: Vec<serde_json::Value> = out.iter().map(|b| serde_json::from_slice(&b.unwrap()[5..]).unwrap()).collect();
        assert_eq!(docs[0], serde_json::json!({"C1": 4, "c2": null, "c3": 7}));
        assert_eq!(docs[1], serde_json::json!({"C1": null, "c2": null, "c3": 7}));
        // Without the registry's schema (no registry given) only the columns are written.
        let mut enc = super::JsonSrEncoder::new(&fields, false, id, None);
        let mut out = crate::format::EncodedBatch::new();
        let col: ArrayRef = Arc::new(Int64Array::from(vec![Some(4)]));
        crate::format::RecordEncoder::encode_rows(&mut enc, &[col], 1, &mut out).unwrap();
        assert_eq!(&out.iter().next().unwrap().unwrap()[5..], br#"{"C1":4}"#);
    }
}
