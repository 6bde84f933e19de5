//! Standby copies: this instance keeps the state of the tasks of a query that run on other
//! instances, by following their changelog partitions into the local state store (Kafka Streams'
//! standby replicas, for every task).
//!
//! They serve two ends. A pull query on any instance reads every partition's state locally,
//! after [`Standbys::catch_up_step`] has seen each remote task process its inputs up to their end and
//! the change reach its changelog, so that the answer is never older than the pull query. And a
//! task that moves here restores from a copy that is already (nearly) current.
//!
//! The copy of a task lives under the same keys as the task's own state, with the same changelog
//! position key, so a task that starts here goes on from where its copy stopped, and a task that
//! leaves becomes a copy again. The member thread calls both `set_tasks` and `pump` between its
//! group polls, never while the engine runs the task here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use engine::runtime::keys::{decode_i64, offset_key, task_meta_key};
use storage::{KvStore, Offset, StateBatch};

use crate::changelog::Applier;
use crate::client::{Cluster, PartitionReader, Tp};
use crate::error::KafkaError;

/// One followed task.
struct Copy {
    changelog: Tp,
    applier: Applier,
    /// The next changelog offset to read.
    position: Offset,
    /// The task's input-offset keys with the Kafka partitions they are about.
    inputs: Vec<(Vec<u8>, Tp)>,
}

/// The standby copies of one query's remote tasks.
pub(crate) struct Standbys {
    cluster: Arc<dyn Cluster>,
    state: Arc<dyn KvStore>,
    query_id: String,
    group_id: String,
    exactly_once: bool,
    /// Per sub-topology: (Kafka input topics, partitions, changelog topic).
    layout: Vec<(Vec<String>, u32, String)>,
    copies: BTreeMap<(usize, u32), Copy>,
    reader: Option<Box<dyn PartitionReader>>,
    /// The input end offsets a wait started at (see `catch_up_step`).
    targets: Option<BTreeMap<Tp, Offset>>,
}

impl Standbys {
    /// Copies of nothing yet, for query `query_id`.
    pub fn new(
        cluster: Arc<dyn Cluster>,
        state: Arc<dyn KvStore>,
        query_id: &str,
        group_id: String,
        exactly_once: bool,
        layout: Vec<(Vec<String>, u32, String)>,
    ) -> Self {
        Standbys { cluster, state, query_id: query_id.into(), group_id, exactly_once, layout, copies: BTreeMap::new(), reader: None, targets: None }
    }

    /// Every task of the query.
    pub fn all_tasks(&self) -> Vec<(usize, u32)> {
        self.layout.iter().enumerate().flat_map(|(s, l)| (0..l.1).map(move |p| (s, p))).collect()
    }

    /// The tasks whose inputs are all in `owned` (they run here).
    pub fn local_tasks(&self, owned: &BTreeSet<Tp>) -> BTreeSet<(usize, u32)> {
        self.all_tasks()
            .into_iter()
            .filter(|(s, p)| self.layout[*s].0.iter().all(|t| owned.contains(&Tp::new(t.clone(), *p))))
            .collect()
    }

    /// Follows exactly these tasks from now on (the others run here, or stop being followed).
    pub fn set_tasks(&mut self, tasks: &BTreeSet<(usize, u32)>) -> Result<(), KafkaError> {
        let current: BTreeSet<(usize, u32)> = self.copies.keys().copied().collect();
        if &current == tasks && (self.reader.is_some() || tasks.is_empty()) {
            return Ok(());
        }
        // Copies that stop being followed keep what they applied, and where they stood.
        for key in current.difference(tasks) {
            if let Some(c) = self.copies.remove(key) {
                self.save_position(*key, &c).map_err(|e| KafkaError::other("standby", e))?;
            }
        }
        for &(s, p) in tasks.difference(&current) {
            let pos_key = task_meta_key(&self.query_id, s, p, b'c');
            let local = self.state.get(&pos_key).ok().flatten().and_then(|v| decode_i64(&v)).unwrap_or(0);
            let inputs = self.layout[s]
                .0
                .iter()
                .enumerate()
                .map(|(i, t)| (offset_key(&self.query_id, s, i, p), Tp::new(t.clone(), p)))
                .collect();
            let changelog = Tp::new(self.layout[s].2.clone(), p);
            self.copies.insert((s, p), Copy { changelog, applier: Applier::default(), position: local, inputs });
        }
        self.reader = None;
        if !self.copies.is_empty() {
            let mut reader = self.cluster.reader()?;
            let parts: Vec<(Tp, Offset)> = self.copies.values().map(|c| (c.changelog.clone(), c.position)).collect();
            reader.assign(&parts)?;
            self.reader = Some(reader);
        }
        Ok(())
    }

