//! The EXTENDED variants of SHOW and DESCRIBE: `SHOW STREAMS|TABLES EXTENDED` and `DESCRIBE
//! STREAMS|TABLES EXTENDED` describe every source as `DESCRIBE EXTENDED` does (one row per
//! property or column, with the source's name); `SHOW QUERIES EXTENDED` adds each query's
//! sources, counters and tasks to the plain listing.

use super::output::RowSet;
use super::show::string_rows;
use super::{Output, Session};
use crate::ast::SourceType;
use crate::error::Result;

impl Session {
    /// Every stream (or table) described as DESCRIBE EXTENDED describes it.
    pub(crate) fn sources_extended(&mut self, what: SourceType) -> Result<RowSet> {
        let names: Vec<String> =
            self.eddy.inner.catalog.read().sources.values().filter(|s| s.source_type == what).map(|s| s.name.clone()).collect();
        let mut rows = Vec::new();
        for name in names {
            let Output::Rows(rs) = self.describe(&name, true)? else { continue };
            for b in &rs.batches {
                let (f, t) = (b.column(0), b.column(1));
                for r in 0..b.num_rows() {
                    let cell = |a: &datafusion::arrow::array::ArrayRef| super::render::cell_text(a, r).unwrap_or_default();
                    rows.push(vec![name.clone(), cell(f), cell(t)]);
                }
            }
        }
        Ok(string_rows(&["Name", "Field", "Value"], rows))
    }

    /// SHOW QUERIES EXTENDED: the plain columns plus sources, counters and tasks.
    pub(crate) fn queries_extended(&self) -> RowSet {
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let mut rows = Vec::new();
        for info in inner.engine.queries() {
            let def = catalog.queries.get(&info.id);
            let state = super::show::query_status(&info);
            rows.push(vec![
                info.id.clone(),
                if info.persistent { "PERSISTENT" } else { "PUSH" }.to_string(),
                state,
                def.map(|d| d.sources.join(", ")).unwrap_or_else(|| info.source_topics.join(", ")),
                def.map(|d| d.sink.clone()).unwrap_or_default(),
                info.sink_topics.join(", "),
                info.records_in.to_string(),
                info.records_out.to_string(),
                info.errors.to_string(),
                info.late_records.to_string(),
                // Over Kafka: which instance runs which task, with its lag per input partition.
                match inner.engine.instance_id() {
                    Some(_) => super::show::task_summary(&inner.engine, &info),
                    None => info.tasks.to_string(),
                },
                def.map(|d| d.sql.clone()).unwrap_or_default(),
            ]);
        }
        for (id, why, def) in self.not_started(&catalog) {
            let zero = || "0".to_string();
            rows.push(vec![
                id,
                "PERSISTENT".into(),
                format!("NOT STARTED: {why}"),
                def.sources.join(", "),
                def.sink,
                def.sink_topic,
                zero(),
                zero(),
                zero(),
                zero(),
                zero(),
                def.sql,
            ]);
        }
        string_rows(
            &[
                "Query ID", "Query Type", "Status", "Sources", "Sink Name", "Sink Kafka Topics", "Records In", "Records Out",
                "Errors", "Late Records", "Tasks", "Query String",
            ],
            rows,
        )
    }
}
