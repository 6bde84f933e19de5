//! Queries on the PostgreSQL system catalogs, answered with DataFusion over the tables
//! [`super::pgcatalog`] builds. Drivers and tools send PostgreSQL's SQL here, not ksqlDB's:
//! joins, correlated subqueries, `CASE`, `= ANY (ARRAY[...])`, regex operators and casts to
//! `regclass`, `oid`, `name`. The statement is parsed with sqlparser's PostgreSQL dialect and a
//! few PostgreSQL-only forms are rewritten before DataFusion plans it:
//! - `x::regclass`, `x::regtype` become lookups of the relation or type oid (and `::text` after
//!   them the name again); `::oid` is a BIGINT, `::name` and `::"char"` are TEXT;
//! - `pg_catalog.f(...)` is `f(...)`, `OPERATOR(pg_catalog.~)` is `~`, `COLLATE` is dropped;
//! - `x = ANY (ARRAY[a, b])` is `x IN (a, b)` (and `<> ALL` is `NOT IN`).
//!
//! PostgreSQL's catalog functions are there (`format_type`, `pg_table_is_visible`,
//! `pg_get_expr`, `current_setting`, `to_regtype`, ...). A query this cannot answer gets SQLSTATE
//! 0A000 with DataFusion's reason; the session carries on.

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, visit_relations_mut, BinaryOperator, CastKind, DataType as SqlType, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName, ObjectNamePart, Statement, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use pgwire::error::{ErrorInfo, PgWireError};
use planner::catalog::Catalog;
use planner::RowSet;

use super::pgcatalog::{self, DATABASE};

type DfResult<T> = datafusion::error::Result<T>;
type EvalFn = dyn Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync;

/// Names that make a query a catalog query.
const CATALOG_WORDS: &[&str] = &[
    "pg_catalog", "information_schema", "pg_type", "pg_namespace", "pg_class", "pg_attribute", "pg_database", "pg_proc",
    "pg_settings", "pg_roles", "pg_user", "pg_index", "pg_constraint", "pg_description", "pg_attrdef", "pg_enum",
    "pg_range", "pg_tables", "pg_views", "pg_matviews", "pg_am", "pg_extension", "pg_collation", "pg_inherits",
    "pg_sequence", "pg_tablespace", "pg_trigger", "pg_rewrite", "pg_shdescription", "current_setting", "pg_backend_pid",
    "to_regtype", "to_regclass", "format_type", "has_table_privilege", "has_schema_privilege", "pg_get_userbyid",
    "pg_is_in_recovery", "pg_encoding_to_char", "current_database", "current_schema", "current_user", "session_user",
];

/// True when `sql` is a query on the system catalogs (and names no stream or table of Eddy's).
pub fn is_catalog_query(sql: &str, catalog: &Catalog) -> bool {
    let lower = sql.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
    if !matches!(words.first(), Some(&"select") | Some(&"with")) {
        return false;
    }
    let ours = |w: &str| catalog.sources.keys().any(|k| k.eq_ignore_ascii_case(w));
    words.iter().any(|w| CATALOG_WORDS.contains(w) && !ours(w))
}

fn error(message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), "0A000".into(), message)))
}

