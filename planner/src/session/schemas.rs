//! Sources and sinks in the schema-registry formats (`AVRO`, `PROTOBUF`, `JSON_SR`): columns
//! inferred from the registry when a CREATE declares none, and the schemas Eddy registers for
//! what it writes, as ksqlDB does:
//!
//! - CREATE without value (key) columns takes them from `VALUE_SCHEMA_ID` (`KEY_SCHEMA_ID`) or
//!   the latest schema of subject `<topic>-value` (`<topic>-key`; a missing key subject means
//!   no key columns) and writes with that schema;
//! - CREATE with columns registers the schema generated from them when the subject has no
//!   schema yet, and otherwise writes with the subject's latest one;
//! - CREATE ... AS SELECT registers the generated schema (or uses `*_SCHEMA_ID`), so that a
//!   registry that refuses it as incompatible fails the statement.

use datafusion::arrow::datatypes::Fields;
use engine::format::{avro, json_sr, protobuf, FormatKind, FormatSpec, SchemaName};
use engine::registry::{subject_name, RegistryError, Schema, SchemaType, VersionRef};

use super::Session;
use crate::ast::ColumnKind;
use crate::catalog::Column;
use crate::error::{invalid, Result};

/// Which part of a record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Key,
    Value,
}

impl Part {
    fn noun(self) -> &'static str {
        match self {
            Part::Key => "keys",
            Part::Value => "values",
        }
    }
}

impl Session {
    /// Fills in the key and value columns of a CREATE that declares none for a registry format,
    /// and sets the formats' schema ids to the schemas they came from. Returns whether keys and
    /// values were inferred.
    pub(crate) fn infer_columns(
        &self,
        topic: &str,
        key_format: &mut FormatSpec,
        value_format: &mut FormatSpec,
        keys: &mut Vec<Column>,
        values: &mut Vec<Column>,
    ) -> Result<(bool, bool)> {
        let has_values = values.iter().any(|c| c.kind == ColumnKind::Value);
        for (part, spec, has) in [(Part::Key, &*key_format, !keys.is_empty()), (Part::Value, &*value_format, has_values)] {
            if has && spec.schema_id.is_some() {
                let prop = if part == Part::Key { "KEY_SCHEMA_ID" } else { "VALUE_SCHEMA_ID" };
                return Err(invalid(format!("Table elements and {prop} cannot both exist for create statement.")));
            }
        }
        let mut inferred = (false, false);
        if key_format.kind.uses_registry() && keys.is_empty() {
            if let Some((id, fields)) = self.fetch_fields(topic, Part::Key, key_format)? {
                key_format.schema_id = Some(id);
                keys.extend(fields.iter().map(|f| Column { name: f.name().clone(), data_type: f.data_type().clone(), kind: ColumnKind::Key }));
                inferred.0 = true;
            }
        }
        if value_format.kind.uses_registry() && !has_values {
            let Some((id, fields)) = self.fetch_fields(topic, Part::Value, value_format)? else {
                let subject = subject_name(topic, false);
                return Err(invalid(format!(
                    "Schema for message values on topic '{topic}' does not exist in the Schema Registry. Subject: {subject}"
                )));
            };
            value_format.schema_id = Some(id);
            values.extend(fields.iter().map(|f| Column { name: f.name().clone(), data_type: f.data_type().clone(), kind: ColumnKind::Value }));
            inferred.1 = true;
        }
        Ok(inferred)
    }

    /// The schema id and columns for one part: by the spec's schema id, else the subject's
    /// latest version; `None` when the subject has none.
    fn fetch_fields(&self, topic: &str, part: Part, spec: &FormatSpec) -> Result<Option<(u32, Fields)>> {
        let registry = self.eddy.inner.engine.registry();
        let subject = subject_name(topic, part == Part::Key);
        let (id, schema) = match spec.schema_id {
            Some(id) => (id, registry.schema_by_id(id).map_err(|e| registry_error(&e, topic, part))?),
            None => match registry.version(&subject, VersionRef::Latest) {
                Ok(v) => (v.id, v.schema),
                Err(RegistryError::SubjectNotFound { .. }) | Err(RegistryError::VersionNotFound { .. }) => return Ok(None),
                Err(e) => return Err(registry_error(&e, topic, part)),
            },
        };
        let want = spec.kind.schema_type().expect("registry format");
        if schema.schema_type != want {
            return Err(invalid(format!(
                "the schema of {} on topic '{topic}' (id {id}) is a {} schema, not {}",
                part.noun(),
                schema.schema_type.name(),
                want.name()
            )));
        }
        // A key is a single column; a value is one per field unless unwrapped.
        let (single, unwrapped) = match part {
            Part::Key => ("ROWKEY", true),
            Part::Value => ("ROWVAL", !spec.wrap_single_value),
        };
        // A schema named by id keeps its names; the latest one's are upper-cased, as ksqlDB does.
        let upper = spec.schema_id.is_none();
        let fields = match spec.kind {
            FormatKind::Avro => avro::infer_fields(&schema.schema, single, unwrapped, upper),
            FormatKind::JsonSr => json_sr::infer_fields(&schema.schema, single, unwrapped, upper),
            FormatKind::Protobuf => protobuf::references(registry, &schema)
                .and_then(|refs| protobuf::infer_fields(&schema.schema, &refs, spec.full_name.map(SchemaName::as_str), upper)),
            _ => unreachable!("registry formats only"),
        };
        let fields = fields.map_err(|e| invalid(format!("cannot infer the columns of {} on topic '{topic}' from schema id {id}: {e}", part.noun())))?;
        Ok(Some((id, fields)))
    }

