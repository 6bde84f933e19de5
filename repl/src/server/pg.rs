//! The PostgreSQL wire protocol (`pgwire`): `psql`, drivers and BI tools run ksqlDB statements.
//!
//! - One [`Session`] per connection (SET sticks until the connection ends).
//! - Simple protocol: every statement of a query string runs in order; status messages
//!   ("Stream created") come as notices; result rows as typed rows ([`super::pgtypes`]).
//!   Push queries send each batch of rows as it arrives, until LIMIT or a cancel request
//!   (psql's Ctrl-C), which ends them with SQLSTATE 57014.
//! - Extended protocol (Parse/Bind/Describe/Execute): one statement per Parse, with `$n`
//!   parameters in text or binary format ([`super::pgparams`]). A row-returning statement has no
//!   schema before it runs, so Describe runs it and keeps the result for the Execute that follows.
//! - Queries on `pg_catalog` and `information_schema` are answered from Eddy's catalog
//!   ([`super::pgsql`]), so drivers' and tools' schema browsers list streams and tables.
//! - Password authentication (MD5) whenever the server has credentials.
//! - PostgreSQL housekeeping (BEGIN, COMMIT, SET name = value, SHOW transaction_isolation,
//!   SELECT 1, version()) is answered without the engine ([`super::pgcompat`]).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Sink, SinkExt};
use parking_lot::Mutex;
use pgwire::api::auth::md5pass::{hash_md5_password, Md5PasswordAuthStartupHandler};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{send_ready_for_query, ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeResponse, DescribeStatementResponse, FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, PgWireConnectionState, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::data::{DataRow, RowDescription};
use pgwire::messages::response::{EmptyQueryResponse, ErrorResponse, NoticeResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use planner::ast::Statement;
use planner::parser::ParsedStatement;
use planner::{Output, PushQuery, RowSet, Session};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use super::exec::blocking;
use super::metrics::GaugeGuard;
use super::pgcompat::{recognize, Compat};
use super::pgparams::{self, Placeholders};
use super::pgtypes::{pg_type, value};
use super::Shared;

/// Accepts connections until `stop` turns true.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let handlers = Arc::new(Handlers::new(shared.clone()));
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let (h, s) = (handlers.clone(), shared.clone());
        tokio::spawn(async move {
            s.stats.pg_connections.fetch_add(1, Ordering::Relaxed);
            let _open = GaugeGuard::new(&s.stats.pg_active);
            let _ = pgwire::tokio::process_socket(stream, None, h).await;
        });
    }
}

/// Push queries that a cancel request may stop: (pid, secret key) -> signal.
#[derive(Default)]
struct Cancels {
    running: Mutex<HashMap<(i32, Bytes), Arc<Notify>>>,
    manager: Arc<ConnectionManager>,
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, req: CancelRequest) {
        let key = (req.pid, req.secret_key.to_bytes());
        if let Some(n) = self.running.lock().get(&key) {
            // A stored permit: a cancel that races the start of the stream still counts.
            n.notify_one();
        }
        // Statements still running (not streaming yet) are cancelled by pgwire.
        self.manager.cancel(req.pid, &req.secret_key).await;
    }
}

/// Registers a push query for cancel requests until dropped.
struct CancelGuard {
    cancels: Arc<Cancels>,
    key: (i32, Bytes),
    signal: Arc<Notify>,
}

impl CancelGuard {
    fn new<C: ClientInfo>(cancels: &Arc<Cancels>, client: &C) -> Self {
        let (pid, secret) = client.pid_and_secret_key();
        let key = (pid, secret.to_bytes());
        let signal = Arc::new(Notify::new());
        cancels.running.lock().insert(key.clone(), signal.clone());
        CancelGuard { cancels: cancels.clone(), key, signal }
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.cancels.running.lock().remove(&self.key);
    }
}

/// Passwords for MD5 authentication.
#[derive(Debug)]
struct Passwords(super::auth::Credentials);

#[async_trait]
impl AuthSource for Passwords {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        let salt: [u8; 4] = rand_salt();
        // An unknown user gets a random password, so the answer is the same "wrong password".
        let pass = self.0.password(user).map(str::to_string).unwrap_or_else(|| format!("{:x}", rand_u64()));
        Ok(Password::new(Some(salt.to_vec()), hash_md5_password(user, &pass, &salt).into_bytes()))
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

fn rand_salt() -> [u8; 4] {
    let v = rand_u64();
    [(v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8, (v >> 32) as u8]
}

/// No authentication (loopback without credentials).
struct Open(Arc<ConnectionManager>);

impl NoopStartupHandler for Open {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.0.clone())
    }
}

