//! `SinkOp`: encodes rows with the sink's key and value formats and appends them to the sink
//! topic, each record to the partition of its key (murmur2, as Kafka's default partitioner).
//! Rows that carry a `_headers` column are written with those headers.
//!
//! Records are appended at once; exactly-once comes from the checkpoint, which records every
//! sink partition's end offset, and recovery, which cuts what was written after it. A table sink
//! may also materialize its rows for pull queries: the latest row per key is buffered and
//! written to the state store with each checkpoint (see [`crate::materialized`]; all but the
//! last few thousand keys are written ahead of the barrier, see [`crate::write_buffer`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;
use storage::{partition_for_key, Header, RecordIn, TopicLog};

use crate::batch::{op_column, ts_column};

use crate::error::{EngineError, Result};
use crate::materialized;
use crate::types::Epoch;
use crate::format::{encode_each, new_encoder_with, EncodedBatch, RecordEncoder, Role};
use crate::registry::Registry;
use crate::operator::{OpContext, Operator};
use crate::processing_log::{ErrorKind, ProcessingError};
use crate::spec::{SinkKind, SinkSpec, OP_HEADER};
use crate::types::RowOp;
use crate::write_buffer::WriteBuffer;

/// Appends rows to a topic.
pub struct SinkOp {
    spec: SinkSpec,
    log: Arc<dyn TopicLog>,
    partitions: u32,
    key_enc: Box<dyn RecordEncoder>,
    value_enc: Box<dyn RecordEncoder>,
    keys: EncodedBatch,
    values: EncodedBatch,
    records_out: Arc<std::sync::atomic::AtomicU64>,
    /// Records this instance appended (for the task's per-node counters).
    written: u64,
    /// Materialized rows written since the last barrier: entry key -> entry value (None: deleted).
    store: WriteBuffer,
    /// The materialized table's key prefix, when the sink materializes one.
    store_prefix: Option<Vec<u8>>,
    /// (segment length, retention) when the materialized table keeps its windows by time
    /// segment (decided at open: a table already written without segments keeps that layout).
    segmented: Option<(i64, i64)>,
    /// The newest row time written (for the retention of windows kept by segment).
    max_ts: i64,
    /// Segments before this one were deleted (at the last barrier).
    deleted_below: i64,
}

impl SinkOp {
    /// A sink for `spec` writing to `log`; `records_out` counts records written.
    pub fn new(
        spec: SinkSpec,
        log: Arc<dyn TopicLog>,
        records_out: Arc<std::sync::atomic::AtomicU64>,
        registry: &Registry,
    ) -> Result<Self> {
        let partitions = if spec.append { log.describe_topic(&spec.topic)?.config.partitions } else { 1 };
        let fmt_err = |source| EngineError::Format { topic: spec.topic.clone(), source };
        let key_enc = new_encoder_with(&spec.key_format, Role::Key, &spec.key_fields, Some(registry)).map_err(fmt_err)?;
        let value_enc = new_encoder_with(&spec.value_format, Role::Value, &spec.value_fields, Some(registry)).map_err(fmt_err)?;
        Ok(SinkOp {
            log,
            partitions,
            key_enc,
            value_enc,
            keys: EncodedBatch::new(),
            values: EncodedBatch::new(),
            records_out,
            written: 0,
            store: WriteBuffer::new(WRITE_BEHIND_KEYS),
            store_prefix: spec.materialize.as_deref().map(materialized::table_prefix),
            segmented: None,
            max_ts: i64::MIN,
            deleted_below: i64::MIN,
            spec,
        })
    }
}

impl Operator for SinkOp {
    fn records_written(&self) -> Option<u64> {
        Some(self.written)
    }

