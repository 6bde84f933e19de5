//! Where a pull query finds a table's rows. A table computed by an aggregate without windows is
//! read from the aggregate's own state (see `engine::ops::aggregate::view`); every other
//! materialized table from its materialized rows (`engine::materialized`). A table whose query
//! was terminated has neither, as in ksqlDB: a pull query on it is an error.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use engine::format::{new_encoder_with, EncodedBatch, Role};
use engine::materialized;
use engine::ops::aggregate::view::AggregateView;

use super::Session;
use crate::catalog::SourceDef;
use crate::error::{invalid, Result};

/// `values` of the one key column of `def`, encoded with its key format (schema-registry formats
/// resolve in `registry`); `None` when one cannot be a key of the table (every row is read then,
/// and the WHERE decides).
pub(crate) fn encode_keys(def: &SourceDef, values: &[ScalarValue], registry: &engine::registry::Registry) -> Option<Vec<Vec<u8>>> {
    let key = def.key_columns().next()?;
    let mut enc = new_encoder_with(&def.key_format, Role::Key, &def.key_fields(), Some(registry)).ok()?;
    let mut out = Vec::new();
    for v in values {
        let v = v.cast_to(&key.data_type).ok()?;
        let mut b = EncodedBatch::new();
        enc.encode_rows(&[v.to_array().ok()?], 1, &mut b).ok()?;
        out.push(b.get(0)?.to_vec());
    }
    Some(out)
}

/// The state prefixes a pull query of `def` scans: the whole table, or each key's entries
/// (in each time segment, for a table of time windows).
pub(crate) fn entry_prefixes(def: &SourceDef, keys: Option<&[Vec<u8>]>, state: &dyn storage::KvStore) -> storage::Result<Vec<Vec<u8>>> {
    let Some(keys) = keys else { return Ok(vec![materialized::table_prefix(&def.name)]) };
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        match def.window {
            Some(crate::catalog::WindowType::Time { .. }) => out.extend(materialized::key_prefixes(state, &def.name, k)?),
            _ => out.push(materialized::key_prefix(&def.name, k)),
        }
    }
    Ok(out)
}

/// Fails unless pull queries can read `def`.
pub(crate) fn check_materialized(def: &SourceDef) -> Result<()> {
    if !def.materialized {
        return Err(invalid(format!(
            "Table {} is not materialized: pull queries need a table created with CREATE TABLE ... AS SELECT or CREATE SOURCE TABLE; use EMIT CHANGES for a push query",
            def.name
        )));
    }
    if !def.is_source && def.written_by.is_none() {
        return Err(invalid(format!(
            "Table {} is not materialized any more: the query that computed it was terminated; use EMIT CHANGES for a push query",
            def.name
        )));
    }
    Ok(())
}

/// A table read from its aggregate's state, with the partitions the aggregate's tasks hold.
pub(crate) struct TableView {
    view: AggregateView,
    partitions: Vec<u32>,
}

impl TableView {
    /// The view of `def`, when its query computes it from an aggregate's state. A query that was
    /// not started (at open, with damaged commands skipped) is planned again from its statement:
    /// its state is read as its last checkpoint left it, as the materialized rows of other
    /// tables are.
    pub(crate) fn of(session: &Session, def: &SourceDef) -> Result<Option<TableView>> {
        let Some(q) = def.written_by.as_deref() else { return Ok(None) };
        if def.window.is_some() {
            return Ok(None);
        }
        let engine = &session.eddy.inner.engine;
        let read_err = |e| read_error(def, e);
        let found = match engine.aggregate_view(q, &def.name).map_err(read_err)? {
            Some(found) => Some(found),
            None if engine.query(q).is_none() => {
                let stopped = session.eddy.inner.catalog.read().queries.get(q).cloned();
                match stopped {
                    Some(qdef) => engine.aggregate_view_of(&session.replan(&qdef)?, &def.name).map_err(read_err)?,
                    None => None,
                }
            }
            None => None,
        };
        Ok(found.map(|(view, partitions)| TableView { view, partitions }))
    }

    /// True when a read with keys reads only those keys' rows.
    pub(crate) fn looks_up_keys(&self) -> bool {
        self.view.looks_up_keys()
    }

    /// The table's rows (only those of `keys`, values of its one key column, when
    /// [`TableView::looks_up_keys`]; else all of them), as batches of `schema`: the table's
    /// key columns, value columns and ROWTIME, in that order, named as the caller names them.
    /// `more` is asked before each row is read; `None` when it said no.
    pub(crate) fn read(
        &self,
        state: &dyn storage::KvStore,
        def: &SourceDef,
        keys: Option<&[ScalarValue]>,
        schema: &SchemaRef,
        more: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Vec<RecordBatch>>> {
        let read_err = |e| read_error(def, e);
        let Some(batches) = self.view.read(state, &self.partitions, keys, more).map_err(read_err)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            let cols = engine::batch::cast_columns(b.columns().to_vec(), schema).map_err(read_err)?;
            out.push(RecordBatch::try_new(schema.clone(), cols)?);
        }
        Ok(Some(out))
    }
}

/// The error of a table that could not be read from its aggregate's state.
fn read_error(def: &SourceDef, e: engine::error::EngineError) -> crate::error::PlanError {
    invalid(format!("cannot read table {}: {e}", def.name))
}
