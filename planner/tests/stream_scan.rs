//! A pull query on a stream is a scan of its topic up to the end the topic has when the scan
//! begins: it ends while a writer keeps appending, and it holds every record written before it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_planner::{Eddy, Output};
use engine::EngineConfig;

#[test]
fn a_stream_scan_ends_while_a_writer_keeps_writing() {
    let dir = tempfile::tempdir().unwrap();
    let eddy = Eddy::open(dir.path(), EngineConfig::default()).unwrap();
    let mut s = eddy.session();
    s.execute_all("CREATE STREAM s (id INT KEY, v INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);").unwrap();
    for i in 0..100 {
        s.execute_all(&format!("INSERT INTO s (id, v) VALUES ({i}, {i});")).unwrap();
    }
    // A scan would wait for this writer forever if it chased the topic's end.
    s.execute_all("SET 'eddy.pull.timeout.ms' = '600000';").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (eddy, stop) = (eddy.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut w = eddy.session();
            let mut i = 100;
            while !stop.load(Ordering::Relaxed) {
                w.execute_all(&format!("INSERT INTO s (id, v) VALUES ({i}, {i});")).unwrap();
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let Output::Stream(mut pq) = s.execute_all("SELECT * FROM s;").unwrap().pop().unwrap() else { panic!("a scan streams") };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rows = rt.block_on(async {
        let mut n = 0;
        while let Ok(Some(b)) = pq.next_timeout(Duration::from_secs(120)).await {
            n += b.num_rows();
        }
        n
    });
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(rows >= 100, "the scan holds the records written before it: {rows}");
    assert!(took < Duration::from_secs(120), "the scan ended only after {took:?}");
    eddy.shutdown().unwrap();
}
