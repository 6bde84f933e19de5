//! Queries over HTTP: `/query` (ksqlDB's v1 format) and `/query-stream` in its two forms, and
//! `/close-query`.
//!
//! - Delimited (`application/vnd.ksqlapi.delimited.v1`, the default): a header object
//!   (`queryId`, `columnNames`, `columnTypes`), then one JSON array per row, each on its own line.
//! - JSON (`Accept: application/json`): the same header and rows as one JSON array.
//!
//! Push queries stream until LIMIT, until `/close-query` names them, or until the client goes
//! away: over HTTP/2 a stream reset (or a closed connection) drops the response body, which ends
//! that query and no other; over HTTP/1.1 an idle stream gets a blank line every second, which is
//! how a closed connection is noticed (JSON whitespace in the JSON form).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use datafusion::arrow::record_batch::RecordBatch;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use parking_lot::Mutex;
use planner::{Output, PushQuery, RowSet};
use tokio::sync::{mpsc, Notify};

use super::error::ServerError;
use super::exec::{self, blocking};
use super::http::{error_response, respond, Body};
use super::json::{self, StatementRequest};
use super::metrics::GaugeGuard;
use super::Shared;

/// How often an idle HTTP/1.1 push query writes a blank line.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// ksqlDB's content type of the delimited form.
pub const DELIMITED: &str = "application/vnd.ksqlapi.delimited.v1";

/// The shape of a query's (or an insert's) response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `/query`: ksqlDB's v1 array of `{"header":..}`, `{"row":..}`, `{"finalMessage":..}`.
    V1,
    /// One JSON value per line.
    Delimited,
    /// One JSON array.
    Json,
}

impl Form {
    /// The form an endpoint answers in, given the request's `Accept` header.
    pub fn of(path: &str, headers: &HeaderMap) -> Form {
        if path == "/query" {
            return Form::V1;
        }
        let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
        let json = accept.split(',').any(|t| t.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
        if json && !accept.contains(DELIMITED) {
            Form::Json
        } else {
            Form::Delimited
        }
    }

    /// The response's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Form::Delimited => DELIMITED,
            Form::V1 | Form::Json => "application/json",
        }
    }
}

/// Push queries streaming now, by query id, for `/close-query`.
#[derive(Default)]
pub struct Running {
    queries: Mutex<HashMap<String, Arc<Notify>>>,
}

/// Removes a push query from [`Running`] when its stream ends.
struct Registered<'a> {
    running: &'a Running,
    id: String,
    signal: Arc<Notify>,
}

impl<'a> Registered<'a> {
    fn new(running: &'a Running, id: &str) -> Self {
        let signal = Arc::new(Notify::new());
        running.queries.lock().insert(id.to_string(), signal.clone());
        Registered { running, id: id.to_string(), signal }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.running.queries.lock().remove(&self.id);
    }
}

/// POST /close-query: `{"queryId": "..."}` ends that push query's stream.
pub fn close(shared: &Shared, body: &[u8]) -> Response<Body> {
    #[derive(serde::Deserialize)]
    struct Close {
        #[serde(rename = "queryId")]
        query_id: String,
    }
    let c: Close = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => return error_response(&ServerError::BadRequest(format!("invalid request body: {e}")), &[]),
    };
    let signal = shared.running.queries.lock().get(&c.query_id).cloned();
    match signal {
        Some(n) => {
            // A stored permit: a close that races the start of the stream still counts.
            n.notify_one();
            respond(200, "application/json", "")
        }
        None => error_response(&ServerError::BadRequest(format!("no push query with id \"{}\" is running", c.query_id)), &[]),
    }
}

