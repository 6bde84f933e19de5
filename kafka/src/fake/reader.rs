//! [`FakeReader`]: the fake's assign-only `read_committed` consumer. It reads each assigned
//! partition from its position up to the last stable offset, skips transaction markers and the
//! records of aborted transactions, and moves its position past what it skipped. A position
//! outside the log (before its start, after its end) is reset to the log start, as librdkafka's
//! `auto.offset.reset=earliest` does on OFFSET_OUT_OF_RANGE.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::Offset;

use super::fault::Op;
use super::state::State;
use super::{before, finish, Broker, Host};
use crate::client::{Fetched, PartitionReader, Tp};
use crate::error::Result;

/// An assign-only reader of the fake cluster.
#[derive(Debug)]
pub struct FakeReader {
    broker: Arc<Broker>,
    host: Arc<Host>,
    /// Assigned partitions with their positions, in assignment order.
    assigned: Vec<(Tp, Offset)>,
}

/// Fetches from `parts` (positions updated) up to `max` records in all; whether a position
/// moved. An unknown partition fails the fetch when nothing was read.
pub(crate) fn fetch(st: &State, parts: &mut [(Tp, Offset)], max: usize, out: &mut Vec<Fetched>) -> Result<bool> {
    let mut moved = false;
    for (tp, pos) in parts.iter_mut() {
        if out.len() >= max {
            break;
        }
        let p = match st.partition(tp, &format!("reading from Kafka topic \"{}\"", tp.topic)) {
            Ok(p) => p,
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => continue,
        };
        if *pos < p.start || *pos > p.end() {
            *pos = p.start;
            moved = true;
        }
        let (records, next) = p.read_committed(tp, *pos, max - out.len(), &st.outcomes);
        moved |= next != *pos;
        *pos = next;
        out.extend(records);
    }
    Ok(moved)
}

impl FakeReader {
    pub(crate) fn new(broker: Arc<Broker>, host: Arc<Host>) -> Self {
        FakeReader { broker, host, assigned: Vec::new() }
    }

    fn scope(&self) -> String {
        self.assigned.first().map(|(tp, _)| tp.topic.clone()).unwrap_or_default()
    }
}

impl PartitionReader for FakeReader {
    fn assign(&mut self, parts: &[(Tp, Offset)]) -> Result<()> {
        let scope = parts.first().map(|(tp, _)| tp.topic.clone()).unwrap_or_default();
        let (st, fault) = self.broker.enter(&self.host, Op::ReaderAssign, &scope)?;
        drop(st);
        if let Some(f) = before(fault) {
            return Err(f.error(Op::ReaderAssign, &scope));
        }
        self.assigned = parts.to_vec();
        finish(&self.host, fault, Op::ReaderAssign, &scope, ())
    }

    fn poll(&mut self, timeout: Duration, max_records: usize) -> Result<Vec<Fetched>> {
        let scope = self.scope();
        let (mut st, fault) = self.broker.enter(&self.host, Op::ReaderPoll, &scope)?;
        if let Some(f) = fault {
            // A consumer never loses what it fetched: every fault fails the poll before it reads.
            if f.kills() {
                self.host.kill();
            }
            return Err(f.error(Op::ReaderPoll, &scope));
        }
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let moved = fetch(&st, &mut self.assigned, max_records, &mut out)?;
            if !out.is_empty() || moved || !self.broker.waits() || !self.broker.wait_change(&mut st, deadline) {
                break;
            }
        }
        Ok(out)
    }

    fn position(&self, tp: &Tp) -> Result<Option<Offset>> {
        let (st, fault) = self.broker.enter(&self.host, Op::ReaderPosition, &tp.topic)?;
        drop(st);
        if let Some(f) = before(fault) {
            return Err(f.error(Op::ReaderPosition, &tp.topic));
        }
        let pos = self.assigned.iter().find(|(t, _)| t == tp).map(|(_, o)| *o);
        finish(&self.host, fault, Op::ReaderPosition, &tp.topic, pos)
    }
}
