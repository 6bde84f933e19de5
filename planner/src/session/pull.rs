//! Pull queries on materialized tables: key lookups (`K = x`, `K IN (...)`), scans with any
//! WHERE (key ranges included), window bounds on windowed tables, expressions in the
//! projection, ORDER BY and LIMIT. Joins, GROUP BY, HAVING and aggregates go to the full-SQL
//! planner ([`super::pull_sql`]); this path stays the fast one for key lookups.
//!
//! A pull query sees its own writes: it first waits until every persistent query has processed
//! what was appended before it began, then (if anything changed) runs a checkpoint, which writes
//! the materialized rows; it then reads the state store, decodes the rows with the table's formats
//! and evaluates the rest of the query over them with the binder's expressions.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array};
use datafusion::arrow::compute::{filter_record_batch, lexsort_to_indices, take, SortColumn, SortOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as AstExpr, SelectItem};
use engine::format::{new_decoder_with, Role};
use engine::materialized;

use super::output::RowSet;
use super::pull_check::{check_key_lookup, check_null_keys, check_table_pull_query, LIMIT_ENABLED, MAX_SCANNED_ROWS, TABLE_SCAN_ENABLED};
use super::{Output, Session};
use crate::ast::Query;
use crate::binder::{Binder, Scope, ScopeColumn, Typed};
use crate::catalog::{SourceDef, WindowType};
use crate::error::{invalid, PlanError, Result};
use crate::parser::norm_ident;
use crate::plan::names::{ROWTIME, WINDOW_COLUMNS};