/// Runs a catalog query.
pub async fn run(catalog: &Catalog, sql: &str) -> Result<RowSet, PgWireError> {
    let unsupported = |e: &dyn fmt::Display| error(format!("eddy cannot answer this catalog query: {e}"));
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| unsupported(&e))?;
    if statements.len() != 1 {
        return Err(error("expected one catalog query".into()));
    }
    let mut st = statements.pop().expect("one statement");
    if !matches!(st, Statement::Query(_)) {
        return Err(error("only queries can read the system catalogs".into()));
    }
    let tables = pgcatalog::tables(catalog);
    let empty: HashSet<String> = tables.iter().filter(|t| t.batch.num_rows() == 0).map(|t| t.name.to_string()).collect();
    rewrite(&mut st, &empty);
    if let Statement::Query(q) = &mut st {
        unique_names(q.body.as_mut());
    }
    let ctx = context(catalog, tables).map_err(|e| unsupported(&e))?;
    let (schema, batches) = match collect(&ctx, st.clone()).await {
        Ok(r) => r,
        // A query over a catalog without rows has no rows, whatever its select list says:
        // answer it with the columns as NULLs when DataFusion cannot plan the expressions.
        Err(e) => match nothing_but_columns(&st, &empty) {
            Some(fallback) => collect(&ctx, fallback).await.map_err(|_| unsupported(&e))?,
            None => return Err(unsupported(&e)),
        },
    };
    // The wire types know Utf8, not Utf8View or LargeUtf8; integers of other widths are widened.
    let wire = |dt: &DataType| match dt {
        DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) | DataType::List(_) | DataType::Null => DataType::Utf8,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        other => other.clone(),
    };
    let out_schema = Arc::new(Schema::new(schema.fields().iter().map(|f| Field::new(f.name(), wire(f.data_type()), true)).collect::<Vec<_>>()));
    let mut out = Vec::new();
    for b in batches {
        let cols = b
            .columns()
            .iter()
            .zip(out_schema.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unsupported(&e))?;
        out.push(RecordBatch::try_new(out_schema.clone(), cols).map_err(|e| unsupported(&e))?);
    }
    Ok(RowSet { schema: out_schema, batches: out })
}

/// Plans and runs one statement; the schema is the plan's, so a result without rows still has
/// its columns.
async fn collect(ctx: &SessionContext, st: Statement) -> DfResult<(datafusion::arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
    let plan = ctx.state().statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(st))).await?;
    let schema = Arc::new(plan.schema().as_arrow().clone());
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    Ok((schema, batches))
}

/// `st` with NULL for every selected expression (aliases kept) and no WHERE or ORDER BY, when
/// every branch of it reads a catalog without rows: it has no rows either.
fn nothing_but_columns(st: &Statement, empty: &HashSet<String>) -> Option<Statement> {
    let Statement::Query(q) = st else { return None };
    let mut q = q.clone();
    q.order_by = None;
    nullify(q.body.as_mut(), empty).then_some(Statement::Query(q))
}

/// Nulls the select lists of `body`'s branches; false unless every branch reads nothing.
fn nullify(body: &mut datafusion::sql::sqlparser::ast::SetExpr, empty: &HashSet<String>) -> bool {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    match body {
        SetExpr::Select(sel) => {
            if !select_yields_nothing(sel, empty) {
                return false;
            }
            sel.selection = None;
            for (i, item) in sel.projection.iter_mut().enumerate() {
                let alias = match item {
                    SelectItem::ExprWithAlias { alias, .. } => alias.clone(),
                    SelectItem::UnnamedExpr(Expr::Identifier(id)) => id.clone(),
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) if !parts.is_empty() => parts[parts.len() - 1].clone(),
                    SelectItem::UnnamedExpr(_) => Ident::new(format!("?column{i}?")),
                    _ => continue,
                };
                *item = SelectItem::ExprWithAlias { expr: Expr::Value(Value::Null.into()), alias };
            }
            true
        }
        SetExpr::SetOperation { left, right, .. } => nullify(left, empty) & nullify(right, empty),
        SetExpr::Query(q) => nullify(q.body.as_mut(), empty),
        _ => false,
    }
}

/// A session with the catalog tables (in `pg_catalog`, `information_schema`, and unqualified)
/// and PostgreSQL's catalog functions.
fn context(catalog: &Catalog, tables: Vec<pgcatalog::CatalogTable>) -> DfResult<SessionContext> {
    let mut config = SessionConfig::new().with_information_schema(false);
    config.options_mut().sql_parser.map_string_types_to_utf8view = false;
    let ctx = SessionContext::new_with_config(config);
    let cat = ctx.catalog("datafusion").expect("the default catalog");
    for schema in ["pg_catalog", "information_schema"] {
        cat.register_schema(schema, Arc::new(MemorySchemaProvider::new()))?;
    }
    for t in tables {
        let schema = cat.schema(t.schema).expect("registered");
        let mem = Arc::new(MemTable::try_new(t.batch.schema(), vec![vec![t.batch.clone()]])?);
        schema.register_table(t.name.to_string(), mem.clone())?;
        if t.schema == "pg_catalog" {
            cat.schema("public").expect("the default schema").register_table(t.name.to_string(), mem)?;
        }
    }
    for f in functions(catalog) {
        ctx.register_udf(f);
    }
    Ok(ctx)
}

