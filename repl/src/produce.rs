//! `eddy produce TOPIC`: appends JSON lines from stdin to a topic. A line that is not JSON stops
//! the run with an error naming its line number; no line after it is appended.
//!
//! The record value is the line as given; with `--key FIELD` the key is the field's value (a
//! string as its UTF-8 bytes, anything else as JSON text); with `--timestamp FIELD` the
//! timestamp is the field's integer value (ms), else the current time.

use std::io::BufRead;

use anyhow::{bail, Context, Result};
use storage::{partition_for_key, RecordIn, TopicConfig};

const CHUNK: usize = 1000;

/// Runs `eddy produce`; returns the exit status.
pub fn run(place: &crate::place::Place, topic: &str, partitions: u32, key: Option<&str>, ts: Option<&str>) -> Result<i32> {
    let handle = place.log()?;
    let log = handle.log().clone();
    let n = match log.describe_topic(topic) {
        Ok(info) => info.config.partitions,
        Err(_) => {
            log.create_topic(topic, &TopicConfig::new(partitions.max(1)))
                .map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))
                .with_context(|| format!("cannot create topic {topic}"))?;
            partitions.max(1)
        }
    };
    let stdin = std::io::stdin();
    // (key, value, timestamp) per record read and not yet appended.
    type Pending = Vec<(Option<Vec<u8>>, Vec<u8>, i64)>;
    let mut pending: Pending = Vec::new();
    let mut total = 0u64;
    let mut next_partition = 0u32;
    let mut flush = |pending: &mut Pending| -> Result<()> {
        let mut by_partition: Vec<Vec<RecordIn<'_>>> = vec![Vec::new(); n as usize];
        for (k, v, t) in pending.iter() {
            let p = match k {
                Some(k) => partition_for_key(k, n),
                None => {
                    next_partition = (next_partition + 1) % n;
                    next_partition
                }
            };
            by_partition[p as usize].push(RecordIn { timestamp: *t, key: k.as_deref(), value: Some(v), headers: &[] });
        }
        for (p, recs) in by_partition.iter().enumerate() {
            if !recs.is_empty() {
                handle.append(topic, p as u32, recs)?;
            }
        }
        pending.clear();
        Ok(())
    };
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.context("cannot read stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                flush(&mut pending)?;
                handle.close().ok();
                bail!("line {} is not valid JSON ({e}); {total} records were appended before it", i + 1);
            }
        };
        let k = match key {
            Some(f) => match v.get(f) {
                Some(serde_json::Value::String(s)) => Some(s.as_bytes().to_vec()),
                Some(serde_json::Value::Null) | None => None,
                Some(other) => Some(other.to_string().into_bytes()),
            },
            None => None,
        };
        let t = match ts {
            Some(f) => match v.get(f).and_then(|x| x.as_i64()) {
                Some(t) => t,
                None => {
                    flush(&mut pending)?;
                handle.close().ok();
                    bail!("line {}: field \"{f}\" is missing or not an integer timestamp; {total} records were appended before it", i + 1);
                }
            },
            None => chrono::Utc::now().timestamp_millis(),
        };
        pending.push((k, line.trim().as_bytes().to_vec(), t));
        total += 1;
        if pending.len() >= CHUNK {
            flush(&mut pending)?;
        }
    }
    flush(&mut pending)?;
    eprintln!("{total} records appended to {topic}");
    handle.close()?;
    Ok(0)
}
