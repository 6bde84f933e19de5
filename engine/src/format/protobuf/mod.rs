//! `PROTOBUF` and `PROTOBUF_NOSR`: Protobuf messages, framed the Confluent way (magic byte 0,
//! 4-byte schema id, the message's indexes within its schema, then the message) with schemas in
//! the registry, or bare with the message derived from the columns.
//!
//! Messages are decoded with `prost-reflect` against descriptors compiled at runtime (`schema.rs`)
//! and moved into the column builders field by field (`codec.rs`); keys are messages too, even
//! with one column, since Protobuf has no bare values. Stateless apart from the descriptor cache:
//! nothing happens on watermarks or barriers.

mod codec;
mod schema;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Fields};
use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor};

pub use schema::{generate, proto_fields, Nullable};

use super::avro::{frame, unframe};
use super::builder::{ColumnBuilder, Problem};
use super::{DecodeError, EncodeError, EncodedBatch, FormatError, FormatSpec, RecordDecoder, RecordEncoder, SchemaName};
use crate::registry::{Registry, RegistryError, SchemaType, VersionRef};

/// The compiled schema of an id, with its `.proto` file.
fn file_of(registry: &Registry, id: u32) -> Result<prost_reflect::FileDescriptor, String> {
    let s = registry.schema_by_id(id).map_err(|e| e.to_string())?;
    if s.schema_type != SchemaType::Protobuf {
        return Err(format!("schema id {id} is a {} schema, not PROTOBUF", s.schema_type.name()));
    }
    let mut refs = Vec::new();
    let mut todo = s.references.clone();
    while let Some(r) = todo.pop() {
        if refs.iter().any(|(n, _): &(String, String)| *n == r.name) {
            continue;
        }
        let v = registry.version(&r.subject, VersionRef::Number(r.version)).map_err(|e: RegistryError| e.to_string())?;
        todo.extend(v.schema.references.clone());
        refs.push((r.name.clone(), v.schema.schema));
    }
    schema::compile(&s.schema, &refs).map(|(_, f)| f)
}

/// The columns ksqlDB infers from a Protobuf schema: the fields of message `message` (default:
/// the first), names upper-cased when `upper`. Protobuf values are always messages, so
/// `single` and `unwrapped` only matter for a message with no fields.
///
/// # Errors
/// When the schema does not compile, lacks the message or has types without a SQL type.
pub fn infer_fields(text: &str, refs: &[(String, String)], message: Option<&str>, upper: bool) -> Result<Fields, String> {
    let (_, file) = schema::compile(text, refs)?;
    let m = schema::message(&file, message)?;
    schema::message_fields(&m, upper, 0)
}

/// The `.proto` texts a schema imports, from the registry (import path, text).
///
/// # Errors
/// When a referenced version is missing.
pub fn references(registry: &Registry, s: &crate::registry::Schema) -> Result<Vec<(String, String)>, String> {
    let mut refs = Vec::new();
    for r in &s.references {
        let v = registry.version(&r.subject, VersionRef::Number(r.version)).map_err(|e| e.to_string())?;
        refs.extend(references(registry, &v.schema)?);
        refs.push((r.name.clone(), v.schema.schema));
    }
    Ok(refs)
}

/// See [`super::check_columns`]: map keys are strings.
pub(crate) fn check_columns(fields: &Fields) -> Result<(), FormatError> {
    fn check(name: &str, ty: &DataType) -> Result<(), FormatError> {
        match ty {
            DataType::Map(entries, _) => {
                let DataType::Struct(kv) = entries.data_type() else { return Ok(()) };
                if kv[0].data_type() != &DataType::Utf8 {
                    return Err(FormatError::Schema { column: name.into(), reason: "PROTOBUF format only supports MAP types with STRING keys".into() });
                }
                check(name, kv[1].data_type())
            }
            DataType::List(item) => check(name, item.data_type()),
            DataType::Struct(fs) => fs.iter().try_for_each(|f| check(f.name(), f.data_type())),
            _ => Ok(()),
        }
    }
    fields.iter().try_for_each(|f| check(f.name(), f.data_type()))
}

