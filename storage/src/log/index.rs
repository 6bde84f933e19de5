//! The sparse offset index and the time index of one segment, kept in memory and mirrored in files.
//!
//! On disk, little-endian, fixed 16-byte entries:
//! - `<base:020>.index`: `i64 offset, u64 position` of a record, an entry about every
//!   [`INDEX_INTERVAL`] bytes of log (the first record of a segment always has one).
//! - `<base:020>.timeindex`: `i64 max_timestamp, i64 offset`: at an offset-index point where the
//!   largest timestamp seen in the segment grew, the new maximum and that record's offset; a last
//!   entry is added when the segment is closed. So at every offset-index point, the largest
//!   timestamp up to it equals the last time entry at or before it, which lets recovery resume
//!   from the last good index entry.
//!
//! Both files are hints: recovery checks them against the log and rebuilds them when they are
//! missing or damaged.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::log::Offset;

/// Bytes of log between offset-index entries.
pub(crate) const INDEX_INTERVAL: u64 = 4096;
const ENTRY: usize = 16;

/// An offset-index entry: where the record with `offset` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub offset: Offset,
    pub pos: u64,
}

/// A time-index entry: no record at or before `offset` in the segment has a timestamp above `ts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub ts: i64,
    pub offset: Offset,
}

/// Both indexes of a segment.
#[derive(Debug, Clone, Default)]
pub(crate) struct SegmentIndex {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
}

impl SegmentIndex {
    /// The last entry at or before `offset`, or `None` when there is none (start at position 0).
    pub fn floor(&self, offset: Offset) -> Option<OffsetEntry> {
        let i = self.offsets.partition_point(|e| e.offset <= offset);
        i.checked_sub(1).map(|i| self.offsets[i])
    }

    /// The offset from which to scan for the first timestamp at or after `ts`: the one after the
    /// last time entry whose maximum is below `ts`; `None` to scan from the segment start.
    pub fn time_floor(&self, ts: i64) -> Option<Offset> {
        let i = self.times.partition_point(|e| e.ts < ts);
        i.checked_sub(1).map(|i| self.times[i].offset + 1)
    }

    /// Numbers of offset and time entries.
    pub fn counts(&self) -> (usize, usize) {
        (self.offsets.len(), self.times.len())
    }

    /// Drops entries past `offset` (offset entries after it, time entries after it).
    pub fn keep_through(&mut self, offset: Offset) {
        self.offsets.retain(|e| e.offset <= offset);
        self.times.retain(|e| e.offset <= offset);
    }

    /// Adds the closing time entry of a segment whose records end at `last_offset`.
    pub fn close(&mut self, max_ts: i64, last_offset: Offset) -> Option<TimeEntry> {
        let grew = self.times.last().is_none_or(|t| max_ts > t.ts);
        if !grew || max_ts == i64::MIN || last_offset < 0 {
            return None;
        }
        let e = TimeEntry {
            ts: max_ts,
            offset: last_offset,
        };
        self.times.push(e);
        Some(e)
    }

    /// Loads both files; `Ok(None)` when one is missing or fails the checks against the segment
    /// (`base` offset, `log_len` bytes).
    pub fn load(paths: &IndexPaths, base: Offset, log_len: u64) -> Result<Option<SegmentIndex>> {
        let (Some(ib), Some(tb)) = (read_opt(&paths.index)?, read_opt(&paths.time)?) else {
            return Ok(None);
        };
        if ib.len() % ENTRY != 0 || tb.len() % ENTRY != 0 {
            return Ok(None);
        }
        let offsets: Vec<_> = ib
            .chunks_exact(ENTRY)
            .map(|c| OffsetEntry {
                offset: i64_le(&c[..8]),
                pos: i64_le(&c[8..]) as u64,
            })
            .collect();
        let times: Vec<_> = tb
            .chunks_exact(ENTRY)
            .map(|c| TimeEntry {
                ts: i64_le(&c[..8]),
                offset: i64_le(&c[8..]),
            })
            .collect();
        let offsets_ok = offsets
            .first()
            .is_none_or(|e| e.offset >= base && e.pos == 0)
            && offsets
                .windows(2)
                .all(|w| w[0].offset < w[1].offset && w[0].pos < w[1].pos);
        let times_ok = times.first().is_none_or(|e| e.offset >= base)
            && times
                .windows(2)
                .all(|w| w[0].ts < w[1].ts && w[0].offset <= w[1].offset);
        // Entries past the end of the log are dropped by recovery, which checks them against it.
        let consistent = !(offsets.is_empty() && log_len > 0);
        Ok((offsets_ok && times_ok && consistent).then_some(SegmentIndex { offsets, times }))
    }

