//! The HTTP API, close to ksqlDB's REST API; see docs/http-api.md. HTTP/1.1 and HTTP/2 over
//! cleartext share the port: HTTP/2 by prior knowledge (the connection preface is detected) or by
//! upgrade from HTTP/1.1 (`Upgrade: h2c`, [`super::h2c`]), as ksqlDB's clients speak it.
//!
//! - `POST /ksql`: statements other than queries; a JSON array with one entity per statement.
//! - `POST /query`: one query in ksqlDB's v1 format (a JSON array, one element per line).
//! - `POST /query-stream`: one query; ksqlDB's delimited form (a header object, then one array
//!   per row, each on its own line) or, with `Accept: application/json`, one JSON array
//!   ([`super::query`]). `POST /close-query` ends a push query by id.
//! - `POST /inserts-stream` (and `/inserts`): JSON lines, `{"target":"S"}` then one object per
//!   row; acks per row as each is written ([`super::inserts`]).
//! - `GET /info`, `GET /healthcheck`, `GET /metrics`.
//! - `GET /` (the console) and `GET /api/...` (what it reads, [`super::api`]).
//!
//! Every failure is a JSON error body (`@type`, `error_code`, `message`) with an HTTP status;
//! nothing a client sends can panic the server (statement workers that panic become 503 errors).
//! Each HTTP/2 stream is its own request: a stream reset ends that stream's query only.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::error::ServerError;
use super::exec::blocking;
use super::json::{self, StatementRequest};
use super::metrics;
use super::query::{self, Form};
use super::{h2c, Shared};

/// A response body: whole or streamed.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What a request body must be: hyper's, or one already read (an upgraded request's).
pub trait ReqBody: hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static {}
impl<B: hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static> ReqBody for B {}

/// Largest request body for /ksql and /query.
pub const MAX_BODY: usize = 1 << 20;
/// Largest request body for /inserts, and longest line of /inserts-stream.
pub const MAX_INSERT_BODY: usize = 16 << 20;

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
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().max_buf_size(64 * 1024);
            let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), service(shared)).await;
        });
    }
}

/// The API as a hyper service (its future boxed: an upgraded connection serves it again).
#[derive(Clone)]
struct Api(Arc<Shared>);

impl hyper::service::Service<Request<Incoming>> for Api {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let shared = self.0.clone();
        Box::pin(async move { Ok(handle(shared, req).await) })
    }
}

fn service(shared: Arc<Shared>) -> Api {
    Api(shared)
}

/// A whole response body.
pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed_unsync()
}

/// A whole response.
pub fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(full(body))
        .expect("valid response")
}

fn json_response(status: u16, body: String) -> Response<Body> {
    respond(status, "application/json", body)
}

/// The error as ksqlDB's clients parse it.
pub fn error_response(e: &ServerError, entities: &[String]) -> Response<Body> {
    json_response(e.status(), json::error_body(e, entities))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    shared.stats.http_requests.fetch_add(1, Ordering::Relaxed);
    let resp = if req.version() == Version::HTTP_11 && h2c::wants_upgrade(req.headers()) {
        upgrade(&shared, req).await
    } else {
        route(&shared, req).await
    };
    if resp.status().as_u16() >= 400 {
        shared.stats.http_errors.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

/// `Upgrade: h2c`: answers 101 and serves the connection as HTTP/2, the request as stream 1.
async fn upgrade(shared: &Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let body = match read_body(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return error_response(&e, &[]),
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Some(frames) = h2c::request_frames(parts.method.as_str(), path, &parts.headers, &body) else {
        // Too large to replay as stream 1: answer over HTTP/1.1, as if no upgrade was asked.
        return route(shared, Request::from_parts(parts, Full::new(body))).await;
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let io = TokioIo::new(h2c::Injected::new(TokioIo::new(upgraded), frames));
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(io, service(shared)).await;
    });
    let mut r = Response::builder().status(101);
    for (k, v) in h2c::switching_headers() {
        r = r.header(k, v);
    }
    r.body(Empty::new().boxed_unsync()).expect("valid response")
}

async fn route<B: ReqBody>(shared: &Arc<Shared>, req: Request<B>) -> Response<Body> {
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
    if super::api::handles(&path) {
        return super::api::serve(shared, req, &path).await;
    }
    if super::registry::handles(&path) {
        return super::registry::serve(shared, req, &path).await;
    }
    if super::topics::handles(&path) {
        return super::topics::serve(shared, req, &path).await;
    }
    let expected = match path.as_str() {
        "/info" | "/metrics" => Method::GET,
        "/ksql" | "/query" | "/query-stream" | "/close-query" | "/inserts" | "/inserts-stream" => Method::POST,
        _ => return json_response(404, json::plain_error(404, &format!("no endpoint {path}"))),
    };
    if method != expected {
        return json_response(405, json::plain_error(405, &format!("{path} takes {expected} requests, not {method}")));
    }
    let form = Form::of(&path, req.headers());
    let http2 = req.version() == Version::HTTP_2;
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
            Ok(r) => query::run(shared, r, form, http2).await,
            Err(e) => error_response(&e, &[]),
        },
        "/close-query" => match read_body(req.into_body(), MAX_BODY).await {
            Ok(b) => query::close(shared, &b),
            Err(e) => error_response(&e, &[]),
        },
        "/inserts-stream" => super::inserts::stream(shared, req.into_body(), form).await,
        _ => match read_body(req.into_body(), MAX_INSERT_BODY).await {
            Ok(b) => super::inserts::whole(shared, b).await,
            Err(e) => error_response(&e, &[]),
        },
    }
}

/// Reads a whole request body of at most `limit` bytes.
pub async fn read_body<B: ReqBody>(mut body: B, limit: usize) -> Result<Bytes, ServerError> {
    // A body over the limit is still read (and dropped) up to DRAIN_FACTOR times the limit, so
    // that a client still sending gets the 413 instead of a broken pipe; past that the
    // connection is given up.
    const DRAIN_FACTOR: usize = 8;
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

async fn read_request<B: ReqBody>(req: Request<B>, limit: usize) -> Result<StatementRequest, ServerError> {
    let body = read_body(req.into_body(), limit).await?;
    StatementRequest::parse(&body)
}

/// POST /ksql: runs the statements in order; stops at the first error.
async fn ksql(shared: &Arc<Shared>, r: StatementRequest) -> Response<Body> {
    let eddy = shared.eddy.clone();
    let ran = blocking(move || -> Result<Vec<String>, (ServerError, Vec<String>)> {
        let mut s = super::exec::session(&eddy, &r.properties, &r.variables).map_err(|e| (e, Vec::new()))?;
        let statements = super::exec::parse(&s, &r.ksql).map_err(|e| (e, Vec::new()))?;
        let mut entities = Vec::new();
        for st in statements {
            if super::exec::is_query(&st) {
                let e = ServerError::Statement {
                    statement: st.text.clone(),
                    message: "queries (SELECT, PRINT) go to the /query or /query-stream endpoint".into(),
                };
                return Err((e, entities));
            }
            match s.execute(&st) {
                Ok(planner::Output::Message(m)) => entities.push(json::status_entity(&st.text, &m)),
                Ok(planner::Output::Rows(rows)) => entities.push(json::rows_entity(&st.text, &rows)),
                Ok(planner::Output::Stream(mut pq)) => {
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
