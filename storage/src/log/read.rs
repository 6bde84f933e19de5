//! Reading a partition: positioned reads of whole chunks into a [`ReadBatch`]'s buffer, frames
//! parsed in place (no per-record allocation), and the time lookup.
//!
//! A read takes a snapshot of the segment list and each segment's published size, so it sees only
//! complete records and never blocks appends. Every frame's CRC is checked; a bad frame ends the
//! read (the records before it are returned) and a read starting at it fails with `Corrupt`.

use std::sync::atomic::Ordering;

use super::api::{ReadBatch, RecordSpan};
use super::index::INDEX_INTERVAL;
use super::partition::Partition;
use super::record::{self, Parsed};
use super::segment::{ScanEnd, Segment};
use crate::error::Result;
use crate::log::Offset;

/// Upper bound on `max_bytes`, so that buffer positions fit the `u32` spans of [`RecordSpan`].
const MAX_READ: usize = 1 << 30;
/// Smallest chunk read at once.
const MIN_CHUNK: usize = 4096;

/// Where a read stands while it walks segments.
struct ReadState {
    /// Records below this offset are skipped.
    from: Offset,
    /// Budget of frame bytes.
    budget: usize,
    /// Frame bytes taken so far.
    used: usize,
    /// Offset of the frame expected next (reported when it is corrupt).
    expect: Offset,
}

impl Partition {
    /// Reads records from `from`, about `max_bytes` of frames (at least one record when one exists).
    pub fn read(&self, from: Offset, max_bytes: usize) -> Result<ReadBatch> {
        let end = self.end.load(Ordering::Acquire);
        let segs = self.segments();
        let from = from.max(segs[0].base);
        let mut batch = ReadBatch {
            next_offset: from.min(end),
            ..Default::default()
        };
        if from >= end {
            return Ok(batch);
        }
        let budget = max_bytes.clamp(1, MAX_READ);
        let mut st = ReadState {
            from,
            budget,
            used: 0,
            expect: from,
        };
        let mut i = segs.partition_point(|s| s.base <= from).saturating_sub(1);
        loop {
            if self.read_segment(&segs[i], &mut st, &mut batch)? {
                break;
            }
            i += 1;
            let Some(next) = segs.get(i) else { break };
            // Records up to the next segment's base are all seen (compaction leaves gaps).
            st.from = st.from.max(next.base);
            st.expect = st.from;
            batch.next_offset = batch.next_offset.max(next.base);
        }
        Ok(batch)
    }

    /// Reads from one segment; returns true when the read is complete (budget used or a bad frame).
    fn read_segment(
        &self,
        seg: &Segment,
        st: &mut ReadState,
        batch: &mut ReadBatch,
    ) -> Result<bool> {
        let size = seg.size();
        let (floor, mut pos) = seg.floor(st.from);
        st.expect = st.expect.min(floor);
        let mut slack = INDEX_INTERVAL as usize; // the records before `from` after the index entry
        let mut need = 0;
        while pos < size && st.used < st.budget {
            let want = (st.budget - st.used + slack).max(need).max(MIN_CHUNK);
            let want = want.min((size - pos) as usize);
            let chunk = batch.buf.len();
            let n = seg.read_into(pos, want, &mut batch.buf)?;
            if n == 0 {
                break; // cut by a concurrent truncate
            }
            let mut at = chunk;
            let mut keep = chunk;
            let mut stop = None;
            while at < batch.buf.len() {
                match record::parse(&batch.buf, at) {
                    Parsed::Frame(f) => {
                        st.expect = f.offset + 1;
                        if f.offset >= st.from {
                            if st.used > 0 && st.used + f.len > st.budget {
                                batch.next_offset = f.offset;
                                stop = Some(true);
                                break;
                            }
                            let span = |r: (usize, usize)| (r.0 as u32, r.1 as u32);
                            batch.entries.push(RecordSpan {
                                offset: f.offset,
                                timestamp: f.timestamp,
                                key: f.key.map(span),
                                value: f.value.map(span),
                                headers: span(f.headers),
                            });
                            st.used += f.len;
                            batch.next_offset = f.offset + 1;
                            keep = at + f.len;
                        }
                        at += f.len;
                    }
                    Parsed::Incomplete { need: full } => {
                        let torn = at == chunk && (n < want || pos + full as u64 > size);
                        if torn {
                            stop = Some(false);
                        }
                        need = full;
                        break;
                    }
                    Parsed::Corrupt => {
                        stop = Some(false);
                        break;
                    }
                }
            }
            batch.buf.truncate(keep);
            match stop {
                Some(true) => return Ok(true),
                Some(false) if batch.entries.is_empty() => return Err(self.corrupt(st.expect)),
                Some(false) => return Ok(true), // the next read, starting at the bad frame, fails
                None => {}
            }
            pos += (at - chunk) as u64;
            slack = 0;
        }
        Ok(st.used >= st.budget)
    }

    /// The first offset whose record's timestamp is at or after `ts`.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<Offset>> {
        for seg in self.segments().iter() {
            if seg.max_ts() < ts {
                continue;
            }
            let from = seg.time_floor(ts);
            let (floor, pos) = seg.floor(from);
            let mut found = None;
            let mut expect = floor;
            let (_, how) = seg.scan(pos, seg.size(), |_, f, _| {
                expect = f.offset + 1;
                if f.offset >= from && f.timestamp >= ts {
                    found = Some(f.offset);
                }
                found.is_none()
            })?;
            if found.is_some() {
                return Ok(found);
            }
            if matches!(how, ScanEnd::Corrupt | ScanEnd::Torn) {
                return Err(self.corrupt(expect));
            }
        }
        Ok(None)
    }
}
