//! One segment of a partition: a `.log` file of record frames (see `record.rs`) starting at
//! `base_offset`, and its two indexes (see `index.rs`).
//!
//! Files: `<partition dir>/<base_offset:020>.log|.index|.timeindex`.
//!
//! Only the last segment of a partition (the active one) takes appends; the others are closed and
//! never change in place (compaction replaces them whole). `size` is the number of bytes readers may
//! look at: it is published (release) only after the bytes are written, so readers never see a
//! partly written record.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::api::RecordIn;
use super::index::{IndexCursor, IndexFiles, IndexPaths, SegmentIndex};
use super::record::{self, Frame, Parsed};
use crate::error::{IoContext, Result};
use crate::log::Offset;

/// Bytes read at a time by sequential scans.
const SCAN_CHUNK: usize = 64 << 10;

/// Path of a segment file: `dir/<base:020>.<ext>`.
pub(crate) fn segment_path(dir: &Path, base: Offset, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// Paths of a segment's index files.
pub(crate) fn index_paths(dir: &Path, base: Offset) -> IndexPaths {
    IndexPaths {
        index: segment_path(dir, base, "index"),
        time: segment_path(dir, base, "timeindex"),
    }
}

/// Opens a segment log for reading and writing.
pub(crate) fn open_log(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)
        .at(path)
}

/// State only the active segment has.
struct Active {
    files: IndexFiles,
    cursor: IndexCursor,
    scratch: Vec<u8>,
}

/// A segment: its log file, indexes and counters.
pub(crate) struct Segment {
    /// Offset of the first record this segment may hold (the file name).
    pub base: Offset,
    dir: PathBuf,
    log: File,
    log_path: PathBuf,
    index: RwLock<SegmentIndex>,
    active: Mutex<Option<Active>>,
    size: AtomicU64,
    next_offset: AtomicI64,
    max_ts: AtomicI64,
    dirty: AtomicBool,
}

/// What a segment's counters are after a scan.
pub(crate) struct SegmentState {
    pub size: u64,
    pub next_offset: Offset,
    pub max_ts: i64,
}

impl Segment {
    /// Creates an empty active segment at `base`, replacing files of that name.
    pub fn create(dir: &Path, base: Offset) -> Result<Segment> {
        let log_path = segment_path(dir, base, "log");
        let log = open_log(&log_path, true)?;
        let idx = SegmentIndex::default();
        idx.write_all(&index_paths(dir, base))?;
        let state = SegmentState {
            size: 0,
            next_offset: base,
            max_ts: i64::MIN,
        };
        Segment::from_parts(
            dir,
            base,
            log,
            idx,
            state,
            Some(IndexCursor::after(&SegmentIndex::default())),
        )
    }

    /// Wraps files already checked by recovery. `cursor` is `Some` for the active segment.
    pub fn from_parts(
        dir: &Path,
        base: Offset,
        log: File,
        index: SegmentIndex,
        state: SegmentState,
        cursor: Option<IndexCursor>,
    ) -> Result<Segment> {
        let active = match cursor {
            Some(cursor) => {
                let files = IndexFiles::open(&index_paths(dir, base))?;
                Some(Active {
                    files,
                    cursor,
                    scratch: Vec::new(),
                })
            }
            None => None,
        };
        Ok(Segment {
            base,
            dir: dir.to_path_buf(),
            log,
            log_path: segment_path(dir, base, "log"),
            index: RwLock::new(index),
            active: Mutex::new(active),
            size: AtomicU64::new(state.size),
            next_offset: AtomicI64::new(state.next_offset),
            max_ts: AtomicI64::new(state.max_ts),
            dirty: AtomicBool::new(false),
        })
    }

    /// Bytes of complete records.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// One past the last record's offset (`base` when empty).
    pub fn next_offset(&self) -> Offset {
        self.next_offset.load(Ordering::Acquire)
    }

    /// The largest timestamp in the segment (`i64::MIN` when empty).
    pub fn max_ts(&self) -> i64 {
        self.max_ts.load(Ordering::Acquire)
    }

    /// The log file's path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The offset-index entry at or before `offset`: (its offset, its position).
    pub fn floor(&self, offset: Offset) -> (Offset, u64) {
        self.index
            .read()
            .floor(offset)
            .map_or((self.base, 0), |e| (e.offset, e.pos))
    }

