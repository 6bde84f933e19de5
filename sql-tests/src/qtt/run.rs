//! Running one case against a fresh engine in a temporary data directory, the way ksqlDB's
//! `TestExecutor` (QTT) and `RestTestExecutor` (REST) do:
//!
//! 1. create the topics the case declares or produces to;
//! 2. run the statements in order (session properties `cache.max.bytes.buffering=0`,
//!    `auto.offset.reset=earliest`, then the case's own);
//! 3. produce the inputs in file order, waiting for the persistent queries after each run of
//!    records of one topic (REST: queries run after that, or before it when
//!    `waitForActivePushQuery` is set);
//! 4. compare every topic named in `outputs`, the REST responses and `post.sources`.
//!
//! An error case passes when its error is raised at the last statement (or, for Kafka Streams
//! runtime errors, when a query fails or logs a processing error); whether the message matched
//! is recorded apart. The whole case runs under `catch_unwind` and a time budget.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use planner::ast::Statement;
use planner::parser::ParsedStatement;
use planner::{Eddy, Output, Session};

use super::compare::{compare_topic, read_topic};
use super::inputs::{create_topics, produce, Serde};
use super::model::{Case, Suite};
use super::rest::{check_responses, collect, QueryResult};
use super::schema::check_post_sources;
use super::{CaseResult, Failure, Status};

/// The clock of one case.
#[derive(Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// What is left, at least 10 ms (so that a late call still looks once).
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now()).max(Duration::from_millis(10))
    }

    /// True once passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }
}

/// Runs a case with a time budget; panics inside Eddy are caught and reported as failures.
pub fn run_case(case: &Case, budget: Duration, rt: &tokio::runtime::Runtime) -> CaseResult {
    let start = Instant::now();
    let deadline = Deadline(start + budget);
    let mut seen = None;
    let r = catch_unwind(AssertUnwindSafe(|| run(case, deadline, rt, &mut seen)));
    let (status, reason) = match r {
        Ok(Ok(())) => (Status::Pass, String::new()),
        Ok(Err(f)) => (f.status, f.reason),
        Err(p) => (Status::Fail, format!("panic: {}", panic_text(&p))),
    };
    let (message_matched, error) = match seen {
        Some((m, e)) => (Some(m), Some(one_line(&e))),
        None => (None, None),
    };
    CaseResult { status, reason: one_line(&reason), message_matched, error, millis: start.elapsed().as_millis() as u64 }
}

/// The message of a panic payload.
pub fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "(no message)".into())
}

fn one_line(s: &str) -> String {
    let s: String = s.chars().map(|c| if c == '\n' || c == '\t' || c == '\r' { ' ' } else { c }).collect();
    if s.chars().count() > 400 {
        format!("{}...", s.chars().take(397).collect::<String>())
    } else {
        s
    }
}

fn run(case: &Case, deadline: Deadline, rt: &tokio::runtime::Runtime, seen: &mut Option<(bool, String)>) -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(|e| Failure::fail(format!("cannot create a temporary directory: {e}")))?;
    let eddy = Eddy::open(dir.path(), engine::EngineConfig::default())
        .map_err(|e| Failure::fail(format!("cannot open Eddy: {}", engine::error_chain(&e))))?;
    let _guard = rt.enter();
    let r = run_on(case, &eddy, deadline, rt, seen);
    // A failing shutdown is not the case's business; its own result stands.
    let _ = eddy.shutdown();
    drop(eddy);
    r
}

/// A statement to run: its index in the case, and the parsed statement or the parse error.
type Item = (usize, Result<ParsedStatement, String>);

fn is_query(st: &ParsedStatement) -> bool {
    matches!(st.statement, Statement::Query(_) | Statement::Print { .. })
}

