//! The HTTP API (HTTP/1.1, JSON), close to ksqlDB's REST API; see docs/http-api.md.
//!
//! - `POST /ksql`: statements other than queries; a JSON array with one entity per statement.
//! - `POST /query`: one query in ksqlDB's v1 format (a JSON array, one element per line).
//! - `POST /query-stream`: one query as JSON lines: a header object, then one array per row.
//!   Push queries stream until LIMIT or until the client disconnects; idle streams get a blank
//!   line every second, which also notices clients that went away.
//! - `POST /inserts`: JSON lines, `{"target":"S"}` then one object per row; acks per row.
//! - `GET /info`, `GET /healthcheck`, `GET /metrics`.
//!
//! Every failure is a JSON error body with an HTTP status; nothing a client sends can panic the
//! server (statement workers that panic become 503 errors).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use datafusion::arrow::record_batch::RecordBatch;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use planner::{Output, PushQuery, RowSet};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::error::ServerError;
use super::exec::{self, blocking};
use super::json::{self, StatementRequest};
use super::metrics::{self, GaugeGuard};
use super::Shared;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest request body for /ksql and /query.
pub const MAX_BODY: usize = 1 << 20;
/// Largest request body for /inserts.
pub const MAX_INSERT_BODY: usize = 16 << 20;
/// How often an idle push query writes a blank line.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Accepts connections until `stop` turns true.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed_unsync()
}

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(full(body))
        .expect("valid response")
}

fn json_response(status: u16, body: String) -> Response<Body> {
    respond(status, "application/json", body)
}

