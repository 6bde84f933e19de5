//! Eddy's sqllogictest adapter and runner, used by `cargo test` (over `sql-tests/slt/**/*.slt`)
//! and by `eddy test FILE...` for users' own suites; ksqlDB's SQL test files (`--@test:`, see
//! [`ksqltest`]) run beside them.
//!
//! Each file runs against a fresh engine in a temporary data directory. Before every query the
//! adapter waits until the persistent queries have processed everything appended so far, so
//! results are deterministic. A push query with `LIMIT n` returns its first n rows; one without
//! LIMIT returns the rows produced once everything has been processed. Directives handled by the
//! adapter (not SQL): `RESTART` (checkpoint, stop and reopen the engine on the same data
//! directory) and `CLEANUP [AT <ms>]` (wait until the persistent queries caught up, checkpoint,
//! then run one pass of the background cleaner, retention and compaction of every topic, as if
//! the time were `<ms>`; the current time without AT).

pub mod ksqltest;
pub mod qtt;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use planner::ast::Statement;
use planner::session::render::cell_text;
use planner::{Eddy, Output, RowSet, Session};
use sqllogictest::{DBOutput, DefaultColumnType};

/// How long a push query with LIMIT may wait for its rows.
const PUSH_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for persistent queries to catch up.
const CATCH_UP: Duration = Duration::from_secs(30);

/// An error from Eddy, with its causes.
#[derive(Debug)]
pub struct EddyError(pub String);

impl std::fmt::Display for EddyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EddyError {}

impl From<planner::PlanError> for EddyError {
    fn from(e: planner::PlanError) -> Self {
        EddyError(engine::error_chain(&e))
    }
}

/// One engine in a temporary data directory, driven by sqllogictest.
pub struct EddyDb {
    dir: tempfile::TempDir,
    eddy: Option<Eddy>,
    session: Option<Session>,
}

impl EddyDb {
    /// A fresh engine.
    pub fn new() -> Result<Self, EddyError> {
        let dir = tempfile::tempdir().map_err(|e| EddyError(format!("cannot create a temporary directory: {e}")))?;
        let eddy = Eddy::open(dir.path(), test_config())?;
        let session = eddy.session();
        Ok(EddyDb { dir, eddy: Some(eddy), session: Some(session) })
    }

    fn eddy(&self) -> &Eddy {
        self.eddy.as_ref().expect("open")
    }

    fn restart(&mut self) -> Result<(), EddyError> {
        let props = self.session.as_ref().map(|s| s.properties().clone()).unwrap_or_default();
        self.session = None;
        if let Some(e) = self.eddy.take() {
            e.shutdown()?;
            drop(e);
        }
        // Task threads release the state store as they stop; give them a moment.
        let mut last = None;
        for _ in 0..50 {
            match Eddy::open(self.dir.path(), test_config()) {
                Ok(e) => {
                    let mut s = e.session();
                    for (k, v) in &props {
                        s.set_property(k, v);
                    }
                    self.session = Some(s);
                    self.eddy = Some(e);
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Err(last.map(EddyError::from).unwrap_or_else(|| EddyError("cannot reopen".into())))
    }

    async fn run_one(&mut self, st: &planner::parser::ParsedStatement) -> Result<DBOutput<DefaultColumnType>, EddyError> {
        if matches!(st.statement, Statement::Query(_) | Statement::Print { .. }) {
            let engine = self.eddy().engine().clone();
            tokio::task::spawn_blocking(move || engine.wait_caught_up(None, CATCH_UP))
                .await
                .map_err(|e| EddyError(e.to_string()))?
                .map_err(|e| EddyError(e.to_string()))?;
        }
        let session = self.session.as_mut().expect("open");
        let out = tokio::task::block_in_place(|| session.execute(st))?;
        match out {
            Output::Message(_) => Ok(DBOutput::StatementComplete(0)),
            Output::Rows(rs) => Ok(rows(&rs)),
            Output::Stream(mut pq) => {
                let schema = pq.schema.clone();
                let has_limit = matches!(&st.statement, Statement::Query(q) if q.limit.is_some())
                    || matches!(&st.statement, Statement::Print { limit: Some(_), .. });
                let is_push = matches!(&st.statement, Statement::Query(q) if q.emit.is_some()) || matches!(&st.statement, Statement::Print { .. });
                let mut batches = Vec::new();
                if has_limit || !is_push {
                    loop {
                        match pq.next_timeout(PUSH_TIMEOUT).await {
                            Ok(Some(b)) => batches.push(b),
                            Ok(None) => break,
                            Err(()) => {
                                return Err(EddyError(format!(
                                    "timed out after {}s waiting for the rows of: {}",
                                    PUSH_TIMEOUT.as_secs(),
                                    st.text
                                )))
                            }
                        }
                    }
                } else {
                    let engine = self.eddy().engine().clone();
                    tokio::task::spawn_blocking(move || engine.wait_caught_up(None, CATCH_UP))
                        .await
                        .map_err(|e| EddyError(e.to_string()))?
                        .map_err(|e| EddyError(e.to_string()))?;
                    while let Ok(Some(b)) = pq.next_timeout(Duration::from_millis(100)).await {
                        batches.push(b);
                    }
                }
                pq.finish();
                Ok(rows(&RowSet { schema, batches }))
            }
        }
    }
}

/// `CLEANUP` (`Some(None)`: at the current time) or `CLEANUP AT <ms>` (`Some(Some(ms))`).
fn cleanup_directive(sql: &str) -> Option<Option<i64>> {
    let words: Vec<&str> = sql.trim().trim_end_matches(';').split_whitespace().collect();
    match words.as_slice() {
        [c] if c.eq_ignore_ascii_case("CLEANUP") => Some(None),
        [c, at, ms] if c.eq_ignore_ascii_case("CLEANUP") && at.eq_ignore_ascii_case("AT") => ms.parse().ok().map(Some),
        _ => None,
    }
}

fn test_config() -> engine::EngineConfig {
    engine::EngineConfig { checkpoint_interval: Duration::from_millis(200), ..Default::default() }
}

fn rows(rs: &RowSet) -> DBOutput<DefaultColumnType> {
    let types = rs
        .schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Int32 | DataType::Int64 => DefaultColumnType::Integer,
            DataType::Float64 | DataType::Decimal128(_, _) => DefaultColumnType::FloatingPoint,
            _ => DefaultColumnType::Text,
        })
        .collect();
    let mut out = Vec::new();
    for b in &rs.batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| match cell_text(c, r) {
                        None => "NULL".to_string(),
                        Some(s) if s.is_empty() => "(empty)".to_string(),
                        Some(s) => s,
                    })
                    .collect(),
            );
        }
    }
    DBOutput::Rows { types, rows: out }
}