enum Startup {
    Open(Open),
    Md5(Md5PasswordAuthStartupHandler<Passwords, DefaultServerParameterProvider>),
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Open(h) => h.on_startup(client, message).await,
            Startup::Md5(h) => h.on_startup(client, message).await,
        }
    }
}

/// Everything a connection needs.
struct Handlers {
    query: Arc<Queries>,
    startup: Arc<Startup>,
    cancels: Arc<Cancels>,
}

impl Handlers {
    fn new(shared: Arc<Shared>) -> Self {
        let manager = Arc::new(ConnectionManager::new());
        let cancels = Arc::new(Cancels { running: Default::default(), manager: manager.clone() });
        let startup = match &shared.creds {
            Some(c) => Startup::Md5(
                Md5PasswordAuthStartupHandler::new(Arc::new(Passwords(c.clone())), Arc::new(DefaultServerParameterProvider::default()))
                    .with_connection_manager(manager.clone()),
            ),
            None => Startup::Open(Open(manager.clone())),
        };
        Handlers { query: Arc::new(Queries { shared, cancels: cancels.clone() }), startup: Arc::new(startup), cancels }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.query.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.query.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancels.clone()
    }
}

/// The connection's session, and (extended protocol) a result run early by Describe.
struct Conn {
    session: Mutex<Option<Session>>,
    described: Mutex<Option<(String, Output)>>,
}

struct Queries {
    shared: Arc<Shared>,
    cancels: Arc<Cancels>,
}

fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
}

fn plan_error(e: &planner::PlanError) -> PgWireError {
    let code = match e {
        planner::PlanError::Parse(_) => "42601",
        planner::PlanError::UnknownObject { .. } => "42P01",
        planner::PlanError::AlreadyExists { .. } => "42P07",
        planner::PlanError::Unsupported { .. } => "0A000",
        _ => "XX000",
    };
    user_error(code, engine::error_chain(e))
}

fn canceled() -> PgWireError {
    user_error("57014", "canceling statement due to user request".into())
}

/// Result columns; `format` gives each column's wire format.
fn fields(schema: &datafusion::arrow::datatypes::SchemaRef, format: Option<&Format>) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let fmt = format.map(|x| x.format_for(i)).unwrap_or(FieldFormat::Text);
            FieldInfo::new(f.name().to_lowercase(), None, None, pg_type(f.data_type()), fmt)
        })
        .collect()
}

fn encode(batch: &datafusion::arrow::record_batch::RecordBatch, fields: &Arc<Vec<FieldInfo>>) -> PgWireResult<Vec<DataRow>> {
    let mut enc = DataRowEncoder::new(fields.clone());
    let mut rows = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        for c in batch.columns() {
            enc.encode_field(&value(c, r))?;
        }
        rows.push(enc.take_row());
    }
    Ok(rows)
}

/// The command tag of a statement that returned no rows.
fn tag(st: &Statement) -> Tag {
    match st {
        Statement::CreateSource(_) | Statement::CreateAsSelect(_) | Statement::CreateType { .. } => Tag::new("CREATE"),
        Statement::InsertValues(_) => Tag::new("INSERT").with_oid(0).with_rows(1),
        Statement::InsertSelect { .. } => Tag::new("INSERT"),
        Statement::Drop { .. } | Statement::DropType { .. } => Tag::new("DROP"),
        Statement::Set { .. } | Statement::Define { .. } => Tag::new("SET"),
        Statement::Unset(_) | Statement::Undefine(_) => Tag::new("RESET"),
        Statement::Terminate(_) => Tag::new("TERMINATE"),
        _ => Tag::new("OK"),
    }
}

/// True for statements without side effects, which Describe may run early.
fn read_only(st: &Statement) -> bool {
    matches!(
        st,
        Statement::Query(_)
            | Statement::Print { .. }
            | Statement::Show { .. }
            | Statement::Describe { .. }
            | Statement::DescribeAll { .. }
            | Statement::DescribeFunction(_)
            | Statement::Explain(_)
            | Statement::ExplainQuery(_)
    )
}

impl Queries {
    fn conn<C: ClientInfo>(&self, client: &C) -> Arc<Conn> {
        client.session_extensions().get_or_insert_with(|| Conn { session: Mutex::new(None), described: Mutex::new(None) })
    }

