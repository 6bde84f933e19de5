//! Schema-registry cases: registering the schemas a case declares in `topics[]` (`keySchema`,
//! `valueSchema`, their ids and references) before its statements run, as ksqlDB's QTT does with
//! its mock registry, and moving records between the cases' JSON and the wire formats `AVRO`,
//! `PROTOBUF`, `PROTOBUF_NOSR` and `JSON_SR`.
//!
//! The runner writes inputs with the subject's latest schema (the case's own, or the one a
//! CREATE registered) and reads outputs by the schema id in each record. Avro goes through
//! `apache-avro`'s generic datum codec and Protobuf through `prost-reflect`'s dynamic messages,
//! not through Eddy's own decoders, so a comparison sees what another client would.

use apache_avro::schema::Schema as Avro;
use apache_avro::types::Value as AV;
use datafusion::arrow::datatypes::Fields;
use engine::format::{protobuf, FormatKind, FormatSpec, SchemaName};
use engine::registry::{subject_name, Registry, Schema, SchemaReference, SchemaType, VersionRef};
use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value as PV};

use super::json::{base64_decode, base64_encode, Json};
use super::model::{Case, SchemaSpec};

/// Ids given to referenced schemas, above any a case names.
const REFERENCE_IDS: u32 = 1_000_000;

/// Prepares the registry the way ksqlDB's QTT prepares its mock registry: no compatibility
/// checks (the mock does not make them), then the schemas of the sources that CREATE statements
/// declare with columns (in statement order, key then value, unless `topics[]` gives that
/// subject a schema), then the schemas of `topics[]` under `<topic>-key`/`<topic>-value`. The
/// order matters: cases name schema ids (`VALUE_SCHEMA_ID=2`) by the order the mock gave them.
///
/// # Errors
/// When the registry refuses a schema.
pub fn register_topic_schemas(registry: &Registry, case: &Case) -> Result<(), String> {
    // Plain cases have no schemas and no schema-registry formats by definition.
    if case.plain {
        return Ok(());
    }
    registry.set_compatibility(None, engine::registry::Compatibility::None).map_err(|e| e.to_string())?;
    register_declared_sources(registry, case);
    let mut next_ref = REFERENCE_IDS;
    let mut refs_done: Vec<String> = Vec::new();
    for t in &case.topics {
        for (key, spec, format) in [(true, &t.key_schema, &t.key_format), (false, &t.value_schema, &t.value_format)] {
            let Some(spec) = spec else { continue };
            let declared = statement_format(case, &t.name, key);
            let schema_type = match declared.as_deref().or(format.as_deref()) {
                Some("PROTOBUF") | Some("PROTOBUF_NOSR") => SchemaType::Protobuf,
                Some("JSON_SR") | Some("JSON") => SchemaType::Json,
                Some("AVRO") => SchemaType::Avro,
                _ => guess_type(&spec.schema),
            };
            let text = match (schema_type, &spec.schema) {
                // An Avro primitive given as a bare name ("int") is the JSON string "int".
                (SchemaType::Avro, Json::Str(s)) if !s.trim_start().starts_with(['{', '[', '"']) => Json::Str(s.clone()).to_string(),
                (_, s) => text_of(s),
            };
            let mut schema = Schema::new(schema_type, text);
            for (name, text) in &spec.references {
                if !refs_done.contains(name) {
                    next_ref += 1;
                    registry.register(name, &Schema::new(schema_type, text.clone()), Some(next_ref)).map_err(|e| format!("reference {name}: {e}"))?;
                    refs_done.push(name.clone());
                }
                schema.references.push(SchemaReference { name: name.clone(), subject: name.clone(), version: 1 });
            }
            let subject = subject_name(&t.name, key);
            registry.register(&subject, &schema, spec.id).map_err(|e| format!("cannot register the schema of {subject}: {e}"))?;
        }
    }
    Ok(())
}

