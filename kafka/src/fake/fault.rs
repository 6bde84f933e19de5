//! Fault injection for the fake cluster: which operation ([`Op`]), on which transactional id,
//! group or topic (the call's scope), its how-many-th call, fails how ([`Fault`]).
//!
//! Every call a client of the fake makes is counted per ([`Op`], scope). A test can make the
//! n-th matching call from now fail with [`super::FakeCluster::inject`], and it can record the
//! calls made in a stretch of work ([`super::FakeCluster::record_calls`]) to get the list of every
//! step, for example of one epoch: replaying the same work with a fault at each recorded
//! [`Call`] in turn (`Injection::at(&call, fault)`) is how "a fault at every step" is enumerated.

use std::fmt;

use crate::error::KafkaError;

/// An operation of a fake client, counted for fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// [`crate::Cluster::create_topic`]; scope: the topic.
    CreateTopic,
    /// [`crate::Cluster::delete_topic`]; scope: the topic.
    DeleteTopic,
    /// [`crate::Cluster::list_topics`]; scope: empty.
    ListTopics,
    /// [`crate::Cluster::topic`]; scope: the topic.
    DescribeTopic,
    /// [`crate::Cluster::watermarks`]; scope: the topic.
    Watermarks,
    /// [`crate::Cluster::offset_for_timestamp`]; scope: the topic.
    OffsetForTimestamp,
    /// [`crate::Cluster::producer`]; scope: the transactional id (empty for an idempotent one).
    NewProducer,
    /// [`crate::Cluster::reader`]; scope: empty.
    NewReader,
    /// [`crate::Cluster::group_consumer`]; scope: the group.
    NewGroupConsumer,
    /// [`crate::Cluster::group_meta`]; scope: the group.
    ClusterGroupMeta,
    /// [`crate::Cluster::committed_offsets`]; scope: the group.
    ClusterCommitted,
    /// [`crate::Producer::send`]; scope: the transactional id (empty for an idempotent producer).
    Send,
    /// [`crate::Producer::send_and_wait`]; scope as `Send`.
    SendAndWait,
    /// [`crate::Producer::flush`]; scope as `Send`.
    Flush,
    /// [`crate::Producer::init_transactions`]; scope: the transactional id.
    InitTransactions,
    /// [`crate::Producer::begin_transaction`]; scope: the transactional id.
    BeginTransaction,
    /// [`crate::Producer::send_offsets_to_transaction`]; scope: the transactional id.
    SendOffsets,
    /// [`crate::Producer::commit_transaction`]; scope: the transactional id.
    CommitTransaction,
    /// [`crate::Producer::abort_transaction`]; scope: the transactional id.
    AbortTransaction,
    /// [`crate::PartitionReader::assign`]; scope: the topic of the first partition assigned.
    ReaderAssign,
    /// [`crate::PartitionReader::poll`]; scope: the topic of the first partition assigned.
    ReaderPoll,
    /// [`crate::PartitionReader::position`]; scope: the topic asked about.
    ReaderPosition,
    /// [`crate::GroupConsumer::poll`]; scope: the group.
    GroupPoll,
    /// [`crate::GroupConsumer::committed`]; scope: the group.
    Committed,
    /// [`crate::GroupConsumer::seek`]; scope: the group.
    Seek,
    /// [`crate::GroupConsumer::pause`]; scope: the group.
    Pause,
    /// [`crate::GroupConsumer::resume`]; scope: the group.
    Resume,
    /// [`crate::GroupConsumer::position`]; scope: the group.
    GroupPosition,
}

impl Op {
    /// Every producer operation, in the order an epoch makes them.
    pub const PRODUCER: [Op; 8] = [
        Op::InitTransactions,
        Op::BeginTransaction,
        Op::Send,
        Op::SendAndWait,
        Op::Flush,
        Op::SendOffsets,
        Op::CommitTransaction,
        Op::AbortTransaction,
    ];

    /// What the operation is called in messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateTopic => "create_topic",
            Op::DeleteTopic => "delete_topic",
            Op::ListTopics => "list_topics",
            Op::DescribeTopic => "topic",
            Op::Watermarks => "watermarks",
            Op::OffsetForTimestamp => "offset_for_timestamp",
            Op::NewProducer => "producer",
            Op::NewReader => "reader",
            Op::NewGroupConsumer => "group_consumer",
            Op::ClusterGroupMeta => "group_meta",
            Op::ClusterCommitted => "committed_offsets",
            Op::Send => "send",
            Op::SendAndWait => "send_and_wait",
            Op::Flush => "flush",
            Op::InitTransactions => "init_transactions",
            Op::BeginTransaction => "begin_transaction",
            Op::SendOffsets => "send_offsets_to_transaction",
            Op::CommitTransaction => "commit_transaction",
            Op::AbortTransaction => "abort_transaction",
            Op::ReaderAssign => "reader.assign",
            Op::ReaderPoll => "reader.poll",
            Op::ReaderPosition => "reader.position",
            Op::GroupPoll => "group.poll",
            Op::Committed => "group.committed",
            Op::Seek => "group.seek",
            Op::Pause => "group.pause",
            Op::Resume => "group.resume",
            Op::GroupPosition => "group.position",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an injected call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// [`KafkaError::Retriable`]; the call had no effect. A failed send of a transactional
    /// producer leaves its transaction abortable (records of it are missing), as librdkafka does.
    Retriable,
    /// [`KafkaError::Abortable`]; the call had no effect and the open transaction must be aborted
    /// (every later call but `abort_transaction` fails with the same error).
    Abortable,
    /// [`KafkaError::Fenced`]; the producer is in librdkafka's fatal state: every later call
    /// fails with `Fenced` (its open transaction stays open until the next owner's
    /// `init_transactions` or the transaction timeout aborts it).
    Fenced,
    /// [`KafkaError::Unreachable`]; the call had no effect.
    Unreachable,
    /// The call took effect but its answer was lost: it returns [`KafkaError::Retriable`]. A
    /// commit or abort called again then succeeds without doing anything (librdkafka's
    /// `*_NOT_ACKED` states); a send called again writes its records a second time. A poll
    /// never loses what it fetched: there it is `Retriable`.
    AckLost,
    /// The client's process is killed (kill -9) before the call takes effect: the call and every
    /// later call of every client of the same host fail with [`KafkaError::Unreachable`], group
    /// members of the host stop heartbeating, open transactions stay open.
    Crash,
    /// The call takes effect, then the process is killed (as `Crash`); the call fails with
    /// [`KafkaError::Unreachable`]. On a poll it is `Crash`.
    CrashAfter,
}

