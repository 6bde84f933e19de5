//! INSERT INTO ... VALUES: evaluates the values, encodes them with the target's formats and
//! appends one record to the partition of its key.

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use engine::format::{new_encoder_with, EncodedBatch, Role};
use storage::{partition_for_key, RecordIn};

use super::{Output, Session};
use crate::ast::{ColumnKind, InsertValues};
use crate::binder::coerce::can_widen;
use crate::binder::{Binder, Scope};
use crate::error::{invalid, PlanError, Result};
use crate::plan::names::{ROWPARTITION, ROWTIME};
use crate::types::type_name;

impl Session {
    pub(crate) fn insert_values(&mut self, i: &InsertValues) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let def = catalog
            .sources
            .get(&i.target)
            .ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: i.target.clone() })?;
        if def.is_source {
            return Err(invalid(format!("Cannot insert values into read-only {}: {}", def.source_type.noun(), def.name)));
        }
        let insertable: Vec<&crate::catalog::Column> =
            def.columns.iter().filter(|c| matches!(c.kind, ColumnKind::Key | ColumnKind::Value)).collect();
        let names: Vec<String> = if i.columns.is_empty() {
            insertable.iter().map(|c| c.name.clone()).collect()
        } else {
            i.columns.clone()
        };
        if names.len() != i.values.len() {
            return Err(invalid(format!(
                "Expected a value for each column. Expected Columns: [{}]. Got [{}]",
                names.join(", "),
                i.values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        let headers: Vec<&str> = def.columns.iter().filter(|c| matches!(c.kind, ColumnKind::Headers | ColumnKind::Header(_))).map(|c| c.name.as_str()).collect();
        let bad_headers: Vec<&str> = names.iter().map(|n| n.as_str()).filter(|n| headers.contains(n)).collect();
        if !bad_headers.is_empty() {
            return Err(invalid(format!("Cannot insert into HEADER columns: {}", bad_headers.join(", "))));
        }
        for (k, n) in names.iter().enumerate() {
            if names[..k].contains(n) {
                return Err(invalid(format!("Duplicate column name: {n}")));
            }
            if n != ROWTIME && n != ROWPARTITION && !insertable.iter().any(|c| &c.name == n) {
                return Err(PlanError::UnknownObject { kind: "column", name: format!("{}.{n}", def.name) });
            }
        }
        let scope = Scope::default();
        let empty = Schema::empty();
        let binder = Binder::new(&scope, &empty, &catalog.types, &inner.functions)?;
        let one_row = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &RecordBatchOptions::new().with_row_count(Some(1)))?;
        let value_of = |name: &str, target: &DataType| -> Result<Option<ArrayRef>> {
            let Some(pos) = names.iter().position(|n| n == name) else { return Ok(None) };
            let expr = &i.values[pos];
            let t = binder.bind(expr)?;
            let t = if can_widen(&t.dt, target) {
                t.cast_to(target)
            } else if t.dt == DataType::Utf8 && matches!(target, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Time32(_)) {
                binder.cast(t, target)?
            } else {
                return Err(invalid(format!(
                    "Expected type {} for field {name} but got {} ({expr})",
                    type_name(target),
                    type_name(&t.dt)
                )));
            };
            let phys = binder.physical(&t)?;
            let v = engine::expr::eval(&phys, &one_row).map_err(|e| invalid(format!("cannot evaluate {expr}: {e}")))?;
            Ok(Some(v))
        };
        let mut key_cols = Vec::new();
        let mut value_cols = Vec::new();
        for c in &insertable {
            let v = value_of(&c.name, &c.data_type)?.unwrap_or_else(|| new_null_array(&c.data_type, 1));
            if c.is_key() {
                key_cols.push(v);
            } else {
                value_cols.push(v);
            }
        }
        let timestamp = match value_of(ROWTIME, &DataType::Int64)? {
            Some(a) if a.is_valid(0) => a.as_primitive::<Int64Type>().value(0),
            _ => chrono::Utc::now().timestamp_millis(),
        };
        let explicit_partition = value_of(ROWPARTITION, &DataType::Int32)?;
        let enc_err = |e: engine::format::EncodeError| invalid(format!("cannot encode the row for {}: {e}", def.name));
        let mut keys = EncodedBatch::new();
        let mut values = EncodedBatch::new();
        new_encoder_with(&def.key_format, Role::Key, &def.key_fields(), Some(inner.engine.registry())).map_err(|e| invalid(e.to_string()))?.encode(&key_cols, &mut keys).map_err(enc_err)?;
        new_encoder_with(&def.value_format, Role::Value, &def.value_fields(), Some(inner.engine.registry())).map_err(|e| invalid(e.to_string()))?.encode(&value_cols, &mut values).map_err(enc_err)?;
        let log = inner.engine.log();
        let partitions = log.describe_topic(&def.topic)?.config.partitions;
        let key = if key_cols.is_empty() { None } else { keys.get(0) };
        let partition = match (&explicit_partition, key) {
            (Some(p), _) if p.is_valid(0) => {
                let p = p.as_primitive::<datafusion::arrow::datatypes::Int32Type>().value(0);
                if p < 0 || p as u32 >= partitions {
                    return Err(invalid(format!("ROWPARTITION {p} does not exist: topic {} has {partitions} partitions", def.topic)));
                }
                p as u32
            }
            (_, Some(k)) => partition_for_key(k, partitions),
            _ => 0,
        };
        let record = RecordIn { timestamp, key, value: values.get(0), headers: &[] };
        inner.engine.append(&def.topic, partition, &[record])?;
        Ok(Output::Message(String::new()))
    }
}
