//! [`RdProducer`]: a librdkafka `ThreadedProducer` (`acks=all`, idempotent, optionally
//! transactional). Each record carries an [`Arc<Call>`] as its delivery opaque: the delivery
//! report of librdkafka's background thread counts it down, so `send_and_wait` wakes when its
//! records are acknowledged, and failures of records nobody waits for are kept for the next
//! `flush`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::message::{Header as RdHeader, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use storage::{Offset, RecordIn};

use super::{map_error, tpl_of};
use crate::client::{GroupMeta, Producer, ProducerOptions, Tp};
use crate::error::{KafkaError, Result};

/// How long a record may wait for its acknowledgement before it fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// One caller's records in flight.
#[derive(Default)]
struct Call {
    state: Mutex<CallState>,
    cv: Condvar,
}

#[derive(Default)]
struct CallState {
    remaining: usize,
    first: Option<Offset>,
    error: Option<KafkaError>,
}

/// Delivery reports land here.
struct Ctx {
    bootstrap: String,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Arc<Call>;

    fn delivery(&self, result: &DeliveryResult<'_>, call: Arc<Call>) {
        let mut s = call.state.lock();
        match result {
            Ok(m) => {
                let o = m.offset();
                s.first = Some(s.first.map_or(o, |f| f.min(o)));
            }
            Err((e, m)) => {
                if s.error.is_none() {
                    let err = match e.rdkafka_error_code() {
                        Some(RDKafkaErrorCode::MessageSizeTooLarge) => KafkaError::RecordTooLarge {
                            topic: m.topic().to_string(),
                            bytes: m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len),
                        },
                        _ => map_error(&self.bootstrap, &format!("writing to Kafka topic \"{}\"", m.topic()), None, e.clone()),
                    };
                    s.error = Some(err);
                }
            }
        }
        s.remaining = s.remaining.saturating_sub(1);
        if s.remaining == 0 {
            call.cv.notify_all();
        }
    }
}

/// A producer over librdkafka.
pub(crate) struct RdProducer {
    inner: ThreadedProducer<Ctx>,
    bootstrap: String,
    transactional_id: Option<String>,
    /// Records sent without waiting: their failures surface at the next flush or commit.
    background: Mutex<Arc<Call>>,
}