/// Registers the schema generated from the columns of each `CREATE STREAM|TABLE` with columns
/// and a schema-registry format, as ksqlDB's QTT derives them before a case runs (the CREATE
/// itself then finds the subject registered and writes with that schema). Statements that do
/// not parse are left to the run to report.
fn register_declared_sources(registry: &Registry, case: &Case) {
    use datafusion::arrow::datatypes::Field;
    use planner::ast::{ColumnKind, PropValue, Statement};
    let wrap_default = !case.properties.iter().any(|(k, v)| k == "ksql.persistence.wrap.single.values" && v == "false");
    for sql in &case.statements {
        let Ok(parsed) = planner::parser::parse(sql) else { continue };
        for p in parsed {
            let Statement::CreateSource(c) = &p.statement else { continue };
            if c.columns.is_empty() {
                continue;
            }
            let prop = |name: &str| {
                c.props.iter().find(|(n, _)| n == name).map(|(_, v)| match v {
                    PropValue::String(s) | PropValue::Number(s) => s.clone(),
                    PropValue::Bool(b) => b.to_string(),
                })
            };
            let Some(topic) = prop("KAFKA_TOPIC") else { continue };
            let kind = |k: &str| prop(k).or_else(|| prop("FORMAT")).and_then(|f| FormatKind::from_name(&f));
            let wrap = prop("WRAP_SINGLE_VALUE").map_or(wrap_default, |w| w.eq_ignore_ascii_case("true"));
            let fields = |key: bool| -> Option<Fields> {
                c.columns
                    .iter()
                    .filter(|col| (col.kind == ColumnKind::Key) == key && matches!(col.kind, ColumnKind::Key | ColumnKind::Value))
                    .map(|col| Some(Field::new(&col.name, col.data_type.to_arrow(&Default::default()).ok()?, true)))
                    .collect()
            };
            for (key, format) in [(true, kind("KEY_FORMAT")), (false, kind("VALUE_FORMAT"))] {
                let (Some(format), Some(fields)) = (format, fields(key)) else { continue };
                if !format.uses_registry() || fields.is_empty() || declared(case, &topic, key).is_some() {
                    continue;
                }
                let unwrapped = fields.len() == 1 && (key || !wrap);
                let full_name = prop(if key { "KEY_SCHEMA_FULL_NAME" } else { "VALUE_SCHEMA_FULL_NAME" });
                let nullable = match prop(if key { "KEY_PROTOBUF_NULLABLE_REPRESENTATION" } else { "VALUE_PROTOBUF_NULLABLE_REPRESENTATION" })
                    .map(|n| n.to_uppercase())
                    .as_deref()
                {
                    Some("OPTIONAL") => protobuf::Nullable::Optional,
                    Some("WRAPPER") => protobuf::Nullable::Wrapper,
                    _ => protobuf::Nullable::Default,
                };
                let schema = match format {
                    FormatKind::Avro => Schema::new(SchemaType::Avro, engine::format::avro::generate(&fields, unwrapped, full_name.as_deref()).to_string()),
                    FormatKind::JsonSr => Schema::new(SchemaType::Json, engine::format::json_sr::generate(&fields, unwrapped).to_string()),
                    _ => Schema::new(SchemaType::Protobuf, protobuf::generate(&fields, full_name.as_deref(), nullable)),
                };
                let subject = subject_name(&topic, key);
                if registry.versions(&subject).is_err() {
                    let _ = registry.register(&subject, &schema, None);
                }
            }
        }
    }
}

/// The format a CREATE statement of the case gives the keys (or values) of `topic`.
fn statement_format(case: &Case, topic: &str, key: bool) -> Option<String> {
    case.statements.iter().find_map(|s| {
        let props = super::expand::with_properties(s);
        let names_topic = props.iter().any(|(k, v)| k == "KAFKA_TOPIC" && v == topic);
        if !names_topic {
            return None;
        }
        let want = if key { "KEY_FORMAT" } else { "VALUE_FORMAT" };
        props.iter().find(|(k, _)| k == want || k == "FORMAT").map(|(_, v)| v.to_uppercase())
    })
}

/// The kind of a schema nobody names the format of: `.proto` text, a JSON Schema object, or Avro.
fn guess_type(s: &Json) -> SchemaType {
    match s {
        Json::Str(t) if t.contains("message ") || t.contains("syntax") => SchemaType::Protobuf,
        Json::Obj(_) if s.get("properties").is_some() || s.get("type").and_then(Json::as_str) == Some("object") || s.get("oneOf").is_some() => SchemaType::Json,
        _ => SchemaType::Avro,
    }
}

