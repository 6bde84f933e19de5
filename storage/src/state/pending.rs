//! [`PendingStore`]: a [`KvStore`] whose next commit can be read before it is durable.
//!
//! A checkpoint gathers every task's writes into one batch while the tasks are paused. Making that
//! batch durable (fsync the log, then a synced state write) takes long; the tasks need only to
//! *read* it to go on. So the checkpoint [stages](PendingStore::stage) the batch here: from then on
//! every read sees the staged writes over the inner store, as if they were committed, and the
//! tasks resume. [`PendingStore::commit_staged`] then makes it durable in the background and drops
//! the staged layer once the inner store holds it.
//!
//! A staged batch that fails to commit stays staged (reads keep seeing it) and is committed with
//! the next one: [`PendingStore::stage`] appends the next batch to it. Other commits
//! ([`KvStore::commit`] on this store) wait while a staged batch is being committed, so they are
//! never overtaken by it, and are added to a staged batch that failed, so that reads and the
//! retried commit keep them in order.

use std::cmp::Ordering;
use std::iter::Peekable;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::{BatchOp, KvStore, ScanIter, StateBatch};
use crate::Result;

/// A store in front of `inner` that can show a staged batch before it is committed.
pub struct PendingStore {
    inner: Arc<dyn KvStore>,
    staged: RwLock<Option<Arc<Staged>>>,
    /// True from `stage` until `commit_staged` returns.
    in_flight: Mutex<bool>,
    idle: Condvar,
}

/// A staged batch, indexed for reads.
struct Staged {
    batch: StateBatch,
    /// The last put or delete of each key, as an index into `batch`, sorted by key.
    points: Vec<u32>,
    /// The range deletes, as indices into `batch`.
    ranges: Vec<u32>,
}

/// What a staged batch says about a key.
enum Verdict<'a> {
    Value(&'a [u8]),
    Deleted,
    /// The batch does not touch the key: the inner store decides.
    Unknown,
}

impl Staged {
    fn new(batch: StateBatch) -> Self {
        let (mut points, mut ranges) = (Vec::new(), Vec::new());
        for (i, op) in batch.iter().enumerate() {
            match op {
                BatchOp::DeleteRange(..) => ranges.push(i as u32),
                _ => points.push(i as u32),
            }
        }
        // Sorted as (key, index) pairs, the keys borrowed once: comparing through the batch's
        // operation table took a third of the checkpoint thread. The writes of one key stay in
        // batch order (the index breaks ties): the last one counts.
        let mut keyed: Vec<(&[u8], u32)> = points.iter().map(|&i| (point_key(&batch, i), i)).collect();
        keyed.sort_unstable();
        let mut last: Vec<u32> = Vec::with_capacity(keyed.len());
        let mut prev: Option<&[u8]> = None;
        for (k, i) in keyed {
            match last.last_mut() {
                Some(l) if prev == Some(k) => *l = i,
                _ => last.push(i),
            }
            prev = Some(k);
        }
        Staged { batch, points: last, ranges }
    }

    /// This batch's writes and then `next`'s, indexed anew.
    fn followed_by(&self, next: StateBatch) -> Staged {
        let mut b = self.batch.clone();
        b.extend(next);
        Staged::new(b)
    }

    /// The batch's effect as ordered operations: its range deletes, then the last write of
    /// each key in key order, less those a later range delete covers (the range delete, applied
    /// first now, removes them). The same end state as the batch applied in order, with the
    /// keys already sorted and each written once.
    fn in_key_order(&self) -> impl Iterator<Item = BatchOp<'_>> + '_ {
        let ranges = self.ranges.iter().map(|&r| self.batch.op(r as usize));
        let points = self.points.iter().filter_map(move |&i| {
            let op = self.batch.op(i as usize);
            let (BatchOp::Put(key, _) | BatchOp::Delete(key) | BatchOp::DeleteRange(key, _)) = op;
            (!self.range_deleted(key, Some(i))).then_some(op)
        });
        ranges.chain(points)
    }

    fn key(&self, pos: usize) -> &[u8] {
        point_key(&self.batch, self.points[pos])
    }

    /// True when a range delete after operation `after` (any, when `None`) covers `key`.
    fn range_deleted(&self, key: &[u8], after: Option<u32>) -> bool {
        self.ranges.iter().any(|&r| {
            after.is_none_or(|a| r > a)
                && matches!(self.batch.op(r as usize), BatchOp::DeleteRange(from, to) if from <= key && key < to)
        })
    }

    fn verdict_at(&self, pos: usize) -> Verdict<'_> {
        let i = self.points[pos];
        match self.batch.op(i as usize) {
            BatchOp::Put(k, v) if !self.range_deleted(k, Some(i)) => Verdict::Value(v),
            _ => Verdict::Deleted,
        }
    }

    fn verdict(&self, key: &[u8]) -> Verdict<'_> {
        match self.points.binary_search_by(|&i| point_key(&self.batch, i).cmp(key)) {
            Ok(pos) => self.verdict_at(pos),
            Err(_) if self.range_deleted(key, None) => Verdict::Deleted,
            Err(_) => Verdict::Unknown,
        }
    }

    /// Positions in `points` of the keys in `[from, to)`.
    fn span(&self, from: &[u8], to: &[u8]) -> (usize, usize) {
        let lo = self.points.partition_point(|&i| point_key(&self.batch, i) < from);
        let hi = self.points.partition_point(|&i| point_key(&self.batch, i) < to);
        (lo, hi.max(lo))
    }
}

fn point_key(batch: &StateBatch, i: u32) -> &[u8] {
    match batch.op(i as usize) {
        BatchOp::Put(k, _) | BatchOp::Delete(k) => k,
        BatchOp::DeleteRange(from, _) => from,
    }
}

