//! Criterion benches of the embedded topic log (`storage::FileLog`): appending and reading
//! batches of 1,000 records with 8-byte keys and 100-byte values, reported in records/s.
//!
//! The log runs with the default fsync policy (`OnSync`) and no `sync()` calls, so appends go to
//! the page cache, as they do between checkpoints. Reads hit the page cache too.

// criterion_group! defines a pub fn that cannot carry a doc comment.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use storage::{FileLog, LogOptions, RecordIn, TopicAdmin, TopicConfig, TopicLog};

const BATCH: usize = 1000;
/// Frame bytes of one record: 36 bytes of framing, an 8-byte key, a 100-byte value.
const FRAME: usize = 36 + 8 + 100;
/// Records kept in the append topic before it is truncated (bounds disk use to ~300 MB).
const APPEND_LIMIT: i64 = 2_000_000;
/// Records in the read topic.
const READ_RECORDS: i64 = 1_000_000;

fn batch<'a>(keys: &'a [[u8; 8]], value: &'a [u8; 100]) -> Vec<RecordIn<'a>> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| RecordIn {
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(k),
            value: Some(value),
            headers: &[],
        })
        .collect()
}

fn bench_log(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path(), LogOptions::default()).expect("open log");
    let keys: Vec<[u8; 8]> = (0..BATCH as u64).map(u64::to_be_bytes).collect();
    let value = [0x5au8; 100];
    let records = batch(&keys, &value);

    let mut g = c.benchmark_group("log");
    g.throughput(Throughput::Elements(BATCH as u64));

    log.create_topic("append", &TopicConfig::new(1))
        .expect("create topic");
    g.bench_function("append_1000x100B", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let first = log
                    .append("append", 0, black_box(&records))
                    .expect("append");
                spent += start.elapsed();
                if first >= APPEND_LIMIT {
                    log.truncate("append", 0, 0).expect("truncate");
                }
            }
            spent
        })
    });

    log.create_topic("read", &TopicConfig::new(1))
        .expect("create topic");
    for _ in 0..READ_RECORDS / BATCH as i64 {
        log.append("read", 0, &records).expect("append");
    }
    let mut from = 0;
    g.bench_function("read_1000x100B", |b| {
        b.iter(|| {
            let batch = log.read("read", 0, from, BATCH * FRAME).expect("read");
            assert_eq!(batch.len(), BATCH);
            let bytes: usize = batch
                .iter()
                .map(|r| r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len))
                .sum();
            black_box(bytes);
            from = if batch.next_offset >= READ_RECORDS {
                0
            } else {
                batch.next_offset
            };
        })
    });
    g.finish();
}

criterion_group!(benches, bench_log);
criterion_main!(benches);
