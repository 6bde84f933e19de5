//! Full-SQL pull queries: GROUP BY and aggregates, HAVING, joins of tables, ORDER BY and LIMIT
//! over materialized tables, planned and run by DataFusion over the tables' state.
//!
//! Each table of the query is a [`StateTable`] scan (its fields prefixed `_t<i>_`, so that join
//! sides stay apart); joins, filters, the aggregation, sorting and the limit are DataFusion plan
//! nodes, whose expressions Eddy's binder binds from ksqlDB's SQL, so functions, casts and
//! comparisons mean what they mean everywhere else in Eddy. Aggregates are ksqlDB's own
//! ([`EddyAggregate`]). DataFusion's optimizer pushes key filters into the scans.
//!
//! Like every pull query this one sees its own writes: the tables' queries catch up and
//! checkpoint first (see [`super::pull`]). Key lookups without joins or aggregates keep their
//! own fast path there and never come here.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DataFusionError;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{lit, AggregateUDF, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, SortExpr};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{Expr as AstExpr, SelectItem};

use super::output::RowSet;
use super::pull_check::clause_error;
use super::pull_provider::{table_schema, EddyAggregate, ScanBudget, StateTable};
use super::{Output, Session};
use crate::ast::{JoinKind, Query, SourceType};
use crate::binder::aggregate::{contains_aggregate, first_aggregate, norm_text, AggScope, GroupExpr};
use crate::binder::{predicate, Binder, Scope, ScopeColumn, Typed};
use crate::catalog::SourceDef;
use crate::error::{invalid, PlanError, Result};
use crate::parser::norm_ident;

/// True when a pull query on a table needs the full-SQL planner: joins, GROUP BY, HAVING or
/// aggregate calls.
pub(crate) fn needs_full_sql(q: &Query) -> bool {
    let select = q.select.iter().filter_map(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    });
    !q.joins.is_empty()
        || !q.group_by.is_empty()
        || q.having.is_some()
        || select.clone().any(contains_aggregate)
        || select.chain(q.selection.iter()).any(contains_subquery)
}

/// True when `e` holds a subquery (`(SELECT ...)`, `IN (SELECT ...)`, `EXISTS (...)`).
fn contains_subquery(e: &AstExpr) -> bool {
    let r = datafusion::sql::sqlparser::ast::visit_expressions(e, |x| match x {
        AstExpr::Subquery(_) | AstExpr::InSubquery { .. } | AstExpr::Exists { .. } => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    });
    r.is_break()
}

/// A pull query's output columns (name, typed expression), its ORDER BY, and the plan so far.
type Projected = (Vec<(String, Typed)>, Vec<SortExpr>, LogicalPlanBuilder);

// One per subquery of a pull query, short-lived: the size of the `IN` variant does not matter.
#[allow(clippy::large_enum_variant)]
/// What a subquery of a pull query is used as.
enum SubKind {
    /// `(SELECT x ...)`: a value.
    Scalar,
    /// `e [NOT] IN (SELECT ...)`.
    In { expr: AstExpr, negated: bool },
    /// `[NOT] EXISTS (SELECT ...)`.
    Exists { negated: bool },
}

/// A subquery taken out of an expression; `_sq<i>` stands for it there.
struct Sub {
    query: datafusion::sql::sqlparser::ast::Query,
    kind: SubKind,
}

