//! What a statement returns: a message, rows, or a stream of rows (push queries, PRINT).

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{AsArray, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Int8Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use engine::types::RowOp;
use tokio::sync::mpsc;

/// Rows with a schema.
#[derive(Debug, Clone)]
pub struct RowSet {
    /// Column names and types.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl RowSet {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// The result of a statement.
pub enum Output {
    /// A status message ("Stream created").
    Message(String),
    /// A finite result (SHOW, DESCRIBE, pull queries).
    Rows(RowSet),
    /// An unbounded result (push queries, PRINT): rows arrive until the limit, cancellation, or
    /// the end of input for scans.
    Stream(PushQuery),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Message(m) => write!(f, "Message({m:?})"),
            Output::Rows(r) => write!(f, "Rows({} rows)", r.num_rows()),
            Output::Stream(s) => write!(f, "Stream({:?})", s.schema),
        }
    }
}

/// Stops what feeds a push query when dropped.
pub type StopHandle = Box<dyn FnOnce() + Send>;

/// Rows of a push query as they arrive.
pub struct PushQuery {
    /// Columns of the rows (no internal columns).
    pub schema: SchemaRef,
    /// The query's id (for TERMINATE and messages).
    pub id: String,
    rx: mpsc::Receiver<RecordBatch>,
    limit: Option<u64>,
    emitted: u64,
    /// Batches carry `_ts`/`_op` columns that are stripped (and deletes dropped).
    internal_columns: bool,
    stop: Option<StopHandle>,
}

impl PushQuery {
    /// A push query reading `rx`; `stop` runs when it ends or is dropped.
    pub fn new(
        id: String,
        schema: SchemaRef,
        rx: mpsc::Receiver<RecordBatch>,
        limit: Option<u64>,
        internal_columns: bool,
        stop: StopHandle,
    ) -> Self {
        PushQuery { schema, id, rx, limit, emitted: 0, internal_columns, stop: Some(stop) }
    }

    /// True once the limit has been reached.
    pub fn is_done(&self) -> bool {
        self.limit.is_some_and(|l| self.emitted >= l)
    }

    /// The next rows; `None` at the end (limit reached, or the query ended).
    pub async fn next(&mut self) -> Option<RecordBatch> {
        loop {
            if self.is_done() {
                self.finish();
                return None;
            }
            let Some(batch) = self.rx.recv().await else {
                self.finish();
                return None;
            };
            if let Some(b) = self.shape(batch) {
                return Some(b);
            }
        }
    }

    /// The next rows, waiting at most `timeout`; `Ok(None)` at the end, `Err(())` on timeout.
    pub async fn next_timeout(&mut self, timeout: Duration) -> Result<Option<RecordBatch>, ()> {
        match tokio::time::timeout(timeout, self.next()).await {
            Ok(r) => Ok(r),
            Err(_) => Err(()),
        }
    }

    fn shape(&mut self, batch: RecordBatch) -> Option<RecordBatch> {
        let batch = if self.internal_columns {
            let n = batch.num_columns();
            let ops = batch.column(n - 1).as_primitive::<Int8Type>();
            let keep: BooleanArray = ops.iter().map(|o| Some(RowOp::from_code(o.unwrap_or(0)).is_add())).collect();
            let b = filter_record_batch(&batch, &keep).ok()?;
            let cols = b.columns()[..n - 2].to_vec();
            RecordBatch::try_new(self.schema.clone(), cols).ok()?
        } else {
            batch
        };
        if batch.num_rows() == 0 {
            return None;
        }
        let batch = match self.limit {
            Some(l) if self.emitted + batch.num_rows() as u64 > l => batch.slice(0, (l - self.emitted) as usize),
            _ => batch,
        };
        self.emitted += batch.num_rows() as u64;
        Some(batch)
    }

    /// Stops the producer (also done on drop).
    pub fn finish(&mut self) {
        // Closing first wakes a producer blocked on a full channel.
        self.rx.close();
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

impl Drop for PushQuery {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A schema from fields, shared.
pub fn schema_of(fields: Vec<datafusion::arrow::datatypes::Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}
