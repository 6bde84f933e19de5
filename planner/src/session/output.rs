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
    /// For table results: which columns a tombstone keeps (keys, window bounds); the others
    /// are shown as null. `None`: deletes are dropped.
    tombstones: Option<Vec<bool>>,
    /// For table results: the keys shown and not deleted since (a delete of a key the client
    /// never saw is not shown).
    live: std::collections::HashSet<Vec<u8>>,
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
        PushQuery { schema, id, rx, limit, emitted: 0, internal_columns, tombstones: None, live: Default::default(), stop: Some(stop) }
    }

    /// Shows a table result's deletes as rows whose non-key columns are null (ksqlDB's
    /// tombstone rows); `keep[i]` tells whether column `i` keeps its value.
    pub fn with_tombstones(mut self, keep: Vec<bool>) -> Self {
        self.tombstones = Some(keep);
        self
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
            let keep: BooleanArray = match &self.tombstones {
                None => ops.iter().map(|o| Some(RowOp::from_code(o.unwrap_or(0)).is_add())).collect(),
                Some(mask) => {
                    let keys = key_rows(&batch, mask)?;
                    ops.iter()
                        .enumerate()
                        .map(|(i, o)| {
                            let k = keys[i].clone();
                            Some(match RowOp::from_code(o.unwrap_or(0)) {
                                RowOp::Insert | RowOp::UpdateAfter => {
                                    self.live.insert(k);
                                    true
                                }
                                RowOp::Delete => self.live.remove(&k),
                                RowOp::UpdateBefore => false,
                            })
                        })
                        .collect()
                }
            };
            let b = filter_record_batch(&batch, &keep).ok()?;
            let mut cols = b.columns()[..n - 2].to_vec();
            if let Some(mask) = &self.tombstones {
                let ops = b.column(n - 1).as_primitive::<Int8Type>();
                let deleted: BooleanArray = ops.iter().map(|o| Some(RowOp::from_code(o.unwrap_or(0)) == RowOp::Delete)).collect();
                if deleted.true_count() > 0 {
                    for (c, keep) in cols.iter_mut().zip(mask) {
                        if !keep {
                            *c = datafusion::arrow::compute::nullif(c, &deleted).ok()?;
                        }
                    }
                }
            }
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

/// The key columns (`mask`) of each row of `batch`, comparable as bytes.
fn key_rows(batch: &RecordBatch, mask: &[bool]) -> Option<Vec<Vec<u8>>> {
    let cols: Vec<_> = batch.columns().iter().zip(mask).filter(|(_, k)| **k).map(|(c, _)| c.clone()).collect();
    if cols.is_empty() {
        return Some(vec![Vec::new(); batch.num_rows()]);
    }
    let fields = cols.iter().map(|c| datafusion::arrow::row::SortField::new(c.data_type().clone())).collect();
    let conv = datafusion::arrow::row::RowConverter::new(fields).ok()?;
    let rows = conv.convert_columns(&cols).ok()?;
    Some(rows.iter().map(|r| r.as_ref().to_vec()).collect())
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
