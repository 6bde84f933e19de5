//! Plans as data: a query's operator DAG written down as plain serde data, with a format version,
//! so that it can be stored next to the query's state and read back by a later release.
//!
//! Everything but expressions is the spec's own data (the spec's parameter types are serde);
//! expressions are kept as their canonical text and aggregate functions by name and argument
//! columns; node schemas as (name, type) lists. A persistent query's plan is stored under
//! `q/<query id>\0p` (see `runtime/keys.rs`) when it first starts; on every later start the plan
//! the planner produces is checked against it (see [`PlanData::state_incompatibility`]), so that a
//! release never runs an old query's state under a different operator layout, and refuses a plan
//! format it does not know, naming the query. `EXPLAIN <query id>` prints the stored plan.
//!
//! This module imports no operator: it is the contract between releases.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::format::FormatSpec;
use crate::spec::{FilterMode, JoinKindSpec, JoinType, SinkKind, SinkWindow, SourceColumn, SourceKind, SourceWindow, TableFunctionCall, WindowDef};
use crate::types::TableId;

/// The plan format this release writes and reads. Bump it when a change to [`PlanData`] would
/// make an older release misread a newer plan.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// A query's plan as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanData {
    /// [`PLAN_FORMAT_VERSION`] of the release that wrote it.
    pub format_version: u32,
    /// The query id.
    pub query_id: String,
    /// The sub-topologies, in order.
    pub subtopologies: Vec<DagData>,
}

/// One sub-topology: nodes in topological order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagData {
    /// The nodes.
    pub nodes: Vec<NodeData>,
}

/// A column of a node's output or of a format's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldData {
    /// Name.
    pub name: String,
    /// Arrow type, as Arrow prints it.
    pub data_type: String,
}

/// One operator node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeData {
    /// Its index in the sub-topology.
    pub id: u32,
    /// Upstream nodes, in input order.
    pub inputs: Vec<u32>,
    /// What it does.
    pub op: OpData,
    /// Output columns (`_ts`, `_op` included).
    pub schema: Vec<FieldData>,
}

/// An aggregate call: function name and argument columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggCallData {
    /// Function name as registered (`COUNT`, `SUM`, ...).
    pub function: String,
    /// Input columns passed as its arguments.
    pub args: Vec<usize>,
}

/// The operator of a node, with every parameter; expressions as text.
// Each variant's fields are those of the spec it names, documented there.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OpData {
    /// See [`crate::spec::SourceSpec`].
    Source {
        topic: String,
        kind: SourceKind,
        key_format: FormatSpec,
        value_format: FormatSpec,
        key_fields: Vec<FieldData>,
        value_fields: Vec<FieldData>,
        columns: Vec<SourceColumn>,
        window: Option<SourceWindow>,
        internal: bool,
        timestamp: Option<String>,
        error_topic: Option<String>,
        late_topic: Option<String>,
    },
    /// See [`crate::spec::FilterSpec`].
    Filter { predicate: String, mode: FilterMode },
    /// See [`crate::spec::ProjectSpec`].
    Project { exprs: Vec<String>, timestamp: Option<String> },
    /// See [`crate::spec::SinkSpec`].
    Sink {
        topic: String,
        kind: SinkKind,
        key_format: FormatSpec,
        value_format: FormatSpec,
        key_columns: Vec<usize>,
        value_columns: Vec<usize>,
        key_fields: Vec<FieldData>,
        value_fields: Vec<FieldData>,
        window: Option<SinkWindow>,
        append: bool,
        materialize: Option<String>,
        internal: bool,
    },
    /// Rows to a push query's client.
    Collect,
    /// See [`crate::spec::AggregateSpec`].
    Aggregate {
        group_columns: Vec<usize>,
        calls: Vec<AggCallData>,
        window: Option<WindowDef>,
        emit_final: bool,
        retract: bool,
        emit_old: bool,
        table: TableId,
    },
    /// See [`crate::spec::MaterializeSpec`].
    Materialize { key_columns: Vec<usize>, table: TableId },
    /// See [`crate::spec::JoinSpec`].
    Join {
        kind: JoinKindSpec,
        join_type: JoinType,
        left_keys: Vec<usize>,
        right_keys: Vec<usize>,
        left_width: usize,
        right_width: usize,
        left_primary_key: Vec<usize>,
        table: TableId,
    },
    /// See [`crate::spec::ExplodeSpec`].
    Explode { functions: Vec<TableFunctionCall> },
}

impl OpData {
    /// The operator's kind: `Source`, `Filter`, `Project`, `Sink`, `Collect`, `Aggregate`,
    /// `Materialize`, `Join` or `Explode`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            OpData::Source { .. } => "Source",
            OpData::Filter { .. } => "Filter",
            OpData::Project { .. } => "Project",
            OpData::Sink { .. } => "Sink",
            OpData::Collect => "Collect",
            OpData::Aggregate { .. } => "Aggregate",
            OpData::Materialize { .. } => "Materialize",
            OpData::Join { .. } => "Join",
            OpData::Explode { .. } => "Explode",
        }
    }

    /// The topic a source reads or a sink writes, and whether it is internal (a repartition).
    pub fn topic(&self) -> Option<(&str, bool)> {
        match self {
            OpData::Source { topic, internal, .. } | OpData::Sink { topic, internal, .. } => Some((topic, *internal)),
            _ => None,
        }
    }

    /// The state table of a stateful operator (aggregates, materializations, joins).
    pub fn state_table(&self) -> Option<TableId> {
        match self {
            OpData::Aggregate { table, .. } | OpData::Materialize { table, .. } | OpData::Join { table, .. } => Some(*table),
            _ => None,
        }
    }
}

