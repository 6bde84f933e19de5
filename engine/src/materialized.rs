//! Materialized tables: the latest row per key of a table, kept in the state store for pull
//! queries. A table sink with `materialize` set writes them at each checkpoint.
//!
//! Layout: `m/<table>\0[u32 BE key length][key bytes][window bytes]` -> `[i64 LE event time][value
//! bytes]`; a deleted key has no entry. Keys and values are encoded with the table's formats;
//! window bytes are the sink's windowed-key suffix (8 bytes start, or 8 bytes end + 8 bytes start
//! for sessions), so a key's windows are adjacent.

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

/// Splits an entry key (after [`table_prefix`]) into key bytes and window bytes.
pub fn split_entry_key(rest: &[u8]) -> Option<(&[u8], &[u8])> {
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
}