/// A schema as text: strings as they are, JSON documents serialized.
fn text_of(v: &Json) -> String {
    match v {
        Json::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The schema spec of a topic part, if the case declares one.
pub fn declared<'a>(case: &'a Case, topic: &str, key: bool) -> Option<&'a SchemaSpec> {
    let t = case.topics.iter().find(|t| t.name == topic)?;
    if key {
        t.key_schema.as_ref()
    } else {
        t.value_schema.as_ref()
    }
}

/// The bytes a schema-registry client writes for `v`: with the subject's latest schema, framed.
pub fn serialize(v: &Json, spec: &FormatSpec, fields: &Fields, registry: &Registry, topic: &str, key: bool) -> Result<Vec<u8>, String> {
    if spec.kind == FormatKind::ProtobufNoSr {
        let desc = protobuf::nosr_descriptor(fields, spec).map_err(|e| e.to_string())?;
        return Ok(json_to_proto(v, &desc)?.encode_to_vec());
    }
    let subject = subject_name(topic, key);
    let latest = registry.version(&subject, VersionRef::Latest).map_err(|e| format!("no schema to write {subject} with: {e}"))?;
    let mut out = vec![0];
    out.extend_from_slice(&latest.id.to_be_bytes());
    match spec.kind {
        FormatKind::Avro => {
            let s = Avro::parse_str(&latest.schema.schema).map_err(|e| e.to_string())?;
            let datum = json_to_avro(v, &s, &names(&s))?;
            out.extend(apache_avro::to_avro_datum(&s, datum).map_err(|e| format!("cannot write {v} as Avro: {e}"))?);
        }
        FormatKind::JsonSr => out.extend(v.to_string().into_bytes()),
        FormatKind::Protobuf => {
            let desc = protobuf::message_descriptor(registry, latest.id, None, spec.full_name.map(SchemaName::as_str))?;
            protobuf::write_indexes(&protobuf::indexes(&desc), &mut out);
            out.extend(json_to_proto(v, &desc)?.encode_to_vec());
        }
        _ => unreachable!("schema-registry formats only"),
    }
    Ok(out)
}

/// A record's key or value bytes in a schema-registry format as the cases' JSON.
pub fn deserialize(b: &[u8], spec: &FormatSpec, fields: &Fields, registry: &Registry) -> Result<Json, String> {
    if spec.kind == FormatKind::ProtobufNoSr {
        let desc = protobuf::nosr_descriptor(fields, spec).map_err(|e| e.to_string())?;
        let m = DynamicMessage::decode(desc, b).map_err(|e| e.to_string())?;
        return Ok(unwrap_single(proto_to_json(&m), fields));
    }
    if b.len() < 5 || b[0] != 0 {
        return Err(format!("not in the schema registry's wire format: {} bytes", b.len()));
    }
    let id = u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
    let payload = &b[5..];
    match spec.kind {
        FormatKind::Avro => {
            let text = registry.schema_by_id(id).map_err(|e| e.to_string())?.schema;
            let s = Avro::parse_str(&text).map_err(|e| e.to_string())?;
            let v = apache_avro::from_avro_datum(&s, &mut &payload[..], None).map_err(|e| format!("schema id {id}: {e}"))?;
            Ok(avro_to_json(&v, &s, &names(&s)))
        }
        FormatKind::JsonSr => super::json::parse(&String::from_utf8_lossy(payload)).map_err(|e| format!("{e:?}")),
        FormatKind::Protobuf => {
            let (path, rest) = protobuf::read_indexes(payload)?;
            let desc = protobuf::message_descriptor(registry, id, Some(&path), None)?;
            let m = DynamicMessage::decode(desc, rest).map_err(|e| e.to_string())?;
            Ok(unwrap_single(proto_to_json(&m), fields))
        }
        _ => unreachable!("schema-registry formats only"),
    }
}

/// Protobuf has no bare values, so a single column travels as a message of one field; the
/// cases write a single key column bare, except when it is a STRUCT (its fields are the key).
fn unwrap_single(v: Json, _fields: &Fields) -> Json {
    v
}

