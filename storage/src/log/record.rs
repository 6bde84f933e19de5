//! The record frame: how one record is laid out in a segment's `.log` file, and its parser.
//!
//! On disk, little-endian, frames back to back:
//! ```text
//! u32 len        length of everything after this field
//! u32 crc        CRC32 (crc32fast) of everything after this field
//! i64 offset
//! i64 timestamp
//! i32 key_len    -1 = null key
//! [u8] key
//! i32 value_len  -1 = null value
//! [u8] value
//! u32 headers_len
//! [u8] headers   as written by `encode_headers`, stored as is
//! ```
//! The parser never panics: short input is `Incomplete`, anything malformed is `Corrupt`.

use super::api::{encode_headers, RecordIn};
use crate::log::Offset;

/// Bytes of a frame before its key: len, crc, offset, timestamp, key_len.
const PREFIX: usize = 4 + 4 + 8 + 8 + 4;
/// Fixed bytes of a frame: the prefix plus value_len and headers_len.
pub(crate) const FRAME_OVERHEAD: usize = PREFIX + 4 + 4;
/// The largest frame accepted (length field included); larger ones are refused on append and
/// treated as corruption on read.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// Encoded size of a record's headers.
pub(crate) fn headers_len(r: &RecordIn<'_>) -> usize {
    r.headers
        .iter()
        .map(|h| 2 + h.key.len() + 4 + h.value.as_ref().map_or(0, Vec::len))
        .sum()
}

/// Encoded size of a whole frame.
pub(crate) fn frame_len(r: &RecordIn<'_>) -> usize {
    FRAME_OVERHEAD + r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len) + headers_len(r)
}

/// Appends one frame to `out`. The caller has checked sizes with [`frame_len`] and [`MAX_FRAME`].
pub(crate) fn encode(r: &RecordIn<'_>, offset: Offset, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]); // len and crc, patched below
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&r.timestamp.to_le_bytes());
    put_opt(r.key, out);
    put_opt(r.value, out);
    let hstart = out.len();
    out.extend_from_slice(&[0u8; 4]);
    encode_headers(r.headers, out);
    let hlen = (out.len() - hstart - 4) as u32;
    out[hstart..hstart + 4].copy_from_slice(&hlen.to_le_bytes());
    let len = (out.len() - start - 4) as u32;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_opt(b: Option<&[u8]>, out: &mut Vec<u8>) {
    match b {
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_le_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
    }
}

/// A parsed frame; ranges are absolute positions in the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Where the frame starts in the parsed buffer.
    pub start: usize,
    /// Total bytes of the frame, length field included.
    pub len: usize,
    pub offset: Offset,
    pub timestamp: i64,
    /// (start, len) of the key; `None` for null.
    pub key: Option<(usize, usize)>,
    /// (start, len) of the value; `None` for null.
    pub value: Option<(usize, usize)>,
    /// (start, len) of the encoded headers.
    pub headers: (usize, usize),
}

/// Outcome of parsing at one position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole, valid frame.
    Frame(Frame),
    /// The buffer ends inside the frame; `need` is the frame's full length when known (else the
    /// bytes of its length field).
    Incomplete { need: usize },
    /// Bad length, bad checksum or bad inner structure.
    Corrupt,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at) as i32
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

/// Parses the frame starting at `buf[at..]`, checking its CRC and structure.
pub(crate) fn parse(buf: &[u8], at: usize) -> Parsed {
    let avail = buf.len().saturating_sub(at);
    if avail < 4 {
        return Parsed::Incomplete { need: 4 };
    }
    let len = u32_at(buf, at) as usize + 4;
    if !(FRAME_OVERHEAD..=MAX_FRAME).contains(&len) {
        return Parsed::Corrupt;
    }
    if avail < len {
        return Parsed::Incomplete { need: len };
    }
    let end = at + len;
    if crc32fast::hash(&buf[at + 8..end]) != u32_at(buf, at + 4) {
        return Parsed::Corrupt;
    }
    let offset = i64_at(buf, at + 8);
    let timestamp = i64_at(buf, at + 16);
    let mut p = at + PREFIX - 4;
    let Some(key) = opt_field(buf, &mut p, end) else {
        return Parsed::Corrupt;
    };
    let Some(value) = opt_field(buf, &mut p, end) else {
        return Parsed::Corrupt;
    };
    if p + 4 > end {
        return Parsed::Corrupt;
    }
    let hlen = u32_at(buf, p) as usize;
    p += 4;
    if p + hlen != end || !headers_valid(&buf[p..end]) {
        return Parsed::Corrupt;
    }
    Parsed::Frame(Frame {
        start: at,
        len,
        offset,
        timestamp,
        key,
        value,
        headers: (p, hlen),
    })
}

/// Reads an `i32 len + bytes` field at `*p`, advancing it; `None` when it does not fit.
fn opt_field(buf: &[u8], p: &mut usize, end: usize) -> Option<Option<(usize, usize)>> {
    if *p + 4 > end {
        return None;
    }
    let n = i32_at(buf, *p);
    *p += 4;
    if n == -1 {
        return Some(None);
    }
    let n = usize::try_from(n).ok()?;
    if *p + n > end {
        return None;
    }
    let field = (*p, n);
    *p += n;
    Some(Some(field))
}

/// Checks that `b` walks cleanly as encoded headers, so that `RecordRef::headers` cannot panic.
fn headers_valid(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        if i + 2 > b.len() {
            return false;
        }
        i += 2 + u16::from_le_bytes([b[i], b[i + 1]]) as usize;
        if i + 4 > b.len() {
            return false;
        }
        let vl = i32_at(b, i);
        i += 4;
        if vl < -1 {
            return false;
        }
        if vl > 0 {
            i += vl as usize;
        }
        if i > b.len() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Header;

    #[test]
    fn round_trip_and_every_cut_is_incomplete() {
        let headers = vec![
            Header {
                key: "h1".into(),
                value: Some(b"v".to_vec()),
            },
            Header {
                key: "h2".into(),
                value: None,
            },
        ];
        let r = RecordIn {
            timestamp: 42,
            key: Some(b"key"),
            value: None,
            headers: &headers,
        };
        let mut buf = Vec::new();
        encode(&r, 7, &mut buf);
        assert_eq!(buf.len(), frame_len(&r));
        let Parsed::Frame(f) = parse(&buf, 0) else {
            panic!("no frame")
        };
        assert_eq!((f.offset, f.timestamp, f.len), (7, 42, buf.len()));
        assert_eq!(&buf[f.key.unwrap().0..][..3], b"key");
        assert_eq!(f.value, None);
        for cut in 0..buf.len() {
            assert!(
                matches!(parse(&buf[..cut], 0), Parsed::Incomplete { .. }),
                "cut {cut}"
            );
        }
        for i in 4..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert_eq!(parse(&bad, 0), Parsed::Corrupt, "flip {i}");
        }
    }
}
