//! [`KafkaMembership`]: a persistent query's consumer group membership on this instance, and the
//! standby copies of the query's tasks that run elsewhere.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use engine::runtime::{Ownership, QueryMembership};
use engine::EngineError;

use crate::client::{GroupConsumer, GroupEvent, Tp};
use crate::log::KafkaLog;
use crate::standby::Standbys;

fn backend(e: crate::error::KafkaError) -> EngineError {
    EngineError::Storage(e.into())
}

/// A query's consumer group membership on this instance. The group only assigns partitions: the
/// tasks read their partitions with readers of their own, so assigned partitions are paused in
/// the group consumer at once. Between polls it keeps the copies of the tasks running elsewhere
/// up to date ([`Standbys`]).
pub(crate) struct KafkaMembership {
    consumer: Box<dyn GroupConsumer>,
    log: Arc<KafkaLog>,
    /// The Kafka partitions this instance owns.
    owned: BTreeSet<Tp>,
    standbys: Standbys,
    /// Tasks revoked in the last poll: the engine stops them after it returns, so they become
    /// copies only at the next poll.
    leaving: BTreeSet<(usize, u32)>,
}

impl KafkaMembership {
    /// A member through `consumer`, keeping `standbys` of the tasks it does not run.
    pub fn new(consumer: Box<dyn GroupConsumer>, log: Arc<KafkaLog>, standbys: Standbys) -> Self {
        KafkaMembership { consumer, log, owned: BTreeSet::new(), standbys, leaving: BTreeSet::new() }
    }
}

impl QueryMembership for KafkaMembership {
    fn poll(&mut self, timeout: Duration) -> engine::Result<Vec<Ownership>> {
        let before = self.standbys.local_tasks(&self.owned);
        let polled = self.consumer.poll(timeout, 1).map_err(backend)?;
        let mut out = Vec::new();
        for e in polled.events {
            let (tps, assigned) = match e {
                GroupEvent::Assigned(tps) => (tps, true),
                GroupEvent::Revoked(tps) => (tps, false),
            };
            if assigned {
                if !tps.is_empty() {
                    self.consumer.pause(&tps).map_err(backend)?;
                }
                self.owned.extend(tps.iter().cloned());
            } else {
                for tp in &tps {
                    self.owned.remove(tp);
                }
            }
            let logical: Vec<(String, u32)> =
                tps.iter().filter_map(|tp| Some((self.log.names().logical(&tp.topic)?, tp.partition))).collect();
            out.push(if assigned { Ownership::Assigned(logical) } else { Ownership::Revoked(logical) });
        }
        let local = self.standbys.local_tasks(&self.owned);
        let all: BTreeSet<(usize, u32)> = self.standbys.all_tasks().into_iter().collect();
        let copies: BTreeSet<(usize, u32)> = all.difference(&local).filter(|t| !self.leaving.contains(t)).copied().collect();
        self.leaving = before.difference(&local).copied().collect();
        self.standbys.set_tasks(&copies).map_err(backend)?;
        self.standbys.pump(Duration::ZERO).map_err(backend)?;
        Ok(out)
    }

    fn catch_up_step(&mut self, begin: bool) -> engine::Result<bool> {
        self.standbys.catch_up_step(begin).map_err(backend)
    }

    fn local_tasks(&self) -> Vec<(usize, u32)> {
        self.standbys.local_tasks(&self.owned).into_iter().collect()
    }

    fn leave(&mut self) {
        self.consumer.close();
    }
}
