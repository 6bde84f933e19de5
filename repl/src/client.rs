//! `eddy --server URL`: the REPL and the CLI against a running `eddy server`, over its HTTP API.
//!
//! Statements are split locally (as the embedded REPL does) and sent one at a time: queries to
//! `/query-stream`, everything else to `/ksql`. Like ksqlDB's CLI, the client keeps the session's
//! properties (SET), sent with every request, and variables (DEFINE), substituted here before a
//! statement is sent. Values come back as
//! the JSON the server rendered them to and are printed without re-parsing, so the output is the
//! same as embedded. Ctrl-C during a push query closes its connection, which ends it on the server.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::time::Duration;

use planner::ast::Statement;
use planner::parser::ParsedStatement;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::backend::{Backend, Ran};
use crate::print::{PrintRow, Printer};

/// A server's HTTP API.
pub struct Remote {
    base: String,
    agent: ureq::Agent,
    auth: Option<String>,
    props: BTreeMap<String, String>,
    vars: planner::parser::Variables,
    rt: tokio::runtime::Runtime,
}

#[derive(Deserialize)]
struct Entity {
    #[serde(rename = "@type")]
    kind: String,
    #[serde(rename = "commandStatus")]
    status: Option<CommandStatus>,
    #[serde(rename = "columnNames", default)]
    names: Vec<String>,
    #[serde(rename = "columnTypes", default)]
    types: Vec<String>,
    #[serde(default)]
    rows: Vec<Vec<Box<RawValue>>>,
}

#[derive(Deserialize)]
struct CommandStatus {
    message: String,
}

