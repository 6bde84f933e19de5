//! ksqlDB's SQL test files (`run-ksql-test`, ksqlDB 0.30+) run on Eddy: `eddy test FILE.sql`.
//!
//! A file holds tests, each starting with a `--@test: name` line and optionally
//! `--@expected.error: class` and `--@expected.message: text` lines. Each test runs against a
//! fresh engine (queries read from the beginning of their topics), its statements in order.
//! Besides Eddy's statements, four assertions check what the queries wrote:
//!
//! - `ASSERT VALUES source (cols) VALUES (values)`: the next record of the source's topic (each
//!   assertion on a source reads on from the one before) has these column values (`ROWTIME` is
//!   the record's time, `WINDOWSTART`/`WINDOWEND` its window);
//! - `ASSERT NULL VALUES source (cols) KEY (values)`: the next record is a tombstone with this key;
//! - `ASSERT STREAM|TABLE name (columns) [WITH (...)]`: the source exists, is a stream (table),
//!   and has these columns.
//!
//! A test expecting an error passes when a statement fails (with the message, when given), and
//! fails when none does. Results print as ksqlDB's runner prints them (`>>> Test passed!`).

use std::collections::HashMap;
use std::path::Path;

use datafusion::arrow::datatypes::DataType;
use planner::ast::{ColumnKind, SourceType, Statement};
use planner::catalog::SourceDef;
use planner::session::render::json_value;
use planner::{Eddy, Session};

use crate::qtt::compare::{decode, diff, read_topic, short, Actual};
use crate::qtt::inputs::Serde;
use crate::qtt::json::{self, Json};

/// One test of a file.
#[derive(Debug, Clone)]
pub struct SqlTest {
    /// `--@test:` name.
    pub name: String,
    /// `--@expected.error:` class (not compared: Eddy has no Java classes).
    pub expected_error: Option<String>,
    /// `--@expected.message:` text the error must contain.
    pub expected_message: Option<String>,
    /// The statements, in order, with the line each starts on.
    pub statements: Vec<(usize, String)>,
}

/// True when `text` looks like a ksqlDB SQL test file (a `--@test:` directive).
pub fn is_sql_test(text: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with("--@test:"))
}

/// The tests of a file.
pub fn parse_file(text: &str) -> Result<Vec<SqlTest>, String> {
    let mut tests: Vec<(SqlTest, String, usize)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("--@test:") {
            tests.push((
                SqlTest { name: name.trim().to_string(), expected_error: None, expected_message: None, statements: Vec::new() },
                String::new(),
                n + 2,
            ));
            continue;
        }
        let Some((test, body, _)) = tests.last_mut() else {
            if !t.is_empty() && !t.starts_with("--") {
                return Err(format!("line {}: a statement before the first --@test: directive", n + 1));
            }
            continue;
        };
        if let Some(e) = t.strip_prefix("--@expected.error:") {
            test.expected_error = Some(e.trim().to_string());
        } else if let Some(m) = t.strip_prefix("--@expected.message:") {
            test.expected_message = Some(m.trim().to_string());
        } else {
            body.push_str(line);
        }
        body.push('\n');
    }
    let mut out = Vec::new();
    for (mut test, body, first_line) in tests {
        let texts = planner::parser::split_statements(&body).map_err(|e| format!("test '{}': {e}", test.name))?;
        let mut search = 0;
        for s in texts {
            let at = body[search..].find(&s).map(|i| search + i).unwrap_or(search);
            search = at + s.len();
            let line = first_line + body[..at].matches('\n').count();
            test.statements.push((line, s));
        }
        out.push(test);
    }
    Ok(out)
}

/// What one assertion statement says.
enum Assertion {
    /// ASSERT VALUES / ASSERT NULL VALUES (`tombstone`).
    Values { source: String, columns: Vec<String>, values: Vec<datafusion::sql::sqlparser::ast::Expr>, tombstone: bool },
    /// ASSERT STREAM / ASSERT TABLE.
    Source { create: planner::ast::CreateSource },
}

