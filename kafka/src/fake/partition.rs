//! One partition of a fake topic: a log of entries, each taking one offset, as in Kafka:
//! records (plain or of a transaction) and the commit and abort markers of transactions.
//!
//! What a `read_committed` reader sees is computed from the log and the outcome of each
//! transaction: it reads up to the last stable offset (the first offset of the oldest
//! transaction still open on the partition, or the log end), skips markers and the records of
//! aborted transactions, and its position moves past what it skipped.

use std::collections::{BTreeMap, HashMap};

use storage::{Header, Offset};

use crate::client::{Fetched, Tp};

/// A transaction's number (unique in the cluster, one per transaction ever opened).
pub(crate) type TxnNo = u64;

/// How a transaction ended, as far as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Still open: its records are held back at the last stable offset.
    Open,
    /// Committed: its records are visible to `read_committed` readers.
    Committed,
    /// Aborted: its records are never delivered to `read_committed` readers.
    Aborted,
}

/// What one offset of a partition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A record.
    Record {
        /// Key bytes.
        key: Option<Vec<u8>>,
        /// Value bytes.
        value: Option<Vec<u8>>,
        /// Headers.
        headers: Vec<Header>,
    },
    /// A transaction marker (a control record): commit or abort.
    Marker {
        /// `true` for a commit marker.
        commit: bool,
    },
}

/// One offset of a partition as the broker stores it (see [`super::FakeCluster::log_entries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The offset.
    pub offset: Offset,
    /// Timestamp in ms (a marker's is the cluster clock's when it was written).
    pub timestamp: i64,
    /// The producer id that wrote it.
    pub producer_id: u64,
    /// The transaction it belongs to (`None`: a plain write) and that transaction's outcome.
    pub txn: Option<TxnOutcome>,
    /// Record or marker.
    pub kind: EntryKind,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub timestamp: i64,
    pub producer_id: u64,
    pub txn: Option<TxnNo>,
    pub kind: EntryKind,
}

/// A partition's log.
#[derive(Debug, Default)]
pub(crate) struct PartitionLog {
    /// The log start offset (records before it were deleted).
    pub start: Offset,
    /// `entries[i]` is at offset `start + i`.
    pub entries: Vec<Entry>,
    /// Transactions open on this partition, by number, with their first offset here.
    pub open: BTreeMap<TxnNo, Offset>,
}

impl PartitionLog {
    /// The log end offset (the high watermark: one broker, `acks=all`).
    pub fn end(&self) -> Offset {
        self.start + self.entries.len() as Offset
    }

    /// The last stable offset.
    pub fn lso(&self) -> Offset {
        self.open.values().copied().min().unwrap_or_else(|| self.end())
    }

    /// Appends an entry; its offset.
    pub fn push(&mut self, e: Entry) -> Offset {
        let o = self.end();
        if let Some(t) = e.txn {
            if !matches!(e.kind, EntryKind::Marker { .. }) {
                self.open.entry(t).or_insert(o);
            }
        }
        self.entries.push(e);
        o
    }

    /// Writes the marker that ends transaction `t` on this partition.
    pub fn end_txn(&mut self, t: TxnNo, producer_id: u64, commit: bool, now_ms: i64) -> Offset {
        self.open.remove(&t);
        self.push(Entry { timestamp: now_ms, producer_id, txn: Some(t), kind: EntryKind::Marker { commit } })
    }

    /// Drops the records before `offset` (Kafka's DeleteRecords).
    pub fn delete_before(&mut self, offset: Offset) {
        let offset = offset.min(self.end());
        if offset > self.start {
            self.entries.drain(..(offset - self.start) as usize);
            self.start = offset;
        }
    }

    fn at(&self, o: Offset) -> &Entry {
        &self.entries[(o - self.start) as usize]
    }

    /// What a `read_committed` reader at `from` fetches: at most `max` records below the last
    /// stable offset, and its position afterwards (past the markers and aborted records it
    /// skipped). `from` must lie in `[start, end]`.
    pub fn read_committed(&self, tp: &Tp, from: Offset, max: usize, outcomes: &HashMap<TxnNo, TxnOutcome>) -> (Vec<Fetched>, Offset) {
        let lso = self.lso();
        let mut out = Vec::new();
        let mut pos = from;
        while pos < lso && out.len() < max {
            let e = self.at(pos);
            let visible = match (&e.kind, e.txn) {
                (EntryKind::Marker { .. }, _) => false,
                (_, None) => true,
                (_, Some(t)) => outcomes.get(&t).copied() == Some(TxnOutcome::Committed),
            };
            if visible {
                if let EntryKind::Record { key, value, headers } = &e.kind {
                    out.push(Fetched {
                        tp: tp.clone(),
                        offset: pos,
                        timestamp: e.timestamp,
                        key: key.clone(),
                        value: value.clone(),
                        headers: headers.clone(),
                    });
                }
            }
            pos += 1;
        }
        (out, pos)
    }

    /// The first offset whose entry has a timestamp at or after `ts` (Kafka's ListOffsets by
    /// time: markers and aborted records count; an answer at or past the last stable offset is
    /// none yet).
    pub fn offset_for_timestamp(&self, ts: i64) -> Option<Offset> {
        let lso = self.lso();
        (self.start..lso).find(|&o| self.at(o).timestamp >= ts)
    }

    /// The stored entries with their transactions' outcomes.
    pub fn entries(&self, outcomes: &HashMap<TxnNo, TxnOutcome>) -> Vec<LogEntry> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| LogEntry {
                offset: self.start + i as Offset,
                timestamp: e.timestamp,
                producer_id: e.producer_id,
                txn: e.txn.map(|t| outcomes.get(&t).copied().unwrap_or(TxnOutcome::Open)),
                kind: e.kind.clone(),
            })
            .collect()
    }
}
