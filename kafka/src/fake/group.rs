//! [`FakeGroupConsumer`], a member of a consumer group of the fake cluster, and [`FakeGroupMeta`],
//! its identity for transactional offset commits.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::Offset;

use super::coordinator::{Member, MAX_SESSION_TIMEOUT_MS, MIN_SESSION_TIMEOUT_MS};
use super::fault::Op;
use super::reader::fetch;
use super::state::State;
use super::{before, finish, Broker, Host};
use crate::client::{Fetched, GroupConsumer, GroupEvent, GroupMeta, GroupOptions, Polled, Tp};
use crate::error::{KafkaError, Result};

/// A group member's identity as [`crate::Producer::send_offsets_to_transaction`] checks it: the
/// group coordinator refuses the offsets of a member it does not know, of an older generation, or
/// of a static instance another member has taken. [`crate::Cluster::group_meta`] gives one with no
/// member and generation -1, which the coordinator does not check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeGroupMeta {
    /// The group.
    pub group_id: String,
    /// The member id (empty: not a member).
    pub member_id: String,
    /// The generation of the member's assignment (-1: none).
    pub generation: i32,
    /// The member's `group.instance.id`.
    pub instance_id: Option<String>,
}

/// A member of a consumer group of the fake cluster.
///
/// The member joins at its first poll. A rebalance follows Kafka's eager protocol: a join, a
/// leave, a member removed (session timed out, `max.poll.interval.ms` passed, rebalance timeout)
/// or a subscribed topic changing starts one. Every member then rejoins at its next poll, giving
/// up all its partitions ([`GroupEvent::Revoked`], left out when it had none); when all have
/// rejoined, the generation goes up by one and the `range` assignment is computed; each member
/// gets its part at its next poll ([`GroupEvent::Assigned`], possibly empty). A poll that hands
/// out events returns no records. Members that do not rejoin within the rebalance timeout
/// (`max.poll.interval.ms`) are removed and the round completes without them.
///
/// Heartbeats: librdkafka heartbeats from a background thread, so a member whose process runs (its
/// host is alive and connected) stays in the group however rarely it polls, up to
/// `max.poll.interval.ms` ([`MAX_POLL_INTERVAL_MS`](super::MAX_POLL_INTERVAL_MS)); a member whose
/// host was killed or disconnected stops heartbeating then and is removed once its session timeout
/// has passed. A member that finds it was removed loses its partitions (`Revoked`) and joins again
/// as a new member.
///
/// Static membership (`group.instance.id`): a member that comes back while its old place is still
/// there takes that place, with its partitions and generation, without a rebalance; a consumer
/// whose place was taken while it still ran fails from then on with FENCED_INSTANCE_ID. Closing
/// (or dropping) a dynamic member leaves the group at once; a static member keeps its place until
/// its session times out.
///
/// A newly assigned partition starts at the group's committed offset, or at the log start when
/// none was committed (`auto.offset.reset=earliest`); while a transaction holding offsets for it
/// is open (UNSTABLE_OFFSET_COMMIT) it is not fetched and its position is unknown.
#[derive(Debug)]
pub struct FakeGroupConsumer {
    broker: Arc<Broker>,
    host: Arc<Host>,
    handle: u64,
    opts: GroupOptions,
    member_id: Option<String>,
    /// The generation of the assignment handed out last.
    generation: Option<i32>,
    assignment: Vec<Tp>,
    /// Positions of the assigned partitions (`None` until known).
    positions: Vec<(Tp, Option<Offset>)>,
    paused: BTreeSet<Tp>,
    closed: bool,
    /// Shared with the coordinator's member: false once closed (no more heartbeats).
    open: Arc<AtomicBool>,
    /// FENCED_INSTANCE_ID: another consumer took this one's static place.
    fatal: Option<String>,
}

impl FakeGroupConsumer {
    pub(crate) fn new(broker: Arc<Broker>, host: Arc<Host>, opts: &GroupOptions) -> Self {
        let handle = broker.new_handle();
        FakeGroupConsumer {
            broker,
            host,
            handle,
            opts: opts.clone(),
            member_id: None,
            generation: None,
            assignment: Vec::new(),
            positions: Vec::new(),
            paused: BTreeSet::new(),
            closed: false,
            open: Arc::new(AtomicBool::new(true)),
            fatal: None,
        }
    }

