//! Queries: CREATE ... AS SELECT, INSERT INTO ... SELECT, push queries, scans of streams,
//! TERMINATE and EXPLAIN.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use engine::format::{FormatKind, FormatSpec};
use engine::spec::{OpSpec, QuerySpec, SinkKind, SinkSpec};
use engine::{OffsetReset, StartOptions};
use storage::{CleanupPolicy, TopicConfig};
use tokio::sync::mpsc;

use super::ddl::check_formats;
use super::output::{PushQuery, RowSet};
use super::props::{WithProps, CAS_PROPS};
use super::{Output, Session};
use crate::ast::{ColumnKind, CreateAsSelect, Emit, Props, Query, SourceType, Statement};
use crate::catalog::{Catalog, Column, QueryDef, SourceDef, TimestampDef};
use crate::error::{invalid, PlanError, Result};
use crate::parser::parse;
use crate::plan::{plan_query, QueryKind};
use crate::plan::Pipeline;

impl Session {
    pub(crate) fn create_as_select(&mut self, c: &CreateAsSelect, sql: &str) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let _ddl = inner.ddl.lock();
        let existing = inner.catalog.read().sources.get(&c.name).cloned();
        if let Some(e) = existing {
            if c.if_not_exists {
                return Ok(Output::Message(format!("A {} with the same name already exists", e.source_type.noun())));
            }
            if c.or_replace {
                return self.replace_as_select(c, sql, &e);
            }
            return Err(PlanError::AlreadyExists { kind: e.source_type.noun(), name: c.name.clone() });
        }
        let n = self.next_command_number()?;
        let prefix = if c.source_type == SourceType::Stream { "CSAS" } else { "CTAS" };
        let id = format!("{prefix}_{}_{n}", c.name);
        let catalog = inner.catalog.read().clone();
        let (pipeline, sink_def) = self.plan_cas(c, sql, &catalog, &id)?;
        let created = ensure_topic(self, &sink_def, &c.props, &pipeline, &catalog)?;
        let query_def = QueryDef {
            id: id.clone(),
            sql: sql.to_string(),
            sources: pipeline.sources.clone(),
            sink: c.name.clone(),
            sink_topic: sink_def.topic.clone(),
            props: self.props.clone(),
            is_insert: false,
        };
        ensure_internal_topics(self, &pipeline)?;
        let spec = pipeline.finish(&id, OpSpec::Sink(sink_spec(&sink_def)));
        let mut query_def = query_def;
        if let Err(e) = self.start_new(spec, &mut query_def) {
            if created {
                let _ = inner.engine.log().delete_topic(&sink_def.topic);
            }
            return Err(e);
        }
        if let Err(e) = self.log_command_with(sql, Some(id.clone()), query_def.props.clone()) {
            let _ = inner.engine.stop_query(&id, true);
            return Err(e);
        }
        let mut cat = inner.catalog.write();
        cat.sources.insert(c.name.clone(), sink_def);
        cat.queries.insert(id.clone(), query_def);
        Ok(Output::Message(format!("Created query with ID {id}")))
    }

    /// Plans a CREATE ... AS SELECT: the pipeline and the definition of the new source.
    pub(super) fn plan_cas(&self, c: &CreateAsSelect, sql: &str, catalog: &Catalog, id: &str) -> Result<(Pipeline, SourceDef)> {
        let w = WithProps::parse(&c.props, CAS_PROPS)?;
        let mut pipeline = plan_query(&c.query, QueryKind::Persistent, Some(&c.name), id, catalog, &self.eddy.inner.functions)?;
        check_result_type(c.source_type, pipeline.output_type)?;
        if c.query.limit.is_some() {
            return Err(invalid("LIMIT is not supported in persistent queries"));
        }
        if !c.query.order_by.is_empty() {
            return Err(invalid("ORDER BY is only supported in pull queries on tables"));
        }
        let first = &catalog.sources[&pipeline.sources[0]];
        let prefix = self.properties().get("ksql.output.topic.name.prefix").cloned().unwrap_or_default();
        let topic = w.topic.clone().unwrap_or_else(|| format!("{prefix}{}", c.name));
        let has_key = pipeline.columns.iter().any(|c| c.is_key());
        let key_default = match (has_key, first.key_format.kind) {
            (false, _) => FormatSpec::none(),
            (true, FormatKind::None) => {
                FormatSpec::new(self.default_format(super::ddl::DEFAULT_KEY_FORMAT)?.unwrap_or(FormatKind::Kafka))
            }
            (true, _) => FormatSpec { schema_id: None, full_name: None, ..first.key_format },
        };
        if !has_key && w.key_format.is_some_and(|k| k != FormatKind::None) && !c.props.iter().any(|(n, _)| n == "FORMAT") {
            return Err(invalid(format!("Key format specified for {} without key columns.", c.source_type.noun())));
        }
        let mut key_format = w.key_spec(key_default);
        if !has_key {
            key_format = FormatSpec::none();
        }
        let value_default = FormatSpec {
            wrap_single_value: self.flag(super::ddl::WRAP_SINGLE_VALUES, true),
            schema_id: None,
            full_name: None,
            ..first.value_format
        };
        let value_format = w.value_spec(value_default);
        let partitions = match self.eddy.inner.engine.log().describe_topic(&topic) {
            Ok(info) => info.config.partitions,
            Err(_) => w.partitions.unwrap_or(first.partitions),
        };
        let mut def = SourceDef {
            name: c.name.clone(),
            source_type: c.source_type,
            topic,
            partitions,
            columns: pipeline.columns.clone(),
            key_format,
            value_format,
            timestamp: w.timestamp.clone().map(|column| TimestampDef { column, format: w.timestamp_format.clone() }),
            window: pipeline.window,
            is_source: false,
            materialized: c.source_type == SourceType::Table,
            written_by: Some(id.to_string()),
            sql: sql.to_string(),
            error_topic: None,
            late_topic: None,
        };
        w.check_delimiters(&def.key_format, &def.value_format)?;
        check_formats(&def.key_format, &def.value_format, &def.key_fields(), &def.value_fields(), w.wrap_single_value)?;
        let (key_fields, value_fields) = (def.key_fields(), def.value_fields());
        self.sink_schemas(&def.topic, &mut def.key_format, &mut def.value_format, &key_fields, &value_fields)?;
        sink_timestamp(&mut pipeline, &w, catalog, &self.eddy.inner.functions)?;
        Ok((pipeline, def))
    }

    pub(crate) fn replay_cas(&mut self, c: &CreateAsSelect, sql: &str, id: &str) -> Result<()> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let (pipeline, def) = self.plan_cas(c, sql, &catalog, id)?;
        let q = QueryDef {
            id: id.to_string(),
            sql: sql.to_string(),
            sources: pipeline.sources.clone(),
            sink: c.name.clone(),
            sink_topic: def.topic.clone(),
            props: self.props.clone(),
            is_insert: false,
        };
        let mut cat = inner.catalog.write();
        cat.sources.insert(c.name.clone(), def);
        cat.queries.insert(id.to_string(), q);
        Ok(())
    }

    pub(crate) fn insert_select(&mut self, target: &str, q: &Query, props: &Props, sql: &str) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let _ddl = inner.ddl.lock();
        // WITH (QUERY_ID='...') names the query (ksqlDB upper-cases it); nothing else is allowed.
        let others: Props = props.iter().filter(|(n, _)| n != "QUERY_ID").cloned().collect();
        if !others.is_empty() {
            WithProps::parse(&others, &[])?;
        }
        let id = match props.iter().find(|(n, _)| n == "QUERY_ID") {
            Some((_, v)) => {
                let id = v.text().to_uppercase();
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(invalid(format!("Query IDs may contain only alphanumeric characters, '_' and '-'. Got: '{}'", v.text())));
                }
                if inner.catalog.read().queries.contains_key(&id) || inner.engine.query(&id).is_some() {
                    return Err(invalid(format!("Query ID '{id}' already exists.")));
                }
                id
            }
            None => format!("INSERTQUERY_{}", self.next_command_number()?),
        };
        let catalog = inner.catalog.read().clone();
        let (pipeline, sink) = self.plan_insert(target, q, &catalog, &id)?;
        let query_def = QueryDef {
            id: id.clone(),
            sql: sql.to_string(),
            sources: pipeline.sources.clone(),
            sink: target.to_string(),
            sink_topic: sink.topic.clone(),
            props: self.props.clone(),
            is_insert: true,
        };
        ensure_internal_topics(self, &pipeline)?;
        let spec = pipeline.finish(&id, OpSpec::Sink(sink_spec(&sink)));
        let mut query_def = query_def;
        self.start_new(spec, &mut query_def)?;
        if let Err(e) = self.log_command_with(sql, Some(id.clone()), query_def.props.clone()) {
            let _ = inner.engine.stop_query(&id, true);
            return Err(e);
        }
        inner.catalog.write().queries.insert(id.clone(), query_def);
        Ok(Output::Message(format!("Created query with ID {id}")))
    }

    fn plan_insert(&self, target: &str, q: &Query, catalog: &Catalog, id: &str) -> Result<(Pipeline, SourceDef)> {
        let sink = catalog
            .sources
            .get(target)
            .cloned()
            .ok_or_else(|| PlanError::UnknownObject { kind: "stream", name: target.to_string() })?;
        if sink.source_type != SourceType::Stream {
            return Err(invalid(format!("INSERT INTO can only be used to insert into a stream. {target} is a table.")));
        }
        if sink.is_source {
            return Err(invalid(format!("Cannot insert into read-only stream: {target}")));
        }
        let pipeline = plan_query(q, QueryKind::Persistent, Some(target), id, catalog, &self.eddy.inner.functions)?;
        check_result_type(SourceType::Stream, pipeline.output_type)?;
        let want: Vec<(&str, &DataType, bool)> = sink.columns.iter().filter(|c| c.kind == ColumnKind::Key || c.kind == ColumnKind::Value).map(|c| (c.name.as_str(), &c.data_type, c.is_key())).collect();
        let got: Vec<(&str, &DataType, bool)> = pipeline.columns.iter().map(|c| (c.name.as_str(), &c.data_type, c.is_key())).collect();
        if want != got {
            let show = |v: &[(&str, &DataType, bool)]| {
                v.iter()
                    .map(|(n, t, k)| format!("`{n}` {}{}", crate::types::type_name(t), if *k { " KEY" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(invalid(format!(
                "Incompatible schema between results and sink.\nResult schema is {}\nSink schema is {}",
                show(&got),
                show(&want)
            )));
        }
        Ok((pipeline, sink))
    }

    pub(crate) fn replay_insert_select(&mut self, target: &str, q: &Query, sql: &str, id: &str) -> Result<()> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let (pipeline, sink) = self.plan_insert(target, q, &catalog, id)?;
        let def = QueryDef {
            id: id.to_string(),
            sql: sql.to_string(),
            sources: pipeline.sources.clone(),
            sink: target.to_string(),
            sink_topic: sink.topic,
            props: self.props.clone(),
            is_insert: true,
        };
        inner.catalog.write().queries.insert(id.to_string(), def);
        Ok(())
    }

    /// Re-plans and starts a persistent query of the catalog (after a restart).
    pub(crate) fn start_persistent(&self, q: &QueryDef) -> Result<()> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let st = parse(&q.sql)?.into_iter().next().ok_or_else(|| invalid("empty query statement"))?;
        let st = match super::limits::with_function_limits(&st.statement, &self.props) {
            Some(statement) => crate::parser::ParsedStatement { text: st.text, statement },
            None => st,
        };
        let (pipeline, sink) = match &st.statement {
            Statement::CreateSource(c) => {
                let def = catalog.sources.get(&c.name).cloned().ok_or_else(|| PlanError::UnknownObject { kind: "table", name: c.name.clone() })?;
                let spec = self.source_table_query(&def, &q.id)?;
                let opts = StartOptions { persistent: true, offset_reset: OffsetReset::Earliest, collect: None, guarantee: self.guarantee(), positions: None };
                return Ok(self.eddy.inner.engine.start_query(spec, opts)?);
            }
            Statement::CreateAsSelect(c) => {
                let (p, _) = self.plan_cas_for_restart(c, &catalog, &q.id)?;
                (p, catalog.sources.get(&c.name).cloned().ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: c.name.clone() })?)
            }
            Statement::InsertSelect { target, query, .. } => self.plan_insert(target, query, &catalog, &q.id)?,
            _ => return Err(invalid(format!("query {} is not a persistent query", q.id))),
        };
        ensure_internal_topics(self, &pipeline)?;
        let spec = pipeline.finish(&q.id, OpSpec::Sink(sink_spec(&sink)));
        let positions = q.props.get(START_POSITIONS).and_then(|v| decode_positions(v));
        self.start(spec, positions)
    }

    /// The query that materializes a source table for pull queries: read its topic, keep the
    /// latest row per key.
    pub(crate) fn source_table_query(&self, def: &SourceDef, id: &str) -> Result<QuerySpec> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let src = crate::plan::source::plan_source(def, &def.name, false, &catalog, &inner.functions)?;
        let mut p = Pipeline::new(SourceType::Table, vec![def.name.clone()]);
        p.push(OpSpec::Source(src.spec.clone()), src.schema.clone());
        let binder = crate::binder::Binder::new(&src.scope, &src.schema, &catalog.types, &inner.functions)?;
        let mut exprs = Vec::new();
        let mut fields = Vec::new();
        for c in def.columns.iter().filter(|c| c.kind == ColumnKind::Key || c.kind == ColumnKind::Value) {
            let id = datafusion::sql::sqlparser::ast::Ident::with_quote('`', c.name.clone());
            let t = binder.bind(&datafusion::sql::sqlparser::ast::Expr::Identifier(id))?;
            exprs.push(binder.physical(&t)?);
            fields.push(Field::new(&c.name, c.data_type.clone(), true));
        }
        p.push(
            OpSpec::Project(engine::spec::ProjectSpec { exprs, timestamp: None }),
            crate::plan::pipeline::batch_schema(fields),
        );
        let mut sink = sink_spec(def);
        sink.append = false;
        sink.window = None;
        Ok(p.finish(id, OpSpec::Sink(sink)))
    }

    /// Registers (and, unless replaying, starts) the materializer of a source table.
    pub(crate) fn materialize_source_table(&self, def: &SourceDef, sql: &str) -> Result<()> {
        let id = format!("CST_{}", def.name);
        let q = QueryDef {
            id: id.clone(),
            sql: sql.to_string(),
            sources: vec![def.name.clone()],
            sink: def.name.clone(),
            sink_topic: def.topic.clone(),
            props: self.props.clone(),
            is_insert: false,
        };
        if !self.replaying {
            let spec = self.source_table_query(def, &id)?;
            let opts = StartOptions { persistent: true, offset_reset: OffsetReset::Earliest, collect: None, guarantee: self.guarantee(), positions: None };
            self.eddy.inner.engine.start_query(spec, opts)?;
        }
        self.eddy.inner.catalog.write().queries.insert(id, q);
        Ok(())
    }

    fn plan_cas_for_restart(&self, c: &CreateAsSelect, catalog: &Catalog, id: &str) -> Result<(Pipeline, ())> {
        let mut p = plan_query(&c.query, QueryKind::Persistent, Some(&c.name), id, catalog, &self.eddy.inner.functions)?;
        let w = WithProps::parse(&c.props, CAS_PROPS)?;
        sink_timestamp(&mut p, &w, catalog, &self.eddy.inner.functions)?;
        Ok((p, ()))
    }

    fn start(&self, spec: QuerySpec, positions: Option<HashMap<(String, u32), storage::Offset>>) -> Result<()> {
        let opts = StartOptions { persistent: true, offset_reset: self.offset_reset(), collect: None, guarantee: self.guarantee(), positions };
        Ok(self.eddy.inner.engine.start_query(spec, opts)?)
    }

    /// Starts a new persistent query. Under `auto.offset.reset=latest` the ends of its sources
    /// now are where it starts, recorded in its properties (and so in its command): an instance
    /// that starts it later, or a restart before its first commit, starts there too instead of
    /// at the ends of that moment (which would skip what was written in between).
    fn start_new(&self, spec: QuerySpec, def: &mut QueryDef) -> Result<()> {
        let mut positions = None;
        if self.offset_reset() == OffsetReset::Latest {
            let ends = self.eddy.inner.engine.source_ends(&spec)?;
            def.props.insert(START_POSITIONS.to_string(), encode_positions(&ends));
            positions = Some(ends);
        }
        self.start(spec, positions)
    }

    /// SELECT: a push query with EMIT CHANGES, else a pull query (tables) or a scan (streams).
    pub(crate) fn select(&mut self, q: &Query) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let src = catalog
            .sources
            .get(&q.from.name)
            .ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: q.from.name.clone() })?;
        let push = q.emit.is_some();
        if q.emit == Some(Emit::Final) && q.window.is_none() {
            return Err(invalid("EMIT FINAL is only supported for windowed aggregations"));
        }
        if !push && src.source_type == SourceType::Table {
            let def = src.clone();
            return self.pull(q, &def);
        }
        if !q.order_by.is_empty() {
            return Err(invalid("ORDER BY is only supported in pull queries on tables"));
        }
        if !push {
            super::pull_check::check_pull_query(q, self.flag(super::pull_check::LIMIT_ENABLED, true))?;
        }
        let n = inner.transient_ids.fetch_add(1, Ordering::Relaxed);
        let id = format!("transient_{}_{n}", q.from.name);
        let pipeline = plan_query(q, QueryKind::Transient, None, &id, &catalog, &inner.functions)?;
        ensure_internal_topics(self, &pipeline)?;
        let fields: Vec<Field> = pipeline.columns.iter().map(|c| Field::new(&c.name, c.data_type.clone(), true)).collect();
        let tombstones: Option<Vec<bool>> = (pipeline.output_type == SourceType::Table && push).then(|| {
            pipeline.columns.iter().map(|c| c.is_key() || crate::plan::names::WINDOW_COLUMNS.contains(&c.name.as_str())).collect()
        });
        let schema = Arc::new(Schema::new(fields));
        let spec = pipeline.finish(&id, OpSpec::Collect);
        let (tx, rx) = mpsc::channel(16);
        let reset = if push { self.offset_reset() } else { OffsetReset::Earliest };
        let engine = inner.engine.clone();
        engine.start_query(spec, StartOptions { persistent: false, offset_reset: reset, collect: Some(tx), guarantee: Default::default(), positions: None })?;
        let stop_engine = engine.clone();
        let stop_id = id.clone();
        let stop_log = engine.log().clone();
        let stop: super::output::StopHandle = Box::new(move || {
            stop_engine.stop_query_nowait(&stop_id);
            let prefix = format!("_eddy_{stop_id}_");
            for t in stop_log.list_topics() {
                if t.starts_with(&prefix) {
                    let _ = stop_log.delete_topic(&t);
                }
            }
        });
        if !push {
            // A scan: read what is there now (what the queries writing the stream wrote from
            // what was in their inputs), then end, also while writers keep writing.
            let (e, sid, timeout) = (engine.clone(), id.clone(), self.pull_timeout());
            std::thread::spawn(move || {
                let _ = e.wait_read_to_current_end(None, timeout);
                let _ = e.wait_read_to_current_end(Some(std::slice::from_ref(&sid)), timeout);
                let _ = e.stop_query(&sid, false);
            });
        }
        let push_query = PushQuery::new(id, schema, rx, q.limit, true, stop);
        Ok(Output::Stream(match tombstones {
            Some(mask) => push_query.with_tombstones(mask),
            None => push_query,
        }))
    }

    pub(crate) fn terminate(&mut self, id: Option<&str>, sql: &str) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let _ddl = inner.ddl.lock();
        let ids: Vec<String> = match id {
            Some(id) => {
                if !inner.catalog.read().queries.contains_key(id) {
                    // A push query can be terminated too.
                    if !self.replaying && inner.engine.query(id).is_some() {
                        inner.engine.stop_query(id, false)?;
                        return Ok(Output::Message(format!("Query terminated: {id}")));
                    }
                    return Err(PlanError::UnknownObject { kind: "query", name: id.to_string() });
                }
                vec![id.to_string()]
            }
            None => inner.catalog.read().queries.keys().cloned().collect(),
        };
        for q in &ids {
            if inner.engine.query(q).is_some() {
                let _ = inner.engine.stop_query(q, true);
            } else if !self.replaying {
                // Not running (refused at start): its state would otherwise stay, and the cleaner
                // would keep its input for it. (On replay the state went when it was terminated.)
                let sink = inner.catalog.read().queries.get(q).map(|d| d.sink_topic.clone());
                inner.engine.forget_query(q, &sink.into_iter().collect::<Vec<_>>())?;
            }
            delete_internal_topics(self, q);
        }
        self.log_command(sql, None)?;
        let mut cat = inner.catalog.write();
        for q in &ids {
            cat.queries.remove(q);
            for s in cat.sources.values_mut() {
                if s.written_by.as_deref() == Some(q.as_str()) {
                    s.written_by = None;
                }
            }
        }
        Ok(Output::Message(format!("Terminated {}", ids.join(", "))))
    }

    pub(crate) fn explain(&mut self, st: &Statement) -> Result<Output> {
        self.explain_as(st, "EXPLAIN")
    }

    fn explain_as(&mut self, st: &Statement, id: &str) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let spec = match st {
            Statement::Query(q) => plan_query(q, QueryKind::Transient, None, id, &catalog, &inner.functions)?.finish(id, OpSpec::Collect),
            Statement::CreateAsSelect(c) => {
                let p = plan_query(&c.query, QueryKind::Persistent, Some(&c.name), id, &catalog, &inner.functions)?;
                let def = match catalog.sources.get(&c.name) {
                    Some(d) if d.written_by.as_deref() == Some(id) => d.clone(),
                    _ => self.plan_cas(c, "", &catalog, id)?.1,
                };
                p.finish(id, OpSpec::Sink(sink_spec(&def)))
            }
            Statement::InsertSelect { target, query, .. } => {
                let (p, def) = self.plan_insert(target, query, &catalog, id)?;
                p.finish(id, OpSpec::Sink(sink_spec(&def)))
            }
            Statement::CreateSource(c) => {
                let def = catalog.sources.get(&c.name).cloned().ok_or_else(|| PlanError::UnknownObject { kind: "table", name: c.name.clone() })?;
                self.source_table_query(&def, id)?
            }
            _ => return Err(invalid("EXPLAIN works on SELECT, CREATE ... AS SELECT and INSERT INTO ... SELECT")),
        };
        Ok(plan_rows(&spec))
    }

    pub(crate) fn explain_query(&mut self, id: &str) -> Result<Output> {
        let q = self.eddy.inner.catalog.read().queries.get(id).cloned().ok_or_else(|| PlanError::UnknownObject { kind: "query", name: id.to_string() })?;
        // The plan stored with the query's state is the one that runs.
        if let Some(plan) = self.eddy.inner.engine.stored_plan(id)? {
            return Ok(text_rows(&plan.to_string()));
        }
        let st = parse(&q.sql)?.into_iter().next().ok_or_else(|| invalid("empty query"))?;
        self.explain_as(&st.statement, id)
    }
}

