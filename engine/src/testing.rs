//! [`Harness`]: drives one operator as a task would (batches, watermarks, barriers), over an
//! in-memory state store, so that an operator's unit tests need no runtime, threads or tokio.
//!
//! Rows are written as text (see [`rows`]): a header of `name:type` columns, then rows separated
//! by `|`, each its values separated by spaces, optionally followed by `@<event time>` and the
//! row's op (`+` insert, `-` delete, `U-` update before, `U+` update after). Output rows read
//! the same way, so a test states what comes out as plainly as what goes in:
//!
//! ```
//! use eddy_engine::testing::{rows, Harness};
//! use eddy_engine::ops::ProjectOp;
//! # use datafusion::arrow::datatypes::{DataType, Field};
//! # use datafusion::physical_expr::expressions::Column;
//! # use eddy_engine::spec::ProjectSpec;
//! let out = eddy_engine::batch::with_internal([Field::new("b", DataType::Int64, true)]);
//! let spec = ProjectSpec { exprs: vec![std::sync::Arc::new(Column::new("b", 1))], timestamp: None };
//! let mut h = Harness::new(move || Box::new(ProjectOp::new(spec.clone(), out.clone())));
//! h.batch(0, rows("a:i64 b:i64 | 1 10 @5 | 2 20 @6 -"));
//! assert_eq!(h.output(), ["10 @5 +", "20 @6 -"]);
//! ```
//!
//! A checkpoint is [`Harness::barrier`] (the operator's `on_barrier`, then the writes committed
//! to the store); [`Harness::restart`] checkpoints, drops the operator and opens a new one over
//! the committed state, as recovery does; [`Harness::crash`] drops it without a checkpoint.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, Int8Array, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use storage::{KvStore, MemStore, StateBatch};

use crate::batch::{op_column, ts_column, with_internal};
use crate::operator::{Message, OpContext, Operator, TaskInfo};
use crate::processing_log::ProcessingError;
use crate::types::{Epoch, EventTime, RowOp, Watermark};

/// Makes the operator under test (again, at each restart).
pub type MakeOp = Box<dyn FnMut() -> Box<dyn Operator>>;

/// One operator, driven by hand. Every method panics when the operator returns an error: a
/// test that expects one uses [`Harness::try_batch`].
pub struct Harness {
    make: MakeOp,
    op: Box<dyn Operator>,
    store: Arc<MemStore>,
    task: TaskInfo,
    out: Vec<Message>,
    errors: Vec<ProcessingError>,
    stream_time: i64,
    epoch: u64,
    wants_checkpoint: bool,
    /// Writes made ahead of the next barrier.
    writes: StateBatch,
}

impl Harness {
    /// A harness over the operator `make` returns, in a persistent task, opened.
    pub fn new(make: impl FnMut() -> Box<dyn Operator> + 'static) -> Self {
        Self::with_task(make, true)
    }

    /// A harness in a persistent (`true`) or transient task.
    pub fn with_task(mut make: impl FnMut() -> Box<dyn Operator> + 'static, persistent: bool) -> Self {
        let op = make();
        let task = TaskInfo { query_id: "q".into(), subtopology: 0, partition: 0, persistent };
        let mut h = Harness {
            make: Box::new(make),
            op,
            store: Arc::new(MemStore::new()),
            task,
            out: Vec::new(),
            errors: Vec::new(),
            stream_time: i64::MIN,
            epoch: 0,
            wants_checkpoint: false,
            writes: StateBatch::new(),
        };
        h.open();
        h
    }