fn names(s: &Avro) -> std::collections::HashMap<apache_avro::schema::Name, Avro> {
    let mut out = std::collections::HashMap::new();
    fn walk(s: &Avro, out: &mut std::collections::HashMap<apache_avro::schema::Name, Avro>) {
        match s {
            Avro::Record(r) => {
                out.insert(r.name.clone(), s.clone());
                r.fields.iter().for_each(|f| walk(&f.schema, out));
            }
            Avro::Enum(e) => {
                out.insert(e.name.clone(), s.clone());
            }
            Avro::Fixed(f) => {
                out.insert(f.name.clone(), s.clone());
            }
            Avro::Array(a) => walk(&a.items, out),
            Avro::Map(m) => walk(&m.types, out),
            Avro::Union(u) => u.variants().iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(s, &mut out);
    out
}

type Names = std::collections::HashMap<apache_avro::schema::Name, Avro>;

fn resolve<'a>(s: &'a Avro, names: &'a Names) -> &'a Avro {
    match s {
        Avro::Ref { name } => names.get(name).unwrap_or(s),
        _ => s,
    }
}

fn num(v: &Json) -> Option<&str> {
    match v {
        Json::Num(n) => Some(n.as_str()),
        Json::Str(s) => Some(s.as_str()),
        _ => None,
    }
}

fn int(v: &Json) -> Result<i64, String> {
    let n = num(v).ok_or_else(|| format!("expected a number, got {v}"))?;
    n.parse::<i64>().or_else(|_| n.parse::<f64>().map(|f| f as i64)).map_err(|_| format!("expected an integer, got {v}"))
}

fn float(v: &Json) -> Result<f64, String> {
    num(v).and_then(|n| n.parse::<f64>().ok()).ok_or_else(|| format!("expected a number, got {v}"))
}

/// The unscaled value of decimal text at `scale`.
fn unscaled(text: &str, scale: usize) -> Result<i128, String> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (i, f) = t.split_once('.').unwrap_or((t, ""));
    let mut f = f.to_string();
    while f.len() < scale {
        f.push('0');
    }
    if f.len() > scale && f[scale..].chars().any(|c| c != '0') {
        return Err(format!("{text} has more than {scale} decimal places"));
    }
    f.truncate(scale);
    let v: i128 = format!("{i}{f}").parse().map_err(|_| format!("expected a decimal, got {text}"))?;
    Ok(if neg { -v } else { v })
}

fn decimal_text(v: i128, scale: usize) -> String {
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let digits = if digits.len() <= scale { format!("{}{digits}", "0".repeat(scale + 1 - digits.len())) } else { digits };
    let (i, f) = digits.split_at(digits.len() - scale);
    let sign = if neg { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{i}")
    } else {
        format!("{sign}{i}.{f}")
    }
}

/// A case's JSON as an Avro datum of schema `s`: members by name ignoring case, numbers and
/// booleans into strings as their text, missing fields by their defaults.
pub fn json_to_avro(v: &Json, s: &Avro, names: &Names) -> Result<AV, String> {
    let s = resolve(s, names);
    Ok(match (s, v) {
        (Avro::Union(u), _) => {
            let variants = u.variants();
            if v.is_null() {
                let i = variants.iter().position(|b| matches!(b, Avro::Null)).ok_or("null for a union without null")?;
                return Ok(AV::Union(i as u32, Box::new(AV::Null)));
            }
            let mut last = String::new();
            for (i, b) in variants.iter().enumerate() {
                if matches!(b, Avro::Null) {
                    continue;
                }
                match json_to_avro(v, b, names) {
                    Ok(x) => return Ok(AV::Union(i as u32, Box::new(x))),
                    Err(e) => last = e,
                }
            }
            return Err(last);
        }
        (Avro::Null, Json::Null) => AV::Null,
        (_, Json::Null) => return Err("null for a non-nullable field".into()),
        (Avro::Boolean, Json::Bool(b)) => AV::Boolean(*b),
        (Avro::Int, _) => AV::Int(int(v)? as i32),
        (Avro::Long, _) => AV::Long(int(v)?),
        (Avro::Float, _) => AV::Float(float(v)? as f32),
        (Avro::Double, _) => AV::Double(float(v)?),
        (Avro::String, Json::Str(x)) => AV::String(x.clone()),
        (Avro::String, Json::Num(_) | Json::Bool(_)) => AV::String(v.to_text()),
        (Avro::String, Json::Obj(_) | Json::Arr(_)) => AV::String(v.to_string()),
        (Avro::Uuid, Json::Str(x)) => AV::String(x.clone()),
        (Avro::Bytes, Json::Str(x)) => AV::Bytes(base64_decode(x).ok_or("expected base64")?),
        (Avro::Fixed(f), Json::Str(x)) => AV::Fixed(f.size, base64_decode(x).ok_or("expected base64")?),
        (Avro::Enum(e), Json::Str(x)) => {
            AV::Enum(e.symbols.iter().position(|y| y == x).ok_or_else(|| format!("{x} is not a symbol"))? as u32, x.clone())
        }
        (Avro::Decimal(d), _) => {
            let u = unscaled(&v.to_text(), d.scale)?;
            let bytes = u.to_be_bytes();
            let mut start = 0;
            while start < 15 && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0) || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0)) {
                start += 1;
            }
            let raw = match resolve(&d.inner, names) {
                Avro::Fixed(f) => {
                    let fill = if u < 0 { 0xff } else { 0 };
                    let mut b = vec![fill; f.size.saturating_sub(16 - start)];
                    b.extend_from_slice(&bytes[start..]);
                    b
                }
                _ => bytes[start..].to_vec(),
            };
            AV::Decimal(apache_avro::Decimal::from(raw))
        }
        (Avro::Date, _) => AV::Date(int(v)? as i32),
        (Avro::TimeMillis, _) => AV::TimeMillis(int(v)? as i32),
        (Avro::TimeMicros, _) => AV::TimeMicros(int(v)?),
        (Avro::TimestampMillis, _) => AV::TimestampMillis(int(v)?),
        (Avro::TimestampMicros, _) => AV::TimestampMicros(int(v)?),
        (Avro::LocalTimestampMillis, _) => AV::LocalTimestampMillis(int(v)?),
        (Avro::LocalTimestampMicros, _) => AV::LocalTimestampMicros(int(v)?),
        (Avro::Array(a), Json::Arr(items)) => AV::Array(items.iter().map(|i| json_to_avro(i, &a.items, names)).collect::<Result<_, _>>()?),
        (Avro::Map(m), Json::Obj(members)) => {
            AV::Map(members.iter().map(|(k, x)| Ok((k.clone(), json_to_avro(x, &m.types, names)?))).collect::<Result<_, String>>()?)
        }
        (Avro::Record(r), Json::Obj(members)) => {
            let mut out = Vec::new();
            for f in &r.fields {
                let found = members.iter().rev().find(|(k, _)| *k == f.name).or_else(|| members.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(&f.name)));
                let value = match (found, &f.default) {
                    (Some((_, x)), _) => json_to_avro(x, &f.schema, names).map_err(|e| format!("{}: {e}", f.name))?,
                    (None, Some(d)) => {
                        let d = super::json::parse(&d.to_string()).map_err(|e| format!("{e:?}"))?;
                        // A union's default is of its first branch.
                        match resolve(&f.schema, names) {
                            Avro::Union(u) => AV::Union(0, Box::new(json_to_avro(&d, &u.variants()[0], names)?)),
                            other => json_to_avro(&d, other, names)?,
                        }
                    }
                    (None, None) => json_to_avro(&Json::Null, &f.schema, names).map_err(|e| format!("{}: {e}", f.name))?,
                };
                out.push((f.name.clone(), value));
            }
            AV::Record(out)
        }
        // A record of one field given as its bare value.
        (Avro::Record(r), _) if r.fields.len() == 1 => {
            AV::Record(vec![(r.fields[0].name.clone(), json_to_avro(v, &r.fields[0].schema, names)?)])
        }
        (s, v) => return Err(format!("cannot write {v} as Avro {s:?}")),
    })
}

