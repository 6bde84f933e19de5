//! The binder: turns sqlparser expressions into typed DataFusion expressions over the columns
//! in scope, following ksqlDB's type rules (implicit widening only, explicit CASTs otherwise),
//! so that DataFusion evaluates them without its own coercions.

pub mod aggregate;
pub mod coerce;
pub mod functions;
pub mod lists;
mod literal;
pub mod struct_star;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    lit, Between, BinaryExpr, Case, Cast, Expr, ExprSchemable, Like, Operator, ScalarUDF,
};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use datafusion::sql::sqlparser::ast::{
    self, AccessExpr, BinaryOperator, DataType as AstType, Expr as AstExpr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Subscript, UnaryOperator,
};

use self::coerce::{arithmetic_result, can_widen, common_type, is_numeric, is_string, numeric_common, Arith};
use self::functions::{Arg, FunctionRegistry};
use crate::error::{invalid, PlanError, Result};
use crate::parser::{norm_ident, parse_type_str};
use crate::types::{canonical, type_name, SqlType};

/// A bound expression and its SQL type (a canonical Arrow type, or Null for an untyped NULL).
#[derive(Debug, Clone)]
pub struct Typed {
    /// The DataFusion expression.
    pub expr: Expr,
    /// Its type.
    pub dt: DataType,
}

impl Typed {
    /// A typed expression.
    pub fn new(expr: Expr, dt: DataType) -> Self {
        Typed { expr, dt }
    }

    /// This expression converted to `to` (a no-op when the type is already `to`).
    pub fn cast_to(self, to: &DataType) -> Typed {
        if &self.dt == to {
            return self;
        }
        if crate::functions::cast::needs_ksql_cast(&self.dt, to) {
            // Narrowing and STRUCTs of other fields follow ksqlDB, not Arrow.
            let target = to.clone();
            let f = crate::functions::udf::udf("__ksql_cast", to.clone(), move |args, _| crate::functions::cast::ksql_cast(&args[0], &target));
            return Typed { expr: call_udf(f, vec![self.expr]), dt: to.clone() };
        }
        Typed { expr: Expr::Cast(Cast::new(Box::new(self.expr), to.clone())), dt: to.clone() }
    }
}

/// A column that expressions can refer to.
#[derive(Debug, Clone)]
pub struct ScopeColumn {
    /// The source alias (or name) that qualifies it, if any.
    pub qualifier: Option<String>,
    /// Its SQL name.
    pub name: String,
    /// The name of the batch column holding it.
    pub field: String,
    /// Its type.
    pub data_type: DataType,
}

/// The columns in scope for an expression.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Columns, in batch order.
    pub columns: Vec<ScopeColumn>,
}

impl Scope {
    /// Finds a column by (optional qualifier, name). Without a qualifier, a column that has none
    /// (like a join's ROWTIME) wins over qualified ones of the same name.
    pub fn resolve(&self, qualifier: Option<&str>, name: &str) -> Result<&ScopeColumn> {
        if qualifier.is_none() {
            let unqualified: Vec<&ScopeColumn> = self.columns.iter().filter(|c| c.name == name && c.qualifier.is_none()).collect();
            if unqualified.len() == 1 {
                return Ok(unqualified[0]);
            }
        }
        let matches: Vec<&ScopeColumn> = self
            .columns
            .iter()
            .filter(|c| c.name == name && (qualifier.is_none() || c.qualifier.as_deref() == qualifier))
            .collect();
        match matches.len() {
            1 => Ok(matches[0]),
            0 => {
                if let Some(q) = qualifier {
                    if !self.columns.iter().any(|c| c.qualifier.as_deref() == Some(q)) {
                        return Err(invalid(format!("'{q}' is not a valid stream/table name or alias")));
                    }
                    return Err(PlanError::UnknownObject { kind: "column", name: format!("{q}.{name}") });
                }
                Err(PlanError::UnknownObject { kind: "column", name: name.to_string() })
            }
            _ => Err(invalid(format!("column \"{name}\" is ambiguous: qualify it with a source name or alias"))),
        }
    }
}

/// Binds expressions against one input schema.
pub struct Binder<'a> {
    /// Columns in scope.
    pub scope: &'a Scope,
    /// The input batch schema, as DataFusion sees it (grows while aggregate calls are found).
    pub schema: Arc<DFSchema>,
    extra_fields: std::cell::RefCell<Vec<Field>>,
    /// Custom types.
    pub types: &'a BTreeMap<String, SqlType>,
    /// Functions.
    pub functions: &'a FunctionRegistry,
    /// Names that refer to lambda parameters, innermost last.
    pub lambda_params: Vec<(String, String, DataType)>,
    /// Set while binding expressions after an aggregation (SELECT and HAVING of GROUP BY).
    pub agg: Option<aggregate::AggScope<'a>>,
}

