//! Exactly-once of the Kafka backend's per-task commits ([`KafkaCommitters`] over [`KafkaLog`]),
//! proven on the in-process fake cluster, which hides aborted records as Kafka does.
//!
//! A task is driven the way the engine drives it (`engine::runtime::TaskThread`): restore, read
//! the input partition from the offset the restored state holds, write one output record per
//! input through the task's `output()` log, update a keyed state (puts, deletes, range deletes),
//! and commit each epoch with its state batch and the next input offset; on an error the task
//! aborts (unless fenced) and is started again, on a new process when its process was killed.
//! The checks, after every restore and at the end:
//! - the outputs a `read_committed` reader sees are those of the committed inputs, each once, in
//!   order (nothing lost, nothing twice);
//! - the restored local state (a `MemStore`) is the state of the last committed epoch, which is
//!   what the group's committed offset says was committed; a new machine restores the same;
//! - no transaction is left open.
//!
//! The main test records every call the clients make while a task takes over from a crashed
//! owner and runs to the end, then replays that run with each fault class at each call in turn;
//! others put two faults in one run, and run the same under at-least-once (nothing lost).

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use engine::operator::TaskInfo;
use engine::runtime::keys::{decode_i64, offset_key, task_meta_key};
use engine::runtime::{CommitError, ProcessingGuarantee, TaskCommitter, TaskCommitters};
use engine::spec::QuerySpec;
use engine::types::Epoch;
use eddy_kafka::fake::{Call, FakeCluster, Fault, Injection, Op};
use eddy_kafka::{Cluster, KafkaCommitters, KafkaLog, ProducerOptions, Tp};
use storage::{KvStore, MemStore, RecordIn, StateBatch, TopicLog};

const SERVICE: &str = "svc";
const QUERY: &str = "Q1";
/// The task's partition (of 2), so that partition numbers are not all 0.
const PARTITION: u32 = 1;
const INPUTS: i64 = 12;
const PER_EPOCH: usize = 4;
const GROUP: &str = "_eddy-svc-query_Q1";
const CHANGELOG: &str = "_eddy-svc-query_Q1-0-changelog";
const TID: &str = "_eddy-svc-query_Q1-0_1";

fn info() -> TaskInfo {
    TaskInfo { query_id: QUERY.into(), subtopology: 0, partition: PARTITION, persistent: true }
}

fn input_offset_key() -> Vec<u8> {
    offset_key(QUERY, 0, 0, PARTITION)
}

/// What input `o` does to the state: one operation.
enum Change {
    Put(String, i64),
    Delete(String),
    DeleteCounts,
}

/// The state logic: counts per key, every fifth input deletes its key, every seventh all counts.
fn step(o: i64, view: &mut BTreeMap<String, i64>) -> Change {
    let key = format!("cnt/k{}", o % 3);
    if o % 7 == 6 {
        view.clear();
        Change::DeleteCounts
    } else if o % 5 == 4 {
        view.remove(&key);
        Change::Delete(key)
    } else {
        let v = view.get(&key).copied().unwrap_or(0) + 1;
        view.insert(key.clone(), v);
        Change::Put(key, v)
    }
}

/// The local state after the epochs that processed inputs `[0, n)` committed (without the
/// committer's changelog position, which differs between a machine that wrote and one that
/// restored: one is at the commit marker, the other past it).
fn model(n: i64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut view = BTreeMap::new();
    for o in 0..n {
        step(o, &mut view);
    }
    let mut m: BTreeMap<Vec<u8>, Vec<u8>> = view.into_iter().map(|(k, v)| (k.into_bytes(), v.to_be_bytes().to_vec())).collect();
    if n > 0 {
        m.insert(input_offset_key(), n.to_be_bytes().to_vec());
        let epochs = (n as usize).div_ceil(PER_EPOCH) as i64;
        m.insert(task_meta_key(QUERY, 0, PARTITION, b'e'), epochs.to_be_bytes().to_vec());
    }
    m
}