/// The message of registered schema `id`: at message indexes `path`, or named `full_name`,
/// or the first.
///
/// # Errors
/// When the schema is missing, does not compile or has no such message.
pub fn message_descriptor(registry: &Registry, id: u32, path: Option<&[i64]>, full_name: Option<&str>) -> Result<MessageDescriptor, String> {
    let file = file_of(registry, id)?;
    match path {
        Some(p) => schema::by_indexes(&file, p).ok_or_else(|| format!("no message at indexes {p:?}")),
        None => schema::message(&file, full_name),
    }
}

/// The message indexes of a message within its file.
pub fn indexes(m: &MessageDescriptor) -> Vec<i64> {
    schema::indexes(m)
}

/// Reads Confluent's message indexes: a zig-zag varint count then the indexes; a lone 0 is `[0]`.
///
/// # Errors
/// When the bytes end early or the count is implausible.
pub fn read_indexes(b: &[u8]) -> Result<(Vec<i64>, &[u8]), String> {
    read_indexes_at(b).map_err(|p| p.reason)
}

fn read_indexes_at(b: &[u8]) -> Result<(Vec<i64>, &[u8]), Problem> {
    let mut r = super::avro::Reader { b, pos: 0 };
    let n = r.long()?;
    if n == 0 {
        return Ok((vec![0], &b[r.pos..]));
    }
    if !(0..=64).contains(&n) {
        return Err(Problem::new(format!("invalid message index count {n}")));
    }
    let path = (0..n).map(|_| r.long()).collect::<Result<Vec<_>, _>>()?;
    Ok((path, &b[r.pos..]))
}

/// Writes Confluent's message indexes.
pub fn write_indexes(path: &[i64], out: &mut Vec<u8>) {
    if path == [0] {
        out.push(0);
        return;
    }
    super::avro::write_long(out, path.len() as i64);
    for i in path {
        super::avro::write_long(out, *i);
    }
}

/// How to read one message type: its descriptor and, per column, the field it comes from.
type Plan = (MessageDescriptor, Vec<Option<FieldDescriptor>>);

/// Decodes Protobuf records.
pub(crate) struct ProtobufDecoder {
    fields: Fields,
    cols: Vec<ColumnBuilder>,
    registry: Option<Registry>,
    /// PROTOBUF_NOSR: the message generated from the columns.
    fixed: Option<Plan>,
    plans: HashMap<(u32, Vec<i64>), Plan>,
    rows: usize,
    last_null: bool,
}

impl ProtobufDecoder {
    /// A decoder of `fields`, by the registry's schema ids or (without a registry) PROTOBUF_NOSR's message.
    pub fn boxed(fields: &Fields, _unwrapped: bool, registry: Option<Registry>, spec: &FormatSpec) -> Result<Box<dyn RecordDecoder>, FormatError> {
        let fixed = match &registry {
            Some(_) => None,
            None => {
                let m = nosr_message(fields, spec)?;
                let matched = codec::match_fields(&m, fields);
                Some((m, matched))
            }
        };
        Ok(Box::new(ProtobufDecoder {
            fields: fields.clone(),
            cols: fields.iter().map(|f| ColumnBuilder::new(f)).collect(),
            registry,
            fixed,
            plans: HashMap::new(),
            rows: 0,
            last_null: false,
        }))
    }

    fn decode(&mut self, b: &[u8]) -> Result<(), DecodeError> {
        let (id, payload, plan) = match &self.fixed {
            Some(p) => (None, b, p.clone()),
            None => {
                let (id, rest) = unframe(b)?;
                let schema_err = |reason: String| DecodeError::Schema { id, reason };
                let (path, payload) = read_indexes_at(rest).map_err(|p| schema_err(p.reason))?;
                let key = (id, path);
                if !self.plans.contains_key(&key) {
                    let registry = self.registry.as_ref().expect("registry decoders have a registry");
                    let file = file_of(registry, id).map_err(schema_err)?;
                    let m = schema::by_indexes(&file, &key.1).ok_or_else(|| schema_err(format!("no message at indexes {:?}", key.1)))?;
                    let matched = codec::match_fields(&m, &self.fields);
                    self.plans.insert(key.clone(), (m, matched));
                }
                (Some(id), payload, self.plans[&key].clone())
            }
        };
        let err = |reason: String| match id {
            Some(id) => DecodeError::Schema { id, reason },
            None => DecodeError::Protobuf { reason },
        };
        let (desc, matched) = plan;
        let msg = DynamicMessage::decode(desc.clone(), payload).map_err(|e| err(format!("invalid {} message: {e}", desc.name())))?;
        codec::append_message(&msg, &matched, &mut self.cols)
            .map_err(|(i, p)| err(format!("field \"{}\": {}", p.field(self.fields[i].name()), p.reason)))
    }
}

