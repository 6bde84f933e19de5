//! Failures are seen: a periodic checkpoint that fails is retried, counted and shown as the
//! queries' state while it persists; a damaged command log stops the start with an error naming
//! the record, unless the operator asks to start without it.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_planner::{Eddy, OpenOptions, Output, PlanError, Session};
use engine::{Engine, EngineConfig};
use storage::{FileLog, KvStore, LogOptions, MemStore, RecordIn, ScanIter, StateBatch, StorageError, TopicLog};

/// A state store whose commits fail while `fail` is set and wait while `stall` is set (counted in
/// `stalled`); it records its `quiesce` and the commits after it.
struct FlakyStore {
    inner: MemStore,
    fail: AtomicBool,
    stall: AtomicBool,
    stalled: std::sync::atomic::AtomicU32,
    quiesced: AtomicBool,
    late_commits: std::sync::atomic::AtomicU32,
}

impl FlakyStore {
    fn new() -> FlakyStore {
        FlakyStore {
            inner: MemStore::new(),
            fail: AtomicBool::new(false),
            stall: AtomicBool::new(false),
            stalled: Default::default(),
            quiesced: AtomicBool::new(false),
            late_commits: Default::default(),
        }
    }
}

impl KvStore for FlakyStore {
    fn get(&self, key: &[u8]) -> storage::Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn multi_get(&self, keys: &[&[u8]]) -> storage::Result<Vec<Option<Vec<u8>>>> {
        self.inner.multi_get(keys)
    }
    fn scan(&self, from: &[u8], to: &[u8]) -> storage::Result<ScanIter<'_>> {
        self.inner.scan(from, to)
    }
    fn commit(&self, batch: &StateBatch, sync: bool) -> storage::Result<()> {
        if self.quiesced.load(Ordering::SeqCst) {
            self.late_commits.fetch_add(1, Ordering::SeqCst);
        }
        if self.stall.load(Ordering::SeqCst) {
            self.stalled.fetch_add(1, Ordering::SeqCst);
            while self.stall.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if self.fail.load(Ordering::Relaxed) {
            return Err(StorageError::Io { path: "state".into(), source: std::io::Error::other("injected write failure") });
        }
        self.inner.commit(batch, sync)
    }
    fn approximate_size(&self, from: &[u8], to: &[u8]) -> u64 {
        self.inner.approximate_size(from, to)
    }
    fn quiesce(&self) {
        assert!(!self.quiesced.swap(true, Ordering::SeqCst), "quiesced twice");
    }
}