/// The local state, less the committer's changelog position.
fn contents(state: &MemStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let position = task_meta_key(QUERY, 0, PARTITION, b'c');
    state.scan(&[], &[0xff; 8]).unwrap().map(|kv| kv.unwrap()).filter(|(k, _)| *k != position).collect()
}

/// The input offsets whose outputs a `read_committed` reader of the output partition sees.
fn outputs(fake: &FakeCluster) -> Vec<i64> {
    fake.committed_records(&Tp::new("out", PARTITION))
        .iter()
        .map(|f| {
            let v = String::from_utf8(f.value.clone().unwrap()).unwrap();
            v.strip_prefix("in-offset:").unwrap().parse().unwrap()
        })
        .collect()
}

/// The input offset the group has committed (with the last committed transaction).
fn committed_input(fake: &FakeCluster) -> i64 {
    fake.group_offsets(GROUP).get(&Tp::new("in", PARTITION)).copied().unwrap_or(0)
}

/// A cluster with the input written, and nothing of the query yet.
fn cluster() -> FakeCluster {
    let fake = FakeCluster::new();
    let admin = fake.host("admin");
    admin.create_topic("in", 2, &BTreeMap::new()).unwrap();
    admin.create_topic("out", 2, &BTreeMap::new()).unwrap();
    let p = admin.producer(&ProducerOptions::default()).unwrap();
    for o in 0..INPUTS {
        let key = format!("k{}", o % 3);
        let value = format!("v{o}");
        p.send_and_wait("in", PARTITION, &[RecordIn { timestamp: o, key: Some(key.as_bytes()), value: Some(value.as_bytes()), headers: &[] }])
            .unwrap();
        p.send_and_wait("in", 0, &[RecordIn { timestamp: o, key: None, value: Some(b"other"), headers: &[] }]).unwrap();
    }
    fake
}

/// Why an epoch stopped.
#[derive(Debug)]
struct Failed {
    fenced: bool,
    message: String,
}

fn failed(e: impl std::fmt::Display) -> Failed {
    Failed { fenced: false, message: e.to_string() }
}

/// One incarnation of the task on one process.
struct Worker {
    fake: FakeCluster,
    guarantee: ProcessingGuarantee,
    log: Arc<KafkaLog>,
    committer: Box<dyn TaskCommitter>,
    state: Arc<MemStore>,
    next: i64,
    epoch: u64,
    /// Commits that failed although the epoch became visible (against the committer's contract).
    visible_after_error: Vec<String>,
}

impl Worker {
    /// Starts the task exactly-once on `host` over local state `state`: committer, restore,
    /// start offset.
    fn start(host: &FakeCluster, state: Arc<MemStore>) -> Result<Worker, Failed> {
        Self::start_with(host, state, ProcessingGuarantee::ExactlyOnce)
    }

    fn start_with(host: &FakeCluster, state: Arc<MemStore>, guarantee: ProcessingGuarantee) -> Result<Worker, Failed> {
        let log = Arc::new(KafkaLog::new(host.arc(), SERVICE).map_err(failed)?);
        let committers = KafkaCommitters::new(log.clone(), host.host_name());
        let spec = QuerySpec { id: QUERY.into(), subtopologies: Vec::new() };
        committers.prepare(&spec, &[2], guarantee).map_err(failed)?;
        let mut committer = committers.task(&info(), &["in".to_string()], guarantee).map_err(failed)?;
        committer.restore(state.as_ref()).map_err(failed)?;
        // A finished restore reports that it reached the changelog's end.
        let progress = committer.restore_progress().expect("the Kafka committer reports its restore");
        let (at, end) = (progress.at.load(std::sync::atomic::Ordering::Relaxed), progress.end.load(std::sync::atomic::Ordering::Relaxed));
        assert!(at >= end, "restore progress at {at}, end {end}");
        let next = state.get(&input_offset_key()).map_err(failed)?.and_then(|v| decode_i64(&v)).unwrap_or(0);
        Ok(Worker { fake: host.clone(), guarantee, log, committer, state, next, epoch: 0, visible_after_error: Vec::new() })
    }

