//! An `eddy server` child process for the benches that measure the server (serverload,
//! console): started on a data directory with free loopback ports, stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// A running `eddy server`.
pub struct Server {
    child: Child,
    /// Base URL of its HTTP API.
    pub http: String,
    /// Its PostgreSQL port.
    pub pg: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `eddy` (the binary) as a server on `dir`; returns once it listens.
    pub fn start(eddy: &Path, dir: &Path) -> Result<Server> {
        let mut child = Command::new(eddy)
            .arg("--data-dir")
            .arg(dir)
            .args(["server", "--http", "127.0.0.1:0", "--pg", "127.0.0.1:0"])
            .env_remove("EDDY_USER")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", eddy.display()))?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let (mut http_at, mut pg_at): (Option<String>, Option<u16>) = (None, None);
        let (http, pg) = loop {
            if let (Some(h), Some(p)) = (&http_at, pg_at) {
                break (h.clone(), p);
            }
            let Some(line) = lines.next() else { bail!("the server exited before listening") };
            let line = line?;
            if let Some(a) = line.strip_prefix("http listening on ") {
                http_at = Some(format!("http://{a}"));
            }
            if let Some(a) = line.strip_prefix("pg listening on ") {
                pg_at = Some(a.rsplit(':').next().unwrap_or_default().parse()?);
            }
        };
        Ok(Server { child, http, pg })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the server process has used so far, from `/proc`.
    pub fn cpu_time(&self) -> Result<Duration> {
        child_cpu_time(self.pid())
    }
}

/// CPU time (user + system) process `pid` has used so far, from `/proc/<pid>/stat`.
pub fn child_cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("unexpected /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).context("no utime")?.parse::<u64>()? + f.get(12).context("no stime")?.parse::<u64>()?;
    // Linux reports in clock ticks of USER_HZ, 100 on every platform Eddy runs on.
    Ok(Duration::from_millis(ticks * 10))
}

/// The `eddy` binary: `given`, or the one built next to the running bench.
pub fn eddy_binary(given: Option<&Path>) -> Result<PathBuf> {
    let eddy = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?.parent().context("no parent directory")?.join("eddy"),
    };
    if !eddy.exists() {
        bail!("{} is missing: build it first (cargo build --release -p eddy) or pass --eddy", eddy.display());
    }
    Ok(eddy)
}

/// An HTTP client that returns error statuses instead of failing on them.
pub fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// POSTs JSON; fails unless the answer is 200.
pub fn post(agent: &ureq::Agent, url: &str, body: &str) -> Result<String> {
    let mut r = agent.post(url).header("content-type", "application/json").send(body)?;
    let status = r.status().as_u16();
    let text = r.body_mut().with_config().limit(u64::MAX).read_to_string()?;
    if status != 200 {
        bail!("{url} answered {status}: {text}");
    }
    Ok(text)
}

/// GETs a URL; fails unless the answer is 200.
pub fn get(agent: &ureq::Agent, url: &str) -> Result<String> {
    let mut r = agent.get(url).call()?;
    let status = r.status().as_u16();
    let text = r.body_mut().with_config().limit(u64::MAX).read_to_string()?;
    if status != 200 {
        bail!("{url} answered {status}: {text}");
    }
    Ok(text)
}