fn run_on(
    case: &Case,
    eddy: &Eddy,
    deadline: Deadline,
    rt: &tokio::runtime::Runtime,
    seen: &mut Option<(bool, String)>,
) -> Result<(), Failure> {
    let mut session = eddy.session();
    session.set_property("cache.max.bytes.buffering", "0");
    session.set_property(planner::session::OFFSET_RESET, "earliest");
    for (k, v) in &case.properties {
        session.set_property(k, v);
    }
    create_topics(eddy, case);
    super::sr::register_topic_schemas(eddy.engine().registry(), case).map_err(Failure::fail)?;

    let mut items: Vec<Item> = Vec::new();
    for (i, text) in case.statements.iter().enumerate() {
        match session.parse(text) {
            Ok(sts) => items.extend(sts.into_iter().map(|s| (i, Ok(s)))),
            Err(e) => items.push((i, Err(engine::error_chain(&e)))),
        }
    }
    // REST: the trailing queries run after the inputs are produced.
    let split = if case.suite == Suite::Rest {
        items.iter().rposition(|(_, s)| !s.as_ref().is_ok_and(is_query)).map_or(0, |p| p + 1)
    } else {
        items.len()
    };
    let queries = items.split_off(split);
    let last = case.statements.len().saturating_sub(1);
    let mut results: Vec<QueryResult> = Vec::new();

    for (i, st) in &items {
        match execute(&mut session, st) {
            Ok(Output::Stream(pq)) if case.suite == Suite::Rest => results.push(collect(rt, eddy, pq, query_limit(st), deadline)?),
            Ok(Output::Rows(rs)) if case.suite == Suite::Rest => results.push(QueryResult::rows(rs)),
            Ok(_) => {}
            Err(msg) => return statement_error(case, *i, last, &msg, seen),
        }
    }

    let catch_up = || deadline.remaining().min(Duration::from_secs(30));
    let produce_inputs = || produce(eddy, case, catch_up).map_err(|e| Failure { status: timeout_or_fail(&e, deadline), reason: e });
    if case.wait_for_push {
        let mut started = Vec::new();
        for (i, st) in &queries {
            match execute(&mut session, st) {
                Ok(out) => started.push((st, out)),
                Err(msg) => return statement_error(case, *i, last, &msg, seen),
            }
        }
        produce_inputs()?;
        for (st, out) in started {
            results.push(QueryResult::from_output(rt, eddy, out, query_limit(st), deadline)?);
        }
    } else {
        produce_inputs()?;
        for (i, st) in &queries {
            match execute(&mut session, st) {
                Ok(out) => results.push(QueryResult::from_output(rt, eddy, out, query_limit(st), deadline)?),
                Err(msg) => return statement_error(case, *i, last, &msg, seen),
            }
        }
    }

    eddy.engine()
        .wait_caught_up(None, catch_up())
        .map_err(|e| Failure { status: Status::Timeout, reason: format!("queries did not catch up: {}", engine::error_chain(&e)) })?;

    if let Some(err) = &case.expected_error {
        let what = format!("{}: {}", err.type_name.as_deref().unwrap_or("?"), err.message.as_deref().unwrap_or(""));
        if err.is_runtime() {
            if let Some(msg) = runtime_error(eddy) {
                *seen = Some((message_matches(err.message.as_deref(), &msg), msg));
                return Ok(());
            }
        }
        return Err(Failure::fail(format!("expected an error ({what}), none raised")));
    }

    check_outputs(case, eddy).map_err(|e| Failure::fail(with_diagnosis(e, eddy)))?;
    if let Some(responses) = &case.responses {
        check_responses(responses, &results, case.verify_order).map_err(Failure::fail)?;
    }
    check_post_sources(&case.post_sources, &eddy.catalog()).map_err(Failure::fail)?;
    Ok(())
}

fn timeout_or_fail(msg: &str, deadline: Deadline) -> Status {
    if deadline.passed() || msg.contains("did not catch up") {
        Status::Timeout
    } else {
        Status::Fail
    }
}