// ---- the rewrite ---------------------------------------------------------------------------

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn type_name(t: &SqlType) -> Option<String> {
    match t {
        SqlType::Regclass => Some("regclass".into()),
        SqlType::Custom(name, _) => name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()),
        _ => None,
    }
}

/// A PostgreSQL type name DataFusion knows by another spelling.
fn plain_type(name: &str) -> Option<SqlType> {
    Some(match name {
        "text" | "varchar" | "bpchar" => SqlType::Text,
        "int2" | "smallint" => SqlType::SmallInt(None),
        "int4" | "int" | "integer" => SqlType::Int(None),
        "int8" | "bigint" => SqlType::BigInt(None),
        "bool" | "boolean" => SqlType::Boolean,
        "float4" | "real" => SqlType::Real,
        "float8" => SqlType::Float8,
        _ => return None,
    })
}

fn is_text(t: &SqlType) -> bool {
    matches!(t, SqlType::Text | SqlType::Varchar(_) | SqlType::String(_)) || type_name(t).as_deref() == Some("name")
}

/// The name of a function call, if `e` is one with that many plain arguments.
fn called(e: &Expr) -> Option<(String, Vec<Expr>)> {
    let Expr::Function(f) = e else { return None };
    let name = f.name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    let FunctionArguments::List(l) = &f.args else { return Some((name, vec![])) };
    let args = l
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((name, args))
}