    /// Writes both files from scratch.
    pub fn write_all(&self, paths: &IndexPaths) -> Result<()> {
        let mut ib = Vec::with_capacity(self.offsets.len() * ENTRY);
        put_offsets(&self.offsets, &mut ib);
        std::fs::write(&paths.index, ib).at(&paths.index)?;
        let mut tb = Vec::with_capacity(self.times.len() * ENTRY);
        put_times(&self.times, &mut tb);
        std::fs::write(&paths.time, tb).at(&paths.time)
    }
}

/// Decides where index entries go while records are appended or replayed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexCursor {
    /// Position of the last offset-index entry.
    last_pos: Option<u64>,
    /// Largest timestamp so far in the segment.
    pub max_ts: i64,
    /// Timestamp of the last time-index entry.
    last_time_ts: i64,
}

impl IndexCursor {
    /// A cursor that continues after the last entries of `idx`, whose last offset-index point
    /// had `max_ts` as the largest timestamp so far.
    pub fn after(idx: &SegmentIndex) -> IndexCursor {
        let ts = idx.times.last().map_or(i64::MIN, |t| t.ts);
        IndexCursor {
            last_pos: idx.offsets.last().map(|e| e.pos),
            max_ts: ts,
            last_time_ts: ts,
        }
    }

    /// Accounts for a record at `pos`, pushing the entries it gets onto `idx`.
    pub fn on_record(&mut self, offset: Offset, pos: u64, ts: i64, idx: &mut SegmentIndex) {
        self.max_ts = self.max_ts.max(ts);
        if self.last_pos.is_some_and(|p| pos < p + INDEX_INTERVAL) {
            return;
        }
        self.last_pos = Some(pos);
        idx.offsets.push(OffsetEntry { offset, pos });
        if self.max_ts > self.last_time_ts {
            self.last_time_ts = self.max_ts;
            idx.times.push(TimeEntry {
                ts: self.max_ts,
                offset,
            });
        }
    }
}

/// Paths of a segment's two index files.
#[derive(Debug, Clone)]
pub(crate) struct IndexPaths {
    pub index: PathBuf,
    pub time: PathBuf,
}

/// The open index files of the active segment, for appending entries.
#[derive(Debug)]
pub(crate) struct IndexFiles {
    index: File,
    time: File,
    paths: IndexPaths,
}

impl IndexFiles {
    /// Opens (creating if needed) both files for writing.
    pub fn open(paths: &IndexPaths) -> Result<IndexFiles> {
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .at(p)
        };
        Ok(IndexFiles {
            index: open(&paths.index)?,
            time: open(&paths.time)?,
            paths: paths.clone(),
        })
    }

    /// Writes the entries of `new` after the first `at.0` offset entries and `at.1` time entries.
    pub fn append(
        &self,
        at: (usize, usize),
        new: &SegmentIndex,
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        if !new.offsets.is_empty() {
            scratch.clear();
            put_offsets(&new.offsets, scratch);
            self.index
                .write_all_at(scratch, (at.0 * ENTRY) as u64)
                .at(&self.paths.index)?;
        }
        if !new.times.is_empty() {
            scratch.clear();
            put_times(&new.times, scratch);
            self.time
                .write_all_at(scratch, (at.1 * ENTRY) as u64)
                .at(&self.paths.time)?;
        }
        Ok(())
    }

    /// Cuts both files to `at.0` offset entries and `at.1` time entries (after a failed write).
    pub fn reset_to(&self, at: (usize, usize)) -> Result<()> {
        self.index
            .set_len((at.0 * ENTRY) as u64)
            .at(&self.paths.index)?;
        self.time
            .set_len((at.1 * ENTRY) as u64)
            .at(&self.paths.time)
    }

    /// Second handles on both files, to sync them without holding what guards appends.
    pub fn try_clone(&self) -> Result<IndexFiles> {
        Ok(IndexFiles {
            index: self.index.try_clone().at(&self.paths.index)?,
            time: self.time.try_clone().at(&self.paths.time)?,
            paths: self.paths.clone(),
        })
    }

    /// Flushes both files to disk.
    pub fn sync(&self) -> Result<()> {
        self.index.sync_data().at(&self.paths.index)?;
        self.time.sync_data().at(&self.paths.time)
    }
}

fn put_offsets(es: &[OffsetEntry], out: &mut Vec<u8>) {
    for e in es {
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.pos.to_le_bytes());
    }
}

fn put_times(es: &[TimeEntry], out: &mut Vec<u8>) {
    for e in es {
        out.extend_from_slice(&e.ts.to_le_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
    }
}

fn i64_le(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

/// The file's bytes, or `None` when it does not exist.
fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut b = Vec::new();
            f.read_to_end(&mut b).at(path)?;
            Ok(Some(b))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::StorageError::io(path, e)),
    }
}