/// Replaces the subqueries of `e` (outermost first, their insides untouched) with `_sq<i>`.
fn extract_subqueries(e: &mut AstExpr, subs: &mut Vec<Sub>) {
    use datafusion::sql::sqlparser::ast::{Ident, VisitMut, VisitorMut};
    struct Extract<'a>(&'a mut Vec<Sub>);
    impl VisitorMut for Extract<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &mut AstExpr) -> std::ops::ControlFlow<()> {
            let kind_query = match e {
                AstExpr::Subquery(q) => Some((SubKind::Scalar, (**q).clone())),
                AstExpr::InSubquery { expr, subquery, negated } => Some((SubKind::In { expr: (**expr).clone(), negated: *negated }, (**subquery).clone())),
                AstExpr::Exists { subquery, negated } => Some((SubKind::Exists { negated: *negated }, (**subquery).clone())),
                _ => None,
            };
            if let Some((kind, query)) = kind_query {
                // Quoted, so that binding keeps its case (`_sq<i>`, the scope column added for it).
                *e = AstExpr::Identifier(Ident::with_quote('`', format!("_sq{}", self.0.len())));
                self.0.push(Sub { query, kind });
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let _ = e.visit(&mut Extract(subs));
}

/// `t` with each `_sq<i>` column made the DataFusion subquery it stands for.
fn fill_subqueries(t: Typed, subs: &[Sub], plans: &[Arc<LogicalPlan>], binder: &Binder<'_>) -> Result<Typed> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::expr::{Exists, InSubquery};
    use datafusion::logical_expr::Subquery;
    if subs.is_empty() {
        return Ok(t);
    }
    let sub = |i: usize| Subquery { subquery: plans[i].clone(), outer_ref_columns: vec![], spans: Default::default() };
    let mut failed = None;
    let expr = t
        .expr
        .transform(|e| {
            let Expr::Column(c) = &e else { return Ok(Transformed::no(e)) };
            let Some(i) = c.name.strip_prefix("_sq").and_then(|n| n.parse::<usize>().ok()).filter(|i| *i < subs.len()) else {
                return Ok(Transformed::no(e));
            };
            Ok(Transformed::yes(match &subs[i].kind {
                SubKind::Scalar => Expr::ScalarSubquery(sub(i)),
                SubKind::Exists { negated } => Expr::Exists(Exists { subquery: sub(i), negated: *negated }),
                SubKind::In { expr, negated } => match binder.bind(expr) {
                    Ok(left) => Expr::InSubquery(InSubquery::new(Box::new(left.expr), sub(i), *negated)),
                    Err(err) => {
                        failed = Some(err);
                        e
                    }
                },
            }))
        })?
        .data;
    match failed {
        Some(e) => Err(e),
        None => Ok(Typed::new(expr, t.dt)),
    }
}

fn df_error(e: DataFusionError) -> PlanError {
    // A limit or a decoding error raised inside a scan comes back as it was raised.
    match e {
        DataFusionError::External(inner) => match inner.downcast::<PlanError>() {
            Ok(p) => *p,
            Err(other) => PlanError::DataFusion(DataFusionError::External(other)),
        },
        DataFusionError::Context(_, inner) => df_error(*inner),
        DataFusionError::Shared(inner) => match Arc::try_unwrap(inner) {
            Ok(e) => df_error(e),
            Err(shared) => PlanError::DataFusion(DataFusionError::Shared(shared)),
        },
        other => PlanError::DataFusion(other),
    }
}

/// The name a select item gets: its alias, its column's name, or ksqlDB's `KSQL_COL_<n>`.
fn output_name(e: &AstExpr, alias: Option<&str>, generated: &mut usize) -> String {
    if let Some(a) = alias {
        return a.to_string();
    }
    match e {
        AstExpr::Identifier(id) => norm_ident(id),
        AstExpr::CompoundIdentifier(p) => p.last().map(norm_ident).unwrap_or_default(),
        _ => {
            *generated += 1;
            format!("KSQL_COL_{}", *generated - 1)
        }
    }
}

fn strip_nested(e: &AstExpr) -> &AstExpr {
    match e {
        AstExpr::Nested(inner) => strip_nested(inner),
        other => other,
    }
}

impl Session {
    /// Runs a pull query with joins or aggregates (see the module docs).
    pub(crate) fn pull_sql(&mut self, q: &Query) -> Result<Output> {
        self.pull_catch_up(&q.from.name)?;
        let budget = Arc::new(ScanBudget { scanned: AtomicU64::new(0), limit: self.max_scanned_rows() });
        let plan = self.plan_pull(q, &budget)?;
        // The plan's schema: a result without rows still has its columns.
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let batches = run_plan(plan)?;
        Ok(Output::Rows(RowSet { schema, batches }))
    }

    /// The DataFusion plan of a pull query (or of a subquery in one), its tables read against
    /// `budget`.
    fn plan_pull(&mut self, q: &Query, budget: &Arc<ScanBudget>) -> Result<LogicalPlan> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let mut defs: Vec<(SourceDef, String)> = Vec::new();
        for (i, r) in std::iter::once(&q.from).chain(q.joins.iter().map(|j| &j.source)).enumerate() {
            let def = catalog
                .sources
                .get(&r.name)
                .ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: r.name.clone() })?;
            if def.source_type == SourceType::Stream {
                // Joins with a stream are push queries (ksqlDB's answer, kept).
                return Err(if i == 0 && q.joins.is_empty() { clause_error("GROUP BY") } else { clause_error("JOIN") });
            }
            super::pull_view::check_materialized(def)?;
            defs.push((def.clone(), r.alias.clone().unwrap_or_else(|| def.name.clone())));
        }
        if q.joins.iter().any(|j| j.within.is_some()) {
            return Err(invalid("WITHIN is for joins of two streams; a join of tables has no window"));
        }
        let engine = inner.engine.clone();
        let mut scope = Scope::default();
        let mut fields: Vec<Field> = Vec::new();
        let mut builder: Option<LogicalPlanBuilder> = None;
        for (i, (def, qualifier)) in defs.iter().enumerate() {
            let prefix = format!("_t{i}_");
            let schema = table_schema(def, &prefix);
            for f in schema.fields() {
                let name = f.name()[prefix.len()..].to_string();
                scope.columns.push(ScopeColumn { qualifier: Some(qualifier.clone()), name, field: f.name().clone(), data_type: f.data_type().clone() });
                fields.push(f.as_ref().clone());
            }
            let view = super::pull_view::TableView::of(self, def)?;
            let table = Arc::new(StateTable::new(def.clone(), schema, engine.state().clone(), budget.clone(), engine.registry().clone(), view));
            let scan = LogicalPlanBuilder::scan(format!("t{i}"), provider_as_source(table), None)?;
            builder = Some(match builder {
                None => scan,
                Some(left) => {
                    let join = &q.joins[i - 1];
                    let binder = Binder::new(&scope, &Schema::new(fields.clone()), &catalog.types, &inner.functions)?;
                    let on = binder.bind(&join.on)?;
                    if on.dt != DataType::Boolean {
                        return Err(invalid(format!("the join condition {} is not a BOOLEAN expression", join.on)));
                    }
                    let kind = match join.kind {
                        JoinKind::Inner => JoinType::Inner,
                        JoinKind::Left => JoinType::Left,
                        JoinKind::Right => JoinType::Right,
                        JoinKind::Full => JoinType::Full,
                    };
                    left.join_on(scan.build()?, kind, vec![on.expr])?
                }
            });
        }
        let mut builder = builder.expect("at least one table");
        // Subqueries become placeholder columns while binding, then DataFusion subqueries.
        let mut q = q.clone();
        let mut subs = Vec::new();
        if let Some(w) = q.selection.as_mut() {
            extract_subqueries(w, &mut subs);
        }
        let in_where = subs.len();
        for item in q.select.iter_mut() {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                extract_subqueries(e, &mut subs);
            }
        }
        let mut planned = Vec::new();
        for (i, sub) in subs.iter().enumerate() {
            let text = format!("{};", sub.query);
            let parsed = crate::parser::parse(&text)?;
            let Some(crate::ast::Statement::Query(sq)) = parsed.into_iter().next().map(|p| p.statement) else {
                return Err(invalid(format!("a subquery must be a query: {}", sub.query)));
            };
            if sq.emit.is_some() {
                return Err(invalid("a subquery of a pull query is a pull query: it cannot EMIT CHANGES"));
            }
            let plan = self.plan_pull(&sq, budget).map_err(|e| match e {
                PlanError::UnknownObject { kind: "column", name } => {
                    invalid(format!("unknown column {name} in a subquery: subqueries that refer to the outer query are not supported"))
                }
                // `s.col` with `s` an alias of the outer query.
                PlanError::Invalid(m) if m.ends_with("is not a valid stream/table name or alias") => {
                    invalid(format!("{m} in a subquery: subqueries that refer to the outer query are not supported"))
                }
                other => other,
            })?;
            let dt = match &sub.kind {
                SubKind::Scalar => {
                    if plan.schema().fields().len() != 1 {
                        return Err(invalid(format!("a subquery used as a value must select one column: {}", sub.query)));
                    }
                    plan.schema().field(0).data_type().clone()
                }
                SubKind::In { .. } | SubKind::Exists { .. } => DataType::Boolean,
            };
            let name = format!("_sq{i}");
            scope.columns.push(ScopeColumn { qualifier: None, name: name.clone(), field: name.clone(), data_type: dt.clone() });
            fields.push(Field::new(&name, dt, true));
            planned.push(Arc::new(plan));
        }
        let q = &q;
        let input_schema = Schema::new(fields);
        let binder = Binder::new(&scope, &input_schema, &catalog.types, &inner.functions)?;
        let fill = |t: Typed| -> Result<Typed> { fill_subqueries(t, &subs, &planned, &binder) };
        if let Some(w) = &q.selection {
            if contains_aggregate(w) {
                return Err(invalid("Aggregate functions are not allowed in WHERE: use HAVING"));
            }
            let t = binder.bind(w)?;
            if t.dt != DataType::Boolean && t.dt != DataType::Null {
                return Err(invalid(format!("WHERE must be a BOOLEAN expression, but {w} is {}", crate::types::type_name(&t.dt))));
            }
            builder = builder.filter(predicate(fill(t)?.cast_to(&DataType::Boolean)).expr)?;
        }

        // The select list, as (expression, alias); a star lists every table's columns.
        let mut select: Vec<(AstExpr, Option<String>)> = Vec::new();
        for item in &q.select {
            match item {
                SelectItem::UnnamedExpr(e) => select.push((e.clone(), None)),
                SelectItem::ExprWithAlias { expr, alias } => select.push((expr.clone(), Some(norm_ident(alias)))),
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    let qualified = match item {
                        SelectItem::QualifiedWildcard(kind, _) => Some(norm_text_of(kind)),
                        _ => None,
                    };
                    for c in scope.columns.iter().filter(|c| c.name != crate::plan::names::ROWTIME) {
                        let q_name = c.qualifier.clone().unwrap_or_default();
                        if qualified.as_ref().is_some_and(|w| !w.eq_ignore_ascii_case(&q_name)) {
                            continue;
                        }
                        let id = |s: &str| datafusion::sql::sqlparser::ast::Ident::with_quote('`', s);
                        let e = AstExpr::CompoundIdentifier(vec![id(&q_name), id(&c.name)]);
                        // Columns of a join are named after their table, as ksqlDB names them.
                        let alias = (defs.len() > 1 && qualified.is_none()).then(|| format!("{q_name}_{}", c.name));
                        select.push((e, alias));
                    }
                }
                other => return Err(PlanError::Unsupported { feature: format!("select item {other}") }),
            }
        }

        let aggregating = !q.group_by.is_empty() || q.having.is_some() || select.iter().any(|(e, _)| contains_aggregate(e));
        if aggregating && subs.len() > in_where {
            return Err(PlanError::Unsupported { feature: "subqueries in the select list of an aggregation".into() });
        }
        let mut generated = 0;
        let (items, order, mut builder) = if aggregating {
            self.plan_aggregation(q, &select, &binder, builder, &mut generated)?
        } else {
            let mut items = Vec::new();
            for (e, alias) in &select {
                items.push((output_name(e, alias.as_deref(), &mut generated), fill(binder.bind(e)?)?));
            }
            let order = bind_order(q, &items, &binder)?;
            (items, order, builder)
        };
        if !order.is_empty() {
            builder = builder.sort(order)?;
        }
        if let Some(n) = q.limit {
            builder = builder.limit(0, Some(n as usize))?;
        }
        let mut names = std::collections::HashSet::new();
        let mut exprs = Vec::new();
        for (name, t) in items {
            if !names.insert(name.clone()) {
                return Err(invalid(format!("the select list names column {name} twice: give one of them another alias")));
            }
            let dt = if t.dt == DataType::Null { DataType::Utf8 } else { t.dt.clone() };
            exprs.push(t.cast_to(&dt).expr.alias(name));
        }
        Ok(builder.project(exprs)?.build()?)
    }

    /// GROUP BY, aggregates and HAVING: the aggregation node, then the select list and ORDER BY
    /// over its groups and results.
    fn plan_aggregation(
        &self,
        q: &Query,
        select: &[(AstExpr, Option<String>)],
        binder: &Binder<'_>,
        builder: LogicalPlanBuilder,
        generated: &mut usize,
    ) -> Result<Projected> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let group_by: Vec<AstExpr> = match q.group_by.as_slice() {
            [AstExpr::Tuple(items)] => items.iter().map(|e| strip_nested(e).clone()).collect(),
            list => list.iter().map(|e| strip_nested(e).clone()).collect(),
        };
        let mut groups = Vec::new();
        let mut group_exprs = Vec::new();
        let mut post_scope = Scope::default();
        let mut post_fields = Vec::new();
        for (i, g) in group_by.iter().enumerate() {
            if contains_aggregate(g) {
                let name = first_aggregate(g).unwrap_or_default();
                return Err(invalid(format!("GROUP BY does not support aggregate functions: {name} is an aggregate function.")));
            }
            let t = binder.bind(g)?;
            let field = format!("_g{i}");
            groups.push(GroupExpr { text: norm_text(g), field: field.clone(), data_type: t.dt.clone() });
            let (qualifier, name) = match g {
                AstExpr::Identifier(id) => (None, norm_ident(id)),
                AstExpr::CompoundIdentifier(parts) if parts.len() == 2 => (Some(norm_ident(&parts[0])), norm_ident(&parts[1])),
                _ => (None, field.clone()),
            };
            post_scope.columns.push(ScopeColumn { qualifier, name, field: field.clone(), data_type: t.dt.clone() });
            post_fields.push(Field::new(&field, t.dt.clone(), true));
            group_exprs.push(t.expr.alias(field));
        }
        let post_schema = Schema::new(post_fields);
        let mut post = Binder::new(&post_scope, &post_schema, &catalog.types, &inner.functions)?;
        post.agg = Some(AggScope { source: binder, groups, calls: Default::default() });
        let not_grouped = |e: PlanError| match e {
            PlanError::UnknownObject { kind: "column", name } => {
                invalid(format!("Non-aggregate SELECT expression(s) not part of GROUP BY: {name}"))
            }
            other => other,
        };
        let mut items = Vec::new();
        for (e, alias) in select {
            items.push((output_name(e, alias.as_deref(), generated), post.bind(e).map_err(not_grouped)?));
        }
        let having = match &q.having {
            Some(h) => {
                let t = post.bind(h).map_err(not_grouped)?;
                if t.dt != DataType::Boolean {
                    return Err(invalid(format!("HAVING must be a BOOLEAN expression, but {h} is {}", crate::types::type_name(&t.dt))));
                }
                Some(t)
            }
            None => None,
        };
        let order = bind_order(q, &items, &post).map_err(not_grouped)?;
        let calls = post.agg.as_ref().expect("set above").calls.borrow().clone();
        let mut aggr_exprs = Vec::new();
        for (i, c) in calls.iter().enumerate() {
            let types: Vec<DataType> = c.args.iter().map(|a| a.dt.clone()).collect();
            let udaf = EddyAggregate::new(format!("{}#{i}", c.function.name()), c.function.clone(), types);
            let mut args: Vec<Expr> = c.args.iter().map(|a| a.expr.clone()).collect();
            if udaf.counted() {
                args = vec![lit(true)];
            }
            aggr_exprs.push(AggregateUDF::new_from_impl(udaf).call(args).alias(&c.field));
        }
        let mut builder = builder.aggregate(group_exprs, aggr_exprs)?;
        if let Some(h) = having {
            builder = builder.filter(predicate(h).expr)?;
        }
        Ok((items, order, builder))
    }

    /// Waits until the queries feeding `table` caught up, then has a checkpoint stage what changed
    /// (readable, not yet durable), so the state holds every row written before the query began.
    pub(crate) fn pull_catch_up(&self, table: &str) -> Result<()> {
        let engine = &self.eddy.inner.engine;
        let timeout = self.pull_timeout();
        engine.wait_caught_up(None, timeout).map_err(|_| {
            invalid(format!(
                "pull query on {table} timed out after {} ms waiting for the queries that feed it to catch up",
                timeout.as_millis()
            ))
        })?;
        if engine.is_dirty() {
            engine.checkpoint_readable(timeout)?;
        }
        Ok(())
    }

    /// The most state entries one pull query may read (`eddy.pull.max.scanned.rows`).
    pub(crate) fn max_scanned_rows(&self) -> u64 {
        self.props.get(super::pull_check::MAX_SCANNED_ROWS).and_then(|v| v.trim().parse().ok()).unwrap_or(super::pull_check::DEFAULT_MAX_SCANNED_ROWS)
    }
}