/// Rewrites PostgreSQL-only forms into what DataFusion plans; `empty` names the catalog tables
/// without rows.
fn rewrite(st: &mut Statement, empty: &HashSet<String>) {
    let _ = visit_relations_mut(st, |name| {
        // `eddy.pg_catalog.pg_class`: the database part names this database.
        if name.0.len() == 3 && name.0[0].as_ident().is_some_and(|i| i.value.eq_ignore_ascii_case(DATABASE)) {
            name.0.remove(0);
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_expressions_mut(st, |e| {
        let replaced = match e {
            Expr::Cast { kind: CastKind::Cast | CastKind::DoubleColon, expr, data_type, .. } => {
                let inner = called(expr);
                match type_name(data_type).as_deref() {
                    Some("regclass") => Some(call("eddy_regclass", vec![(**expr).clone()])),
                    Some("regtype") => Some(call("eddy_regtype", vec![(**expr).clone()])),
                    Some("oid" | "regproc" | "regnamespace" | "regprocedure" | "xid") => {
                        *data_type = SqlType::BigInt(None);
                        None
                    }
                    Some("char" | "name" | "int2vector" | "oidvector" | "_text" | "_oid" | "aclitem" | "_aclitem") => {
                        *data_type = SqlType::Text;
                        None
                    }
                    Some(other) if plain_type(other).is_some() && matches!(data_type, SqlType::Custom(..)) => {
                        // `x::pg_catalog.text` and the like: the type without its schema.
                        *data_type = plain_type(other).expect("checked");
                        if is_text(data_type) {
                            match inner {
                                Some((n, args)) if n == "eddy_regclass" => Some(call("eddy_regclass_name", args)),
                                Some((n, args)) if n == "eddy_regtype" => Some(call("eddy_regtype_name", args)),
                                _ => None,
                            }
                        } else {
                            None
                        }
                    }
                    _ if is_text(data_type) => match inner {
                        Some((n, args)) if n == "eddy_regclass" => Some(call("eddy_regclass_name", args)),
                        Some((n, args)) if n == "eddy_regtype" => Some(call("eddy_regtype_name", args)),
                        _ => {
                            if type_name(data_type).as_deref() == Some("name") {
                                *data_type = SqlType::Text;
                            }
                            None
                        }
                    },
                    _ => None,
                }
            }
            Expr::Function(f) => {
                if f.name.0.len() == 2 && f.name.0[0].as_ident().is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog")) {
                    f.name.0.remove(0);
                }
                None
            }
            Expr::BinaryOp { op: BinaryOperator::PGCustomBinaryOperator(parts), .. } => {
                let op = match parts.last().map(String::as_str) {
                    Some("~") => Some(BinaryOperator::PGRegexMatch),
                    Some("!~") => Some(BinaryOperator::PGRegexNotMatch),
                    Some("~*") => Some(BinaryOperator::PGRegexIMatch),
                    Some("~~") => Some(BinaryOperator::PGLikeMatch),
                    Some("=") => Some(BinaryOperator::Eq),
                    Some("<>") => Some(BinaryOperator::NotEq),
                    _ => None,
                };
                if let (Some(op), Expr::BinaryOp { op: o, .. }) = (op, &mut *e) {
                    *o = op;
                }
                None
            }
            Expr::Collate { expr, .. } => Some((**expr).clone()),
            // A subquery over a catalog Eddy has nothing in (defaults, collations, sequences, ...)
            // yields no row: say so, rather than ask DataFusion to decorrelate it.
            Expr::Subquery(q) if yields_nothing(q, empty) && !is_aggregated(q) => Some(Expr::Value(Value::Null.into())),
            Expr::Exists { subquery, negated } if yields_nothing(subquery, empty) => Some(Expr::Value(Value::Boolean(*negated).into())),
            Expr::InSubquery { subquery, negated, .. } if yields_nothing(subquery, empty) => Some(Expr::Value(Value::Boolean(*negated).into())),
            Expr::Subquery(q) => {
                aggregate_scalar(q);
                None
            }
            Expr::Like { negated, expr, pattern, escape_char: Some(esc), any: false } if esc.value != Value::SingleQuotedString("\\".into()) => {
                let esc = match &esc.value {
                    Value::SingleQuotedString(c) => c.clone(),
                    other => other.to_string(),
                };
                let m = call("eddy_like", vec![(**expr).clone(), (**pattern).clone(), Expr::Value(Value::SingleQuotedString(esc).into())]);
                Some(if *negated { Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Not, expr: Box::new(m) } } else { m })
            }
            Expr::AnyOp { left, compare_op: BinaryOperator::Eq, right, .. } => match strip_nested(right) {
                Expr::Array(a) => Some(Expr::InList { expr: left.clone(), list: a.elem.clone(), negated: false }),
                _ => None,
            },
            Expr::AllOp { left, compare_op: BinaryOperator::NotEq, right } => match strip_nested(right) {
                Expr::Array(a) => Some(Expr::InList { expr: left.clone(), list: a.elem.clone(), negated: true }),
                _ => None,
            },
            _ => None,
        };
        if let Some(r) = replaced {
            *e = r;
        }
        ControlFlow::<()>::Continue(())
    });
}

/// PostgreSQL lets a select list repeat a name (`SELECT pubname, NULL, NULL`), DataFusion does
/// not: repeated unaliased expressions get `?column<i>?` aliases.
fn unique_names(body: &mut datafusion::sql::sqlparser::ast::SetExpr) {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    match body {
        SetExpr::Select(sel) => {
            let mut seen = HashSet::new();
            for (i, item) in sel.projection.iter_mut().enumerate() {
                if let SelectItem::UnnamedExpr(e) = item {
                    if !seen.insert(e.to_string()) {
                        *item = SelectItem::ExprWithAlias { expr: e.clone(), alias: Ident::new(format!("?column{i}?")) };
                    }
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            unique_names(left);
            unique_names(right);
        }
        SetExpr::Query(q) => unique_names(q.body.as_mut()),
        _ => {}
    }
}

/// True when `q` reads a catalog table without rows through an inner or cross join (or alone).
fn yields_nothing(q: &datafusion::sql::sqlparser::ast::Query, empty: &HashSet<String>) -> bool {
    match q.body.as_ref() {
        datafusion::sql::sqlparser::ast::SetExpr::Select(sel) => select_yields_nothing(sel, empty),
        _ => false,
    }
}

fn select_yields_nothing(sel: &datafusion::sql::sqlparser::ast::Select, empty: &HashSet<String>) -> bool {
    use datafusion::sql::sqlparser::ast::{JoinOperator, TableFactor};
    let is_empty = |f: &TableFactor| match f {
        TableFactor::Table { name, .. } => name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| empty.contains(&i.value.to_ascii_lowercase())),
        _ => false,
    };
    sel.from.iter().any(|t| {
        is_empty(&t.relation)
            || t.joins.iter().any(|j| {
                matches!(j.join_operator, JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)) && is_empty(&j.relation)
            })
    })
}

/// True when the subquery's one result is an aggregate (which has a row even over no rows).
fn is_aggregated(q: &datafusion::sql::sqlparser::ast::Query) -> bool {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    let SetExpr::Select(sel) = q.body.as_ref() else { return true };
    sel.projection.iter().any(|p| match p {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            matches!(called(e), Some((n, _)) if ["count", "max", "min", "sum", "avg", "array_agg", "string_agg", "bool_and", "bool_or", "json_agg"].contains(&n.as_str()))
        }
        _ => true,
    })
}