    fn name(&self) -> &'static str {
        "sink"
    }

    fn open(&mut self, cx: &mut OpContext<'_>) -> Result<()> {
        let retention = self.spec.window.and_then(|w| w.retention_ms.filter(|_| !w.session));
        if let (Some(prefix), Some(retention), SinkKind::Table) = (&self.store_prefix, retention, self.spec.kind) {
            // Rows written before segments existed keep their layout.
            let mut end = prefix.clone();
            end.push(materialized::SEGMENTED);
            if cx.state.scan(prefix, &end)?.next().is_none() {
                self.segmented = Some((materialized::segment_ms(retention), retention));
            }
        }
        Ok(())
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        let key_cols: Vec<ArrayRef> = self.spec.key_columns.iter().map(|&i| batch.column(i).clone()).collect();
        let value_cols: Vec<ArrayRef> = self.spec.value_columns.iter().map(|&i| batch.column(i).clone()).collect();
        self.keys.clear();
        self.values.clear();
        let enc_err = |source| EngineError::Encode { topic: self.spec.topic.clone(), source };
        let rows = batch.num_rows();
        // Rows the formats cannot write are logged and skipped; the rest of the batch goes on.
        let mut skip = vec![false; rows];
        for (enc, cols, out) in [(&mut self.key_enc, &key_cols, &mut self.keys), (&mut self.value_enc, &value_cols, &mut self.values)] {
            match encode_each(enc.as_mut(), cols, rows, out) {
                Ok(failed) => {
                    for (row, e) in failed {
                        skip[row] = true;
                        cx.log_error(ProcessingError::new(ErrorKind::SerializationError, enc_err(e).to_string()));
                    }
                }
                Err(e) => {
                    cx.log_error(ProcessingError::new(ErrorKind::SerializationError, enc_err(e).to_string()));
                    return Ok(());
                }
            }
        }
        let ts = ts_column(&batch);
        let ops = op_column(&batch);
        // Windowed keys: the key bytes followed by the window, as Kafka Streams writes them.
        let windowed: Option<Vec<Vec<u8>>> = self.spec.window.map(|w| {
            let starts = batch.column(w.start_column).as_primitive::<Int64Type>();
            let ends = batch.column(w.end_column).as_primitive::<Int64Type>();
            (0..batch.num_rows())
                .map(|i| {
                    let mut k = self.keys.get(i).unwrap_or_default().to_vec();
                    if w.session {
                        k.extend_from_slice(&ends.value(i).to_be_bytes());
                    }
                    k.extend_from_slice(&starts.value(i).to_be_bytes());
                    k
                })
                .collect()
        });
        // Headers forwarded from the source records, when the batch carries them.
        let forwarded: Option<Vec<Vec<Header>>> = match batch.schema().index_of(crate::types::HEADERS_COLUMN) {
            Ok(i) if !self.spec.internal => Some(headers_of(batch.column(i))),
            _ => None,
        };
        let n = self.partitions;
        let default_partition = cx.task.partition % n;
        let mut by_partition: Vec<Vec<RecordIn<'_>>> = vec![Vec::new(); n as usize];
        let op_headers: Vec<[Header; 1]> = if self.spec.internal {
            [RowOp::Insert, RowOp::UpdateBefore, RowOp::UpdateAfter, RowOp::Delete]
                .iter()
                .map(|op| [Header { key: OP_HEADER.to_string(), value: Some(vec![*op as u8]) }])
                .collect()
        } else {
            Vec::new()
        };
        for i in 0..batch.num_rows() {
            if skip[i] {
                continue;
            }
            let op = RowOp::from_code(ops.value(i));
            let value = match (self.spec.kind, op) {
                _ if self.spec.internal => self.values.get(i),
                (SinkKind::Table, RowOp::UpdateBefore) => continue,
                (_, RowOp::Delete) => None,
                _ => self.values.get(i),
            };
            let headers: &[Header] = match (&forwarded, self.spec.internal) {
                (_, true) => &op_headers[op as usize],
                (Some(f), false) => &f[i],
                (None, false) => &[],
            };
            // A single null key column is a null key, as ksqlDB writes it (not an empty
            // DELIMITED line); several null columns still make an object of nulls.
            let null_key = key_cols.len() == 1 && key_cols[0].is_null(i);
            let plain_key = if null_key && windowed.is_none() { None } else { self.keys.get(i) };
            // Windowed keys partition by the key without its window.
            let p = match plain_key {
                Some(k) if !self.spec.key_columns.is_empty() => partition_for_key(k, n),
                _ => default_partition,
            };
            let key = match &windowed {
                Some(w) => Some(w[i].as_slice()),
                None => plain_key,
            };
            if let (Some(prefix), SinkKind::Table) = (&self.store_prefix, self.spec.kind) {
                let k = plain_key.unwrap_or_default();
                let win = match &windowed {
                    Some(w) => &w[i][w[i].len() - if self.spec.window.is_some_and(|w| w.session) { 16 } else { 8 }..],
                    None => &[][..],
                };
                let entry = value.map(|v| materialized::entry_value(ts.value(i), v));
                // Kept by segment: time windows, whose window bytes are the start.
                let key = match (self.segmented, <[u8; 8]>::try_from(win)) {
                    (Some((seg, _)), Ok(start)) => {
                        self.max_ts = self.max_ts.max(ts.value(i));
                        let segment = materialized::segment_of(i64::from_be_bytes(start), seg);
                        materialized::segmented_entry_key_under(prefix, segment, Some(k), win)
                    }
                    _ => materialized::entry_key_under(prefix, k, win),
                };
                self.store.put(key, entry);
            }
            if !self.spec.append {
                continue;
            }
            by_partition[p as usize].push(RecordIn { timestamp: ts.value(i), key, value, headers });
        }
        let mut written = 0u64;
        for (p, records) in by_partition.iter().enumerate() {
            if !records.is_empty() {
                self.log.append(&self.spec.topic, p as u32, records)?;
                written += records.len() as u64;
            }
        }
        if let Some(ahead) = cx.writes_ahead() {
            self.store.write_ahead(ahead);
        }
        self.records_out.fetch_add(written, std::sync::atomic::Ordering::Relaxed);
        self.written += written;
        if self.store.len() > STORE_CAPACITY {
            cx.request_checkpoint();
        }
        Ok(())
    }

    fn on_barrier(&mut self, _epoch: Epoch, cx: &mut OpContext<'_>) -> Result<()> {
        self.store.drain_into(cx.writes());
        // Segments whose windows all start more than the retention before the newest row go,
        // with one range delete after this epoch's writes (so it covers them too).
        if let (Some(prefix), Some((seg, retention))) = (&self.store_prefix, self.segmented) {
            if self.max_ts > i64::MIN {
                let below = materialized::segment_of(self.max_ts.saturating_sub(retention), seg);
                if below > self.deleted_below {
                    let from = materialized::segment_prefix_under(prefix, i64::MIN);
                    cx.writes().delete_range(&from, &materialized::segment_prefix_under(prefix, below));
                    self.deleted_below = below;
                }
            }
        }
        Ok(())
    }
}

