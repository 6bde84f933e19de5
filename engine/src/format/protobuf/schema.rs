//! Protobuf schemas: compiling `.proto` text (with the schemas it imports, Google's well-known
//! types and the `google.type`/`confluent.type` messages ksqlDB uses) into descriptors at
//! runtime with `protox`, no `protoc`; ksqlDB's type mapping both ways; the `.proto` text Eddy
//! registers for a set of columns.
//!
//! Protobuf → SQL: int32/sint32/sfixed32 → INT; int64, uint32, uint64, sint64, fixed32, fixed64,
//! sfixed64 → BIGINT; float/double → DOUBLE; bool → BOOLEAN; string and enums → STRING; bytes →
//! BYTES; messages → STRUCT; repeated → ARRAY; map → MAP; `google.protobuf.Timestamp` →
//! TIMESTAMP; `google.type.Date` → DATE; `google.type.TimeOfDay` → TIME;
//! `confluent.type.Decimal` → DECIMAL; `google.protobuf.*Value` wrappers → their primitive.

use std::collections::BTreeMap;
use std::fmt::Write;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use prost_reflect::{DescriptorPool, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::format::types::map_fields;

/// The name the main file of a compiled schema gets.
const MAIN: &str = "__eddy_main.proto";

/// The `.proto` files of the types ksqlDB maps DATE, TIME and DECIMAL to, and Confluent's field
/// options (a DECIMAL's precision and scale).
const EXTRA: [(&str, &str); 4] = [
    (
        "confluent/meta.proto",
        "syntax = \"proto3\"; package confluent; import \"google/protobuf/descriptor.proto\"; \
         message Meta { string doc = 1; map<string, string> params = 2; repeated string tags = 3; } \
         extend google.protobuf.FieldOptions { Meta field_meta = 1001; } \
         extend google.protobuf.MessageOptions { Meta message_meta = 1001; } \
         extend google.protobuf.FileOptions { Meta file_meta = 1001; } \
         extend google.protobuf.EnumOptions { Meta enum_meta = 1001; } \
         extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1001; }",
    ),
    ("google/type/date.proto", "syntax = \"proto3\"; package google.type; message Date { int32 year = 1; int32 month = 2; int32 day = 3; }"),
    (
        "google/type/timeofday.proto",
        "syntax = \"proto3\"; package google.type; message TimeOfDay { int32 hours = 1; int32 minutes = 2; int32 seconds = 3; int32 nanos = 4; }",
    ),
    (
        "confluent/type/decimal.proto",
        "syntax = \"proto3\"; package confluent.type; import public \"confluent/meta.proto\"; message Decimal { bytes value = 1; uint32 precision = 2; int32 scale = 3; }",
    ),
];

/// How nullable columns are written (`*_PROTOBUF_NULLABLE_REPRESENTATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Nullable {
    /// proto3 plain fields: a null is written as the type's default (ksqlDB's default).
    #[default]
    Default,
    /// `optional` fields: nulls survive.
    Optional,
    /// `google.protobuf.*Value` wrappers: nulls survive.
    Wrapper,
}