#[derive(Deserialize)]
struct Header {
    #[serde(rename = "columnNames")]
    names: Vec<String>,
    #[serde(rename = "columnTypes")]
    types: Vec<String>,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// A row of raw JSON values as printed: STRING values unquoted, the others as their JSON.
fn print_row(types: &[String], raw: &[Box<RawValue>]) -> PrintRow {
    let json: Vec<String> = raw.iter().map(|v| v.get().to_string()).collect();
    let text = json
        .iter()
        .enumerate()
        .map(|(i, j)| {
            if j == "null" {
                None
            } else if types.get(i).is_some_and(|t| t == "STRING") && j.starts_with('"') {
                serde_json::from_str::<String>(j).ok()
            } else {
                Some(j.clone())
            }
        })
        .collect();
    PrintRow { text, json }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", planner::session::render::base64(format!("{user}:{password}").as_bytes()))
}

impl Remote {
    /// Connects to `url` (`http://HOST:PORT`, optionally `http://USER:PASSWORD@HOST:PORT`;
    /// else the credentials come from EDDY_USER / EDDY_PASSWORD) and checks that it answers.
    pub fn connect(url: &str) -> Result<Remote, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("unsupported server URL \"{url}\": expected http://HOST:PORT"))?;
        let rest = rest.trim_end_matches('/');
        let (auth, host) = match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (Some(basic(u, p)), host)
            }
            None => match (std::env::var("EDDY_USER"), std::env::var("EDDY_PASSWORD")) {
                (Ok(u), Ok(p)) if !u.is_empty() => (Some(basic(&u, &p)), rest),
                _ => (None, rest),
            },
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let remote = Remote { base: format!("http://{host}"), agent: config.into(), auth, props: BTreeMap::new(), vars: Default::default(), rt };
        let mut req = remote.agent.get(format!("{}/info", remote.base));
        if let Some(a) = &remote.auth {
            req = req.header("authorization", a);
        }
        let resp = req.call().map_err(|e| format!("cannot reach the server at {}: {e}", remote.base))?;
        match resp.status().as_u16() {
            200 => Ok(remote),
            401 => Err(format!("the server at {} requires credentials: use http://USER:PASSWORD@HOST:PORT or EDDY_USER/EDDY_PASSWORD", remote.base)),
            s => Err(format!("the server at {} answered /info with status {s}", remote.base)),
        }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn post(&self, path: &str, sql: &str) -> Result<ureq::http::Response<ureq::Body>, String> {
        // Variables were substituted already (`Backend::parse`): none are sent.
        let body = serde_json::json!({ "ksql": sql, "streamsProperties": self.props });
        let mut req = self.agent.post(format!("{}{path}", self.base)).header("content-type", "application/json");
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        let mut resp = req.send(body.to_string()).map_err(|e| format!("cannot reach the server at {}: {e}", self.base))?;
        if resp.status().as_u16() >= 400 {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(e) => e.message,
                Err(_) => format!("the server answered status {}: {text}", resp.status()),
            });
        }
        Ok(resp)
    }

    fn statement(&mut self, st: &ParsedStatement, printer: &mut Printer) -> Result<(), String> {
        let mut resp = self.post("/ksql", &st.text)?;
        let text = resp.body_mut().with_config().limit(u64::MAX).read_to_string().map_err(|e| e.to_string())?;
        let entities: Vec<Entity> = serde_json::from_str(&text).map_err(|e| format!("unexpected answer from the server: {e}"))?;
        for e in entities {
            match e.kind.as_str() {
                "rows" => {
                    let rows: Vec<PrintRow> = e.rows.iter().map(|r| print_row(&e.types, r)).collect();
                    printer.print_rows(&e.names, &rows);
                }
                _ => printer.message(&e.status.map(|s| s.message).unwrap_or_default()),
            }
        }
        match &st.statement {
            Statement::Set { name, value } => {
                self.props.insert(name.clone(), value.clone());
            }
            Statement::Unset(name) => {
                self.props.remove(name);
            }
            Statement::Define { name, value } => self.vars.define(name, value),
            Statement::Undefine(name) => {
                self.vars.undefine(name);
            }
            _ => {}
        }
        Ok(())
    }

    fn query(&mut self, st: &ParsedStatement, printer: &mut Printer, interactive: bool) -> Result<Ran, String> {
        let resp = self.post("/query-stream", &st.text)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<Vec<String>>>();
        // The reader owns the connection: when the REPL stops listening (Ctrl-C), it drops it at
        // the next line, the server's heartbeat at the latest, and the server ends the query.
        // Lines that arrive together (one batch of the query) are passed on together, so that a
        // table's columns are sized by the first batch as in the embedded REPL.
        std::thread::spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, resp.into_body().into_with_config().limit(u64::MAX).reader());
            loop {
                let mut batch = Vec::new();
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) => {
                            if !batch.is_empty() {
                                let _ = tx.send(Ok(batch));
                            }
                            return;
                        }
                        Ok(_) => batch.push(line),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                    if !reader.buffer().contains(&b'\n') {
                        break;
                    }
                }
                if tx.send(Ok(batch)).is_err() {
                    return;
                }
            }
        });
        // A query without EMIT CHANGES (a pull query, or a scan of a stream) is a finite result.
        let finite = matches!(&st.statement, Statement::Query(q) if q.emit.is_none());
        self.rt.block_on(async {
            let mut header: Option<Header> = None;
            let mut pull_rows = Vec::new();
            loop {
                tokio::select! {
                    lines = rx.recv() => match lines {
                        Some(Ok(lines)) => {
                            let mut rows = Vec::new();
                            for line in &lines {
                                let line = line.trim();
                                if line.is_empty() {
                                    continue;
                                }
                                match &header {
                                    None => {
                                        let mut h: Header = serde_json::from_str(line).map_err(|e| format!("unexpected answer from the server: {e}"))?;
                                        if finite {
                                            h.kind = "pull".into();
                                        }
                                        if h.kind != "pull" {
                                            if interactive {
                                                println!("Press Ctrl-C to stop.");
                                            }
                                            printer.stream_start_names(h.names.clone(), matches!(st.statement, Statement::Print { .. }));
                                        }
                                        header = Some(h);
                                    }
                                    Some(h) => {
                                        if line.starts_with('{') {
                                            let e: ErrorBody = serde_json::from_str(line).map_err(|e| format!("unexpected answer from the server: {e}"))?;
                                            return Err(e.message);
                                        }
                                        let raw: Vec<Box<RawValue>> = serde_json::from_str(line).map_err(|e| format!("unexpected answer from the server: {e}"))?;
                                        rows.push(print_row(&h.types, &raw));
                                    }
                                }
                            }
                            match &header {
                                Some(h) if h.kind == "pull" => pull_rows.extend(rows),
                                Some(_) if !rows.is_empty() => printer.stream_rows(&rows),
                                _ => {}
                            }
                        }
                        Some(Err(e)) => return Err(format!("lost the connection to the server: {e}")),
                        None => break,
                    },
                    _ = tokio::signal::ctrl_c() => {
                        if header.as_ref().is_some_and(|h| h.kind != "pull") {
                            printer.stream_end(true, false);
                        }
                        return Ok(Ran::Interrupted);
                    }
                }
            }
            match header {
                Some(h) if h.kind == "pull" => printer.print_rows(&h.names, &pull_rows),
                Some(_) => {
                    let limit = match &st.statement {
                        Statement::Query(q) => q.limit,
                        Statement::Print { limit, .. } => *limit,
                        _ => None,
                    };
                    printer.stream_end(false, limit.is_some_and(|l| printer.streamed_rows() >= l));
                }
                None => return Err("the server ended the query without a header".into()),
            }
            Ok(Ran::Done)
        })
    }
}

