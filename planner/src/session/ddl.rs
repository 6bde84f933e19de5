//! CREATE STREAM/TABLE (with columns), DROP STREAM/TABLE, CREATE/DROP TYPE.

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use engine::format::{check_columns, FormatKind, FormatSpec, Role};
use storage::{CleanupPolicy, TopicConfig};

use super::props::{WithProps, SOURCE_PROPS};
use super::{Output, Session};
use crate::ast::{ColumnKind, CreateSource, SourceType};
use crate::catalog::{Column, SourceDef, TimestampDef, WindowType};
use crate::error::{invalid, PlanError, Result};
use crate::plan::names::RESERVED;
use crate::types::{type_name, SqlType};

/// The session property saying whether single value columns are wrapped by default.
pub(crate) const WRAP_SINGLE_VALUES: &str = "ksql.persistence.wrap.single.values";

/// The session property naming the key format of new sources whose WITH clause gives none.
pub(crate) const DEFAULT_KEY_FORMAT: &str = "ksql.persistence.default.format.key";

impl Session {
    /// A format named by a session property (`ksql.persistence.default.format.*`), if set.
    pub(crate) fn default_format(&self, prop: &str) -> Result<Option<FormatKind>> {
        self.properties().get(prop).map(|f| super::props::format_kind(f)).transpose()
    }

    pub(crate) fn create_source(&mut self, c: &CreateSource, sql: &str) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let _ddl = inner.ddl.lock();
        let existing = inner.catalog.read().sources.get(&c.name).cloned();
        if c.or_replace && (c.is_source || existing.as_ref().is_some_and(|e| e.is_source)) && !c.if_not_exists {
            return Err(invalid(format!(
                "Cannot add {} '{}': CREATE OR REPLACE is not supported on source {}s.",
                c.source_type.noun(),
                c.name,
                c.source_type.noun()
            )));
        }
        if let Some(e) = &existing {
            if c.if_not_exists {
                return Ok(Output::Message(format!("A {} with the same name already exists", e.source_type.noun())));
            }
            if !c.or_replace {
                return Err(PlanError::AlreadyExists { kind: e.source_type.noun(), name: c.name.clone() });
            }
            if e.is_source || c.is_source {
                return Err(invalid(format!(
                    "Cannot add {} '{}': CREATE OR REPLACE is not supported on source {}s.",
                    c.source_type.noun(),
                    c.name,
                    c.source_type.noun()
                )));
            }
            if e.source_type != c.source_type {
                return Err(invalid(format!("Cannot replace {} \"{}\" with a {}", e.source_type.noun(), c.name, c.source_type.noun())));
            }
        }
        let w = WithProps::parse(&c.props, SOURCE_PROPS)?;
        let topic = w.topic.clone().ok_or_else(|| invalid("Missing required property \"KAFKA_TOPIC\" which has no default value."))?;
        let types = inner.catalog.read().types.clone();