fn norm_text_of(kind: &datafusion::sql::sqlparser::ast::SelectItemQualifiedWildcardKind) -> String {
    use datafusion::sql::sqlparser::ast::SelectItemQualifiedWildcardKind as K;
    match kind {
        K::ObjectName(n) => n.0.last().and_then(|p| p.as_ident()).map(norm_ident).unwrap_or_default(),
        K::Expr(e) => norm_text(e),
    }
}

/// ORDER BY items: a select alias names its expression, anything else binds with `binder`.
fn bind_order(q: &Query, items: &[(String, Typed)], binder: &Binder<'_>) -> Result<Vec<SortExpr>> {
    let mut out = Vec::new();
    for o in &q.order_by {
        let alias = match &o.expr {
            AstExpr::Identifier(id) => items.iter().find(|(n, _)| *n == norm_ident(id)).map(|(_, t)| t.clone()),
            _ => None,
        };
        let t = match alias {
            Some(t) => t,
            None => binder.bind(&o.expr)?,
        };
        out.push(t.expr.sort(o.asc, o.nulls_first));
    }
    Ok(out)
}

/// Plans and runs `plan` on one core. DataFusion is async; the query runs on a thread of its own
/// with a current-thread runtime, so that callers inside and outside a runtime can wait for it.
fn run_plan(plan: datafusion::logical_expr::LogicalPlan) -> Result<Vec<RecordBatch>> {
    let config = SessionConfig::new().with_target_partitions(1).with_batch_size(8192);
    let ctx = SessionContext::new_with_config(config);
    let run = move || -> Result<Vec<RecordBatch>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| invalid(format!("cannot run the pull query: {e}")))?;
        rt.block_on(async move {
            let df = ctx.execute_logical_plan(plan).await.map_err(df_error)?;
            df.collect().await.map_err(df_error)
        })
    };
    std::thread::scope(|s| s.spawn(run).join()).unwrap_or_else(|_| Err(invalid("the pull query failed")))
}