fn execute(session: &mut Session, st: &Result<ParsedStatement, String>) -> Result<Output, String> {
    let st = st.as_ref().map_err(Clone::clone)?;
    session.execute(st).map_err(|e| engine::error_chain(&e))
}

fn query_limit(st: &Result<ParsedStatement, String>) -> Option<u64> {
    match st.as_ref().map(|s| &s.statement) {
        Ok(Statement::Query(q)) => q.limit,
        Ok(Statement::Print { limit, .. }) => *limit,
        _ => None,
    }
}

/// The verdict when statement `i` fails with `msg`.
fn statement_error(case: &Case, i: usize, last: usize, msg: &str, seen: &mut Option<(bool, String)>) -> Result<(), Failure> {
    let n = case.statements.len();
    let Some(err) = &case.expected_error else {
        return Err(Failure::fail(format!("statement {} of {n} failed: {msg}", i + 1)));
    };
    *seen = Some((message_matches(err.message.as_deref(), msg), msg.to_string()));
    if i == last {
        Ok(())
    } else {
        Err(Failure::fail(format!("error at statement {} of {n} (expected at the last): {msg}", i + 1)))
    }
}

/// Whether the expected message is a substring of the actual one, ignoring case, spacing and a
/// trailing period (Eddy's messages start lower-case and end without one).
pub fn message_matches(expected: Option<&str>, actual: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    match expected {
        None => true,
        Some(e) => norm(actual).contains(norm(e).trim_end_matches('.')),
    }
}

/// A query that stopped with an error, or the first processing-log message.
fn runtime_error(eddy: &Eddy) -> Option<String> {
    let queries = eddy.engine().queries();
    if let Some(m) = queries.iter().find_map(|q| match &q.state {
        engine::QueryState::Error(m) => Some(m.clone()),
        engine::QueryState::Running => None,
    }) {
        return Some(m);
    }
    let log = read_topic(eddy.engine().log().as_ref(), engine::processing_log::PROCESSING_LOG_TOPIC);
    log.first().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
}

/// Adds what went wrong inside the engine to an output mismatch: a failed query, or the first
/// processing-log entry.
fn with_diagnosis(reason: String, eddy: &Eddy) -> String {
    match runtime_error(eddy) {
        Some(m) => format!("{reason} [engine: {}]", m.chars().take(160).collect::<String>()),
        None => reason,
    }
}

fn check_outputs(case: &Case, eddy: &Eddy) -> Result<(), String> {
    let catalog = eddy.catalog();
    let log = eddy.engine().log();
    let mut topics: Vec<&str> = Vec::new();
    for r in &case.outputs {
        if !topics.contains(&r.topic.as_str()) {
            topics.push(&r.topic);
        }
    }
    let insert_values_only = case.inputs.is_empty() && case.statements.iter().any(|s| is_insert_values(s));
    for topic in topics {
        let expected: Vec<_> = case.outputs.iter().filter(|r| r.topic == topic).collect();
        let serde = Serde::for_topic(&catalog, case, topic, true).with_registry(eddy.engine().registry());
        let partitions = log.describe_topic(topic).map(|t| t.config.partitions).unwrap_or(1);
        let actual = read_topic(log.as_ref(), topic);
        compare_topic(topic, &expected, &actual, partitions, &serde, !insert_values_only)?;
    }
    Ok(())
}

fn is_insert_values(s: &str) -> bool {
    let t = super::expand::sql_tokens(s);
    use super::expand::Token::Word;
    t.first() == Some(&Word("INSERT".into())) && t.contains(&Word("VALUES".into()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_match_loosely() {
        use super::message_matches as m;
        assert!(m(Some("Cannot insert into read-only stream: INPUT."), "cannot insert into read-only stream: INPUT"));
        assert!(m(Some("line 1:8:  Syntax\nError"), "at line 1:8: syntax error"));
        assert!(!m(Some("Failed to prepare statement: x"), "x"));
        assert!(m(None, "anything"));
    }
}