    /// Runs one statement on the connection's session, off the async workers.
    async fn execute(&self, conn: &Arc<Conn>, st: ParsedStatement) -> PgWireResult<Output> {
        let session = conn.session.lock().take().unwrap_or_else(|| self.shared.eddy.session());
        let (session, out) = blocking(move || {
            let mut session = session;
            let out = session.execute(&st);
            (session, out)
        })
        .await
        .map_err(|e| user_error("XX000", e.to_string()))?;
        *conn.session.lock() = Some(session);
        let out = out.map_err(|e| plan_error(&e))?;
        match &out {
            Output::Rows(_) => self.shared.stats.pull_queries.fetch_add(1, Ordering::Relaxed),
            Output::Stream(_) => self.shared.stats.push_queries.fetch_add(1, Ordering::Relaxed),
            Output::Message(_) => 0,
        };
        Ok(out)
    }

    /// Runs one statement of a simple query and writes its whole response.
    async fn simple_statement<C>(&self, client: &mut C, conn: &Arc<Conn>, st: ParsedStatement) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = st.statement.clone();
        match self.execute(conn, st).await? {
            Output::Message(m) => {
                if !m.is_empty() {
                    let notice = ErrorInfo::new("NOTICE".into(), "00000".into(), m);
                    client.feed(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(notice))).await?;
                }
                client.feed(PgWireBackendMessage::CommandComplete(tag(&statement).into())).await?;
            }
            Output::Rows(rs) => self.send_rows(client, &rs).await?,
            Output::Stream(pq) => self.stream(client, pq).await?,
        }
        Ok(())
    }

    /// Answers a housekeeping statement of a simple query.
    async fn simple_compat<C>(&self, client: &mut C, c: &Compat) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match (c, c.rows()) {
            (Compat::Command(t), _) => client.feed(PgWireBackendMessage::CommandComplete(Tag::new(t).into())).await?,
            (_, Some(rs)) => self.send_rows(client, &rs).await?,
            (_, None) => return Err(user_error("XX000", "cannot build the answer".into())),
        }
        Ok(())
    }

    /// Writes a whole result: row description, rows, command tag.
    async fn send_rows<C>(&self, client: &mut C, rs: &RowSet) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let f = Arc::new(fields(&rs.schema, None));
        client.feed(PgWireBackendMessage::RowDescription(RowDescription::new(f.iter().map(Into::into).collect()))).await?;
        let mut n = 0;
        for b in &rs.batches {
            for row in encode(b, &f)? {
                client.feed(PgWireBackendMessage::DataRow(row)).await?;
                n += 1;
            }
        }
        client.feed(PgWireBackendMessage::CommandComplete(Tag::new("SELECT").with_rows(n).into())).await?;
        Ok(())
    }

    /// Streams a push query, flushing each batch, until it ends or a cancel request comes.
    async fn stream<C>(&self, client: &mut C, mut pq: PushQuery) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = GaugeGuard::new(&self.shared.stats.push_active);
        let cancel = CancelGuard::new(&self.cancels, client);
        let f = Arc::new(fields(&pq.schema, None));
        client.send(PgWireBackendMessage::RowDescription(RowDescription::new(f.iter().map(Into::into).collect()))).await?;
        let mut n = 0;
        let cancelled = loop {
            tokio::select! {
                b = pq.next() => match b {
                    Some(b) => {
                        for row in encode(&b, &f)? {
                            client.feed(PgWireBackendMessage::DataRow(row)).await?;
                            n += 1;
                        }
                        client.flush().await?;
                    }
                    None => break false,
                },
                _ = cancel.signal.notified() => break true,
            }
        };
        pq.finish();
        if cancelled {
            return Err(canceled());
        }
        client.feed(PgWireBackendMessage::CommandComplete(Tag::new("SELECT").with_rows(n).into())).await?;
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let conn = self.conn(client);
        let sql = query.query;
        let result = if sql.len() > super::exec::MAX_STATEMENT {
            Err(user_error("54000", format!("statement text is larger than the limit of {} bytes", super::exec::MAX_STATEMENT)))
        } else {
            match planner::parser::split_statements(&sql) {
                Ok(texts) if texts.iter().all(|t| t.trim().is_empty()) => {
                    client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
                    Ok(())
                }
                Ok(texts) => {
                    let mut r = Ok(());
                    for text in texts.iter().filter(|t| !t.trim().is_empty()) {
                        r = match recognize(text) {
                            Some(c) => self.simple_compat(client, &c).await,
                            None if super::pgsql::is_catalog_query(text, &self.shared.eddy.catalog()) => {
                                match super::pgsql::run(&self.shared.eddy.catalog(), text).await {
                                    Ok(rs) => self.send_rows(client, &rs).await,
                                    Err(e) => Err(e),
                                }
                            }
                            None => match planner::parser::parse(text) {
                                Ok(statements) => {
                                    let mut r = Ok(());
                                    for st in statements {
                                        r = self.simple_statement(client, &conn, st).await;
                                        if r.is_err() {
                                            break;
                                        }
                                    }
                                    r
                                }
                                Err(e) => Err(plan_error(&e)),
                            },
                        };
                        if r.is_err() {
                            break;
                        }
                    }
                    r
                }
                Err(e) => Err(plan_error(&e)),
            }
        };
        let status = match result {
            Ok(()) => TransactionStatus::Idle,
            Err(PgWireError::IoError(e)) => return Err(PgWireError::IoError(e)),
            Err(e) => {
                let info: ErrorInfo = e.into();
                client.feed(PgWireBackendMessage::ErrorResponse(ErrorResponse::from(info))).await?;
                TransactionStatus::Idle
            }
        };
        client.set_state(PgWireConnectionState::ReadyForQuery);
        send_ready_for_query(client, status).await
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        unreachable!("on_query handles simple queries itself")
    }
}