    fn save_position(&self, (s, p): (usize, u32), c: &Copy) -> storage::Result<()> {
        let mut b = StateBatch::default();
        // Not past a group that is not applied yet: it is read again after a restart.
        b.put(&task_meta_key(&self.query_id, s, p, b'c'), &c.applier.first_pending().unwrap_or(c.position).to_be_bytes());
        self.state.commit(&b, false)
    }

    /// Applies what the followed changelogs have now, waiting up to `timeout` for it.
    pub fn pump(&mut self, timeout: Duration) -> Result<usize, KafkaError> {
        let Some(reader) = self.reader.as_mut() else { return Ok(0) };
        let got = reader.poll(timeout, 10_000)?;
        let reader = self.reader.as_ref().expect("reader");
        let n = got.len();
        let state = self.state.clone();
        let mut touched = BTreeSet::new();
        for f in got {
            let Some((key, c)) = self.copies.iter_mut().find(|(_, c)| c.changelog == f.tp) else { continue };
            let inputs = &c.inputs;
            c.applier.push(&f, state.as_ref(), |k| inputs.iter().any(|(ik, _)| ik.as_slice() == k)).map_err(|e| KafkaError::other("standby", e))?;
            c.position = f.offset + 1;
            touched.insert(*key);
        }
        // The reader's position is past transaction markers, which no record shows.
        for (key, c) in self.copies.iter_mut() {
            if let Some(p) = reader.position(&c.changelog)? {
                if p > c.position {
                    c.position = p;
                    touched.insert(*key);
                }
            }
        }
        for key in touched {
            let c = &self.copies[&key];
            self.save_position(key, c).map_err(|e| KafkaError::other("standby", e))?;
        }
        Ok(n)
    }

    /// One step of waiting until every followed task has processed its inputs up to their end
    /// offsets as of the wait's beginning (`begin`), and its copy here has applied the epoch that
    /// says so. Returns true when they all have.
    pub fn catch_up_step(&mut self, begin: bool) -> Result<bool, KafkaError> {
        if begin || self.targets.is_none() {
            let mut targets: BTreeMap<Tp, Offset> = BTreeMap::new();
            for (s, l) in self.layout.iter().enumerate() {
                let _ = s;
                for t in &l.0 {
                    for p in 0..l.1 {
                        let tp = Tp::new(t.clone(), p);
                        let end = self.cluster.watermarks(&tp)?.1;
                        targets.insert(tp, end);
                    }
                }
            }
            self.targets = Some(targets);
        }
        self.pump(Duration::from_millis(20))?;
        let targets = self.targets.clone().unwrap_or_default();
        let keys: Vec<(usize, u32)> = self.copies.keys().copied().collect();
        let mut done = true;
        for key in keys {
            // A copy at its changelog's end decides its last group: it committed when its input
            // offsets are the group's committed ones.
            let end = self.cluster.watermarks(&self.copies[&key].changelog)?.1;
            let c = self.copies.get_mut(&key).expect("copy");
            if c.position < end {
                done = false;
                continue;
            }
            if c.applier.has_pending() {
                let committed = if !self.exactly_once || c.applier.pending_offsets().is_empty() {
                    true
                } else {
                    let tps: Vec<Tp> = c
                        .applier
                        .pending_offsets()
                        .iter()
                        .filter_map(|(k, _)| c.inputs.iter().find(|(ik, _)| ik == k).map(|(_, tp)| tp.clone()))
                        .collect();
                    match self.cluster.committed_offsets(&self.group_id, &tps) {
                        Ok(got) => c.applier.pending_offsets().iter().zip(got).all(|((_, o), g)| g == Some(*o)),
                        Err(_) => true,
                    }
                };
                if committed {
                    c.applier.apply_with(self.state.as_ref(), &StateBatch::default()).map_err(|e| KafkaError::other("standby", e))?;
                }
            }
            let c = &self.copies[&key];
            self.save_position(key, c).map_err(|e| KafkaError::other("standby", e))?;
            for (ik, tp) in &c.inputs {
                let at = self.state.get(ik).ok().flatten().and_then(|v| decode_i64(&v)).unwrap_or(0);
                if at < targets.get(tp).copied().unwrap_or(0) {
                    done = false;
                }
            }
        }
        Ok(done)
    }
}