    fn exactly_once(&self) -> bool {
        self.guarantee == ProcessingGuarantee::ExactlyOnce
    }

    /// Reads up to one epoch of input and writes its outputs into the open epoch; the batch,
    /// the next input offset.
    fn process(&mut self) -> Result<(StateBatch, i64), Failed> {
        let batch_read = self.log.read("in", PARTITION, self.next, 1 << 20).map_err(failed)?;
        let mut view: BTreeMap<String, i64> = self
            .state
            .scan(b"cnt/", b"cnt0")
            .map_err(failed)?
            .map(|kv| kv.map(|(k, v)| (String::from_utf8(k).unwrap(), decode_i64(&v).unwrap())))
            .collect::<Result<_, _>>()
            .map_err(failed)?;
        let mut batch = StateBatch::default();
        let mut next = self.next;
        let out = self.committer.output();
        for r in batch_read.iter().take(PER_EPOCH) {
            match step(r.offset, &mut view) {
                Change::Put(k, v) => batch.put(k.as_bytes(), &v.to_be_bytes()),
                Change::Delete(k) => batch.delete(k.as_bytes()),
                Change::DeleteCounts => batch.delete_range(b"cnt/", b"cnt0"),
            }
            let value = format!("in-offset:{}", r.offset);
            out.append("out", PARTITION, &[RecordIn { timestamp: r.timestamp, key: r.key, value: Some(value.as_bytes()), headers: &[] }])
                .map_err(failed)?;
            next = r.offset + 1;
        }
        batch.put(&input_offset_key(), &next.to_be_bytes());
        Ok((batch, next))
    }

    /// Commits the epoch.
    fn commit(&mut self, batch: &StateBatch, next: i64) -> Result<(), Failed> {
        self.epoch += 1;
        let inputs = [("in".to_string(), PARTITION, next)];
        match self.committer.commit(Epoch(self.epoch), batch, &inputs, self.state.as_ref()) {
            Ok(()) => {
                // A commit that returned is in Kafka.
                if self.exactly_once() {
                    assert_eq!(committed_input(&self.fake), next, "a successful commit is visible");
                }
                self.next = next;
                Ok(())
            }
            Err(e) => {
                if self.exactly_once() && self.fake.is_alive() && committed_input(&self.fake) == next {
                    self.visible_after_error.push(e.to_string());
                }
                Err(Failed { fenced: matches!(e, CommitError::Fenced { .. }), message: e.to_string() })
            }
        }
    }

    /// Runs epochs until every input is processed.
    fn run(&mut self) -> Result<(), Failed> {
        while self.next < INPUTS {
            let (batch, next) = self.process()?;
            self.commit(&batch, next)?;
        }
        Ok(())
    }
}

/// Checks what a task sees when it starts: its restored state is the last committed epoch's,
/// and the outputs so far are those of the committed inputs, once each (at least once under
/// at-least-once, where the group offsets are not used: the state says what was committed).
fn check_start(fake: &FakeCluster, w: &Worker, what: &str) {
    if !w.exactly_once() {
        assert_eq!(contents(&w.state), model(w.next), "{what}: the restored state is the last committed epoch's");
        let seen = outputs(fake);
        assert!((0..w.next).all(|o| seen.contains(&o)), "{what}: an output of a committed input is missing: {seen:?}");
        return;
    }
    let committed = committed_input(fake);
    assert_eq!(w.next, committed, "{what}: the restored input offset is the committed one");
    assert_eq!(contents(&w.state), model(committed), "{what}: the restored state is the last committed epoch's");
    assert_eq!(outputs(fake), (0..committed).collect::<Vec<_>>(), "{what}: outputs of committed inputs, once each");
}

/// Checks the end: everything processed once (at least once), the state complete, nothing left
/// open, and a new machine restores the same state.
fn check_end(fake: &FakeCluster, state: &MemStore, what: &str) {
    check_end_with(fake, state, what, ProcessingGuarantee::ExactlyOnce)
}