/// A statement of the extended protocol.
pub enum PgStatement {
    /// A ksqlDB statement.
    Eddy(ParsedStatement),
    /// A housekeeping statement, with its text.
    Compat(String, Compat),
    /// A query on the system catalogs.
    Catalog(String),
    /// A statement with `$n` parameters: its text, where they are, and their types.
    Params {
        /// The text.
        sql: String,
        /// Where the parameters are.
        placeholders: Placeholders,
        /// Their types: declared by the client, else inferred.
        types: Vec<Type>,
    },
}

/// What one statement text (without parameters) is.
fn classify(shared: &Shared, sql: &str) -> PgWireResult<Option<PgStatement>> {
    if let Some(c) = recognize(sql) {
        return Ok(Some(PgStatement::Compat(sql.to_string(), c)));
    }
    if super::pgsql::is_catalog_query(sql, &shared.eddy.catalog()) {
        return Ok(Some(PgStatement::Catalog(sql.to_string())));
    }
    let mut statements = planner::parser::parse(sql).map_err(|e| plan_error(&e))?;
    match statements.len() {
        0 => Ok(None),
        1 => Ok(Some(PgStatement::Eddy(statements.pop().expect("one statement")))),
        _ => Err(user_error("42601", "cannot insert multiple commands into a prepared statement".into())),
    }
}

/// The statement a portal runs: parameters written in as literals.
fn bind(shared: &Shared, st: &PgStatement, format: &Format, params: &[Option<Bytes>]) -> PgWireResult<Option<Arc<PgStatement>>> {
    let PgStatement::Params { sql, placeholders, types } = st else { return Err(user_error("XX000", "not a statement with parameters".into())) };
    if params.len() < placeholders.count {
        return Err(user_error(
            "08P01",
            format!("bind message supplies {} parameters, but prepared statement requires {}", params.len(), placeholders.count),
        ));
    }
    let values = (0..placeholders.count)
        .map(|i| pgparams::literal(i + 1, &types[i], format.is_binary(i), params[i].as_deref()))
        .collect::<PgWireResult<Vec<_>>>()?;
    Ok(classify(shared, &pgparams::substitute(sql, placeholders, &values))?.map(Arc::new))
}

/// Placeholder values of the right types, to learn a parameterized query's columns before Bind.
fn sample_values(types: &[Type]) -> Vec<String> {
    types
        .iter()
        .map(|t| match *t {
            Type::INT2 | Type::INT4 | Type::INT8 | Type::OID | Type::NUMERIC => "0".to_string(),
            Type::FLOAT4 | Type::FLOAT8 => "CAST(0 AS DOUBLE)".to_string(),
            Type::BOOL => "FALSE".to_string(),
            _ => "''".to_string(),
        })
        .collect()
}