    /// The offset from which to scan for a timestamp at or after `ts` (see `SegmentIndex::time_floor`).
    pub fn time_floor(&self, ts: i64) -> Offset {
        self.index.read().time_floor(ts).unwrap_or(self.base)
    }

    /// Appends `records` (numbered from `first`) with one write. `scratch` is reused between calls.
    /// On error nothing is visible and the files are cut back. Panics if the segment is closed.
    pub fn append(
        &self,
        records: &[RecordIn<'_>],
        first: Offset,
        scratch: &mut Vec<u8>,
        fsync: bool,
    ) -> Result<()> {
        let mut guard = self.active.lock();
        let Some(a) = guard.as_mut() else {
            panic!("append to closed segment {}", self.log_path.display())
        };
        let pos0 = self.size.load(Ordering::Relaxed);
        let mut cursor = a.cursor;
        let mut new = SegmentIndex::default();
        scratch.clear();
        for (i, r) in records.iter().enumerate() {
            let offset = first + i as i64;
            cursor.on_record(offset, pos0 + scratch.len() as u64, r.timestamp, &mut new);
            record::encode(r, offset, scratch);
        }
        let written = self
            .log
            .write_all_at(scratch, pos0)
            .at(&self.log_path)
            .and_then(|()| {
                if fsync {
                    self.log.sync_data().at(&self.log_path)?;
                }
                a.files
                    .append(self.index.read().counts(), &new, &mut a.scratch)
            });
        if let Err(e) = written {
            // Cut what may have reached the files so that recovery cannot pick it up later.
            let _ = self.log.set_len(pos0);
            let _ = a.files.reset_to(self.index.read().counts());
            return Err(e);
        }
        if !new.offsets.is_empty() || !new.times.is_empty() {
            let mut idx = self.index.write();
            idx.offsets.extend_from_slice(&new.offsets);
            idx.times.extend_from_slice(&new.times);
        }
        a.cursor = cursor;
        self.max_ts.store(cursor.max_ts, Ordering::Release);
        self.next_offset
            .store(first + records.len() as i64, Ordering::Release);
        self.dirty.store(true, Ordering::Release);
        self.size
            .store(pos0 + scratch.len() as u64, Ordering::Release);
        Ok(())
    }

    /// Closes the active segment: adds the closing time entry and releases the index files.
    /// On error the segment stays active.
    pub fn close(&self) -> Result<()> {
        let mut active = self.active.lock();
        let Some(a) = active.as_ref() else {
            return Ok(());
        };
        let mut idx = self.index.write();
        let at = idx.counts();
        if let Some(e) = idx.close(self.max_ts(), self.next_offset() - 1) {
            let new = SegmentIndex {
                offsets: Vec::new(),
                times: vec![e],
            };
            let written = a.files.append(at, &new, &mut Vec::new());
            let synced = written.and_then(|()| {
                if self.dirty.load(Ordering::Acquire) {
                    a.files.sync()
                } else {
                    Ok(())
                }
            });
            if let Err(e) = synced {
                idx.times.pop();
                let _ = a.files.reset_to(at);
                return Err(e);
            }
        }
        *active = None;
        Ok(())
    }

    /// Reads up to `len` bytes at `pos`, appending them to `out`; returns how many were read
    /// (fewer at the end of the file).
    pub fn read_into(&self, pos: u64, len: usize, out: &mut Vec<u8>) -> Result<usize> {
        read_into(&self.log, &self.log_path, pos, len, out)
    }

    /// Scans frames in `[pos, end)`, see [`scan_file`].
    pub fn scan(
        &self,
        pos: u64,
        end: u64,
        f: impl FnMut(u64, &Frame, &[u8]) -> bool,
    ) -> Result<(u64, ScanEnd)> {
        scan_file(&self.log, &self.log_path, pos, end, f)
    }

    /// Removes the records at or after `offset` from this segment (cuts the file and the indexes).
    pub fn cut(&self, offset: Offset) -> Result<()> {
        let size = self.size();
        let (_, from) = self.floor(offset);
        let (pos, _) = self.scan(from, size, |_, f, _| f.offset < offset)?;
        self.size.store(pos, Ordering::Release);
        self.log.set_len(pos).at(&self.log_path)?;
        // Lock order everywhere: `active`, then `index`.
        let mut active = self.active.lock();
        let mut idx = self.index.write();
        let mut new = idx.clone();
        new.keep_through(offset - 1);
        let r =
            super::recovery::replay(&self.log, &self.log_path, &mut new, self.base, pos, false)?;
        if active.is_none() {
            new.close(r.cursor.max_ts, r.next_offset - 1);
        }
        new.write_all(&index_paths(&self.dir, self.base))?;
        *idx = new;
        if let Some(a) = active.as_mut() {
            a.cursor = r.cursor;
        }
        self.next_offset.store(r.next_offset, Ordering::Release);
        self.max_ts.store(r.cursor.max_ts, Ordering::Release);
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Flushes the log (and the indexes of the active segment) if written since the last sync.
    pub fn sync(&self) -> Result<()> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            // The fsyncs run without the append lock: appends go on meanwhile (a checkpoint
            // syncs while the queries write).
            let index = self
                .active
                .lock()
                .as_ref()
                .map(|a| a.files.try_clone())
                .transpose();
            let synced = index.and_then(|index| {
                self.log.sync_data().at(&self.log_path)?;
                index.map_or(Ok(()), |f| f.sync())
            });
            if synced.is_err() {
                self.dirty.store(true, Ordering::Release);
            }
            synced?;
        }
        Ok(())
    }

