//! Schema validation, canonical forms (so that the same schema gets the same id whatever its
//! spacing) and compatibility checks between versions of a subject.
//!
//! Avro compatibility is Avro's schema resolution (`apache-avro`'s `SchemaCompatibility`):
//! BACKWARD means the new schema can read data written with the old one, FORWARD the reverse.
//! Protobuf and JSON Schema are checked field by field with the rules that matter for readers:
//! a field (by number, or by property name) keeps its type; see docs/formats.md.

use std::collections::BTreeMap;

use super::{Compatibility, RegistryError, RegistryResult, Schema, SchemaType};

/// The text that identifies a schema for id assignment: Avro and JSON re-serialized without
/// spacing (Avro's parsing canonical form would drop defaults, which matter for compatibility),
/// Protobuf text with its whitespace runs collapsed.
///
/// `refs` are the texts of the schemas it references (import name, text).
///
/// # Errors
/// [`RegistryError::InvalidSchema`] when the text does not parse.
pub fn canonical(schema: &Schema, refs: &[(String, String)]) -> RegistryResult<String> {
    match schema.schema_type {
        SchemaType::Avro => {
            let parsed = parse_avro(&schema.schema)?;
            serde_json::to_string(&parsed).map_err(|e| invalid(SchemaType::Avro, e.to_string()))
        }
        SchemaType::Json => {
            let v: serde_json::Value = serde_json::from_str(&schema.schema).map_err(|e| invalid(SchemaType::Json, e.to_string()))?;
            Ok(v.to_string())
        }
        SchemaType::Protobuf => {
            crate::format::protobuf::proto_fields(&schema.schema, refs).map_err(|e| invalid(SchemaType::Protobuf, e))?;
            Ok(schema.schema.split_whitespace().collect::<Vec<_>>().join(" "))
        }
    }
}

/// Parses Avro schema text.
pub(crate) fn parse_avro(text: &str) -> RegistryResult<apache_avro::Schema> {
    apache_avro::Schema::parse_str(text).map_err(|e| invalid(SchemaType::Avro, e.to_string()))
}

fn invalid(t: SchemaType, reason: String) -> RegistryError {
    RegistryError::InvalidSchema { schema_type: t.name(), reason }
}

/// Why `new` breaks `level` against `existing` (oldest first); empty when it does not.
/// Non-transitive levels look at the newest existing schema only. Protobuf schemas compile
/// with `refs` (the new schema's references) for their imports.
///
/// # Errors
/// [`RegistryError::InvalidSchema`] when a schema does not parse.
pub fn check_compatibility(level: Compatibility, new: &Schema, existing: &[Schema], refs: &[(String, String)]) -> RegistryResult<Vec<String>> {
    if level == Compatibility::None || existing.is_empty() {
        return Ok(Vec::new());
    }
    let against: &[Schema] = if level.transitive() { existing } else { &existing[existing.len() - 1..] };
    let (backward, forward) = match level {
        Compatibility::Backward | Compatibility::BackwardTransitive => (true, false),
        Compatibility::Forward | Compatibility::ForwardTransitive => (false, true),
        _ => (true, true),
    };
    let mut out = Vec::new();
    for old in against {
        if old.schema_type != new.schema_type {
            out.push(format!("schema type {} differs from {}", new.schema_type.name(), old.schema_type.name()));
            continue;
        }
        // BACKWARD: the new schema reads old data; FORWARD: the old schema reads new data.
        if backward {
            out.extend(can_read(old, new, refs)?);
        }
        if forward {
            out.extend(can_read(new, old, refs)?);
        }
    }
    Ok(out)
}

/// Why a reader with schema `reader` cannot read data written with `writer`.
fn can_read(writer: &Schema, reader: &Schema, refs: &[(String, String)]) -> RegistryResult<Vec<String>> {
    match writer.schema_type {
        SchemaType::Avro => {
            let (w, r) = (parse_avro(&writer.schema)?, parse_avro(&reader.schema)?);
            Ok(match apache_avro::schema_compatibility::SchemaCompatibility::can_read(&w, &r) {
                Ok(()) => Vec::new(),
                Err(e) => vec![e.to_string()],
            })
        }
        SchemaType::Protobuf => {
            let parse = |s: &Schema| crate::format::protobuf::proto_fields(&s.schema, refs).map_err(|e| invalid(SchemaType::Protobuf, e));
            Ok(same_types(&parse(writer)?, &parse(reader)?, "field"))
        }
        SchemaType::Json => {
            let parse = |s: &Schema| json_properties(&s.schema);
            let (w, r) = (parse(writer)?, parse(reader)?);
            let mut out = same_types(&w.0, &r.0, "property");
            // A reader that forbids extra properties cannot read a writer's new ones.
            if r.1 {
                for name in w.0.keys().filter(|k| !r.0.contains_key(*k)) {
                    out.push(format!("property \"{name}\" is not allowed by the reader (additionalProperties is false)"));
                }
            }
            Ok(out)
        }
    }
}

/// Fields (by key) present in both with different types.
fn same_types(writer: &BTreeMap<String, String>, reader: &BTreeMap<String, String>, noun: &str) -> Vec<String> {
    writer
        .iter()
        .filter_map(|(k, wt)| match reader.get(k) {
            Some(rt) if rt != wt => Some(format!("{noun} {k} changed type from {wt} to {rt}")),
            _ => None,
        })
        .collect()
}

/// The top-level properties of a JSON Schema object (name → type text) and whether it forbids
/// additional properties.
fn json_properties(text: &str) -> RegistryResult<(BTreeMap<String, String>, bool)> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(SchemaType::Json, e.to_string()))?;
    let props = v
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|m| m.iter().map(|(k, t)| (k.clone(), json_type_text(t))).collect())
        .unwrap_or_default();
    let closed = v.get("additionalProperties") == Some(&serde_json::Value::Bool(false));
    Ok((props, closed))
}

/// The type of a JSON Schema property, ignoring a `null` alternative.
fn json_type_text(t: &serde_json::Value) -> String {
    if let Some(alts) = t.get("oneOf").or_else(|| t.get("anyOf")).and_then(|a| a.as_array()) {
        let non_null: Vec<String> =
            alts.iter().filter(|a| a.get("type").and_then(|x| x.as_str()) != Some("null")).map(json_type_text).collect();
        return non_null.join("|");
    }
    match t.get("type") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(a)) => {
            a.iter().filter_map(|x| x.as_str()).filter(|x| *x != "null").collect::<Vec<_>>().join("|")
        }
        _ => String::new(),
    }
}
