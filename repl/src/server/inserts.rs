//! POST /inserts-stream and /inserts: JSON rows appended to a stream or table. Each row becomes
//! an `INSERT INTO ... VALUES` statement, so it gets exactly the checks, coercions and encodings
//! of one.
//!
//! `/inserts-stream` is ksqlDB's: the first line names the target (`{"target":"S"}`), each
//! further line is a row object, and each row is acknowledged (`{"status":"ok","seq":N}`) as soon
//! as it is written, while the client may still be sending (over HTTP/2 both directions stream).
//! A bad row gets `{"status":"error","seq":N,"error_code":40000,"message":...}` and ends the
//! stream; rows after it are not written. Acks are one per line, or with `Accept:
//! application/json` one JSON array. `/inserts` reads the whole body first and answers 400 at the
//! first bad row.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use datafusion::arrow::datatypes::DataType;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use planner::catalog::SourceDef;
use planner::{Eddy, Session};
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::ServerError;
use super::exec::blocking;
use super::http::{error_response, respond, Body, ReqBody, MAX_INSERT_BODY};
use super::json;
use planner::session::render::json_string;
use super::query::Form;
use super::Shared;

/// Rows into one stream or table.
pub struct Inserter {
    def: SourceDef,
    session: Session,
    /// The number of the next row.
    pub seq: u64,
}

impl Inserter {
    /// Opens the target the first line names.
    pub fn open(eddy: &Eddy, first: &str) -> Result<Inserter, ServerError> {
        let target = match serde_json::from_str::<Value>(first) {
            Ok(Value::Object(m)) => match m.get("target") {
                Some(Value::String(t)) => t.clone(),
                _ => return Err(ServerError::BadRequest("the first line must be {\"target\":\"NAME\"}".into())),
            },
            _ => return Err(ServerError::BadRequest("the first line must be {\"target\":\"NAME\"}".into())),
        };
        let catalog = eddy.catalog();
        let def = catalog
            .sources
            .get(&target)
            .or_else(|| catalog.sources.get(&target.to_uppercase()))
            .ok_or_else(|| ServerError::BadRequest(format!("unknown stream or table \"{target}\"")))?
            .clone();
        Ok(Inserter { def, session: eddy.session(), seq: 0 })
    }

    /// Writes one row (a JSON object); the row's number goes up either way.
    pub fn row(&mut self, line: &str) -> Result<(), ServerError> {
        let seq = self.seq;
        self.seq += 1;
        let row = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => m,
            _ => return Err(ServerError::BadRequest(format!("row {seq} is not a JSON object"))),
        };
        let sql = insert_sql(&self.def, &row).map_err(|m| ServerError::BadRequest(format!("row {seq}: {m}")))?;
        self.session.execute_all(&sql).map_err(|e| ServerError::statement(&sql, &e))?;
        Ok(())
    }
}

fn ok_ack(seq: u64) -> String {
    format!("{{\"status\":\"ok\",\"seq\":{seq}}}")
}

fn error_ack(seq: u64, e: &ServerError) -> String {
    let mut s = format!("{{\"status\":\"error\",\"seq\":{seq},\"error_code\":{},\"message\":", e.code());
    json_string(&e.to_string(), &mut s);
    s.push('}');
    s
}

/// Appends an ack as `form` separates them: a line each, or elements of one array.
fn ack_text(form: Form, first: &mut bool, ack: &str, out: &mut String) {
    if form == Form::Json {
        if !*first {
            out.push(',');
        }
        out.push_str(ack);
    } else {
        out.push_str(ack);
        out.push('\n');
    }
    *first = false;
}

/// POST /inserts: the whole body, then acks (status 400 at the first bad row).
pub async fn whole(shared: &Arc<Shared>, body: Bytes) -> Response<Body> {
    let eddy = shared.eddy.clone();
    let ran = blocking(move || run(&eddy, &body)).await;
    match ran {
        Ok((acks, None)) => respond(200, "application/json", acks),
        Ok((acks, Some(e))) => respond(e.status(), "application/json", acks + &json::error_body(&e, &[]) + "\n"),
        Err(e) => error_response(&e, &[]),
    }
}