/// A scalar subquery yields at most one row (PostgreSQL fails otherwise); DataFusion only plans
/// a correlated one that says so by aggregating: `(SELECT x ...)` becomes `(SELECT max(x) ...)`.
fn aggregate_scalar(q: &mut datafusion::sql::sqlparser::ast::Query) {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, SelectItem, SetExpr};
    let SetExpr::Select(sel) = q.body.as_mut() else { return };
    if sel.projection.len() != 1 || !matches!(&sel.group_by, GroupByExpr::Expressions(g, _) if g.is_empty()) {
        return;
    }
    if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = &mut sel.projection[0] {
        let aggregated = matches!(called(e), Some((n, _)) if ["count", "max", "min", "sum", "avg", "array_agg", "string_agg", "bool_and", "bool_or"].contains(&n.as_str()));
        if !aggregated {
            *e = call("max", vec![e.clone()]);
        }
    }
}

fn strip_nested(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(inner) => strip_nested(inner),
        other => other,
    }
}

// ---- functions -----------------------------------------------------------------------------

/// A catalog function: a closure over whole argument arrays.
struct PgFn {
    name: String,
    signature: Signature,
    ret: DataType,
    f: Arc<EvalFn>,
}

impl fmt::Debug for PgFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgFn").field("name", &self.name).finish()
    }
}

impl PartialEq for PgFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.f, &other.f)
    }
}

impl Eq for PgFn {}

impl Hash for PgFn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFn {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.ret.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<Vec<_>>>()?;
        Ok(ColumnarValue::Array((self.f)(&arrays, rows)?))
    }
}

fn udf(name: &str, arity: Option<usize>, ret: DataType, f: impl Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync + 'static) -> ScalarUDF {
    let signature = match arity {
        Some(0) => Signature::nullary(Volatility::Stable),
        _ => Signature::variadic_any(Volatility::Stable),
    };
    ScalarUDF::new_from_impl(PgFn { name: name.to_string(), signature, ret, f: Arc::new(f) })
}

fn texts(a: &ArrayRef) -> DfResult<Vec<Option<String>>> {
    let s = cast(a, &DataType::Utf8)?;
    Ok(s.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
}

fn ints(a: &ArrayRef) -> DfResult<Vec<Option<i64>>> {
    let s = cast(a, &DataType::Int64)?;
    Ok(s.as_primitive::<datafusion::arrow::datatypes::Int64Type>().iter().collect())
}

fn constant_text(v: Option<String>, rows: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![v; rows]))
}