    fn cx<'a>(
        task: &'a TaskInfo,
        store: &'a MemStore,
        out: &'a mut Vec<Message>,
        errors: &'a mut Vec<ProcessingError>,
        stream_time: i64,
        batch: Option<&'a mut StateBatch>,
        wants_checkpoint: &'a mut bool,
    ) -> OpContext<'a> {
        OpContext { out, errors, task, stream_time, state: store, batch, wants_checkpoint }
    }

    fn open(&mut self) {
        let mut cx = Self::cx(&self.task, &self.store, &mut self.out, &mut self.errors, self.stream_time, None, &mut self.wants_checkpoint);
        self.op.open(&mut cx).unwrap_or_else(|e| panic!("{} failed to open: {}", self.op.name(), crate::error_chain(&e)));
    }

    /// Feeds `batch` on `input` as a task does: stream time moves to its largest event time,
    /// then the operator sees the batch, then (if stream time advanced) the watermark.
    pub fn batch(&mut self, input: usize, batch: RecordBatch) -> &mut Self {
        if let Err(e) = self.try_batch(input, batch) {
            panic!("{} failed on a batch: {}", self.op.name(), crate::error_chain(&e));
        }
        self
    }

    /// [`Harness::batch`], returning the operator's error.
    pub fn try_batch(&mut self, input: usize, batch: RecordBatch) -> crate::Result<()> {
        let before = self.stream_time;
        if batch.num_rows() > 0 {
            let ts = ts_column(&batch);
            let max = (0..ts.len()).map(|i| ts.value(i)).max().unwrap_or(i64::MIN);
            self.stream_time = self.stream_time.max(max);
        }
        let ahead = self.task.persistent.then_some(&mut self.writes);
        let mut cx = Self::cx(&self.task, &self.store, &mut self.out, &mut self.errors, self.stream_time, ahead, &mut self.wants_checkpoint);
        self.op.on_batch(input, batch, &mut cx)?;
        if self.stream_time > before {
            let wm = Watermark(EventTime(self.stream_time));
            let ahead = self.task.persistent.then_some(&mut self.writes);
            let mut cx = Self::cx(&self.task, &self.store, &mut self.out, &mut self.errors, self.stream_time, ahead, &mut self.wants_checkpoint);
            self.op.on_watermark(wm, &mut cx)?;
        }
        Ok(())
    }

    /// Moves stream time to `ms` (if later) and hands the operator the watermark.
    pub fn watermark(&mut self, ms: i64) -> &mut Self {
        self.stream_time = self.stream_time.max(ms);
        let ahead = self.task.persistent.then_some(&mut self.writes);
        let mut cx = Self::cx(&self.task, &self.store, &mut self.out, &mut self.errors, self.stream_time, ahead, &mut self.wants_checkpoint);
        let wm = Watermark(EventTime(ms));
        if let Err(e) = self.op.on_watermark(wm, &mut cx) {
            panic!("{} failed on a watermark: {}", self.op.name(), crate::error_chain(&e));
        }
        self
    }

    /// A checkpoint: the operator writes its state, the writes are committed.
    pub fn barrier(&mut self) -> &mut Self {
        self.epoch += 1;
        let mut writes = std::mem::take(&mut self.writes);
        let mut cx = Self::cx(&self.task, &self.store, &mut self.out, &mut self.errors, self.stream_time, Some(&mut writes), &mut self.wants_checkpoint);
        if let Err(e) = self.op.on_barrier(Epoch(self.epoch), &mut cx) {
            panic!("{} failed on a barrier: {}", self.op.name(), crate::error_chain(&e));
        }
        self.store.commit(&writes, false).expect("the in-memory store commits");
        self.wants_checkpoint = false;
        self
    }

    /// Checkpoints, then replaces the operator with a new one opened over the committed state.
    pub fn restart(&mut self) -> &mut Self {
        self.barrier();
        self.crash()
    }

    /// Replaces the operator with a new one opened over the committed state, losing what it
    /// had not written at a barrier.
    pub fn crash(&mut self) -> &mut Self {
        self.writes = StateBatch::new();
        self.op = (self.make)();
        self.open();
        self
    }

    /// The batches emitted since the last call, in order.
    pub fn take(&mut self) -> Vec<RecordBatch> {
        self.out
            .drain(..)
            .filter_map(|m| match m {
                Message::Batch(b) => Some(b),
                Message::Watermark(_) => None,
            })
            .collect()
    }

    /// The watermarks emitted, and the batches, since the last call: batches as text rows,
    /// watermarks as `wm <ms>`.
    pub fn messages(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        for m in self.out.drain(..) {
            match m {
                Message::Batch(b) => v.extend(text(&b)),
                Message::Watermark(w) => v.push(format!("wm {}", w.0 .0)),
            }
        }
        v
    }

    /// The rows emitted since the last call, as text (watermarks left out).
    pub fn output(&mut self) -> Vec<String> {
        self.take().iter().flat_map(text).collect()
    }

    /// The rows emitted since the last call, as text, sorted (for operators whose output order
    /// within a batch is not part of their contract).
    pub fn output_sorted(&mut self) -> Vec<String> {
        let mut v = self.output();
        v.sort();
        v
    }

    /// Row-level problems the operator logged, since the start.
    pub fn errors(&self) -> &[ProcessingError] {
        &self.errors
    }

    /// Whether the operator asked for a checkpoint since the last one.
    pub fn wants_checkpoint(&self) -> bool {
        self.wants_checkpoint
    }

    /// The committed state.
    pub fn state(&self) -> &MemStore {
        &self.store
    }

    /// The number of committed state entries.
    pub fn state_len(&self) -> usize {
        self.store.scan(&[], &[0xff; 64]).map(|it| it.count()).unwrap_or(0)
    }
}

