//! The group coordinator of the fake: members, generations, eager rebalances with `range`
//! assignment, session timeouts and static membership, and the group's committed offsets.
//!
//! A rebalance, as in Kafka's eager protocol: a join, a leave, a member removed (session timed
//! out, `max.poll.interval.ms` passed, rebalance timeout) or a subscribed topic changing starts
//! one (the group is "preparing a rebalance"). Every member then rejoins at its next poll, giving
//! up (revoking) all of its partitions; when all have rejoined, the generation goes up by one and
//! the new assignment is computed; each member learns its part at its next poll. Members that do
//! not rejoin within the rebalance timeout are removed and the round completes without them.
//!
//! Heartbeats: librdkafka heartbeats from a background thread, so a member whose process runs
//! (its [`super::Host`] is alive and connected) and that has not closed stays in the group
//! however rarely it polls, up to `max.poll.interval.ms`; a member whose host was killed or
//! disconnected stops heartbeating then and is removed once its session timeout has passed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use storage::Offset;

use super::state::Topic;
use super::Host;
use crate::client::Tp;

/// `max.poll.interval.ms` (as the librdkafka implementation sets it): a live member that does not
/// poll this long leaves the group; also the rebalance timeout.
pub const MAX_POLL_INTERVAL_MS: i64 = 300_000;
/// Kafka's `group.min.session.timeout.ms` (broker default).
pub const MIN_SESSION_TIMEOUT_MS: i64 = 6_000;
/// Kafka's `group.max.session.timeout.ms` (broker default).
pub const MAX_SESSION_TIMEOUT_MS: i64 = 1_800_000;

/// A member as the coordinator knows it.
#[derive(Debug)]
pub(crate) struct Member {
    /// The consumer (handle number) that is this member.
    pub handle: u64,
    pub host: Arc<Host>,
    pub instance_id: Option<String>,
    pub topics: Vec<String>,
    pub session_timeout_ms: i64,
    pub last_heartbeat_ms: i64,
    pub last_poll_ms: i64,
    /// False once the consumer closed or was dropped: no more heartbeats (a static member keeps
    /// its place until its session times out or its instance id joins again).
    pub open: Arc<AtomicBool>,
    /// During a rebalance: it has rejoined.
    pub rejoined: bool,
}

impl Member {
    fn heartbeating(&self) -> bool {
        self.open.load(Ordering::SeqCst) && self.host.connected()
    }
}

/// A consumer group.
#[derive(Debug, Default)]
pub(crate) struct Group {
    /// The generation of the current assignment (0: never balanced).
    pub generation: i32,
    /// Preparing a rebalance, until this time at most.
    pub rebalance_deadline: Option<i64>,
    pub members: BTreeMap<String, Member>,
    /// Each member's partitions in the current generation.
    pub assignment: BTreeMap<String, Vec<Tp>>,
    pub committed: BTreeMap<Tp, Offset>,
}

impl Group {
    /// Whether a member subscribes to `topic`.
    pub fn subscribes(&self, topic: &str) -> bool {
        self.members.values().any(|m| m.topics.iter().any(|t| t == topic))
    }

    /// The member id of the static member `instance`.
    pub fn member_of_instance(&self, instance: &str) -> Option<String> {
        self.members.iter().find(|(_, m)| m.instance_id.as_deref() == Some(instance)).map(|(id, _)| id.clone())
    }

    /// Kafka's `isStaticMemberFenced`: `instance` belongs to another member id now.
    pub fn static_fenced(&self, instance: Option<&str>, member_id: &str) -> bool {
        instance.and_then(|i| self.member_of_instance(i)).is_some_and(|id| id != member_id)
    }

    /// Starts a rebalance (every member must rejoin), unless one is being prepared.
    pub fn start_rebalance(&mut self, now: i64) {
        if self.rebalance_deadline.is_none() {
            self.rebalance_deadline = Some(now + MAX_POLL_INTERVAL_MS);
            for m in self.members.values_mut() {
                m.rejoined = false;
            }
        }
    }

    /// Completes the rebalance being prepared when every member has rejoined: the next
    /// generation with a new `range` assignment.
    pub fn try_complete(&mut self, topics: &BTreeMap<String, Topic>) {
        if self.rebalance_deadline.is_none() || self.members.values().any(|m| !m.rejoined) {
            return;
        }
        self.rebalance_deadline = None;
        self.generation += 1;
        self.assignment = range_assignment(&self.members, topics);
    }

    /// Removes a member; a rebalance starts if others remain.
    pub fn remove(&mut self, member_id: &str, now: i64, topics: &BTreeMap<String, Topic>) {
        if self.members.remove(member_id).is_some() {
            self.assignment.remove(member_id);
            if self.members.is_empty() {
                // Kafka: the group becomes empty with a generation of its own.
                self.rebalance_deadline = None;
                self.generation += 1;
                self.assignment.clear();
            } else {
                self.start_rebalance(now);
                self.try_complete(topics);
            }
        }
    }

    /// Applies the clock: heartbeats of running members, session and poll timeouts, the
    /// rebalance timeout. True when membership changed.
    pub fn tick(&mut self, now: i64, topics: &BTreeMap<String, Topic>) -> bool {
        for m in self.members.values_mut() {
            if m.heartbeating() {
                m.last_heartbeat_ms = now;
            }
        }
        let late = self.rebalance_deadline.is_some_and(|d| d <= now);
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                now - m.last_heartbeat_ms >= m.session_timeout_ms
                    || (m.heartbeating() && now - m.last_poll_ms >= MAX_POLL_INTERVAL_MS)
                    || (late && !m.rejoined)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.remove(id, now, topics);
        }
        if late {
            self.try_complete(topics);
        }
        !gone.is_empty()
    }
}

/// Kafka's `range` assignor, as librdkafka runs it: per topic, its partitions in order are cut
/// into contiguous ranges, one per subscribed member in member order, the first members taking one
/// more when the count does not divide; so partition p of co-partitioned topics goes to the same
/// member. Members sort by `group.instance.id` when all of a topic's members are static, by
/// member id otherwise. Topics that do not exist are left out.
pub(crate) fn range_assignment(members: &BTreeMap<String, Member>, topics: &BTreeMap<String, Topic>) -> BTreeMap<String, Vec<Tp>> {
    let mut out: BTreeMap<String, Vec<Tp>> = members.keys().map(|id| (id.clone(), Vec::new())).collect();
    let wanted: BTreeSet<&String> = members.values().flat_map(|m| m.topics.iter()).collect();
    for topic in wanted {
        let Some(t) = topics.get(topic) else { continue };
        let mut subs: Vec<(&String, &Member)> = members.iter().filter(|(_, m)| m.topics.contains(topic)).collect();
        if subs.iter().all(|(_, m)| m.instance_id.is_some()) {
            subs.sort_by(|a, b| a.1.instance_id.cmp(&b.1.instance_id));
        }
        let n = t.partitions.len();
        let per = n / subs.len();
        let extra = n % subs.len();
        for (i, (id, _)) in subs.iter().enumerate() {
            let start = per * i + i.min(extra);
            let len = per + usize::from(i < extra);
            let list = out.get_mut(*id).expect("every member");
            list.extend((start..start + len).map(|p| Tp::new(topic.as_str(), p as u32)));
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}