/// An Avro datum as the cases' JSON (DATE as days, TIME and TIMESTAMP as milliseconds, BYTES as
/// base64, DECIMAL as a number with the schema's scale).
pub fn avro_to_json(v: &AV, s: &Avro, names: &Names) -> Json {
    let s = resolve(s, names);
    match (v, s) {
        (AV::Union(i, x), Avro::Union(u)) => avro_to_json(x, &u.variants()[*i as usize], names),
        (AV::Union(_, x), s) => avro_to_json(x, s, names),
        (AV::Null, _) => Json::Null,
        (AV::Boolean(b), _) => Json::Bool(*b),
        (AV::Int(i) | AV::Date(i) | AV::TimeMillis(i), _) => Json::Num(i.to_string()),
        (AV::Long(i) | AV::TimestampMillis(i) | AV::LocalTimestampMillis(i), _) => Json::Num(i.to_string()),
        (AV::TimestampMicros(i) | AV::LocalTimestampMicros(i) | AV::TimeMicros(i), _) => Json::Num((i / 1000).to_string()),
        (AV::Float(f), _) => Json::Num(format!("{f}")),
        (AV::Double(f), _) => Json::Num(format!("{f:?}")),
        (AV::String(x) | AV::Enum(_, x), _) => Json::Str(x.clone()),
        (AV::Uuid(u), _) => Json::Str(u.to_string()),
        (AV::Bytes(b) | AV::Fixed(_, b), _) => Json::Str(base64_encode(b)),
        (AV::Decimal(d), Avro::Decimal(ds)) => {
            let raw: Vec<u8> = d.try_into().unwrap_or_default();
            let mut x: i128 = if raw.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
            for b in &raw {
                x = (x << 8) | i128::from(*b);
            }
            Json::Num(decimal_text(x, ds.scale))
        }
        (AV::Array(items), Avro::Array(a)) => Json::Arr(items.iter().map(|i| avro_to_json(i, &a.items, names)).collect()),
        (AV::Map(m), Avro::Map(ms)) => {
            let mut members: Vec<(String, Json)> = m.iter().map(|(k, x)| (k.clone(), avro_to_json(x, &ms.types, names))).collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Obj(members)
        }
        (AV::Record(fs), Avro::Record(r)) => {
            Json::Obj(fs.iter().zip(&r.fields).map(|((k, x), f)| (k.clone(), avro_to_json(x, &f.schema, names))).collect())
        }
        (other, _) => Json::Str(format!("{other:?}")),
    }
}