/// A batch from text: `"id:i64 name:utf8 | 1 a | 2 b @100 -"`. Types: `i8`, `i32`, `i64`,
/// `f64`, `bool`, `utf8`; `null` is a null; `''` an empty string. Each row may end with
/// `@<event time>` (default 0) and an op (`+`, `-`, `U-`, `U+`; default `+`). The batch has the
/// internal `_ts` and `_op` columns last.
pub fn rows(text: &str) -> RecordBatch {
    let mut parts = text.split('|');
    let header = parts.next().expect("a header");
    let fields: Vec<Field> = header
        .split_whitespace()
        .map(|c| {
            let (name, ty) = c.split_once(':').unwrap_or_else(|| panic!("column {c:?} needs a type, as name:i64"));
            Field::new(name, data_type(ty), true)
        })
        .collect();
    let mut values: Vec<Vec<Option<String>>> = vec![Vec::new(); fields.len()];
    let (mut ts, mut ops) = (Vec::new(), Vec::new());
    for row in parts {
        let mut tokens: Vec<&str> = row.split_whitespace().collect();
        let op = match tokens.last() {
            Some(&"+") => Some(RowOp::Insert),
            Some(&"-") => Some(RowOp::Delete),
            Some(&"U-") => Some(RowOp::UpdateBefore),
            Some(&"U+") => Some(RowOp::UpdateAfter),
            _ => None,
        };
        if op.is_some() {
            tokens.pop();
        }
        let t = match tokens.last().and_then(|t| t.strip_prefix('@')) {
            Some(t) => {
                let t = t.parse().unwrap_or_else(|_| panic!("bad event time in {row:?}"));
                tokens.pop();
                t
            }
            None => 0,
        };
        assert_eq!(tokens.len(), fields.len(), "row {row:?} has {} values for {} columns", tokens.len(), fields.len());
        for (col, tok) in values.iter_mut().zip(tokens) {
            col.push(match tok {
                "null" => None,
                "''" => Some(String::new()),
                t => Some(t.to_string()),
            });
        }
        ts.push(t);
        ops.push(op.unwrap_or(RowOp::Insert) as i8);
    }
    let mut cols: Vec<ArrayRef> = fields.iter().zip(&values).map(|(f, v)| column(f.data_type(), v)).collect();
    cols.push(Arc::new(Int64Array::from(ts)));
    cols.push(Arc::new(Int8Array::from(ops)));
    RecordBatch::try_new(with_internal(fields), cols).expect("a batch of the header's columns")
}

fn data_type(name: &str) -> DataType {
    match name {
        "i8" => DataType::Int8,
        "i32" => DataType::Int32,
        "i64" => DataType::Int64,
        "f64" => DataType::Float64,
        "bool" => DataType::Boolean,
        "utf8" => DataType::Utf8,
        other => panic!("unknown fixture type {other:?}: use i8, i32, i64, f64, bool or utf8"),
    }
}

fn column(dt: &DataType, v: &[Option<String>]) -> ArrayRef {
    fn parse<T: std::str::FromStr>(v: &[Option<String>]) -> Vec<Option<T>> {
        v.iter().map(|x| x.as_ref().map(|s| s.parse().unwrap_or_else(|_| panic!("cannot parse {s:?}")))).collect()
    }
    match dt {
        DataType::Int8 => Arc::new(Int8Array::from(parse::<i8>(v))),
        DataType::Int32 => Arc::new(Int32Array::from(parse::<i32>(v))),
        DataType::Int64 => Arc::new(Int64Array::from(parse::<i64>(v))),
        DataType::Float64 => Arc::new(Float64Array::from(parse::<f64>(v))),
        DataType::Boolean => Arc::new(BooleanArray::from(parse::<bool>(v))),
        DataType::Utf8 => Arc::new(StringArray::from(v.to_vec())),
        other => unreachable!("fixture type {other}"),
    }
}

/// A batch as text rows, in [`rows`]' format: the user columns, `@<event time>`, the op.
pub fn text(batch: &RecordBatch) -> Vec<String> {
    let n = batch.num_columns() - 2;
    let (ts, ops) = (ts_column(batch), op_column(batch));
    (0..batch.num_rows())
        .map(|i| {
            let mut parts: Vec<String> = (0..n)
                .map(|c| {
                    let col = batch.column(c);
                    if col.is_null(i) {
                        "null".to_string()
                    } else {
                        match array_value_to_string(col, i).expect("a displayable value") {
                            s if s.is_empty() => "''".to_string(),
                            s => s,
                        }
                    }
                })
                .collect();
            parts.push(format!("@{}", ts.value(i)));
            parts.push(
                match RowOp::from_code(ops.value(i)) {
                    RowOp::Insert => "+",
                    RowOp::Delete => "-",
                    RowOp::UpdateBefore => "U-",
                    RowOp::UpdateAfter => "U+",
                }
                .to_string(),
            );
            parts.join(" ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_read_back_as_written() {
        let b = rows("id:i64 name:utf8 ok:bool x:f64 | 1 a true 1.5 @100 | 2 null false 2 @7 - | null '' null null U+");
        assert_eq!(b.num_columns(), 6);
        assert_eq!(text(&b), ["1 a true 1.5 @100 +", "2 null false 2.0 @7 -", "null '' null null @0 U+"]);
    }

    #[test]
    #[should_panic(expected = "has 1 values for 2 columns")]
    fn a_short_row_is_refused() {
        rows("a:i64 b:i64 | 1");
    }
}