impl<'a> Binder<'a> {
    /// A binder over `scope`, whose columns are the fields of `schema`.
    pub fn new(
        scope: &'a Scope,
        schema: &Schema,
        types: &'a BTreeMap<String, SqlType>,
        functions: &'a FunctionRegistry,
    ) -> Result<Self> {
        let schema = Arc::new(DFSchema::try_from(schema.clone())?);
        Ok(Binder { scope, schema, types, functions, lambda_params: Vec::new(), agg: None, extra_fields: Default::default() })
    }

    /// Compiles a bound expression for the engine.
    pub fn physical(&self, t: &Typed) -> Result<Arc<dyn PhysicalExpr>> {
        physical_expr(t, &self.schema)
    }

    /// Adds a column that binding discovered (an aggregate result).
    pub fn add_field(&self, f: Field) {
        self.extra_fields.borrow_mut().push(f);
    }

    /// The schema expressions are typed against: the input plus discovered columns.
    pub fn type_schema(&self) -> Result<Arc<DFSchema>> {
        let extra = self.extra_fields.borrow();
        if extra.is_empty() {
            return Ok(self.schema.clone());
        }
        let mut fields: Vec<Field> = self.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(extra.iter().cloned());
        Ok(Arc::new(DFSchema::try_from(Schema::new(fields))?))
    }