fn check_end_with(fake: &FakeCluster, state: &MemStore, what: &str, guarantee: ProcessingGuarantee) {
    if guarantee == ProcessingGuarantee::ExactlyOnce {
        assert_eq!(outputs(fake), (0..INPUTS).collect::<Vec<_>>(), "{what}: every output once, in order");
        assert_eq!(committed_input(fake), INPUTS, "{what}: every input committed");
    } else {
        let mut seen = outputs(fake);
        seen.sort();
        seen.dedup();
        assert_eq!(seen, (0..INPUTS).collect::<Vec<_>>(), "{what}: every output at least once");
    }
    assert_eq!(contents(state), model(INPUTS), "{what}: the final state");
    for tp in [Tp::new("out", PARTITION), Tp::new(CHANGELOG, PARTITION)] {
        assert_eq!(fake.watermarks(&tp).unwrap().1, fake.log_end(&tp).unwrap(), "{what}: no transaction left open on {tp}");
    }
    let fresh = Arc::new(MemStore::new());
    let w = Worker::start_with(&fake.host("new-machine"), fresh.clone(), guarantee)
        .unwrap_or_else(|e| panic!("{what}: restore on a new machine: {e:?}"));
    assert_eq!(contents(&fresh), model(INPUTS), "{what}: a new machine restores the final state");
    assert_eq!(w.next, INPUTS);
}

/// Runs the task to the end over `state`, starting it again after every failure (on a new
/// process when the last one was killed). Returns the commits that failed although visible.
fn run_to_end(fake: &FakeCluster, state: Arc<MemStore>, what: &str) -> Vec<String> {
    run_to_end_with(fake, state, what, ProcessingGuarantee::ExactlyOnce)
}

fn run_to_end_with(fake: &FakeCluster, state: Arc<MemStore>, what: &str, guarantee: ProcessingGuarantee) -> Vec<String> {
    let mut n = 1;
    let mut host = fake.host("i1");
    let mut visible_after_error = Vec::new();
    let mut failures = Vec::new();
    for _ in 0..20 {
        match Worker::start_with(&host, state.clone(), guarantee) {
            Ok(mut w) => {
                check_start(fake, &w, what);
                let r = w.run();
                visible_after_error.append(&mut w.visible_after_error);
                match r {
                    Ok(()) => return visible_after_error,
                    Err(e) => {
                        // As the task thread does: abort unless fenced; the task is started again.
                        if !e.fenced {
                            w.committer.abort();
                        }
                        failures.push(e.message);
                    }
                }
            }
            Err(e) => failures.push(format!("start: {}", e.message)),
        }
        if !host.is_alive() {
            n += 1;
            host = fake.host(&format!("i{n}"));
        }
    }
    panic!("{what}: the task did not finish in 20 starts: {failures:#?}");
}

/// The previous owner of the task: one committed epoch, then killed with the next epoch's
/// outputs written (in an open transaction under exactly-once).
fn crashed_owner(fake: &FakeCluster) -> Arc<MemStore> {
    crashed_owner_with(fake, ProcessingGuarantee::ExactlyOnce)
}

fn crashed_owner_with(fake: &FakeCluster, guarantee: ProcessingGuarantee) -> Arc<MemStore> {
    let host = fake.host("i0");
    let state = Arc::new(MemStore::new());
    let mut w = Worker::start_with(&host, state.clone(), guarantee).unwrap();
    let (batch, next) = w.process().unwrap();
    w.commit(&batch, next).unwrap();
    w.process().unwrap();
    host.crash();
    assert_eq!(fake.has_open_transaction(TID), guarantee == ProcessingGuarantee::ExactlyOnce);
    state
}

#[test]
fn a_task_taking_over_from_a_crashed_owner_runs_exactly_once() {
    let fake = cluster();
    crashed_owner(&fake);
    assert_eq!(outputs(&fake), (0..PER_EPOCH as i64).collect::<Vec<_>>());
    let state = Arc::new(MemStore::new());
    assert!(run_to_end(&fake, state.clone(), "clean").is_empty());
    check_end(&fake, &state, "clean");
}

