//! Materialized tables: the latest row per key of a table, kept in the state store for pull
//! queries. A table sink with `materialize` set writes them at each checkpoint.
//!
//! Layout: `m/<table>\0[u32 BE key length][key bytes][window bytes]` -> `[i64 LE event time][value
//! bytes]`; a deleted key has no entry. Keys and values are encoded with the table's formats;
//! window bytes are the sink's windowed-key suffix (8 bytes start, or 8 bytes end + 8 bytes start
//! for sessions), so a key's windows are adjacent.
//!
//! A table of time windows computed by a query is kept by time segment instead, as Kafka Streams
//! keeps its window stores: `m/<table>\0[0xff][segment, 8 bytes][u32 BE key length][key
//! bytes][window bytes]`, the segment being the window start divided by [`segment_ms`] of the
//! table's retention. Windows past retention then go with one range delete over the oldest
//! segments, and a key's windows are adjacent within each segment. (No key length starts with
//! 0xff, so the two layouts do not mix; tables written before segments keep the first layout.)

use storage::KvStore;

/// Prefix of every entry of `table`.
pub fn table_prefix(table: &str) -> Vec<u8> {
    let mut k = b"m/".to_vec();
    k.extend_from_slice(table.as_bytes());
    k.push(0);
    k
}

/// Prefix of every entry (every window) of one key of `table`.
pub fn key_prefix(table: &str, key: &[u8]) -> Vec<u8> {
    let mut k = table_prefix(table);
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// The entry key of `key` (and its window bytes) in `table`.
pub fn entry_key(table: &str, key: &[u8], window: &[u8]) -> Vec<u8> {
    entry_key_under(&table_prefix(table), key, window)
}

/// The entry key of `key` (and its window bytes) under a [`table_prefix`] computed once.
pub fn entry_key_under(prefix: &[u8], key: &[u8], window: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 4 + key.len() + window.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k.extend_from_slice(window);
    k
}

/// The byte after the table prefix of an entry kept by time segment.
pub const SEGMENTED: u8 = 0xff;

/// The length of the time segments of a windowed table whose windows are kept for
/// `retention_ms` (Kafka Streams' rule: half the retention, at least a minute).
pub fn segment_ms(retention_ms: i64) -> i64 {
    (retention_ms / 2).max(60_000)
}

/// The segment holding windows that start at `start`.
pub fn segment_of(start: i64, segment_ms: i64) -> i64 {
    start.div_euclid(segment_ms)
}

/// Prefix of every entry of segment `segment` under a [`table_prefix`] (segments sort by
/// number, negative ones first).
pub fn segment_prefix_under(prefix: &[u8], segment: i64) -> Vec<u8> {
    segmented_entry_key_under(prefix, segment, None, &[])
}

/// The entry key of `key` (`None`: the segment's prefix) and its window bytes in segment
/// `segment` under a [`table_prefix`].
pub fn segmented_entry_key_under(prefix: &[u8], segment: i64, key: Option<&[u8]>, window: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 13 + key.map_or(0, <[u8]>::len) + window.len());
    k.extend_from_slice(prefix);
    k.push(SEGMENTED);
    // The sign bit flipped: segments sort by number, negative ones first.
    k.extend_from_slice(&((segment as u64) ^ (1 << 63)).to_be_bytes());
    if let Some(key) = key {
        k.extend_from_slice(&(key.len() as u32).to_be_bytes());
        k.extend_from_slice(key);
    }
    k.extend_from_slice(window);
    k
}

