//! `AVRO`: Avro binary records framed the Confluent way (magic byte 0, 4-byte big-endian schema
//! id, then the datum), with their schemas in a schema registry.
//!
//! Decoding looks up each record's writer schema by id (cached per id with its compiled plan)
//! and reads the datum straight into the column builders (`decode.rs`); encoding writes every row
//! with the schema the sink's spec names by id (`encode.rs`). ksqlDB's type mapping and the
//! schemas it generates are in `schema.rs`.
//!
//! Stateless apart from the plan cache: nothing happens on watermarks or barriers.

mod decode;
mod encode;
mod schema;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema::Schema as Avro;
use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, Fields};

pub use schema::{generate, map_type as map_of, KSQL_NAMESPACE, KSQL_RECORD};

use super::builder::ColumnBuilder;
use super::{DecodeError, EncodeError, EncodedBatch, FormatError, RecordDecoder, RecordEncoder};
use crate::registry::{parse_avro, Registry, RegistryError, SchemaType};
pub(crate) use decode::Reader;
use decode::Plan;
pub(crate) use encode::long as write_long;
use encode::WPlan;
use schema::Names;

/// Confluent's framing: magic byte 0 and the schema id, big-endian.
pub(crate) fn frame(id: u32, out: &mut Vec<u8>) {
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
}

/// The schema id and payload of a Confluent-framed record.
pub(crate) fn unframe(b: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    if b.len() < 5 || b[0] != 0 {
        return Err(DecodeError::Framing { len: b.len(), first: b.first().copied() });
    }
    Ok((u32::from_be_bytes([b[1], b[2], b[3], b[4]]), &b[5..]))
}

/// Parses a registered schema, which must be Avro.
pub(crate) fn parse(registry: &Registry, id: u32) -> Result<Avro, RegistryError> {
    let s = registry.schema_by_id(id)?;
    if s.schema_type != SchemaType::Avro {
        return Err(RegistryError::InvalidSchema { schema_type: "AVRO", reason: format!("schema id {id} is a {} schema", s.schema_type.name()) });
    }
    parse_avro(&s.schema)
}

/// The columns ksqlDB infers from an Avro schema: a record's fields (upper-cased), or one column
/// `single` of the schema's type when it is not a record or `unwrapped` is set. Names are
/// upper-cased when `upper` (inference from a subject's latest schema; a schema named by id
/// keeps its names).
///
/// # Errors
/// When the schema does not parse or has types without a SQL type.
pub fn infer_fields(text: &str, single: &str, unwrapped: bool, upper: bool) -> Result<Fields, String> {
    let s = parse_avro(text).map_err(|e| e.to_string())?;
    let names = schema::names_of(&s);
    let top = match schema::non_null(&s, &names).as_slice() {
        [one] => (*one).clone(),
        _ => s.clone(),
    };
    match &top {
        Avro::Record(r) if !unwrapped => schema::record_fields(r, &names, 0, upper),
        other => Ok(vec![Field::new(single, schema::to_arrow(other, &names, 0, upper)?, true)].into()),
    }
}

/// See [`super::check_columns`]: Avro names and STRING map keys.
pub(crate) fn check_columns(fields: &Fields) -> Result<(), FormatError> {
    schema::check_avro_columns(fields).map_err(|(column, reason)| FormatError::Schema { column, reason })
}

/// A writer schema compiled against the columns.
enum Top {
    /// A record's fields into the columns.
    Row(Plan),
    /// One value into the single column.
    Single(Plan),
}

/// Decodes Confluent-framed Avro records.
pub(crate) struct AvroDecoder {
    fields: Fields,
    cols: Vec<ColumnBuilder>,
    unwrapped: bool,
    registry: Registry,
    plans: HashMap<u32, Arc<(Top, Names)>>,
    rows: usize,
    last_null: bool,
}

impl AvroDecoder {
    pub fn new(fields: &Fields, unwrapped: bool, registry: Registry) -> Self {
        AvroDecoder {
            fields: fields.clone(),
            cols: fields.iter().map(|f| ColumnBuilder::new(f)).collect(),
            unwrapped,
            registry,
            plans: HashMap::new(),
            rows: 0,
            last_null: false,
        }
    }