/// The headers held in a `_headers` column (`ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`), per row.
fn headers_of(col: &ArrayRef) -> Vec<Vec<Header>> {
    let list = col.as_list::<i32>();
    let entries = list.values().as_struct();
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_binary::<i32>();
    let offsets = list.value_offsets();
    (0..list.len())
        .map(|i| {
            if list.is_null(i) {
                return Vec::new();
            }
            (offsets[i] as usize..offsets[i + 1] as usize)
                .map(|j| Header {
                    key: keys.value(j).to_string(),
                    value: values.is_valid(j).then(|| values.value(j).to_vec()),
                })
                .collect()
        })
        .collect()
}

/// Materialized rows buffered before a checkpoint is requested.
const STORE_CAPACITY: usize = 100_000;

/// Materialized rows left for the barrier to write; older ones are written ahead. Debug builds
/// (the test suites) leave 64, so that every test with more keys per checkpoint writes ahead.
const WRITE_BEHIND_KEYS: usize = if cfg!(debug_assertions) { 64 } else { 4096 };

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use datafusion::arrow::datatypes::{DataType, Field, Fields};
    use storage::{FileLog, KvStore, LogOptions, StateBatch, TopicAdmin, TopicConfig};

    use super::*;
    use crate::spec::SinkWindow;
    use crate::format::FormatSpec;
    use crate::registry::EmbeddedRegistry;
    use crate::testing::{rows, Harness};

    const INPUT: &str = "k:i64 v:utf8";

    /// A sink of (k key, v value) to topic `out` (two partitions) of a log in `dir`.
    fn harness(kind: SinkKind, materialize: Option<&str>, dir: &std::path::Path) -> (Harness, Arc<FileLog>, Arc<AtomicU64>) {
        windowed_harness(kind, materialize, None, dir)
    }

    /// [`harness`], with rows windowed by their columns 2 and 3 (start, end) when `window` is set.
    fn windowed_harness(
        kind: SinkKind,
        materialize: Option<&str>,
        window: Option<SinkWindow>,
        dir: &std::path::Path,
    ) -> (Harness, Arc<FileLog>, Arc<AtomicU64>) {
        let log = Arc::new(FileLog::open(dir, LogOptions::default()).expect("a log"));
        log.create_topic("out", &TopicConfig::new(2)).expect("a topic");
        let spec = SinkSpec {
            topic: "out".into(),
            kind,
            key_format: FormatSpec::json(),
            value_format: FormatSpec::json(),
            key_columns: vec![0],
            value_columns: vec![1],
            key_fields: Fields::from(vec![Field::new("k", DataType::Int64, true)]),
            value_fields: Fields::from(vec![Field::new("v", DataType::Utf8, true)]),
            window,
            append: true,
            materialize: materialize.map(str::to_string),
            internal: false,
        };
        let records = Arc::new(AtomicU64::new(0));
        let (l, r) = (log.clone(), records.clone());
        // JSON needs no schemas: the registry is there because every sink is given one.
        let registry = Registry(Arc::new(EmbeddedRegistry::open(log.clone()).expect("a registry")));
        let h = Harness::new(move || Box::new(SinkOp::new(spec.clone(), l.clone(), r.clone(), &registry).expect("a sink")));
        (h, log, records)
    }

    /// Every record of `out`: (partition, key, value, timestamp), in offset order per partition.
    fn records(log: &FileLog) -> Vec<(u32, Option<String>, Option<String>, i64)> {
        let mut v = Vec::new();
        for p in 0..2 {
            let b = log.read("out", p, 0, 1 << 20).expect("readable");
            for r in b.iter() {
                let s = |x: Option<&[u8]>| x.map(|b| String::from_utf8_lossy(b).into_owned());
                v.push((p, s(r.key), s(r.value), r.timestamp));
            }
        }
        v
    }

    #[test]
    fn a_table_sink_writes_upserts_and_tombstones_to_the_partition_of_their_key() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (mut h, log, written) = harness(SinkKind::Table, None, dir.path());
        h.batch(0, rows(&format!("{INPUT} | 1 a @5 | 1 a @6 U- | 1 b @6 U+ | 2 c @7 | 2 c @8 -")));
        let got = records(&log);
        let p1 = partition_for_key(b"1", 2);
        let p2 = partition_for_key(b"2", 2);
        let mut want = vec![
            (p1, Some("1".to_string()), Some(r#"{"v":"a"}"#.to_string()), 5),
            (p1, Some("1".to_string()), Some(r#"{"v":"b"}"#.to_string()), 6),
            (p2, Some("2".to_string()), Some(r#"{"v":"c"}"#.to_string()), 7),
            (p2, Some("2".to_string()), None, 8),
        ];
        want.sort_by_key(|r| r.0);
        assert_eq!(got, want, "the retraction (U-) is not written");
        assert_eq!(written.load(std::sync::atomic::Ordering::Relaxed), 4);
        assert!(h.output().is_empty(), "a sink emits nothing downstream");
    }

    #[test]
    fn a_stream_sink_writes_deletes_as_null_values() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (mut h, log, _) = harness(SinkKind::Stream, None, dir.path());
        h.batch(0, rows(&format!("{INPUT} | 3 x @1 | 3 null @2 -")));
        let got: Vec<_> = records(&log).into_iter().map(|r| (r.1, r.2)).collect();
        assert_eq!(got, [(Some("3".into()), Some(r#"{"v":"x"}"#.into())), (Some("3".into()), None)]);
    }

    #[test]
    fn a_materialized_table_sink_keeps_the_latest_row_per_key_at_each_barrier() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (mut h, _log, _) = harness(SinkKind::Table, Some("T"), dir.path());
        h.batch(0, rows(&format!("{INPUT} | 1 a @1 | 2 b @2 | 1 c @3")));
        assert_eq!(h.state_len(), 0, "nothing is written before a barrier");
        h.barrier();
        assert_eq!(h.state_len(), 2);
        h.batch(0, rows(&format!("{INPUT} | 2 b @4 -")));
        h.restart();
        assert_eq!(h.state_len(), 1, "the tombstone deleted key 2");
    }

    /// The materialized windows of table `T` in the harness's state: (key, window start, layout
    /// by segment), in key order.
    fn windows(h: &Harness) -> Vec<(String, i64, bool)> {
        let prefix = materialized::table_prefix("T");
        let end = crate::runtime::keys::prefix_end(&prefix);
        h.state()
            .scan(&prefix, &end)
            .expect("a scan")
            .map(|kv| {
                let (k, _) = kv.expect("an entry");
                let rest = &k[prefix.len()..];
                let (key, win) = materialized::split_entry_key(rest).expect("an entry key");
                let start = i64::from_be_bytes(win.try_into().expect("a window start"));
                (String::from_utf8_lossy(key).into_owned(), start, rest[0] == materialized::SEGMENTED)
            })
            .collect()
    }

    #[test]
    fn a_windowed_table_keeps_its_windows_by_segment_and_deletes_those_past_retention() {
        let dir = tempfile::tempdir().expect("a temp dir");
        // Kept 100 s after the newest row: segments of a minute.
        let window = SinkWindow { start_column: 2, end_column: 3, session: false, retention_ms: Some(100_000) };
        let (mut h, _log, _) = windowed_harness(SinkKind::Table, Some("T"), Some(window), dir.path());
        let input = "k:i64 v:utf8 ws:i64 we:i64";
        h.batch(0, rows(&format!("{input} | 1 a 0 10000 @5000 | 2 b 50000 60000 @55000 | 1 c 70000 80000 @75000")));
        h.barrier();
        let w = |k: &str, start: i64, segmented: bool| (k.to_string(), start, segmented);
        assert_eq!(windows(&h), [w("1", 0, true), w("2", 50000, true), w("1", 70000, true)], "segment 0, then segment 1");
        // The newest row at 200 s: windows starting before 100 s are past retention, and the
        // segments wholly before it (segment 0, [0, 60 s)) go.
        h.batch(0, rows(&format!("{input} | 1 d 190000 200000 @200000")));
        h.barrier();
        assert_eq!(windows(&h), [w("1", 70000, true), w("1", 190000, true)]);
        // A table written before segments keeps its layout (and its rows).
        let (mut h, _log, _) = windowed_harness(SinkKind::Table, Some("T"), Some(window), &dir.path().join("old"));
        let mut old = StateBatch::new();
        old.put(&materialized::entry_key("T", b"9", &0i64.to_be_bytes()), &materialized::entry_value(1, b"{}"));
        h.state().commit(&old, false).expect("a commit");
        h.crash();
        h.batch(0, rows(&format!("{input} | 1 a 0 10000 @500000")));
        h.barrier();
        assert_eq!(windows(&h), [w("1", 0, false), w("9", 0, false)]);
    }
}
