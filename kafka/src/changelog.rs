//! Applying a task's changelog to local state, one epoch at a time (task restore and standby
//! copies share it).
//!
//! A changelog record carries a state key, its value (null: deleted) and the `eddy.epoch` /
//! `eddy.attempt` headers of the epoch that wrote it. On Kafka a `read_committed` reader only
//! sees committed epochs; some Kafka-protocol brokers (nisshi 0.7.0) also show aborted ones. So
//! records are applied per (epoch, attempt) group, and a group is known to have committed when:
//! - a later epoch follows it (an attempt starts epoch E+1 only after E committed); or
//! - it is the last one read, and its input offsets (the offset records in the group) are what
//!   the query's consumer group has committed: the transaction that wrote them also committed
//!   those offsets.
//!
//! A later attempt of the same epoch replaces an earlier one (the earlier was fenced before it
//! committed).

use storage::{KvStore, Offset, StateBatch};

use crate::client::Fetched;
use crate::txn_log::{ATTEMPT_HEADER, EPOCH_HEADER};

/// Records applied per local write when a group is large.
const CHUNK: usize = 10_000;

/// One partition's changelog being applied.
#[derive(Default)]
pub struct Applier {
    /// The (epoch, attempt) of the records in `pending`.
    current: Option<(u64, u64)>,
    pending: StateBatch,
    /// Offset records (key, next offset) of the pending group.
    offsets: Vec<(Vec<u8>, Offset)>,
    /// The changelog offset of the pending group's first record.
    first: Option<Offset>,
    /// Records applied so far.
    pub applied: u64,
}

fn header(f: &Fetched, name: &str) -> Option<u64> {
    f.headers.iter().find(|h| h.key == name).and_then(|h| h.value.as_deref()).and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
}

impl Applier {
    /// Takes the next changelog record; applies the pending group to `state` when the record
    /// shows that it committed. `is_offset_key` tells the task's input-offset records apart.
    pub fn push(&mut self, f: &Fetched, state: &dyn KvStore, is_offset_key: impl Fn(&[u8]) -> bool) -> storage::Result<()> {
        let Some(k) = &f.key else { return Ok(()) };
        let tag = header(f, EPOCH_HEADER).zip(header(f, ATTEMPT_HEADER));
        match (tag, self.current) {
            (Some((e, a)), Some((ce, ca))) if e == ce && a > ca => {
                // A later attempt of the same epoch: the earlier never committed.
                self.pending.clear();
                self.offsets.clear();
                self.current = tag;
            }
            (Some(t), Some(c)) if t != c => {
                self.apply(state)?;
                self.current = tag;
            }
            (Some(_), None) => self.current = tag,
            _ => {}
        }
        if self.pending.is_empty() {
            self.first = Some(f.offset);
        }
        match &f.value {
            Some(v) => {
                self.pending.put(k, v);
                if is_offset_key(k) {
                    if let Ok(b) = <[u8; 8]>::try_from(v.as_slice()) {
                        self.offsets.push((k.clone(), i64::from_be_bytes(b)));
                    }
                }
            }
            None => self.pending.delete(k),
        }
        // Records without epoch headers (none are written so) are applied as they come.
        if self.current.is_none() && self.pending.len() >= CHUNK {
            self.apply(state)?;
        }
        Ok(())
    }

    /// The offset records of the group not applied yet: (state key, next offset).
    pub fn pending_offsets(&self) -> &[(Vec<u8>, Offset)] {
        &self.offsets
    }

    /// The changelog offset of the first record not applied yet: where a reader that stops now
    /// must start again.
    pub fn first_pending(&self) -> Option<Offset> {
        if self.pending.is_empty() {
            None
        } else {
            self.first
        }
    }

    /// True when a group waits for its fate.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Applies the pending group (it committed), with `extra` writes in the same local commit.
    pub fn apply_with(&mut self, state: &dyn KvStore, extra: &StateBatch) -> storage::Result<()> {
        self.applied += self.pending.len() as u64;
        let mut b = std::mem::take(&mut self.pending);
        b.extend(extra.clone());
        if !b.is_empty() {
            state.commit(&b, false)?;
        }
        self.offsets.clear();
        self.first = None;
        Ok(())
    }

    fn apply(&mut self, state: &dyn KvStore) -> storage::Result<()> {
        self.apply_with(state, &StateBatch::default())
    }

    /// Drops the pending group (it did not commit).
    pub fn discard(&mut self) {
        self.pending.clear();
        self.offsets.clear();
        self.current = None;
        self.first = None;
    }
}
