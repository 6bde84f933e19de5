//! `CollectOp`: hands rows to the client of a push query through a channel.
//!
//! Stateless. Whole batches are sent, `_ts` and `_op` included: the receiver needs `_op` to show
//! table changes. When the client has gone (the channel is closed), the operator flags it so the
//! runtime stops the query.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::operator::{OpContext, Operator};

/// Sends rows to a push-query client.
pub struct CollectOp {
    tx: mpsc::Sender<RecordBatch>,
    closed: Arc<AtomicBool>,
}

impl CollectOp {
    /// A collector sending to `tx`; sets `closed` when the receiver is gone.
    pub fn new(tx: mpsc::Sender<RecordBatch>, closed: Arc<AtomicBool>) -> Self {
        CollectOp { tx, closed }
    }
}

impl Operator for CollectOp {
    fn name(&self) -> &'static str {
        "collect"
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, _cx: &mut OpContext<'_>) -> Result<()> {
        // Task threads are plain OS threads, so blocking here is backpressure, not a stall of
        // an async runtime.
        if self.tx.blocking_send(batch).is_err() {
            self.closed.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{rows, text, Harness};

    #[test]
    fn sends_whole_batches_and_flags_a_client_that_left() {
        let (tx, mut rx) = mpsc::channel(4);
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        let mut tx = Some(tx);
        let mut h = Harness::with_task(move || Box::new(CollectOp::new(tx.take().expect("made once"), flag.clone())), false);
        h.batch(0, rows("k:i64 v:utf8 | 1 a @3 | 2 b @4 -"));
        let got = rx.try_recv().expect("a batch");
        assert_eq!(text(&got), ["1 a @3 +", "2 b @4 -"]);
        assert!(h.output().is_empty(), "a collector emits nothing downstream");
        assert!(!closed.load(Ordering::Relaxed));
        drop(rx);
        h.batch(0, rows("k:i64 v:utf8 | 3 c"));
        assert!(closed.load(Ordering::Relaxed));
    }
}
