//! Replaying the command log on open: every accepted statement, in order, rebuilds the catalog;
//! then the persistent queries start again from their checkpoints.
//!
//! A record that cannot be read (no value, not a command) or whose statement cannot be replayed
//! stops the start with an error naming its offset and showing the record, instead of dropping
//! what it defined without a word: a query missing from the catalog would never run again and its
//! state would be orphaned. [`OpenOptions::skip_damaged_commands`] (`eddy --skip-damaged-commands`)
//! starts without such records; each one skipped is reported in [`Eddy::startup_notes`].

use crate::catalog::{Command, COMMAND_TOPIC};
use crate::error::{PlanError, Result};
use crate::parser::{parse, Variables};

use super::{Eddy, Session};

/// How to open a data directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Start without the command-log records that cannot be read or replayed, and without the
    /// persistent queries that cannot start, reporting each in [`Eddy::startup_notes`], instead
    /// of refusing to start.
    pub skip_damaged_commands: bool,
}

/// At most this much of a damaged record is shown.
const PREVIEW: usize = 200;

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(PREVIEW).collect();
    if text.chars().count() > PREVIEW {
        out.push_str("...");
    }
    out
}

impl Eddy {
    /// Rebuilds the catalog from the command log, then starts the persistent queries.
    pub(super) fn replay(&self, options: OpenOptions) -> Result<()> {
        let log = self.inner.engine.log().clone();
        let mut offset = 0;
        let mut commands = Vec::new();
        // Read up to the end offset, not to the first empty read: a log that is polled (Kafka)
        // may answer empty before its first fetch arrives.
        let end = log.describe_topic(COMMAND_TOPIC)?.partitions[0].end_offset;
        while offset < end {
            let batch = log.read(COMMAND_TOPIC, 0, offset, 1 << 20)?;
            if batch.is_empty() {
                offset = offset.max(batch.next_offset);
                continue;
            }
            for r in batch.iter() {
                let decoded = match r.value {
                    None => Err(("has no value".to_string(), "null".to_string())),
                    Some(v) => serde_json::from_slice::<Command>(v)
                        .map_err(|e| (format!("cannot be decoded ({e})"), preview(v))),
                };
                match decoded {
                    Ok(c) => commands.push((r.offset, c)),
                    Err((reason, record)) => self.damaged(options, r.offset, reason, record)?,
                }
            }
            offset = batch.next_offset;
        }
        self.inner.commands_applied.store(offset, std::sync::atomic::Ordering::Release);
        for (offset, c) in commands {
            let mut s = Session { eddy: self.clone(), props: c.props.clone(), replaying: true, vars: Variables::default() };
            let replayed = parse(&c.sql).and_then(|stmts| {
                for st in stmts {
                    s.replay_statement(&st, c.query_id.as_deref())?;
                }
                Ok(())
            });
            if let Err(e) = replayed {
                let reason = format!("holds a statement that cannot be replayed ({})", engine::error_chain(&e));
                self.damaged(options, offset, reason, preview(c.sql.as_bytes()))?;
            }
        }
        // Start every persistent query still defined.
        let queries: Vec<_> = self.inner.catalog.read().queries.values().cloned().collect();
        for q in queries {
            let s = Session { eddy: self.clone(), props: q.props.clone(), replaying: true, vars: Variables::default() };
            if let Err(e) = s.start_persistent(&q) {
                if !options.skip_damaged_commands {
                    return Err(PlanError::QueryStart { query: q.id.clone(), source: Box::new(e) });
                }
                let why = engine::error_chain(&e);
                self.inner.startup_notes.lock().push(format!(
                    "startup: persistent query \"{}\" was not started ({why}); its state is kept: TERMINATE it to drop it",
                    q.id
                ));
                self.inner.not_started.lock().insert(q.id.clone(), why);
            }
        }
        Ok(())
    }

    /// A record that cannot be replayed: an error, or with `skip_damaged_commands` a note.
    fn damaged(&self, options: OpenOptions, offset: i64, reason: String, record: String) -> Result<()> {
        if !options.skip_damaged_commands {
            return Err(PlanError::DamagedCommand { offset, reason, record });
        }
        self.inner.startup_notes.lock().push(format!(
            "startup: skipped record {offset} of the command log (topic \"{COMMAND_TOPIC}\"), which {reason}: {record}"
        ));
        Ok(())
    }
}