/// Runs a whole /inserts body; returns the acks written so far and the error that stopped it.
pub fn run(eddy: &Eddy, body: &[u8]) -> (String, Option<ServerError>) {
    let mut acks = String::new();
    let err = (|| {
        let text = std::str::from_utf8(body).map_err(|_| ServerError::BadRequest("the request body is not UTF-8".into()))?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().ok_or_else(|| ServerError::BadRequest("empty request: expected {\"target\":\"NAME\"} and rows".into()))?;
        let mut ins = Inserter::open(eddy, first)?;
        for line in lines {
            let seq = ins.seq;
            ins.row(line)?;
            acks.push_str(&ok_ack(seq));
            acks.push('\n');
        }
        Ok::<_, ServerError>(())
    })()
    .err();
    (acks, err)
}

/// Splits the complete lines off the front of `buf` (non-empty ones, without their newline).
fn take_lines(buf: &mut BytesMut) -> Result<Vec<String>, ServerError> {
    let Some(last) = buf.iter().rposition(|&b| b == b'\n') else { return Ok(Vec::new()) };
    let chunk = buf.split_to(last + 1);
    let text = std::str::from_utf8(&chunk).map_err(|_| ServerError::BadRequest("the request body is not UTF-8".into()))?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect())
}

/// Reads from `body` until `buf` holds a complete line or the body ends; false at the end.
async fn fill<B: ReqBody>(body: &mut B, buf: &mut BytesMut) -> Result<bool, ServerError> {
    match body.frame().await {
        None => Ok(false),
        Some(Err(e)) => Err(ServerError::BadRequest(format!("cannot read the request body: {e}"))),
        Some(Ok(f)) => {
            if let Ok(d) = f.into_data() {
                buf.extend_from_slice(&d);
            }
            if buf.len() > MAX_INSERT_BODY && !buf.contains(&b'\n') {
                return Err(ServerError::TooLarge { what: "a line of the request body", limit: MAX_INSERT_BODY });
            }
            Ok(true)
        }
    }
}