/// POST /query and /query-stream: runs one query and answers in `form`.
pub async fn run(shared: &Arc<Shared>, r: StatementRequest, form: Form, http2: bool) -> Response<Body> {
    let eddy = shared.eddy.clone();
    let ran = blocking(move || -> Result<Output, ServerError> {
        let mut s = exec::session(&eddy, &r.properties, &r.variables)?;
        let mut statements = exec::parse(&s, &r.ksql)?;
        if statements.len() != 1 || !exec::is_query(&statements[0]) {
            return Err(ServerError::BadRequest("/query takes exactly one SELECT or PRINT statement; use /ksql for the others".into()));
        }
        let st = statements.pop().expect("one statement");
        s.execute(&st).map_err(|e| ServerError::statement(&st.text, &e))
    })
    .await;
    let output = match ran {
        Ok(Ok(o)) => o,
        Ok(Err(e)) | Err(e) => return error_response(&e, &[]),
    };
    match output {
        Output::Message(m) => respond(200, "application/json", format!("[{}]", json::status_entity("", &m))),
        Output::Rows(rows) => {
            shared.stats.pull_queries.fetch_add(1, Ordering::Relaxed);
            let id = format!("pull_{}", shared.ids.fetch_add(1, Ordering::Relaxed));
            respond(200, form.content_type(), pull_body(&id, &rows, form))
        }
        Output::Stream(pq) => {
            shared.stats.push_queries.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = mpsc::channel::<Bytes>(64);
            let s = shared.clone();
            tokio::spawn(async move {
                let _active = GaugeGuard::new(&s.stats.push_active);
                let registered = Registered::new(&s.running, &pq.id);
                stream_rows(pq, tx, form, !http2, &registered.signal).await;
            });
            let body = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", form.content_type())
                .body(StreamBody::new(body).boxed_unsync())
                .expect("valid response")
        }
    }
}

fn pull_body(id: &str, rows: &RowSet, form: Form) -> String {
    let mut out = String::new();
    match form {
        Form::V1 => {
            out.push('[');
            out.push_str(&json::v1_header(id, &rows.schema));
            for b in &rows.batches {
                for r in 0..b.num_rows() {
                    out.push_str(",\n");
                    out.push_str(&json::v1_row(b, r));
                }
            }
            out.push_str("]\n");
        }
        Form::Delimited => {
            out.push_str(&json::stream_header(id, &rows.schema, false));
            out.push('\n');
            for b in &rows.batches {
                rows_text(b, form, &mut out);
            }
        }
        Form::Json => {
            out.push('[');
            out.push_str(&json::stream_header(id, &rows.schema, false));
            for b in &rows.batches {
                rows_text(b, form, &mut out);
            }
            out.push(']');
        }
    }
    out
}

/// The rows of `b` as they follow the header in `form`.
fn rows_text(b: &RecordBatch, form: Form, out: &mut String) {
    for r in 0..b.num_rows() {
        match form {
            Form::V1 => {
                out.push_str(",\n");
                out.push_str(&json::v1_row(b, r));
            }
            Form::Delimited => {
                json::row_array(b, r, out);
                out.push('\n');
            }
            Form::Json => {
                out.push(',');
                json::row_array(b, r, out);
            }
        }
    }
}

/// Streams a push query's rows into `tx` until it ends, `close` fires, or the client goes away.
async fn stream_rows(mut pq: PushQuery, tx: mpsc::Sender<Bytes>, form: Form, heartbeat: bool, close: &Notify) {
    let header = match form {
        Form::V1 => format!("[{}", json::v1_header(&pq.id, &pq.schema)),
        Form::Delimited => format!("{}\n", json::stream_header(&pq.id, &pq.schema, true)),
        Form::Json => format!("[{}", json::stream_header(&pq.id, &pq.schema, true)),
    };
    if tx.send(header.into()).await.is_err() {
        pq.finish();
        return;
    }
    let ended = loop {
        tokio::select! {
            b = pq.next() => match b {
                Some(b) => {
                    let mut out = String::new();
                    rows_text(&b, form, &mut out);
                    if tx.send(out.into()).await.is_err() {
                        break false;
                    }
                }
                None => break true,
            },
            _ = close.notified() => break true,
            _ = tx.closed() => break false,
            _ = tokio::time::sleep(HEARTBEAT), if heartbeat => {
                if tx.send(Bytes::from_static(b"\n")).await.is_err() {
                    break false;
                }
            }
        }
    };
    let done = pq.is_done();
    pq.finish();
    if ended {
        let end = match form {
            Form::V1 => format!(",\n{{\"finalMessage\":\"{}\"}}]\n", if done { "Limit Reached" } else { "Query Completed" }),
            Form::Json => "]".to_string(),
            Form::Delimited => return,
        };
        let _ = tx.send(end.into()).await;
    }
}