/// Every call of the take-over run, then that run again with each fault at each call.
#[test]
fn a_fault_at_every_step_loses_nothing_and_repeats_nothing() {
    let recorded: Vec<Call> = {
        let fake = cluster();
        crashed_owner(&fake);
        fake.record_calls();
        run_to_end(&fake, Arc::new(MemStore::new()), "recording");
        fake.take_calls()
    };
    let ops: std::collections::BTreeSet<Op> = recorded.iter().map(|c| c.op).collect();
    for op in [Op::InitTransactions, Op::Watermarks, Op::ReaderPoll, Op::BeginTransaction, Op::Send, Op::SendAndWait, Op::SendOffsets, Op::CommitTransaction] {
        assert!(ops.contains(&op), "the run makes {op} calls: {ops:?}");
    }
    let mut visible_after_error = Vec::new();
    let mut runs = 0;
    for call in &recorded {
        for fault in Fault::ALL {
            let what = format!("{fault:?} at {call}");
            let fake = cluster();
            crashed_owner(&fake);
            fake.inject(Injection::at(call, fault));
            let state = Arc::new(MemStore::new());
            for e in run_to_end(&fake, state.clone(), &what) {
                visible_after_error.push(format!("{what}: {e}"));
            }
            assert_eq!(fake.pending_faults(), 0, "{what}: the fault fired");
            check_end(&fake, &state, &what);
            runs += 1;
        }
    }
    assert_eq!(runs, recorded.len() * Fault::ALL.len());
    eprintln!("{} calls x {} faults: {runs} runs exactly once", recorded.len(), Fault::ALL.len());
    // TaskCommitter::commit: "After an error nothing of the epoch is visible."
    assert!(visible_after_error.is_empty(), "commits that failed although their epoch is visible:\n{}", visible_after_error.join("\n"));
}

#[test]
fn a_commit_succeeds_when_only_opening_the_next_transaction_fails() {
    for fault in [Fault::Unreachable, Fault::Fenced] {
        let fake = cluster();
        let state = Arc::new(MemStore::new());
        let host = fake.host("a");
        let mut w = Worker::start(&host, state.clone()).unwrap();
        let (batch, next) = w.process().unwrap();
        // begin_transaction #1 opened the first epoch at the restore; #2 follows the commit.
        fake.inject(Injection::new(Op::BeginTransaction, fault).scope(TID));
        w.commit(&batch, next).unwrap_or_else(|e| panic!("{fault:?}: the epoch committed, yet {e:?}"));
        assert_eq!(contents(&state), model(PER_EPOCH as i64));
        // The next epoch fails instead, and nothing of it becomes visible.
        let _failed = match w.process() {
            Err(e) => e,
            Ok((batch, next)) => w.commit(&batch, next).unwrap_err(),
        };
        w.committer.abort();
        assert_eq!(outputs(&fake), (0..PER_EPOCH as i64).collect::<Vec<_>>(), "{fault:?}");
        drop(w);
        let mut w = Worker::start(&host, state.clone()).unwrap();
        check_start(&fake, &w, "after the failed begin");
        w.run().unwrap();
        check_end(&fake, &state, &format!("{fault:?} at the next begin"));
    }
}