    fn plan(&mut self, id: u32) -> Result<Arc<(Top, Names)>, DecodeError> {
        if let Some(p) = self.plans.get(&id) {
            return Ok(p.clone());
        }
        let schema_err = |reason: String| DecodeError::Schema { id, reason };
        let w = parse(&self.registry, id).map_err(|e| schema_err(e.to_string()))?;
        let names = schema::names_of(&w);
        let top = if self.unwrapped {
            Top::Single(decode::compile(&w, &self.fields[0], &names).map_err(schema_err)?)
        } else {
            let rec = schema::non_null(&w, &names).into_iter().find_map(|b| match b {
                Avro::Record(r) => Some(r.clone()),
                _ => None,
            });
            let rec = rec.ok_or_else(|| schema_err("the schema is not a record, so it cannot fill several columns (set WRAP_SINGLE_VALUE=false for one column)".into()))?;
            let fields = decode::compile_record(&rec, &self.fields, &names, 0).map_err(schema_err)?;
            // A top-level union with null: the null branch is a null value.
            match &w {
                Avro::Union(u) => Top::Row(Plan::Union(
                    u.variants().iter().map(|b| if matches!(b, Avro::Null) { Plan::Null } else { fields.clone() }).collect(),
                )),
                _ => Top::Row(fields),
            }
        };
        let p = Arc::new((top, names));
        self.plans.insert(id, p.clone());
        Ok(p)
    }

    fn decode(&mut self, b: &[u8]) -> Result<(), DecodeError> {
        let (id, payload) = unframe(b)?;
        let plan = self.plan(id)?;
        let (top, names) = &*plan;
        let mut r = Reader { b: payload, pos: 0 };
        let field_err = |name: &str, p: super::builder::Problem| DecodeError::Schema { id, reason: format!("field \"{}\": {}", p.field(name), p.reason) };
        match top {
            Top::Single(p) => decode::read(p, &mut r, &mut self.cols[0], names).map_err(|e| field_err(self.fields[0].name(), e))?,
            Top::Row(p) => {
                let p = match p {
                    Plan::Union(branches) => {
                        let i = r.long().map_err(|e| field_err("", e))?;
                        match usize::try_from(i).ok().and_then(|i| branches.get(i)) {
                            Some(Plan::Null) => {
                                self.last_null = true;
                                self.cols.iter_mut().for_each(ColumnBuilder::append_masked_null);
                                return Ok(());
                            }
                            Some(p) => p,
                            None => return Err(DecodeError::Schema { id, reason: format!("invalid Avro union index {i}") }),
                        }
                    }
                    p => p,
                };
                let Plan::Record { fields, missing } = p else { unreachable!("rows are records") };
                decode::read_fields(fields, missing, &mut r, &mut self.cols, names).map_err(|(i, e)| field_err(self.fields[i].name(), e))?;
            }
        }
        if r.pos != payload.len() {
            return Err(DecodeError::Schema { id, reason: format!("{} bytes left after the Avro datum", payload.len() - r.pos) });
        }
        Ok(())
    }
}

impl RecordDecoder for AvroDecoder {
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

/// Encodes rows as Confluent-framed Avro with one registered schema.
pub(crate) struct AvroEncoder {
    id: u32,
    plan: WPlan,
    /// Whether the plan writes a record from all columns (else the single column's value).
    row: bool,
}

impl AvroEncoder {
    /// An encoder writing with schema `id`.
    pub fn new(fields: &Fields, unwrapped: bool, registry: &Registry, id: u32) -> Result<Self, FormatError> {
        let w = parse(registry, id).map_err(|e| FormatError::Registry { id: Some(id), reason: e.to_string() })?;
        let names = schema::names_of(&w);
        let bad = |reason: String| FormatError::Registry { id: Some(id), reason: format!("the schema cannot be written from these columns: {reason}") };
        let (plan, row) = if unwrapped {
            (encode::compile(&w, fields[0].data_type(), &names).map_err(bad)?, false)
        } else {
            (encode::compile(&w, &DataType::Struct(fields.clone()), &names).map_err(bad)?, true)
        };
        Ok(AvroEncoder { id, plan, row })
    }
}

impl RecordEncoder for AvroEncoder {
    fn encode_rows(&mut self, columns: &[ArrayRef], rows: usize, out: &mut EncodedBatch) -> Result<(), EncodeError> {
        for row in 0..rows {
            // A null key or bare value is no bytes at all.
            if !self.row && columns[0].is_null(row) {
                out.push_null();
                continue;
            }
            let buf = out.buffer();
            frame(self.id, buf);
            let res = if self.row {
                let (fields, branch) = match &self.plan {
                    WPlan::Record(fields) => (fields, None),
                    WPlan::Union { branches, value, .. } => match &branches[*value] {
                        WPlan::Record(fields) => (fields, Some(*value)),
                        _ => unreachable!("compiled against a STRUCT"),
                    },
                    _ => unreachable!("compiled against a STRUCT"),
                };
                if let Some(b) = branch {
                    encode::long(buf, b as i64);
                }
                encode::write_record(fields, columns, row, buf)
            } else {
                encode::write(&self.plan, &columns[0], row, buf)
            };
            if let Err(reason) = res {
                out.push_null();
                return Err(EncodeError::Value { row, reason: format!("schema id {}: {reason}", self.id) });
            }
            out.end_entry();
        }
        Ok(())
    }
}