        // Columns: key columns first, then the rest in declared order.
        let mut keys = Vec::new();
        let mut others = Vec::new();
        for col in &c.columns {
            if RESERVED.contains(&col.name.as_str()) {
                return Err(invalid(format!("'{}' is a reserved column name. You cannot use it as a name for a column.", col.name)));
            }
            if keys.iter().chain(others.iter()).any(|x: &Column| x.name == col.name) {
                return Err(invalid(format!("Duplicate column names: {}", col.name)));
            }
            let dt = col.data_type.to_arrow(&types)?;
            match &col.kind {
                ColumnKind::Headers if dt != engine::runtime::headers_type() => {
                    return Err(invalid(format!(
                        "Invalid type for HEADERS column {}: expected ARRAY<STRUCT<`KEY` STRING, `VALUE` BYTES>>, got {}",
                        col.name,
                        type_name(&dt)
                    )))
                }
                ColumnKind::Header(_) if dt != DataType::Binary => {
                    return Err(invalid(format!("Invalid type for HEADER('...') column {}: expected BYTES, got {}", col.name, type_name(&dt))))
                }
                _ => {}
            }
            let column = Column { name: col.name.clone(), data_type: dt, kind: col.kind.clone() };
            if col.kind == ColumnKind::Key {
                keys.push(column);
            } else {
                others.push(column);
            }
        }
        if c.columns.iter().filter(|x| x.kind == ColumnKind::Headers).count() > 1 {
            return Err(invalid("a source can have only one HEADERS column"));
        }
        for k in &keys {
            if contains_map(&k.data_type) {
                return Err(invalid(format!(
                    "Map keys, including types that contain maps, are not supported as they may lead to unexpected behavior due to inconsistent serialization. Key column name: `{}`. Column type: {}. See https://github.com/confluentinc/ksql/issues/6621 for more.",
                    k.name,
                    type_name(&k.data_type)
                )));
            }
        }
        let value_kind = w.value_format.or(self.default_format("ksql.persistence.default.format.value")?).ok_or_else(|| {
            invalid("Statement is missing the 'VALUE_FORMAT' property from the WITH clause. Either provide one or set a default via the 'ksql.persistence.default.format.value' config.")
        })?;
        let default_key = if keys.is_empty() {
            FormatKind::None
        } else {
            self.default_format(DEFAULT_KEY_FORMAT)?.unwrap_or(FormatKind::Kafka)
        };
        let key_format = w.key_spec(FormatSpec::new(default_key));
        let mut key_format = if keys.is_empty() && key_format.kind == FormatKind::Kafka { FormatSpec::none() } else { key_format };
        let mut value_format = w.value_spec(FormatSpec::new(value_kind).with_wrap_single_value(self.flag(WRAP_SINGLE_VALUES, true)));
        w.check_delimiters(&key_format, &value_format)?;
        if c.columns.is_empty() && !value_format.kind.uses_registry() {
            return Err(invalid("No columns supplied."));
        }
        let inferred = self.infer_columns(&topic, &mut key_format, &mut value_format, &mut keys, &mut others)?;
        if c.source_type == SourceType::Table && keys.is_empty() {
            return Err(invalid("Tables require a PRIMARY KEY. Please define the PRIMARY KEY."));
        }
        let columns: Vec<Column> = keys.into_iter().chain(others).collect();
        let key_fields: Fields = columns.iter().filter(|x| x.is_key()).map(|x| Field::new(&x.name, x.data_type.clone(), true)).collect();
        let value_fields: Fields =
            columns.iter().filter(|x| x.kind == ColumnKind::Value).map(|x| Field::new(&x.name, x.data_type.clone(), true)).collect();
        check_formats(&key_format, &value_format, &key_fields, &value_fields, w.wrap_single_value)?;
        self.source_schemas(&topic, &mut key_format, &mut value_format, &key_fields, &value_fields, inferred)?;
        let timestamp = match &w.timestamp {
            Some(col) => {
                let column = columns.iter().find(|x| &x.name == col).ok_or_else(|| {
                    invalid(format!("The TIMESTAMP column set in the WITH clause does not exist in the schema: '{col}'"))
                })?;
                match (&column.data_type, &w.timestamp_format) {
                    (DataType::Int64 | DataType::Timestamp(_, _), _) | (DataType::Utf8, Some(_)) => {}
                    (DataType::Utf8, None) => {
                        return Err(invalid(format!("TIMESTAMP column {col} is a STRING: set TIMESTAMP_FORMAT too")))
                    }
                    (other, _) => {
                        return Err(invalid(format!(
                            "Timestamp column, {col}, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified. Got {}",
                            type_name(other)
                        )))
                    }
                }
                Some(TimestampDef { column: col.clone(), format: w.timestamp_format.clone() })
            }
            None => {
                if w.timestamp_format.is_some() {
                    return Err(invalid("TIMESTAMP_FORMAT needs TIMESTAMP"));
                }
                None
            }
        };
        let window = source_window(w.window_type.as_deref(), w.window_size.as_deref())?;
        if window.is_some() && !columns.iter().any(|x| x.is_key()) {
            return Err(invalid("Windowed sources require a key column."));
        }

