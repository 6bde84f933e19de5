//! `eddy nexmark`: generates Nexmark events (persons, auctions, bids; see `engine::nexmark`) into
//! the topics `person`, `auction` and `bid` of the data directory, as JSON.

use std::time::Instant;

use anyhow::Result;
use engine::nexmark::{load_topics, GeneratorConfig};

/// Runs `eddy nexmark`; returns the exit status.
pub fn run(place: &crate::place::Place, events: u64, rate: u64, seed: u64, partitions: u32) -> Result<i32> {
    let handle = place.log()?;
    let log = handle.log().clone();
    let config = GeneratorConfig { seed, rate, ..Default::default() };
    let t0 = Instant::now();
    let counts = load_topics(&log, config, events, partitions, |_, _| Ok(()))
        .map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))?;
    eprintln!(
        "appended {} events ({} persons, {} auctions, {} bids; {:.1} MB) in {:.2}s",
        counts.total(),
        counts.persons,
        counts.auctions,
        counts.bids,
        counts.bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    handle.close()?;
    Ok(0)
}
