//! One partition of a topic: its ordered segments, appends, truncation and sync.
//!
//! Files: `<topic dir>/<partition>/<base_offset:020>.log|.index|.timeindex`, one triple per segment;
//! the segment with the highest base offset is the active one.
//!
//! Locks: `writer` serializes appends (one per partition, so partitions append in parallel);
//! `maint` serializes truncation, retention and compaction; the segment list is a copy-on-write
//! `Arc` behind a short read/write lock, so readers take a snapshot and never wait for a write.
//! Lock order: `maint`, `writer`, `segments`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::api::{PartitionInfo, RecordIn};
use super::file_log::FsyncPolicy;
use super::record::{frame_len, MAX_FRAME};
use super::recovery::{open_segment, RecoveryReport};
use super::segment::Segment;
use crate::error::{IoContext, Result};
use crate::log::Offset;
use crate::StorageError;

/// A partition of a topic.
pub(crate) struct Partition {
    pub topic: Arc<str>,
    pub id: u32,
    pub dir: PathBuf,
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
    pub segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    /// The append lock; holds the encoding buffer.
    pub writer: Mutex<Vec<u8>>,
    /// Serializes truncate, retention and compaction.
    pub maint: Mutex<()>,
    /// The offset the next record gets.
    pub end: AtomicI64,
    /// Where the cleanable range ended at the last compaction (nothing new to compact below it).
    pub compacted_to: AtomicI64,
    /// Bytes of the cleanable range right after the last compaction.
    pub compacted_bytes: AtomicU64,
    /// A segment file was created since the directory was last synced.
    dir_dirty: AtomicBool,
}

impl Partition {
    /// Creates the directory of a new, empty partition.
    pub fn create(
        topic: Arc<str>,
        id: u32,
        dir: PathBuf,
        segment_bytes: u64,
        fsync: FsyncPolicy,
    ) -> Result<Partition> {
        std::fs::create_dir_all(&dir).at(&dir)?;
        let seg = Segment::create(&dir, 0)?;
        if fsync != FsyncPolicy::Never {
            sync_dir(&dir)?;
        }
        Ok(Partition::new(
            topic,
            id,
            dir,
            segment_bytes,
            fsync,
            vec![Arc::new(seg)],
        ))
    }

