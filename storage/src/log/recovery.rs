//! Opening segments after a clean or unclean shutdown.
//!
//! The last segment of a partition is checked from its last offset-index entry that still matches
//! the log: every record after it must parse, pass its CRC and carry the next offset. The first one
//! that does not (a torn write, a flipped bit, garbage) starts the tail that is cut off. Index
//! entries past the good part are dropped and the scanned records are indexed again, so the
//! indexes end up as if the records had just been appended.
//!
//! Closed segments are not cut (a bad record there is reported when read), but their indexes are
//! checked and rebuilt from the log when missing or damaged; the few records after their last index
//! entry are scanned to learn the segment's newest timestamp.

use std::fs::File;
use std::path::Path;

use super::index::{IndexCursor, SegmentIndex};
use super::segment::{index_paths, open_log, scan_file, segment_path, Segment, SegmentState};
use crate::error::{IoContext, Result};
use crate::log::Offset;

/// What opening a partition found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Number of segments.
    pub segments: usize,
    /// The partition's end offset after recovery.
    pub end_offset: Offset,
    /// Bytes cut from the end of the last segment (a torn or corrupt tail); 0 after a clean close.
    pub truncated_bytes: u64,
    /// Base offsets of the segments whose index files were missing or damaged and were rebuilt.
    pub rebuilt_indexes: Vec<Offset>,
}

impl RecoveryReport {
    /// True when nothing had to be repaired.
    pub fn is_clean(&self) -> bool {
        self.truncated_bytes == 0 && self.rebuilt_indexes.is_empty()
    }
}

/// Result of [`replay`].
pub(crate) struct Replay {
    /// End of the last good record.
    pub end_pos: u64,
    /// One past the last good record's offset.
    pub next_offset: Offset,
    /// Index state after the last good record.
    pub cursor: IndexCursor,
    /// True when offset-index entries that did not match the log were dropped.
    pub dropped_entries: bool,
}

/// Checks `idx` against the first `len` bytes of `log` from its last good entry and indexes the
/// records after it, stopping at the first bad record. With `strict`, offsets must be consecutive
/// from `base`; otherwise they must only grow (compacted segments have gaps).
pub(crate) fn replay(
    log: &File,
    path: &Path,
    idx: &mut SegmentIndex,
    base: Offset,
    len: u64,
    strict: bool,
) -> Result<Replay> {
    let before = idx.offsets.len();
    let mut start_ts = i64::MIN;
    while let Some(e) = idx.offsets.last().copied() {
        let mut found = None;
        if e.pos < len {
            scan_file(log, path, e.pos, len, |_, f, _| {
                found = Some((f.offset, f.timestamp));
                false
            })?;
        }
        if let Some((offset, ts)) = found.filter(|(o, _)| *o == e.offset) {
            debug_assert_eq!(offset, e.offset);
            start_ts = ts;
            break;
        }
        idx.offsets.pop();
    }
    let start = idx.offsets.last().copied();
    match start {
        Some(e) => idx.keep_through(e.offset),
        None => idx.times.clear(),
    }
    // The time index must know a maximum at least as large as the record at the last offset
    // point (an emptied or shortened time index does not, and would hide records from lookups
    // by time): then both are rebuilt from the segment start.
    if start.is_some() && idx.times.last().map_or(i64::MIN, |t| t.ts) < start_ts {
        idx.offsets.clear();
        idx.times.clear();
        let r = replay(log, path, idx, base, len, strict)?;
        return Ok(Replay { dropped_entries: true, ..r });
    }
    let dropped_entries = idx.offsets.len() < before;
    let mut cursor = IndexCursor::after(idx);
    let mut prev = start.map(|e| e.offset);
    let mut skip = start.is_some(); // the record of the start entry is indexed already
    let (end_pos, _) = scan_file(log, path, start.map_or(0, |e| e.pos), len, |pos, f, _| {
        if std::mem::take(&mut skip) {
            return true;
        }
        let ok = match prev {
            Some(p) if strict => f.offset == p + 1,
            Some(p) => f.offset > p,
            None => f.offset == base || (!strict && f.offset > base),
        };
        if ok {
            cursor.on_record(f.offset, pos, f.timestamp, idx);
            prev = Some(f.offset);
        }
        ok
    })?;
    let next_offset = prev.map_or(base, |p| p + 1);
    Ok(Replay {
        end_pos,
        next_offset,
        cursor,
        dropped_entries,
    })
}

/// Opens the segment at `base` in `dir`; `last` marks the partition's active segment, whose bad
/// tail is cut off. Updates `report`.
pub(crate) fn open_segment(
    dir: &Path,
    base: Offset,
    last: bool,
    report: &mut RecoveryReport,
) -> Result<Segment> {
    let log_path = segment_path(dir, base, "log");
    let log = open_log(&log_path, false)?;
    let len = log.metadata().at(&log_path)?.len();
    let paths = index_paths(dir, base);
    let loaded = SegmentIndex::load(&paths, base, len)?;
    let mut rebuilt = loaded.is_none();
    let mut idx = loaded.unwrap_or_default();
    if last {
        let mut r = replay(&log, &log_path, &mut idx, base, len, true)?;
        rebuilt |= r.dropped_entries;
        if !times_match_offsets(&idx, r.next_offset - 1) {
            idx = SegmentIndex::default();
            r = replay(&log, &log_path, &mut idx, base, len, true)?;
            rebuilt = true;
        }
        if r.end_pos < len {
            log.set_len(r.end_pos).at(&log_path)?;
            log.sync_all().at(&log_path)?;
            report.truncated_bytes += len - r.end_pos;
        }
        idx.write_all(&paths)?;
        if rebuilt {
            report.rebuilt_indexes.push(base);
        }
        let state = SegmentState {
            size: r.end_pos,
            next_offset: r.next_offset,
            max_ts: r.cursor.max_ts,
        };
        return Segment::from_parts(dir, base, log, idx, state, Some(r.cursor));
    }
    let mut probe = idx.clone();
    let mut r = replay(&log, &log_path, &mut probe, base, len, false)?;
    if r.dropped_entries || !times_match_offsets(&idx, r.next_offset - 1) {
        rebuilt = true;
    }
    let mut max_ts = r
        .cursor
        .max_ts
        .max(idx.times.last().map_or(i64::MIN, |t| t.ts));
    if rebuilt {
        idx = SegmentIndex::default();
        r = replay(&log, &log_path, &mut idx, base, len, false)?;
        max_ts = r.cursor.max_ts;
        idx.close(max_ts, r.next_offset - 1);
        idx.write_all(&paths)?;
        report.rebuilt_indexes.push(base);
    }
    let state = SegmentState {
        size: len,
        next_offset: r.next_offset,
        max_ts,
    };
    Segment::from_parts(dir, base, log, idx, state, None)
}

/// A time-index entry is written only at an offset-index point or for the last record (when a
/// segment is closed): entries elsewhere mean the file holds something else (garbage, a stale
/// copy), and lookups by time would go wrong, so the indexes are rebuilt.
fn times_match_offsets(idx: &SegmentIndex, last_offset: Offset) -> bool {
    idx.times.iter().all(|t| {
        t.offset == last_offset || idx.offsets.binary_search_by_key(&t.offset, |e| e.offset).is_ok()
    })
}
