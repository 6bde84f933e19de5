//! [`RdReader`]: an assign-only librdkafka consumer reading `read_committed`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use storage::Offset;

use super::{fetched, map_error, offset_in, tpl_of};
use crate::client::{Fetched, PartitionReader, Tp};
use crate::error::{KafkaError, Result};

/// An assign-only consumer.
pub(crate) struct RdReader {
    inner: BaseConsumer,
    bootstrap: String,
    /// Next offset per assigned partition, as far as the records returned tell.
    next: HashMap<Tp, Offset>,
}

impl RdReader {
    pub fn new(mut config: ClientConfig, bootstrap: &str) -> Result<Self> {
        config
            .set("group.id", "_eddy-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .set("enable.partition.eof", "false");
        let inner: BaseConsumer =
            config.create().map_err(|e| KafkaError::Unreachable { bootstrap: bootstrap.into(), message: e.to_string() })?;
        Ok(RdReader { inner, bootstrap: bootstrap.into(), next: HashMap::new() })
    }
}

impl PartitionReader for RdReader {
    fn assign(&mut self, parts: &[(Tp, Offset)]) -> Result<()> {
        let tpl = tpl_of(parts)?;
        self.inner.assign(&tpl).map_err(|e| map_error(&self.bootstrap, "assigning partitions", None, e))?;
        self.next = parts.iter().cloned().collect();
        Ok(())
    }

    fn poll(&mut self, timeout: Duration, max_records: usize) -> Result<Vec<Fetched>> {
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut wait = timeout;
        while out.len() < max_records {
            match self.inner.poll(wait) {
                None => break,
                Some(Ok(m)) => {
                    let tp = Tp::new(m.topic(), m.partition() as u32);
                    self.next.insert(tp, m.offset() + 1);
                    out.push(fetched(&m));
                    // Take what is buffered already, without waiting again.
                    wait = Duration::ZERO;
                }
                Some(Err(e)) => {
                    if out.is_empty() {
                        return Err(map_error(&self.bootstrap, "reading from Kafka", None, e));
                    }
                    break;
                }
            }
            if wait > Duration::ZERO {
                wait = deadline.saturating_duration_since(Instant::now());
            }
        }
        Ok(out)
    }

    fn position(&self, tp: &Tp) -> Result<Option<Offset>> {
        let Some(&ours) = self.next.get(tp) else { return Ok(None) };
        // librdkafka's position skips transaction markers and aborted records it has passed.
        let theirs = self.inner.position().ok().and_then(|tpl| offset_in(&tpl, tp));
        Ok(Some(theirs.map_or(ours, |t| t.max(ours))))
    }
}
