//! `SinkOp`: encodes rows with the sink's key and value formats and appends them to the sink
//! topic, each record to the partition of its key (murmur2, as Kafka's default partitioner).
//!
//! Stateless. Records are appended at once; exactly-once comes from the checkpoint, which records
//! every sink partition's end offset, and recovery, which cuts what was written after it.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;
use storage::{partition_for_key, RecordIn, TopicLog};

use crate::batch::{op_column, ts_column};
use crate::error::{EngineError, Result};
use crate::format::{new_encoder, EncodedBatch, RecordEncoder, Role};
use crate::operator::{OpContext, Operator};
use crate::processing_log::{ErrorKind, ProcessingError};
use crate::spec::{SinkKind, SinkSpec};
use crate::types::RowOp;

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
}

impl SinkOp {
    /// A sink for `spec` writing to `log`; `records_out` counts records written.
    pub fn new(
        spec: SinkSpec,
        log: Arc<dyn TopicLog>,
        records_out: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Self> {
        let partitions = log.describe_topic(&spec.topic)?.config.partitions;
        let fmt_err = |source| EngineError::Format { topic: spec.topic.clone(), source };
        let key_enc = new_encoder(&spec.key_format, Role::Key, &spec.key_fields).map_err(fmt_err)?;
        let value_enc = new_encoder(&spec.value_format, Role::Value, &spec.value_fields).map_err(fmt_err)?;
        Ok(SinkOp {
            spec,
            log,
            partitions,
            key_enc,
            value_enc,
            keys: EncodedBatch::new(),
            values: EncodedBatch::new(),
            records_out,
        })
    }
}

impl Operator for SinkOp {
    fn name(&self) -> &'static str {
        "sink"
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        let key_cols: Vec<ArrayRef> = self.spec.key_columns.iter().map(|&i| batch.column(i).clone()).collect();
        let value_cols: Vec<ArrayRef> = self.spec.value_columns.iter().map(|&i| batch.column(i).clone()).collect();
        self.keys.clear();
        self.values.clear();
        let enc_err = |source| EngineError::Encode { topic: self.spec.topic.clone(), source };
        let rows = batch.num_rows();
        if let Err(e) = self.key_enc.encode_rows(&key_cols, rows, &mut self.keys).map_err(enc_err) {
            cx.log_error(ProcessingError::new(ErrorKind::SerializationError, e.to_string()));
            return Ok(());
        }
        if let Err(e) = self.value_enc.encode_rows(&value_cols, rows, &mut self.values).map_err(enc_err) {
            cx.log_error(ProcessingError::new(ErrorKind::SerializationError, e.to_string()));
            return Ok(());
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
        let n = self.partitions;
        let default_partition = cx.task.partition % n;
        let mut by_partition: Vec<Vec<RecordIn<'_>>> = vec![Vec::new(); n as usize];
        for i in 0..batch.num_rows() {
            let op = RowOp::from_code(ops.value(i));
            let value = match (self.spec.kind, op) {
                (SinkKind::Table, RowOp::UpdateBefore) => continue,
                (_, RowOp::Delete) => None,
                _ => self.values.get(i),
            };
            let plain_key = self.keys.get(i);
            // Windowed keys partition by the key without its window.
            let p = match plain_key {
                Some(k) if !self.spec.key_columns.is_empty() => partition_for_key(k, n),
                _ => default_partition,
            };
            let key = match &windowed {
                Some(w) => Some(w[i].as_slice()),
                None => plain_key,
            };
            by_partition[p as usize].push(RecordIn { timestamp: ts.value(i), key, value, headers: &[] });
        }
        let mut written = 0u64;
        for (p, records) in by_partition.iter().enumerate() {
            if !records.is_empty() {
                self.log.append(&self.spec.topic, p as u32, records)?;
                written += records.len() as u64;
            }
        }
        self.records_out.fetch_add(written, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}
