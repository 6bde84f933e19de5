//! Running statements for network clients: a fresh [`Session`] per request (HTTP) or per
//! connection (PostgreSQL), and blocking engine calls moved off the async workers so that many
//! clients never starve each other or the persistent queries.

use std::collections::BTreeMap;

use planner::session::OFFSET_RESET;
use planner::{Eddy, Session};

use super::error::ServerError;
use super::json::value_text;

/// Longest statement text accepted (bytes).
pub const MAX_STATEMENT: usize = 256 * 1024;

/// A session with the request's properties and variables.
pub fn session(
    eddy: &Eddy,
    props: &BTreeMap<String, serde_json::Value>,
    vars: &BTreeMap<String, serde_json::Value>,
) -> Result<Session, ServerError> {
    let mut s = eddy.session();
    for (k, v) in props {
        let v = value_text(v);
        if k == OFFSET_RESET && !matches!(v.to_lowercase().as_str(), "earliest" | "latest") {
            return Err(ServerError::BadRequest(format!(
                "invalid value '{v}' for property '{OFFSET_RESET}': expected 'earliest' or 'latest'"
            )));
        }
        s.set_property(k, &v);
    }
    for (k, v) in vars {
        let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(ServerError::BadRequest(format!("invalid variable name \"{k}\"")));
        }
        let sql = format!("DEFINE {k} = '{}';", value_text(v).replace('\'', "''"));
        s.execute_all(&sql).map_err(|e| ServerError::statement(&sql, &e))?;
    }
    Ok(s)
}

/// Parses `sql` after checking its size.
pub fn parse(session: &Session, sql: &str) -> Result<Vec<planner::parser::ParsedStatement>, ServerError> {
    if sql.len() > MAX_STATEMENT {
        return Err(ServerError::TooLarge { what: "statement text", limit: MAX_STATEMENT });
    }
    let statements = session.parse(sql).map_err(|e| ServerError::statement(sql, &e))?;
    if statements.is_empty() {
        return Err(ServerError::BadRequest("no statement given".into()));
    }
    Ok(statements)
}

/// Runs `f` on the blocking pool; a panic inside becomes an error instead of a crash.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ServerError::Unavailable(format!("statement worker failed: {e}")))
}

/// True for statements whose result is a query result (rows or a stream of rows).
pub fn is_query(st: &planner::parser::ParsedStatement) -> bool {
    matches!(st.statement, planner::ast::Statement::Query(_) | planner::ast::Statement::Print { .. })
}