    /// Binds an expression.
    pub fn bind(&self, e: &AstExpr) -> Result<Typed> {
        if let Some(agg) = &self.agg {
            if let Some(t) = agg.substitute(e, self)? {
                return Ok(t);
            }
        }
        match e {
            AstExpr::Identifier(id) => self.column(None, &norm_ident(id)),
            AstExpr::CompoundIdentifier(parts) => match parts.as_slice() {
                [q, n] => self.column(Some(&norm_ident(q)), &norm_ident(n)),
                _ => Err(invalid(format!("cannot resolve {e}: use -> to access STRUCT fields"))),
            },
            AstExpr::Value(v) => literal::bind_value(&v.value),
            AstExpr::Nested(inner) => self.bind(inner),
            AstExpr::UnaryOp { op, expr } => self.unary(*op, expr),
            AstExpr::BinaryOp { left, op, right } => self.binary(left, op, right),
            AstExpr::IsNull(x) => Ok(Typed::new(Expr::IsNull(Box::new(self.bind(x)?.expr)), DataType::Boolean)),
            AstExpr::IsNotNull(x) => Ok(Typed::new(Expr::IsNotNull(Box::new(self.bind(x)?.expr)), DataType::Boolean)),
            AstExpr::IsTrue(x) => self.bool_test(x, Expr::IsTrue),
            AstExpr::IsFalse(x) => self.bool_test(x, Expr::IsFalse),
            AstExpr::IsNotTrue(x) => self.bool_test(x, Expr::IsNotTrue),
            AstExpr::IsNotFalse(x) => self.bool_test(x, Expr::IsNotFalse),
            AstExpr::IsDistinctFrom(a, b) => self.compare(a, BinaryOperator::NotEq, b, Operator::IsDistinctFrom),
            AstExpr::IsNotDistinctFrom(a, b) => self.compare(a, BinaryOperator::Eq, b, Operator::IsNotDistinctFrom),
            AstExpr::Between { expr, negated, low, high } => {
                let (x, l) = self.comparable(expr, low, "BETWEEN")?;
                let (x, h) = self.comparable_typed(x, self.bind(high)?, expr, high, "BETWEEN")?;
                let l = l.cast_to(&x.dt);
                Ok(Typed::new(
                    Expr::Between(Between::new(Box::new(x.expr), *negated, Box::new(l.expr), Box::new(h.expr))),
                    DataType::Boolean,
                ))
            }
            AstExpr::InList { expr, list, negated } => {
                // ksqlDB coerces the left side and the list to one type, as an expression list.
                let x = self.bind(expr)?;
                let items = list.iter().map(|i| self.bind(i)).collect::<Result<Vec<_>>>()?;
                let all: Vec<&Typed> = std::iter::once(&x).chain(items.iter()).collect();
                let t = match lists::list_type(&all, "IN list") {
                    Ok(t) => t,
                    Err(e) => {
                        // The pairwise rules (time columns against text) as a fallback.
                        let mut x = x.clone();
                        let mut out = Vec::with_capacity(items.len());
                        for (item, ast) in items.iter().zip(list) {
                            let (a, b) = self.comparable_typed(x, item.clone(), expr, ast, "IN").map_err(|_| invalid(e.to_string()))?;
                            x = a;
                            out.push(b);
                        }
                        let out = out.into_iter().map(|i| i.cast_to(&x.dt).expr).collect();
                        return Ok(Typed::new(x.expr.in_list(out, *negated), DataType::Boolean));
                    }
                };
                let x = lists::coerce_to(self, x, &t)?;
                let items = items.into_iter().map(|i| lists::coerce_to(self, i, &t).map(|i| i.expr)).collect::<Result<Vec<_>>>()?;
                Ok(Typed::new(x.expr.in_list(items, *negated), DataType::Boolean))
            }
            AstExpr::Like { negated, expr, pattern, escape_char, any: false } => self.like(*negated, expr, pattern, escape_char, false),
            AstExpr::ILike { negated, expr, pattern, escape_char, any: false } => self.like(*negated, expr, pattern, escape_char, true),
            AstExpr::Case { operand, conditions, else_result, .. } => self.case(operand.as_deref(), conditions, else_result.as_deref()),
            AstExpr::Cast { expr, data_type, .. } => {
                let to = self.ast_type(data_type)?;
                let x = self.bind(expr)?;
                self.cast(x, &to)
            }
            AstExpr::Function(f) => self.function(f),
            // sqlparser gives these functions their own syntax; ksqlDB knows them as plain functions.
            AstExpr::Substring { expr, substring_from, substring_for, .. } => {
                let mut args = vec![Arg::Value(self.bind(expr)?)];
                for a in substring_from.iter().chain(substring_for.iter()) {
                    args.push(Arg::Value(self.bind(a)?));
                }
                self.functions.call(self, "SUBSTRING", args)
            }
            AstExpr::Trim { expr, trim_where: None, trim_what: None, trim_characters: None } => {
                self.functions.call(self, "TRIM", vec![Arg::Value(self.bind(expr)?)])
            }
            AstExpr::Ceil { expr, field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) } => {
                self.functions.call(self, "CEIL", vec![Arg::Value(self.bind(expr)?)])
            }
            AstExpr::Floor { expr, field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) } => {
                self.functions.call(self, "FLOOR", vec![Arg::Value(self.bind(expr)?)])
            }
            AstExpr::Array(a) => {
                let args = a.elem.iter().map(|x| self.bind(x).map(Arg::Value)).collect::<Result<Vec<_>>>()?;
                self.functions.call(self, "ARRAY", args)
            }
            AstExpr::CompoundFieldAccess { root, access_chain } => {
                // `alias.column[...]` parses as a field access on `alias`: resolve the column.
                let (mut cur, rest) = match (root.as_ref(), access_chain.first()) {
                    (AstExpr::Identifier(q), Some(AccessExpr::Dot(AstExpr::Identifier(c))))
                        if self.scope.resolve(None, &norm_ident(q)).is_err() =>
                    {
                        (self.column(Some(&norm_ident(q)), &norm_ident(c))?, &access_chain[1..])
                    }
                    _ => (self.bind(root)?, &access_chain[..]),
                };
                for access in rest {
                    cur = match access {
                        AccessExpr::Subscript(Subscript::Index { index }) => {
                            let idx = self.bind(index)?;
                            self.functions.call(self, "__SUBSCRIPT", vec![Arg::Value(cur), Arg::Value(idx)])?
                        }
                        AccessExpr::Dot(AstExpr::Identifier(id)) => self.field(cur, &norm_ident(id))?,
                        other => return Err(PlanError::Unsupported { feature: format!("access {other}") }),
                    };
                }
                Ok(cur)
            }
            AstExpr::Lambda(_) => Err(invalid("a lambda can only be an argument of a function such as TRANSFORM, FILTER or REDUCE")),
            AstExpr::TypedString(ts) => {
                let v = self.bind(&AstExpr::Value(ts.value.clone()))?;
                let to = self.ast_type(&ts.data_type)?;
                self.cast(v, &to)
            }
            other => Err(PlanError::Unsupported { feature: format!("expression {other}") }),
        }
    }

    fn column(&self, qualifier: Option<&str>, name: &str) -> Result<Typed> {
        if qualifier.is_none() {
            if let Some((_, field, dt)) = self.lambda_params.iter().rev().find(|(n, _, _)| n == name) {
                return Ok(Typed::new(Expr::Column(Column::new_unqualified(field)), dt.clone()));
            }
        }
        let c = match self.scope.resolve(qualifier, name) {
            Ok(c) => c,
            Err(e) => {
                if let Some(agg) = &self.agg {
                    if agg.source.scope.resolve(qualifier, name).is_ok() {
                        return Err(invalid(format!("Non-aggregate SELECT expression(s) not part of GROUP BY: {name}")));
                    }
                }
                return Err(e);
            }
        };
        Ok(Typed::new(Expr::Column(Column::new_unqualified(&c.field)), c.data_type.clone()))
    }

    /// The SQL type a sqlparser type stands for.
    pub fn ast_type(&self, t: &AstType) -> Result<DataType> {
        let sql = match t {
            AstType::Custom(name, _) => parse_type_str(name.to_string().trim_matches('"'))
                .map_err(|e| invalid(format!("invalid type {name}: {e}")))?,
            other => parse_type_str(&other.to_string()).map_err(|e| invalid(format!("invalid type {other}: {e}")))?,
        };
        sql.to_arrow(self.types)
    }

    /// CAST with ksqlDB's rules: which casts exist, and what they do.
    pub fn cast(&self, x: Typed, to: &DataType) -> Result<Typed> {
        if &x.dt == to || x.dt == DataType::Null {
            return Ok(x.cast_to(to));
        }
        let ok = match (&x.dt, to) {
            (a, b) if is_numeric(a) && is_numeric(b) => true,
            (_, DataType::Utf8) => true,
            (DataType::Utf8, _) => !matches!(to, DataType::List(_) | DataType::Map(_, _) | DataType::Struct(_)),
            (DataType::Boolean, b) => is_numeric(b),
            (DataType::Timestamp(_, _), DataType::Date32 | DataType::Time32(_)) => true,
            (DataType::Date32, DataType::Timestamp(_, _)) => true,
            (DataType::List(_), DataType::List(_)) | (DataType::Map(_, _), DataType::Map(_, _)) => true,
            (DataType::Struct(_), DataType::Struct(_)) => true,
            _ => false,
        };
        if !ok {
            return Err(invalid(format!("cast from {} to {} is not supported", type_name(&x.dt), type_name(to))));
        }
        if to == &DataType::Utf8 || x.dt == DataType::Utf8 || crate::functions::cast::needs_ksql_cast(&x.dt, to) {
            return self.functions.call(self, "__CAST", vec![Arg::Value(x), Arg::Value(Typed::new(lit(ScalarValue::Null), to.clone()))]);
        }
        Ok(x.cast_to(to))
    }

    fn field(&self, x: Typed, name: &str) -> Result<Typed> {
        let DataType::Struct(fields) = &x.dt else {
            return Err(invalid(format!("cannot access field \"{name}\" of {}: -> works on STRUCT values", type_name(&x.dt))));
        };
        let f = fields
            .iter()
            .find(|f| f.name() == name)
            .or_else(|| fields.iter().find(|f| f.name().eq_ignore_ascii_case(name)))
            .ok_or_else(|| PlanError::UnknownObject { kind: "struct field", name: name.to_string() })?;
        let get = datafusion::functions::core::get_field();
        let dt = f.data_type().clone();
        Ok(Typed::new(call_udf(get, vec![x.expr, lit(f.name().as_str())]), dt))
    }

    fn unary(&self, op: UnaryOperator, e: &AstExpr) -> Result<Typed> {
        match op {
            UnaryOperator::Not => {
                let x = self.bind(e)?;
                self.expect_bool(&x, e, "NOT")?;
                Ok(Typed::new(Expr::Not(Box::new(x.expr)), DataType::Boolean))
            }
            UnaryOperator::Minus => {
                if let AstExpr::Value(v) = e {
                    if let ast::Value::Number(n, _) = &v.value {
                        return literal::bind_number(&format!("-{n}"));
                    }
                }
                let x = self.bind(e)?;
                if !is_numeric(&x.dt) {
                    return Err(invalid(format!("cannot negate {e} ({})", type_name(&x.dt))));
                }
                Ok(Typed::new(Expr::Negative(Box::new(x.expr)), x.dt))
            }
            UnaryOperator::Plus => self.bind(e),
            other => Err(PlanError::Unsupported { feature: format!("operator {other}") }),
        }
    }

    fn expect_bool(&self, x: &Typed, e: &AstExpr, what: &str) -> Result<()> {
        if x.dt == DataType::Boolean || x.dt == DataType::Null {
            Ok(())
        } else {
            Err(invalid(format!("{what} expects a BOOLEAN, but {e} is {}", type_name(&x.dt))))
        }
    }

    fn bool_test(&self, e: &AstExpr, f: fn(Box<Expr>) -> Expr) -> Result<Typed> {
        let x = self.bind(e)?;
        self.expect_bool(&x, e, "IS TRUE/FALSE")?;
        Ok(Typed::new(f(Box::new(x.cast_to(&DataType::Boolean).expr)), DataType::Boolean))
    }

    fn binary(&self, l: &AstExpr, op: &BinaryOperator, r: &AstExpr) -> Result<Typed> {
        let arith = match op {
            BinaryOperator::Plus => Some(Arith::Add),
            BinaryOperator::Minus => Some(Arith::Sub),
            BinaryOperator::Multiply => Some(Arith::Mul),
            BinaryOperator::Divide => Some(Arith::Div),
            BinaryOperator::Modulo => Some(Arith::Mod),
            _ => None,
        };
        if let Some(a) = arith {
            return self.arithmetic(l, a, r);
        }
        match op {
            BinaryOperator::Arrow => {
                let x = self.bind(l)?;
                let AstExpr::Identifier(id) = r else { return Err(invalid(format!("expected a field name after ->, got {r}"))) };
                self.field(x, &norm_ident(id))
            }
            BinaryOperator::And | BinaryOperator::Or => {
                let a = self.bind(l)?;
                let b = self.bind(r)?;
                let word = if *op == BinaryOperator::And { "AND" } else { "OR" };
                self.expect_bool(&a, l, word)?;
                self.expect_bool(&b, r, word)?;
                let o = if *op == BinaryOperator::And { Operator::And } else { Operator::Or };
                Ok(Typed::new(
                    Expr::BinaryExpr(BinaryExpr::new(
                        Box::new(a.cast_to(&DataType::Boolean).expr),
                        o,
                        Box::new(b.cast_to(&DataType::Boolean).expr),
                    )),
                    DataType::Boolean,
                ))
            }
            BinaryOperator::StringConcat => {
                let a = self.bind(l)?;
                let b = self.bind(r)?;
                self.functions.call(self, "CONCAT", vec![Arg::Value(a), Arg::Value(b)])
            }
            BinaryOperator::Eq => self.compare(l, op.clone(), r, Operator::Eq),
            BinaryOperator::NotEq => self.compare(l, op.clone(), r, Operator::NotEq),
            BinaryOperator::Lt => self.compare(l, op.clone(), r, Operator::Lt),
            BinaryOperator::LtEq => self.compare(l, op.clone(), r, Operator::LtEq),
            BinaryOperator::Gt => self.compare(l, op.clone(), r, Operator::Gt),
            BinaryOperator::GtEq => self.compare(l, op.clone(), r, Operator::GtEq),
            other => Err(PlanError::Unsupported { feature: format!("operator {other}") }),
        }
    }

    fn arithmetic(&self, l: &AstExpr, op: Arith, r: &AstExpr) -> Result<Typed> {
        let a = self.bind(l)?;
        let b = self.bind(r)?;
        if is_null_literal(l) || is_null_literal(r) {
            // ksqlDB refuses arithmetic on a NULL literal.
            let show = |e: &AstExpr| if is_null_literal(e) { "null".to_string() } else { aggregate::norm_text(e) };
            let ty = |t: &Typed| if t.dt == DataType::Null { "null".to_string() } else { type_name(&t.dt) };
            let sym = match op {
                Arith::Add => "+",
                Arith::Sub => "-",
                Arith::Mul => "*",
                Arith::Div => "/",
                Arith::Mod => "%",
            };
            return Err(invalid(format!(
                "Error processing expression: ({} {sym} {}). Arithmetic on types {} and {} are not supported.",
                show(l),
                show(r),
                ty(&a),
                ty(&b)
            )));
        }
        if op == Arith::Add
            && (is_string(&a.dt) || is_string(&b.dt))
            && (is_string(&a.dt) || a.dt == DataType::Null)
            && (is_string(&b.dt) || b.dt == DataType::Null)
        {
            return self.functions.call(self, "CONCAT", vec![Arg::Value(a), Arg::Value(b)]);
        }
        let (a, b) = match (&a.dt, &b.dt) {
            (DataType::Null, DataType::Null) => (a.cast_to(&DataType::Int32), b.cast_to(&DataType::Int32)),
            (DataType::Null, t) => { let t = t.clone(); (a.cast_to(&t), b) }
            (t, DataType::Null) => { let t = t.clone(); (a, b.cast_to(&t)) }
            _ => (a, b),
        };
        let Some(result) = arithmetic_result(op, &a.dt, &b.dt) else {
            return Err(invalid(format!(
                "unsupported arithmetic types: {l} ({}) and {r} ({})",
                type_name(&a.dt),
                type_name(&b.dt)
            )));
        };
        let common = numeric_common(&a.dt, &b.dt).expect("numeric");
        let o = match op {
            Arith::Add => Operator::Plus,
            Arith::Sub => Operator::Minus,
            Arith::Mul => Operator::Multiply,
            Arith::Div => Operator::Divide,
            Arith::Mod => Operator::Modulo,
        };
        let e = Expr::BinaryExpr(BinaryExpr::new(
            Box::new(a.cast_to(&common).expr),
            o,
            Box::new(b.cast_to(&common).expr),
        ));
        // DataFusion computes its own DECIMAL precision; settle on ksqlDB's.
        let actual = e.get_type(self.type_schema()?.as_ref())?;
        let t = Typed::new(e, actual);
        Ok(t.cast_to(&result))
    }

    /// Binds both sides of a comparison and brings them to one type.
    fn comparable(&self, l: &AstExpr, r: &AstExpr, what: &str) -> Result<(Typed, Typed)> {
        self.comparable_typed(self.bind(l)?, self.bind(r)?, l, r, what)
    }

    fn comparable_typed(&self, a: Typed, b: Typed, l: &AstExpr, r: &AstExpr, what: &str) -> Result<(Typed, Typed)> {
        if a.dt == b.dt {
            return Ok((a, b));
        }
        if a.dt == DataType::Null {
            let t = b.dt.clone();
            return Ok((a.cast_to(&t), b));
        }
        if b.dt == DataType::Null {
            let t = a.dt.clone();
            return Ok((a, b.cast_to(&t)));
        }
        if let Some(c) = numeric_common(&a.dt, &b.dt) {
            return Ok((a.cast_to(&c), b.cast_to(&c)));
        }
        // Time types compare with strings holding a time literal (and ROWTIME with strings).
        let timeish = |t: &DataType| matches!(t, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Time32(_));
        let is_time_col = |e: &AstExpr| {
            matches!(e, AstExpr::Identifier(id) if ["ROWTIME", "WINDOWSTART", "WINDOWEND"].contains(&norm_ident(id).as_str()))
                || matches!(e, AstExpr::CompoundIdentifier(p) if p.last().is_some_and(|id| ["ROWTIME", "WINDOWSTART", "WINDOWEND"].contains(&norm_ident(id).as_str())))
        };
        if timeish(&a.dt) && is_string(&b.dt) {
            let t = a.dt.clone();
            return Ok((a, self.cast(b, &t)?));
        }
        if timeish(&b.dt) && is_string(&a.dt) {
            let t = b.dt.clone();
            return Ok((self.cast(a, &t)?, b));
        }
        // A string literal compared with ROWTIME or a window bound may be a partial datetime.
        let partial = |e: &AstExpr| match e {
            AstExpr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => literal::partial_timestamp(s),
                _ => None,
            },
            _ => None,
        };
        if is_time_col(l) && a.dt == DataType::Int64 && is_string(&b.dt) {
            if let Some(ms) = partial(r) {
                return Ok((a, Typed::new(lit(ms), DataType::Int64)));
            }
            let ts = self.cast(b, &coerce::timestamp())?;
            return Ok((a, ts.cast_to(&DataType::Int64)));
        }
        if is_time_col(r) && b.dt == DataType::Int64 && is_string(&a.dt) {
            if let Some(ms) = partial(l) {
                return Ok((Typed::new(lit(ms), DataType::Int64), b));
            }
            let ts = self.cast(a, &coerce::timestamp())?;
            return Ok((ts.cast_to(&DataType::Int64), b));
        }
        if let Some(c) = common_type(&a.dt, &b.dt) {
            if can_widen(&a.dt, &c) && can_widen(&b.dt, &c) {
                return Ok((a.cast_to(&c), b.cast_to(&c)));
            }
        }
        // ARRAYs, MAPs and STRUCTs of compatible types compare as their common type (ksqlDB
        // does not turn text into numbers in a comparison: `SUM(x) > '100'` is an error).
        if let Some(c) = lists::common(&a.dt, &b.dt) {
            return Ok((lists::coerce_to(self, a, &c)?, lists::coerce_to(self, b, &c)?));
        }
        Err(invalid(format!(
            "cannot compare {l} ({}) to {r} ({}) with {what}",
            type_name(&a.dt),
            type_name(&b.dt)
        )))
    }

    /// A LIKE pattern escaped with `esc` rewritten to escape with a backslash.
