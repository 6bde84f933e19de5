//! `PAUSE` and `RESUME` of persistent queries. A paused query reads no input and keeps its
//! state and position (the engine keeps it in its checkpoints); `RESUME` continues where it
//! stopped, so nothing is lost or repeated. Both are commands of the log: a query paused before
//! a restart starts paused.

use super::{Output, Session};
use crate::error::{invalid, PlanError, Result};

impl Session {
    /// `PAUSE id | ALL` (`pause`) or `RESUME id | ALL`.
    pub(crate) fn pause(&mut self, id: Option<&str>, sql: &str, pause: bool) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let _ddl = inner.ddl.lock();
        let verb = if pause { "paused" } else { "resumed" };
        let ids: Vec<String> = match id {
            Some(id) => {
                let known = inner.catalog.read().queries.keys().find(|q| q.eq_ignore_ascii_case(id)).cloned();
                match known {
                    Some(q) => vec![q],
                    None if !self.replaying && inner.engine.query(id).is_some() => {
                        return Err(invalid(format!(
                            "Query {id} is a transient query: transient queries cannot be {verb}, only terminated"
                        )))
                    }
                    None => return Err(PlanError::UnknownObject { kind: "query", name: id.to_string() }),
                }
            }
            None => inner.catalog.read().queries.keys().cloned().collect(),
        };
        for q in &ids {
            inner.engine.set_query_paused(q, pause);
        }
        self.log_command(sql, None)?;
        Ok(Output::Message(match id {
            Some(_) => format!("Query {verb}: {}", ids.join(", ")),
            None => format!("All queries {verb}"),
        }))
    }
}