/// `WITH (TIMESTAMP=..., TIMESTAMP_FORMAT=...)` of a CREATE ... AS SELECT: the records' time
/// comes from a column of the result.
fn sink_timestamp(p: &mut Pipeline, w: &WithProps, catalog: &Catalog, functions: &crate::binder::functions::FunctionRegistry) -> Result<()> {
    match &w.timestamp {
        Some(column) => {
            crate::plan::timestamp::timestamp_from_column(p, column, w.timestamp_format.as_deref(), &catalog.types, functions)
        }
        None if w.timestamp_format.is_some() => Err(invalid("TIMESTAMP_FORMAT needs TIMESTAMP")),
        None => Ok(()),
    }
}

fn plan_rows(spec: &QuerySpec) -> Output {
    text_rows(&spec.to_string())
}

/// One PLAN row per line of `text`.
fn text_rows(text: &str) -> Output {
    let lines: Vec<&str> = text.lines().collect();
    let schema = Arc::new(Schema::new(vec![Field::new("PLAN", DataType::Utf8, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(lines))]).expect("plan rows");
    Output::Rows(RowSet { schema, batches: vec![batch] })
}

fn check_result_type(declared: SourceType, produced: SourceType) -> Result<()> {
    match (declared, produced) {
        (SourceType::Stream, SourceType::Table) => Err(invalid(
            "Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS SELECT statement instead.",
        )),
        (SourceType::Table, SourceType::Stream) => Err(invalid(
            "Invalid result type. Your SELECT query produces a STREAM. Please use CREATE STREAM AS SELECT statement instead.",
        )),
        _ => Ok(()),
    }
}

/// The sink node writing `def`'s topic from a batch whose columns are `def.columns` in order.
pub(crate) fn sink_spec(def: &SourceDef) -> SinkSpec {
    let cols: Vec<&Column> = def.columns.iter().filter(|c| c.kind == ColumnKind::Key || c.kind == ColumnKind::Value).collect();
    SinkSpec {
        topic: def.topic.clone(),
        kind: if def.source_type == SourceType::Table { SinkKind::Table } else { SinkKind::Stream },
        key_format: def.key_format,
        value_format: def.value_format,
        key_columns: cols.iter().enumerate().filter(|(_, c)| c.is_key()).map(|(i, _)| i).collect(),
        value_columns: cols.iter().enumerate().filter(|(_, c)| !c.is_key()).map(|(i, _)| i).collect(),
        key_fields: def.key_fields(),
        value_fields: def.value_fields(),
        window: def.window.map(|w| {
            let n = cols.len();
            engine::spec::SinkWindow { start_column: n, end_column: n + 1, session: w == crate::catalog::WindowType::Session, retention_ms: None }
        }),
        append: true,
        materialize: if def.materialized { Some(def.name.clone()) } else { None },
        internal: false,
    }
}

/// Creates the internal topics a pipeline needs (repartitions) when missing.
pub(crate) fn ensure_internal_topics(s: &Session, p: &Pipeline) -> Result<()> {
    let log = s.eddy.inner.engine.log();
    for (t, n) in &p.internal_topics {
        if log.describe_topic(t).is_err() {
            log.create_topic(t, &TopicConfig::new(*n))?;
        }
    }
    Ok(())
}

/// Deletes the internal topics of a query.
pub(crate) fn delete_internal_topics(s: &Session, id: &str) {
    let log = s.eddy.inner.engine.log();
    let prefix = format!("_eddy_{id}_");
    for t in log.list_topics() {
        if t.starts_with(&prefix) {
            let _ = log.delete_topic(&t);
        }
    }
}

/// Creates the sink topic when missing (partitions from WITH or the first source's topic).
/// Returns true when it created it.
fn ensure_topic(s: &Session, def: &SourceDef, props: &Props, pipeline: &Pipeline, catalog: &Catalog) -> Result<bool> {
    let w = WithProps::parse(props, CAS_PROPS)?;
    let log = s.eddy.inner.engine.log();
    let src_topic = &catalog.sources[&pipeline.sources[0]].topic;
    let src_partitions = log.describe_topic(src_topic)?.config.partitions;
    match log.describe_topic(&def.topic) {
        Ok(info) => {
            w.check_existing_topic(&def.topic, &info.config)?;
            if let Some(p) = w.partitions {
                if p != info.config.partitions {
                    return Err(invalid(format!(
                        "A Kafka topic with the name '{}' already exists, with different partition/replica configuration than required. KSQL expects {p} partitions (topic has {}).",
                        def.topic, info.config.partitions
                    )));
                }
            }
            Ok(false)
        }
        Err(_) => {
            let mut cfg = TopicConfig::new(w.partitions.unwrap_or(src_partitions));
            if def.source_type == SourceType::Table {
                cfg.cleanup_policy = CleanupPolicy::Compact;
            }
            if let Some(win) = pipeline.window_retention() {
                // Windowed results: compacted, and windows past their retention deleted, as Kafka
                // Streams configures windowed changelogs.
                cfg.cleanup_policy = CleanupPolicy::CompactDelete;
                cfg.retention_ms = Some(win);
            }
            log.create_topic(&def.topic, &w.topic_config(cfg))?;
            Ok(true)
        }
    }
}

/// The query property (recorded with its command) holding where a query started under
/// `auto.offset.reset=latest`: see `Session::start_new`.
pub(crate) const START_POSITIONS: &str = "eddy.query.start.positions";

fn encode_positions(ends: &HashMap<(String, u32), storage::Offset>) -> String {
    let mut v: Vec<(&String, u32, storage::Offset)> = ends.iter().map(|((t, p), o)| (t, *p, *o)).collect();
    v.sort();
    serde_json::to_string(&v).expect("positions serialise")
}

fn decode_positions(text: &str) -> Option<HashMap<(String, u32), storage::Offset>> {
    let v: Vec<(String, u32, storage::Offset)> = serde_json::from_str(text).ok()?;
    Some(v.into_iter().map(|(t, p, o)| ((t, p), o)).collect())
}