/// The catalog functions, some of them over `catalog`.
fn functions(catalog: &Catalog) -> Vec<ScalarUDF> {
    let rels: Vec<(i64, String)> = pgcatalog::relations(catalog).into_iter().map(|r| (r.oid, r.name)).collect();
    let cat = Arc::new(catalog.clone());
    let mut out = Vec::new();
    let text = DataType::Utf8;
    for name in ["pg_table_is_visible", "pg_type_is_visible", "pg_collation_is_visible", "pg_function_is_visible", "has_table_privilege", "has_schema_privilege", "has_database_privilege", "has_column_privilege", "pg_has_role"] {
        out.push(udf(name, None, DataType::Boolean, |_, rows| Ok(Arc::new(BooleanArray::from(vec![true; rows])) as ArrayRef)));
    }
    out.push(udf("pg_is_in_recovery", Some(0), DataType::Boolean, |_, rows| Ok(Arc::new(BooleanArray::from(vec![false; rows])) as ArrayRef)));
    out.push(udf("pg_relation_is_publishable", None, DataType::Boolean, |_, rows| Ok(Arc::new(BooleanArray::from(vec![false; rows])) as ArrayRef)));
    for name in [
        "pg_get_expr", "pg_get_serial_sequence", "obj_description", "col_description", "shobj_description", "pg_get_indexdef",
        "pg_get_constraintdef", "pg_get_viewdef", "pg_get_triggerdef", "pg_get_function_identity_arguments", "pg_get_partkeydef",
        "pg_get_statisticsobjdef_columns",
    ] {
        out.push(udf(name, None, text.clone(), |_, rows| Ok(constant_text(None, rows))));
    }
    out.push(udf("pg_get_userbyid", None, text.clone(), |_, rows| Ok(constant_text(Some("eddy".into()), rows))));
    out.push(udf("pg_encoding_to_char", None, text.clone(), |_, rows| Ok(constant_text(Some("UTF8".into()), rows))));
    for (name, value) in [("current_schema", "public"), ("current_database", DATABASE), ("current_user", "eddy"), ("session_user", "eddy"), ("user", "eddy")] {
        out.push(udf(name, Some(0), text.clone(), move |_, rows| Ok(constant_text(Some(value.into()), rows))));
    }
    out.push(udf("version", Some(0), text.clone(), |_, rows| {
        Ok(constant_text(Some(format!("PostgreSQL 14.0 (Eddy {})", env!("CARGO_PKG_VERSION"))), rows))
    }));
    out.push(udf("pg_backend_pid", Some(0), DataType::Int32, |_, rows| Ok(Arc::new(Int32Array::from(vec![std::process::id() as i32; rows])) as ArrayRef)));
    for name in ["pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_indexes_size"] {
        out.push(udf(name, None, DataType::Int64, |_, rows| Ok(Arc::new(Int64Array::from(vec![0i64; rows])) as ArrayRef)));
    }
    out.push(udf("current_setting", None, text.clone(), |args, _| {
        let names = texts(&args[0])?;
        let v: Vec<Option<String>> = names
            .iter()
            .map(|n| {
                n.as_ref().and_then(|n| super::pgcompat::settings().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.to_string()))
            })
            .collect();
        Ok(Arc::new(StringArray::from(v)) as ArrayRef)
    }));
    out.push(udf("format_type", None, text.clone(), |args, rows| {
        let oids = ints(&args[0])?;
        let mods = match args.get(1) {
            Some(a) => ints(a)?,
            None => vec![None; rows],
        };
        let v: Vec<Option<String>> = oids.iter().zip(mods).map(|(o, m)| pgcatalog::format_type((*o)?, m.unwrap_or(-1))).collect();
        Ok(Arc::new(StringArray::from(v)) as ArrayRef)
    }));
    let regclass = {
        let cat = cat.clone();
        move |args: &[ArrayRef], _rows: usize| -> DfResult<ArrayRef> {
            let a = &args[0];
            let v: Vec<Option<i64>> = if matches!(a.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) {
                texts(a)?.iter().map(|n| n.as_ref().and_then(|n| pgcatalog::regclass(&cat, n))).collect()
            } else {
                ints(a)?
            };
            Ok(Arc::new(Int64Array::from(v)) as ArrayRef)
        }
    };
    out.push(udf("eddy_regclass", None, DataType::Int64, regclass.clone()));
    out.push(udf("to_regclass", None, DataType::Int64, regclass));
    let regtype = |args: &[ArrayRef], _rows: usize| -> DfResult<ArrayRef> {
        let a = &args[0];
        let v: Vec<Option<i64>> = if matches!(a.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) {
            texts(a)?.iter().map(|n| n.as_deref().and_then(pgcatalog::regtype)).collect()
        } else {
            ints(a)?
        };
        Ok(Arc::new(Int64Array::from(v)) as ArrayRef)
    };
    out.push(udf("eddy_regtype", None, DataType::Int64, regtype));
    out.push(udf("to_regtype", None, DataType::Int64, regtype));
    out.push(udf("eddy_regclass_name", None, text.clone(), move |args, _| {
        let a = &args[0];
        let v: Vec<Option<String>> = if matches!(a.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) {
            texts(a)?
        } else {
            ints(a)?.iter().map(|o| o.map(|o| rels.iter().find(|(r, _)| *r == o).map(|(_, n)| n.clone()).unwrap_or_else(|| o.to_string()))).collect()
        };
        Ok(Arc::new(StringArray::from(v)) as ArrayRef)
    }));
    out.push(udf("eddy_regtype_name", None, text.clone(), |args, _| {
        let a = &args[0];
        let v: Vec<Option<String>> = if matches!(a.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) {
            texts(a)?
        } else {
            ints(a)?.iter().map(|o| o.and_then(pgcatalog::regtype_name)).collect()
        };
        Ok(Arc::new(StringArray::from(v)) as ArrayRef)
    }));
    out.push(udf("quote_ident", None, text.clone(), |args, _| {
        let v: Vec<Option<String>> = texts(&args[0])?
            .into_iter()
            .map(|s| {
                s.map(|s| {
                    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    if plain { s } else { format!("\"{}\"", s.replace('"', "\"\"")) }
                })
            })
            .collect();
        Ok(Arc::new(StringArray::from(v)) as ArrayRef)
    }));
    out.push(udf("eddy_like", None, DataType::Boolean, |args, rows| {
        let (values, patterns, escapes) = (texts(&args[0])?, texts(&args[1])?, texts(&args[2])?);
        let v: Vec<Option<bool>> = (0..rows)
            .map(|r| {
                let esc = escapes[r].as_deref().and_then(|e| e.chars().next());
                Some(like(values[r].as_deref()?, patterns[r].as_deref()?, esc))
            })
            .collect();
        Ok(Arc::new(BooleanArray::from(v)) as ArrayRef)
    }));
    out.push(udf("json_build_object", None, text, |args, rows| {
        let cols = args.iter().map(texts).collect::<DfResult<Vec<_>>>()?;
        let v: Vec<Option<String>> = (0..rows)
            .map(|r| {
                let mut m = serde_json::Map::new();
                for pair in cols.chunks(2) {
                    let k = pair[0][r].clone().unwrap_or_default();
                    let v = pair.get(1).and_then(|c| c[r].clone()).map(serde_json::Value::String).unwrap_or(serde_json::Value::Null);
                    m.insert(k, v);
                }
                Some(serde_json::Value::Object(m).to_string())
            })
            .collect();
        Ok(Arc::new(StringArray::from(v)) as ArrayRef)
    }));
    out
}