/// Parses one statement per Parse message.
struct Parser {
    shared: Arc<Shared>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Arc<PgStatement>;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        if sql.len() > super::exec::MAX_STATEMENT {
            return Err(user_error("54000", format!("statement text is larger than the limit of {} bytes", super::exec::MAX_STATEMENT)));
        }
        let placeholders = pgparams::scan(sql);
        if placeholders.count > 0 {
            let inferred = pgparams::infer(sql, &placeholders, &self.shared.eddy.catalog());
            let types = inferred
                .into_iter()
                .enumerate()
                .map(|(i, t)| match types.get(i) {
                    Some(Some(declared)) if *declared != Type::UNKNOWN => declared.clone(),
                    _ => t,
                })
                .collect();
            return Ok(Some(Arc::new(PgStatement::Params { sql: sql.to_string(), placeholders, types })));
        }
        Ok(classify(&self.shared, sql)?.map(Arc::new))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(match stmt.as_ref() {
            PgStatement::Params { types, .. } => types.clone(),
            _ => Vec::new(),
        })
    }

    fn get_result_schema(&self, _stmt: &Self::Statement, _format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(Vec::new())
    }
}

impl Queries {
    /// Runs a read-only statement for Describe and keeps its result for the Execute.
    async fn describe(&self, conn: &Arc<Conn>, id: &str, st: &PgStatement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        let st = match st {
            PgStatement::Eddy(st) => st,
            PgStatement::Compat(_, c) => return Ok(c.rows().map(|rs| fields(&rs.schema, format)).unwrap_or_default()),
            PgStatement::Catalog(sql) => {
                let rs = super::pgsql::run(&self.shared.eddy.catalog(), sql).await?;
                let f = fields(&rs.schema, format);
                *conn.described.lock() = Some((id.to_string(), Output::Rows(rs)));
                return Ok(f);
            }
            PgStatement::Params { sql, placeholders, types } => {
                // Before Bind: learn the columns from sample values; only pull queries and
                // catalog queries run for that (a push query would start streaming).
                let sample = pgparams::substitute(sql, placeholders, &sample_values(types));
                return match classify(&self.shared, &sample) {
                    Ok(Some(PgStatement::Catalog(sql))) => {
                        Ok(super::pgsql::run(&self.shared.eddy.catalog(), &sql).await.map(|rs| fields(&rs.schema, format)).unwrap_or_default())
                    }
                    Ok(Some(PgStatement::Eddy(p))) if matches!(&p.statement, Statement::Query(q) if q.emit.is_none()) => {
                        Ok(self.execute(conn, p).await.ok().and_then(|o| schema_of(&o)).map(|s| fields(&s, format)).unwrap_or_default())
                    }
                    _ => Ok(Vec::new()),
                };
            }
        };
        if !read_only(&st.statement) {
            return Ok(Vec::new());
        }
        if let Some((key, out)) = conn.described.lock().as_ref() {
            if key == id {
                return Ok(schema_of(out).map(|s| fields(&s, format)).unwrap_or_default());
            }
        }
        let out = self.execute(conn, st.clone()).await?;
        let f = schema_of(&out).map(|s| fields(&s, format)).unwrap_or_default();
        *conn.described.lock() = Some((id.to_string(), out));
        Ok(f)
    }
}

/// Which statement a result run early by Describe belongs to: the unnamed statement is reused
/// for every query, so its text is part of the key.
fn early_key(id: &str, st: &PgStatement) -> String {
    match st {
        PgStatement::Eddy(st) => format!("{id}\0{}", st.text),
        PgStatement::Compat(text, _) | PgStatement::Catalog(text) => format!("{id}\0{text}"),
        PgStatement::Params { sql, .. } => format!("{id}\0{sql}"),
    }
}

