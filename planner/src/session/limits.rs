//! ksqlDB's function settings: `ksql.functions.collect_list.limit` and
//! `ksql.functions.collect_set.limit` bound how many values COLLECT_LIST and COLLECT_SET keep
//! when a call gives no limit of its own. They are applied to a statement before it is planned
//! (a call `COLLECT_LIST(x)` becomes `COLLECT_LIST(x, n)`), with the properties a query was
//! created with, so a restarted query keeps its limit.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value, ValueWithSpan,
};

use crate::ast::{Query, Statement};

/// The settings and the functions they bound.
const LIMITS: &[(&str, &str)] =
    &[("COLLECT_LIST", "ksql.functions.collect_list.limit"), ("COLLECT_SET", "ksql.functions.collect_set.limit")];

/// `st` with the function limits of `props` written into its calls; `None` when none applies.
pub(crate) fn with_function_limits(st: &Statement, props: &BTreeMap<String, String>) -> Option<Statement> {
    let limits: Vec<(&str, String)> = LIMITS
        .iter()
        .filter_map(|(f, p)| props.get(*p).map(|v| (*f, v.trim().to_string())))
        .filter(|(_, v)| v.parse::<u64>().is_ok())
        .collect();
    if limits.is_empty() {
        return None;
    }
    let mut st = st.clone();
    let query: &mut Query = match &mut st {
        Statement::CreateAsSelect(c) => &mut c.query,
        Statement::InsertSelect { query, .. } => query,
        Statement::Query(q) => q,
        _ => return None,
    };
    let mut rewrite = |e: &mut Expr| {
        if let Expr::Function(f) = e {
            let name = f.name.to_string().to_uppercase();
            if let (Some((_, n)), FunctionArguments::List(l)) = (limits.iter().find(|(fname, _)| *fname == name), &mut f.args) {
                if l.args.len() == 1 {
                    let v = Value::Number(n.clone(), false);
                    let lit = Expr::Value(ValueWithSpan { value: v, span: datafusion::sql::sqlparser::tokenizer::Span::empty() });
                    l.args.push(FunctionArg::Unnamed(FunctionArgExpr::Expr(lit)));
                }
            }
        }
        ControlFlow::<()>::Continue(())
    };
    for item in &mut query.select {
        let _ = visit_expressions_mut(item, &mut rewrite);
    }
    if let Some(h) = &mut query.having {
        let _ = visit_expressions_mut(h, &mut rewrite);
    }
    Some(st)
}
