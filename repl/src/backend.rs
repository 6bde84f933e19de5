//! Where the REPL and the CLI run statements: the embedded engine ([`Embedded`]) or a server
//! over HTTP ([`crate::client::Remote`]). Both print through the same [`Printer`], so the
//! output is the same either way.

use planner::parser::ParsedStatement;
use planner::{Eddy, Output, Session};

use crate::print::Printer;

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// It completed (a push query: its LIMIT was reached or its input ended).
    Done,
    /// Ctrl-C stopped a push query.
    Interrupted,
}

/// Runs statements and prints their results.
pub trait Backend {
    /// Runs `st` and prints its result; `Err` carries the error's text. `interactive` asks
    /// for the REPL's hints ("Press Ctrl-C to stop.").
    fn run(&mut self, st: &ParsedStatement, printer: &mut Printer, interactive: bool) -> Result<Ran, String>;
    /// Parses one statement's text, substituting the session's variables (`${name}`).
    fn parse(&mut self, sql: &str) -> Result<Vec<ParsedStatement>, String>;
    /// Defines a variable (`eddy --define name=value`).
    fn define(&mut self, name: &str, value: &str) -> Result<(), String>;
    /// Where statements run, for the REPL's `server` command.
    fn describe(&self) -> String;
    /// Names of streams, tables and topics, for completion.
    fn names(&mut self) -> Vec<String>;
}

/// The engine in this process.
pub struct Embedded {
    session: Session,
    rt: tokio::runtime::Runtime,
    place: String,
}

impl Embedded {
    /// A backend with a fresh session of `eddy`, whose data directory is `place`.
    pub fn new(eddy: &Eddy, place: String) -> std::io::Result<Self> {
        Ok(Embedded { session: eddy.session(), rt: tokio::runtime::Builder::new_current_thread().enable_all().build()?, place })
    }
}

/// A query without EMIT CHANGES: a scan of a stream, bounded by its topics' current ends.
fn is_scan(st: &ParsedStatement) -> bool {
    matches!(&st.statement, planner::ast::Statement::Query(q) if q.emit.is_none())
}

impl Backend for Embedded {
    fn run(&mut self, st: &ParsedStatement, printer: &mut Printer, interactive: bool) -> Result<Ran, String> {
        match self.session.execute(st) {
            Ok(Output::Message(m)) => printer.message(&m),
            Ok(Output::Rows(rs)) => printer.rows(&rs),
            Ok(Output::Stream(mut pq)) if is_scan(st) => {
                // A query without EMIT CHANGES over a stream ends with its input: a finite
                // result, printed (sized by its content) as a pull query's.
                let schema = pq.schema.clone();
                let batches = self.rt.block_on(async {
                    let mut v = Vec::new();
                    while let Some(b) = pq.next().await {
                        v.push(b);
                    }
                    v
                });
                printer.rows(&planner::RowSet { schema, batches });
            }
            Ok(Output::Stream(mut pq)) => {
                if interactive {
                    println!("Press Ctrl-C to stop.");
                }
                let interrupted = self.rt.block_on(async {
                    printer.stream_start(&pq.schema);
                    loop {
                        tokio::select! {
                            b = pq.next() => match b {
                                Some(b) => printer.stream_batch(&b),
                                None => break false,
                            },
                            _ = tokio::signal::ctrl_c() => break true,
                        }
                    }
                });
                let limit_reached = pq.is_done();
                pq.finish();
                printer.stream_end(interrupted, limit_reached);
                if interrupted {
                    return Ok(Ran::Interrupted);
                }
            }
            Err(e) => return Err(engine::error_chain(&e)),
        }
        Ok(Ran::Done)
    }

    fn parse(&mut self, sql: &str) -> Result<Vec<ParsedStatement>, String> {
        self.session.parse(sql).map_err(|e| engine::error_chain(&e))
    }

    fn define(&mut self, name: &str, value: &str) -> Result<(), String> {
        let sql = format!("DEFINE {name} = '{}';", value.replace('\'', "''"));
        self.session.execute_all(&sql).map(|_| ()).map_err(|e| engine::error_chain(&e))
    }

    fn describe(&self) -> String {
        format!("the embedded engine on data directory {}", self.place)
    }

    fn names(&mut self) -> Vec<String> {
        let eddy = self.session.eddy();
        let mut names: Vec<String> = eddy.catalog().sources.keys().cloned().collect();
        names.extend(eddy.engine().log().list_topics().into_iter().filter(|t| !t.starts_with('_')));
        names
    }
}
