//! The API every client uses (REPL, CLI, servers, test runners): [`Eddy`] owns the engine and
//! the catalog of one data directory; a [`Session`] runs statements with its own properties.

mod admin;
mod ddl;
mod extended;
mod follow;
mod insert;
mod limits;
pub mod output;
mod pause;
mod print;
pub mod props;
mod pull;
mod pull_check;
mod pull_provider;
mod pull_sql;
mod pull_view;
pub mod render;
mod replace;
mod replay;
mod queries;
mod schemas;
pub mod settings;
mod show;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use engine::{Engine, EngineConfig};
use parking_lot::{Mutex, RwLock};
use storage::{RecordIn, TopicConfig};

pub use output::{Output, PushQuery, RowSet};
pub use replay::OpenOptions;

use crate::ast::Statement;
use crate::binder::functions::FunctionRegistry;
use crate::catalog::{Catalog, Command, COMMAND_TOPIC};
use crate::error::{PlanError, Result};
use crate::parser::{parse_script, ParsedStatement, Variables, SUBSTITUTION_ENABLE};

/// The stream over the processing log.
pub const PROCESSING_LOG_STREAM: &str = "EDDY_PROCESSING_LOG";

/// Session property: where new queries start reading (`earliest` or `latest`).
pub const OFFSET_RESET: &str = "auto.offset.reset";
/// Session property: how long pull queries wait for persistent queries to catch up (ms).
pub const PULL_TIMEOUT: &str = "eddy.pull.timeout.ms";
/// Schema metadata key marking the rows of a `PRINT` (its value is the topic): clients print
/// them as ksqlDB's `rowtime: ..., key: ..., value: ...` lines.
pub const PRINT_METADATA: &str = "eddy.print.topic";
/// Engine-wide property: time between periodic checkpoints (ms); `SET` changes it for every query.
pub const CHECKPOINT_INTERVAL: &str = "checkpoint.interval.ms";

/// Shared state of one data directory.
pub(crate) struct Inner {
    pub engine: Arc<Engine>,
    pub catalog: RwLock<Catalog>,
    pub functions: FunctionRegistry,
    /// Serialises statements that change the catalog.
    pub ddl: Mutex<()>,
    pub transient_ids: AtomicU64,
    /// Offsets in the command topic of the statements this instance ran (the follower skips
    /// them).
    pub own_commands: Mutex<std::collections::BTreeSet<i64>>,
    /// The offset in the command topic up to which this instance has applied commands.
    pub commands_applied: std::sync::atomic::AtomicI64,
    /// What opening skipped (see [`OpenOptions`]), for the operator's log.
    pub startup_notes: Mutex<Vec<String>>,
    /// Persistent queries that opening could not start (skipped with [`OpenOptions`]), and why:
    /// `SHOW QUERIES` lists them as `NOT STARTED` while they stay in the catalog.
    pub not_started: Mutex<std::collections::BTreeMap<String, String>>,
}

/// How long [`Eddy::close`] waits for the threads that still hold the engine (stopping push
/// queries, background passes) to let go.
pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// An open Eddy instance: engine, catalog, functions.
#[derive(Clone)]
pub struct Eddy {
    pub(crate) inner: Arc<Inner>,
}

impl Eddy {
    /// Opens (or creates) the data directory, replays the command log and restarts the
    /// persistent queries from their checkpoints.
    pub fn open(data_dir: &Path, config: EngineConfig) -> Result<Eddy> {
        Self::open_with(data_dir, config, OpenOptions::default())
    }