    /// Opens an existing partition directory, recovering its last segment.
    pub fn open(
        topic: Arc<str>,
        id: u32,
        dir: PathBuf,
        segment_bytes: u64,
        fsync: FsyncPolicy,
    ) -> Result<(Partition, RecoveryReport)> {
        std::fs::create_dir_all(&dir).at(&dir)?;
        let bases = list_segments(&dir)?;
        let mut report = RecoveryReport {
            topic: topic.to_string(),
            partition: id,
            ..Default::default()
        };
        let mut segs = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            segs.push(Arc::new(open_segment(
                &dir,
                base,
                i + 1 == bases.len(),
                &mut report,
            )?));
        }
        if segs.is_empty() {
            segs.push(Arc::new(Segment::create(&dir, 0)?));
        }
        let p = Partition::new(topic, id, dir, segment_bytes, fsync, segs);
        report.segments = p.segments().len();
        report.end_offset = p.end.load(Ordering::Acquire);
        Ok((p, report))
    }

    fn new(
        topic: Arc<str>,
        id: u32,
        dir: PathBuf,
        segment_bytes: u64,
        fsync: FsyncPolicy,
        segs: Vec<Arc<Segment>>,
    ) -> Self {
        let end = segs.last().map_or(0, |s| s.next_offset());
        Partition {
            topic,
            id,
            dir,
            segment_bytes: segment_bytes.max(1),
            fsync,
            segments: RwLock::new(Arc::new(segs)),
            writer: Mutex::new(Vec::new()),
            maint: Mutex::new(()),
            end: AtomicI64::new(end),
            compacted_to: AtomicI64::new(-1),
            compacted_bytes: AtomicU64::new(0),
            dir_dirty: AtomicBool::new(false),
        }
    }

    /// A snapshot of the segment list (never empty; the last one is active).
    pub fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        self.segments.read().clone()
    }

    /// An error naming this partition.
    pub fn corrupt(&self, offset: Offset) -> StorageError {
        StorageError::Corrupt {
            topic: self.topic.to_string(),
            partition: self.id,
            offset,
        }
    }

    fn invalid(&self, reason: String) -> StorageError {
        StorageError::InvalidRecord {
            topic: self.topic.to_string(),
            partition: self.id,
            reason,
        }
    }

    /// Appends records and returns the first one's offset.
    pub fn append(&self, records: &[RecordIn<'_>]) -> Result<Offset> {
        let mut total = 0u64;
        for r in records {
            if let Some(h) = r.headers.iter().find(|h| h.key.len() > u16::MAX as usize) {
                return Err(self.invalid(format!(
                    "header key of {} bytes is longer than 65535",
                    h.key.len()
                )));
            }
            let len = frame_len(r);
            if len > MAX_FRAME {
                return Err(
                    self.invalid(format!("record of {len} bytes is larger than {MAX_FRAME}"))
                );
            }
            total += len as u64;
        }
        let mut scratch = self.writer.lock();
        let first = self.end.load(Ordering::Acquire);
        if records.is_empty() {
            return Ok(first);
        }
        let mut active = self.active();
        if active.size() > 0 && active.size() + total > self.segment_bytes {
            active = self.roll(&active, first)?;
        }
        active.append(
            records,
            first,
            &mut scratch,
            self.fsync == FsyncPolicy::Always,
        )?;
        self.end
            .store(first + records.len() as i64, Ordering::Release);
        if scratch.capacity() > 8 << 20 {
            *scratch = Vec::new(); // do not keep a huge buffer after one huge batch
        }
        Ok(first)
    }

    fn active(&self) -> Arc<Segment> {
        let segs = self.segments.read();
        segs.last()
            .expect("a partition always has a segment")
            .clone()
    }

    /// Closes `active` and starts a new segment at `base`. Called with the writer lock held.
    fn roll(&self, active: &Segment, base: Offset) -> Result<Arc<Segment>> {
        // Create first: if that fails (a full disk), the old segment is still the active one.
        let seg = Arc::new(Segment::create(&self.dir, base)?);
        if let Err(e) = active.close().and_then(|()| self.dir_created()) {
            let _ = seg.delete_files();
            return Err(e);
        }
        let mut segs = self.segments.write();
        let mut list = Vec::clone(&segs);
        list.push(seg.clone());
        *segs = Arc::new(list);
        Ok(seg)
    }

    /// Notes that a file was created in the directory (synced now with `Always`, else by `sync`).
    pub fn dir_created(&self) -> Result<()> {
        if self.fsync == FsyncPolicy::Always {
            sync_dir(&self.dir)
        } else {
            self.dir_dirty.store(true, Ordering::Release);
            Ok(())
        }
    }

    /// Removes records at or after `offset`.
    pub fn truncate(&self, offset: Offset) -> Result<()> {
        let _maint = self.maint.lock();
        let _writer = self.writer.lock();
        let offset = offset.max(0);
        if offset >= self.end.load(Ordering::Acquire) {
            return Ok(());
        }
        let segs = self.segments();
        let keep = segs.partition_point(|s| s.base <= offset);
        let mut list = segs[..keep].to_vec();
        let mut removed = segs[keep..].to_vec();
        let mut new_active = keep == 0;
        if let Some(s) = list.last().cloned() {
            s.cut(offset)?;
            if keep < segs.len() {
                // A closed segment (maybe compacted, with gaps) never becomes active again.
                s.close()?;
                new_active = true;
                if s.size() == 0 {
                    removed.extend(list.pop());
                }
            }
        }
        // Create the new active segment before deleting the old ones unless it takes the name of
        // one of them, so that a crash in between leaves no compacted segment last.
        let collides = removed.iter().any(|s| s.base == offset);
        let mut created = None;
        if new_active && !collides {
            created = Some(Arc::new(Segment::create(&self.dir, offset)?));
        }
        for s in &removed {
            s.close()?;
            s.delete_files()?;
        }
        if new_active {
            let seg = match created {
                Some(s) => s,
                None => Arc::new(Segment::create(&self.dir, offset)?),
            };
            list.push(seg);
            self.dir_created()?;
        }
        *self.segments.write() = Arc::new(list);
        self.end.store(offset, Ordering::Release);
        self.compacted_to.store(-1, Ordering::Release);
        Ok(())
    }

    /// Start and end offsets and bytes on disk (log files).
    pub fn info(&self) -> PartitionInfo {
        let end_offset = self.end.load(Ordering::Acquire);
        let segs = self.segments();
        PartitionInfo {
            start_offset: segs[0].base.min(end_offset),
            end_offset,
            size_bytes: segs.iter().map(|s| s.size()).sum(),
        }
    }

    /// Flushes every segment written since the last sync, and the directory if files were added.
    pub fn sync(&self) -> Result<()> {
        for s in self.segments().iter() {
            s.sync()?;
        }
        if self.dir_dirty.swap(false, Ordering::AcqRel) {
            if let Err(e) = sync_dir(&self.dir) {
                self.dir_dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Fsyncs a directory so that files created in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Base offsets of the segments in `dir`, sorted. Removes leftovers of an interrupted compaction
/// (`*.cleaned`) and index files without a log.
fn list_segments(dir: &Path) -> Result<Vec<Offset>> {
    let mut logs = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let base = (stem.len() == 20)
            .then(|| stem.parse::<Offset>().ok())
            .flatten();
        match (base, ext) {
            (Some(b), "log") => logs.push(b),
            (Some(b), "index" | "timeindex") => others.push((b, path)),
            (Some(_), e) if e.ends_with(".cleaned") => std::fs::remove_file(&path).at(&path)?,
            _ => {}
        }
    }
    logs.sort_unstable();
    for (b, path) in others {
        if logs.binary_search(&b).is_err() {
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(logs)
}