fn schema_of(out: &Output) -> Option<datafusion::arrow::datatypes::SchemaRef> {
    match out {
        Output::Message(_) => None,
        Output::Rows(r) => Some(r.schema.clone()),
        Output::Stream(s) => Some(s.schema.clone()),
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Arc<PgStatement>;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::new(Parser { shared: self.shared.clone() })
    }

    async fn do_describe_statement<C>(&self, client: &mut C, target: &StoredStatement<Self::Statement>) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.conn(client);
        let f = self.describe(&conn, &early_key(&target.id, &target.statement), &target.statement, None).await?;
        let params = target.parameter_types.iter().map(|t| t.clone().unwrap_or(Type::UNKNOWN)).collect();
        Ok(DescribeStatementResponse::new(params, f))
    }

    async fn do_describe_portal<C>(&self, client: &mut C, portal: &Portal<Self::Statement>) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.conn(client);
        let st = &portal.statement;
        let bound = match st.statement.as_ref() {
            PgStatement::Params { .. } => match bind(&self.shared, &st.statement, &portal.parameter_format, &portal.parameters)? {
                Some(b) => b,
                None => return Ok(DescribePortalResponse::no_data()),
            },
            _ => st.statement.clone(),
        };
        let f = self.describe(&conn, &early_key(&st.id, &bound), &bound, Some(&portal.result_column_format)).await?;
        Ok(DescribePortalResponse::new(f))
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Self::Statement>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.conn(client);
        let st = &portal.statement;
        let format = &portal.result_column_format;
        let bound = match st.statement.as_ref() {
            PgStatement::Params { .. } => match bind(&self.shared, &st.statement, &portal.parameter_format, &portal.parameters)? {
                Some(b) => b,
                None => return Ok(Response::EmptyQuery),
            },
            _ => st.statement.clone(),
        };
        let key = early_key(&st.id, &bound);
        let parsed = match bound.as_ref() {
            PgStatement::Eddy(p) => p,
            PgStatement::Params { .. } => return Err(user_error("XX000", "parameters left after Bind".into())),
            PgStatement::Catalog(sql) => {
                let early = {
                    let mut d = conn.described.lock();
                    match d.take() {
                        Some((id, Output::Rows(rs))) if id == key => Some(rs),
                        other => {
                            *d = other;
                            None
                        }
                    }
                };
                let rs = match early {
                    Some(rs) => rs,
                    None => super::pgsql::run(&self.shared.eddy.catalog(), sql).await?,
                };
                let f = Arc::new(fields(&rs.schema, Some(format)));
                let rows: Vec<_> = rs.batches.iter().map(|b| encode(b, &f)).collect::<PgWireResult<Vec<_>>>()?.into_iter().flatten().map(Ok).collect();
                return Ok(Response::Query(QueryResponse::new(f, futures::stream::iter(rows))));
            }
            PgStatement::Compat(_, Compat::Command(t)) => return Ok(Response::Execution(Tag::new(t))),
            PgStatement::Compat(_, c) => {
                let rs = c.rows().ok_or_else(|| user_error("XX000", "cannot build the answer".into()))?;
                let f = Arc::new(fields(&rs.schema, Some(format)));
                let rows: Vec<_> = rs.batches.iter().map(|b| encode(b, &f)).collect::<PgWireResult<Vec<_>>>()?.into_iter().flatten().map(Ok).collect();
                return Ok(Response::Query(QueryResponse::new(f, futures::stream::iter(rows))));
            }
        };
        let early = {
            let mut d = conn.described.lock();
            match d.take() {
                Some((id, out)) if id == key => Some(out),
                other => {
                    *d = other;
                    None
                }
            }
        };
        let out = match early {
            Some(o) => o,
            None => self.execute(&conn, parsed.clone()).await?,
        };
        Ok(match out {
            Output::Message(_) => Response::Execution(tag(&parsed.statement)),
            Output::Rows(rs) => {
                let f = Arc::new(fields(&rs.schema, Some(format)));
                let mut rows = Vec::new();
                for b in &rs.batches {
                    rows.extend(encode(b, &f)?.into_iter().map(Ok));
                }
                Response::Query(QueryResponse::new(f, futures::stream::iter(rows)))
            }
            Output::Stream(pq) => {
                let f = Arc::new(fields(&pq.schema, Some(format)));
                let cancel = CancelGuard::new(&self.cancels, client);
                let rows = futures::stream::unfold(
                    (pq, cancel, std::collections::VecDeque::new(), f.clone(), false),
                    |(mut pq, cancel, mut buf, f, ended)| async move {
                        loop {
                            if let Some(r) = buf.pop_front() {
                                return Some((Ok(r), (pq, cancel, buf, f, ended)));
                            }
                            if ended {
                                return None;
                            }
                            tokio::select! {
                                b = pq.next() => match b {
                                    Some(b) => match encode(&b, &f) {
                                        Ok(rows) => buf.extend(rows),
                                        Err(e) => return Some((Err(e), (pq, cancel, buf, f, true))),
                                    },
                                    None => return None,
                                },
                                _ = cancel.signal.notified() => {
                                    pq.finish();
                                    return Some((Err(canceled()), (pq, cancel, buf, f, true)));
                                }
                            }
                        }
                    },
                );
                Response::Query(QueryResponse::new(f, rows))
            }
        })
    }
}
