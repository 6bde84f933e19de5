//! Plans stored with their state: a persistent query's plan (as [`PlanData`]) is kept under
//! `q/<query id>\0p` in the state store, so that a later start can tell whether the plan it is
//! given fits the state the query left (see `plan_data.rs` for what must match).
//!
//! On every start of a persistent query that has checkpointed before, the stored plan is read
//! first: a plan format this release does not know, or a plan whose state would not match the one
//! given, refuses the start with an error naming the query, instead of running operators over
//! state they did not write. A compatible plan that differs (a fix to an expression) replaces the
//! stored one. A query without a stored plan (written by a release before plans were stored)
//! gets one.

use serde::Deserialize;
use storage::StateBatch;

use super::keys::{offset_key, plan_key, prefix_end, query_prefix, sink_key};
use super::Engine;
use crate::error::{EngineError, Result};
use crate::plan_data::{PlanCheck, PlanData, PLAN_FORMAT_VERSION};
use crate::spec::QuerySpec;

impl Engine {
    /// The plan stored with a persistent query's state, if any.
    pub fn stored_plan(&self, id: &str) -> Result<Option<PlanData>> {
        let Some(bytes) = self.state.get(&plan_key(id))? else { return Ok(None) };
        read_plan(id, &bytes).map(Some)
    }

    /// Stores `spec` as the plan of its query (CREATE OR REPLACE, after checking that it fits).
    pub fn store_plan(&self, spec: &QuerySpec) -> Result<()> {
        let mut b = StateBatch::default();
        let json = serde_json::to_vec(&spec.to_plan_data()).expect("plans serialize");
        b.put(&plan_key(&spec.id), &json);
        Ok(self.state.commit(&b, true)?)
    }

    /// Refuses to start `spec` over state written under a plan it does not fit; stores the plan
    /// when there is none or it changed compatibly.
    pub(super) fn check_stored_plan(&self, spec: &QuerySpec) -> Result<()> {
        let new = spec.to_plan_data();
        let stored = match self.state.get(&plan_key(&spec.id))? {
            // A query that never checkpointed has no state to protect (a stale plan of a start
            // that failed is replaced).
            Some(bytes) if self.has_offsets(&spec.id)? => Some(read_plan(&spec.id, &bytes)?),
            _ => None,
        };
        match stored.as_ref().map(|s| s.check(&new)) {
            Some(PlanCheck::UnknownVersion(version)) => Err(EngineError::PlanVersion { query: spec.id.clone(), version }),
            Some(PlanCheck::Incompatible(why)) => Err(EngineError::PlanChanged { query: spec.id.clone(), why }),
            Some(PlanCheck::Compatible) if stored.as_ref() == Some(&new) => Ok(()),
            _ => self.store_plan(spec),
        }
    }

    /// The source topics of every sub-topology of a query's stored plan, in node order, read
    /// leniently (only `subtopologies[].nodes[].op.Source.topic`), so that a plan this release
    /// cannot run still tells the cleaner which topics its checkpointed offsets belong to.
    /// `None` without a stored plan.
    pub(super) fn stored_plan_sources(&self, id: &str) -> Result<Option<Vec<Vec<String>>>> {
        let Some(bytes) = self.state.get(&plan_key(id))? else { return Ok(None) };
        let unreadable = |reason: String| EngineError::PlanUnreadable { query: id.to_string(), reason };
        let plan: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
        let subs = plan.get("subtopologies").and_then(|s| s.as_array()).ok_or_else(|| unreadable("no subtopologies".into()))?;
        subs.iter()
            .map(|dag| {
                let nodes = dag.get("nodes").and_then(|n| n.as_array()).ok_or_else(|| unreadable("a sub-topology without nodes".into()))?;
                nodes
                    .iter()
                    .filter_map(|n| n.get("op")?.get("Source"))
                    .map(|src| src.get("topic").and_then(|t| t.as_str()).map(str::to_string).ok_or_else(|| unreadable("a source without a topic".into())))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Forgets the offsets, operator state and stored plan of a persistent query that does not
    /// run (`TERMINATE` of a query refused at start), and the recorded end offsets of `outputs`
    /// unless a running persistent query writes them too (as [`Engine::stop_query`] does for a
    /// running one). Until then the cleaner keeps the input it has not read.
    pub fn forget_query(&self, id: &str, outputs: &[String]) -> Result<()> {
        let prefix = query_prefix(id);
        let mut b = StateBatch::default();
        b.delete_range(&prefix, &prefix_end(&prefix));
        let written: Vec<String> =
            self.queries.lock().values().filter(|o| o.shared.persistent).flat_map(|o| o.spec.output_topics()).collect();
        for t in outputs.iter().filter(|t| !written.contains(t)) {
            let to = sink_key(t, u32::MAX);
            b.delete_range(&sink_key(t, 0), &to);
            b.delete(&to);
        }
        Ok(self.state.commit(&b, true)?)
    }

    /// Whether a query has checkpointed source offsets (so state to resume).
    pub(super) fn has_offsets(&self, id: &str) -> Result<bool> {
        let from = offset_key(id, 0, 0, 0);
        let mut to = query_prefix(id);
        to.push(b'o' + 1);
        Ok(self.state.scan(&from, &to)?.next().is_some())
    }
}

/// Parses a stored plan; its format version first, so that a newer format is named even when its
/// shape is unknown here.
fn read_plan(id: &str, bytes: &[u8]) -> Result<PlanData> {
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let unreadable = |e: serde_json::Error| EngineError::PlanUnreadable { query: id.to_string(), reason: e.to_string() };
    let v: Version = serde_json::from_slice(bytes).map_err(unreadable)?;
    if v.format_version > PLAN_FORMAT_VERSION {
        return Err(EngineError::PlanVersion { query: id.to_string(), version: v.format_version });
    }
    serde_json::from_slice(bytes).map_err(unreadable)
}
