//! Reading one partition of a topic into batches: the log hands out raw records, the key and
//! value decoders append them column by column, and the source adds the pseudo columns and the
//! internal `_ts`/`_op` columns. Records that cannot be decoded, or whose event time cannot be
//! extracted, are dropped and reported to the processing log; the query goes on. A table ignores
//! records without a key, as Kafka Streams' table source does.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanArray, Int32Array, Int64Array, Int8Array, ListArray, StringBuilder,
    StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use storage::{Offset, TopicLog};

use crate::error::{EngineError, Result};
use crate::expr::eval;
use crate::format::{new_decoder_with, RecordDecoder, Role};
use crate::registry::Registry;
use crate::processing_log::{ErrorKind, ProcessingError, RawRecord};
use crate::spec::{SourceColumn, SourceKind, SourceSpec};
use crate::types::RowOp;

/// Reads and decodes one topic partition.
pub(crate) struct SourceReader {
    /// Node index of the source in its DAG.
    pub node: usize,
    spec: SourceSpec,
    schema: SchemaRef,
    user_schema: SchemaRef,
    partition: u32,
    /// Next offset to read.
    pub next_offset: Offset,
    key_dec: Box<dyn RecordDecoder>,
    value_dec: Box<dyn RecordDecoder>,
}

impl SourceReader {
    /// A reader of `partition` of `spec.topic` producing batches of `schema`, from `next_offset`.
    pub fn new(node: usize, spec: SourceSpec, schema: SchemaRef, partition: u32, next_offset: Offset, registry: &Registry) -> Result<Self> {
        let fmt_err = |source| EngineError::Format { topic: spec.topic.clone(), source };
        let key_dec = new_decoder_with(&spec.key_format, Role::Key, &spec.key_fields, Some(registry)).map_err(fmt_err)?;
        let value_dec = new_decoder_with(&spec.value_format, Role::Value, &spec.value_fields, Some(registry)).map_err(fmt_err)?;
        let n = schema.fields().len() - 2;
        let user_schema = Arc::new(Schema::new(schema.fields()[..n].to_vec()));
        Ok(SourceReader { node, spec, schema, user_schema, partition, next_offset, key_dec, value_dec })
    }

    /// The topic read.
    pub fn topic(&self) -> &str {
        &self.spec.topic
    }

