//! What full-SQL pull queries run on: a DataFusion [`TableProvider`] per materialized table,
//! reading its rows from the state store, and ksqlDB's aggregate functions as DataFusion
//! aggregates.
//!
//! [`StateTable`] reads `m/<table>\0...` entries (see `engine::materialized`) and decodes them
//! with the table's key and value formats into batches of keys, window bounds, values and
//! ROWTIME, their field names prefixed so that the sides of a join stay apart. Filters
//! `key = literal` and `key IN (literals)` on a one-column key are pushed down: only those keys'
//! entries are read (the filter is applied again after). Projections are applied after decoding.
//! Every scan counts the entries it reads against the query's limit and fails past it.
//!
//! [`EddyAggregate`] wraps an `engine` aggregate function (the same one persistent queries use,
//! so COUNT, SUM, TOPK, LATEST_BY_OFFSET, ... mean what they mean in ksqlDB); its partial state
//! is the function's own serialised state.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, BinaryArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session as DfSession;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, BinaryExpr, Expr, Operator, Signature, TableProviderFilterPushDown, Volatility};
use datafusion::physical_plan::ExecutionPlan;
use engine::ops::aggregate::AggFunctionRef;
use storage::KvStore;

use super::pull_view::TableView;
use crate::catalog::SourceDef;

type DfResult<T> = datafusion::error::Result<T>;

/// Rows per batch handed to DataFusion.
const BATCH_ROWS: usize = 8192;

/// Counts the state entries a query reads, against its limit.
#[derive(Debug)]
pub struct ScanBudget {
    /// Entries read so far.
    pub scanned: AtomicU64,
    /// The most a query may read.
    pub limit: u64,
}

/// One materialized table as DataFusion sees it.
pub struct StateTable {
    def: SourceDef,
    schema: SchemaRef,
    state: Arc<dyn KvStore>,
    budget: Arc<ScanBudget>,
    registry: engine::registry::Registry,
    /// Where the rows are when the table is read from its aggregate's state.
    view: Option<parking_lot::Mutex<TableView>>,
}

impl fmt::Debug for StateTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateTable").field("table", &self.def.name).finish()
    }
}

impl StateTable {
    /// The table `def`, its fields named as `schema` says (keys, window bounds, values,
    /// ROWTIME, in that order); schema-registry formats resolve their schemas in `registry`.
    /// With `view`, the rows are read from the aggregate state it names instead of the
    /// materialized rows.
    pub fn new(
        def: SourceDef,
        schema: SchemaRef,
        state: Arc<dyn KvStore>,
        budget: Arc<ScanBudget>,
        registry: engine::registry::Registry,
        view: Option<TableView>,
    ) -> Self {
        StateTable { def, schema, state, budget, registry, view: view.map(parking_lot::Mutex::new) }
    }

    /// The key column's field name, when the key is one column.
    fn key_field(&self) -> Option<&str> {
        let mut keys = self.def.key_columns();
        match (keys.next(), keys.next()) {
            (Some(_), None) => Some(self.schema.field(0).name()),
            _ => None,
        }
    }

    /// The literal keys `e` pins the key column to, if it does.
    fn pinned(&self, e: &Expr) -> Option<Vec<ScalarValue>> {
        let key = self.key_field()?;
        let is_key = |e: &Expr| matches!(strip_cast(e), Expr::Column(c) if c.name == key);
        let literal = |e: &Expr| match strip_cast(e) {
            Expr::Literal(v, _) if !v.is_null() => Some(v.clone()),
            _ => None,
        };
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
                if is_key(left) {
                    literal(right).map(|v| vec![v])
                } else if is_key(right) {
                    literal(left).map(|v| vec![v])
                } else {
                    None
                }
            }
            Expr::InList(InList { expr, list, negated: false }) if is_key(expr) => list.iter().map(literal).collect(),
            // DataFusion writes short IN lists as ORs of equalities.
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
                let mut keys = self.pinned(left)?;
                keys.extend(self.pinned(right)?);
                Some(keys)
            }
            _ => None,
        }
    }

    /// The error of a scan past the budget.
    fn over_budget(&self) -> DataFusionError {
        DataFusionError::External(Box::new(crate::error::invalid(format!(
            "pull query scanned more than {} rows (reading table {}): narrow the WHERE clause to key values, or raise '{}'",
            self.budget.limit,
            self.def.name,
            super::pull_check::MAX_SCANNED_ROWS
        ))))
    }

    /// Reads the entries under `prefixes`, counting them against the budget.
    fn read(&self, prefixes: &[Vec<u8>]) -> DfResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut entries = Vec::new();
        for p in prefixes {
            let end = engine::runtime::keys::prefix_end(p);
            for kv in self.state.scan(p, &end).map_err(|e| DataFusionError::External(Box::new(e)))? {
                entries.push(kv.map_err(|e| DataFusionError::External(Box::new(e)))?);
                let n = self.budget.scanned.fetch_add(1, Ordering::Relaxed) + 1;
                if n > self.budget.limit {
                    return Err(self.over_budget());
                }
            }
        }
        Ok(entries)
    }
}

fn strip_cast(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip_cast(&c.expr),
        Expr::TryCast(c) => strip_cast(&c.expr),
        other => other,
    }
}