/// In-memory `.proto` files by import path.
struct Sources(Vec<(String, String)>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((n, text)) => match descriptor(text) {
                Some(mut fdp) => {
                    fdp.name = Some(n.clone());
                    Ok(File::from_file_descriptor_proto(fdp))
                }
                None => File::from_source(n, text),
            },
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// A schema given as a base64 `FileDescriptorProto` (as Confluent's Python client registers
/// them) rather than `.proto` text.
fn descriptor(text: &str) -> Option<prost_reflect::prost_types::FileDescriptorProto> {
    use base64::Engine as _;
    use prost::Message as _;
    let t = text.trim();
    if t.is_empty() || t.contains(' ') || t.contains(';') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(t).ok()?;
    prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// Compiles `.proto` text whose imports are `refs` (import path, text), Google's well-known
/// types or the extra types above; returns the pool and the main file.
///
/// # Errors
/// The compiler's message when the text does not compile.
pub(crate) fn compile(text: &str, refs: &[(String, String)]) -> Result<(DescriptorPool, FileDescriptor), String> {
    let mut files = vec![(MAIN.to_string(), text.to_string())];
    files.extend(refs.iter().cloned());
    files.extend(EXTRA.iter().map(|(n, t)| (n.to_string(), t.to_string())));
    let mut chain = ChainFileResolver::new();
    chain.add(Sources(files));
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true);
    compiler.open_file(MAIN).map_err(|e| e.to_string())?;
    let pool = compiler.descriptor_pool();
    let file = pool.get_file_by_name(MAIN).ok_or_else(|| "the schema defines no file".to_string())?;
    Ok((pool, file))
}

/// The message of a schema to use: the one named `full_name` (with or without the package),
/// else the first one.
///
/// # Errors
/// When the schema has no such message.
pub(crate) fn message(file: &FileDescriptor, full_name: Option<&str>) -> Result<MessageDescriptor, String> {
    match full_name {
        None => file.messages().next().ok_or_else(|| "the schema defines no message".into()),
        Some(name) => {
            let pool = file.parent_pool();
            let pkg = file.package_name();
            let qualified = if pkg.is_empty() { name.to_string() } else { format!("{pkg}.{name}") };
            pool.get_message_by_name(name)
                .or_else(|| pool.get_message_by_name(&qualified))
                .ok_or_else(|| format!("the schema has no message {name}"))
        }
    }
}

/// The message indexes of `m` within its file: the path of positions from a top-level message.
pub(crate) fn indexes(m: &MessageDescriptor) -> Vec<i64> {
    let mut path = Vec::new();
    let mut cur = m.clone();
    loop {
        match cur.parent_message() {
            Some(p) => {
                path.push(p.child_messages().position(|c| c.full_name() == cur.full_name()).unwrap_or(0) as i64);
                cur = p;
            }
            None => {
                path.push(cur.parent_file().messages().position(|c| c.full_name() == cur.full_name()).unwrap_or(0) as i64);
                break;
            }
        }
    }
    path.reverse();
    path
}

/// The message a path of indexes names.
pub(crate) fn by_indexes(file: &FileDescriptor, path: &[i64]) -> Option<MessageDescriptor> {
    let first = usize::try_from(*path.first().unwrap_or(&0)).ok()?;
    let mut m = file.messages().nth(first)?;
    for i in path.iter().skip(1) {
        let next = m.child_messages().nth(usize::try_from(*i).ok()?)?;
        m = next;
    }
    Some(m)
}

/// Every field of every message of a schema (whose imports are `refs`), as `Message#number` →
/// type name, for compatibility checks.
///
/// # Errors
/// The compiler's message when the text does not compile.
pub fn proto_fields(text: &str, refs: &[(String, String)]) -> Result<BTreeMap<String, String>, String> {
    let (_, file) = compile(text, refs)?;
    let mut out = BTreeMap::new();
    let mut stack: Vec<_> = file.messages().collect();
    while let Some(m) = stack.pop() {
        for f in m.fields() {
            let kind = match f.kind() {
                Kind::Message(d) => d.full_name().to_string(),
                Kind::Enum(e) => e.full_name().to_string(),
                k => format!("{k:?}"),
            };
            let label = if f.is_list() { "repeated " } else { "" };
            out.insert(format!("{}#{}", m.full_name(), f.number()), format!("{label}{kind}"));
        }
        stack.extend(m.child_messages());
    }
    Ok(out)
}

/// The SQL type of a field's values (one element for repeated fields).
fn kind_type(f: &FieldDescriptor, upper: bool, depth: usize) -> Result<DataType, String> {
    if f.is_map() {
        let Kind::Message(entry) = f.kind() else { unreachable!("map fields are entry messages") };
        let k = entry.map_entry_key_field();
        if !matches!(k.kind(), Kind::String) {
            return Err("PROTOBUF format only supports MAP types with STRING keys".into());
        }
        let v = entry.map_entry_value_field();
        return Ok(crate::format::avro::map_of(Field::new("value", value_type(&v, upper, depth + 1)?, true)));
    }
    let one = value_type(f, upper, depth)?;
    Ok(if f.is_list() { DataType::List(Field::new("item", one, true).into()) } else { one })
}

fn value_type(f: &FieldDescriptor, upper: bool, depth: usize) -> Result<DataType, String> {
    Ok(match f.kind() {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => DataType::Int32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint32 | Kind::Uint64 | Kind::Fixed32 | Kind::Fixed64 => DataType::Int64,
        Kind::Float | Kind::Double => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::String | Kind::Enum(_) => DataType::Utf8,
        Kind::Bytes => DataType::Binary,
        Kind::Message(m) => match special(&m) {
            Some(Special::Timestamp) => DataType::Timestamp(TimeUnit::Millisecond, None),
            Some(Special::Date) => DataType::Date32,
            Some(Special::Time) => DataType::Time32(TimeUnit::Millisecond),
            Some(Special::Decimal) => {
                let (p, s) = decimal_params(f);
                DataType::Decimal128(p, s)
            }
            Some(Special::Wrapper) => value_type(&m.get_field(1).expect("wrappers have field 1"), upper, depth)?,
            None => DataType::Struct(message_fields(&m, upper, depth + 1)?),
        },
    })
}

/// The precision and scale of a `confluent.type.Decimal` field, from its
/// `(confluent.field_meta).params` options; DECIMAL(38, 0) without them.
fn decimal_params(f: &FieldDescriptor) -> (u8, i8) {
    let options = f.options();
    let Some(ext) = f.parent_pool().get_extension_by_name("confluent.field_meta") else { return (38, 0) };
    if !options.has_extension(&ext) {
        return (38, 0);
    }
    let meta = options.get_extension(&ext);
    let param = |name: &str| -> Option<i64> {
        let prost_reflect::Value::Message(m) = &*meta else { return None };
        let params = m.get_field_by_name("params")?;
        let prost_reflect::Value::Map(map) = &*params else { return None };
        map.get(&prost_reflect::MapKey::String(name.into()))?.as_str()?.parse().ok()
    };
    let p = param("precision").and_then(|p| u8::try_from(p).ok()).filter(|p| (1..=38).contains(p)).unwrap_or(38);
    let s = param("scale").and_then(|s| i8::try_from(s).ok()).filter(|s| *s >= 0 && *s as u8 <= p).unwrap_or(0);
    (p, s)
}

/// Messages with a SQL meaning of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    Timestamp,
    Date,
    Time,
    Decimal,
    Wrapper,
}