/// POST /inserts-stream: acks each row as it is written, while the request still streams.
pub async fn stream<B: ReqBody>(shared: &Arc<Shared>, mut body: B, form: Form) -> Response<Body> {
    // The target line first, so that a bad target gets a status.
    let mut buf = BytesMut::new();
    let mut open = true;
    let mut lines = Vec::new();
    while lines.is_empty() {
        match take_lines(&mut buf) {
            Ok(l) => lines = l,
            Err(e) => return error_response(&e, &[]),
        }
        if !lines.is_empty() || !open {
            break;
        }
        match fill(&mut body, &mut buf).await {
            Ok(more) => open = more,
            Err(e) => return error_response(&e, &[]),
        }
        if !open {
            buf.extend_from_slice(b"\n");
        }
    }
    if lines.is_empty() {
        return error_response(&ServerError::BadRequest("empty request: expected {\"target\":\"NAME\"} and rows".into()), &[]);
    }
    let first = lines.remove(0);
    let eddy = shared.eddy.clone();
    let ins = match blocking(move || Inserter::open(&eddy, &first)).await {
        Ok(Ok(i)) => i,
        Ok(Err(e)) | Err(e) => return error_response(&e, &[]),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut ins = ins;
        let mut first_ack = true;
        if form == Form::Json {
            let _ = tx.send(Bytes::from_static(b"[")).await;
        }
        loop {
            if !lines.is_empty() {
                let batch = std::mem::take(&mut lines);
                let ran = blocking(move || {
                    let mut acks = Vec::new();
                    for l in &batch {
                        let seq = ins.seq;
                        match ins.row(l) {
                            Ok(()) => acks.push(ok_ack(seq)),
                            Err(e) => {
                                acks.push(error_ack(seq, &e));
                                return (ins, acks, true);
                            }
                        }
                    }
                    (ins, acks, false)
                })
                .await;
                let Ok((back, acks, failed)) = ran else { break };
                ins = back;
                let mut out = String::new();
                for a in acks {
                    ack_text(form, &mut first_ack, &a, &mut out);
                }
                if tx.send(out.into()).await.is_err() || failed {
                    break;
                }
            }
            if !open {
                break;
            }
            let read = fill(&mut body, &mut buf).await;
            match read {
                Ok(true) => {}
                Ok(false) => {
                    open = false;
                    buf.extend_from_slice(b"\n");
                }
                Err(e) => {
                    let mut out = String::new();
                    ack_text(form, &mut first_ack, &error_ack(ins.seq, &e), &mut out);
                    let _ = tx.send(out.into()).await;
                    break;
                }
            }
            match take_lines(&mut buf) {
                Ok(l) => lines = l,
                Err(e) => {
                    let mut out = String::new();
                    ack_text(form, &mut first_ack, &error_ack(ins.seq, &e), &mut out);
                    let _ = tx.send(out.into()).await;
                    break;
                }
            }
        }
        if form == Form::Json {
            let _ = tx.send(Bytes::from_static(b"]")).await;
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", form.content_type())
        .body(StreamBody::new(body).boxed_unsync())
        .expect("valid response")
}

fn insert_sql(def: &SourceDef, row: &serde_json::Map<String, Value>) -> Result<String, String> {
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    for (k, v) in row {
        let (name, dt) = if k.eq_ignore_ascii_case("ROWTIME") {
            ("ROWTIME".to_string(), DataType::Int64)
        } else {
            let c = def
                .columns
                .iter()
                .find(|c| c.name == *k)
                .or_else(|| def.columns.iter().find(|c| c.name.eq_ignore_ascii_case(k)))
                .ok_or_else(|| format!("unknown column \"{k}\" of {}", def.name))?;
            (c.name.clone(), c.data_type.clone())
        };
        cols.push(format!("`{}`", name.replace('`', "``")));
        vals.push(literal(v, &dt)?);
    }
    Ok(format!("INSERT INTO `{}` ({}) VALUES ({});", def.name.replace('`', "``"), cols.join(", "), vals.join(", ")))
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A JSON value as a SQL literal of type `dt`.
fn literal(v: &Value, dt: &DataType) -> Result<String, String> {
    Ok(match (v, dt) {
        (Value::Null, _) => "NULL".into(),
        (Value::Bool(b), _) => if *b { "TRUE" } else { "FALSE" }.into(),
        (Value::Number(n), _) => n.to_string(),
        (Value::String(s), _) => quote(s),
        (Value::Array(items), DataType::List(f)) => {
            let items: Result<Vec<String>, String> = items.iter().map(|i| literal(i, f.data_type())).collect();
            format!("ARRAY[{}]", items?.join(", "))
        }
        (Value::Object(m), DataType::Map(f, _)) => {
            let DataType::Struct(kv) = f.data_type() else { return Err("bad map type".into()) };
            let entries: Result<Vec<String>, String> =
                m.iter().map(|(k, v)| Ok(format!("{} := {}", quote(k), literal(v, kv[1].data_type())?))).collect();
            format!("MAP({})", entries?.join(", "))
        }
        (Value::Object(m), DataType::Struct(fields)) => {
            let mut parts = Vec::new();
            for (k, v) in m {
                let f = fields
                    .iter()
                    .find(|f| f.name() == k)
                    .or_else(|| fields.iter().find(|f| f.name().eq_ignore_ascii_case(k)))
                    .ok_or_else(|| format!("unknown struct field \"{k}\""))?;
                parts.push(format!("`{}` := {}", f.name().replace('`', "``"), literal(v, f.data_type())?));
            }
            format!("STRUCT({})", parts.join(", "))
        }
        (v, dt) => return Err(format!("{v} is not a value of type {}", planner::types::type_name(dt))),
    })
}