/// The prefixes holding every entry of `key` in `table`: the key's prefix in the first layout,
/// then its prefix in each segment present, found by seeking from one segment to the next.
pub fn key_prefixes(state: &dyn KvStore, table: &str, key: &[u8]) -> storage::Result<Vec<Vec<u8>>> {
    let prefix = table_prefix(table);
    let mut out = vec![key_prefix(table, key)];
    let mut end = prefix.clone();
    end.push(SEGMENTED);
    end.extend_from_slice(&[0xff; 9]);
    let mut from = segment_prefix_under(&prefix, i64::MIN);
    while let Some(kv) = state.scan(&from, &end)?.next() {
        let (k, _) = kv?;
        let Some(seg) = k.get(prefix.len() + 1..prefix.len() + 9) else { break };
        // The number as segmented_entry_key_under wrote it.
        let seg = (u64::from_be_bytes(seg.try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
        out.push(segmented_entry_key_under(&prefix, seg, Some(key), &[]));
        if seg == i64::MAX {
            break;
        }
        from = segment_prefix_under(&prefix, seg + 1);
    }
    Ok(out)
}

/// Splits an entry key (after [`table_prefix`]) into key bytes and window bytes.
pub fn split_entry_key(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = if rest.first() == Some(&SEGMENTED) { rest.get(9..)? } else { rest };
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let key = rest.get(4..4 + len)?;
    Some((key, &rest[4 + len..]))
}

/// An entry value: event time and value bytes.
pub fn entry_value(ts: i64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&ts.to_le_bytes());
    v.extend_from_slice(value);
    v
}

/// Splits an entry value into event time and value bytes.
pub fn split_entry_value(v: &[u8]) -> Option<(i64, &[u8])> {
    Some((i64::from_le_bytes(v.get(..8)?.try_into().ok()?), &v[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_group_windows() {
        let k = entry_key("T", b"ab", &[0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(entry_key_under(&table_prefix("T"), b"ab", &[0, 0, 0, 0, 0, 0, 0, 7]), k);
        let rest = &k[table_prefix("T").len()..];
        assert_eq!(split_entry_key(rest), Some((&b"ab"[..], &[0u8, 0, 0, 0, 0, 0, 0, 7][..])));
        assert!(k.starts_with(&key_prefix("T", b"ab")));
        assert!(!entry_key("T", b"abc", &[]).starts_with(&key_prefix("T", b"ab")));
        let v = entry_value(42, b"{}");
        assert_eq!(split_entry_value(&v), Some((42, &b"{}"[..])));
    }

    #[test]
    fn segmented_keys_split_like_the_others_and_sort_by_segment() {
        let p = table_prefix("T");
        let w = 7i64.to_be_bytes();
        let k = segmented_entry_key_under(&p, segment_of(7, 60_000), Some(b"ab"), &w);
        assert!(k.starts_with(&segment_prefix_under(&p, 0)));
        assert_eq!(split_entry_key(&k[p.len()..]), Some((&b"ab"[..], &w[..])));
        // Segments sort by number, negative ones first, and after every unsegmented entry.
        let keys: Vec<Vec<u8>> = [-2i64, -1, 0, 1, i64::MAX].iter().map(|&s| segmented_entry_key_under(&p, s, Some(b"ab"), &w)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(entry_key("T", &[0xfe; 300], &w) < keys[0]);
        assert_eq!(segment_of(-1, 60_000), -1);
        assert_eq!(segment_ms(10_000), 60_000);
        assert_eq!(segment_ms(86_400_000), 43_200_000);
    }

    #[test]
    fn a_keys_prefixes_cover_both_layouts_and_every_segment() {
        let state = storage::MemStore::new();
        let p = table_prefix("T");
        let mut b = storage::StateBatch::new();
        let w = 0i64.to_be_bytes();
        b.put(&entry_key("T", b"ab", &w), b"old");
        for seg in [-3i64, 0, 5] {
            b.put(&segmented_entry_key_under(&p, seg, Some(b"ab"), &w), b"new");
            b.put(&segmented_entry_key_under(&p, seg, Some(b"zz"), &w), b"other key");
        }
        b.put(&segmented_entry_key_under(&p, 9, Some(b"zz"), &w), b"only the other key");
        state.commit(&b, false).expect("a commit");
        let mut found = Vec::new();
        for prefix in key_prefixes(&state, "T", b"ab").expect("prefixes") {
            let end = crate::runtime::keys::prefix_end(&prefix);
            for kv in state.scan(&prefix, &end).expect("a scan") {
                found.push(kv.expect("an entry").1);
            }
        }
        assert_eq!(found, [b"old".to_vec(), b"new".to_vec(), b"new".to_vec(), b"new".to_vec()]);
    }
}