impl Session {
    pub(crate) fn pull(&mut self, q: &Query, def: &SourceDef) -> Result<Output> {
        check_table_pull_query(q, self.flag(LIMIT_ENABLED, true))?;
        if let Some(w) = &q.selection {
            check_null_keys(def, w)?;
        }
        if !self.flag(TABLE_SCAN_ENABLED, true) && q.joins.is_empty() {
            check_key_lookup(def, q.selection.as_ref())?;
        }
        if super::pull_sql::needs_full_sql(q) {
            return self.pull_sql(q);
        }
        super::pull_view::check_materialized(def)?;
        self.pull_catch_up(&def.name)?;
        let inner = self.eddy.inner.clone();
        let engine = &inner.engine;

        // The table's columns as rows: keys, window bounds, values, ROWTIME.
        let qualifier = q.from.alias.clone().unwrap_or_else(|| def.name.clone());
        let mut fields = Vec::new();
        let mut scope = Scope::default();
        let add = |name: &str, dt: DataType, fields: &mut Vec<Field>, scope: &mut Scope| {
            fields.push(Field::new(name, dt.clone(), true));
            scope.columns.push(ScopeColumn { qualifier: Some(qualifier.clone()), name: name.to_string(), field: name.to_string(), data_type: dt });
        };
        for c in def.key_columns() {
            add(&c.name, c.data_type.clone(), &mut fields, &mut scope);
        }
        if def.window.is_some() {
            for w in WINDOW_COLUMNS {
                add(w, DataType::Int64, &mut fields, &mut scope);
            }
        }
        for c in def.value_columns() {
            add(&c.name, c.data_type.clone(), &mut fields, &mut scope);
        }
        add(ROWTIME, DataType::Int64, &mut fields, &mut scope);
        let schema = Arc::new(Schema::new(fields));
        let types = inner.catalog.read().types.clone();
        let binder = Binder::new(&scope, &schema, &types, &inner.functions)?;

        // Which entries to read: the keys the WHERE pins down, else all.
        let keys = match &q.selection {
            Some(w) => self.key_lookups(def, w, &binder)?,
            None => None,
        };
        let limit = self.max_scanned_rows();
        let over_limit = || {
            invalid(format!(
                "pull query scanned more than {limit} rows (reading table {}): narrow the WHERE clause to key values, or raise '{MAX_SCANNED_ROWS}'",
                def.name
            ))
        };
        let batch = match super::pull_view::TableView::of(self, def)? {
            Some(view) => {
                let mut read = 0u64;
                let mut more = || {
                    read += 1;
                    read <= limit
                };
                let keys = keys.as_deref().filter(|_| view.looks_up_keys());
                let batches = view.read(engine.state().as_ref(), def, keys, &schema, &mut more)?.ok_or_else(over_limit)?;
                datafusion::arrow::compute::concat_batches(&schema, &batches)?
            }
            None => {
                let keys = keys.and_then(|ks| super::pull_view::encode_keys(def, &ks, engine.registry()));
                let state = engine.state();
                let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                let prefixes = super::pull_view::entry_prefixes(def, keys.as_deref(), state.as_ref())?;
                for p in prefixes {
                    let end = engine::runtime::keys::prefix_end(&p);
                    for kv in state.scan(&p, &end)? {
                        entries.push(kv?);
                        if entries.len() as u64 > limit {
                            return Err(over_limit());
                        }
                    }
                }
                decode_entries(def, &schema, &entries, self.eddy.inner.engine.registry())?
            }
        };

        // WHERE, ORDER BY, LIMIT, projection.
        let mut batch = batch;
        if let Some(w) = &q.selection {
            let t = binder.bind(w).map_err(|e| match e {
                PlanError::Invalid(m) => invalid(format!("Error in WHERE expression: {m}\nStatement: ({})", crate::binder::aggregate::norm_text(w))),
                other => other,
            })?;
            let t = crate::plan::context::check_boolean("WHERE", w, t)?;
            let pred = engine::expr::eval(&binder.physical(&crate::binder::predicate(t))?, &batch).map_err(PlanError::DataFusion)?;
            let pred = pred.as_any().downcast_ref::<BooleanArray>().cloned().unwrap_or_else(|| BooleanArray::from(vec![false; batch.num_rows()]));
            batch = filter_record_batch(&batch, &pred)?;
        }
        if !q.order_by.is_empty() {
            let mut sort_cols = Vec::new();
            for o in &q.order_by {
                let t = binder.bind(&o.expr)?;
                let values = engine::expr::eval(&binder.physical(&t)?, &batch).map_err(PlanError::DataFusion)?;
                sort_cols.push(SortColumn { values, options: Some(SortOptions { descending: !o.asc, nulls_first: o.nulls_first }) });
            }
            let idx = lexsort_to_indices(&sort_cols, None)?;
            let cols: Vec<ArrayRef> = batch.columns().iter().map(|c| take(c.as_ref(), &idx, None)).collect::<std::result::Result<_, _>>()?;
            batch = RecordBatch::try_new(batch.schema(), cols)?;
        }
        if let Some(l) = q.limit {
            batch = batch.slice(0, batch.num_rows().min(l as usize));
        }
        let (out_schema, out_cols) = project(q, &binder, &schema, &batch, def)?;
        let out = RecordBatch::try_new_with_options(out_schema.clone(), out_cols, &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())))?;
        Ok(Output::Rows(RowSet { schema: out_schema, batches: vec![out] }))
    }

    /// The key values pinned by `key = literal` / `key IN (literals)` in the WHERE, if any, of
    /// the key's type.
    fn key_lookups(&self, def: &SourceDef, w: &AstExpr, binder: &Binder<'_>) -> Result<Option<Vec<ScalarValue>>> {
        let keys: Vec<&crate::catalog::Column> = def.key_columns().collect();
        if keys.len() != 1 {
            return Ok(None);
        }
        let key = keys[0];
        let mut literals: Option<Vec<AstExpr>> = None;
        for term in conjuncts(w) {
            let is_key = |e: &AstExpr| match e {
                AstExpr::Identifier(id) => norm_ident(id) == key.name,
                AstExpr::CompoundIdentifier(p) => p.last().map(norm_ident).as_deref() == Some(key.name.as_str()),
                _ => false,
            };
            match term {
                AstExpr::BinaryOp { left, op: BinaryOperator::Eq, right } if is_key(left) && is_literal(right) => {
                    literals = Some(vec![(**right).clone()]);
                }
                AstExpr::BinaryOp { left, op: BinaryOperator::Eq, right } if is_key(right) && is_literal(left) => {
                    literals = Some(vec![(**left).clone()]);
                }
                AstExpr::InList { expr, list, negated: false } if is_key(expr) && list.iter().all(is_literal) => {
                    literals = Some(list.clone());
                }
                _ => {}
            }
            if literals.is_some() {
                break;
            }
        }
        let Some(literals) = literals else { return Ok(None) };
        let one = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &RecordBatchOptions::new().with_row_count(Some(1)))?;
        let mut out = Vec::new();
        for l in literals {
            let t = binder.bind(&l)?;
            // A literal of another type cannot match a key: skip the lookup, the WHERE decides.
            let Ok(t) = binder.cast(t, &key.data_type) else { return Ok(None) };
            let Ok(v) = engine::expr::eval(&binder.physical(&t)?, &one) else { return Ok(None) };
            out.push(ScalarValue::try_from_array(&v, 0)?);
        }
        Ok(Some(out))
    }
}

