//! Retention (delete policy) and compaction (compact policy) of one partition.
//!
//! Every pass is limited by a floor: the first offset that must stay as it is (what a reader has
//! not consumed and checkpointed yet, or output written after the last checkpoint). Only closed
//! segments whose records all lie below the floor are deleted or compacted; the active segment is
//! never touched.
//!
//! Delete: whole closed segments are removed from the front while their newest timestamp is older
//! than `now - retention_ms`, then while the partition is larger than `retention_bytes`, and the
//! start offset moves up to the first remaining segment. Delete-consumed (repartition topics):
//! every closed segment below the floor goes, whatever the settings.
//!
//! Compact (once at least half of the cleanable bytes are new since the last compaction, as
//! Kafka's `min.cleanable.dirty.ratio`): the latest offset of every key in the cleanable segments
//! (closed, below the floor) is found, then each of them that holds older records is rewritten without them (records with a
//! null key are kept). A tombstone (null value) that is the latest for its key is kept in the
//! newest cleanable segment and dropped from older ones. Offsets are preserved, so the log gets
//! gaps; a segment left empty is removed. A rewrite goes to `<base>.log|index|timeindex.cleaned`,
//! is synced, then renamed over the old files (indexes removed first, so a crash in between
//! leaves a log whose indexes are rebuilt on open, never a stale index).
//!
//! Locks: a pass holds the partition's `maint` lock (truncation waits), never the append lock;
//! the segment list is swapped under its short write lock, so appends and reads go on while a
//! segment is rewritten.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::api::{RetentionReport, TopicConfig};
use super::index::{IndexCursor, IndexPaths, SegmentIndex};
use super::partition::{sync_dir, Partition};
use super::segment::{
    index_paths, open_log, remove_if_exists, segment_path, ScanEnd, Segment, SegmentState,
};
use crate::error::{IoContext, Result};
use crate::log::Offset;

/// Bytes buffered before a compaction rewrite writes to its file.
const WRITE_CHUNK: usize = 1 << 20;

/// How many segments at the front of `segs` may be cleaned: closed ones whose records all lie
/// below `floor` (the active segment, the last, never).
fn cleanable(segs: &[Arc<Segment>], floor: Offset) -> usize {
    let closed = segs.len() - 1;
    segs[..closed]
        .iter()
        .take_while(|s| s.next_offset() <= floor)
        .count()
}

impl Partition {
    /// Deletes old segments by time and size, none reaching `floor` or beyond.
    pub fn delete_old(
        &self,
        config: &TopicConfig,
        now_ms: i64,
        floor: Offset,
        report: &mut RetentionReport,
    ) -> Result<()> {
        let _maint = self.maint.lock();
        let segs = self.segments();
        let closed = cleanable(&segs, floor);
        let mut n = 0;
        if let Some(ms) = config.retention_ms {
            let limit = now_ms.saturating_sub(ms);
            while n < closed && segs[n].max_ts() < limit {
                n += 1;
            }
        }
        if let Some(limit) = config.retention_bytes {
            let mut total: u64 = segs[n..].iter().map(|s| s.size()).sum();
            while n < closed && total > limit {
                total -= segs[n].size();
                n += 1;
            }
        }
        self.remove_front(&segs, n, report)
    }

    /// Deletes every closed segment whose records all lie below `floor`.
    pub fn delete_below(&self, floor: Offset, report: &mut RetentionReport) -> Result<()> {
        let _maint = self.maint.lock();
        let segs = self.segments();
        let n = cleanable(&segs, floor);
        self.remove_front(&segs, n, report)
    }