/// The message of PROTOBUF_NOSR: generated from the columns.
///
/// # Errors
/// When the generated schema does not compile (a bug) or lacks the named message.
pub fn nosr_descriptor(fields: &Fields, spec: &FormatSpec) -> Result<MessageDescriptor, FormatError> {
    nosr_message(fields, spec)
}

fn nosr_message(fields: &Fields, spec: &FormatSpec) -> Result<MessageDescriptor, FormatError> {
    let text = generate(fields, spec.full_name.map(SchemaName::as_str), spec.nullable);
    let (_, file) = schema::compile(&text, &[]).map_err(|reason| FormatError::Registry { id: None, reason })?;
    schema::message(&file, spec.full_name.map(SchemaName::as_str).map(|n| n.rsplit('.').next().unwrap_or(n)))
        .map_err(|reason| FormatError::Registry { id: None, reason })
}

impl RecordDecoder for ProtobufDecoder {
    fn append(&mut self, bytes: Option<&[u8]>) -> Result<(), DecodeError> {
        self.last_null = false;
        let res = match bytes {
            Some(b) => self.decode(b),
            None => {
                self.last_null = true;
                self.cols.iter_mut().for_each(ColumnBuilder::append_masked_null);
                Ok(())
            }
        };
        if res.is_err() {
            self.last_null = false;
            for c in &mut self.cols {
                c.truncate(self.rows);
                c.append_masked_null();
            }
        }
        self.rows += 1;
        res
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        self.cols.iter_mut().map(ColumnBuilder::finish).collect()
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn last_was_null(&self) -> bool {
        self.last_null
    }
}

/// Encodes rows as Protobuf messages.
pub(crate) struct ProtobufEncoder {
    fields: Fields,
    desc: MessageDescriptor,
    /// Schema id and message indexes, for framed records.
    framing: Option<(u32, Vec<i64>)>,
    /// Keys whose columns are all null are null keys (no message), as ksqlDB writes them.
    key: bool,
}

impl ProtobufEncoder {
    /// An encoder of `fields` with the registered schema `id` or (without a registry) PROTOBUF_NOSR's message.
    pub fn boxed(fields: &Fields, key: bool, registry: Option<(&Registry, u32)>, spec: &FormatSpec) -> Result<Box<dyn RecordEncoder>, FormatError> {
        let (desc, framing) = match registry {
            None => (nosr_message(fields, spec)?, None),
            Some((registry, id)) => {
                let bad = |reason: String| FormatError::Registry { id: Some(id), reason };
                let file = file_of(registry, id).map_err(bad)?;
                let m = schema::message(&file, spec.full_name.map(SchemaName::as_str)).map_err(bad)?;
                let path = schema::indexes(&m);
                (m, Some((id, path)))
            }
        };
        Ok(Box::new(ProtobufEncoder { fields: fields.clone(), desc, framing, key }))
    }
}

impl RecordEncoder for ProtobufEncoder {
    fn encode_rows(&mut self, columns: &[ArrayRef], rows: usize, out: &mut EncodedBatch) -> Result<(), EncodeError> {
        for row in 0..rows {
            if self.key && columns.iter().all(|c| c.is_null(row)) {
                out.push_null();
                continue;
            }
            let msg = codec::message_of(&self.desc, &self.fields, columns, row).map_err(|reason| EncodeError::Value {
                row,
                reason: match &self.framing {
                    Some((id, _)) => format!("schema id {id}: {reason}"),
                    None => reason,
                },
            })?;
            let buf = out.buffer();
            if let Some((id, path)) = &self.framing {
                frame(*id, buf);
                write_indexes(path, buf);
            }
            msg.encode(buf).expect("a Vec grows as needed");
            out.end_entry();
        }
        Ok(())
    }
}
