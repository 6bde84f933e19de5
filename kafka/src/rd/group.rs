//! [`RdGroupConsumer`]: a librdkafka consumer in a group, eager `range` assignment (partition p of
//! every co-partitioned topic goes to the same member), no automatic commits, `read_committed`.
//! Rebalance callbacks run inside `poll` and only record what happened; the runtime acts on the
//! [`GroupEvent`]s after the poll returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{Offset as RdOffset, TopicPartitionList};
use storage::Offset;

use super::{fetched, map_error, offset_in};
use crate::client::{GroupConsumer, GroupEvent, GroupMeta, GroupOptions, Polled, Tp};
use crate::error::{KafkaError, Result};

/// Collects rebalance events.
#[derive(Default)]
struct GroupCtx {
    events: Mutex<Vec<GroupEvent>>,
}

fn tps(tpl: &TopicPartitionList) -> Vec<Tp> {
    let mut v: Vec<Tp> = tpl.elements().iter().map(|e| Tp::new(e.topic(), e.partition() as u32)).collect();
    v.sort();
    v
}

impl ClientContext for GroupCtx {}

impl ConsumerContext for GroupCtx {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.events.lock().push(GroupEvent::Revoked(tps(tpl)));
        }
    }

    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.events.lock().push(GroupEvent::Assigned(tps(tpl)));
        }
    }
}

/// A group member over librdkafka.
pub(crate) struct RdGroupConsumer {
    inner: BaseConsumer<GroupCtx>,
    ctx: Arc<GroupCtx>,
    bootstrap: String,
    group: String,
}

impl RdGroupConsumer {
    pub fn new(mut config: ClientConfig, bootstrap: &str, opts: &GroupOptions) -> Result<Self> {
        config
            .set("group.id", &opts.group_id)
            .set("partition.assignment.strategy", "range")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .set("session.timeout.ms", opts.session_timeout.as_millis().to_string())
            .set("heartbeat.interval.ms", (opts.session_timeout.as_millis() / 4).max(100).to_string())
            // Restores and long checkpoints must not evict the member: the runtime polls often,
            // but a slow barrier may hold a task.
            .set("max.poll.interval.ms", "300000");
        if let Some(id) = &opts.instance_id {
            config.set("group.instance.id", id);
        }
        let inner: BaseConsumer<GroupCtx> = config
            .create_with_context(GroupCtx::default())
            .map_err(|e| KafkaError::Unreachable { bootstrap: bootstrap.into(), message: e.to_string() })?;
        let topics: Vec<&str> = opts.topics.iter().map(String::as_str).collect();
        inner.subscribe(&topics).map_err(|e| map_error(bootstrap, "joining the consumer group", None, e))?;
        let ctx = inner.context().clone();
        Ok(RdGroupConsumer { inner, ctx, bootstrap: bootstrap.into(), group: opts.group_id.clone() })
    }

    fn list(&self, parts: &[Tp]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for tp in parts {
            tpl.add_partition(&tp.topic, tp.partition as i32);
        }
        tpl
    }
}

impl GroupConsumer for RdGroupConsumer {
    fn poll(&mut self, timeout: Duration, max_records: usize) -> Result<Polled> {
        let mut out = Polled::default();
        let deadline = Instant::now() + timeout;
        let mut wait = timeout;
        while out.records.len() < max_records {
            let m = self.inner.poll(wait);
            let events = std::mem::take(&mut *self.ctx.events.lock());
            let had_events = !events.is_empty();
            out.events.extend(events);
            match m {
                None if had_events => break,
                None => break,
                Some(Ok(m)) => {
                    out.records.push(fetched(&m));
                    wait = Duration::ZERO;
                }
                Some(Err(e)) => {
                    if out.records.is_empty() && out.events.is_empty() {
                        return Err(map_error(&self.bootstrap, &format!("polling consumer group \"{}\"", self.group), None, e));
                    }
                    break;
                }
            }
            // Hand assignment changes over at once: records after them belong to the new state.
            if had_events {
                break;
            }
            if wait > Duration::ZERO {
                wait = deadline.saturating_duration_since(Instant::now());
            }
        }
        Ok(out)
    }

    fn committed(&self, parts: &[Tp], timeout: Duration) -> Result<Vec<Option<Offset>>> {
        let tpl = self
            .inner
            .committed_offsets(self.list(parts), timeout)
            .map_err(|e| map_error(&self.bootstrap, &format!("reading the offsets of consumer group \"{}\"", self.group), None, e))?;
        Ok(parts.iter().map(|tp| offset_in(&tpl, tp)).collect())
    }

    fn seek(&mut self, tp: &Tp, offset: Offset) -> Result<()> {
        self.inner
            .seek(&tp.topic, tp.partition as i32, RdOffset::Offset(offset), Duration::from_secs(10))
            .map_err(|e| map_error(&self.bootstrap, &format!("seeking {tp}"), None, e))
    }

    fn pause(&mut self, parts: &[Tp]) -> Result<()> {
        self.inner.pause(&self.list(parts)).map_err(|e| map_error(&self.bootstrap, "pausing partitions", None, e))
    }

    fn resume(&mut self, parts: &[Tp]) -> Result<()> {
        self.inner.resume(&self.list(parts)).map_err(|e| map_error(&self.bootstrap, "resuming partitions", None, e))
    }

    fn position(&self, tp: &Tp) -> Result<Option<Offset>> {
        let tpl = self.inner.position().map_err(|e| map_error(&self.bootstrap, "reading positions", None, e))?;
        Ok(offset_in(&tpl, tp))
    }

    fn group_meta(&self) -> Option<GroupMeta> {
        self.inner.group_metadata().map(|g| GroupMeta(Arc::new(g)))
    }

    fn close(&mut self) {
        self.inner.unsubscribe();
    }
}