/// A case's JSON as a message: members by name ignoring case, null members left unset, a bare
/// value for a message of one field.
pub fn json_to_proto(v: &Json, desc: &MessageDescriptor) -> Result<DynamicMessage, String> {
    let mut m = DynamicMessage::new(desc.clone());
    let members: Vec<(String, Json)> = match v {
        Json::Obj(members) => members.clone(),
        other => match desc.fields().next() {
            Some(f) if desc.fields().len() == 1 => vec![(f.name().to_string(), other.clone())],
            _ => return Err(format!("expected an object for message {}, got {other}", desc.name())),
        },
    };
    for (k, x) in &members {
        let Some(fd) = desc.get_field_by_name(k).or_else(|| desc.fields().find(|f| f.name().eq_ignore_ascii_case(k))) else { continue };
        if x.is_null() {
            continue;
        }
        let value = if fd.is_map() {
            let Kind::Message(entry) = fd.kind() else { unreachable!("map entries") };
            let vf = entry.map_entry_value_field();
            let Json::Obj(entries) = x else { return Err(format!("{k}: expected an object for a map")) };
            let mut out = std::collections::HashMap::new();
            for (ek, ev) in entries {
                let val = if ev.is_null() { PV::default_value(&vf.kind()) } else { proto_value(ev, &vf.kind())? };
                out.insert(MapKey::String(ek.clone()), val);
            }
            PV::Map(out)
        } else if fd.is_list() {
            let Json::Arr(items) = x else { return Err(format!("{k}: expected an array")) };
            PV::List(items.iter().map(|i| if i.is_null() { Ok(PV::default_value(&fd.kind())) } else { proto_value(i, &fd.kind()) }).collect::<Result<_, _>>()?)
        } else {
            proto_value(x, &fd.kind()).map_err(|e| format!("{k}: {e}"))?
        };
        m.try_set_field(&fd, value).map_err(|e| format!("{k}: {e}"))?;
    }
    Ok(m)
}

