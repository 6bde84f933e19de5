//! The REST corpus's queries: collecting the rows of pull and push queries, and comparing them
//! with the expected `responses` (`{"query": [{"header": {"schema": ...}}, {"row": {"columns":
//! [...]}}, ..., {"finalMessage": "Limit Reached"}]}`): the header's schema, rows as a multiset
//! unless `verifyOrder`, and the final message.
//!
//! `admin` responses stand for statements that succeeded, which the runner already requires;
//! `queryProto` responses (protobuf-encoded rows) are not checked. Eddy's results do not say
//! which columns are keys, so `KEY` markers in expected headers are ignored, as are the
//! `queryId` fields (ids differ between engines).

use std::time::Duration;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use planner::session::render::json_value;
use planner::{Eddy, Output, PushQuery, RowSet};

use super::compare::{short, values_match};
use super::json::{self, Json};
use super::run::Deadline;
use super::schema::{normalize_schema, result_schema, without_key_markers};
use super::{Failure, Status};

/// The rows a query returned.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Columns.
    pub schema: SchemaRef,
    /// Rows, each value as JSON.
    pub rows: Vec<Vec<Json>>,
    /// True when a push query ended because it reached its LIMIT.
    pub limit_reached: bool,
}

impl QueryResult {
    /// The rows of a finite result.
    pub fn rows(rs: RowSet) -> QueryResult {
        QueryResult { rows: render(&rs), schema: rs.schema, limit_reached: false }
    }

    /// The rows of any query output (a message gives no rows).
    pub fn from_output(
        rt: &tokio::runtime::Runtime,
        eddy: &Eddy,
        out: Output,
        limit: Option<u64>,
        deadline: Deadline,
    ) -> Result<QueryResult, Failure> {
        match out {
            Output::Rows(rs) => Ok(QueryResult::rows(rs)),
            Output::Stream(pq) => collect(rt, eddy, pq, limit, deadline),
            Output::Message(_) => Ok(QueryResult {
                schema: SchemaRef::new(datafusion::arrow::datatypes::Schema::empty()),
                rows: Vec::new(),
                limit_reached: false,
            }),
        }
    }
}

fn render(rs: &RowSet) -> Vec<Vec<Json>> {
    let mut rows = Vec::new();
    for b in &rs.batches {
        for r in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        let mut s = String::new();
                        json_value(c, r, &mut s);
                        json::parse(&s).unwrap_or(Json::Str(s))
                    })
                    .collect(),
            );
        }
    }
    rows
}

/// Collects a push query's rows: until its LIMIT, or, once every query has caught up, until no
/// more rows come (a push query without LIMIT is ended by the runner).
pub fn collect(
    rt: &tokio::runtime::Runtime,
    eddy: &Eddy,
    mut pq: PushQuery,
    limit: Option<u64>,
    deadline: Deadline,
) -> Result<QueryResult, Failure> {
    let schema = pq.schema.clone();
    let mut batches = Vec::new();
    // Rows that are already there come at once; wait for the engine only when they do not.
    let mut caught_up = false;
    loop {
        let wait = if caught_up { Duration::from_millis(300) } else { Duration::from_millis(50) };
        match rt.block_on(pq.next_timeout(wait.min(deadline.remaining()))) {
            Ok(Some(b)) => batches.push(b),
            Ok(None) => break,
            Err(()) if caught_up || deadline.passed() => break,
            Err(()) => {
                eddy.engine().wait_caught_up(None, deadline.remaining().min(Duration::from_secs(30))).map_err(|e| Failure {
                    status: Status::Timeout,
                    reason: format!("queries did not catch up: {}", engine::error_chain(&e)),
                })?;
                caught_up = true;
            }
        }
    }
    let limit_reached = limit.is_some() && pq.is_done();
    pq.finish();
    let rs = RowSet { schema, batches };
    Ok(QueryResult { rows: render(&rs), schema: rs.schema, limit_reached })
}

/// Compares the query results, in order, with the expected `query` responses.
///
/// # Errors
/// The first difference, described.
pub fn check_responses(expected: &[Json], results: &[QueryResult], verify_order: bool) -> Result<(), String> {
    let queries: Vec<&[Json]> = expected.iter().filter_map(|r| r.get("query").and_then(Json::as_array)).collect();
    if queries.len() != results.len() {
        return Err(format!("responses: expected {} query results, the case ran {} queries", queries.len(), results.len()));
    }
    for (n, (exp, res)) in queries.iter().zip(results).enumerate() {
        check_query(exp, res, verify_order).map_err(|e| format!("response {}: {e}", n + 1))?;
    }
    Ok(())
}

fn check_query(exp: &[Json], res: &QueryResult, verify_order: bool) -> Result<(), String> {
    let mut rows: Vec<&[Json]> = Vec::new();
    for e in exp {
        if let Some(schema) = e.get("header").and_then(|h| h.get("schema")) {
            let want = without_key_markers(&normalize_schema(&schema.to_text()));
            let got = without_key_markers(&normalize_schema(&result_schema(&res.schema)));
            if want != got {
                return Err(format!("header: expected {want}, got {got}"));
            }
        }
        if let Some(row) = e.get("row") {
            rows.push(row.get("columns").and_then(Json::as_array).unwrap_or(&[]));
        }
        if let Some(m) = e.get("finalMessage").map(Json::to_text) {
            if m == "Limit Reached" && !res.limit_reached {
                return Err(format!("expected the LIMIT to be reached ({} rows expected, got {})", rows.len(), res.rows.len()));
            }
        }
    }
    let types: Vec<&DataType> = res.schema.fields().iter().map(|f| f.data_type()).collect();
    let row_matches =
        |e: &[Json], a: &[Json]| e.len() == a.len() && e.iter().zip(a).zip(&types).all(|((e, a), t)| values_match(e, a, Some(t)));
    let text = |r: &[Json]| short(&Json::Arr(r.to_vec()));
    if rows.len() != res.rows.len() {
        let extra = res.rows.iter().find(|a| !rows.iter().any(|e| row_matches(e, a)));
        let missing = rows.iter().find(|e| !res.rows.iter().any(|a| row_matches(e, a)));
        let mut msg = format!("expected {} rows, got {}", rows.len(), res.rows.len());
        if let Some(m) = missing {
            msg.push_str(&format!("; missing {}", text(m)));
        } else if let Some(x) = extra {
            msg.push_str(&format!("; unexpected {}", text(x)));
        }
        return Err(msg);
    }
    if verify_order {
        if let Some(i) = rows.iter().zip(&res.rows).position(|(e, a)| !row_matches(e, a)) {
            return Err(format!("row {}: expected {}, got {}", i + 1, text(rows[i]), text(&res.rows[i])));
        }
        return Ok(());
    }
    let mut used = vec![false; res.rows.len()];
    for e in &rows {
        match res.rows.iter().enumerate().position(|(k, a)| !used[k] && row_matches(e, a)) {
            Some(k) => used[k] = true,
            None => {
                let got: Vec<String> = res.rows.iter().take(3).map(|r| text(r)).collect();
                return Err(format!("row {} not found, got {}", text(e), got.join(", ")));
            }
        }
    }
    Ok(())
}