    /// The partition read.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Reads up to about `max_bytes` of records; `None` when there is nothing new.
    pub fn poll(
        &mut self,
        log: &dyn TopicLog,
        max_bytes: usize,
        errors: &mut Vec<ProcessingError>,
    ) -> Result<Option<(RecordBatch, Vec<Offset>)>> {
        let rb = log.read(&self.spec.topic, self.partition, self.next_offset, max_bytes)?;
        if rb.is_empty() {
            if rb.next_offset > self.next_offset {
                self.next_offset = rb.next_offset;
            }
            return Ok(None);
        }
        let n = rb.len();
        let mut keep = Vec::with_capacity(n);
        let mut all_ok = true;
        let mut ts = Vec::with_capacity(n);
        let mut ops = Vec::with_capacity(n);
        let mut offsets = Vec::with_capacity(n);
        let mut wstart = Vec::new();
        let mut wend = Vec::new();
        let null_key_table = self.spec.kind == SourceKind::Table && !self.spec.internal && !self.spec.key_fields.is_empty();
        for rec in rb.iter() {
            let key = match self.spec.window {
                None => Ok(rec.key),
                Some(w) => split_window(rec.key, w, &mut wstart, &mut wend),
            };
            let k: Result<(), String> = match key {
                Ok(key) => self.key_dec.append(key).map_err(|e| e.to_string()),
                Err(msg) => {
                    let _ = self.key_dec.append(None);
                    Err(msg)
                }
            };
            let v = self.value_dec.append(rec.value);
            let null_value = rec.value.is_none() || (v.is_ok() && self.value_dec.last_was_null());
            let internal_op = if self.spec.internal { internal_op(rec.raw_headers) } else { None };
            let ok = match (k, v) {
                (Ok(()), Ok(())) => true,
                (Err(e), _) => {
                    errors.push(self.dead_letter(self.error_at(rec.offset, format!("cannot decode key: {e}")), &rec));
                    false
                }
                (_, Err(e)) => {
                    errors.push(self.dead_letter(self.error_at(rec.offset, format!("cannot decode value: {e}")), &rec));
                    false
                }
            };
            // A table ignores records without a key, as Kafka Streams' table source does.
            let ok = ok && !(null_key_table && rec.key.is_none());
            all_ok &= ok;
            keep.push(ok);
            ts.push(rec.timestamp);
            ops.push(match internal_op {
                Some(op) => op,
                None if null_value => RowOp::Delete as i8,
                None => RowOp::Insert as i8,
            });
            offsets.push(rec.offset);
        }
        self.next_offset = rb.next_offset;
        let keys = self.key_dec.finish();
        let values = self.value_dec.finish();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for c in &self.spec.columns {
            cols.push(match c {
                SourceColumn::Key(i) => keys[*i].clone(),
                SourceColumn::Value(i) => values[*i].clone(),
                SourceColumn::RowPartition => Arc::new(Int32Array::from(vec![self.partition as i32; n])),
                SourceColumn::RowOffset => Arc::new(Int64Array::from(offsets.clone())),
                SourceColumn::Headers => headers_array(&rb)?,
                SourceColumn::Header(key) => header_array(&rb, key),
                SourceColumn::WindowStart => Arc::new(Int64Array::from(wstart.clone())),
                SourceColumn::WindowEnd => Arc::new(Int64Array::from(wend.clone())),
            });
        }
        // Event time from a column, when the source names one.
        if let Some(expr) = &self.spec.timestamp {
            let user = RecordBatch::try_new(self.user_schema.clone(), cols.clone())?;
            match eval(expr, &user).and_then(|a| Ok(cast(&a, &DataType::Int64)?)) {
                Ok(a) => {
                    let a = a.as_any().downcast_ref::<Int64Array>().expect("cast to Int64");
                    for i in 0..n {
                        if keep[i] && ops[i] != RowOp::Delete as i8 {
                            if a.is_null(i) || a.value(i) < 0 {
                                let e = self.timestamp_error(offsets[i], "the timestamp column is null or negative");
                                errors.push(self.dead_letter(e, &rb.get(i)));
                                keep[i] = false;
                                all_ok = false;
                            } else {
                                ts[i] = a.value(i);
                            }
                        }
                    }
                }
                Err(e) => {
                    for i in 0..n {
                        if keep[i] && ops[i] != RowOp::Delete as i8 {
                            errors.push(self.dead_letter(self.timestamp_error(offsets[i], &e.to_string()), &rb.get(i)));
                            keep[i] = false;
                        }
                    }
                    all_ok = false;
                }
            }
        }
        cols.push(Arc::new(Int64Array::from(ts)));
        cols.push(Arc::new(Int8Array::from(ops)));
        let cols = crate::batch::cast_columns(cols, &self.schema)?;
        let batch = RecordBatch::try_new(self.schema.clone(), cols)?;
        let (batch, offsets) = if all_ok {
            (batch, offsets)
        } else {
            let kept: Vec<Offset> = offsets.iter().zip(&keep).filter(|(_, k)| **k).map(|(o, _)| *o).collect();
            (filter_record_batch(&batch, &BooleanArray::from(keep))?, kept)
        };
        Ok(Some((batch, offsets)))
    }

    fn error_at(&self, offset: Offset, message: String) -> ProcessingError {
        let mut e = ProcessingError::new(ErrorKind::DeserializationError, message);
        e.topic = Some(self.spec.topic.clone());
        e.partition = Some(self.partition);
        e.offset = Some(offset);
        e
    }