    /// Deletes the segment's files (open handles keep working for readers that hold them).
    pub fn delete_files(&self) -> Result<()> {
        let paths = index_paths(&self.dir, self.base);
        for p in [&self.log_path, &paths.index, &paths.time] {
            remove_if_exists(p)?;
        }
        Ok(())
    }
}

/// Removes a file; a file that is not there is fine.
pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(crate::StorageError::io(path, e)),
        _ => Ok(()),
    }
}

/// Reads up to `len` bytes of `file` at `pos` onto the end of `out`; returns the count.
pub(crate) fn read_into(
    file: &File,
    path: &Path,
    pos: u64,
    len: usize,
    out: &mut Vec<u8>,
) -> Result<usize> {
    let start = out.len();
    out.resize(start + len, 0);
    let mut done = 0;
    while done < len {
        match file.read_at(&mut out[start + done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.truncate(start);
                return Err(crate::StorageError::io(path, e));
            }
        }
    }
    out.truncate(start + done);
    Ok(done)
}

/// Why a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// Reached `end`.
    End,
    /// The callback returned false for the frame at the returned position.
    Stopped,
    /// A frame runs past `end` or the file ends early.
    Torn,
    /// A frame fails its checks.
    Corrupt,
}

/// Calls `f(position, frame, chunk)` for each frame in `[pos, end)` of `file` (frame ranges index
/// into `chunk`) until it returns false. Returns where the scan stopped and why.
pub(crate) fn scan_file(
    file: &File,
    path: &Path,
    mut pos: u64,
    end: u64,
    mut f: impl FnMut(u64, &Frame, &[u8]) -> bool,
) -> Result<(u64, ScanEnd)> {
    let mut buf = Vec::new();
    let mut want = SCAN_CHUNK;
    while pos < end {
        let len = (end - pos).min(want as u64) as usize;
        buf.clear();
        let n = read_into(file, path, pos, len, &mut buf)?;
        let mut at = 0;
        loop {
            match record::parse(&buf, at) {
                Parsed::Frame(fr) => {
                    if !f(pos + at as u64, &fr, &buf) {
                        return Ok((pos + at as u64, ScanEnd::Stopped));
                    }
                    at += fr.len;
                }
                Parsed::Incomplete { need } => {
                    let short = n < len || pos + at as u64 + need as u64 > end;
                    if at == 0 && short {
                        return Ok((pos, ScanEnd::Torn));
                    }
                    want = SCAN_CHUNK.max(need);
                    break;
                }
                Parsed::Corrupt => return Ok((pos + at as u64, ScanEnd::Corrupt)),
            }
            if at == buf.len() {
                break;
            }
        }
        pos += at as u64;
    }
    Ok((pos, ScanEnd::End))
}