#[test]
fn a_second_committer_for_the_task_fences_the_first() {
    let fake = cluster();
    let state_a = Arc::new(MemStore::new());
    let mut a = Worker::start(&fake.host("a"), state_a.clone()).unwrap();
    let (batch, next) = a.process().unwrap();
    a.commit(&batch, next).unwrap();
    let (batch2, next2) = a.process().unwrap();
    // B takes the task over on another machine while A's epoch 2 is open.
    let state_b = Arc::new(MemStore::new());
    let mut b = Worker::start(&fake.host("b"), state_b.clone()).unwrap();
    check_start(&fake, &b, "b");
    assert!(!fake.has_open_transaction(TID), "B's init_transactions aborted A's open epoch");
    // A's commit is refused, and nothing of its epoch 2 is visible.
    match a.committer.commit(Epoch(2), &batch2, &[("in".into(), PARTITION, next2)], state_a.as_ref()) {
        Err(CommitError::Fenced { .. }) => {}
        other => panic!("a zombie's commit: {other:?}"),
    }
    assert_eq!(contents(&state_a), model(PER_EPOCH as i64), "a fenced commit leaves the local state alone");
    assert!(a.committer.output().append("out", PARTITION, &[RecordIn { timestamp: 0, key: None, value: Some(b"in-offset:99"), headers: &[] }]).is_err());
    b.run().unwrap();
    check_end(&fake, &state_b, "fenced");
}

#[test]
fn abort_on_stop_drops_the_open_epoch_and_a_restart_goes_on_from_the_last_commit() {
    let fake = cluster();
    let state = Arc::new(MemStore::new());
    let host = fake.host("a");
    let mut w = Worker::start(&host, state.clone()).unwrap();
    let (batch, next) = w.process().unwrap();
    w.commit(&batch, next).unwrap();
    w.process().unwrap();
    w.committer.abort();
    drop(w);
    assert!(!fake.has_open_transaction(TID));
    assert_eq!(outputs(&fake), (0..PER_EPOCH as i64).collect::<Vec<_>>());
    let mut w = Worker::start(&host, state.clone()).unwrap();
    check_start(&fake, &w, "restart");
    w.run().unwrap();
    check_end(&fake, &state, "abort on stop");
}

#[test]
fn a_crash_between_the_commit_and_the_local_write_is_made_up_by_the_restore() {
    let fake = cluster();
    let state = Arc::new(MemStore::new());
    let host = fake.host("a");
    let mut w = Worker::start(&host, state.clone()).unwrap();
    let (batch, next) = w.process().unwrap();
    w.commit(&batch, next).unwrap();
    let (batch, next) = w.process().unwrap();
    fake.inject(Injection::new(Op::CommitTransaction, Fault::CrashAfter).scope(TID));
    assert!(w.commit(&batch, next).is_err());
    drop(w);
    assert_eq!(committed_input(&fake), 2 * PER_EPOCH as i64, "epoch 2 is in Kafka");
    assert_eq!(contents(&state), model(PER_EPOCH as i64), "the local state is one epoch behind");
    let mut w = Worker::start(&fake.host("a-again"), state.clone()).unwrap();
    check_start(&fake, &w, "after the crash");
    w.run().unwrap();
    check_end(&fake, &state, "crash after commit");
}

#[test]
fn a_transaction_left_open_by_a_paused_owner_is_aborted_by_the_timeout() {
    let fake = cluster();
    let state = Arc::new(MemStore::new());
    let host = fake.host("a");
    let mut w = Worker::start(&host, state.clone()).unwrap();
    let (batch, next) = w.process().unwrap();
    w.commit(&batch, next).unwrap();
    let (batch, next) = w.process().unwrap();
    host.disconnect();
    assert_eq!(fake.watermarks(&Tp::new("out", PARTITION)).unwrap().1, PER_EPOCH as i64 + 1, "held back by the open epoch");
    fake.advance(Duration::from_secs(61));
    assert!(!fake.has_open_transaction(TID));
    assert_eq!(fake.watermarks(&Tp::new("out", PARTITION)).unwrap().1, fake.log_end(&Tp::new("out", PARTITION)).unwrap());
    host.reconnect();
    // The paused owner wakes up: its producer was fenced by the timeout.
    match w.commit(&batch, next) {
        Err(Failed { fenced: true, .. }) => {}
        other => panic!("commit after the timeout: {other:?}"),
    }
    assert_eq!(outputs(&fake), (0..PER_EPOCH as i64).collect::<Vec<_>>());
    drop(w);
    let mut w = Worker::start(&host, state.clone()).unwrap();
    check_start(&fake, &w, "after the timeout");
    w.run().unwrap();
    check_end(&fake, &state, "transaction timeout");
}