        // The topic: created when PARTITIONS is given and it does not exist.
        let log = inner.engine.log().clone();
        let mut created_topic = false;
        let mut partitions = w.partitions.unwrap_or(1);
        match log.describe_topic(&topic) {
            Ok(info) => {
                partitions = info.config.partitions;
                if !self.replaying {
                    w.check_existing_topic(&topic, &info.config)?;
                }
                if let Some(p) = w.partitions {
                    if p != info.config.partitions && !self.replaying {
                        return Err(invalid(format!(
                            "A Kafka topic with the name '{topic}' already exists, with different partition/replica configuration than required. KSQL expects {p} partitions (topic has {}).",
                            info.config.partitions
                        )));
                    }
                }
            }
            Err(_) => match w.partitions {
                Some(p) => {
                    let mut cfg = TopicConfig::new(p);
                    if c.source_type == SourceType::Table {
                        cfg.cleanup_policy = CleanupPolicy::Compact;
                    }
                    log.create_topic(&topic, &w.topic_config(cfg))?;
                    created_topic = true;
                }
                None if self.replaying => {}
                None => {
                    return Err(invalid(format!(
                        "Kafka topic does not exist: {topic}: give PARTITIONS in the WITH clause to create it"
                    )))
                }
            },
        }
        let def = SourceDef {
            name: c.name.clone(),
            source_type: c.source_type,
            topic: topic.clone(),
            partitions,
            columns,
            key_format,
            value_format,
            timestamp,
            window,
            is_source: c.is_source,
            materialized: c.is_source && c.source_type == SourceType::Table,
            written_by: existing.as_ref().and_then(|e| e.written_by.clone()),
            sql: sql.to_string(),
            error_topic: w.error_topic.clone(),
            late_topic: w.late_topic.clone(),
        };
        for t in [&def.error_topic, &def.late_topic].into_iter().flatten() {
            if *t == topic {
                return Err(invalid(format!("{t} cannot be both the topic of {} and its ERROR_TOPIC or LATE_TOPIC", c.name)));
            }
        }
        // Check the source can be planned (timestamp expression etc.) before committing to it.
        {
            let mut cat = inner.catalog.read().clone();
            cat.sources.insert(def.name.clone(), def.clone());
            if let Err(e) = crate::plan::source::plan_source(&def, &def.name, false, &cat, &inner.functions) {
                if created_topic {
                    let _ = log.delete_topic(&topic);
                }
                return Err(e);
            }
        }
        if let Err(e) = self.log_command(sql, None) {
            if created_topic {
                let _ = log.delete_topic(&topic);
            }
            return Err(e);
        }
        inner.catalog.write().sources.insert(def.name.clone(), def.clone());
        if def.materialized {
            self.materialize_source_table(&def, sql)?;
        }
        let noun = if c.source_type == SourceType::Stream { "Stream" } else { "Table" };
        Ok(Output::Message(format!("{noun} created")))
    }

    pub(crate) fn drop_source(
        &mut self,
        source_type: SourceType,
        name: &str,
        if_exists: bool,
        delete_topic: bool,
        sql: &str,
    ) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let _ddl = inner.ddl.lock();
        let def = match inner.catalog.read().sources.get(name) {
            Some(d) => d.clone(),
            None if if_exists => return Ok(Output::Message(format!("Source `{name}` does not exist."))),
            None => return Err(PlanError::UnknownObject { kind: source_type.noun(), name: name.to_string() }),
        };
        if def.source_type != source_type {
            return Err(invalid(format!(
                "Incompatible data source type is {}, but statement was DROP {}",
                def.source_type.noun().to_uppercase(),
                source_type.noun().to_uppercase()
            )));
        }
        if !self.replaying {
            let cat = inner.catalog.read();
            let readers = cat.readers_of(name);
            if !readers.is_empty() {
                return Err(invalid(format!(
                    "Cannot drop {name}.\nThe following queries read from this source: [{}].\nThe following queries write into this source: [{}].\nYou need to terminate them before dropping {name}.",
                    readers.join(", "),
                    cat.writers_of(name).join(", ")
                )));
            }
        }
        if delete_topic && def.is_source {
            return Err(invalid(format!("Cannot delete topic for read-only source: {name}")));
        }
        // A query writing it (CSAS/CTAS) stops with it.
        let writers = inner.catalog.read().writers_of(name);
        for q in &writers {
            let _ = inner.engine.stop_query(q, true);
            super::queries::delete_internal_topics(self, q);
        }
        self.log_command(sql, None)?;
        {
            let mut cat = inner.catalog.write();
            cat.sources.remove(name);
            for q in &writers {
                cat.queries.remove(q);
            }
        }
        if def.materialized {
            let p = engine::materialized::table_prefix(name);
            let mut b = storage::StateBatch::new();
            b.delete_range(&p, &engine::runtime::keys::prefix_end(&p));
            inner.engine.state().commit(&b, false)?;
        }
        if delete_topic {
            let others_use_it = inner.catalog.read().sources.values().any(|s| s.topic == def.topic);
            if !others_use_it {
                let _ = inner.engine.log().delete_topic(&def.topic);
            }
        }
        Ok(Output::Message(format!("Source `{name}` (topic: {}) was dropped.", def.topic)))
    }

    pub(crate) fn create_type(&mut self, name: &str, t: &SqlType, if_not_exists: bool, sql: &str) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let _ddl = inner.ddl.lock();
        if inner.catalog.read().types.contains_key(name) {
            if if_not_exists {
                return Ok(Output::Message(format!("Type {name} already exists")));
            }
            return Err(PlanError::AlreadyExists { kind: "type", name: name.to_string() });
        }
        let types = inner.catalog.read().types.clone();
        t.to_arrow(&types)?;
        self.log_command(sql, None)?;
        inner.catalog.write().types.insert(name.to_string(), t.clone());
        Ok(Output::Message(format!("Registered custom type with name '{name}' and SQL type {t}")))
    }

    pub(crate) fn drop_type(&mut self, name: &str, if_exists: bool, sql: &str) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let _ddl = inner.ddl.lock();
        if !inner.catalog.read().types.contains_key(name) {
            if if_exists {
                return Ok(Output::Message(format!("Type {name} does not exist")));
            }
            return Err(PlanError::UnknownObject { kind: "type", name: name.to_string() });
        }
        self.log_command(sql, None)?;
        inner.catalog.write().types.remove(name);
        Ok(Output::Message(format!("Dropped type '{name}'")))
    }
}