    /// The member id (`None` before the first poll joined).
    pub fn member_id(&self) -> Option<&str> {
        self.member_id.as_deref()
    }

    /// The generation of the assignment this member holds.
    pub fn generation(&self) -> Option<i32> {
        self.generation
    }

    /// The partitions this member holds.
    pub fn assignment(&self) -> &[Tp] {
        &self.assignment
    }

    fn group(&self) -> &str {
        &self.opts.group_id
    }

    fn usable(&self, operation: &str) -> Result<()> {
        if let Some(m) = &self.fatal {
            return Err(KafkaError::other(operation, m));
        }
        if self.closed {
            return Err(KafkaError::other(operation, "the consumer is closed"));
        }
        Ok(())
    }

    fn revoke(&mut self, events: &mut Vec<GroupEvent>) {
        if !self.assignment.is_empty() {
            events.push(GroupEvent::Revoked(std::mem::take(&mut self.assignment)));
        }
        self.positions.clear();
        self.paused.clear();
        self.generation = None;
    }

    /// The group protocol for one poll: join or rejoin, revoke, take the new assignment.
    fn sync(&mut self, st: &mut State, now: i64, events: &mut Vec<GroupEvent>) -> Result<()> {
        let known = self.member_id.as_ref().is_some_and(|id| {
            st.groups.get(&self.opts.group_id).and_then(|g| g.members.get(id)).is_some_and(|m| m.handle == self.handle)
        });
        let new_id = if known { String::new() } else { st.new_member_id() };
        let State { groups, topics, .. } = st;
        let g = groups.entry(self.opts.group_id.clone()).or_default();
        let instance = self.opts.instance_id.clone();
        if let Some(id) = self.member_id.clone() {
            if g.members.get(&id).is_none_or(|m| m.handle != self.handle) {
                if g.static_fenced(instance.as_deref(), &id) {
                    let m = format!(
                        "FENCED_INSTANCE_ID: group.instance.id \"{}\" of group \"{}\" was taken by another consumer",
                        instance.as_deref().unwrap_or(""),
                        self.opts.group_id
                    );
                    self.fatal = Some(m.clone());
                    self.revoke(events);
                    return Err(KafkaError::other(format!("polling consumer group \"{}\"", self.opts.group_id), m));
                }
                // Removed by the coordinator: the partitions are lost; join again.
                self.revoke(events);
                self.member_id = None;
            }
        }
        if self.member_id.is_none() {
            let mut topics_sorted = self.opts.topics.clone();
            topics_sorted.sort();
            topics_sorted.dedup();
            let member = Member {
                handle: self.handle,
                host: self.host.clone(),
                instance_id: instance.clone(),
                topics: topics_sorted.clone(),
                session_timeout_ms: self.opts.session_timeout.as_millis() as i64,
                last_heartbeat_ms: now,
                last_poll_ms: now,
                open: self.open.clone(),
                rejoined: true,
            };
            match instance.as_deref().and_then(|i| g.member_of_instance(i)) {
                Some(old) => {
                    // A static member comes back: it takes its old place and partitions.
                    let old_member = g.members.remove(&old).expect("found");
                    let parts = g.assignment.remove(&old).unwrap_or_default();
                    g.members.insert(new_id.clone(), member);
                    g.assignment.insert(new_id.clone(), parts);
                    if old_member.topics != topics_sorted {
                        g.start_rebalance(now);
                    }
                }
                None => {
                    g.members.insert(new_id.clone(), member);
                    g.start_rebalance(now);
                }
            }
            if let Some(m) = g.members.get_mut(&new_id) {
                m.rejoined = true;
            }
            self.member_id = Some(new_id);
        }
        let id = self.member_id.clone().expect("joined");
        let m = g.members.get_mut(&id).expect("a member");
        m.last_poll_ms = now;
        m.last_heartbeat_ms = now;
        if g.rebalance_deadline.is_some() && !m.rejoined {
            m.rejoined = true;
            self.revoke(events);
        }
        g.try_complete(topics);
        if g.rebalance_deadline.is_none() && self.generation != Some(g.generation) {
            let parts = g.assignment.get(&id).cloned().unwrap_or_default();
            if !self.assignment.is_empty() && self.assignment != parts {
                self.revoke(events);
            }
            self.positions = parts.iter().map(|tp| (tp.clone(), None)).collect();
            self.assignment = parts.clone();
            self.generation = Some(g.generation);
            events.push(GroupEvent::Assigned(parts));
        }
        Ok(())
    }