/// Reads an assertion statement (they are written like INSERT and CREATE statements).
fn assertion(text: &str) -> Option<Result<Assertion, String>> {
    let upper = text.trim_start().to_uppercase();
    let words: Vec<&str> = upper.split_whitespace().take(3).collect();
    let rewrite = |skip: usize, with: &str| -> String {
        let t = text.trim_start();
        let mut rest = t;
        for _ in 0..skip {
            rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            rest = &rest[end..];
        }
        format!("{with} {rest}")
    };
    let parse_one = |sql: &str| -> Result<Statement, String> {
        let mut v = planner::parser::parse(sql).map_err(|e| e.to_string())?;
        if v.len() != 1 {
            return Err("expected one assertion".into());
        }
        Ok(v.remove(0).statement)
    };
    match words.as_slice() {
        ["ASSERT", "VALUES", ..] => Some(parse_one(&rewrite(2, "INSERT INTO")).and_then(|s| match s {
            Statement::InsertValues(i) => Ok(Assertion::Values { source: i.target, columns: i.columns, values: i.values, tombstone: false }),
            _ => Err("expected ASSERT VALUES source (columns) VALUES (values)".into()),
        })),
        ["ASSERT", "NULL", "VALUES"] => {
            // `... (cols) KEY (values)` reads as INSERT's `VALUES (values)`.
            let sql = rewrite(3, "INSERT INTO");
            let Some(k) = sql.to_uppercase().rfind(" KEY") else {
                return Some(Err("expected ASSERT NULL VALUES source (columns) KEY (values)".into()));
            };
            let sql = format!("{} VALUES{}", &sql[..k], &sql[k + 4..]);
            Some(parse_one(&sql).and_then(|s| match s {
                Statement::InsertValues(i) => Ok(Assertion::Values { source: i.target, columns: i.columns, values: i.values, tombstone: true }),
                _ => Err("expected ASSERT NULL VALUES source (columns) KEY (values)".into()),
            }))
        }
        ["ASSERT", "STREAM" | "TABLE", ..] => Some(parse_one(&rewrite(1, "CREATE")).and_then(|s| match s {
            Statement::CreateSource(create) => Ok(Assertion::Source { create }),
            _ => Err("expected ASSERT STREAM|TABLE name (columns)".into()),
        })),
        _ => None,
    }
}

/// One test's engine and what its assertions have read so far.
struct Run {
    _dir: tempfile::TempDir,
    eddy: Eddy,
    session: Session,
    /// Per topic: records read by earlier assertions.
    cursors: HashMap<String, usize>,
}