impl Backend for Remote {
    fn run(&mut self, st: &ParsedStatement, printer: &mut Printer, interactive: bool) -> Result<Ran, String> {
        if matches!(st.statement, Statement::Show { what: planner::ast::ShowWhat::Variables, .. }) {
            // Variables live in this client (they are substituted before statements are sent).
            let names = vec!["Variable Name".to_string(), "Value".to_string()];
            let rows: Vec<PrintRow> = self
                .vars
                .iter()
                .map(|(n, v)| PrintRow {
                    text: vec![Some(n.to_string()), Some(v.to_string())],
                    json: vec![serde_json::Value::from(n).to_string(), serde_json::Value::from(v).to_string()],
                })
                .collect();
            printer.print_rows(&names, &rows);
            return Ok(Ran::Done);
        }
        if matches!(st.statement, Statement::Query(_) | Statement::Print { .. }) {
            self.query(st, printer, interactive)
        } else {
            self.statement(st, printer).map(|()| Ran::Done)
        }
    }

    fn parse(&mut self, sql: &str) -> Result<Vec<ParsedStatement>, String> {
        let enabled = !self.props.get(planner::parser::SUBSTITUTION_ENABLE).is_some_and(|v| v.eq_ignore_ascii_case("false"));
        planner::parser::parse_script(sql, &self.vars, enabled).map_err(|e| engine::error_chain(&e))
    }

    fn define(&mut self, name: &str, value: &str) -> Result<(), String> {
        if !planner::parser::vars::is_variable_name(name) {
            return Err(format!("invalid variable name \"{name}\""));
        }
        self.vars.define(name, value);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("the server at {}", self.base)
    }

    fn names(&mut self) -> Vec<String> {
        let Ok(mut resp) = self.post("/ksql", "SHOW STREAMS; SHOW TABLES; SHOW TOPICS;") else { return Vec::new() };
        let Ok(text) = resp.body_mut().with_config().limit(u64::MAX).read_to_string() else { return Vec::new() };
        let entities: Vec<Entity> = serde_json::from_str(&text).unwrap_or_default();
        entities
            .iter()
            .flat_map(|e| e.rows.iter().filter_map(|r| r.first()).filter_map(|v| serde_json::from_str::<String>(v.get()).ok()))
            .filter(|n| !n.starts_with('_'))
            .collect()
    }
}