/// Checks that the formats can carry these key and value columns.
pub(crate) fn check_formats(
    key_format: &FormatSpec,
    value_format: &FormatSpec,
    key_fields: &Fields,
    value_fields: &Fields,
    wrap_single_value: Option<bool>,
) -> Result<()> {
    check_columns(key_format, Role::Key, key_fields).map_err(|e| invalid(e.to_string()))?;
    check_columns(value_format, Role::Value, value_fields).map_err(|e| invalid(e.to_string()))?;
    if wrap_single_value.is_some() && value_fields.len() != 1 {
        return Err(invalid("'WRAP_SINGLE_VALUE' is only valid for single-field value schemas"));
    }
    if wrap_single_value == Some(true) && matches!(value_format.kind, FormatKind::Kafka | FormatKind::Delimited) {
        return Err(invalid(format!("Format '{}' does not support 'WRAP_SINGLE_VALUE' set to 'true'.", value_format.kind.name())));
    }
    // Protobuf has no bare values: a message always wraps the columns.
    if wrap_single_value == Some(false) && matches!(value_format.kind, FormatKind::Protobuf | FormatKind::ProtobufNoSr) {
        return Err(invalid(format!("Format '{}' does not support 'WRAP_SINGLE_VALUE' set to 'false'.", value_format.kind.name())));
    }
    Ok(())
}

/// The window of a windowed source's keys, from `WINDOW_TYPE` and `WINDOW_SIZE`.
fn source_window(window_type: Option<&str>, size: Option<&str>) -> Result<Option<WindowType>> {
    let Some(t) = window_type else {
        return match size {
            None => Ok(None),
            Some(_) => Err(invalid("'WINDOW_SIZE' should not be set without 'WINDOW_TYPE'.")),
        };
    };
    match t.to_uppercase().as_str() {
        "SESSION" => match size {
            None => Ok(Some(WindowType::Session)),
            Some(_) => Err(invalid("'WINDOW_SIZE' should not be set for SESSION windows.")),
        },
        "TUMBLING" | "HOPPING" => {
            let size = size.ok_or_else(|| invalid(format!("'WINDOW_SIZE' must be set for {} windows.", t.to_uppercase())))?;
            let ms = window_size_ms(size)
                .ok_or_else(|| invalid(format!("Invalid WINDOW_SIZE property : '{size}'. WINDOW_SIZE should be in the format <number> <time unit>, e.g. '10 SECONDS'")))?;
            Ok(Some(WindowType::Time { size_ms: ms }))
        }
        other => Err(invalid(format!("Unknown WINDOW_TYPE: {other}. Expected one of SESSION, HOPPING or TUMBLING"))),
    }
}

/// `'<n> <unit>'` in milliseconds.
fn window_size_ms(s: &str) -> Option<u64> {
    let mut parts = s.split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    let unit = parts.next()?.to_uppercase();
    if parts.next().is_some() {
        return None;
    }
    let per = match unit.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        "WEEK" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(per)
}

fn contains_map(dt: &DataType) -> bool {
    match dt {
        DataType::Map(_, _) => true,
        DataType::List(f) => contains_map(f.data_type()),
        DataType::Struct(fs) => fs.iter().any(|f| contains_map(f.data_type())),
        _ => false,
    }
}