/// Why a stored plan cannot be used by this release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanCheck {
    /// The same plan, or one that differs only where no state is kept.
    Compatible,
    /// Written by a release with a newer plan format.
    UnknownVersion(u32),
    /// The state would not match: why.
    Incompatible(String),
}

impl PlanData {
    /// Checks `self` (a plan stored with a query's state) against `new` (the plan this release
    /// made for the same query).
    pub fn check(&self, new: &PlanData) -> PlanCheck {
        if self.format_version > PLAN_FORMAT_VERSION {
            return PlanCheck::UnknownVersion(self.format_version);
        }
        match self.state_incompatibility(new) {
            Some(why) => PlanCheck::Incompatible(why),
            None => PlanCheck::Compatible,
        }
    }

    /// Why `new` cannot run over the state written under `self`; `None` when it can: the same
    /// sources per sub-topology (offsets are kept by position), the same stateful operators
    /// (aggregations, joins, materializations) with the same parameters and input columns, the
    /// same repartition topics, and sinks writing the same topics with the same keys and formats.
    /// Filters, projections and stateless operators may differ (a fix to a function is not a
    /// change of state).
    pub fn state_incompatibility(&self, new: &PlanData) -> Option<String> {
        if self.subtopologies.len() != new.subtopologies.len() {
            return Some(format!("{} sub-topologies instead of {}", new.subtopologies.len(), self.subtopologies.len()));
        }
        for (i, (a, b)) in self.subtopologies.iter().zip(&new.subtopologies).enumerate() {
            let (sa, sb) = (a.state_view(), b.state_view());
            if sa.len() != sb.len() {
                return Some(format!("sub-topology {i} has {} stateful or source/sink nodes instead of {}", sb.len(), sa.len()));
            }
            for (x, y) in sa.iter().zip(&sb) {
                if x != y {
                    return Some(format!("sub-topology {i}: {} instead of {}", y.0, x.0));
                }
            }
        }
        None
    }
}

impl DagData {
    /// What of the sub-topology its state and offsets depend on, one entry per source, sink and
    /// stateful node: its text and its inputs' columns.
    fn state_view(&self) -> Vec<(String, Vec<Vec<FieldData>>)> {
        let user = |s: &[FieldData]| s.iter().filter(|f| !f.name.starts_with('_')).cloned().collect::<Vec<_>>();
        self.nodes
            .iter()
            .filter_map(|n| {
                let text = match &n.op {
                    OpData::Source { topic, kind, .. } => format!("source {topic} ({kind:?})"),
                    OpData::Sink { topic, kind, key_format, value_format, key_fields, window, materialize, internal, value_fields, .. } => {
                        // A sink's value columns may grow (CREATE OR REPLACE adds columns); the rows of
                        // an internal topic are read back as they are, so they must not change.
                        let values = if *internal { format!(" values {value_fields:?}") } else { String::new() };
                        // A windowed table's retention changes no state: its sink finds the layout
                        // of its rows in the state itself.
                        let window = window.map(|w| (w.start_column, w.end_column, w.session));
                        format!("sink {topic} ({kind:?}, key {key_fields:?} {key_format:?}, value {value_format:?}, window {window:?}, materialize {materialize:?}){values}")
                    }
                    OpData::Aggregate { group_columns, calls, window, emit_final, retract, table, .. } => {
                        format!("aggregate {table:?} group {group_columns:?} calls {calls:?} window {window:?} final {emit_final} retract {retract}")
                    }
                    OpData::Materialize { key_columns, table } => format!("materialize {table:?} key {key_columns:?}"),
                    OpData::Join { kind, join_type, left_keys, right_keys, left_width, right_width, left_primary_key, table } => format!(
                        "join {table:?} {kind:?} {join_type:?} keys {left_keys:?}={right_keys:?} widths {left_width}/{right_width} pk {left_primary_key:?}"
                    ),
                    _ => return None,
                };
                let stateful = matches!(n.op, OpData::Aggregate { .. } | OpData::Materialize { .. } | OpData::Join { .. });
                let inputs = if stateful { n.inputs.iter().map(|&i| user(&self.nodes[i as usize].schema)).collect() } else { Vec::new() };
                Some((text, inputs))
            })
            .collect()
    }
}