fn backslash_escapes(p: &str, esc: char) -> String {
    let mut out = String::with_capacity(p.len() + 4);
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == esc {
            if let Some(n) = chars.next() {
                out.push('\\');
                out.push(n);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// A comparison, with ksqlDB's semantics: a NULL literal operand is an error, and a null
    /// operand makes the comparison false (never null).
    fn compare(&self, l: &AstExpr, op: BinaryOperator, r: &AstExpr, o: Operator) -> Result<Typed> {
        let distinct = matches!(o, Operator::IsDistinctFrom | Operator::IsNotDistinctFrom);
        if !distinct && (is_null_literal(l) || is_null_literal(r)) {
            let (ta, tb) = (self.bind(l)?.dt, self.bind(r)?.dt);
            return Err(invalid(format!(
                "Comparison with NULL not supported: {} {op} {}\nUse 'IS NULL' or 'IS NOT NULL' instead.",
                type_name(&ta),
                type_name(&tb)
            )));
        }
        let (a, b) = self.comparable(l, r, &op.to_string())?;
        if matches!(a.dt, DataType::Map(_, _) | DataType::List(_) | DataType::Struct(_)) && !matches!(o, Operator::Eq | Operator::NotEq) && !distinct {
            return Err(invalid(format!("cannot compare {} values with {op}: {l} {op} {r}", type_name(&a.dt))));
        }
        let cmp = Expr::BinaryExpr(BinaryExpr::new(Box::new(a.expr), o, Box::new(b.expr)));
        if distinct {
            return Ok(Typed::new(cmp, DataType::Boolean));
        }
        // `IS TRUE`: false where the comparison is null.
        Ok(Typed::new(Expr::IsTrue(Box::new(cmp)), DataType::Boolean))
    }

    fn like(&self, negated: bool, e: &AstExpr, p: &AstExpr, escape: &Option<ast::ValueWithSpan>, ci: bool) -> Result<Typed> {
        let x = self.bind(e)?;
        let pat = self.bind(p)?;
        if !(is_string(&x.dt) || x.dt == DataType::Null) || !(is_string(&pat.dt) || pat.dt == DataType::Null) {
            return Err(invalid(format!("LIKE needs STRING operands, got {} and {}", type_name(&x.dt), type_name(&pat.dt))));
        }
        let escape_char = match escape.as_ref().map(|v| &v.value) {
            Some(ast::Value::SingleQuotedString(s)) if s.chars().count() == 1 => s.chars().next(),
            Some(other) => return Err(invalid(format!("LIKE ESCAPE must be a single character, got {other}"))),
            None => None,
        };
        let mut pat = pat.cast_to(&DataType::Utf8);
        let escape_char = match escape_char {
            // DataFusion escapes with a backslash only: other escape characters are rewritten.
            Some(c) if c != '\\' => {
                let f = crate::functions::udf::udf("__like_escape", DataType::Utf8, move |args, _| {
                    use datafusion::arrow::array::AsArray;
                    let s = args[0].as_string::<i32>();
                    let out: datafusion::arrow::array::StringArray = s.iter().map(|p| p.map(|p| Self::backslash_escapes(p, c))).collect();
                    Ok(Arc::new(out))
                });
                pat = Typed::new(call_udf(f, vec![pat.expr]), DataType::Utf8);
                Some('\\')
            }
            other => other,
        };
        Ok(Typed::new(
            Expr::Like(Like::new(negated, Box::new(x.cast_to(&DataType::Utf8).expr), Box::new(pat.expr), escape_char, ci)),
            DataType::Boolean,
        ))
    }

    fn case(&self, operand: Option<&AstExpr>, conditions: &[ast::CaseWhen], else_result: Option<&AstExpr>) -> Result<Typed> {
        let mut whens = Vec::new();
        let mut results = Vec::new();
        for cw in conditions {
            let cond = match operand {
                Some(o) => {
                    let (a, b) = self.comparable(o, &cw.condition, "=")?;
                    Typed::new(Expr::BinaryExpr(BinaryExpr::new(Box::new(a.expr), Operator::Eq, Box::new(b.expr))), DataType::Boolean)
                }
                None => {
                    let c = self.bind(&cw.condition)?;
                    self.expect_bool(&c, &cw.condition, "WHEN")?;
                    c
                }
            };
            whens.push(cond.cast_to(&DataType::Boolean).expr);
            results.push(self.bind(&cw.result)?);
        }
        let else_t = else_result.map(|e| self.bind(e)).transpose()?;
        let mut t = DataType::Null;
        for r in results.iter().chain(else_t.iter()) {
            t = common_type(&t, &r.dt).ok_or_else(|| {
                invalid(format!("invalid CASE: the results have different types: {} and {}", type_name(&t), type_name(&r.dt)))
            })?;
        }
        let when_then = whens.into_iter().zip(results).map(|(w, r)| (Box::new(w), Box::new(r.cast_to(&t).expr))).collect();
        let else_expr = else_t.map(|e| Box::new(e.cast_to(&t).expr));
        Ok(Typed::new(Expr::Case(Case::new(None, when_then, else_expr)), t))
    }

    fn function(&self, f: &ast::Function) -> Result<Typed> {
        let name = match f.name.0.as_slice() {
            [part] => match part.as_ident() {
                Some(id) => norm_ident(id),
                None => f.name.to_string().to_uppercase(),
            },
            _ => f.name.to_string().to_uppercase(),
        };
        if engine::ops::aggregate::is_aggregate(&name) {
            return Err(invalid(format!(
                "aggregate function {name} is not allowed here: aggregates belong in the SELECT list or HAVING of a GROUP BY query"
            )));
        }
        let list = match &f.args {
            FunctionArguments::None => Vec::new(),
            FunctionArguments::List(l) => {
                if l.duplicate_treatment.is_some() {
                    return Err(PlanError::Unsupported { feature: format!("DISTINCT in {name}(...)") });
                }
                l.args.clone()
            }
            FunctionArguments::Subquery(_) => return Err(PlanError::Unsupported { feature: "a subquery as a function argument".into() }),
        };
        let mut args = Vec::with_capacity(list.len());
        for a in &list {
            // `name := value` parses as an assignment: a named argument (STRUCT) or a key (MAP).
            if let FunctionArg::Unnamed(FunctionArgExpr::Expr(AstExpr::BinaryOp { left, op: BinaryOperator::Assignment, right })) = a {
                args.push(match left.as_ref() {
                    AstExpr::Identifier(id) if name != "MAP" => Arg::Named(norm_ident(id), self.bind(right)?),
                    other => Arg::KeyValue(self.bind(other)?, self.bind(right)?),
                });
                continue;
            }
            args.push(match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(AstExpr::Lambda(l))) => Arg::Lambda(l.clone()),
                // A bare word as the first argument of a function that takes a keyword there,
                // e.g. DAYS in DATEADD(DAYS, 1, d).
                FunctionArg::Unnamed(FunctionArgExpr::Expr(AstExpr::Identifier(id)))
                    if args.is_empty() && id.quote_style.is_none() && self.functions.keyword_first(&name) =>
                {
                    Arg::Keyword(norm_ident(id))
                }
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Arg::Value(self.bind(e)?),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => Arg::Star,
                FunctionArg::Named { name: n, arg: FunctionArgExpr::Expr(e), .. } => Arg::Named(norm_ident(n), self.bind(e)?),
                FunctionArg::ExprNamed { name: n, arg: FunctionArgExpr::Expr(e), .. } => Arg::KeyValue(self.bind(n)?, self.bind(e)?),
                other => return Err(PlanError::Unsupported { feature: format!("function argument {other}") }),
            });
        }
        self.functions.call(self, &name, args)
    }
}

