//! SHOW / LIST, DESCRIBE and PRINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use engine::QueryState;
use tokio::sync::mpsc;

use super::output::{PushQuery, RowSet};
use super::{print, Output, Session, OFFSET_RESET};
use crate::ast::{ColumnKind, ShowWhat, SourceType};
use crate::catalog::{COMMAND_TOPIC, SourceDef};
use crate::error::{PlanError, Result};
use crate::types::type_name;

/// A table of strings.
pub(crate) fn string_rows(columns: &[&str], rows: Vec<Vec<String>>) -> RowSet {
    let schema = Arc::new(Schema::new(columns.iter().map(|c| Field::new(*c, DataType::Utf8, true)).collect::<Vec<_>>()));
    let cols: Vec<ArrayRef> = (0..columns.len())
        .map(|i| Arc::new(StringArray::from(rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>())) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("string table");
    RowSet { schema, batches: vec![batch] }
}

/// A topic's cleanup settings, with Kafka's names (-1: no limit).
fn topic_settings(c: &storage::TopicConfig) -> String {
    let limit = |v: Option<i64>| v.map_or("-1".to_string(), |v| v.to_string());
    format!(
        "cleanup.policy={}, retention.ms={}, retention.bytes={}, segment.bytes={}",
        c.cleanup_policy.kafka_name(),
        limit(c.retention_ms),
        limit(c.retention_bytes.map(|b| b as i64)),
        c.segment_bytes
    )
}

/// What the background cleaner last did to a topic.
fn last_cleanup(s: Option<engine::CleanupStatus>) -> String {
    let Some(s) = s else { return "never".to_string() };
    let when = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()).unwrap_or_else(|| ms.to_string());
    if let Some(e) = &s.error {
        return format!("{}: failed: {e}", when(s.last_run_ms));
    }
    let t = &s.total;
    let removed = match s.last_removed_ms {
        Some(ms) => format!("last removal {}", when(ms)),
        None => "nothing removed yet".to_string(),
    };
    format!(
        "{}: {removed}; since start {} segments deleted, {} records compacted, {} bytes freed",
        when(s.last_run_ms),
        t.segments_deleted,
        t.records_compacted,
        t.bytes_freed
    )
}

fn format_name(f: &engine::format::FormatSpec) -> String {
    f.kind.name().to_string()
}