impl fmt::Display for PlanData {
    /// The operator DAG as `EXPLAIN` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, dag) in self.subtopologies.iter().enumerate() {
            writeln!(f, "Sub-topology {i}:")?;
            for n in dag.nodes.iter().rev() {
                let inputs: Vec<String> = n.inputs.iter().map(|i| format!("#{i}")).collect();
                let cols: Vec<&str> = n.schema.iter().filter(|f| !f.name.starts_with('_')).map(|f| f.name.as_str()).collect();
                write!(f, "  #{} {}", n.id, n.op)?;
                if !inputs.is_empty() {
                    write!(f, " <- {}", inputs.join(", "))?;
                }
                writeln!(f, "  [{}]", cols.join(", "))?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for OpData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpData::Source { topic, kind, key_format, value_format, timestamp, .. } => write!(
                f,
                "Source topic={topic} kind={kind:?} key={:?} value={:?}{}",
                key_format.kind,
                value_format.kind,
                if timestamp.is_some() { " timestamp=column" } else { "" }
            ),
            OpData::Filter { predicate, .. } => write!(f, "Filter {predicate}"),
            OpData::Project { exprs, .. } => write!(f, "Project {}", exprs.join(", ")),
            OpData::Sink { topic, kind, key_format, value_format, append, materialize, .. } => write!(
                f,
                "Sink topic={topic} kind={kind:?} key={:?} value={:?}{}{}",
                key_format.kind,
                value_format.kind,
                if *append { "" } else { " append=false" },
                materialize.as_ref().map(|m| format!(" materialize={m}")).unwrap_or_default()
            ),
            OpData::Collect => write!(f, "Collect (push query client)"),
            OpData::Aggregate { group_columns, calls, window, emit_final, retract, .. } => {
                let calls: Vec<String> = calls.iter().map(|c| format!("{}{:?}", c.function, c.args)).collect();
                let window = match window {
                    None => String::new(),
                    Some(w) => format!(" window={:?} grace={}ms", w.kind, w.grace_ms),
                };
                write!(
                    f,
                    "Aggregate group={group_columns:?} calls=[{}]{window}{}{}",
                    calls.join(", "),
                    if *emit_final { " emit=final" } else { "" },
                    if *retract { " retract" } else { "" }
                )
            }
            OpData::Materialize { key_columns, .. } => write!(f, "Materialize key={key_columns:?}"),
            OpData::Explode { functions } => {
                let calls: Vec<String> = functions.iter().map(|c| format!("{:?}(#{})", c.function, c.arg)).collect();
                write!(f, "Explode {}", calls.join(", "))
            }
            OpData::Join { kind, join_type, left_keys, right_keys, .. } => {
                write!(f, "Join {kind:?} {join_type:?} left={left_keys:?} right={right_keys:?}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u32, inputs: Vec<u32>, op: OpData, cols: &[&str]) -> NodeData {
        let schema = cols.iter().map(|c| FieldData { name: c.to_string(), data_type: "Int64".into() }).collect();
        NodeData { id, inputs, op, schema }
    }

    fn plan(filter: &str, calls: &[&str]) -> PlanData {
        let source = OpData::Source {
            topic: "t".into(),
            kind: SourceKind::Stream,
            key_format: FormatSpec::json(),
            value_format: FormatSpec::json(),
            key_fields: vec![],
            value_fields: vec![],
            columns: vec![SourceColumn::Value(0)],
            window: None,
            internal: false,
            timestamp: None,
            error_topic: None,
            late_topic: None,
        };
        let agg = OpData::Aggregate {
            group_columns: vec![0],
            calls: calls.iter().map(|c| AggCallData { function: c.to_string(), args: vec![0] }).collect(),
            window: None,
            emit_final: false,
            retract: false,
            emit_old: false,
            table: TableId(0),
        };
        PlanData {
            format_version: PLAN_FORMAT_VERSION,
            query_id: "Q".into(),
            subtopologies: vec![DagData {
                nodes: vec![
                    node(0, vec![], source, &["a", "_ts"]),
                    node(1, vec![0], OpData::Filter { predicate: filter.into(), mode: FilterMode::Stream }, &["a", "_ts"]),
                    node(2, vec![1], agg, &["a", "n"]),
                ],
            }],
        }
    }

    #[test]
    fn filters_may_change_aggregations_may_not() {
        let stored = plan("a@0 > 1", &["COUNT"]);
        assert_eq!(stored.check(&plan("a@0 > 2", &["COUNT"])), PlanCheck::Compatible);
        let PlanCheck::Incompatible(why) = stored.check(&plan("a@0 > 1", &["SUM"])) else { panic!() };
        assert!(why.contains("SUM") && why.contains("COUNT"), "{why}");
        let mut newer = stored.clone();
        newer.format_version = PLAN_FORMAT_VERSION + 1;
        assert_eq!(newer.check(&stored), PlanCheck::UnknownVersion(PLAN_FORMAT_VERSION + 1));
    }

    #[test]
    fn round_trips_as_json() {
        let p = plan("a@0 > 1", &["COUNT"]);
        let back: PlanData = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.to_string(), "Sub-topology 0:\n  #2 Aggregate group=[0] calls=[COUNT[0]] <- #1  [a, n]\n  #1 Filter a@0 > 1 <- #0  [a]\n  #0 Source topic=t kind=Stream key=Json value=Json  [a]\n");
    }
}
