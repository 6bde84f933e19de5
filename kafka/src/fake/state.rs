//! The fake broker's data: topics and their partition logs, the transaction coordinator's
//! state per transactional id, the outcome of every transaction, and the consumer groups. One
//! lock guards all of it (see [`super::Broker`]); every client call first applies the timeouts
//! that fell due on the manual clock ([`State::tick`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use storage::{Offset, RecordIn};

use super::coordinator::Group;
use super::fault::Faults;
use super::partition::{Entry, EntryKind, PartitionLog, TxnNo, TxnOutcome};
use crate::client::Tp;
use crate::error::{KafkaError, Result};

/// Kafka's `transaction.max.timeout.ms` (broker default): longer transaction timeouts are refused.
pub const TRANSACTION_MAX_TIMEOUT_MS: i64 = 900_000;
/// `transaction.timeout.ms` when a producer does not set one (librdkafka's default).
pub const DEFAULT_TRANSACTION_TIMEOUT_MS: i64 = 60_000;
/// Kafka's `max.message.bytes` (topic default): larger records are refused.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

/// A topic.
#[derive(Debug)]
pub(crate) struct Topic {
    pub partitions: Vec<PartitionLog>,
    /// Configuration as created (defaults are added when described).
    pub config: BTreeMap<String, String>,
}

impl Topic {
    pub fn max_message_bytes(&self) -> usize {
        self.config.get("max.message.bytes").and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

/// The transaction coordinator's state of one transactional id.
#[derive(Debug)]
pub(crate) struct TxnIdState {
    pub producer_id: u64,
    /// The current producer epoch: producers with an older one are fenced.
    pub epoch: i16,
    pub timeout_ms: i64,
    pub open: Option<OpenTxn>,
}

/// A transaction the coordinator knows is open (it starts with the first partition or offsets
/// added to it, as in Kafka, not at `begin_transaction`).
#[derive(Debug)]
pub(crate) struct OpenTxn {
    pub no: TxnNo,
    pub partitions: BTreeSet<Tp>,
    /// Offsets sent to the transaction, per group.
    pub offsets: BTreeMap<String, BTreeMap<Tp, Offset>>,
    /// The coordinator aborts the transaction at this time (`transaction.timeout.ms`).
    pub deadline_ms: i64,
}

/// Everything the broker holds.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub topics: BTreeMap<String, Topic>,
    pub txn_ids: HashMap<String, TxnIdState>,
    pub outcomes: HashMap<TxnNo, TxnOutcome>,
    pub groups: BTreeMap<String, Group>,
    pub faults: Faults,
    next_producer_id: u64,
    next_txn: TxnNo,
    next_member: u64,
    /// Bumped by every change clients could wait for.
    pub version: u64,
}

/// The error librdkafka gives for a topic or partition the broker does not have.
pub(crate) fn unknown_partition(operation: &str) -> KafkaError {
    KafkaError::other(operation, "unknown topic or partition")
}

impl State {
    /// Applies what fell due by `now`: transactions past their timeout are aborted (and their
    /// producers fenced, as Kafka bumps the epoch), group members whose session timed out or
    /// who stopped polling are removed, rebalances past their timeout complete without the
    /// members that did not rejoin.
    pub fn tick(&mut self, now: i64) {
        let due: Vec<String> =
            self.txn_ids.iter().filter(|(_, s)| s.open.as_ref().is_some_and(|t| t.deadline_ms <= now)).map(|(k, _)| k.clone()).collect();
        for tid in due {
            self.end_txn(&tid, false, now);
            if let Some(s) = self.txn_ids.get_mut(&tid) {
                s.epoch = s.epoch.saturating_add(1);
            }
        }
        let State { groups, topics, version, .. } = self;
        for g in groups.values_mut() {
            if g.tick(now, topics) {
                *version += 1;
            }
        }
    }

    pub fn new_producer_id(&mut self) -> u64 {
        self.next_producer_id += 1;
        1000 + self.next_producer_id
    }

    pub fn new_member_id(&mut self) -> String {
        self.next_member += 1;
        format!("eddy-00000000-0000-4000-8000-{:012x}", self.next_member)
    }

    /// Kafka's InitProducerId for `tid`: aborts its open transaction, bumps the epoch (fencing
    /// every producer with an older one); returns (producer id, epoch).
    pub fn init_producer_id(&mut self, tid: &str, timeout_ms: i64, now: i64) -> (u64, i16) {
        if self.txn_ids.get(tid).is_some_and(|s| s.open.is_some()) {
            self.end_txn(tid, false, now);
        }
        if !self.txn_ids.contains_key(tid) {
            let pid = self.new_producer_id();
            self.txn_ids.insert(tid.to_string(), TxnIdState { producer_id: pid, epoch: -1, timeout_ms, open: None });
        }
        let s = self.txn_ids.get_mut(tid).expect("inserted");
        s.epoch = s.epoch.saturating_add(1);
        s.timeout_ms = timeout_ms;
        (s.producer_id, s.epoch)
    }