    /// Sets the schema ids of a source with declared columns: the subject's latest schema when
    /// it has one, else the schema generated from the columns, registered.
    pub(crate) fn source_schemas(
        &self,
        topic: &str,
        key_format: &mut FormatSpec,
        value_format: &mut FormatSpec,
        key_fields: &Fields,
        value_fields: &Fields,
        inferred: (bool, bool),
    ) -> Result<()> {
        let registry = self.eddy.inner.engine.registry();
        for (part, spec, fields, done) in
            [(Part::Key, key_format, key_fields, inferred.0), (Part::Value, value_format, value_fields, inferred.1)]
        {
            if done || !spec.kind.uses_registry() || fields.is_empty() || spec.schema_id.is_some() {
                continue;
            }
            let subject = subject_name(topic, part == Part::Key);
            match registry.version(&subject, VersionRef::Latest) {
                Ok(v) => spec.schema_id = Some(v.id),
                Err(RegistryError::SubjectNotFound { .. }) => spec.schema_id = Some(self.register(topic, part, spec, fields)?),
                Err(e) => return Err(registry_error(&e, topic, part)),
            }
        }
        Ok(())
    }

    /// Registers the output schemas of a CREATE ... AS SELECT (unless `*_SCHEMA_ID` names them)
    /// and sets the formats' schema ids.
    pub(crate) fn sink_schemas(&self, topic: &str, key_format: &mut FormatSpec, value_format: &mut FormatSpec, key_fields: &Fields, value_fields: &Fields) -> Result<()> {
        for (part, spec, fields) in [(Part::Key, key_format, key_fields), (Part::Value, value_format, value_fields)] {
            if !spec.kind.uses_registry() || fields.is_empty() {
                continue;
            }
            match spec.schema_id {
                Some(_) => {
                    // The query's columns must be the schema's first fields, in order, with
                    // the same names and types; fields after them the writer fills in.
                    let (_, registered) = self.fetch_fields(topic, part, spec)?.expect("a schema id always names a schema");
                    let show = |c: &datafusion::arrow::datatypes::Field| format!("`{}` {}", c.name(), crate::types::type_name(c.data_type()));
                    let differ: Vec<String> = fields
                        .iter()
                        .enumerate()
                        .filter(|(i, c)| {
                            registered.get(*i).is_none_or(|r| r.name() != c.name() || crate::types::type_name(r.data_type()) != crate::types::type_name(c.data_type()))
                        })
                        .map(|(_, c)| show(c))
                        .collect();
                    if !differ.is_empty() {
                        let noun = if part == Part::Key { "key" } else { "value" };
                        let schema: Vec<String> = registered.iter().map(|c| show(c)).collect();
                        return Err(invalid(format!(
                            "The following {noun} columns are changed, missing or reordered: [{}]. Schema from schema registry is [{}]",
                            differ.join(", "),
                            schema.join(", ")
                        )));
                    }
                }
                None => spec.schema_id = Some(self.register(topic, part, spec, fields)?),
            }
        }
        Ok(())
    }

    fn register(&self, topic: &str, part: Part, spec: &FormatSpec, fields: &Fields) -> Result<u32> {
        let unwrapped = fields.len() == 1 && (part == Part::Key || !spec.wrap_single_value);
        let schema = match spec.kind {
            FormatKind::Avro => Schema::new(SchemaType::Avro, avro::generate(fields, unwrapped, spec.full_name.map(SchemaName::as_str)).to_string()),
            FormatKind::JsonSr => Schema::new(SchemaType::Json, json_sr::generate(fields, unwrapped).to_string()),
            FormatKind::Protobuf => Schema::new(SchemaType::Protobuf, protobuf::generate(fields, spec.full_name.map(SchemaName::as_str), spec.nullable)),
            _ => unreachable!("registry formats only"),
        };
        let subject = subject_name(topic, part == Part::Key);
        self.eddy.inner.engine.registry().register(&subject, &schema, None).map_err(|e| {
            invalid(format!("Could not register schema for topic: {e}"))
        })
    }
}

fn registry_error(e: &RegistryError, topic: &str, part: Part) -> crate::error::PlanError {
    invalid(format!("cannot read the schema of {} on topic '{topic}': {e}", part.noun()))
}
