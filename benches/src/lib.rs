//! Shared helpers for Eddy's benchmark binaries: process CPU time, data generation, reporting.

use std::time::Duration;

pub mod server;

/// The allocator of the `eddy` binary (see `repl/src/main.rs`), so that the drivers measure what
/// a user runs.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `getrusage(RUSAGE_SELF)`: the one unsafe call of the workspace (no safe wrapper in std).
#[allow(unsafe_code)]
fn rusage() -> Option<libc::rusage> {
    // SAFETY: rusage is plain old data (all-zero is a valid value); getrusage writes into the
    // struct we pass, and RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    (rc == 0).then_some(ru)
}

/// CPU time (user + system) used by this process so far.
pub fn process_cpu_time() -> Duration {
    let Some(ru) = rusage() else { return Duration::ZERO };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Peak resident set size of this process, in bytes.
pub fn peak_rss_bytes() -> u64 {
    rusage().map_or(0, |ru| ru.ru_maxrss as u64 * 1024)
}

/// A small deterministic random generator (xorshift64*), so runs are reproducible.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Figures of one measured run.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// What was measured.
    pub name: String,
    /// Records processed.
    pub records: u64,
    /// Wall-clock time.
    pub wall: Duration,
    /// Process CPU time.
    pub cpu: Duration,
}

impl Measurement {
    /// Records per second of wall-clock time.
    pub fn per_sec(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }

    /// Records per second of CPU time (per core).
    pub fn per_cpu_sec(&self) -> f64 {
        self.records as f64 / self.cpu.as_secs_f64()
    }

    /// A one-line report.
    pub fn line(&self) -> String {
        format!(
            "{:<32} {:>11} records  wall {:>7.2}s  cpu {:>7.2}s  {:>10.0} rec/s  {:>10.0} rec/cpu-s",
            self.name,
            self.records,
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.per_sec(),
            self.per_cpu_sec()
        )
    }
}

/// Runs `sql` (statements that start persistent queries) and measures it until every query has
/// caught up with its inputs: wall time and this process's CPU time for `records` records.
pub fn run_to_completion(
    eddy: &planner::Eddy,
    s: &mut planner::Session,
    name: &str,
    sql: &str,
    records: u64,
) -> anyhow::Result<Measurement> {
    let cpu0 = process_cpu_time();
    let t0 = std::time::Instant::now();
    s.execute_all(sql)?;
    eddy.engine().wait_caught_up(None, Duration::from_secs(7200))?;
    Ok(Measurement { name: name.into(), records, wall: t0.elapsed(), cpu: process_cpu_time() - cpu0 })
}

/// Appends `n` generated records to `topic`, in chunks of 10,000, each to its key's partition
/// (Kafka's partitioner over `partitions`). `gen(i, rng)` gives record `i`'s BIGINT key, JSON
/// value and timestamp.
pub fn load_topic(
    log: &dyn storage::TopicLog,
    topic: &str,
    partitions: u32,
    n: u64,
    rng: &mut Rng,
    mut gen: impl FnMut(u64, &mut Rng) -> (i64, String, i64),
) -> anyhow::Result<()> {
    const CHUNK: u64 = 10_000;
    let mut i = 0;
    while i < n {
        let m = CHUNK.min(n - i);
        type Rec = (Vec<u8>, Vec<u8>, i64);
        let mut recs: Vec<Vec<Rec>> = vec![Vec::new(); partitions as usize];
        for j in i..i + m {
            let (k, v, t) = gen(j, rng);
            let key = k.to_be_bytes().to_vec();
            let p = storage::partition_for_key(&key, partitions);
            recs[p as usize].push((key, v.into_bytes(), t));
        }
        for (p, rs) in recs.iter().enumerate().filter(|(_, rs)| !rs.is_empty()) {
            let ins: Vec<storage::RecordIn<'_>> =
                rs.iter().map(|(k, v, t)| storage::RecordIn { timestamp: *t, key: Some(k), value: Some(v), headers: &[] }).collect();
            log.append(topic, p as u32, &ins)?;
        }
        i += m;
    }
    Ok(())
}
