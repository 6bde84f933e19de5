//! Time windows: which windows a timestamp falls in, and how window starts are keyed.

/// The starts of the windows of `size` starting every `advance` that contain `ts`, oldest first
/// (Kafka Streams' rule: no window starts before 0).
pub fn windows_for(ts: i64, size: i64, advance: i64, out: &mut Vec<i64>) {
    out.clear();
    let first = ((ts - size + advance).max(0) / advance) * advance;
    let mut start = first;
    while start <= ts {
        if start + size > ts {
            out.push(start);
        }
        start += advance;
    }
}

/// A window start as 8 key bytes that sort like the numbers.
pub fn encode_start(start: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
}

/// Appends the state key suffix of `group` in the window (or pane) at `start`: the encoded
/// start, then the group row.
pub fn encode_window_key(start: i64, group: &[u8], out: &mut Vec<u8>) {
    encode_start(start, out);
    out.extend_from_slice(group);
}

/// Reads a window start written by [`encode_start`].
pub fn decode_start(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    (u64::from_be_bytes(a) ^ (1 << 63)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_hopping_windows() {
        let mut w = Vec::new();
        windows_for(1500, 1000, 1000, &mut w);
        assert_eq!(w, vec![1000]);
        windows_for(1000, 1000, 1000, &mut w);
        assert_eq!(w, vec![1000]);
        windows_for(2500, 1000, 500, &mut w);
        assert_eq!(w, vec![2000, 2500]);
        windows_for(100, 1000, 500, &mut w);
        assert_eq!(w, vec![0]);
        windows_for(0, 10_000, 2_000, &mut w);
        assert_eq!(w, vec![0]);
    }

    #[test]
    fn starts_sort_as_numbers() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        encode_start(-5, &mut a);
        encode_start(3, &mut b);
        assert!(a < b);
        assert_eq!(decode_start(&a), -5);
    }
}