impl RdProducer {
    pub fn new(mut config: ClientConfig, bootstrap: &str, opts: &ProducerOptions) -> Result<Self> {
        config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string())
            .set("queue.buffering.max.kbytes", "262144");
        if let Some(t) = &opts.transactional_id {
            config.set("transactional.id", t);
        }
        if let Some(t) = opts.transaction_timeout {
            config.set("transaction.timeout.ms", t.as_millis().to_string());
        }
        let inner: ThreadedProducer<Ctx> = config
            .create_with_context(Ctx { bootstrap: bootstrap.into() })
            .map_err(|e| KafkaError::Unreachable { bootstrap: bootstrap.into(), message: e.to_string() })?;
        Ok(RdProducer {
            inner,
            bootstrap: bootstrap.into(),
            transactional_id: opts.transactional_id.clone(),
            background: Mutex::new(Arc::new(Call::default())),
        })
    }

    fn map(&self, operation: &str, e: RdError) -> KafkaError {
        map_error(&self.bootstrap, operation, self.transactional_id.as_deref(), e)
    }

    /// Queues every record with `call` as its opaque, waiting while librdkafka's queue is full.
    fn enqueue(&self, topic: &str, partition: u32, records: &[RecordIn<'_>], call: &Arc<Call>) -> Result<()> {
        call.state.lock().remaining += records.len();
        for (i, r) in records.iter().enumerate() {
            let mut rec: BaseRecord<'_, [u8], [u8], Arc<Call>> =
                BaseRecord::with_opaque_to(topic, call.clone()).partition(partition as i32).timestamp(r.timestamp);
            if let Some(k) = r.key {
                rec = rec.key(k);
            }
            if let Some(v) = r.value {
                rec = rec.payload(v);
            }
            if !r.headers.is_empty() {
                let mut hs = OwnedHeaders::new_with_capacity(r.headers.len());
                for h in r.headers {
                    hs = hs.insert(RdHeader { key: &h.key, value: h.value.as_deref() });
                }
                rec = rec.headers(hs);
            }
            let mut rec = rec;
            loop {
                match self.inner.send(rec) {
                    Ok(()) => break,
                    Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        rec = back;
                        self.inner.poll(Duration::from_millis(5));
                    }
                    Err((e, _)) => {
                        // The records not queued will never be reported.
                        let mut s = call.state.lock();
                        s.remaining = s.remaining.saturating_sub(records.len() - i);
                        return Err(match e.rdkafka_error_code() {
                            Some(RDKafkaErrorCode::MessageSizeTooLarge) => KafkaError::RecordTooLarge {
                                topic: topic.into(),
                                bytes: r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len),
                            },
                            _ => self.map(&format!("writing to Kafka topic \"{topic}\""), e),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits until `call` has no record in flight; its error, if one failed.
    fn wait(&self, call: &Call, timeout: Duration, what: &str) -> Result<Option<Offset>> {
        let deadline = Instant::now() + timeout;
        let mut s = call.state.lock();
        while s.remaining > 0 {
            if call.cv.wait_until(&mut s, deadline).timed_out() && s.remaining > 0 {
                return Err(KafkaError::Timeout { operation: what.into(), timeout });
            }
        }
        match s.error.take() {
            Some(e) => Err(e),
            None => Ok(s.first),
        }
    }
}

impl Producer for RdProducer {
    fn send(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<()> {
        let call = self.background.lock().clone();
        self.enqueue(topic, partition, records, &call)
    }

    fn send_and_wait(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<Offset> {
        if records.is_empty() {
            return Ok(-1);
        }
        let call = Arc::new(Call::default());
        self.enqueue(topic, partition, records, &call)?;
        let first = self.wait(&call, DELIVERY_TIMEOUT + Duration::from_secs(5), &format!("writing to Kafka topic \"{topic}\""))?;
        Ok(first.unwrap_or(-1))
    }

    fn flush(&self, timeout: Duration) -> Result<()> {
        let call = std::mem::take(&mut *self.background.lock());
        self.inner.flush(timeout).map_err(|e| self.map("flushing the producer", e))?;
        self.wait(&call, timeout, "flushing the producer").map(|_| ())
    }

    fn init_transactions(&self, timeout: Duration) -> Result<()> {
        self.inner.init_transactions(timeout).map_err(|e| self.map("initializing transactions", e))
    }

    fn begin_transaction(&self) -> Result<()> {
        self.inner.begin_transaction().map_err(|e| self.map("beginning a transaction", e))
    }

    fn send_offsets_to_transaction(&self, offsets: &[(Tp, Offset)], group: &GroupMeta, timeout: Duration) -> Result<()> {
        let cgm = group
            .0
            .downcast_ref::<rdkafka::consumer::ConsumerGroupMetadata>()
            .expect("group metadata of an rdkafka consumer goes with an rdkafka producer");
        let tpl = tpl_of(offsets)?;
        self.inner.send_offsets_to_transaction(&tpl, cgm, timeout).map_err(|e| self.map("sending offsets to the transaction", e))
    }

    fn commit_transaction(&self, timeout: Duration) -> Result<()> {
        let r = self.inner.commit_transaction(timeout).map_err(|e| self.map("committing a transaction", e));
        // Delivery failures inside the transaction make the commit fail; forget them either way.
        let call = std::mem::take(&mut *self.background.lock());
        let failed = call.state.lock().error.take();
        match (r, failed) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
        }
    }

    fn abort_transaction(&self, timeout: Duration) -> Result<()> {
        let r = self.inner.abort_transaction(timeout).map_err(|e| self.map("aborting a transaction", e));
        *self.background.lock() = Arc::new(Call::default());
        r
    }
}