fn proto_value(v: &Json, kind: &Kind) -> Result<PV, String> {
    Ok(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => PV::I32(int(v)? as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PV::I64(int(v)?),
        Kind::Uint32 | Kind::Fixed32 => PV::U32(int(v)? as u32),
        Kind::Uint64 | Kind::Fixed64 => PV::U64(int(v)? as u64),
        Kind::Float => PV::F32(float(v)? as f32),
        Kind::Double => PV::F64(float(v)?),
        Kind::Bool => PV::Bool(v.as_bool().ok_or_else(|| format!("expected a boolean, got {v}"))?),
        Kind::String => PV::String(match v {
            Json::Str(s) => s.clone(),
            Json::Obj(_) | Json::Arr(_) => v.to_string(),
            other => other.to_text(),
        }),
        Kind::Bytes => PV::Bytes(base64_decode(&v.to_text()).ok_or("expected base64")?.into()),
        Kind::Enum(e) => match v {
            Json::Str(s) => PV::EnumNumber(e.get_value_by_name(s).ok_or_else(|| format!("{s} is not a value of {}", e.name()))?.number()),
            other => PV::EnumNumber(int(other)? as i32),
        },
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => {
                let ms = int(v)?;
                let mut t = DynamicMessage::new(m.clone());
                t.set_field_by_name("seconds", PV::I64(ms.div_euclid(1000)));
                t.set_field_by_name("nanos", PV::I32((ms.rem_euclid(1000) * 1_000_000) as i32));
                PV::Message(t)
            }
            "google.type.Date" => {
                let (y, mo, d) = civil_from_days(int(v)?);
                let mut t = DynamicMessage::new(m.clone());
                t.set_field_by_name("year", PV::I32(y as i32));
                t.set_field_by_name("month", PV::I32(mo as i32));
                t.set_field_by_name("day", PV::I32(d as i32));
                PV::Message(t)
            }
            "google.type.TimeOfDay" => {
                let ms = int(v)?;
                let mut t = DynamicMessage::new(m.clone());
                t.set_field_by_name("hours", PV::I32((ms / 3_600_000) as i32));
                t.set_field_by_name("minutes", PV::I32((ms / 60_000 % 60) as i32));
                t.set_field_by_name("seconds", PV::I32((ms / 1000 % 60) as i32));
                t.set_field_by_name("nanos", PV::I32((ms % 1000 * 1_000_000) as i32));
                PV::Message(t)
            }
            "confluent.type.Decimal" => {
                let text = v.to_text();
                let scale = text.split_once('.').map_or(0, |(_, f)| f.len());
                let u = unscaled(&text, scale)?;
                let be = u.to_be_bytes();
                let mut start = 0;
                while start < 15 && ((be[start] == 0 && be[start + 1] & 0x80 == 0) || (be[start] == 0xff && be[start + 1] & 0x80 != 0)) {
                    start += 1;
                }
                let digits = text.chars().filter(char::is_ascii_digit).count().max(1);
                let mut t = DynamicMessage::new(m.clone());
                t.set_field_by_name("value", PV::Bytes(be[start..].to_vec().into()));
                t.set_field_by_name("precision", PV::U32(digits as u32));
                t.set_field_by_name("scale", PV::I32(scale as i32));
                PV::Message(t)
            }
            n if n.starts_with("google.protobuf.") && n.ends_with("Value") => {
                let inner = m.get_field(1).ok_or("a wrapper without field 1")?;
                let mut w = DynamicMessage::new(m.clone());
                w.set_field(&inner, proto_value(v, &inner.kind())?);
                PV::Message(w)
            }
            _ => PV::Message(json_to_proto(v, m)?),
        },
    })
}

/// A message as the cases' JSON: every field (defaults for unset fields without presence,
/// null for unset messages and fields with presence).
pub fn proto_to_json(m: &DynamicMessage) -> Json {
    Json::Obj(m.descriptor().fields().map(|f| (f.name().to_string(), field_json(m, &f))).collect())
}

fn field_json(m: &DynamicMessage, f: &FieldDescriptor) -> Json {
    let single = !f.is_list() && !f.is_map();
    if single && (matches!(f.kind(), Kind::Message(_) | Kind::Bytes) || f.supports_presence()) && !m.has_field(f) {
        return Json::Null;
    }
    value_json(&m.get_field(f), &f.kind())
}