impl Session {
    pub(crate) fn show(&mut self, what: ShowWhat, extended: bool) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let rows = match what {
            ShowWhat::Streams | ShowWhat::Tables if extended => {
                let want = if what == ShowWhat::Streams { SourceType::Stream } else { SourceType::Table };
                self.sources_extended(want)?
            }
            ShowWhat::Queries if extended => self.queries_extended(),
            ShowWhat::Streams | ShowWhat::Tables => {
                let want = if what == ShowWhat::Streams { SourceType::Stream } else { SourceType::Table };
                let rows = catalog
                    .sources
                    .values()
                    .filter(|s| s.source_type == want)
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.topic.clone(),
                            format_name(&s.key_format),
                            format_name(&s.value_format),
                            s.window.is_some().to_string(),
                        ]
                    })
                    .collect();
                let first = if want == SourceType::Stream { "Stream Name" } else { "Table Name" };
                string_rows(&[first, "Kafka Topic", "Key Format", "Value Format", "Windowed"], rows)
            }
            ShowWhat::Topics => {
                let log = inner.engine.log();
                let mut rows = Vec::new();
                for t in log.list_topics() {
                    if t == COMMAND_TOPIC || (t.starts_with('_') && !extended) {
                        continue;
                    }
                    let info = log.describe_topic(&t)?;
                    let records: i64 = info.partitions.iter().map(|p| p.end_offset - p.start_offset).sum();
                    let mut row = vec![t.clone(), info.config.partitions.to_string(), records.to_string()];
                    if extended {
                        let bytes: u64 = info.partitions.iter().map(|p| p.size_bytes).sum();
                        row.push(bytes.to_string());
                        row.push(topic_settings(&info.config));
                        row.push(last_cleanup(inner.engine.cleanup_status(&t)));
                    }
                    rows.push(row);
                }
                if extended {
                    string_rows(&["Kafka Topic", "Partitions", "Records", "Bytes", "Settings", "Last Cleanup"], rows)
                } else {
                    string_rows(&["Kafka Topic", "Partitions", "Records"], rows)
                }
            }
            ShowWhat::Queries => {
                let mut rows = Vec::new();
                for info in inner.engine.queries() {
                    let def = catalog.queries.get(&info.id);
                    let status = query_status(&info);
                    let kind = if info.persistent { "PERSISTENT" } else { "PUSH" };
                    rows.push(vec![
                        info.id.clone(),
                        kind.to_string(),
                        status,
                        def.map(|d| d.sink.clone()).unwrap_or_default(),
                        def.map(|d| d.sink_topic.clone()).unwrap_or_default(),
                        def.map(|d| d.sql.clone()).unwrap_or_default(),
                    ]);
                }
                for (id, why, def) in self.not_started(&catalog) {
                    rows.push(vec![id, "PERSISTENT".into(), format!("NOT STARTED: {why}"), def.sink, def.sink_topic, def.sql]);
                }
                string_rows(&["Query ID", "Query Type", "Status", "Sink Name", "Sink Kafka Topic", "Query String"], rows)
            }
            ShowWhat::Properties => {
                let mut rows = vec![vec![
                    OFFSET_RESET.to_string(),
                    "SESSION".to_string(),
                    self.props.get(OFFSET_RESET).cloned().unwrap_or_else(|| "latest".into()),
                ]];
                for (k, v) in &self.props {
                    if k != OFFSET_RESET {
                        rows.push(vec![k.clone(), "SESSION".into(), v.clone()]);
                    }
                }
                string_rows(&["Property", "Scope", "Value"], rows)
            }
            ShowWhat::Functions => {
                let rows = function_names(&inner.functions)
                    .into_iter()
                    .map(|(n, kind)| {
                        let category = crate::functions::docs::doc(&n).map(|d| d.category.clone()).unwrap_or_else(|| "OTHER".into());
                        vec![n, kind.to_string(), category]
                    })
                    .collect();
                string_rows(&["Function Name", "Type", "Category"], rows)
            }
            ShowWhat::Variables => self.show_variables(),
            ShowWhat::Types => {
                let rows = catalog.types.iter().map(|(n, t)| vec![n.clone(), t.to_string()]).collect();
                string_rows(&["Type Name", "Schema"], rows)
            }
        };
        Ok(Output::Rows(rows))
    }

    pub(crate) fn describe(&mut self, name: &str, extended: bool) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let def = catalog.sources.get(name).ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: name.to_string() })?;
        let mut rows = describe_fields(def);
        if extended {
            let readers = catalog.readers_of(name);
            let writers = catalog.writers_of(name);
            let mut info = vec![
                ("Type".to_string(), def.source_type.noun().to_uppercase()),
                ("Kafka topic".to_string(), def.topic.clone()),
                ("Key format".to_string(), format_name(&def.key_format)),
                ("Value format".to_string(), format_name(&def.value_format)),
                ("Timestamp field".to_string(), def.timestamp.as_ref().map(|t| t.column.clone()).unwrap_or_else(|| "Not set - using <ROWTIME>".into())),
                ("Statement".to_string(), def.sql.clone()),
                ("Queries that read from this source".to_string(), readers.join(", ")),
                ("Queries that write into this source".to_string(), writers.join(", ")),
            ];
            if let Ok(t) = inner.engine.log().describe_topic(&def.topic) {
                info.push(("Partitions".into(), t.config.partitions.to_string()));
                let records: i64 = t.partitions.iter().map(|p| p.end_offset - p.start_offset).sum();
                info.push(("Records in topic".into(), records.to_string()));
                let bytes: u64 = t.partitions.iter().map(|p| p.size_bytes).sum();
                info.push(("Topic size".into(), format!("{bytes} bytes")));
                info.push(("Topic settings".into(), topic_settings(&t.config)));
                info.push(("Last cleanup".into(), last_cleanup(inner.engine.cleanup_status(&def.topic))));
            }
            for q in readers.iter().chain(writers.iter()) {
                if let Some(g) = inner.engine.processing_guarantee(q) {
                    info.push((format!("Query {q} processing guarantee"), guarantee_name(g).into()));
                }
                if let Some(qi) = inner.engine.query(q) {
                    info.push((format!("Query {q}"), format!(
                        "records in: {}, records out: {}, errors: {}, late records dropped: {}, state: {:?}",
                        qi.records_in, qi.records_out, qi.errors, qi.late_records, qi.state
                    )));
                }
            }
            rows = info.into_iter().map(|(k, v)| vec![k, v]).chain(rows).collect();
        }
        Ok(Output::Rows(string_rows(&["Field", "Type"], rows)))
    }

    pub(crate) fn describe_all(&mut self, what: SourceType, extended: bool) -> Result<Output> {
        if extended {
            return Ok(Output::Rows(self.sources_extended(what)?));
        }
        let catalog = self.eddy.inner.catalog.read().clone();
        let mut rows = Vec::new();
        for def in catalog.sources.values().filter(|s| s.source_type == what) {
            for r in describe_fields(def) {
                rows.push(vec![def.name.clone(), r[0].clone(), r[1].clone()]);
            }
        }
        Ok(Output::Rows(string_rows(&["Name", "Field", "Type"], rows)))
    }

    /// `DESCRIBE FUNCTION name`: kind, category, description and signatures.
    pub(crate) fn describe_function(&mut self, name: &str) -> Result<Output> {
        let upper = name.to_uppercase();
        let Some((_, kind)) = function_names(&self.eddy.inner.functions).into_iter().find(|(n, _)| *n == upper) else {
            return Err(PlanError::UnknownObject { kind: "function", name: name.to_string() });
        };
        let mut rows = vec![vec!["Name".to_string(), upper.clone()], vec!["Type".to_string(), kind.to_string()]];
        match crate::functions::docs::doc(&upper) {
            Some(d) => {
                rows.push(vec!["Category".into(), d.category.clone()]);
                rows.push(vec!["Description".into(), d.description.clone()]);
                for s in &d.signatures {
                    rows.push(vec!["Variation".into(), s.clone()]);
                }
            }
            None => rows.push(vec!["Description".into(), "(no description)".into()]),
        }
        Ok(Output::Rows(string_rows(&["Property", "Value"], rows)))
    }

    pub(crate) fn print(&mut self, topic: &str, from_beginning: bool, limit: Option<u64>, interval: Option<u64>) -> Result<Output> {
        let engine = self.eddy.inner.engine.clone();
        let log = engine.log().clone();
        let info = log.describe_topic(topic).or_else(|_| {
            // A stream or table name also works.
            let cat = self.eddy.inner.catalog.read();
            let t = cat.sources.get(&topic.to_uppercase()).map(|s| s.topic.clone());
            drop(cat);
            match t {
                Some(t) => log.describe_topic(&t),
                None => Err(storage::StorageError::UnknownTopic { topic: topic.to_string() }),
            }
        }).map_err(|_| PlanError::UnknownObject { kind: "topic", name: topic.to_string() })?;
        let topic = info.name.clone();
        // The formats of a stream or table over the topic, when there is one, say how to show
        // keys and values; otherwise they are guessed from the bytes, as ksqlDB does.
        let shape = self.eddy.inner.catalog.read().sources.values().find(|s| s.topic == topic).map(print::Shape::of);
        let mut positions: Vec<i64> = info.partitions.iter().map(|p| if from_beginning { p.start_offset } else { p.end_offset }).collect();
        let mut meta = std::collections::HashMap::new();
        meta.insert(super::PRINT_METADATA.to_string(), topic.clone());
        let schema = Arc::new(Schema::new_with_metadata(
            vec![
                Field::new("ROWTIME", DataType::Utf8, false),
                Field::new("PARTITION", DataType::Int64, false),
                Field::new("OFFSET", DataType::Int64, false),
                Field::new("KEY", DataType::Utf8, true),
                Field::new("VALUE", DataType::Utf8, true),
            ],
            meta,
        ));
        let (tx, rx) = mpsc::channel(16);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let sch = schema.clone();
        let every = interval.unwrap_or(1).max(1);
        std::thread::spawn(move || {
            let mut seen: u64 = 0;
            while !stop2.load(Ordering::Relaxed) {
                let mut any = false;
                for (p, pos) in positions.iter_mut().enumerate() {
                    let Ok(batch) = log.read(&topic, p as u32, *pos, 1 << 20) else { return };
                    *pos = batch.next_offset;
                    let mut cols: [Vec<Option<String>>; 3] = Default::default();
                    let mut parts = Vec::new();
                    let mut offs = Vec::new();
                    for r in batch.iter() {
                        seen += 1;
                        if !(seen - 1).is_multiple_of(every) {
                            continue;
                        }
                        cols[0].push(Some(print::rowtime(r.timestamp)));
                        cols[1].push(r.key.map(|k| print::key_text(k, shape.as_ref())));
                        cols[2].push(r.value.map(|v| print::value_text(v, shape.as_ref())));
                        parts.push(p as i64);
                        offs.push(r.offset);
                    }
                    if parts.is_empty() {
                        continue;
                    }
                    any = true;
                    let [t, k, v] = cols;
                    let b = RecordBatch::try_new(
                        sch.clone(),
                        vec![
                            Arc::new(StringArray::from(t)),
                            Arc::new(Int64Array::from(parts)),
                            Arc::new(Int64Array::from(offs)),
                            Arc::new(StringArray::from(k)),
                            Arc::new(StringArray::from(v)),
                        ],
                    )
                    .expect("print batch");
                    if tx.blocking_send(b).is_err() {
                        return;
                    }
                }
                if !any {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        let handle: super::output::StopHandle = Box::new(move || stop.store(true, Ordering::Relaxed));
        Ok(Output::Stream(PushQuery::new(format!("print_{}", info.name), schema, rx, limit, false, handle)))
    }
}

/// Eddy's functions (not DataFusion's fallback library) with their kind, sorted by name:
/// scalar functions, aggregates and table functions.
fn function_names(f: &crate::binder::functions::FunctionRegistry) -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &'static str)> = f.own_names().into_iter().map(|n| (n, "SCALAR")).collect();
    v.extend(engine::ops::aggregate::function::names().iter().map(|n| (n.to_string(), "AGGREGATE")));
    v.extend(["EXPLODE", "CUBE_EXPLODE"].iter().map(|n| (n.to_string(), "TABLE")));
    v.sort();
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

fn describe_fields(def: &SourceDef) -> Vec<Vec<String>> {
    let mut rows = vec![vec!["ROWTIME".to_string(), "BIGINT (system)".to_string()]];
    for c in &def.columns {
        let suffix = match (&c.kind, def.source_type) {
            (ColumnKind::Key, SourceType::Stream) => " (key)".to_string(),
            (ColumnKind::Key, SourceType::Table) => " (primary key)".to_string(),
            (ColumnKind::Headers, _) => " (headers)".to_string(),
            (ColumnKind::Header(k), _) => format!(" (header('{k}'))"),
            (ColumnKind::Value, _) => String::new(),
        };
        rows.push(vec![c.name.clone(), format!("{}{suffix}", type_name(&c.data_type))]);
    }
    rows
}


/// ksqlDB's name of a processing guarantee.
fn guarantee_name(g: engine::runtime::ProcessingGuarantee) -> &'static str {
    match g {
        engine::runtime::ProcessingGuarantee::AtLeastOnce => "at_least_once",
        _ => "exactly_once_v2",
    }
}

/// A query's status for SHOW QUERIES: RUNNING, PAUSED (by the user, or with why the runtime
/// holds it), CHECKPOINT FAILING or ERROR, with the reason.
pub(super) fn query_status(info: &engine::QueryInfo) -> String {
    match &info.state {
        QueryState::Running if info.checkpoint_error.is_some() => {
            format!("CHECKPOINT FAILING: {}", info.checkpoint_error.as_deref().unwrap_or_default())
        }
        QueryState::Running if info.user_paused => "PAUSED".to_string(),
        QueryState::Running => match &info.paused {
            Some(why) => format!("PAUSED: {why}"),
            None => "RUNNING".to_string(),
        },
        QueryState::Error(e) => format!("ERROR: {e}"),
    }
}

/// The tasks a query runs on this instance, with their lag behind each input partition, for
/// `SHOW QUERIES EXTENDED`: `instance i1: 0/1 (clicks/1 lag 0), ...`.
pub(super) fn task_summary(engine: &engine::Engine, info: &engine::QueryInfo) -> String {
    let mut parts = Vec::new();
    for t in &info.task_status {
        let lags: Vec<String> = t
            .inputs
            .iter()
            .map(|(topic, p, pos)| {
                let end = engine.log().describe_topic(topic).ok().and_then(|d| d.partitions.get(*p as usize).map(|x| x.end_offset));
                match end {
                    Some(end) => format!("{topic}/{p} lag {}", (end - pos).max(0)),
                    None => format!("{topic}/{p}"),
                }
            })
            .collect();
        parts.push(format!("{}/{} ({})", t.subtopology, t.partition, lags.join(", ")));
    }
    let guarantee = engine.processing_guarantee(&info.id).map(|g| format!("; {}", guarantee_name(g))).unwrap_or_default();
    match engine.instance_id() {
        Some(i) => format!("instance {i}: {}{guarantee}", if parts.is_empty() { "none".into() } else { parts.join(", ") }),
        None => format!("{}{guarantee}", parts.join(", ")),
    }
}

impl Session {
    /// The persistent queries of the catalog that opening could not start (and that are not
    /// running now), with why, for `SHOW QUERIES`.
    pub(crate) fn not_started(&self, catalog: &crate::catalog::Catalog) -> Vec<(String, String, crate::catalog::QueryDef)> {
        let engine = &self.eddy.inner.engine;
        let not_started = self.eddy.inner.not_started.lock().clone();
        not_started
            .into_iter()
            .filter(|(id, _)| engine.query(id).is_none())
            .filter_map(|(id, why)| Some((id.clone(), why, catalog.queries.get(&id)?.clone())))
            .collect()
    }
}