impl PendingStore {
    /// A store that reads and writes `inner`, with nothing staged.
    pub fn new(inner: Arc<dyn KvStore>) -> Self {
        PendingStore { inner, staged: RwLock::new(None), in_flight: Mutex::new(false), idle: Condvar::new() }
    }

    fn layer(&self) -> Option<Arc<Staged>> {
        self.staged.read().clone()
    }

    /// Makes `batch` visible to every read, before it is committed; after a batch that failed to
    /// commit, `batch` is appended to it. Waits while another staged batch is being committed.
    pub fn stage(&self, batch: StateBatch) {
        self.stage_then(batch, || {});
    }

    /// [`PendingStore::stage`], calling `release` as soon as every read is sure to see `batch`:
    /// before the batch is indexed for reads (sorting its keys takes milliseconds for large
    /// batches), since reads wait for the index from then on. So the tasks a checkpoint paused
    /// go on at once, and only those that read the store before the index is ready wait.
    pub fn stage_then(&self, batch: StateBatch, release: impl FnOnce()) {
        let mut busy = self.in_flight.lock();
        while *busy {
            self.idle.wait(&mut busy);
        }
        let mut slot = self.staged.write();
        release();
        let staged = match slot.take() {
            Some(failed) => failed.followed_by(batch),
            None => Staged::new(batch),
        };
        *slot = Some(Arc::new(staged));
        drop(slot);
        *busy = true;
    }

    /// Runs `before` (the log's fsync), then commits the staged batch to the inner store; once that
    /// holds it, reads go there again. On an error the batch stays staged, for the next
    /// [`PendingStore::stage`] to commit with its own. Nothing staged: runs `before` alone.
    pub fn commit_staged(&self, sync: bool, before: impl FnOnce() -> Result<()>) -> Result<()> {
        let layer = self.layer();
        let result = before().and_then(|()| match &layer {
            Some(l) => self.inner.commit_ordered(&mut l.in_key_order(), sync),
            None => Ok(()),
        });
        if result.is_ok() {
            let mut staged = self.staged.write();
            if staged.as_ref().zip(layer.as_ref()).is_some_and(|(s, l)| Arc::ptr_eq(s, l)) {
                *staged = None;
            }
        }
        *self.in_flight.lock() = false;
        self.idle.notify_all();
        result
    }

    /// True while a batch is staged and not committed yet (being committed, or failed to).
    pub fn has_staged(&self) -> bool {
        self.staged.read().is_some()
    }
}

impl KvStore for PendingStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(l) = self.layer() {
            match l.verdict(key) {
                Verdict::Value(v) => return Ok(Some(v.to_vec())),
                Verdict::Deleted => return Ok(None),
                Verdict::Unknown => {}
            }
        }
        self.inner.get(key)
    }

    fn multi_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let Some(l) = self.layer() else { return self.inner.multi_get(keys) };
        let mut out = Vec::with_capacity(keys.len());
        let mut ask = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            out.push(match l.verdict(k) {
                Verdict::Value(v) => Some(v.to_vec()),
                Verdict::Deleted => None,
                Verdict::Unknown => {
                    ask.push(i);
                    None
                }
            });
        }
        if !ask.is_empty() {
            let asked: Vec<&[u8]> = ask.iter().map(|&i| keys[i]).collect();
            for (i, v) in ask.into_iter().zip(self.inner.multi_get(&asked)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn scan(&self, from: &[u8], to: &[u8]) -> Result<ScanIter<'_>> {
        let layer = self.layer();
        let inner = self.inner.scan(from, to)?;
        let Some(staged) = layer else { return Ok(inner) };
        let (pos, end) = staged.span(from, to);
        Ok(Box::new(Merge { inner: inner.peekable(), staged, pos, end }))
    }

    /// Commits `batch` to the inner store after a staged batch being committed; one that failed
    /// to commit takes `batch` too, so that reads and its retry see both in order.
    fn commit(&self, batch: &StateBatch, sync: bool) -> Result<()> {
        let mut busy = self.in_flight.lock();
        while *busy {
            self.idle.wait(&mut busy);
        }
        self.inner.commit(batch, sync)?;
        let mut staged = self.staged.write();
        if let Some(failed) = staged.as_ref() {
            *staged = Some(Arc::new(failed.followed_by(batch.clone())));
        }
        Ok(())
    }

    fn approximate_size(&self, from: &[u8], to: &[u8]) -> u64 {
        self.inner.approximate_size(from, to)
    }

    fn quiesce(&self) {
        self.inner.quiesce()
    }
}

/// A scan of the inner store with a staged batch over it.
struct Merge<'a> {
    inner: Peekable<ScanIter<'a>>,
    staged: Arc<Staged>,
    /// The next staged key, and the end of the scanned span, as positions in `staged.points`.
    pos: usize,
    end: usize,
}

impl Iterator for Merge<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next_staged = (self.pos < self.end).then(|| self.staged.key(self.pos));
            let order = match (self.inner.peek(), next_staged) {
                (None, None) => return None,
                (Some(Err(_)), _) => return self.inner.next(),
                (Some(Ok(_)), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(Ok((k, _))), Some(s)) => k.as_slice().cmp(s),
            };
            if order != Ordering::Greater {
                let (k, v) = match self.inner.next() {
                    Some(Ok(kv)) => kv,
                    other => return other,
                };
                if order == Ordering::Less {
                    if self.staged.range_deleted(&k, None) {
                        continue;
                    }
                    return Some(Ok((k, v)));
                }
            }
            let pos = self.pos;
            self.pos += 1;
            if let Verdict::Value(v) = self.staged.verdict_at(pos) {
                return Some(Ok((self.staged.key(pos).to_vec(), v.to_vec())));
            }
        }
    }
}