    /// The coordinator's open transaction of `tid`, opened now if there is none.
    pub fn open_txn(&mut self, tid: &str, now: i64) -> &mut OpenTxn {
        let next = self.next_txn + 1;
        let s = self.txn_ids.get_mut(tid).expect("initialized transactional id");
        if s.open.is_none() {
            self.next_txn = next;
            self.outcomes.insert(next, TxnOutcome::Open);
            s.open = Some(OpenTxn { no: next, partitions: BTreeSet::new(), offsets: BTreeMap::new(), deadline_ms: now + s.timeout_ms });
        }
        s.open.as_mut().expect("open")
    }

    /// Ends `tid`'s open transaction, if any: a marker on each of its partitions, its outcome
    /// recorded, its group offsets committed (or dropped).
    pub fn end_txn(&mut self, tid: &str, commit: bool, now: i64) {
        let Some(s) = self.txn_ids.get_mut(tid) else { return };
        let Some(txn) = s.open.take() else { return };
        let pid = s.producer_id;
        for tp in &txn.partitions {
            if let Some(p) = self.topics.get_mut(&tp.topic).and_then(|t| t.partitions.get_mut(tp.partition as usize)) {
                p.end_txn(txn.no, pid, commit, now);
            }
        }
        self.outcomes.insert(txn.no, if commit { TxnOutcome::Committed } else { TxnOutcome::Aborted });
        if commit {
            for (group, offsets) in txn.offsets {
                let g = self.groups.entry(group).or_default();
                g.committed.extend(offsets);
            }
        }
        self.version += 1;
    }

    /// True when a transaction still open has offsets of `group` for `tp` (Kafka answers
    /// UNSTABLE_OFFSET_COMMIT to a `read_committed` consumer asking for them).
    pub fn offsets_unstable(&self, group: &str, tp: &Tp) -> bool {
        self.txn_ids.values().filter_map(|s| s.open.as_ref()).any(|t| t.offsets.get(group).is_some_and(|o| o.contains_key(tp)))
    }

    /// The partition `tp`, or librdkafka's unknown-partition error for `operation`.
    pub fn partition(&self, tp: &Tp, operation: &str) -> Result<&PartitionLog> {
        self.topics.get(&tp.topic).and_then(|t| t.partitions.get(tp.partition as usize)).ok_or_else(|| unknown_partition(operation))
    }

    /// Checks that records can go to `tp`: the partition exists and no record is larger than
    /// the topic's `max.message.bytes`.
    pub fn check_write(&self, topic: &str, partition: u32, records: &[RecordIn<'_>], operation: &str) -> Result<()> {
        let t = self.topics.get(topic).filter(|t| (partition as usize) < t.partitions.len()).ok_or_else(|| unknown_partition(operation))?;
        let limit = t.max_message_bytes();
        for r in records {
            let bytes = r.key.map_or(0, <[u8]>::len)
                + r.value.map_or(0, <[u8]>::len)
                + r.headers.iter().map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len)).sum::<usize>();
            if bytes > limit {
                return Err(KafkaError::RecordTooLarge { topic: topic.into(), bytes });
            }
        }
        Ok(())
    }

    /// Appends records (checked with [`State::check_write`]) as one batch; the first offset.
    pub fn append(&mut self, topic: &str, partition: u32, records: &[RecordIn<'_>], producer_id: u64, txn: Option<TxnNo>) -> Offset {
        let p = &mut self.topics.get_mut(topic).expect("checked").partitions[partition as usize];
        let first = p.end();
        for r in records {
            p.push(Entry {
                timestamp: r.timestamp,
                producer_id,
                txn,
                kind: EntryKind::Record {
                    key: r.key.map(<[u8]>::to_vec),
                    value: r.value.map(<[u8]>::to_vec),
                    headers: r.headers.to_vec(),
                },
            });
        }
        self.version += 1;
        first
    }

    /// Groups whose members subscribe to `topic` rebalance (its partitions changed).
    pub fn topic_changed(&mut self, topic: &str, now: i64) {
        let State { groups, topics, .. } = self;
        for g in groups.values_mut() {
            if g.subscribes(topic) {
                g.start_rebalance(now);
                g.try_complete(topics);
            }
        }
        self.version += 1;
    }
}