    /// [`Eddy::open`] with options (e.g. starting despite a damaged command log).
    pub fn open_with(data_dir: &Path, config: EngineConfig, options: OpenOptions) -> Result<Eddy> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            PlanError::Storage(storage::StorageError::Io { path: data_dir.to_path_buf(), source: e })
        })?;
        let engine = match Engine::open(data_dir, config) {
            Ok(e) => e,
            Err(engine::EngineError::Storage(e @ storage::StorageError::StateOpen { .. })) => {
                let storage::StorageError::StateOpen { path, .. } = &e else { unreachable!() };
                let path = path.clone();
                return Err(PlanError::StateDamaged { queries: defined_queries(data_dir), path, source: e });
            }
            Err(e) => return Err(e.into()),
        };
        Self::with_engine_and(engine, options)
    }

    /// An instance over an opened engine.
    pub fn with_engine(engine: Arc<Engine>) -> Result<Eddy> {
        Self::with_engine_and(engine, OpenOptions::default())
    }

    /// [`Eddy::with_engine`] with options.
    pub fn with_engine_and(engine: Arc<Engine>, options: OpenOptions) -> Result<Eddy> {
        if engine.log().describe_topic(COMMAND_TOPIC).is_err() {
            engine.log().create_topic(COMMAND_TOPIC, &TopicConfig::new(1))?;
        }
        let eddy = Eddy {
            inner: Arc::new(Inner {
                engine,
                catalog: RwLock::new(Catalog::default()),
                functions: FunctionRegistry::new(),
                ddl: Mutex::new(()),
                transient_ids: AtomicU64::new(0),
                own_commands: Mutex::new(Default::default()),
                commands_applied: std::sync::atomic::AtomicI64::new(0),
                startup_notes: Mutex::new(Vec::new()),
                not_started: Mutex::new(std::collections::BTreeMap::new()),
            }),
        };
        eddy.register_processing_log();
        eddy.replay(options)?;
        // Every persistent query runs again: their checkpointed offsets protect what they still
        // have to read from retention and compaction.
        eddy.inner.engine.enable_cleaner();
        eddy.follow_commands();
        Ok(eddy)
    }

    /// What opening left out because of [`OpenOptions::skip_damaged_commands`], one line each.
    pub fn startup_notes(&self) -> Vec<String> {
        self.inner.startup_notes.lock().clone()
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }

    /// A snapshot of the catalog.
    pub fn catalog(&self) -> Catalog {
        self.inner.catalog.read().clone()
    }

    /// A new session with default properties.
    pub fn session(&self) -> Session {
        Session { eddy: self.clone(), props: BTreeMap::new(), replaying: false, vars: Variables::default() }
    }

    /// Final checkpoint and stop of every query; they resume at the next [`Eddy::open`].
    pub fn shutdown(&self) -> Result<()> {
        Ok(self.inner.engine.shutdown()?)
    }

    /// [`Eddy::shutdown`], then waits (at most [`CLOSE_WAIT`]) until no thread holds the engine
    /// any more and it is dropped, so that its state store is closed before the process exits.
    /// Call it last: handles still held elsewhere (sessions, push queries) keep the engine open
    /// until they are dropped.
    pub fn close(self) -> Result<()> {
        let r = self.shutdown();
        let dropped = self.inner.engine.dropped_flag();
        drop(self);
        let deadline = std::time::Instant::now() + CLOSE_WAIT;
        while !dropped.load(std::sync::atomic::Ordering::Acquire) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        r
    }

    /// Exposes the processing-log topic as the read-only stream `EDDY_PROCESSING_LOG`.
    fn register_processing_log(&self) {
        use datafusion::arrow::datatypes::DataType;
        use engine::format::FormatSpec;
        let col = |n: &str, t: DataType| crate::catalog::Column { name: n.into(), data_type: t, kind: crate::ast::ColumnKind::Value };
        let def = crate::catalog::SourceDef {
            name: PROCESSING_LOG_STREAM.into(),
            source_type: crate::ast::SourceType::Stream,
            topic: engine::processing_log::PROCESSING_LOG_TOPIC.into(),
            partitions: 1,
            columns: vec![
                col("TYPE", DataType::Utf8),
                col("QUERY_ID", DataType::Utf8),
                col("TOPIC", DataType::Utf8),
                col("PARTITION", DataType::Int32),
                col("OFFSET", DataType::Int64),
                col("MESSAGE", DataType::Utf8),
            ],
            key_format: FormatSpec::none(),
            value_format: FormatSpec::json(),
            timestamp: None,
            window: None,
            is_source: true,
            materialized: false,
            written_by: None,
            sql: String::new(),
            error_topic: None,
            late_topic: None,
        };
        self.inner.catalog.write().sources.insert(def.name.clone(), def);
    }
}

/// Ids of the persistent queries the command log of `data_dir` defines (created and not
/// terminated), read without the engine (for errors about a state store that cannot be opened).
fn defined_queries(data_dir: &Path) -> Vec<String> {
    let Ok(log) = storage::FileLog::open(&data_dir.join("topics"), storage::LogOptions::default()) else { return Vec::new() };
    let mut ids: Vec<String> = Vec::new();
    let mut offset = 0;
    while let Ok(batch) = storage::TopicLog::read(&log, COMMAND_TOPIC, 0, offset, 1 << 20) {
        if batch.is_empty() {
            break;
        }
        for c in batch.iter().filter_map(|r| r.value).filter_map(|v| serde_json::from_slice::<Command>(v).ok()) {
            let upper = c.sql.trim_start().to_uppercase();
            if let Some(id) = c.query_id {
                ids.push(id);
            } else if upper.starts_with("TERMINATE") {
                let rest = c.sql.trim_start()[9..].trim().trim_end_matches(';').trim().to_uppercase();
                if rest == "ALL" {
                    ids.clear();
                } else {
                    ids.retain(|i| i.to_uppercase() != rest);
                }
            } else if let Some(rest) = upper.strip_prefix("DROP STREAM ").or_else(|| upper.strip_prefix("DROP TABLE ")) {
                // Dropping a query's output ends the query (ids are CSAS_<NAME>_<n> or CTAS_<NAME>_<n>).
                let name = rest.trim().trim_start_matches("IF EXISTS ").split([' ', ';']).next().unwrap_or("").trim_matches('`').to_string();
                ids.retain(|i| {
                    let u = i.to_uppercase();
                    let body = u.strip_prefix("CSAS_").or_else(|| u.strip_prefix("CTAS_")).unwrap_or("");
                    body.rsplit_once('_').is_none_or(|(n, _)| n != name)
                });
            }
        }
        offset = batch.next_offset;
    }
    ids
}

