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
//! Kafka's `min.cleanable.dirty.ratio`): the latest offset of every key added since the last
//! compaction (the dirty records of the cleanable segments: closed, below the floor) is mapped,
//! by a 128-bit digest of the key and for at most [`MAX_COMPACTION_KEYS`] keys, as Kafka's
//! cleaner maps MD5 digests in a bounded buffer; then each segment up to the last offset mapped
//! that holds records superseded by a mapped one is rewritten without them (records with a
//! null key, and keys not mapped, are kept). A pass that fills the map stops there, and the next
//! one maps the records after it. A tombstone (null value) that is the latest for its key is kept in the
//! newest cleanable segment and dropped from older ones. Offsets are preserved, so the log gets
//! gaps; a segment left empty is removed. A rewrite goes to `<base>.log|index|timeindex.cleaned`,
//! is synced, then renamed over the old files (indexes removed first, so a crash in between
//! leaves a log whose indexes are rebuilt on open, never a stale index).
//!
//! Locks: a pass holds the partition's `maint` lock (truncation waits), never the append lock;
//! the segment list is swapped under its short write lock, so appends and reads go on while a
//! segment is rewritten.

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
        // The latest offset of each key added since the last compaction (the dirty records: the
        // clean ones were compacted among themselves already), up to a bounded number of keys.
        let first_dirty = done_to.max(0);
        let mut latest = KeyOffsets::default();
        // The last offset mapped, when the map filled up before the end of the cleanable range.
        let mut map_end: Option<Offset> = None;
        let mut last = None;
        for (j, seg) in closed.iter().enumerate() {
            let seg_end = closed.get(j + 1).map_or(clean_end, |s| s.base);
            if seg_end <= first_dirty {
                continue;
            }
            let (_, how) = seg.scan(0, seg.size(), |_, f, buf| {
                if f.offset < first_dirty {
                    return true;
                }
                if latest.full() {
                    map_end = last;
                    return false;
                }
                if let Some((s, l)) = f.key {
                    latest.set(&buf[s..s + l], f.offset);
                }
                last = Some(f.offset);
                true
            })?;
            if map_end.is_some() {
                break;
            }
            if how != ScanEnd::End {
                // Never rewrite around a bad record: what follows it would be lost.
                return Ok(());
            }
        }
        for (j, seg) in closed.iter().enumerate() {
            if map_end.is_some_and(|end| seg.base > end) {
                break;
            }
            let keep_tombstones = j + 1 == closed.len();
            let Some(rewritten) = self.rewrite(seg, &latest, keep_tombstones, map_end, report)? else {
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
        if let Some(end) = map_end {
            // A partial pass: the next one maps the keys after it, whatever the dirty ratio.
            self.compacted_bytes.store(0, Ordering::Release);
            self.compacted_to.store(end + 1, Ordering::Release);
            return Ok(());
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
        latest: &KeyOffsets,
        keep_tombstones: bool,
        map_end: Option<Offset>,
        report: &mut RetentionReport,
    ) -> Result<Option<Option<Segment>>> {
        let keep = |f: &super::record::Frame, buf: &[u8]| match f.key {
            None => true,
            // A record is superseded by a later one of its key mapped in this pass; keys not
            // mapped (clean ones, or after a full map) keep their records.
            Some((s, l)) => {
                // A tombstone after the last offset mapped may be the latest of a key whose
                // older records this pass keeps: it stays too.
                latest.get(&buf[s..s + l]).is_none_or(|o| f.offset >= o)
                    && (keep_tombstones || f.value.is_some() || map_end.is_some_and(|e| f.offset > e))
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

/// Keys a compaction pass maps at most: about 100 MB (24 bytes a key, and the table's slack).
/// Past it, the pass compacts the records up to the last offset mapped and the next pass goes on
/// from there, as Kafka's cleaner does with its bounded offset map.
const MAX_COMPACTION_KEYS: usize = if cfg!(test) { 1_000 } else { 4_000_000 };

/// The latest offset per key of one compaction pass, keyed by a 128-bit hash of the key (as
/// Kafka's cleaner keys its map by MD5 digests): no copy of the keys, bounded memory, and a
/// collision (two keys taken for one, the older record dropped) as unlikely as 2^-64 at this size.
#[derive(Default)]
struct KeyOffsets {
    map: hashbrown::HashMap<u128, Offset>,
}

impl KeyOffsets {
    fn digest(key: &[u8]) -> u128 {
        use std::hash::BuildHasher;
        let a = foldhash::quality::FixedState::with_seed(0x243f_6a88_85a3_08d3).hash_one(key);
        let b = foldhash::quality::FixedState::with_seed(0x1319_8a2e_0370_7344).hash_one(key);
        (u128::from(a) << 64) | u128::from(b)
    }

    fn full(&self) -> bool {
        self.map.len() >= MAX_COMPACTION_KEYS
    }

    fn set(&mut self, key: &[u8], offset: Offset) {
        self.map.insert(Self::digest(key), offset);
    }

    fn get(&self, key: &[u8]) -> Option<Offset> {
        self.map.get(&Self::digest(key)).copied()
    }
}