/// Compiles a bound expression against a schema. DataFusion's simplifier runs first: it folds
/// constants and rewrites functions that only exist in simplified form (COALESCE becomes CASE).
pub fn physical_expr(t: &Typed, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
    use datafusion::logical_expr::simplify::SimplifyContext;
    use datafusion::optimizer::simplify_expressions::ExprSimplifier;
    let ctx = SimplifyContext::builder().with_schema(Arc::new(schema.clone())).build();
    let expr = ExprSimplifier::new(ctx).simplify(t.expr.clone()).unwrap_or_else(|_| t.expr.clone());
    let props = datafusion::logical_expr::execution_props::ExecutionProps::new();
    Ok(create_physical_expr(&expr, schema, &props, &Default::default())?)
}

/// A call of a DataFusion scalar function.
pub fn call_udf(udf: Arc<ScalarUDF>, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(udf, args))
}

/// Calls a DataFusion function with DataFusion's argument coercion, then settles the result on a
/// canonical SQL type.
pub fn call_df(b: &Binder<'_>, udf: Arc<ScalarUDF>, args: Vec<Typed>) -> Result<Typed> {
    let fields: Vec<_> = args.iter().map(|a| Arc::new(Field::new("a", a.dt.clone(), true))).collect();
    let coerced = datafusion::logical_expr::type_coercion::functions::fields_with_udf(&fields, udf.as_ref())
        .map_err(|e| invalid(format!("invalid arguments for {}: {}", udf.name().to_uppercase(), first_line(&e.to_string()))))?;
    let exprs: Vec<Expr> = args.into_iter().zip(coerced).map(|(a, f)| a.cast_to(f.data_type()).expr).collect();
    let e = call_udf(udf.clone(), exprs);
    let dt = e.get_type(b.type_schema()?.as_ref())?;
    let t = canonical(&dt).ok_or_else(|| invalid(format!("function {} returns an unsupported type {dt}", udf.name())))?;
    Ok(Typed::new(e, dt).cast_to(&t))
}

/// `t` as a filter predicate: where null and false both drop a row, comparisons need not turn
/// null into false, so their `IS TRUE` is taken off (through ANDs).
pub fn predicate(t: Typed) -> Typed {
    fn strip(e: Expr) -> Expr {
        match e {
            Expr::IsTrue(inner) => *inner,
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
                Expr::BinaryExpr(BinaryExpr::new(Box::new(strip(*left)), Operator::And, Box::new(strip(*right))))
            }
            other => other,
        }
    }
    Typed::new(strip(t.expr), t.dt)
}

/// True for a NULL literal (possibly in parentheses).
pub fn is_null_literal(e: &AstExpr) -> bool {
    match e {
        AstExpr::Value(v) => v.value == ast::Value::Null,
        AstExpr::Nested(inner) => is_null_literal(inner),
        _ => false,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
