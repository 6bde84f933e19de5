//! Layout of the engine's keys in the state store.
//!
//! ```text
//! c/epoch                                   -> u64 BE: last committed checkpoint
//! c/sink/<topic>\0<partition u32 BE>        -> i64 BE: end offset of a sink partition at that checkpoint
//! q/<query id>\0o<sub u32 BE><source u32 BE><partition u32 BE> -> i64 BE: next offset to read
//! q/<query id>\0p                           -> the query's plan as JSON (crate::plan_data::PlanData)
//! q/<query id>\0s<table u32 BE><key...>     -> operator state (see each operator)
//! q/<query id>\0t<what><sub u32 BE><partition u32 BE> -> a per-task committer's bookkeeping
//! ```

/// Key of the last committed epoch.
pub const EPOCH_KEY: &[u8] = b"c/epoch";
/// Prefix of sink positions.
pub const SINK_PREFIX: &[u8] = b"c/sink/";

/// Key of a sink partition's committed end offset.
pub fn sink_key(topic: &str, partition: u32) -> Vec<u8> {
    let mut k = SINK_PREFIX.to_vec();
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// Parses a key made by [`sink_key`].
pub fn parse_sink_key(key: &[u8]) -> Option<(String, u32)> {
    let rest = key.strip_prefix(SINK_PREFIX)?;
    let nul = rest.iter().position(|&b| b == 0)?;
    let topic = std::str::from_utf8(&rest[..nul]).ok()?.to_string();
    let p: [u8; 4] = rest.get(nul + 1..nul + 5)?.try_into().ok()?;
    Some((topic, u32::from_be_bytes(p)))
}

/// Prefix of every key of a query.
pub fn query_prefix(query_id: &str) -> Vec<u8> {
    let mut k = b"q/".to_vec();
    k.extend_from_slice(query_id.as_bytes());
    k.push(0);
    k
}

/// The first key after every key with this prefix.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

/// The prefix of every state key of one operator table, in every task:
/// `q/<query id>\0s<table u32 BE>`.
pub fn state_table_prefix(query_id: &str, table: crate::types::TableId) -> Vec<u8> {
    let mut k = query_prefix(query_id);
    k.push(b's');
    k.extend_from_slice(&table.0.to_be_bytes());
    k
}

/// The prefix of every state key of one operator table in one task:
/// `q/<query id>\0s<table u32 BE><sub u32 BE><partition u32 BE>`.
pub fn state_prefix(query_id: &str, table: crate::types::TableId, sub: usize, partition: u32) -> Vec<u8> {
    let mut k = state_table_prefix(query_id, table);
    k.extend_from_slice(&(sub as u32).to_be_bytes());
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// Key of a source partition's next offset for a query.
pub fn offset_key(query_id: &str, sub: usize, source: usize, partition: u32) -> Vec<u8> {
    let mut k = query_prefix(query_id);
    k.push(b'o');
    k.extend_from_slice(&(sub as u32).to_be_bytes());
    k.extend_from_slice(&(source as u32).to_be_bytes());
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// Key of a task's own bookkeeping under its query: `q/<query id>\0t<what><sub u32 BE><partition u32 BE>`
/// (`what`: `b'c'` the next changelog offset of a per-task committer, `b'e'` its last epoch).
pub fn task_meta_key(query_id: &str, sub: usize, partition: u32, what: u8) -> Vec<u8> {
    let mut k = query_prefix(query_id);
    k.push(b't');
    k.push(what);
    k.extend_from_slice(&(sub as u32).to_be_bytes());
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// Key of a persistent query's stored plan.
pub fn plan_key(query_id: &str) -> Vec<u8> {
    let mut k = query_prefix(query_id);
    k.push(b'p');
    k
}

/// Decodes an i64 stored big-endian.
pub fn decode_i64(v: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(v.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_keys_round_trip() {
        let k = sink_key("out_topic", 7);
        assert_eq!(parse_sink_key(&k), Some(("out_topic".to_string(), 7)));
        assert!(k.starts_with(SINK_PREFIX));
    }

    #[test]
    fn prefix_end_is_after_every_key_with_the_prefix() {
        let p = query_prefix("Q1");
        let end = prefix_end(&p);
        assert!(offset_key("Q1", 9, 9, 9).as_slice() < end.as_slice());
        assert!(query_prefix("Q2").as_slice() >= end.as_slice() || !query_prefix("Q2").starts_with(&p));
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }
}
