//! [`FakeProducer`]: the fake's producer, idempotent or transactional, with librdkafka's
//! transactional state machine: `Init` -> (`init_transactions`) `Ready` -> (`begin_transaction`)
//! `InTransaction` -> (`commit_transaction` / `abort_transaction`) `Ready`; an abortable error
//! leaves only `abort_transaction` possible, a fatal one (fenced) nothing at all.
//!
//! - Fencing is found where Kafka finds it: a call that reaches the coordinator or a partition
//!   (send, send_offsets, commit, abort) compares the producer's epoch with the transactional id's
//!   current one; if it is older, the producer is fatal from then on and the call fails with
//!   [`KafkaError::Fenced`], having written nothing. `begin_transaction` is local, as in librdkafka.
//! - Records are written when sent (the call returns after the broker has them, `acks=all`),
//!   inside the open transaction of a transactional producer.
//! - A commit or abort whose answer was lost ([`Fault::AckLost`]) is done; calling it again
//!   returns success (librdkafka's `*_NOT_ACKED` states), any other call fails until then.
//! - Dropping a producer does nothing: its open transaction stays open until the next owner's
//!   `init_transactions` or the transaction timeout aborts it (as after kill -9).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use storage::{Offset, RecordIn};

use super::fault::{Fault, Op};
use super::group::FakeGroupMeta;
use super::state::{State, DEFAULT_TRANSACTION_TIMEOUT_MS, TRANSACTION_MAX_TIMEOUT_MS};
use super::{before, finish, Broker, Host};
use crate::client::{GroupMeta, Producer, ProducerOptions, Tp};
use crate::error::{KafkaError, Result};

/// librdkafka's transactional states that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TxnState {
    Init,
    Ready,
    InTransaction,
    Abortable(String),
    Fatal,
}

impl TxnState {
    fn name(&self) -> &'static str {
        match self {
            TxnState::Init => "Init",
            TxnState::Ready => "Ready",
            TxnState::InTransaction => "InTransaction",
            TxnState::Abortable(_) => "AbortableError",
            TxnState::Fatal => "FatalError",
        }
    }
}

#[derive(Debug)]
struct Local {
    state: TxnState,
    producer_id: u64,
    epoch: i16,
    /// A call that took effect but whose answer was lost: calling it again succeeds.
    unacked: Option<Op>,
}

/// A producer of the fake cluster (see the module docs).
#[derive(Debug)]
pub struct FakeProducer {
    broker: Arc<Broker>,
    host: Arc<Host>,
    tid: Option<String>,
    timeout_ms: i64,
    local: Mutex<Local>,
}

impl FakeProducer {
    pub(crate) fn new(broker: Arc<Broker>, host: Arc<Host>, opts: &ProducerOptions, producer_id: u64) -> Self {
        FakeProducer {
            broker,
            host,
            tid: opts.transactional_id.clone(),
            timeout_ms: opts.transaction_timeout.map_or(DEFAULT_TRANSACTION_TIMEOUT_MS, |d| d.as_millis() as i64),
            local: Mutex::new(Local { state: TxnState::Init, producer_id, epoch: 0, unacked: None }),
        }
    }

    /// The transactional id, if any.
    pub fn transactional_id(&self) -> Option<&str> {
        self.tid.as_deref()
    }

    /// The producer id and epoch this producer writes with.
    pub fn producer_id_and_epoch(&self) -> (u64, i16) {
        let l = self.local.lock();
        (l.producer_id, l.epoch)
    }

    fn scope(&self) -> &str {
        self.tid.as_deref().unwrap_or("")
    }

    fn fenced_error(&self) -> KafkaError {
        KafkaError::Fenced { transactional_id: self.scope().into() }
    }

    /// The transactional id, or librdkafka's error for the transactional API without one.
    fn tid(&self, operation: &str) -> Result<&str> {
        self.tid.as_deref().ok_or_else(|| KafkaError::other(operation, "the transactional API requires a transactional.id to be configured"))
    }

    /// The error of a call not valid in the producer's state.
    fn state_error(&self, operation: &str, l: &Local) -> KafkaError {
        match &l.state {
            TxnState::Fatal => self.fenced_error(),
            TxnState::Abortable(m) => KafkaError::Abortable { transactional_id: self.scope().into(), message: m.clone() },
            s => {
                let state = match l.unacked {
                    Some(op) => format!("{} ({op} not acknowledged)", s.name()),
                    None => s.name().to_string(),
                };
                KafkaError::other(operation, format!("operation not valid in state {state}"))
            }
        }
    }

