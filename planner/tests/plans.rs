//! Plans stored with their state: every persistent query's plan is stored (as data, with a format
//! version) when it starts; `EXPLAIN <query id>` shows it; a later start refuses a plan format it
//! does not know, or a plan that does not fit the state, naming the query.

// An integration test: its helpers may unwrap too (a panic is a failed test).
#![allow(clippy::unwrap_used)]

use eddy_planner::{Eddy, OpenOptions, Output, PlanError, Session};
use engine::plan_data::{OpData, PlanData, PLAN_FORMAT_VERSION};
use engine::runtime::keys::plan_key;
use engine::EngineConfig;
use storage::StateBatch;

fn run(s: &mut Session, sql: &str) -> Vec<Output> {
    s.execute_all(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn lines(out: &Output) -> Vec<String> {
    let Output::Rows(rows) = out else { panic!("rows") };
    let b = &rows.batches[0];
    let col = b.column(0).as_any().downcast_ref::<datafusion::arrow::array::StringArray>().unwrap();
    (0..b.num_rows()).map(|i| col.value(i).to_string()).collect()
}

const ID: &str = "CTAS_COUNTS_1";

/// A data directory with an aggregate that has counted two rows, closed.
fn data_dir() -> tempfile::TempDir {
    data_dir_with("")
}

/// [`data_dir`] with more settings for the source topic.
fn data_dir_with(settings: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let eddy = Eddy::open(dir.path(), EngineConfig::default()).unwrap();
    let mut s = eddy.session();
    run(&mut s, &format!("CREATE STREAM s (id INT KEY, v STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1{settings});"));
    run(&mut s, "SET 'auto.offset.reset'='earliest';");
    run(&mut s, "CREATE TABLE counts AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;");
    run(&mut s, "INSERT INTO s (id, v) VALUES (1, 'a'); INSERT INTO s (id, v) VALUES (1, 'b');");
    eddy.engine().wait_caught_up(None, std::time::Duration::from_secs(30)).unwrap();
    eddy.shutdown().unwrap();
    dir
}

/// Rewrites the stored plan of `ID` in a closed data directory.
fn edit_plan(dir: &std::path::Path, f: impl FnOnce(&mut PlanData)) {
    overwrite_plan(dir, |engine| {
        let mut plan = engine.stored_plan(ID).unwrap().expect("stored");
        f(&mut plan);
        serde_json::to_vec(&plan).unwrap()
    })
}

/// Replaces the stored plan of `ID` in a closed data directory with the bytes `f` makes.
fn overwrite_plan(dir: &std::path::Path, f: impl FnOnce(&engine::Engine) -> Vec<u8>) {
    let eddy = Eddy::open(dir, EngineConfig::default()).unwrap();
    let engine = eddy.engine().clone();
    let bytes = f(&engine);
    let mut b = StateBatch::default();
    b.put(&plan_key(ID), &bytes);
    eddy.shutdown().unwrap();
    // After the final checkpoint, so that nothing writes the plan again before the next start.
    engine.state().commit(&b, true).unwrap();
    drop(engine);
    drop(eddy);
}

fn open(dir: &std::path::Path) -> Result<Eddy, PlanError> {
    let mut last = None;
    // The previous instance's threads release the state store as they stop.
    for _ in 0..50 {
        match Eddy::open(dir, EngineConfig::default()) {
            Err(e) if e.to_string().contains("lock") => {
                last = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => return r,
        }
    }
    Err(last.unwrap())
}

#[test]
fn the_plan_is_stored_and_explained() {
    let dir = data_dir();
    let eddy = open(dir.path()).unwrap();
    let plan = eddy.engine().stored_plan(ID).unwrap().expect("a stored plan");
    assert_eq!(plan.format_version, PLAN_FORMAT_VERSION);
    assert_eq!(plan.query_id, ID);
    let agg = plan.subtopologies[0].nodes.iter().find_map(|n| match &n.op {
        OpData::Aggregate { calls, .. } => Some(calls.clone()),
        _ => None,
    });
    assert_eq!(agg.unwrap()[0].function.to_uppercase(), "COUNT");
    let mut s = eddy.session();
    let shown = lines(&run(&mut s, &format!("EXPLAIN {ID};"))[0]);
    assert_eq!(shown, plan.to_string().lines().map(str::to_string).collect::<Vec<_>>());
    assert!(shown.iter().any(|l| l.contains("Aggregate")), "{shown:?}");
    // Counting carries on under the stored plan.
    run(&mut s, "INSERT INTO s (id, v) VALUES (1, 'c');");
    let out = run(&mut s, "SELECT n FROM counts WHERE id = 1;");
    let Output::Rows(r) = &out[0] else { panic!() };
    let n = r.batches[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap().value(0);
    assert_eq!(n, 3);
    eddy.shutdown().unwrap();
}

#[test]
fn an_unknown_plan_format_is_refused_naming_the_query() {
    let dir = data_dir();
    edit_plan(dir.path(), |p| p.format_version = PLAN_FORMAT_VERSION + 1);
    let err = open(dir.path()).err().expect("refused");
    let msg = engine::error_chain(&err);
    assert!(msg.contains(&format!("persistent query \"{ID}\" cannot be started")), "{msg}");
    assert!(msg.contains(&format!("stored in plan format {}", PLAN_FORMAT_VERSION + 1)), "{msg}");
    // The operator can start without it; its state stays.
    let eddy = Eddy::open_with(dir.path(), EngineConfig::default(), OpenOptions { skip_damaged_commands: true }).unwrap();
    assert!(eddy.startup_notes().iter().any(|n| n.contains(ID) && n.contains("plan format")), "{:?}", eddy.startup_notes());
    assert!(eddy.engine().query(ID).is_none());
    // SHOW QUERIES lists it as not started, with why.
    let mut s = eddy.session();
    let shown = table(&run(&mut s, "SHOW QUERIES;")[0]);
    let row = shown.iter().find(|r| r[0] == ID).unwrap_or_else(|| panic!("{shown:?}"));
    assert!(row[2].starts_with("NOT STARTED: ") && row[2].contains("plan format"), "{row:?}");
    assert_eq!(row[3], "COUNTS");
    let extended = table(&run(&mut s, "SHOW QUERIES EXTENDED;")[0]);
    assert!(extended.iter().any(|r| r[0] == ID && r[2].starts_with("NOT STARTED: ")), "{extended:?}");
    // Its table is read from the aggregate's state as the last checkpoint left it.
    for sql in ["SELECT n FROM counts WHERE id = 1;", "SELECT SUM(n) FROM counts;"] {
        let out = run(&mut s, sql);
        let Output::Rows(r) = &out[0] else { panic!("{sql}") };
        let n = r.batches[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap().value(0);
        assert_eq!(n, 2, "{sql}");
    }
    // TERMINATE drops it and its state.
    assert!(eddy.engine().stored_plan(ID).is_err());
    run(&mut s, &format!("TERMINATE {ID};"));
    assert!(!table(&run(&mut s, "SHOW QUERIES;")[0]).iter().any(|r| r[0] == ID));
    assert!(eddy.engine().stored_plan(ID).unwrap().is_none());
    eddy.shutdown().unwrap();
}

/// Every row of a table of strings.
fn table(out: &Output) -> Vec<Vec<String>> {
    let Output::Rows(rows) = out else { panic!("rows") };
    let mut all = Vec::new();
    for b in &rows.batches {
        let cols: Vec<_> = b.columns().iter().map(|c| c.as_any().downcast_ref::<datafusion::arrow::array::StringArray>().unwrap()).collect();
        all.extend((0..b.num_rows()).map(|i| cols.iter().map(|c| c.value(i).to_string()).collect::<Vec<_>>()));
    }
    all
}

#[test]
fn a_plan_that_does_not_fit_the_state_is_refused() {
    let dir = data_dir();
    edit_plan(dir.path(), |p| {
        for n in &mut p.subtopologies[0].nodes {
            if let OpData::Aggregate { calls, .. } = &mut n.op {
                calls[0].function = "SUM".into();
            }
        }
    });
    let err = open(dir.path()).err().expect("refused");
    let msg = engine::error_chain(&err);
    assert!(msg.contains(&format!("query \"{ID}\" cannot resume its state: this release plans it differently")), "{msg}");
    assert!(msg.contains("SUM"), "{msg}");
}

#[test]
fn a_query_that_does_not_run_keeps_its_unread_input() {
    let dir = data_dir_with(", RETENTION_BYTES=2048, SEGMENT_BYTES=1024");
    edit_plan(dir.path(), |p| p.format_version = PLAN_FORMAT_VERSION + 1);
    let eddy = Eddy::open_with(dir.path(), EngineConfig::default(), OpenOptions { skip_damaged_commands: true }).unwrap();
    assert!(eddy.engine().query(ID).is_none());
    let mut s = eddy.session();
    for i in 0..60 {
        run(&mut s, &format!("INSERT INTO s (id, v) VALUES ({i}, 'payload-{i:04}-abcdefghijklmnopqrstuvwxyz');"));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    eddy.engine().clean_now(now).unwrap();
    // The refused query had read 2 records: the 60 after them wait for it, whatever the limit.
    let part = eddy.engine().log().describe_topic("s").unwrap().partitions[0];
    assert!(part.start_offset <= 2 && part.size_bytes > 2048, "{part:?}");
    eddy.shutdown().unwrap();
}

#[test]
fn a_query_whose_input_cannot_be_told_stops_cleaning_and_says_why() {
    let dir = data_dir_with(", RETENTION_BYTES=2048, SEGMENT_BYTES=1024");
    overwrite_plan(dir.path(), |_| b"not a plan".to_vec());
    let eddy = Eddy::open_with(dir.path(), EngineConfig::default(), OpenOptions { skip_damaged_commands: true }).unwrap();
    assert!(eddy.engine().query(ID).is_none());
    let mut s = eddy.session();
    for i in 0..60 {
        run(&mut s, &format!("INSERT INTO s (id, v) VALUES ({i}, 'payload-{i:04}-abcdefghijklmnopqrstuvwxyz');"));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let err = eddy.engine().clean_now(now).expect_err("a pass that cannot tell its floors fails");
    let msg = engine::error_chain(&err);
    assert!(msg.contains(&format!("no topic is cleaned: query \"{ID}\" does not run and has checkpointed offsets")), "{msg}");
    let status = eddy.engine().cleanup_status("s").expect("a status");
    assert_eq!(status.error.as_deref(), Some(msg.as_str()));
    assert!(eddy.engine().cleaner_stats().failures >= 1);
    assert_eq!(eddy.engine().log().describe_topic("s").unwrap().partitions[0].start_offset, 0);
    eddy.shutdown().unwrap();
}