pub(crate) fn special(m: &MessageDescriptor) -> Option<Special> {
    Some(match m.full_name() {
        "google.protobuf.Timestamp" => Special::Timestamp,
        "google.type.Date" => Special::Date,
        "google.type.TimeOfDay" => Special::Time,
        "confluent.type.Decimal" => Special::Decimal,
        "google.protobuf.Int32Value" | "google.protobuf.Int64Value" | "google.protobuf.UInt32Value" | "google.protobuf.UInt64Value"
        | "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" | "google.protobuf.BoolValue" | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => Special::Wrapper,
        _ => return None,
    })
}

/// The columns of a message's fields (names upper-cased when `upper`).
pub(crate) fn message_fields(m: &MessageDescriptor, upper: bool, depth: usize) -> Result<Fields, String> {
    if depth > 32 {
        return Err("messages nest deeper than 32 levels (recursive messages are not supported)".into());
    }
    m.fields()
        .map(|f| {
            let name = if upper { f.name().to_uppercase() } else { f.name().to_string() };
            Ok(Field::new(name, kind_type(&f, upper, depth).map_err(|e| format!("field {}: {e}", f.name()))?, true))
        })
        .collect()
}

/// The `.proto` text ksqlDB generates for these columns: `message ConnectDefault1` with one
/// field per column numbered from 1, nested messages `ConnectDefault2`, ... for STRUCTs; a
/// single key column is a message of one field too (Protobuf has no bare values).
pub fn generate(fields: &Fields, full_name: Option<&str>, nullable: Nullable) -> String {
    let mut imports = std::collections::BTreeSet::new();
    let mut counter = 1;
    let (package, name) = match full_name.and_then(|n| n.rsplit_once('.')) {
        Some((p, n)) => (Some(p.to_string()), n.to_string()),
        None => (None, full_name.map_or_else(|| "ConnectDefault1".to_string(), str::to_string)),
    };
    let body = message_text(&name, fields, &mut counter, &mut imports, nullable, 0);
    let mut out = String::from("syntax = \"proto3\";\n\n");
    if let Some(p) = package {
        let _ = writeln!(out, "package {p};\n");
    }
    for i in &imports {
        let _ = writeln!(out, "import \"{i}\";");
    }
    if !imports.is_empty() {
        out.push('\n');
    }
    out.push_str(&body);
    out
}

