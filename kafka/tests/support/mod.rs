//! Kafka-protocol brokers on loopback for tests (see `../shared/KAFKA.md`).
//!
//! A test asks for a broker of a kind; it gets a fresh one on a free port (memory storage),
//! killed when the handle drops. The binaries are found through `EDDY_NISSHI` (nisshi 0.7.0:
//! transactions, but a wrong `ListOffsets` latest after multi-record batches and aborted records
//! shown to `read_committed` readers) and `EDDY_NISSHI_LATEST` (nisshi 0.8.1: right offsets, no
//! transactions), or under `~/.cache/eddy/brokers/`, where `.ci/run` installs them. Without the
//! binary a test skips with a loud message, except under `CI=true`, where it fails.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// nisshi 0.7.0: transactions and fencing.
    Transactions,
    /// nisshi 0.8.1: right end offsets.
    Offsets,
}

/// A broker process on loopback.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Which broker it is.
    pub kind: Kind,
}

impl Broker {
    /// Sends `sig` (`-STOP`, `-CONT`) to the broker process: a stopped broker answers nothing,
    /// as one that went away, and keeps its (in-memory) data for when it is continued.
    #[allow(dead_code)]
    pub fn signal(&self, sig: &str) {
        let _ = std::process::Command::new("kill").args([sig, &self.child.id().to_string()]).status();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(kind: Kind) -> Option<PathBuf> {
    let (var, dir) = match kind {
        Kind::Transactions => ("EDDY_NISSHI", "nisshi-0.7.0"),
        Kind::Offsets => ("EDDY_NISSHI_LATEST", "nisshi-0.8.1"),
    };
    if let Ok(p) = std::env::var(var) {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("HOME").ok()?;
    let p = PathBuf::from(home).join(".cache/eddy/brokers").join(dir).join("bin/nisshi");
    p.exists().then_some(p)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A fresh broker of `kind`, or `None` (after a loud message) when its binary is missing outside
/// CI.
pub fn broker(kind: Kind) -> Option<Broker> {
    let Some(bin) = binary(kind) else {
        let msg = format!("no {kind:?} broker binary (set EDDY_NISSHI / EDDY_NISSHI_LATEST or run .ci/run to install nisshi)");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("\n!!! SKIPPED: {msg}\n");
        return None;
    };
    for _attempt in 0..3 {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let url = format!("tcp://{addr}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://nisshi/", "--group-initial-rebalance-delay", "0s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut b = Broker { child, addr: addr.clone(), kind };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Some(b);
            }
            if let Ok(Some(_)) = b.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("the {kind:?} broker ({}) did not start", bin.display());
}

/// A unique name for this test run.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