    /// Fetches from the assigned, unpaused partitions whose position is known (resolving it
    /// from the committed offset first); whether a position moved.
    fn fetch_records(&mut self, st: &State, max: usize, out: &mut Vec<Fetched>) -> Result<bool> {
        let group = self.opts.group_id.clone();
        let committed = st.groups.get(&group).map(|g| &g.committed);
        let mut moved = false;
        for (tp, pos) in self.positions.iter_mut() {
            if pos.is_none() && !st.offsets_unstable(&group, tp) {
                let start = st.partition(tp, "fetching").map(|p| p.start).unwrap_or(0);
                *pos = Some(committed.and_then(|c| c.get(tp).copied()).unwrap_or(start));
                moved = true;
            }
        }
        let mut parts: Vec<(Tp, Offset)> =
            self.positions.iter().filter(|(tp, p)| p.is_some() && !self.paused.contains(tp)).map(|(tp, p)| (tp.clone(), p.unwrap_or(0))).collect();
        moved |= fetch(st, &mut parts, max, out)?;
        for (tp, o) in parts {
            if let Some(slot) = self.positions.iter_mut().find(|(t, _)| *t == tp) {
                slot.1 = Some(o);
            }
        }
        Ok(moved)
    }

    /// A gate for calls that only read or set local state.
    fn simple<T>(&mut self, op: Op, operation: &str, f: impl FnOnce(&mut Self, &State) -> Result<T>) -> Result<T> {
        let broker = self.broker.clone();
        let group = self.opts.group_id.clone();
        let (st, fault) = broker.enter(&self.host, op, &group)?;
        self.usable(operation)?;
        if let Some(fl) = before(fault) {
            return Err(fl.error(op, &group));
        }
        let r = f(self, &st)?;
        drop(st);
        finish(&self.host, fault, op, &group, r)
    }
}

impl GroupConsumer for FakeGroupConsumer {
    fn poll(&mut self, timeout: Duration, max_records: usize) -> Result<Polled> {
        let operation = format!("polling consumer group \"{}\"", self.group());
        let broker = self.broker.clone();
        let group = self.opts.group_id.clone();
        let (mut st, fault) = broker.enter(&self.host, Op::GroupPoll, &group)?;
        self.usable(&operation)?;
        if let Some(f) = fault {
            // Nothing of a poll is lost: every fault fails it before the group protocol or a
            // fetch moved.
            if f.kills() {
                self.host.kill();
            }
            return Err(f.error(Op::GroupPoll, &group));
        }
        let session = self.opts.session_timeout.as_millis() as i64;
        if !(MIN_SESSION_TIMEOUT_MS..=MAX_SESSION_TIMEOUT_MS).contains(&session) {
            return Err(KafkaError::other(
                format!("joining consumer group \"{group}\""),
                format!("INVALID_SESSION_TIMEOUT: session.timeout.ms {session} is outside the broker's {MIN_SESSION_TIMEOUT_MS}..{MAX_SESSION_TIMEOUT_MS}"),
            ));
        }
        let deadline = Instant::now() + timeout;
        let mut out = Polled::default();
        loop {
            let now = broker.now();
            self.sync(&mut st, now, &mut out.events)?;
            if !out.events.is_empty() {
                break;
            }
            let moved = self.fetch_records(&st, max_records, &mut out.records)?;
            if !out.records.is_empty() || moved || !broker.waits() || !broker.wait_change(&mut st, deadline) {
                break;
            }
            // A process killed or cut off while its poll waited does nothing more.
            self.host.check()?;
            st.tick(broker.now());
        }
        drop(st);
        broker.notify();
        Ok(out)
    }