    /// Attaches the raw record when the source has a dead-letter topic.
    fn dead_letter(&self, mut e: ProcessingError, rec: &storage::RecordRef<'_>) -> ProcessingError {
        if self.spec.error_topic.is_some() {
            e.record = Some(RawRecord {
                timestamp: rec.timestamp,
                key: rec.key.map(<[u8]>::to_vec),
                value: rec.value.map(<[u8]>::to_vec),
                headers: rec.headers(),
            });
        }
        e
    }

    fn timestamp_error(&self, offset: Offset, why: &str) -> ProcessingError {
        let mut e = self.error_at(offset, format!("cannot extract the event time: {why}"));
        e.kind = ErrorKind::TimestampError;
        e
    }
}

/// The op an internal topic's record carries in its `_op` header.
fn internal_op(raw_headers: &[u8]) -> Option<i8> {
    // Layout: u16 key length, key, i32 value length, value (see storage::encode_headers).
    let klen = u16::from_le_bytes(raw_headers.get(..2)?.try_into().ok()?) as usize;
    if raw_headers.get(2..2 + klen)? != crate::spec::OP_HEADER.as_bytes() {
        return None;
    }
    let vlen = i32::from_le_bytes(raw_headers.get(2 + klen..6 + klen)?.try_into().ok()?);
    if vlen != 1 {
        return None;
    }
    raw_headers.get(6 + klen).map(|b| *b as i8)
}

/// Splits a windowed key into the key and its window (pushed to `starts`/`ends`).
fn split_window<'a>(
    key: Option<&'a [u8]>,
    w: crate::spec::SourceWindow,
    starts: &mut Vec<i64>,
    ends: &mut Vec<i64>,
) -> Result<Option<&'a [u8]>, String> {
    let need = if w.session { 16 } else { 8 };
    let k = key.ok_or_else(|| "a windowed key is missing".to_string())?;
    if k.len() < need {
        starts.push(0);
        ends.push(0);
        return Err(format!("a windowed key needs at least {need} bytes, got {}", k.len()));
    }
    let (body, win) = k.split_at(k.len() - need);
    let num = |b: &[u8]| i64::from_be_bytes(b.try_into().expect("8 bytes"));
    if w.session {
        ends.push(num(&win[..8]));
        starts.push(num(&win[8..]));
    } else {
        let s = num(win);
        starts.push(s);
        ends.push(s + w.size_ms);
    }
    Ok(Some(body))
}

/// The type of the `HEADERS` pseudo column: `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`.
pub fn headers_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(header_fields()), true)))
}

fn header_fields() -> Fields {
    Fields::from(vec![Field::new("KEY", DataType::Utf8, true), Field::new("VALUE", DataType::Binary, true)])
}

fn headers_array(rb: &storage::ReadBatch) -> Result<ArrayRef> {
    let mut keys = StringBuilder::new();
    let mut values = BinaryBuilder::new();
    let mut offsets = vec![0i32];
    for rec in rb.iter() {
        let hs = rec.headers();
        for h in &hs {
            keys.append_value(&h.key);
            match &h.value {
                Some(v) => values.append_value(v),
                None => values.append_null(),
            }
        }
        offsets.push(offsets.last().copied().unwrap_or(0) + hs.len() as i32);
    }
    let st = StructArray::try_new(header_fields(), vec![Arc::new(keys.finish()), Arc::new(values.finish())], None)?;
    let field = Arc::new(Field::new("item", DataType::Struct(header_fields()), true));
    Ok(Arc::new(ListArray::try_new(field, OffsetBuffer::new(offsets.into()), Arc::new(st), None)?))
}

fn header_array(rb: &storage::ReadBatch, key: &str) -> ArrayRef {
    let mut b = BinaryBuilder::new();
    for rec in rb.iter() {
        match rec.headers().into_iter().rev().find(|h| h.key == key).and_then(|h| h.value) {
            Some(v) => b.append_value(v),
            None => b.append_null(),
        }
    }
    Arc::new(b.finish())
}