impl Run {
    fn new() -> Result<Run, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let config = engine::EngineConfig { checkpoint_interval: std::time::Duration::from_millis(200), ..Default::default() };
        let eddy = Eddy::open(dir.path(), config).map_err(|e| engine::error_chain(&e))?;
        let mut session = eddy.session();
        session.set_property(planner::session::OFFSET_RESET, "earliest");
        Ok(Run { _dir: dir, eddy, session, cursors: HashMap::new() })
    }

    fn statement(&mut self, text: &str) -> Result<(), String> {
        if let Some(a) = assertion(text) {
            self.eddy
                .engine()
                .wait_caught_up(None, std::time::Duration::from_secs(30))
                .map_err(|e| e.to_string())?;
            return match a? {
                Assertion::Values { source, columns, values, tombstone } => self.assert_values(&source, &columns, &values, tombstone),
                Assertion::Source { create } => self.assert_source(&create),
            };
        }
        for st in self.session.parse(text).map_err(|e| engine::error_chain(&e))? {
            self.create_topic_of(&st.statement);
            self.session.execute(&st).map_err(|e| engine::error_chain(&e))?;
            // ksqlDB's test driver pipes each record through every query before the next one:
            // a stream record inserted after a table record finds it in a join.
            if matches!(st.statement, Statement::InsertValues(_)) {
                self.eddy.engine().wait_caught_up(None, std::time::Duration::from_secs(30)).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// ksqlDB's test runner simulates a cluster where every topic a CREATE names exists: its
    /// topic is created (one partition) when the statement does not say how many.
    fn create_topic_of(&self, st: &Statement) {
        let Statement::CreateSource(c) = st else { return };
        let prop = |n: &str| c.props.iter().find(|(k, _)| k == n).map(|(_, v)| v.text());
        let (Some(topic), None) = (prop("KAFKA_TOPIC"), prop("PARTITIONS")) else { return };
        let log = self.eddy.engine().log();
        if log.describe_topic(&topic).is_err() {
            let _ = log.create_topic(&topic, &storage::TopicConfig::new(1));
        }
    }

    fn assert_source(&self, c: &planner::ast::CreateSource) -> Result<(), String> {
        let catalog = self.eddy.catalog();
        let noun = c.source_type.noun();
        let def = catalog.sources.get(&c.name).ok_or_else(|| format!("{noun} {} does not exist", c.name))?;
        if def.source_type != c.source_type {
            return Err(format!("{} is a {}, not a {noun}", c.name, def.source_type.noun()));
        }
        if c.columns.is_empty() {
            return Ok(());
        }
        let want: Vec<String> = c.columns.iter().map(|col| column_text(&col.name, &planner::types::type_name(&col.data_type.to_arrow(&catalog.types).unwrap_or(DataType::Null)), &col.kind, c.source_type)).collect();
        let got: Vec<String> = def
            .columns
            .iter()
            .map(|col| column_text(&col.name, &planner::types::type_name(&col.data_type), &col.kind, def.source_type))
            .collect();
        if want != got {
            return Err(format!("Expected {noun} {} to have columns ({}) but it has ({})", c.name, want.join(", "), got.join(", ")));
        }
        Ok(())
    }

    fn assert_values(&mut self, source: &str, columns: &[String], values: &[datafusion::sql::sqlparser::ast::Expr], tombstone: bool) -> Result<(), String> {
        let catalog = self.eddy.catalog();
        let def = catalog.sources.get(source).ok_or_else(|| format!("unknown stream or table \"{source}\""))?.clone();
        let columns: Vec<String> = if columns.is_empty() {
            def.columns.iter().filter(|c| matches!(c.kind, ColumnKind::Key | ColumnKind::Value)).map(|c| c.name.clone()).collect()
        } else {
            columns.to_vec()
        };
        if columns.len() != values.len() {
            return Err(format!("{} columns but {} values", columns.len(), values.len()));
        }
        let records: Vec<Actual> = read_topic(self.eddy.engine().log().as_ref(), &def.topic);
        let at = self.cursors.entry(def.topic.clone()).or_insert(0);
        let what = if tombstone { "tombstone" } else { "record" };
        let Some(record) = records.get(*at) else {
            return Err(format!("Expected another {what} ({}) in {source}, but there are no more records", shown(&columns, values)));
        };
        *at += 1;
        let d = decode(record, &Serde::of(&def), None);
        if tombstone != d.value.is_null() {
            return Err(format!(
                "Expected a {what} ({}) in {source}, got {}",
                shown(&columns, values),
                if d.value.is_null() { "a tombstone".to_string() } else { short(&d.value) }
            ));
        }
        let keys: Vec<&planner::catalog::Column> = def.key_columns().collect();
        for (name, e) in columns.iter().zip(values) {
            let expected = expected_json(&self.session, &def, name, e)?;
            let (actual, ty) = match name.as_str() {
                "ROWTIME" => (Json::Num(d.timestamp.to_string()), Some(DataType::Int64)),
                "WINDOWSTART" => (d.window.as_ref().map(|w| Json::Num(w.start.to_string())).unwrap_or(Json::Null), Some(DataType::Int64)),
                "WINDOWEND" => (d.window.as_ref().map(|w| Json::Num(w.end.to_string())).unwrap_or(Json::Null), Some(DataType::Int64)),
                _ => {
                    let col = def.column(name).ok_or_else(|| format!("unknown column \"{name}\" of {source}"))?;
                    let v = if col.is_key() {
                        if keys.len() == 1 {
                            d.key.clone()
                        } else {
                            member(&d.key, name)
                        }
                    } else {
                        member(&d.value, name)
                    };
                    (v, Some(col.data_type.clone()))
                }
            };
            if let Some(why) = diff(&expected, &actual, ty.as_ref(), name) {
                return Err(format!("Expected record does not match actual in {source} ({}): {why}", shown(&columns, values)));
            }
        }
        Ok(())
    }
}

fn column_text(name: &str, ty: &str, kind: &ColumnKind, st: SourceType) -> String {
    match (kind, st) {
        (ColumnKind::Key, SourceType::Stream) => format!("`{name}` {ty} KEY"),
        (ColumnKind::Key, SourceType::Table) => format!("`{name}` {ty} PRIMARY KEY"),
        _ => format!("`{name}` {ty}"),
    }
}

fn shown(columns: &[String], values: &[datafusion::sql::sqlparser::ast::Expr]) -> String {
    columns.iter().zip(values).map(|(c, v)| format!("{c}={v}")).collect::<Vec<_>>().join(", ")
}

/// A member of a JSON object (by name, then upper-case), null when missing.
fn member(v: &Json, name: &str) -> Json {
    match v {
        Json::Obj(m) => m
            .iter()
            .find(|(k, _)| k == name)
            .or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.clone())
            .unwrap_or(Json::Null),
        _ => Json::Null,
    }
}

/// The expected value of column `name` as JSON, evaluated as INSERT VALUES would evaluate it.
fn expected_json(session: &Session, def: &SourceDef, name: &str, e: &datafusion::sql::sqlparser::ast::Expr) -> Result<Json, String> {
    let ty = match name {
        "ROWTIME" | "WINDOWSTART" | "WINDOWEND" => DataType::Int64,
        _ => def.column(name).map(|c| c.data_type.clone()).ok_or_else(|| format!("unknown column \"{name}\""))?,
    };
    let array = session.evaluate_as(e, &ty).map_err(|err| format!("cannot evaluate {e}: {}", engine::error_chain(&err)))?;
    let mut text = String::new();
    json_value(&array, 0, &mut text);
    let j = json::parse(&text).map_err(|err| format!("{err:?}"))?;
    // TIMESTAMP, DATE and TIME are written as their numbers (ms, days, ms), as sinks write them.
    Ok(match (&ty, j) {
        (DataType::Timestamp(_, _) | DataType::Date32 | DataType::Time32(_), Json::Str(_)) => {
            let n = datafusion::arrow::compute::cast(&array, &DataType::Int64).map_err(|err| err.to_string())?;
            let mut t = String::new();
            json_value(&n, 0, &mut t);
            json::parse(&t).map_err(|err| format!("{err:?}"))?
        }
        (_, j) => j,
    })
}

/// Runs the tests of one file, printing each result; returns (passed, failed).
pub fn run_file(path: &Path) -> (usize, usize) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            println!(">>>>> Test failed: cannot read {}: {e}", path.display());
            return (0, 1);
        }
    };
    let tests = match parse_file(&text) {
        Ok(t) => t,
        Err(e) => {
            println!(">>>>> Test failed: {}: {e}", path.display());
            return (0, 1);
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for t in tests {
        match run_test(&t) {
            Ok(()) => {
                passed += 1;
                println!(">>> Test passed! ({})", t.name);
            }
            Err((line, why)) => {
                failed += 1;
                println!(">>>>> Test failed: {} ({}:{line}): {why}", t.name, path.display());
            }
        }
    }
    (passed, failed)
}

/// Runs one test: `Err((line, why))` names the statement that failed it.
pub fn run_test(t: &SqlTest) -> Result<(), (usize, String)> {
    let mut run = Run::new().map_err(|e| (0, e))?;
    let expects_error = t.expected_error.is_some() || t.expected_message.is_some();
    for (line, s) in &t.statements {
        match run.statement(s) {
            Ok(()) => {}
            Err(e) if expects_error => {
                return match &t.expected_message {
                    Some(m) if !e.to_lowercase().contains(&m.to_lowercase()) => {
                        Err((*line, format!("expected an error containing \"{m}\", got: {e}")))
                    }
                    _ => Ok(()),
                };
            }
            Err(e) => return Err((*line, format!("{e}\n  in statement: {s}"))),
        }
    }
    let _ = run.eddy.shutdown();
    if expects_error {
        return Err((0, format!("expected an error ({}), none was raised", t.expected_message.as_deref().or(t.expected_error.as_deref()).unwrap_or(""))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_split_into_tests_with_directives() {
        let text = "--@test: one\nCREATE STREAM s (id INT KEY) WITH (kafka_topic='s', value_format='JSON');\nASSERT VALUES s (id) VALUES (1);\n\n--@test: two\n--@expected.error: io.confluent.ksql.util.KsqlException\n--@expected.message: boom\nSHOW STREAMS;\n";
        let t = parse_file(text).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name, "one");
        assert_eq!(t[0].statements.len(), 2);
        assert_eq!(t[0].statements[1].0, 3);
        assert_eq!(t[1].expected_message.as_deref(), Some("boom"));
        assert!(parse_file("SHOW STREAMS;\n--@test: late\n").is_err());
    }

    #[test]
    fn assertions_read_like_inserts() {
        let Some(Ok(Assertion::Values { source, columns, values, tombstone })) = assertion("ASSERT VALUES j (rowtime, s_id) VALUES (1, 2)") else { panic!() };
        assert_eq!((source.as_str(), columns.len(), values.len(), tombstone), ("J", 2, 2, false));
        let Some(Ok(Assertion::Values { tombstone, columns, .. })) = assertion("ASSERT NULL VALUES t (id) KEY (1)") else { panic!() };
        assert!(tombstone);
        assert_eq!(columns, vec!["ID".to_string()]);
        assert!(matches!(assertion("ASSERT TABLE t (id INT PRIMARY KEY) WITH (kafka_topic='t')"), Some(Ok(Assertion::Source { .. }))));
        assert!(assertion("SHOW STREAMS").is_none());
    }
}