    /// Removes the first `n` segments of the snapshot `segs` (called with `maint` held).
    fn remove_front(
        &self,
        segs: &[Arc<Segment>],
        n: usize,
        report: &mut RetentionReport,
    ) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        {
            // Appends may have rolled since the snapshot; they only add segments at the end.
            let mut list = self.segments.write();
            let kept = list[n..].to_vec();
            *list = Arc::new(kept);
        }
        for s in &segs[..n] {
            report.segments_deleted += 1;
            report.bytes_freed += s.size();
            s.delete_files()?;
        }
        Ok(())
    }

    /// Compacts the closed segments below `floor`, keeping the latest record per key.
    pub fn compact(&self, floor: Offset, report: &mut RetentionReport) -> Result<()> {
        let _maint = self.maint.lock();
        let segs = self.segments();
        let closed = &segs[..cleanable(&segs, floor)];
        // Where the cleanable range ends: nothing new to compact while it stays there.
        let clean_end = segs[closed.len()].base;
        let done_to = self.compacted_to.load(Ordering::Acquire);
        if closed.is_empty() || done_to == clean_end {
            return Ok(());
        }
        // As Kafka's `min.cleanable.dirty.ratio` (0.5): rewrite only once at least half of the
        // cleanable bytes were added since the last compaction, so that a large compacted log is
        // not scanned again for every segment that closes.
        let size: u64 = closed.iter().map(|s| s.size()).sum();
        let dirty = size.saturating_sub(self.compacted_bytes.load(Ordering::Acquire));
        if done_to >= 0 && dirty * 2 < size {
            return Ok(());
        }
        let mut latest: HashMap<Vec<u8>, Offset> = HashMap::new();
        for seg in closed {
            let (_, how) = seg.scan(0, seg.size(), |_, f, buf| {
                if let Some((s, l)) = f.key {
                    let key = &buf[s..s + l];
                    match latest.get_mut(key) {
                        Some(o) => *o = f.offset,
                        None => {
                            latest.insert(key.to_vec(), f.offset);
                        }
                    }
                }
                true
            })?;
            if how != ScanEnd::End {
                // Never rewrite around a bad record: what follows it would be lost.
                return Ok(());
            }
        }
        for (j, seg) in closed.iter().enumerate() {
            let keep_tombstones = j + 1 == closed.len();
            let Some(rewritten) = self.rewrite(seg, &latest, keep_tombstones, report)? else {
                continue;
            };
            let mut list = self.segments.write();
            let mut new = Vec::clone(&list);
            let i = new
                .iter()
                .position(|s| Arc::ptr_eq(s, seg))
                .expect("closed segment is listed");
            match rewritten {
                Some(s) => new[i] = Arc::new(s),
                None => {
                    new.remove(i);
                }
            }
            *list = Arc::new(new);
        }
        let segs = self.segments();
        let kept: u64 = segs.iter().take_while(|s| s.base < clean_end).map(|s| s.size()).sum();
        self.compacted_bytes.store(kept, Ordering::Release);
        self.compacted_to.store(clean_end, Ordering::Release);
        Ok(())
    }

    /// Rewrites `seg` without superseded records. `None`: nothing to remove; `Some(None)`: nothing
    /// left (the files are deleted); `Some(Some(s))`: the new segment, already in place on disk.
    fn rewrite(
        &self,
        seg: &Segment,
        latest: &HashMap<Vec<u8>, Offset>,
        keep_tombstones: bool,
        report: &mut RetentionReport,
    ) -> Result<Option<Option<Segment>>> {
        let keep = |f: &super::record::Frame, buf: &[u8]| match f.key {
            None => true,
            Some((s, l)) => {
                latest.get(&buf[s..s + l]) == Some(&f.offset)
                    && (keep_tombstones || f.value.is_some())
            }
        };
        let mut removed = 0u64;
        seg.scan(0, seg.size(), |_, f, buf| {
            removed += u64::from(!keep(f, buf));
            true
        })?;
        if removed == 0 {
            return Ok(None);
        }
        report.records_compacted += removed;
        let dir = &self.dir;
        let base = seg.base;
        let tmp_path = segment_path(dir, base, "log.cleaned");
        let tmp_idx = IndexPaths {
            index: segment_path(dir, base, "index.cleaned"),
            time: segment_path(dir, base, "timeindex.cleaned"),
        };
        let mut file = open_log(&tmp_path, true)?;
        let mut out = Vec::with_capacity(WRITE_CHUNK);
        let mut written = 0u64;
        let mut idx = SegmentIndex::default();
        let mut cursor = IndexCursor::after(&idx);
        let mut last = None;
        let mut failed = None;
        seg.scan(0, seg.size(), |_, f, buf| {
            if keep(f, buf) {
                cursor.on_record(f.offset, written + out.len() as u64, f.timestamp, &mut idx);
                out.extend_from_slice(&buf[f.start..f.start + f.len]);
                last = Some(f.offset);
                if out.len() >= WRITE_CHUNK {
                    if let Err(e) = file.write_all(&out) {
                        failed = Some(e);
                        return false;
                    }
                    written += out.len() as u64;
                    out.clear();
                }
            }
            true
        })?;
        let done = match failed {
            Some(e) => Err(e),
            None => file.write_all(&out).and_then(|()| file.sync_all()),
        };
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(crate::StorageError::io(&tmp_path, e));
        }
        written += out.len() as u64;
        report.bytes_freed += seg.size().saturating_sub(written);
        let paths = index_paths(dir, base);
        let Some(last) = last else {
            std::fs::remove_file(&tmp_path).at(&tmp_path)?;
            seg.delete_files()?;
            return Ok(Some(None));
        };
        idx.close(cursor.max_ts, last);
        idx.write_all(&tmp_idx)?;
        for p in [&paths.index, &paths.time] {
            remove_if_exists(p)?;
        }
        let log_path = seg.log_path();
        std::fs::rename(&tmp_path, log_path).at(log_path)?;
        std::fs::rename(&tmp_idx.index, &paths.index).at(&paths.index)?;
        std::fs::rename(&tmp_idx.time, &paths.time).at(&paths.time)?;
        sync_dir(dir)?;
        let state = SegmentState {
            size: written,
            next_offset: last + 1,
            max_ts: cursor.max_ts,
        };
        Ok(Some(Some(Segment::from_parts(
            dir, base, file, idx, state, None,
        )?)))
    }
}