#[async_trait]
impl TableProvider for StateTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| if self.pinned(f).is_some() { TableProviderFilterPushDown::Inexact } else { TableProviderFilterPushDown::Unsupported })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if let Some(view) = &self.view {
            let view = view.lock();
            let keys = filters.iter().filter_map(|f| self.pinned(f)).filter(|_| view.looks_up_keys()).min_by_key(Vec::len);
            let mut more = || self.budget.scanned.fetch_add(1, Ordering::Relaxed) < self.budget.limit;
            let read = view.read(self.state.as_ref(), &self.def, keys.as_deref(), &self.schema, &mut more);
            let batches = read.map_err(|e| DataFusionError::External(Box::new(e)))?.ok_or_else(|| self.over_budget())?;
            return Ok(MemorySourceConfig::try_new_exec(&[batches], self.schema.clone(), projection.cloned())?);
        }
        // The narrowest pinned key set among the filters (they are ANDed).
        let keys = filters.iter().filter_map(|f| self.pinned(f)).filter_map(|v| super::pull_view::encode_keys(&self.def, &v, &self.registry)).min_by_key(Vec::len);
        let prefixes = super::pull_view::entry_prefixes(&self.def, keys.as_deref(), self.state.as_ref())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let entries = self.read(&prefixes)?;
        let mut batches = Vec::new();
        for chunk in entries.chunks(BATCH_ROWS) {
            batches.push(super::pull::decode_entries(&self.def, &self.schema, chunk, &self.registry).map_err(|e| DataFusionError::External(Box::new(e)))?);
        }
        Ok(MemorySourceConfig::try_new_exec(&[batches], self.schema.clone(), projection.cloned())?)
    }
}

/// An `engine` aggregate function as a DataFusion aggregate. `COUNT(*)` and other calls without
/// arguments get one constant argument, for the row count; the function never sees it.
pub struct EddyAggregate {
    name: String,
    function: AggFunctionRef,
    signature: Signature,
    /// True when the first argument is the constant that stands for "no arguments".
    counted: bool,
}

impl fmt::Debug for EddyAggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EddyAggregate").field("name", &self.name).finish()
    }
}

impl PartialEq for EddyAggregate {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.function, &other.function)
    }
}

impl Eq for EddyAggregate {}

impl Hash for EddyAggregate {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl EddyAggregate {
    /// The aggregate `function` over arguments of `arg_types` (none: counted rows), named
    /// `name` in plans (unique per call, since each is bound to its own types).
    pub fn new(name: String, function: AggFunctionRef, arg_types: Vec<DataType>) -> Self {
        let counted = arg_types.is_empty();
        let types = if counted { vec![DataType::Boolean] } else { arg_types };
        EddyAggregate { name, function, signature: Signature::exact(types, Volatility::Immutable), counted }
    }

    /// True when the call needs the constant argument.
    pub fn counted(&self) -> bool {
        self.counted
    }
}

impl AggregateUDFImpl for EddyAggregate {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.function.return_type())
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let state = parking_lot::Mutex::new(self.function.new_state());
        Ok(Box::new(EddyAccumulator { function: self.function.clone(), state, skip: self.counted as usize }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}_state", args.name), DataType::Binary, true))])
    }
}

#[derive(Debug)]
struct EddyAccumulator {
    function: AggFunctionRef,
    /// Locked only to satisfy `Accumulator: Sync`; one thread uses it at a time.
    state: parking_lot::Mutex<Box<dyn engine::ops::aggregate::AggState>>,
    /// Leading arguments the function does not see.
    skip: usize,
}

impl Accumulator for EddyAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let rows = values.first().map(|v| v.len()).unwrap_or(0);
        let args = &values[self.skip.min(values.len())..];
        let state = self.state.get_mut();
        for r in 0..rows {
            state.update(args, r);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(self.state.get_mut().evaluate())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + 64
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let mut bytes = Vec::new();
        self.state.get_mut().save(&mut bytes);
        Ok(vec![ScalarValue::Binary(Some(bytes))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(a) = states.first() else { return Ok(()) };
        let a = a.as_any().downcast_ref::<BinaryArray>().ok_or_else(|| DataFusionError::Internal("aggregate state is not binary".into()))?;
        for i in 0..a.len() {
            if a.is_null(i) {
                continue;
            }
            let other = self.function.load(a.value(i)).map_err(|e| DataFusionError::External(Box::new(e)))?;
            self.state.get_mut().merge(other.as_ref());
        }
        Ok(())
    }
}

/// The schema a table has in a pull query: its columns prefixed with `prefix`.
pub fn table_schema(def: &SourceDef, prefix: &str) -> SchemaRef {
    let mut fields = Vec::new();
    for c in def.key_columns() {
        fields.push(Field::new(format!("{prefix}{}", c.name), c.data_type.clone(), true));
    }
    if def.window.is_some() {
        for w in crate::plan::names::WINDOW_COLUMNS {
            fields.push(Field::new(format!("{prefix}{w}"), DataType::Int64, true));
        }
    }
    for c in def.value_columns() {
        fields.push(Field::new(format!("{prefix}{}", c.name), c.data_type.clone(), true));
    }
    fields.push(Field::new(format!("{prefix}{}", crate::plan::names::ROWTIME), DataType::Int64, true));
    Arc::new(Schema::new(fields))
}