impl Fault {
    /// Every fault class.
    pub const ALL: [Fault; 7] =
        [Fault::Retriable, Fault::Abortable, Fault::Fenced, Fault::Unreachable, Fault::AckLost, Fault::Crash, Fault::CrashAfter];

    /// True when the call takes effect before it fails.
    pub fn takes_effect(self) -> bool {
        matches!(self, Fault::AckLost | Fault::CrashAfter)
    }

    /// True when the client's host dies.
    pub fn kills(self) -> bool {
        matches!(self, Fault::Crash | Fault::CrashAfter)
    }

    /// The error the failing call returns.
    pub fn error(self, op: Op, scope: &str) -> KafkaError {
        let message = format!("injected fault at {op} of \"{scope}\"");
        match self {
            Fault::Retriable | Fault::AckLost => KafkaError::Retriable { operation: op.name().into(), message },
            Fault::Abortable => KafkaError::Abortable { transactional_id: scope.into(), message },
            Fault::Fenced => KafkaError::Fenced { transactional_id: scope.into() },
            Fault::Unreachable | Fault::Crash | Fault::CrashAfter => {
                KafkaError::Unreachable { bootstrap: super::BOOTSTRAP.into(), message }
            }
        }
    }
}

/// One call of a fake client, as recorded: its operation, scope and how many calls of the same
/// operation and scope came before it since recording started, plus one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Call {
    /// The operation.
    pub op: Op,
    /// Its transactional id, group or topic (see [`Op`]).
    pub scope: String,
    /// 1 for the first call of (`op`, `scope`) since recording started.
    pub nth: u64,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{} of \"{}\"", self.op, self.nth, self.scope)
    }
}

/// A fault to inject: the `nth` call from now of `op` in `scope` (any scope when `None`) fails
/// with `fault`, and so do the `times - 1` matching calls after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// The operation.
    pub op: Op,
    /// Only calls of this transactional id, group or topic; `None`: any.
    pub scope: Option<String>,
    /// Which matching call, counted from the injection (1: the next one).
    pub nth: u64,
    /// How the call fails.
    pub fault: Fault,
    /// How many matching calls fail, from the `nth` on.
    pub times: u64,
}

impl Injection {
    /// The next call of `op` in any scope fails with `fault`.
    pub fn new(op: Op, fault: Fault) -> Self {
        Injection { op, scope: None, nth: 1, fault, times: 1 }
    }

    /// The call `call` (as recorded from the same starting point) fails with `fault`.
    pub fn at(call: &Call, fault: Fault) -> Self {
        Injection { op: call.op, scope: Some(call.scope.clone()), nth: call.nth, fault, times: 1 }
    }

    /// Only calls in `scope`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The `nth` matching call (1: the next).
    pub fn nth(mut self, nth: u64) -> Self {
        self.nth = nth.max(1);
        self
    }

    /// `times` matching calls in a row fail (`u64::MAX`: every one from the `nth` on).
    pub fn times(mut self, times: u64) -> Self {
        self.times = times.max(1);
        self
    }
}

/// The calls recorded, and how many of each operation on each name.
type Recording = (Vec<Call>, std::collections::HashMap<(Op, String), u64>);

/// The injections waiting and the calls recorded.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<(Injection, u64)>,
    recording: Option<Recording>,
}

impl Faults {
    pub fn inject(&mut self, i: Injection) {
        self.rules.push((i, 0));
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn pending(&self) -> usize {
        self.rules.len()
    }

    pub fn start_recording(&mut self) {
        self.recording = Some((Vec::new(), Default::default()));
    }

    pub fn stop_recording(&mut self) -> Vec<Call> {
        self.recording.take().map(|r| r.0).unwrap_or_default()
    }

    /// Counts a call; the fault to apply to it, if one is due.
    pub fn on_call(&mut self, op: Op, scope: &str) -> Option<Fault> {
        if let Some((calls, counts)) = &mut self.recording {
            let n = counts.entry((op, scope.to_string())).or_insert(0);
            *n += 1;
            calls.push(Call { op, scope: scope.to_string(), nth: *n });
        }
        let mut fired = None;
        for (rule, seen) in self.rules.iter_mut() {
            if rule.op != op || rule.scope.as_deref().is_some_and(|s| s != scope) {
                continue;
            }
            *seen += 1;
            if fired.is_none() && *seen >= rule.nth && *seen - rule.nth < rule.times {
                fired = Some(rule.fault);
            }
        }
        self.rules.retain(|(r, seen)| *seen < r.nth.saturating_add(r.times).saturating_sub(1));
        fired
    }
}