fn conjuncts(e: &AstExpr) -> Vec<&AstExpr> {
    match e {
        AstExpr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        AstExpr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

fn is_literal(e: &AstExpr) -> bool {
    match e {
        AstExpr::Value(_) => true,
        AstExpr::UnaryOp { expr, .. } => is_literal(expr),
        AstExpr::Nested(inner) => is_literal(inner),
        _ => false,
    }
}

/// Decodes materialized entries into a batch of `schema` (keys, window bounds, values, ROWTIME).
pub(crate) fn decode_entries(def: &SourceDef, schema: &Arc<Schema>, entries: &[(Vec<u8>, Vec<u8>)], registry: &engine::registry::Registry) -> Result<RecordBatch> {
    let prefix_len = materialized::table_prefix(&def.name).len();
    let mut kdec = new_decoder_with(&def.key_format, Role::Key, &def.key_fields(), Some(registry)).map_err(|e| invalid(e.to_string()))?;
    let mut vdec = new_decoder_with(&def.value_format, Role::Value, &def.value_fields(), Some(registry)).map_err(|e| invalid(e.to_string()))?;
    let mut ts = Vec::new();
    let mut ws = Vec::new();
    let mut we = Vec::new();
    let mut keep = Vec::new();
    for (k, v) in entries {
        let (key, win) = materialized::split_entry_key(&k[prefix_len..]).unwrap_or((&[], &[]));
        let (t, value) = materialized::split_entry_value(v).unwrap_or((0, &[]));
        let ok = kdec.append(Some(key)).is_ok() & vdec.append(Some(value)).is_ok();
        keep.push(ok);
        ts.push(t);
        let num = |b: &[u8]| b.try_into().map(i64::from_be_bytes).unwrap_or(0);
        match def.window {
            Some(WindowType::Time { size_ms }) => {
                let s = num(win);
                ws.push(s);
                we.push(s + size_ms as i64);
            }
            Some(WindowType::Session) if win.len() == 16 => {
                we.push(num(&win[..8]));
                ws.push(num(&win[8..]));
            }
            _ => {
                ws.push(0);
                we.push(0);
            }
        }
    }
    let mut cols: Vec<ArrayRef> = kdec.finish();
    if def.window.is_some() {
        cols.push(Arc::new(Int64Array::from(ws)));
        cols.push(Arc::new(Int64Array::from(we)));
    }
    cols.extend(vdec.finish());
    cols.push(Arc::new(Int64Array::from(ts)));
    let batch = RecordBatch::try_new_with_options(schema.clone(), cols, &RecordBatchOptions::new().with_row_count(Some(entries.len())))?;
    Ok(filter_record_batch(&batch, &BooleanArray::from(keep))?)
}

/// Evaluates the select list over the rows.
fn project(q: &Query, binder: &Binder<'_>, schema: &Arc<Schema>, batch: &RecordBatch, def: &SourceDef) -> Result<(Arc<Schema>, Vec<ArrayRef>)> {
    let mut fields = Vec::new();
    let mut cols = Vec::new();
    let mut generated = 0;
    for item in &q.select {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                // Every column but ROWTIME.
                for (i, f) in schema.fields().iter().enumerate().take(schema.fields().len() - 1) {
                    fields.push(f.as_ref().clone());
                    cols.push(batch.column(i).clone());
                }
            }
            SelectItem::UnnamedExpr(e) if crate::binder::struct_star::struct_star(e).is_some() => {
                let left = crate::binder::struct_star::struct_star(e).expect("checked");
                for (name, t, _) in crate::binder::struct_star::expand_struct_star(binder, left)? {
                    let v = engine::expr::eval(&binder.physical(&t)?, batch).map_err(PlanError::DataFusion)?;
                    fields.push(Field::new(name, t.dt, true));
                    cols.push(v);
                }
            }
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                let t: Typed = binder.bind(e)?;
                let name = match item {
                    SelectItem::ExprWithAlias { alias, .. } => norm_ident(alias),
                    _ => match e {
                        AstExpr::Identifier(id) => norm_ident(id),
                        AstExpr::CompoundIdentifier(p) => p.last().map(norm_ident).unwrap_or_default(),
                        AstExpr::BinaryOp { op: BinaryOperator::Arrow, right, .. } => right.to_string().to_uppercase(),
                        _ => {
                            generated += 1;
                            format!("KSQL_COL_{}", generated - 1)
                        }
                    },
                };
                let dt = if t.dt == DataType::Null { DataType::Utf8 } else { t.dt.clone() };
                let v = engine::expr::eval(&binder.physical(&t.cast_to(&dt))?, batch).map_err(PlanError::DataFusion)?;
                fields.push(Field::new(name, dt, true));
                cols.push(v);
            }
            other => return Err(PlanError::Unsupported { feature: format!("select item {other}") }),
        }
    }
    let _ = def;
    Ok((Arc::new(Schema::new(fields)), cols))
}
