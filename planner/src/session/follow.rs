//! Following the command log written by other instances of the same service (Eddy over Kafka,
//! several `eddy server`s with one service id): every instance applies every accepted statement,
//! in the order of the command topic, so that all run the same persistent queries.
//!
//! An instance applies its own statements when it runs them and records the offsets they got in
//! the command topic; the follower applies the others' as they appear (their catalog effects, as
//! a replay does), then starts the persistent queries the catalog has and the engine does not run,
//! and stops those it runs and the catalog no longer has (a `TERMINATE` or `DROP` elsewhere).
//! The embedded log has one writer, so nothing follows it.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Eddy, Session, Variables};
use crate::catalog::{Command, COMMAND_TOPIC};
use crate::error::Result;
use crate::parser::parse;

/// How often the follower looks for new commands.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

impl Eddy {
    /// Starts the follower when the command log is one that others append to too (Kafka).
    pub(super) fn follow_commands(&self) {
        if self.inner.engine.log().notifies_appends() {
            return;
        }
        let weak = std::sync::Arc::downgrade(&self.inner);
        let _ = std::thread::Builder::new().name("eddy-commands".into()).spawn(move || loop {
            std::thread::sleep(FOLLOW_EVERY);
            let Some(inner) = weak.upgrade() else { return };
            if inner.engine.is_closing() {
                return;
            }
            let eddy = Eddy { inner };
            if let Err(e) = eddy.apply_new_commands() {
                eprintln!("eddy: cannot apply the commands of other instances: {}", engine::error_chain(&e));
            }
        });
    }

    /// Applies the commands appended by other instances since the last look; returns how many.
    pub fn apply_new_commands(&self) -> Result<usize> {
        let log = self.inner.engine.log().clone();
        let end = log.describe_topic(COMMAND_TOPIC)?.partitions[0].end_offset;
        let mut offset = self.inner.commands_applied.load(Ordering::Acquire);
        let mut applied = 0;
        while offset < end {
            let batch = log.read(COMMAND_TOPIC, 0, offset, 1 << 20)?;
            for r in batch.iter() {
                // Our own statements were applied when they ran; the lock waits for a statement
                // that is appending right now to record its offset.
                let own = {
                    let _ddl = self.inner.ddl.lock();
                    self.inner.own_commands.lock().remove(&r.offset)
                };
                if own {
                    continue;
                }
                let Some(c) = r.value.and_then(|v| serde_json::from_slice::<Command>(v).ok()) else { continue };
                let mut s = Session { eddy: self.clone(), props: c.props.clone(), replaying: true, vars: Variables::default() };
                for st in parse(&c.sql)? {
                    s.replay_statement(&st, c.query_id.as_deref())?;
                }
                applied += 1;
            }
            offset = offset.max(batch.next_offset);
            self.inner.commands_applied.store(offset, Ordering::Release);
        }
        if applied > 0 {
            self.reconcile_queries()?;
        }
        Ok(applied)
    }

    /// Starts the catalog's persistent queries the engine does not run; stops (forgetting their
    /// state) the persistent queries the engine runs and the catalog no longer has.
    fn reconcile_queries(&self) -> Result<()> {
        let engine = &self.inner.engine;
        let defined: Vec<_> = self.inner.catalog.read().queries.values().cloned().collect();
        let ids: BTreeSet<String> = defined.iter().map(|q| q.id.clone()).collect();
        for q in engine.queries().into_iter().filter(|q| q.persistent && !ids.contains(&q.id)) {
            let _ = engine.stop_query(&q.id, true);
        }
        for q in defined {
            if engine.query(&q.id).is_none() {
                let s = Session { eddy: self.clone(), props: q.props.clone(), replaying: true, vars: Variables::default() };
                s.start_persistent(&q)?;
            }
        }
        Ok(())
    }
}