    /// Whether a newer producer with the same transactional id (or the coordinator's timeout)
    /// bumped the epoch; the producer is fatal then.
    fn check_fenced(&self, st: &State, l: &mut Local) -> Result<()> {
        let Some(tid) = &self.tid else { return Ok(()) };
        let current = st.txn_ids.get(tid).map(|s| (s.producer_id, s.epoch));
        if current != Some((l.producer_id, l.epoch)) {
            l.state = TxnState::Fatal;
            return Err(self.fenced_error());
        }
        Ok(())
    }

    /// What an injected fault that fails a call before its effect does to the state.
    fn fail(&self, l: &mut Local, f: Fault, op: Op, abortable: bool) -> KafkaError {
        let e = f.error(op, self.scope());
        match f {
            Fault::Fenced => l.state = TxnState::Fatal,
            Fault::Abortable => l.state = TxnState::Abortable(e.to_string()),
            _ if abortable && l.state == TxnState::InTransaction => l.state = TxnState::Abortable(e.to_string()),
            _ => {}
        }
        e
    }

    fn write(&self, op: Op, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<Offset> {
        let operation = format!("writing to Kafka topic \"{topic}\"");
        let mut l = self.local.lock();
        let (mut st, fault) = self.broker.enter(&self.host, op, self.scope())?;
        if self.tid.is_some() {
            if l.state != TxnState::InTransaction || l.unacked.is_some() {
                return Err(self.state_error(&operation, &l));
            }
            self.check_fenced(&st, &mut l)?;
        }
        if let Some(f) = before(fault) {
            // Records of the transaction are missing: it cannot commit any more.
            return Err(self.fail(&mut l, f, op, true));
        }
        if records.is_empty() {
            return finish(&self.host, fault, op, self.scope(), -1);
        }
        st.check_write(topic, partition, records, &operation)?;
        let now = self.broker.now();
        let txn = self.tid.as_deref().map(|tid| {
            let t = st.open_txn(tid, now);
            t.partitions.insert(Tp::new(topic, partition));
            t.no
        });
        let first = st.append(topic, partition, records, l.producer_id, txn);
        drop(st);
        self.broker.notify();
        finish(&self.host, fault, op, self.scope(), first)
    }

    /// Commit (`true`) or abort the open transaction.
    fn end(&self, commit: bool) -> Result<()> {
        let (op, operation) =
            if commit { (Op::CommitTransaction, "committing a transaction") } else { (Op::AbortTransaction, "aborting a transaction") };
        let mut l = self.local.lock();
        let (mut st, fault) = self.broker.enter(&self.host, op, self.scope())?;
        let tid = self.tid(operation)?.to_string();
        match l.unacked {
            Some(u) if u == op => {
                l.unacked = None;
                return Ok(());
            }
            Some(_) => return Err(self.state_error(operation, &l)),
            None => {}
        }
        match (&l.state, commit) {
            (TxnState::InTransaction, _) | (TxnState::Abortable(_), false) => {}
            _ => return Err(self.state_error(operation, &l)),
        }
        self.check_fenced(&st, &mut l)?;
        if let Some(f) = before(fault) {
            return Err(self.fail(&mut l, f, op, false));
        }
        let now = self.broker.now();
        st.end_txn(&tid, commit, now);
        drop(st);
        self.broker.notify();
        l.state = TxnState::Ready;
        if fault == Some(Fault::AckLost) {
            l.unacked = Some(op);
        }
        finish(&self.host, fault, op, self.scope(), ())
    }
}

impl Producer for FakeProducer {
    fn send(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<()> {
        self.write(Op::Send, topic, partition, records).map(|_| ())
    }

    fn send_and_wait(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<Offset> {
        self.write(Op::SendAndWait, topic, partition, records)
    }

    fn flush(&self, _timeout: Duration) -> Result<()> {
        let (st, fault) = self.broker.enter(&self.host, Op::Flush, self.scope())?;
        drop(st);
        if let Some(f) = before(fault) {
            return Err(f.error(Op::Flush, self.scope()));
        }
        finish(&self.host, fault, Op::Flush, self.scope(), ())
    }

    fn init_transactions(&self, _timeout: Duration) -> Result<()> {
        const OPERATION: &str = "initializing transactions";
        let mut l = self.local.lock();
        let (mut st, fault) = self.broker.enter(&self.host, Op::InitTransactions, self.scope())?;
        let tid = self.tid(OPERATION)?.to_string();
        match l.unacked {
            Some(Op::InitTransactions) => {
                l.unacked = None;
                return Ok(());
            }
            Some(_) => return Err(self.state_error(OPERATION, &l)),
            None => {}
        }
        if l.state != TxnState::Init {
            return Err(self.state_error(OPERATION, &l));
        }
        if let Some(f) = before(fault) {
            return Err(self.fail(&mut l, f, Op::InitTransactions, false));
        }
        if self.timeout_ms > TRANSACTION_MAX_TIMEOUT_MS || self.timeout_ms <= 0 {
            return Err(KafkaError::other(
                OPERATION,
                format!("transaction.timeout.ms {} is outside what the broker allows (1 to {TRANSACTION_MAX_TIMEOUT_MS})", self.timeout_ms),
            ));
        }
        let (pid, epoch) = st.init_producer_id(&tid, self.timeout_ms, self.broker.now());
        drop(st);
        self.broker.notify();
        l.producer_id = pid;
        l.epoch = epoch;
        l.state = TxnState::Ready;
        if fault == Some(Fault::AckLost) {
            l.unacked = Some(Op::InitTransactions);
        }
        finish(&self.host, fault, Op::InitTransactions, self.scope(), ())
    }

    fn begin_transaction(&self) -> Result<()> {
        const OPERATION: &str = "beginning a transaction";
        let mut l = self.local.lock();
        let (st, fault) = self.broker.enter(&self.host, Op::BeginTransaction, self.scope())?;
        drop(st);
        self.tid(OPERATION)?;
        if l.state != TxnState::Ready || l.unacked.is_some() {
            return Err(self.state_error(OPERATION, &l));
        }
        if let Some(f) = before(fault) {
            return Err(self.fail(&mut l, f, Op::BeginTransaction, false));
        }
        l.state = TxnState::InTransaction;
        finish(&self.host, fault, Op::BeginTransaction, self.scope(), ())
    }

    fn send_offsets_to_transaction(&self, offsets: &[(Tp, Offset)], group: &GroupMeta, _timeout: Duration) -> Result<()> {
        const OPERATION: &str = "sending offsets to the transaction";
        let mut l = self.local.lock();
        let (mut st, fault) = self.broker.enter(&self.host, Op::SendOffsets, self.scope())?;
        let tid = self.tid(OPERATION)?.to_string();
        if l.state != TxnState::InTransaction || l.unacked.is_some() {
            return Err(self.state_error(OPERATION, &l));
        }
        self.check_fenced(&st, &mut l)?;
        if let Some(f) = before(fault) {
            return Err(self.fail(&mut l, f, Op::SendOffsets, false));
        }
        let meta = group
            .0
            .downcast_ref::<FakeGroupMeta>()
            .ok_or_else(|| KafkaError::other(OPERATION, "the group metadata does not come from this fake cluster"))?;
        if offsets.is_empty() {
            return finish(&self.host, fault, Op::SendOffsets, self.scope(), ());
        }
        // The group coordinator's checks of a transactional offset commit (KIP-447); librdkafka
        // makes the transaction abortable when they fail.
        let refused = match st.groups.get(&meta.group_id) {
            Some(g) if g.static_fenced(meta.instance_id.as_deref(), &meta.member_id) => Some("FENCED_INSTANCE_ID"),
            Some(g) if !meta.member_id.is_empty() && !g.members.contains_key(&meta.member_id) => Some("UNKNOWN_MEMBER_ID"),
            None if !meta.member_id.is_empty() => Some("UNKNOWN_MEMBER_ID"),
            Some(g) if meta.generation >= 0 && meta.generation != g.generation => Some("ILLEGAL_GENERATION"),
            _ => None,
        };
        if let Some(code) = refused {
            let message = format!(
                "the group coordinator refused the offsets of member \"{}\" (generation {}) of group \"{}\": {code}",
                meta.member_id, meta.generation, meta.group_id
            );
            l.state = TxnState::Abortable(message.clone());
            return Err(KafkaError::Abortable { transactional_id: tid, message });
        }
        let now = self.broker.now();
        let t = st.open_txn(&tid, now);
        t.offsets.entry(meta.group_id.clone()).or_default().extend(offsets.iter().cloned());
        drop(st);
        finish(&self.host, fault, Op::SendOffsets, self.scope(), ())
    }

    fn commit_transaction(&self, _timeout: Duration) -> Result<()> {
        self.end(true)
    }

    fn abort_transaction(&self, _timeout: Duration) -> Result<()> {
        self.end(false)
    }
}