/// A client's session: its properties (SET/UNSET) and variables (DEFINE).
pub struct Session {
    pub(crate) eddy: Eddy,
    pub(crate) props: BTreeMap<String, String>,
    pub(crate) replaying: bool,
    pub(crate) vars: Variables,
}

impl Session {
    /// The instance this session belongs to.
    pub fn eddy(&self) -> &Eddy {
        &self.eddy
    }

    /// Session properties set with SET.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.props
    }

    /// Sets a session property (as SET does).
    pub fn set_property(&mut self, name: &str, value: &str) {
        self.props.insert(name.to_string(), value.to_string());
    }

    /// The session's variables (DEFINE).
    pub fn variables(&self) -> &Variables {
        &self.vars
    }

    /// True unless `ksql.variable.substitution.enable` is set to false.
    pub fn substitution_enabled(&self) -> bool {
        self.flag(SUBSTITUTION_ENABLE, true)
    }

    /// Parses `sql` into statements, substituting the session's variables (`${name}`) as the
    /// statements will see them when run in order ([`parse_script`]).
    pub fn parse(&self, sql: &str) -> Result<Vec<ParsedStatement>> {
        parse_script(sql, &self.vars, self.substitution_enabled())
    }

    /// Parses and runs every statement of `sql`, stopping at the first error; returns the
    /// outputs of the statements that ran.
    pub fn execute_all(&mut self, sql: &str) -> Result<Vec<Output>> {
        let mut out = Vec::new();
        for st in self.parse(sql)? {
            out.push(self.execute(&st)?);
        }
        Ok(out)
    }

    /// Runs one statement.
    pub fn execute(&mut self, st: &ParsedStatement) -> Result<Output> {
        match limits::with_function_limits(&st.statement, &self.props) {
            Some(statement) => self.execute_statement(&ParsedStatement { text: st.text.clone(), statement }),
            None => self.execute_statement(st),
        }
    }

    fn execute_statement(&mut self, st: &ParsedStatement) -> Result<Output> {
        match &st.statement {
            Statement::CreateSource(c) => self.create_source(c, &st.text),
            Statement::CreateAsSelect(c) => self.create_as_select(c, &st.text),
            Statement::InsertValues(i) => self.insert_values(i),
            Statement::InsertSelect { target, query, props } => self.insert_select(target, query, props, &st.text),
            Statement::Query(q) => self.select(q),
            Statement::Drop { source_type, name, if_exists, delete_topic } => {
                self.drop_source(*source_type, name, *if_exists, *delete_topic, &st.text)
            }
            Statement::Show { what, extended } => self.show(*what, *extended),
            Statement::Describe { name, extended } => self.describe(name, *extended),
            Statement::DescribeAll { what, extended } => self.describe_all(*what, *extended),
            Statement::DescribeFunction(name) => self.describe_function(name),
            Statement::Print { topic, from_beginning, limit, interval } => self.print(topic, *from_beginning, *limit, *interval),
            Statement::Set { name, value } => self.set(name, value),
            Statement::Unset(name) => self.unset(name),
            Statement::Explain(inner) => self.explain(inner),
            Statement::ExplainQuery(id) => self.explain_query(id),
            Statement::Terminate(id) => self.terminate(id.as_deref(), &st.text),
            Statement::CreateType { name, data_type, if_not_exists } => {
                self.create_type(name, data_type, *if_not_exists, &st.text)
            }
            Statement::DropType { name, if_exists } => self.drop_type(name, *if_exists, &st.text),
            Statement::Define { name, value } => Ok(self.define(name, value)),
            Statement::Undefine(name) => Ok(self.undefine(name)),
            Statement::Pause(id) => self.pause(id.as_deref(), &st.text, true),
            Statement::Resume(id) => self.pause(id.as_deref(), &st.text, false),
            Statement::AssertTopic { topic, exists, props, timeout } => self.assert_topic(topic, *exists, props, *timeout),
            Statement::AssertSchema { .. } => self.assert_schema(),
            Statement::RunScript(_) => Err(PlanError::Unsupported {
                feature: "RUN SCRIPT outside the eddy CLI (the CLI reads the file and runs its statements)".into(),
            }),
        }
    }

    /// Re-runs a logged statement while replaying the command log: only catalog effects.
    fn replay_statement(&mut self, st: &ParsedStatement, query_id: Option<&str>) -> Result<()> {
        let limited = limits::with_function_limits(&st.statement, &self.props)
            .map(|statement| ParsedStatement { text: st.text.clone(), statement });
        let st = limited.as_ref().unwrap_or(st);
        match &st.statement {
            Statement::CreateSource(c) => self.create_source(c, &st.text).map(|_| ()),
            Statement::CreateAsSelect(c) => self.replay_cas(c, &st.text, query_id.unwrap_or_default()),
            Statement::InsertSelect { target, query, .. } => self.replay_insert_select(target, query, &st.text, query_id.unwrap_or_default()),
            Statement::Drop { source_type, name, if_exists, delete_topic } => {
                self.drop_source(*source_type, name, *if_exists, *delete_topic, &st.text).map(|_| ())
            }
            Statement::Terminate(id) => self.terminate(id.as_deref(), &st.text).map(|_| ()),
            Statement::CreateType { name, data_type, if_not_exists } => {
                self.create_type(name, data_type, *if_not_exists, &st.text).map(|_| ())
            }
            Statement::DropType { name, if_exists } => self.drop_type(name, *if_exists, &st.text).map(|_| ()),
            Statement::Pause(id) => self.pause(id.as_deref(), &st.text, true).map(|_| ()),
            Statement::Resume(id) => self.pause(id.as_deref(), &st.text, false).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Appends an accepted statement to the command log (not while replaying).
    pub(crate) fn log_command(&self, sql: &str, query_id: Option<String>) -> Result<()> {
        self.log_command_with(sql, query_id, self.props.clone())
    }

    /// [`Self::log_command`] with the properties to record (the session's and what the statement
    /// resolved, such as a new query's start positions).
    pub(crate) fn log_command_with(&self, sql: &str, query_id: Option<String>, props: BTreeMap<String, String>) -> Result<()> {
        if self.replaying {
            return Ok(());
        }
        let c = Command { sql: sql.to_string(), props, query_id };
        let v = serde_json::to_vec(&c).expect("commands serialise");
        let now = chrono::Utc::now().timestamp_millis();
        let r = [RecordIn { timestamp: now, key: None, value: Some(&v), headers: &[] }];
        let offset = self.eddy.inner.engine.log().append(COMMAND_TOPIC, 0, &r)?;
        self.eddy.inner.engine.log().sync()?;
        if !self.eddy.inner.engine.log().notifies_appends() {
            self.eddy.inner.own_commands.lock().insert(offset);
        }
        Ok(())
    }

    /// The offset the next command will get: numbers query ids.
    pub(crate) fn next_command_number(&self) -> Result<i64> {
        let info = self.eddy.inner.engine.log().describe_topic(COMMAND_TOPIC)?;
        Ok(info.partitions[0].end_offset)
    }

    /// The `processing.guarantee` a persistent query started now asks for (ksqlDB's property, with
    /// or without its `ksql.streams.` prefix).
    pub(crate) fn guarantee(&self) -> engine::runtime::ProcessingGuarantee {
        self.props.get("processing.guarantee").and_then(|v| engine::runtime::ProcessingGuarantee::parse(v)).unwrap_or_default()
    }

    pub(crate) fn offset_reset(&self) -> engine::OffsetReset {
        match self.props.get(OFFSET_RESET).map(|s| s.to_lowercase()) {
            Some(s) if s == "earliest" => engine::OffsetReset::Earliest,
            _ => engine::OffsetReset::Latest,
        }
    }

    /// A boolean session property, `default` when unset.
    pub(crate) fn flag(&self, name: &str, default: bool) -> bool {
        match self.props.get(name).map(|v| v.to_lowercase()) {
            Some(v) if v == "false" => false,
            Some(v) if v == "true" => true,
            _ => default,
        }
    }

    pub(crate) fn pull_timeout(&self) -> Duration {
        let ms = self.props.get(PULL_TIMEOUT).and_then(|v| v.parse().ok()).unwrap_or(30_000);
        Duration::from_millis(ms)
    }
}