use datafusion::arrow::datatypes::DataType;

#[async_trait]
impl sqllogictest::AsyncDB for EddyDb {
    type Error = EddyError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, EddyError> {
        if sql.trim().trim_end_matches(';').trim().eq_ignore_ascii_case("RESTART") {
            tokio::task::block_in_place(|| self.restart())?;
            return Ok(DBOutput::StatementComplete(0));
        }
        if let Some(at) = cleanup_directive(sql) {
            let engine = self.eddy().engine().clone();
            tokio::task::block_in_place(|| {
                engine.wait_caught_up(None, CATCH_UP)?;
                engine.checkpoint()?;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
                engine.clean_now(at.unwrap_or(now))
            })
            .map_err(|e| EddyError(engine::error_chain(&e)))?;
            return Ok(DBOutput::StatementComplete(0));
        }
        let stmts = self.session.as_ref().expect("open").parse(sql)?;
        let mut last = DBOutput::StatementComplete(0);
        for st in &stmts {
            last = self.run_one(st).await?;
        }
        Ok(last)
    }

    async fn shutdown(&mut self) {
        self.session = None;
        if let Some(e) = self.eddy.take() {
            let _ = e.shutdown();
        }
    }

    fn engine_name(&self) -> &str {
        "eddy"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// Runs one .slt file against a fresh engine.
pub async fn run_file(path: &Path) -> Result<(), String> {
    let mut runner = sqllogictest::Runner::new(|| async { EddyDb::new() });
    let r = runner.run_file_async(path).await.map_err(|e| e.display(true).to_string());
    runner.shutdown_async().await;
    r
}

/// Rewrites the expected results of a file with what Eddy returns (`--complete`).
pub async fn complete_file(path: &Path) -> Result<(), String> {
    let mut runner = sqllogictest::Runner::new(|| async { EddyDb::new() });
    let col_sep = " ";
    let r = runner
        .update_test_file(path, col_sep, sqllogictest::default_validator, sqllogictest::default_normalizer, sqllogictest::default_column_validator)
        .await
        .map_err(|e| e.to_string());
    runner.shutdown_async().await;
    r
}

/// Runs files in order (a directory: every test file under it), printing a line per failure and
/// a summary `N passed, N failed`. A path that cannot be read counts as failed, with the reason.
/// Returns (passed, failed).
pub fn run_files(paths: &[PathBuf], complete: bool) -> (usize, usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    let (mut passed, mut failed) = (0, 0);
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(find_slt_files(p));
        } else {
            files.push(p.clone());
        }
    }
    for p in &files {
        if let Err(e) = std::fs::File::open(p) {
            failed += 1;
            println!("FAILED {}: cannot read it: {e}", p.display());
            continue;
        }
        // ksqlDB's SQL test files (`--@test:` blocks) run with their own runner.
        if p.extension().is_some_and(|x| x == "sql") || std::fs::read_to_string(p).is_ok_and(|t| ksqltest::is_sql_test(&t)) {
            let (ok, bad) = ksqltest::run_file(p);
            if bad == 0 && ok > 0 {
                passed += 1;
                println!("ok     {} ({ok} tests)", p.display());
            } else {
                failed += 1;
                println!("FAILED {} ({ok} passed, {bad} failed)", p.display());
            }
            continue;
        }
        let r = if complete { rt.block_on(complete_file(p)) } else { rt.block_on(run_file(p)) };
        match r {
            Ok(()) => {
                passed += 1;
                println!("ok     {}", p.display());
            }
            Err(e) => {
                failed += 1;
                println!("FAILED {}\n{e}", p.display());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    (passed, failed)
}

/// Every `.slt` file (and ksqlDB SQL test file, `.sql`) under `dir`, sorted.
pub fn find_slt_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "slt" || x == "sql") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