fn message_text(
    name: &str,
    fields: &Fields,
    counter: &mut usize,
    imports: &mut std::collections::BTreeSet<&'static str>,
    nullable: Nullable,
    indent: usize,
) -> String {
    let pad = "  ".repeat(indent);
    let mut lines = String::new();
    let mut nested = String::new();
    for (i, f) in fields.iter().enumerate() {
        let (label, ty) = field_type(f.data_type(), counter, imports, nullable, &mut nested, indent + 1);
        let _ = writeln!(lines, "{pad}  {label}{ty} {} = {};", f.name(), i + 1);
    }
    format!("{pad}message {name} {{\n{lines}{nested}{pad}}}\n")
}

/// The label (`repeated `, `optional `) and type of a field of type `ty`; nested messages are
/// appended to `nested`.
fn field_type(
    ty: &DataType,
    counter: &mut usize,
    imports: &mut std::collections::BTreeSet<&'static str>,
    nullable: Nullable,
    nested: &mut String,
    indent: usize,
) -> (&'static str, String) {
    let scalar = |t: &str, wrapper: &str, imports: &mut std::collections::BTreeSet<&'static str>| match nullable {
        Nullable::Default => ("", t.to_string()),
        Nullable::Optional => ("optional ", t.to_string()),
        Nullable::Wrapper => {
            imports.insert("google/protobuf/wrappers.proto");
            ("", format!("google.protobuf.{wrapper}"))
        }
    };
    match ty {
        DataType::Boolean => scalar("bool", "BoolValue", imports),
        DataType::Int32 => scalar("int32", "Int32Value", imports),
        DataType::Int64 => scalar("int64", "Int64Value", imports),
        DataType::Float64 => scalar("double", "DoubleValue", imports),
        DataType::Utf8 => scalar("string", "StringValue", imports),
        DataType::Binary => scalar("bytes", "BytesValue", imports),
        DataType::Decimal128(..) => {
            imports.insert("confluent/type/decimal.proto");
            ("", "confluent.type.Decimal".into())
        }
        DataType::Date32 => {
            imports.insert("google/type/date.proto");
            ("", "google.type.Date".into())
        }
        DataType::Time32(_) => {
            imports.insert("google/type/timeofday.proto");
            ("", "google.type.TimeOfDay".into())
        }
        DataType::Timestamp(..) => {
            imports.insert("google/protobuf/timestamp.proto");
            ("", "google.protobuf.Timestamp".into())
        }
        DataType::List(item) => {
            let (_, t) = field_type(item.data_type(), counter, imports, Nullable::Default, nested, indent);
            ("repeated ", t)
        }
        DataType::Map(entries, _) => {
            let (_, v) = map_fields(entries).expect("map entries");
            let (_, t) = field_type(v.data_type(), counter, imports, Nullable::Default, nested, indent);
            ("", format!("map<string, {t}>"))
        }
        DataType::Struct(fs) => {
            *counter += 1;
            let name = format!("ConnectDefault{counter}");
            let text = message_text(&name, fs, counter, imports, nullable, indent);
            nested.push('\n');
            nested.push_str(&text);
            ("", name)
        }
        other => panic!("type {other} passed check_columns but has no Protobuf type"),
    }
}
