//! `eddy consume TOPIC`: prints records as JSON lines
//! `{"topic","partition","offset","timestamp","key","value"}`. The key is printed as a string
//! (printable UTF-8) or base64; the value as JSON when it is JSON, else as a string.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use planner::session::render::{base64, json_string};

/// Runs `eddy consume`; returns the exit status.
pub fn run(place: &crate::place::Place, topic: &str, from_beginning: bool, limit: Option<u64>, timeout: Option<f64>) -> Result<i32> {
    let handle = place.log()?;
    let log = handle.log().clone();
    let info = log.describe_topic(topic).map_err(|e| anyhow::anyhow!(engine::error_chain(&e))).context("cannot consume")?;
    let mut pos: Vec<i64> = info.partitions.iter().map(|p| if from_beginning { p.start_offset } else { p.end_offset }).collect();
    let mut printed = 0u64;
    let mut last = Instant::now();
    let timeout = timeout.map(Duration::from_secs_f64);
    'outer: loop {
        let mut any = false;
        for (p, off) in pos.iter_mut().enumerate() {
            let batch = log.read(topic, p as u32, *off, 1 << 20).map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))?;
            *off = batch.next_offset;
            for r in batch.iter() {
                any = true;
                let mut s = String::from("{\"topic\":");
                json_string(topic, &mut s);
                s.push_str(&format!(",\"partition\":{p},\"offset\":{},\"timestamp\":{},\"key\":", r.offset, r.timestamp));
                match r.key {
                    None => s.push_str("null"),
                    Some(k) => match std::str::from_utf8(k) {
                        Ok(t) if !t.chars().any(char::is_control) => json_string(t, &mut s),
                        _ => json_string(&base64(k), &mut s),
                    },
                }
                s.push_str(",\"value\":");
                match r.value {
                    None => s.push_str("null"),
                    Some(v) => match serde_json::from_slice::<serde_json::Value>(v) {
                        // Valid JSON: print it as it is (field order kept).
                        Ok(_) => s.push_str(std::str::from_utf8(v).unwrap_or("null").trim()),
                        Err(_) => match std::str::from_utf8(v) {
                            Ok(t) => json_string(t, &mut s),
                            Err(_) => json_string(&base64(v), &mut s),
                        },
                    },
                }
                s.push('}');
                println!("{s}");
                printed += 1;
                if limit.is_some_and(|l| printed >= l) {
                    break 'outer;
                }
            }
        }
        if any {
            last = Instant::now();
        } else {
            if timeout.is_some_and(|t| last.elapsed() >= t) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    handle.close()?;
    Ok(0)
}