    fn committed(&self, parts: &[Tp], _timeout: Duration) -> Result<Vec<Option<Offset>>> {
        let operation = format!("reading the offsets of consumer group \"{}\"", self.group());
        let group = self.opts.group_id.clone();
        let (st, fault) = self.broker.enter(&self.host, Op::Committed, &group)?;
        self.usable(&operation)?;
        if let Some(f) = before(fault) {
            return Err(f.error(Op::Committed, &group));
        }
        if let Some(tp) = parts.iter().find(|tp| st.offsets_unstable(&group, tp)) {
            return Err(KafkaError::Retriable {
                operation,
                message: format!("UNSTABLE_OFFSET_COMMIT: a transaction holding offsets for {tp} is still open"),
            });
        }
        let committed = st.groups.get(&group).map(|g| &g.committed);
        let r = parts.iter().map(|tp| committed.and_then(|c| c.get(tp).copied())).collect();
        drop(st);
        finish(&self.host, fault, Op::Committed, &group, r)
    }

    fn seek(&mut self, tp: &Tp, offset: Offset) -> Result<()> {
        let operation = format!("seeking {tp}");
        self.simple(Op::Seek, &operation.clone(), |me, _| {
            let slot = me.positions.iter_mut().find(|(t, _)| t == tp).ok_or_else(|| KafkaError::other(&operation, "the partition is not assigned"))?;
            slot.1 = Some(offset);
            Ok(())
        })
    }

    fn pause(&mut self, parts: &[Tp]) -> Result<()> {
        self.simple(Op::Pause, "pausing partitions", |me, _| {
            me.paused.extend(parts.iter().cloned());
            Ok(())
        })
    }

    fn resume(&mut self, parts: &[Tp]) -> Result<()> {
        self.simple(Op::Resume, "resuming partitions", |me, _| {
            for tp in parts {
                me.paused.remove(tp);
            }
            Ok(())
        })
    }

    fn position(&self, tp: &Tp) -> Result<Option<Offset>> {
        let group = self.opts.group_id.clone();
        let (st, fault) = self.broker.enter(&self.host, Op::GroupPosition, &group)?;
        drop(st);
        self.usable("reading positions")?;
        if let Some(f) = before(fault) {
            return Err(f.error(Op::GroupPosition, &group));
        }
        let pos = self.positions.iter().find(|(t, _)| t == tp).and_then(|(_, o)| *o);
        finish(&self.host, fault, Op::GroupPosition, &group, pos)
    }

    fn group_meta(&self) -> Option<GroupMeta> {
        let member_id = self.member_id.clone()?;
        let generation = self.generation?;
        Some(GroupMeta(Arc::new(FakeGroupMeta {
            group_id: self.opts.group_id.clone(),
            member_id,
            generation,
            instance_id: self.opts.instance_id.clone(),
        })))
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.assignment.clear();
        self.positions.clear();
        // The lock applies the clock first: the member's last heartbeat is now.
        let mut st = self.broker.lock();
        self.open.store(false, Ordering::SeqCst);
        // A killed or cut-off process cannot tell the coordinator: its session times out. A
        // static member keeps its place until then (no LeaveGroup), a dynamic one leaves now.
        if !self.host.connected() || self.opts.instance_id.is_some() {
            return;
        }
        let Some(id) = self.member_id.clone() else { return };
        let now = self.broker.now();
        let State { groups, topics, .. } = &mut *st;
        if let Some(g) = groups.get_mut(&self.opts.group_id) {
            if g.members.get(&id).is_some_and(|m| m.handle == self.handle) {
                g.remove(&id, now, topics);
            }
        }
        st.version += 1;
        drop(st);
        self.broker.notify();
    }
}

impl Drop for FakeGroupConsumer {
    fn drop(&mut self) {
        // librdkafka closes a consumer when it is destroyed.
        self.close();
    }
}
