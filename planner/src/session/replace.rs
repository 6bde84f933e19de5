//! `CREATE OR REPLACE STREAM|TABLE ... AS SELECT` over a running query: an in-place upgrade. The
//! new plan keeps the query's id, its checkpointed offsets, its operator state and its output
//! topic, so it carries on where the old one stopped; a change that would not match that state is
//! refused with the reason, and nothing changes.
//!
//! Allowed (ksqlDB's rules, see its "update a running persistent query" guide): changing filters
//! (data selection) and adding columns at the end of the result (schema evolution), also on
//! stateful queries whose aggregation input stays the same. Beyond ksqlDB, and sound because the
//! state keeps its meaning: filters may use any column (Eddy's aggregate state holds only the
//! GROUP BY values and the aggregates' arguments, not ksqlDB's whole intermediate schema);
//! windowed aggregations may change too as long as the window does not; joins may change what
//! happens before and after them as long as the join itself and the columns it keeps do not.
//! Refused: a different key, window, aggregation, join or set of sources, a change of format or
//! topic, removing or changing columns, and any change upstream of an aggregation over a table
//! (its retractions would go through the new filter and counts would drift; ksqlDB refuses table
//! aggregations altogether).
//!
//! The switch: the old query is paused, checkpointed (so that everything it processed is
//! committed and nothing more is written), stopped, the new plan is stored with the state and
//! starts from those offsets; if it cannot start, the old plan is stored and starts again.

use std::fmt::Write;

use engine::spec::{DagSpec, OpSpec, QuerySpec};
use engine::{OffsetReset, StartOptions};

use super::queries::sink_spec;
use super::{Output, Session};
use crate::ast::CreateAsSelect;
use crate::catalog::{QueryDef, SourceDef};
use crate::error::{invalid, PlanError, Result};
use crate::parser::parse;

impl Session {
    /// Replaces the query writing `old` (the existing source named by `c`). Called with the
    /// catalog's DDL lock held.
    pub(crate) fn replace_as_select(&mut self, c: &CreateAsSelect, sql: &str, old: &SourceDef) -> Result<Output> {
        let inner = self.eddy.inner.clone();
        let noun = old.source_type.noun();
        let Some(id) = old.written_by.clone() else {
            return Err(invalid(format!(
                "cannot replace {noun} {}: it is not the result of a running query (only CREATE ... AS SELECT results can be replaced)",
                old.name
            )));
        };
        if c.source_type != old.source_type {
            return Err(refused(&id, &format!("it would turn the {noun} {} into a {}", old.name, c.source_type.noun())));
        }
        let catalog = inner.catalog.read().clone();
        let old_query = catalog.queries.get(&id).cloned().ok_or_else(|| PlanError::UnknownObject { kind: "query", name: id.clone() })?;
        let (pipeline, new_def) = self.plan_cas(c, sql, &catalog, &id)?;
        let (new_sources, internal) = (pipeline.sources.clone(), pipeline.internal_topics.clone());
        let new_spec = pipeline.finish(&id, OpSpec::Sink(sink_spec(&new_def)));
        let old_spec = match inner.engine.query_spec(&id) {
            Some(s) => s,
            None => self.replan(&old_query)?,
        };
        if let Some(why) = incompatibility(&old_spec, &new_spec, old, &new_def) {
            return Err(refused(&id, &why));
        }
        if let Ok(info) = inner.engine.log().describe_topic(&new_def.topic) {
            super::props::WithProps::parse(&c.props, super::props::CAS_PROPS)?.check_existing_topic(&new_def.topic, &info.config)?;
        }
        if let Some(w) = catalog.queries.values().find(|q| q.id != id && q.sink == old.name && new_def.columns != old.columns) {
            return Err(refused(&id, &format!("query {} also writes {} and its rows would not have the new columns", w.id, old.name)));
        }
        // Internal topics are named after the query: the same ones, still there (checked above).
        for (t, n) in &internal {
            if inner.engine.log().describe_topic(t).is_err() {
                inner.engine.log().create_topic(t, &storage::TopicConfig::new(*n))?;
            }
        }

        // Stop the old plan right after a checkpoint, so that the new one starts exactly where
        // the old one stopped (nothing processed twice, nothing written twice).
        let engine = inner.engine.clone();
        let was_paused = engine.query(&id).is_some_and(|q| q.user_paused);
        // The replacement keeps the guarantee the query was started with.
        let guarantee = engine.processing_guarantee(&id).unwrap_or_else(|| self.guarantee());
        let running = engine.query(&id).is_some();
        if running {
            engine.set_query_paused(&id, true);
            if let Err(e) = engine.checkpoint() {
                engine.set_query_paused(&id, was_paused);
                return Err(e.into());
            }
            engine.stop_query(&id, false)?;
        }
        engine.set_query_paused(&id, was_paused);
        let opts = || StartOptions { persistent: true, offset_reset: OffsetReset::Latest, collect: None, guarantee, positions: None };
        // The new plan becomes the one stored with the state (it was checked to fit above).
        let restore = |engine: &engine::Engine, old_spec: QuerySpec| {
            let _ = engine.store_plan(&old_spec);
            if running {
                let _ = engine.start_query(old_spec, opts());
            }
        };
        if let Err(e) = engine.store_plan(&new_spec).map_err(PlanError::from).and_then(|()| Ok(engine.start_query(new_spec, opts())?)) {
            restore(&engine, old_spec);
            return Err(e);
        }
        if let Err(e) = self.log_command(sql, Some(id.clone())) {
            let _ = engine.stop_query(&id, false);
            restore(&engine, old_spec);
            return Err(e);
        }
        let mut cat = inner.catalog.write();
        cat.sources.insert(c.name.clone(), new_def);
        cat.queries.insert(
            id.clone(),
            QueryDef { sql: sql.to_string(), sources: new_sources, props: self.props.clone(), ..old_query },
        );
        Ok(Output::Message(format!("Created query with ID {id}")))
    }