fn error_response(e: &ServerError, entities: &[String]) -> Response<Body> {
    json_response(e.status(), json::error_body(e, entities))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    shared.stats.http_requests.fetch_add(1, Ordering::Relaxed);
    let resp = route(&shared, req).await;
    if resp.status().as_u16() >= 400 {
        shared.stats.http_errors.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    if path == "/healthcheck" && method == Method::GET {
        return json_response(200, r#"{"isHealthy":true,"details":{"metastore":{"isHealthy":true},"log":{"isHealthy":true}}}"#.into());
    }
    if let Some(creds) = &shared.creds {
        let ok = req.headers().get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| creds.check_basic(v));
        if !ok {
            let mut r = json_response(401, json::plain_error(401, "authentication required: send HTTP basic credentials"));
            r.headers_mut().insert("www-authenticate", hyper::header::HeaderValue::from_static("Basic realm=\"eddy\""));
            return r;
        }
    }
    if super::registry::handles(&path) {
        return super::registry::serve(shared, req, &path).await;
    }
    if super::topics::handles(&path) {
        return super::topics::serve(shared, req, &path).await;
    }
    let expected = match path.as_str() {
        "/info" | "/metrics" => Method::GET,
        "/ksql" | "/query" | "/query-stream" | "/inserts" | "/inserts-stream" => Method::POST,
        _ => return json_response(404, json::plain_error(404, &format!("no endpoint {path}"))),
    };
    if method != expected {
        return json_response(405, json::plain_error(405, &format!("{path} takes {expected} requests, not {method}")));
    }
    match path.as_str() {
        "/info" => json_response(
            200,
            format!(
                r#"{{"KsqlServerInfo":{{"version":"{}","kafkaClusterId":"embedded","ksqlServiceId":"eddy","serverStatus":"RUNNING"}}}}"#,
                env!("CARGO_PKG_VERSION")
            ),
        ),
        "/metrics" => {
            let (eddy, s) = (shared.eddy.clone(), shared.clone());
            match blocking(move || metrics::render(&eddy, &s.stats)).await {
                Ok(text) => respond(200, "text/plain; version=0.0.4", text),
                Err(e) => error_response(&e, &[]),
            }
        }
        "/ksql" => match read_request(req, MAX_BODY).await {
            Ok(r) => ksql(shared, r).await,
            Err(e) => error_response(&e, &[]),
        },
        "/query" | "/query-stream" => match read_request(req, MAX_BODY).await {
            Ok(r) => query(shared, r, path == "/query").await,
            Err(e) => error_response(&e, &[]),
        },
        _ => match read_body(req, MAX_INSERT_BODY).await {
            Ok(b) => inserts(shared, b).await,
            Err(e) => error_response(&e, &[]),
        },
    }
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ServerError> {
    // A body over the limit is still read (and dropped) up to DRAIN_FACTOR times the limit, so
    // that a client still sending gets the 413 instead of a broken pipe; past that the
    // connection is given up.
    const DRAIN_FACTOR: usize = 8;
    let mut body = req.into_body();
    let mut buf = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ServerError::BadRequest(format!("cannot read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= limit {
                buf.extend_from_slice(&data);
            } else if total > limit.saturating_mul(DRAIN_FACTOR) {
                break;
            }
        }
    }
    if total > limit {
        return Err(ServerError::TooLarge { what: "request body", limit });
    }
    Ok(buf.freeze())
}

async fn read_request(req: Request<Incoming>, limit: usize) -> Result<StatementRequest, ServerError> {
    let body = read_body(req, limit).await?;
    serde_json::from_slice(&body).map_err(|e| ServerError::BadRequest(format!("invalid request body: {e}")))
}

/// POST /ksql: runs the statements in order; stops at the first error.
async fn ksql(shared: &Arc<Shared>, r: StatementRequest) -> Response<Body> {
    let eddy = shared.eddy.clone();
    let ran = blocking(move || -> Result<Vec<String>, (ServerError, Vec<String>)> {
        let mut s = exec::session(&eddy, &r.properties, &r.variables).map_err(|e| (e, Vec::new()))?;
        let statements = exec::parse(&s, &r.ksql).map_err(|e| (e, Vec::new()))?;
        let mut entities = Vec::new();
        for st in statements {
            if exec::is_query(&st) {
                let e = ServerError::Statement {
                    statement: st.text.clone(),
                    message: "queries (SELECT, PRINT) go to the /query or /query-stream endpoint".into(),
                };
                return Err((e, entities));
            }
            match s.execute(&st) {
                Ok(Output::Message(m)) => entities.push(json::status_entity(&st.text, &m)),
                Ok(Output::Rows(rows)) => entities.push(json::rows_entity(&st.text, &rows)),
                Ok(Output::Stream(mut pq)) => {
                    pq.finish();
                    let e = ServerError::Statement { statement: st.text.clone(), message: "this statement streams rows: use /query".into() };
                    return Err((e, entities));
                }
                Err(e) => return Err((ServerError::statement(&st.text, &e), entities)),
            }
        }
        Ok(entities)
    })
    .await;
    match ran {
        Ok(Ok(entities)) => json_response(200, format!("[{}]", entities.join(","))),
        Ok(Err((e, entities))) => error_response(&e, &entities),
        Err(e) => error_response(&e, &[]),
    }
}

/// POST /query (`v1`: ksqlDB's JSON array) and /query-stream (JSON lines).
async fn query(shared: &Arc<Shared>, r: StatementRequest, v1: bool) -> Response<Body> {
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
    let content_type = if v1 { "application/json" } else { "application/vnd.ksqlapi.delimited.v1" };
    match output {
        Output::Message(m) => json_response(200, format!("[{}]", json::status_entity("", &m))),
        Output::Rows(rows) => {
            shared.stats.pull_queries.fetch_add(1, Ordering::Relaxed);
            let id = format!("pull_{}", shared.ids.fetch_add(1, Ordering::Relaxed));
            respond(200, content_type, pull_body(&id, &rows, v1))
        }
        Output::Stream(pq) => {
            shared.stats.push_queries.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = mpsc::channel::<Bytes>(64);
            let s = shared.clone();
            tokio::spawn(async move {
                let _active = GaugeGuard::new(&s.stats.push_active);
                stream_rows(pq, tx, v1).await;
            });
            let body = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", content_type)
                .body(StreamBody::new(body).boxed_unsync())
                .expect("valid response")
        }
    }
}

fn pull_body(id: &str, rows: &RowSet, v1: bool) -> String {
    let mut out = String::new();
    if v1 {
        out.push('[');
        out.push_str(&json::v1_header(id, &rows.schema));
        for b in &rows.batches {
            for r in 0..b.num_rows() {
                out.push_str(",\n");
                out.push_str(&json::v1_row(b, r));
            }
        }
        out.push_str("]\n");
    } else {
        out.push_str(&json::stream_header(id, &rows.schema, false));
        out.push('\n');
        for b in &rows.batches {
            push_lines(b, &mut out);
        }
    }
    out
}

fn push_lines(b: &RecordBatch, out: &mut String) {
    for r in 0..b.num_rows() {
        json::row_array(b, r, out);
        out.push('\n');
    }
}

/// Streams a push query's rows into `tx` until it ends or the client goes away.
async fn stream_rows(mut pq: PushQuery, tx: mpsc::Sender<Bytes>, v1: bool) {
    let header = if v1 {
        format!("[{}", json::v1_header(&pq.id, &pq.schema))
    } else {
        format!("{}\n", json::stream_header(&pq.id, &pq.schema, true))
    };
    if tx.send(header.into()).await.is_err() {
        return;
    }
    let ended = loop {
        tokio::select! {
            b = pq.next() => match b {
                Some(b) => {
                    let mut out = String::new();
                    if v1 {
                        for r in 0..b.num_rows() {
                            out.push_str(",\n");
                            out.push_str(&json::v1_row(&b, r));
                        }
                    } else {
                        push_lines(&b, &mut out);
                    }
                    if tx.send(out.into()).await.is_err() {
                        break false;
                    }
                }
                None => break true,
            },
            _ = tx.closed() => break false,
            _ = tokio::time::sleep(HEARTBEAT) => {
                if tx.send(Bytes::from_static(b"\n")).await.is_err() {
                    break false;
                }
            }
        }
    };
    let done = pq.is_done();
    pq.finish();
    if ended && v1 {
        let msg = if done { "Limit Reached" } else { "Query Completed" };
        let _ = tx.send(format!(",\n{{\"finalMessage\":\"{msg}\"}}]\n").into()).await;
    }
}

/// POST /inserts: the first JSON line names the target (`{"target":"S"}`), each further line is
/// a row as an object of column values. Answers one JSON line per row: `{"status":"ok","seq":N}`
/// or, at the first failing row, an error line (and status 400).
async fn inserts(shared: &Arc<Shared>, body: Bytes) -> Response<Body> {
    let eddy = shared.eddy.clone();
    let ran = blocking(move || super::inserts::run(&eddy, &body)).await;
    match ran {
        Ok((acks, None)) => respond(200, "application/json", acks),
        Ok((acks, Some(e))) => respond(e.status(), "application/json", acks + &json::error_body(&e, &[]) + "\n"),
        Err(e) => error_response(&e, &[]),
    }
}