fn run(s: &mut Session, sql: &str) -> Vec<Output> {
    s.execute_all(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The Status column of SHOW QUERIES for `id`.
fn status(s: &mut Session, id: &str) -> String {
    let out = run(s, "SHOW QUERIES;");
    let Output::Rows(rows) = &out[0] else { panic!("rows") };
    let b = &rows.batches[0];
    let col = |i: usize| b.column(i).as_any().downcast_ref::<datafusion::arrow::array::StringArray>().unwrap().clone();
    let (ids, statuses) = (col(0), col(2));
    (0..b.num_rows()).find(|&i| ids.value(i) == id).map(|i| statuses.value(i).to_string()).unwrap_or_else(|| panic!("no query {id}"))
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An engine over a log in `dir` and a [`FlakyStore`], checkpointing every 50 ms.
fn flaky_engine(dir: &std::path::Path) -> (Arc<FileLog>, Arc<FlakyStore>, Arc<Engine>) {
    let log = Arc::new(FileLog::open(&dir.join("topics"), LogOptions::default()).unwrap());
    let store = Arc::new(FlakyStore::new());
    let config = EngineConfig { checkpoint_interval: Duration::from_millis(50), ..EngineConfig::default() };
    let engine = Engine::with_parts(log.clone(), store.clone(), config).unwrap();
    (log, store, engine)
}

#[test]
fn a_failing_checkpoint_is_retried_counted_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store, engine) = flaky_engine(dir.path());
    let eddy = Eddy::with_engine(engine.clone()).unwrap();
    let mut s = eddy.session();
    run(&mut s, "SET 'auto.offset.reset' = 'earliest';");
    run(&mut s, "CREATE STREAM s (id INT KEY, v STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);");
    run(&mut s, "CREATE STREAM c AS SELECT id, v FROM s;");
    let id = "CSAS_C_1";
    assert_eq!(status(&mut s, id), "RUNNING");

    store.fail.store(true, Ordering::Relaxed);
    let epoch = engine.committed_epoch();
    run(&mut s, "INSERT INTO s (id, v) VALUES (1, 'a');");
    // Retried without new input, each failure counted; after three the queries show it.
    wait_until("three failed checkpoints", || engine.checkpoint_health().consecutive_failures >= 3);
    let health = engine.checkpoint_health();
    assert!(health.failures_total >= 3, "{health:?}");
    assert!(health.last_error.as_deref().is_some_and(|e| e.contains("injected write failure")), "{health:?}");
    let shown = status(&mut s, id);
    assert!(shown.starts_with("CHECKPOINT FAILING: ") && shown.contains("injected write failure"), "{shown}");
    assert_eq!(engine.committed_epoch(), epoch);

    // The store comes back: the next retry commits what the failed ones held.
    store.fail.store(false, Ordering::Relaxed);
    wait_until("a committed checkpoint", || engine.committed_epoch() > epoch);
    assert_eq!(engine.checkpoint_health().consecutive_failures, 0);
    assert_eq!(status(&mut s, id), "RUNNING");
    let offset = store.get(&engine::runtime::keys::offset_key(id, 0, 0, 0)).unwrap().unwrap();
    assert_eq!(i64::from_be_bytes(offset.try_into().unwrap()), 1);
    eddy.shutdown().unwrap();
}

/// A checkpoint pauses the queries only until its cut is taken: while its state write is slow
/// (here: stalled), the queries go on with new input (a count per key keeps counting), nothing
/// commits, and the checkpoint commits once the store answers. (Reads of the staged cut itself
/// are tested in storage's `pending_store_reads_staged_batches_as_committed`.)
#[test]
fn queries_go_on_while_a_checkpoint_becomes_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (log, store, engine) = flaky_engine(dir.path());
    let eddy = Eddy::with_engine(engine.clone()).unwrap();
    let mut s = eddy.session();
    run(&mut s, "SET 'auto.offset.reset' = 'earliest';");
    run(&mut s, "CREATE STREAM s (id INT KEY, v STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);");
    run(&mut s, "CREATE TABLE t AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;");
    run(&mut s, "INSERT INTO s (id, v) VALUES (1, 'a');");
    engine.wait_caught_up(None, Duration::from_secs(10)).unwrap();
    let before = engine.committed_epoch();
    wait_until("a committed checkpoint", || engine.committed_epoch() > before);

    // The next checkpoint takes its cut (the count of 1 staged), then its state write stalls.
    store.stall.store(true, Ordering::SeqCst);
    run(&mut s, "INSERT INTO s (id, v) VALUES (1, 'b');");
    wait_until("a stalled state write", || store.stalled.load(Ordering::SeqCst) > 0);
    let stalled_at = engine.committed_epoch();
    for v in ["c", "d"] {
        run(&mut s, &format!("INSERT INTO s (id, v) VALUES (1, '{v}');"));
    }
    run(&mut s, "INSERT INTO s (id, v) VALUES (2, 'e');");
    engine.wait_caught_up(None, Duration::from_secs(10)).expect("the query went on while the checkpoint stalled");
    assert_eq!(engine.committed_epoch(), stalled_at, "nothing commits while the store stalls");
    // The table's changelog: the counts went on from the staged state (1, 2, 3, 4 for id 1).
    let counts: Vec<String> =
        log.read("T", 0, 0, 1 << 20).unwrap().iter().filter_map(|r| r.value.map(|v| String::from_utf8_lossy(v).into_owned())).collect();
    assert_eq!(counts.iter().filter(|c| c.contains("\"N\":4")).count(), 1, "{counts:?}");

    store.stall.store(false, Ordering::SeqCst);
    wait_until("the stalled checkpoint and a later one committed", || engine.committed_epoch().0 > stalled_at.0 + 1);
    let offset = store.get(&engine::runtime::keys::offset_key("CTAS_T_1", 0, 0, 0)).unwrap().unwrap();
    assert_eq!(i64::from_be_bytes(offset.try_into().unwrap()), 5);
    eddy.shutdown().unwrap();
}

