//! Session statements that change no catalog object: `SET`/`UNSET` (checked as ksqlDB checks
//! them), `DEFINE`/`UNDEFINE`/`SHOW VARIABLES`, and `ASSERT TOPIC`/`ASSERT SCHEMA`.

use std::time::{Duration, Instant};

use super::output::RowSet;
use super::settings;
use super::show::string_rows;
use super::{Output, Session, CHECKPOINT_INTERVAL, OFFSET_RESET};
use crate::ast::{PropValue, Props};
use crate::error::{invalid, PlanError, Result};

/// How long an ASSERT waits for its condition without a TIMEOUT clause (ksqlDB's
/// `ksql.assert.topic.default.timeout.ms`).
const ASSERT_TIMEOUT: Duration = Duration::from_millis(1000);

impl Session {
    /// The value of a constant expression as type `to`, evaluated as INSERT VALUES evaluates
    /// its values (one row); for test runners' assertions.
    pub fn evaluate_as(&self, e: &datafusion::sql::sqlparser::ast::Expr, to: &datafusion::arrow::datatypes::DataType) -> Result<datafusion::arrow::array::ArrayRef> {
        use datafusion::arrow::datatypes::{DataType, Schema};
        use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
        let inner = self.eddy.inner.clone();
        let catalog = inner.catalog.read().clone();
        let scope = crate::binder::Scope::default();
        let empty = Schema::empty();
        let binder = crate::binder::Binder::new(&scope, &empty, &catalog.types, &inner.functions)?;
        let t = binder.bind(e)?;
        let t = if crate::binder::coerce::can_widen(&t.dt, to) {
            t.cast_to(to)
        } else if t.dt == DataType::Utf8 || matches!(to, DataType::Utf8) {
            binder.cast(t, to)?
        } else {
            crate::binder::lists::coerce_to(&binder, t, to)?
        };
        let phys = binder.physical(&t)?;
        let one = RecordBatch::try_new_with_options(std::sync::Arc::new(Schema::empty()), vec![], &RecordBatchOptions::new().with_row_count(Some(1)))?;
        engine::expr::eval(&phys, &one).map_err(|err| invalid(format!("cannot evaluate {e}: {err}")))
    }

    /// `SET 'name' = 'value'`.
    pub(crate) fn set(&mut self, name: &str, value: &str) -> Result<Output> {
        let note = settings::check(name)?;
        let canon = settings::canonical_name(name);
        if canon == OFFSET_RESET && !matches!(value.to_lowercase().as_str(), "earliest" | "latest") {
            return Err(PlanError::Invalid(format!(
                "invalid value '{value}' for property '{name}': expected 'earliest' or 'latest'"
            )));
        }
        if canon == CHECKPOINT_INTERVAL {
            let ms = value.trim().parse::<u64>().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                PlanError::Invalid(format!(
                    "invalid value '{value}' for property '{CHECKPOINT_INTERVAL}': expected a positive number of milliseconds"
                ))
            })?;
            self.eddy.engine().set_checkpoint_interval(Duration::from_millis(ms));
        }
        self.props.insert(canon, value.to_string());
        let mut msg = format!("Successfully changed local property '{name}' to '{value}'.");
        if let Some(note) = note {
            msg.push_str(&format!("\nNote: {note}."));
        }
        Ok(Output::Message(msg))
    }

    /// `UNSET 'name'`.
    pub(crate) fn unset(&mut self, name: &str) -> Result<Output> {
        let canon = settings::canonical_name(name);
        if self.props.remove(&canon).is_none() && self.props.remove(name).is_none() {
            return Err(PlanError::Invalid(format!("property '{name}' is not set")));
        }
        Ok(Output::Message(format!("Successfully unset local property '{name}'.")))
    }

    /// `DEFINE name = 'value'`.
    pub(crate) fn define(&mut self, name: &str, value: &str) -> Output {
        self.vars.define(name, value);
        Output::Message(String::new())
    }

    /// `UNDEFINE name`: ksqlDB warns, and succeeds, for a name that is not defined.
    pub(crate) fn undefine(&mut self, name: &str) -> Output {
        if self.vars.undefine(name) {
            Output::Message(String::new())
        } else {
            Output::Message(format!("Variable '{name}' is not defined"))
        }
    }

    /// `SHOW VARIABLES`.
    pub(crate) fn show_variables(&self) -> RowSet {
        let rows = self.vars.iter().map(|(n, v)| vec![n.to_string(), v.to_string()]).collect();
        string_rows(&["Variable Name", "Value"], rows)
    }

    /// `ASSERT [NOT EXISTS] TOPIC name [WITH (PARTITIONS=n, REPLICAS=n)] [TIMEOUT ...]`.
    pub(crate) fn assert_topic(&self, topic: &str, exists: bool, props: &Props, timeout: Option<Duration>) -> Result<Output> {
        let mut want_partitions = None;
        for (name, v) in props {
            match name.as_str() {
                "PARTITIONS" => {
                    let n: u32 = match v {
                        PropValue::Number(n) | PropValue::String(n) => n.parse().ok(),
                        PropValue::Bool(_) => None,
                    }
                    .ok_or_else(|| invalid(format!("PARTITIONS must be a number, got {}", v.text())))?;
                    want_partitions = Some(n);
                }
                // The embedded log keeps one copy: every replication factor is met by one.
                "REPLICAS" => {}
                other => return Err(invalid(format!("Cannot assert unknown topic property: {other}"))),
            }
        }
        let log = self.eddy.inner.engine.log().clone();
        let deadline = Instant::now() + timeout.unwrap_or(ASSERT_TIMEOUT);
        loop {
            let found = log.describe_topic(topic).ok();
            let failure = match (&found, exists) {
                (Some(info), true) => match want_partitions {
                    Some(p) if p != info.config.partitions => Some(format!(
                        "Mismatched configuration for topic {topic}: For config partitions, expected {p} got {}",
                        info.config.partitions
                    )),
                    _ => None,
                },
                (None, true) => Some(format!("Topic {topic} does not exist")),
                (Some(_), false) => Some(format!("Topic {topic} exists")),
                (None, false) => None,
            };
            match failure {
                None => {
                    let what = if exists { "exists" } else { "does not exist" };
                    return Ok(Output::Message(format!("Topic {topic} {what}.")));
                }
                Some(f) if Instant::now() >= deadline => return Err(PlanError::Invalid(f)),
                Some(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// `ASSERT [NOT EXISTS] SCHEMA ...`: Eddy has no schema registry yet.
    pub(crate) fn assert_schema(&self) -> Result<Output> {
        Err(PlanError::Unsupported {
            feature: "ASSERT SCHEMA (Eddy has no schema registry yet; schema-registry formats are not supported either)".into(),
        })
    }
}