    /// The plan of a catalog query that is not running (it failed), from its statement.
    pub(crate) fn replan(&self, q: &QueryDef) -> Result<QuerySpec> {
        let st = parse(&q.sql)?.into_iter().next().ok_or_else(|| invalid("empty query statement"))?;
        let crate::ast::Statement::CreateAsSelect(c) = &st.statement else {
            return Err(invalid(format!("query {} is not a CREATE ... AS SELECT", q.id)));
        };
        let catalog = self.eddy.inner.catalog.read().clone();
        let def = catalog.sources.get(&c.name).cloned().ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: c.name.clone() })?;
        let (p, _) = self.plan_cas(c, &q.sql, &catalog, &q.id)?;
        Ok(p.finish(&q.id, OpSpec::Sink(sink_spec(&def))))
    }
}

fn refused(id: &str, why: &str) -> PlanError {
    invalid(format!("cannot replace query {id} in place: {why}; to change it anyway, TERMINATE it, DROP its output and create it again"))
}

/// Columns as `` `NAME` TYPE``, comma-separated.
fn show_columns<'a>(cols: impl Iterator<Item = &'a crate::catalog::Column>) -> String {
    let v: Vec<String> = cols.map(|c| format!("`{}` {}", c.name, crate::types::type_name(&c.data_type))).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// Why the plan `new` cannot carry on with the state of `old`; `None` when it can.
pub(crate) fn incompatibility(old: &QuerySpec, new: &QuerySpec, old_def: &SourceDef, new_def: &SourceDef) -> Option<String> {
    if old_def.topic != new_def.topic {
        return Some(format!("its output topic would change from '{}' to '{}'", old_def.topic, new_def.topic));
    }
    let (ok, nk) = (show_columns(old_def.key_columns()), show_columns(new_def.key_columns()));
    if ok != nk {
        return Some(format!("its key would change from {ok} to {nk}"));
    }
    if old_def.window != new_def.window {
        return Some(format!("its window would change from {} to {}", window_text(old), window_text(new)));
    }
    if old_def.key_format != new_def.key_format || old_def.value_format != new_def.value_format {
        return Some("its key or value format would change".to_string());
    }
    let (ov, nv): (Vec<_>, Vec<_>) = (old_def.value_columns().collect(), new_def.value_columns().collect());
    for (i, o) in ov.iter().enumerate() {
        match nv.get(i) {
            Some(n) if n.name == o.name && n.data_type == o.data_type => {}
            Some(n) => {
                return Some(format!(
                    "column {} would become {}: columns can only be added at the end, not removed, renamed or changed",
                    show_columns(std::iter::once(*o)),
                    show_columns(std::iter::once(*n))
                ))
            }
            None => {
                return Some(format!(
                    "column {} would be removed: columns can only be added at the end, not removed, renamed or changed",
                    show_columns(std::iter::once(*o))
                ))
            }
        }
    }
    if old.subtopologies.len() != new.subtopologies.len() {
        return Some("its repartitioning would change (a different number of stages)".to_string());
    }
    for (od, nd) in old.subtopologies.iter().zip(&new.subtopologies) {
        if let Some(why) = dag_incompatibility(od, nd) {
            return Some(why);
        }
    }
    None
}

/// The window of a plan's aggregation, as text.
fn window_text(q: &QuerySpec) -> String {
    let w = q.subtopologies.iter().flat_map(|d| &d.nodes).find_map(|n| match &n.op {
        OpSpec::Aggregate(a) => a.window,
        _ => None,
    });
    w.map_or_else(|| "none".to_string(), |w| window_name(&w.kind))
}

/// A window as SQL.
fn window_name(k: &engine::spec::WindowKind) -> String {
    use engine::spec::WindowKind;
    match k {
        WindowKind::Tumbling { size_ms } => format!("TUMBLING (SIZE {size_ms} MILLISECONDS)"),
        WindowKind::Hopping { size_ms, advance_ms } => format!("HOPPING (SIZE {size_ms} MILLISECONDS, ADVANCE BY {advance_ms} MILLISECONDS)"),
        WindowKind::Session { gap_ms } => format!("SESSION ({gap_ms} MILLISECONDS)"),
    }
}

/// The sources of a sub-topology: (topic, kind), in order (their checkpointed offsets are kept by
/// position).
fn sources(d: &DagSpec) -> Vec<(String, engine::spec::SourceKind)> {
    d.nodes
        .iter()
        .filter_map(|n| match &n.op {
            OpSpec::Source(s) => Some((s.topic.clone(), s.kind)),
            _ => None,
        })
        .collect()
}

/// Arrow fields of a schema as (name, type), without the internal `_ts`/`_op`.
fn fields(s: &datafusion::arrow::datatypes::SchemaRef) -> Vec<(String, datafusion::arrow::datatypes::DataType)> {
    s.fields().iter().filter(|f| !matches!(f.name().as_str(), "_ts" | "_op")).map(|f| (f.name().clone(), f.data_type().clone())).collect()
}

fn dag_incompatibility(old: &DagSpec, new: &DagSpec) -> Option<String> {
    let (os, ns) = (sources(old), sources(new));
    if os != ns {
        let names = |v: &[(String, engine::spec::SourceKind)]| v.iter().map(|s| s.0.clone()).collect::<Vec<_>>().join(", ");
        return Some(format!("it would read different sources (topics {} instead of {})", names(&ns), names(&os)));
    }
    let stateful = |d: &DagSpec| -> Vec<usize> {
        d.nodes.iter().enumerate().filter(|(_, n)| matches!(n.op, OpSpec::Aggregate(_) | OpSpec::Join(_) | OpSpec::Materialize(_))).map(|(i, _)| i).collect()
    };
    let (ost, nst) = (stateful(old), stateful(new));
    if ost.len() != nst.len() {
        return Some("its aggregations or joins would change, and their state would not match".to_string());
    }
    for (&oi, &ni) in ost.iter().zip(&nst) {
        let (o, n) = (&old.nodes[oi], &new.nodes[ni]);
        let inputs = |d: &DagSpec, node: &engine::spec::NodeSpec| node.inputs.iter().map(|i| fields(&d.nodes[i.0 as usize].schema)).collect::<Vec<_>>();
        let same_inputs = inputs(old, o) == inputs(new, n);
        match (&o.op, &n.op) {
            (OpSpec::Aggregate(a), OpSpec::Aggregate(b)) => {
                let calls = |x: &engine::spec::AggregateSpec| x.calls.iter().map(|c| format!("{}{:?}", c.function.name(), c.args)).collect::<Vec<_>>();
                if a.window.map(|w| w.kind) != b.window.map(|w| w.kind) {
                    let show = |w: Option<engine::spec::WindowDef>| w.map_or_else(|| "none".to_string(), |w| window_name(&w.kind));
                    return Some(format!("its window would change from {} to {}", show(a.window), show(b.window)));
                }
                if a.window != b.window {
                    return Some("its window's GRACE PERIOD or RETENTION would change (windows already closed or expired could open again with part of their state)".to_string());
                }
                let names = |x: &engine::spec::AggregateSpec| x.calls.iter().map(|c| c.function.name().to_uppercase()).collect::<Vec<_>>().join(", ");
                if names(a) != names(b) {
                    return Some(format!("its aggregate functions would change from {} to {}, and their state would not match", names(a), names(b)));
                }
                // The projection feeding an aggregation computes its GROUP BY values and
                // arguments: they must stay the same expressions (filters before it may change).
                let feeding = |d: &DagSpec, node: &engine::spec::NodeSpec| {
                    node.inputs.first().map(|i| &d.nodes[i.0 as usize].op).filter(|op| matches!(op, OpSpec::Project(_))).map(|op| format!("{op:?}"))
                };
                if a.group_columns != b.group_columns || !same_inputs || feeding(old, o) != feeding(new, n) {
                    return Some("the GROUP BY expressions or the aggregate arguments would change, and the aggregation's state would not match".to_string());
                }
                if calls(a) != calls(b) || a.table != b.table {
                    return Some("the arguments of its aggregate functions would change, and their state would not match".to_string());
                }
                if a.emit_final != b.emit_final || a.retract != b.retract {
                    return Some("how its aggregation emits (EMIT FINAL) or reads its input (a table) would change".to_string());
                }
                if a.retract && !same_prefix(old, new, oi, ni) {
                    return Some("it would change what reaches an aggregation over a table (retractions of rows counted under the old filter would be lost)".to_string());
                }
            }
            (OpSpec::Join(a), OpSpec::Join(b)) => {
                let same = a.kind == b.kind && a.join_type == b.join_type && a.left_keys == b.left_keys && a.right_keys == b.right_keys
                    && a.left_primary_key == b.left_primary_key && a.table == b.table;
                if !same || !same_inputs {
                    return Some("its join would change (kind, keys or the columns it keeps), and the join's state would not match".to_string());
                }
            }
            (OpSpec::Materialize(a), OpSpec::Materialize(b)) => {
                if a.key_columns != b.key_columns || a.table != b.table || !same_inputs {
                    return Some("a table it materializes would change, and its state would not match".to_string());
                }
            }
            _ => return Some("its aggregations or joins would change, and their state would not match".to_string()),
        }
    }
    // Repartition topics between stages carry rows in their schema.
    let sinks = |d: &DagSpec| -> Vec<String> {
        let mut out = String::new();
        for n in &d.nodes {
            if let OpSpec::Sink(s) = &n.op {
                if s.internal {
                    let _ = write!(out, "{} {:?} {:?}", s.topic, s.key_fields, s.value_fields);
                }
            }
        }
        vec![out]
    };
    if sinks(old) != sinks(new) {
        return Some("its repartitioning would change (the rows between its stages)".to_string());
    }
    None
}

/// True when the nodes feeding node `oi` of `old` and node `ni` of `new` (everything before them)
/// are the same operators with the same schemas.
fn same_prefix(old: &DagSpec, new: &DagSpec, oi: usize, ni: usize) -> bool {
    oi == ni
        && old.nodes[..oi]
            .iter()
            .zip(&new.nodes[..ni])
            .all(|(a, b)| a.inputs == b.inputs && fields(&a.schema) == fields(&b.schema) && format!("{:?}", a.op) == format!("{:?}", b.op))
}