#[test]
fn a_failed_abort_leaves_the_epoch_to_the_next_owner() {
    let fake = cluster();
    let state = Arc::new(MemStore::new());
    let host = fake.host("a");
    let mut w = Worker::start(&host, state.clone()).unwrap();
    let (batch, next) = w.process().unwrap();
    fake.inject(Injection::new(Op::CommitTransaction, Fault::Abortable).scope(TID));
    fake.inject(Injection::new(Op::AbortTransaction, Fault::Unreachable).scope(TID));
    assert!(w.commit(&batch, next).is_err());
    w.committer.abort();
    assert!(fake.has_open_transaction(TID), "the abort did not reach the coordinator");
    drop(w);
    let mut w = Worker::start(&host, state.clone()).unwrap();
    assert!(!fake.has_open_transaction(TID), "the next owner's init_transactions aborted it");
    check_start(&fake, &w, "after the failed abort");
    w.run().unwrap();
    check_end(&fake, &state, "failed abort");
}

/// The same take-over, at-least-once: with a fault at every step, nothing is lost (outputs may
/// repeat), and the restored state is always that of the last epoch the state itself recorded.
#[test]
fn at_least_once_with_a_fault_at_every_step_loses_nothing() {
    let alo = ProcessingGuarantee::AtLeastOnce;
    let recorded: Vec<Call> = {
        let fake = cluster();
        crashed_owner_with(&fake, alo);
        fake.record_calls();
        run_to_end_with(&fake, Arc::new(MemStore::new()), "recording", alo);
        fake.take_calls()
    };
    assert!(recorded.iter().any(|c| c.op == Op::Flush) && !recorded.iter().any(|c| c.op == Op::CommitTransaction));
    let mut repeated = 0;
    for call in &recorded {
        for fault in Fault::ALL {
            let what = format!("at-least-once, {fault:?} at {call}");
            let fake = cluster();
            crashed_owner_with(&fake, alo);
            fake.inject(Injection::at(call, fault));
            let state = Arc::new(MemStore::new());
            run_to_end_with(&fake, state.clone(), &what, alo);
            assert_eq!(fake.pending_faults(), 0, "{what}: the fault fired");
            check_end_with(&fake, &state, &what, alo);
            repeated += outputs(&fake).len() - INPUTS as usize;
        }
    }
    // The crashed owner's second epoch is repeated in every run, at least.
    assert!(repeated >= recorded.len() * Fault::ALL.len() * PER_EPOCH);
}

/// Two faults in one run: the second hits a later call, which may be one of the recovery.
#[test]
fn two_faults_in_one_run_lose_nothing_and_repeat_nothing() {
    let recorded: Vec<Call> = {
        let fake = cluster();
        crashed_owner(&fake);
        fake.record_calls();
        run_to_end(&fake, Arc::new(MemStore::new()), "recording");
        fake.take_calls()
    };
    let mut runs = 0;
    for (i, first) in recorded.iter().enumerate() {
        for second in &recorded[i..] {
            for (f1, f2) in [(Fault::Crash, Fault::CrashAfter), (Fault::Abortable, Fault::Crash), (Fault::AckLost, Fault::Fenced)] {
                let what = format!("{f1:?} at {first}, then {f2:?} at {second}");
                let fake = cluster();
                crashed_owner(&fake);
                fake.inject(Injection::at(first, f1));
                fake.inject(Injection::at(second, f2));
                let state = Arc::new(MemStore::new());
                let visible_after_error = run_to_end(&fake, state.clone(), &what);
                assert!(visible_after_error.is_empty(), "{what}: failed commits visible: {visible_after_error:?}");
                fake.clear_faults();
                check_end(&fake, &state, &what);
                runs += 1;
            }
        }
    }
    eprintln!("{runs} runs with two faults exactly once");
}