/// SQL LIKE with `%`, `_` and an escape character.
fn like(value: &str, pattern: &str, escape: Option<char>) -> bool {
    // Pattern items: Some(c) a literal char, None for `_`; `%` as a separate marker.
    enum P {
        Char(char),
        One,
        Any,
    }
    let mut items = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        items.push(match c {
            c if Some(c) == escape => P::Char(chars.next().unwrap_or(c)),
            '%' => P::Any,
            '_' => P::One,
            c => P::Char(c),
        });
    }
    let v: Vec<char> = value.chars().collect();
    // dp[j]: the first i chars of the value match the first j items.
    let mut dp = vec![false; items.len() + 1];
    dp[0] = true;
    for j in 0..items.len() {
        dp[j + 1] = dp[j] && matches!(items[j], P::Any);
    }
    for ch in &v {
        let mut next = vec![false; items.len() + 1];
        for j in 0..items.len() {
            next[j + 1] = match items[j] {
                P::Any => next[j] || dp[j + 1],
                P::One => dp[j],
                P::Char(c) => dp[j] && c == *ch,
            };
        }
        dp = next;
    }
    dp[items.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let eddy_dir = tempfile::tempdir().unwrap();
        let eddy = planner::Eddy::open(eddy_dir.path(), engine::EngineConfig::default()).unwrap();
        let mut s = eddy.session();
        s.execute_all(
            "CREATE STREAM clicks (id INT KEY, page STRING, amount DECIMAL(10, 2)) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE users (uid BIGINT PRIMARY KEY, name STRING) WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=1);",
        )
        .unwrap();
        let c = eddy.catalog();
        let _ = eddy.shutdown();
        c
    }

    fn rows(rs: &RowSet) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for b in &rs.batches {
            for r in 0..b.num_rows() {
                out.push(
                    b.columns()
                        .iter()
                        .map(|c| if c.is_null(r) { "NULL".to_string() } else { datafusion::arrow::util::display::array_value_to_string(c, r).unwrap() })
                        .collect(),
                );
            }
        }
        out
    }

    async fn q(c: &Catalog, sql: &str) -> Vec<Vec<String>> {
        match run(c, sql).await {
            Ok(rs) => rows(&rs),
            Err(e) => panic!("{sql}: {e:?}"),
        }
    }

    #[tokio::test]
    async fn sqlalchemy_lists_tables_and_columns() {
        let c = catalog();
        let tables = q(
            &c,
            "SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace \
             WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r'::VARCHAR, 'p'::VARCHAR]) AND pg_catalog.pg_class.relpersistence != 't'::VARCHAR \
             AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != 'pg_catalog'::VARCHAR ORDER BY 1",
        )
        .await;
        assert_eq!(tables, vec![vec!["CLICKS"], vec!["EDDY_PROCESSING_LOG"], vec!["USERS"]]);
        let cols = q(
            &c,
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
             CASE WHEN a.atthasdef THEN (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) ELSE NULL END AS \"default\" \
             FROM pg_catalog.pg_class c LEFT OUTER JOIN pg_catalog.pg_attribute a ON c.oid = a.attrelid AND a.attnum > 0::SMALLINT AND NOT a.attisdropped \
             WHERE c.relname IN ('CLICKS') AND c.oid = 'CLICKS'::regclass ORDER BY c.relname, a.attnum",
        )
        .await;
        assert_eq!(
            cols,
            vec![
                vec!["ID", "integer", "false", "NULL"],
                vec!["PAGE", "text", "false", "NULL"],
                vec!["AMOUNT", "numeric(10,2)", "false", "NULL"],
            ]
        );
    }

    #[tokio::test]
    async fn information_schema_and_jdbc_style_queries() {
        let c = catalog();
        let cols = q(&c, "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 'USERS' ORDER BY ordinal_position").await;
        assert_eq!(cols, vec![vec!["UID", "bigint", "NO"], vec!["NAME", "text", "YES"]]);
        let jdbc = q(
            &c,
            "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c \
             LEFT JOIN pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0 AND d.classoid = 'pg_class'::regclass) \
             WHERE c.relnamespace = n.oid AND c.relname LIKE 'U%' AND n.nspname !~ '^pg_' AND c.relkind IN ('r', 'p') ORDER BY TABLE_NAME",
        )
        .await;
        assert_eq!(jdbc, vec![vec!["NULL", "public", "USERS"]]);
        let psql = q(&c, "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE pg_catalog.default").await;
        assert!(psql.is_empty());
        let t = q(&c, "SELECT t.oid::regtype::text, typname FROM pg_type t WHERE t.oid = to_regtype('int4')").await;
        assert_eq!(t, vec![vec!["integer", "int4"]]);
        assert!(q(&c, "SELECT oid FROM pg_type WHERE oid = to_regtype('hstore')").await.is_empty());
    }

    #[test]
    fn like_takes_any_escape_character() {
        assert!(like("pg_class", "pg/_%", Some('/')));
        assert!(!like("pgxclass", "pg/_%", Some('/')));
        assert!(like("abc", "a_c", None));
        assert!(like("a%c", "a\\%c", Some('\\')));
        assert!(!like("abc", "a\\%c", Some('\\')));
        assert!(like("", "%", None));
    }

    #[tokio::test]
    async fn unanswerable_queries_get_a_clear_error() {
        let c = catalog();
        let e = run(&c, "SELECT * FROM pg_catalog.pg_no_such_table").await.unwrap_err();
        let info: ErrorInfo = e.into();
        assert_eq!(info.code, "0A000");
        assert!(info.message.starts_with("eddy cannot answer this catalog query: "), "{}", info.message);
        assert!(is_catalog_query("select * from pg_catalog.pg_class", &c));
        assert!(!is_catalog_query("SELECT * FROM users WHERE uid = 1", &c));
        assert!(!is_catalog_query("SHOW STREAMS", &c));
    }
}
