//! The operator trait: one node of a running DAG, push-based and synchronous.
//!
//! A task (one partition of a sub-topology) runs on one thread and calls its operators in
//! topological order, so operators never touch channels or locks: the runtime routes what they
//! emit to the downstream nodes.

use datafusion::arrow::record_batch::RecordBatch;
use storage::{KvStore, StateBatch};

use crate::error::Result;
use crate::processing_log::ProcessingError;
use crate::types::{Epoch, TableId, Watermark};

/// What flows on an edge.
#[derive(Debug, Clone)]
pub enum Message {
    /// Rows (with `_ts` and `_op` last).
    Batch(RecordBatch),
    /// Stream time advanced.
    Watermark(Watermark),
}

/// Identity of the task an operator runs in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskInfo {
    /// Query id.
    pub query_id: String,
    /// Sub-topology index.
    pub subtopology: usize,
    /// Partition the task reads.
    pub partition: u32,
    /// The task belongs to a persistent query: barriers come and commit its state writes. A
    /// transient query's operators keep their state in memory only.
    pub persistent: bool,
}

/// What an operator may do while handling a message.
pub struct OpContext<'a> {
    pub(crate) out: &'a mut Vec<Message>,
    pub(crate) errors: &'a mut Vec<ProcessingError>,
    /// The task this operator runs in.
    pub task: &'a TaskInfo,
    /// Stream time of the task: the largest event time seen so far.
    pub stream_time: i64,
    /// Committed state (reads).
    pub state: &'a dyn KvStore,
    /// The epoch's writes: inside `on_barrier`, and in `on_batch` and `on_watermark` of a task
    /// that checkpoints (see [`OpContext::writes_ahead`]).
    pub(crate) batch: Option<&'a mut StateBatch>,
    /// Set by an operator whose unflushed state has grown too large.
    pub(crate) wants_checkpoint: &'a mut bool,
}

impl OpContext<'_> {
    /// Sends a batch downstream (empty batches are dropped).
    pub fn emit(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.out.push(Message::Batch(batch));
        }
    }

    /// Sends a watermark downstream.
    pub fn emit_watermark(&mut self, wm: Watermark) {
        self.out.push(Message::Watermark(wm));
    }

    /// Records a row-level problem in the processing log; the query goes on.
    pub fn log_error(&mut self, error: ProcessingError) {
        self.errors.push(error);
    }

    /// The prefix of every state key of `table` in this task.
    pub fn state_prefix(&self, table: TableId) -> Vec<u8> {
        crate::runtime::keys::state_prefix(&self.task.query_id, table, self.task.subtopology, self.task.partition)
    }

    /// The epoch's writes. Always available in `on_barrier`; see [`OpContext::writes_ahead`]
    /// for the other calls.
    pub fn writes(&mut self) -> &mut StateBatch {
        self.batch.as_deref_mut().expect("writes() is called in on_barrier; between barriers use writes_ahead()")
    }

    /// The epoch's writes between barriers, for an operator that writes state ahead of the
    /// barrier (so that the barrier, which pauses every task, has less to write): what goes
    /// here before barrier N is committed with checkpoint N, in order, before what the
    /// operator writes in `on_barrier`. Nothing here is readable through `state` before that
    /// checkpoint, so the operator keeps what it wrote ahead until then. `None` in `open`
    /// and in a task that never checkpoints (a push query), where nothing would commit it.
    pub fn writes_ahead(&mut self) -> Option<&mut StateBatch> {
        self.batch.as_deref_mut()
    }

    /// Asks for a checkpoint soon, so that dirty state can be written and memory freed.
    pub fn request_checkpoint(&mut self) {
        *self.wants_checkpoint = true;
    }
}

/// One node of a running DAG.
///
/// The runtime calls `open` once, then `on_batch`/`on_watermark` as messages arrive, and
/// `on_barrier` at each checkpoint; after `on_barrier` returns, the runtime commits the epoch.
pub trait Operator: Send {
    /// Short name for errors and metrics, e.g. `"filter"`.
    fn name(&self) -> &'static str;

    /// For operators that write outside the DAG (sinks): the records written so far by this
    /// instance, which the task reports as the node's rows out. Default: `None` (a node's rows
    /// out are the rows it emits downstream).
    fn records_written(&self) -> Option<u64> {
        None
    }

    /// Restores in-memory state from the state store after a (re)start. Default: nothing.
    fn open(&mut self, _cx: &mut OpContext<'_>) -> Result<()> {
        Ok(())
    }

    /// Handles a batch arriving on input `input` (0 for single-input operators).
    fn on_batch(&mut self, input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()>;

    /// Handles stream time advancing. Default: forwards the watermark.
    fn on_watermark(&mut self, wm: Watermark, cx: &mut OpContext<'_>) -> Result<()> {
        cx.emit_watermark(wm);
        Ok(())
    }

    /// Writes dirty in-memory state before the epoch commits. Default: nothing to write.
    fn on_barrier(&mut self, _epoch: Epoch, _cx: &mut OpContext<'_>) -> Result<()> {
        Ok(())
    }
}