/// A data directory with a stream and a persistent query, closed.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let eddy = Eddy::open(dir.path(), EngineConfig::default()).unwrap();
    let mut s = eddy.session();
    run(&mut s, "CREATE STREAM s (id INT KEY, v STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);");
    run(&mut s, "CREATE STREAM c AS SELECT id, v FROM s;");
    eddy.shutdown().unwrap();
    dir
}

fn append_command(dir: &std::path::Path, value: Option<&[u8]>) {
    let log = FileLog::open(&dir.join("topics"), LogOptions::default()).unwrap();
    log.append("_eddy_commands", 0, &[RecordIn { timestamp: 0, key: None, value, headers: &[] }]).unwrap();
}

#[test]
fn a_damaged_command_log_stops_the_start_unless_told_to_skip() {
    let dir = data_dir();
    append_command(dir.path(), Some(b"{\"sql\": \"CREATE STREAM x (id INT) WI\x00\xff garbage"));
    let err = Eddy::open(dir.path(), EngineConfig::default()).err().expect("refused");
    assert!(matches!(err, PlanError::DamagedCommand { offset: 2, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("record 2 of the command log (topic \"_eddy_commands\") cannot be decoded"), "{msg}");
    assert!(msg.contains("CREATE STREAM x (id INT) WI") && msg.contains("--skip-damaged-commands"), "{msg}");

    let eddy = Eddy::open_with(dir.path(), EngineConfig::default(), OpenOptions { skip_damaged_commands: true }).unwrap();
    let notes = eddy.startup_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].starts_with("startup: skipped record 2 of the command log"), "{notes:?}");
    // What the good records define is all there and running.
    let mut s = eddy.session();
    assert_eq!(status(&mut s, "CSAS_C_1"), "RUNNING");
    eddy.shutdown().unwrap();
}

#[test]
fn a_statement_that_cannot_be_replayed_is_named() {
    let dir = data_dir();
    let cmd = br#"{"sql": "CREATE STREAM y AS SELECT * FROM nowhere;", "props": {}, "query_id": "CSAS_Y_2"}"#;
    append_command(dir.path(), Some(cmd));
    append_command(dir.path(), None);
    let err = Eddy::open(dir.path(), EngineConfig::default()).err().expect("refused");
    // The first damaged record stops the start: the null one comes first in offset order.
    assert!(matches!(err, PlanError::DamagedCommand { offset: 3, .. }), "{err}");
    assert!(err.to_string().contains("has no value"), "{err}");
    let eddy = Eddy::open_with(dir.path(), EngineConfig::default(), OpenOptions { skip_damaged_commands: true }).unwrap();
    let notes = eddy.startup_notes();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("record 2") && n.contains("cannot be replayed") && n.contains("NOWHERE")), "{notes:?}");
    eddy.shutdown().unwrap();
}

/// Closing waits for everything that holds the state, push queries being stopped among them:
/// the store is quiesced once, nothing commits after, and no thread holds it when `close`
/// returns (RocksDB's threads must be idle and its database closed before the process exits).
#[test]
fn close_waits_for_stopping_queries_and_quiesces_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(FileLog::open(&dir.path().join("topics"), LogOptions::default()).unwrap());
    let store = Arc::new(FlakyStore::new());
    let engine = Engine::with_parts(log, store.clone(), EngineConfig::default()).unwrap();
    let eddy = Eddy::with_engine(engine).unwrap();
    let mut s = eddy.session();
    run(&mut s, "SET 'auto.offset.reset' = 'earliest';");
    run(&mut s, "CREATE STREAM s (id INT KEY, v STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);");
    run(&mut s, "CREATE TABLE t AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;");
    for i in 0..50 {
        run(&mut s, &format!("INSERT INTO s (id, v) VALUES ({}, 'x');", i % 7));
    }
    // Push queries dropped unread are stopped without being waited for.
    for _ in 0..5 {
        let out = run(&mut s, "SELECT * FROM t EMIT CHANGES;");
        assert!(matches!(out[0], Output::Stream(_)), "a push query");
    }
    drop(s);
    eddy.close().unwrap();
    assert!(store.quiesced.load(Ordering::SeqCst), "the state was not quiesced");
    assert_eq!(store.late_commits.load(Ordering::SeqCst), 0, "commits after quiesce");
    assert_eq!(Arc::strong_count(&store), 1, "a thread still holds the state after close");
}