fn value_json(v: &PV, kind: &Kind) -> Json {
    match v {
        PV::Bool(b) => Json::Bool(*b),
        PV::I32(i) => Json::Num(i.to_string()),
        PV::I64(i) => Json::Num(i.to_string()),
        PV::U32(i) => Json::Num(i.to_string()),
        PV::U64(i) => Json::Num(i.to_string()),
        PV::F32(f) => Json::Num(format!("{:?}", f64::from(*f))),
        PV::F64(f) => Json::Num(format!("{f:?}")),
        PV::String(s) => Json::Str(s.clone()),
        PV::Bytes(b) => Json::Str(base64_encode(b)),
        PV::EnumNumber(n) => match kind {
            Kind::Enum(e) => Json::Str(e.get_value(*n).map_or_else(|| n.to_string(), |x| x.name().to_string())),
            _ => Json::Num(n.to_string()),
        },
        PV::List(items) => Json::Arr(items.iter().map(|i| value_json(i, kind)).collect()),
        PV::Map(entries) => {
            let Kind::Message(entry) = kind else { return Json::Null };
            let vk = entry.map_entry_value_field().kind();
            let mut members: Vec<(String, Json)> = entries
                .iter()
                .map(|(k, x)| {
                    let key = match k {
                        MapKey::String(s) => s.clone(),
                        MapKey::Bool(b) => b.to_string(),
                        MapKey::I32(i) => i.to_string(),
                        MapKey::I64(i) => i.to_string(),
                        MapKey::U32(i) => i.to_string(),
                        MapKey::U64(i) => i.to_string(),
                    };
                    (key, value_json(x, &vk))
                })
                .collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Obj(members)
        }
        PV::Message(m) => {
            let d = m.descriptor();
            let get = |n: &str| match m.get_field_by_name(n).as_deref() {
                Some(PV::I32(i)) => i64::from(*i),
                Some(PV::I64(i)) => *i,
                Some(PV::U32(i)) => i64::from(*i),
                _ => 0,
            };
            match d.full_name() {
                "google.protobuf.Timestamp" => Json::Num((get("seconds") * 1000 + get("nanos") / 1_000_000).to_string()),
                "google.type.TimeOfDay" => {
                    Json::Num((((get("hours") * 60 + get("minutes")) * 60 + get("seconds")) * 1000 + get("nanos") / 1_000_000).to_string())
                }
                "google.type.Date" => {
                    let days = chrono_days(get("year"), get("month"), get("day"));
                    Json::Num(days.to_string())
                }
                "confluent.type.Decimal" => {
                    let raw = match m.get_field_by_name("value").as_deref() {
                        Some(PV::Bytes(b)) => b.to_vec(),
                        _ => Vec::new(),
                    };
                    let mut x: i128 = if raw.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
                    for b in &raw {
                        x = (x << 8) | i128::from(*b);
                    }
                    Json::Num(decimal_text(x, get("scale").max(0) as usize))
                }
                n if n.starts_with("google.protobuf.") && n.ends_with("Value") => {
                    let inner = d.get_field(1).expect("wrappers have field 1");
                    value_json(&m.get_field(&inner), &inner.kind())
                }
                _ => proto_to_json(m),
            }
        }
    }
}

/// The civil date of a day number (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn chrono_days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_dates() {
        assert_eq!(unscaled("1.1", 2).unwrap(), 110);
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(1234, 0), "1234");
        assert_eq!(chrono_days(1970, 1, 1), 0);
        assert_eq!(chrono_days(2020, 3, 1), 18322);
        assert_eq!(civil_from_days(18322), (2020, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn json_and_avro_round_trip_with_coercion() {
        let s = Avro::parse_str(r#"{"type":"record","name":"r","fields":[{"name":"A","type":["null","string"]},{"name":"b","type":"int","default":3}]}"#).unwrap();
        let n = names(&s);
        let v = json_to_avro(&super::super::json::parse(r#"{"a": 1}"#).unwrap(), &s, &n).unwrap();
        assert_eq!(avro_to_json(&v, &s, &n).to_string(), r#"{"A":"1","b":3}"#);
    }
}
