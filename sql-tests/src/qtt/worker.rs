//! Running cases in worker processes, so that a case that hangs or crashes (a stack overflow, an
//! abort, a deadlock in a task thread) cannot take the runner with it.
//!
//! The runner starts `qtt --worker` processes (its own binary) and sends each a line
//! `PATH<TAB>INDEX` per case; the worker runs the case (under `catch_unwind` and the time
//! budget) and answers one line `@@QTT {json}`. When no answer comes within the budget plus a
//! grace period, the runner kills the worker, reports a timeout and starts a new one; when the
//! worker dies, the case is reported as a crash.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use super::loader::{load_file, TestFile};
use super::run::run_case;
use super::{CaseResult, Status};

/// Prefix of result lines (anything else a worker prints is ignored).
const RESULT_PREFIX: &str = "@@QTT ";
/// How long past the budget a worker may take before it is killed.
const GRACE: Duration = Duration::from_secs(10);

/// A case to run: its file and its index among the file's expanded cases.
#[derive(Debug, Clone)]
pub struct Job {
    /// The file.
    pub path: PathBuf,
    /// Index of the case in [`TestFile::cases`].
    pub index: usize,
}

/// How to run jobs.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Time budget per case.
    pub budget: Duration,
    /// Worker processes in parallel.
    pub jobs: usize,
    /// Run in this process instead (no protection against hangs and crashes).
    pub in_process: bool,
    /// Show the workers' stderr (Eddy's logs, panics).
    pub verbose: bool,
}

/// The worker's main loop: reads jobs from stdin, answers on stdout, until stdin closes.
pub fn worker_main(budget: Duration) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut files: HashMap<PathBuf, TestFile> = HashMap::new();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line?;
        let Some((path, index)) = line.split_once('\t') else { continue };
        let path = PathBuf::from(path);
        let index: usize = index.trim().parse()?;
        if !files.contains_key(&path) {
            files.insert(path.clone(), load_file(&path)?);
        }
        let case = &files[&path].cases[index];
        let r = run_case(case, budget, &rt);
        let msg = serde_json::json!({
            "status": r.status.name(),
            "reason": r.reason,
            "matched": r.message_matched,
            "error": r.error,
            "millis": r.millis,
        });
        writeln!(out, "{RESULT_PREFIX}{msg}")?;
        out.flush()?;
    }
    Ok(())
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    results: Receiver<CaseResult>,
}

impl Worker {
    fn start(budget: Duration, verbose: bool) -> std::io::Result<Worker> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("--worker")
            .arg("--timeout")
            .arg(format!("{}", budget.as_secs_f64()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if verbose { Stdio::inherit() } else { Stdio::null() })
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, results) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(json) = line.strip_prefix(RESULT_PREFIX) else { continue };
                if tx.send(parse_result(json)).is_err() {
                    break;
                }
            }
        });
        Ok(Worker { child, stdin, results })
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_result(json: &str) -> CaseResult {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    CaseResult {
        status: Status::from_name(v["status"].as_str().unwrap_or("crash")),
        reason: v["reason"].as_str().unwrap_or("unreadable result from the worker").to_string(),
        message_matched: v["matched"].as_bool(),
        error: v["error"].as_str().map(str::to_string),
        millis: v["millis"].as_u64().unwrap_or(0),
    }
}

/// Runs every job and returns the results in job order; `progress` sees each result as it
/// comes (from several threads, one at a time).
pub fn run_jobs(jobs: &[Job], opts: &PoolOptions, progress: &(dyn Fn(usize, &CaseResult) + Sync)) -> Vec<CaseResult> {
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; jobs.len()]);
    let next = AtomicUsize::new(0);
    let record = |i: usize, r: CaseResult| {
        let mut all = results.lock().expect("results lock");
        progress(i, &r);
        all[i] = Some(r);
    };
    if opts.in_process {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let mut files: HashMap<PathBuf, TestFile> = HashMap::new();
        for (i, j) in jobs.iter().enumerate() {
            if !files.contains_key(&j.path) {
                match load_file(&j.path) {
                    Ok(f) => files.insert(j.path.clone(), f),
                    Err(e) => {
                        record(i, crash(format!("cannot load: {e}")));
                        continue;
                    }
                };
            }
            record(i, run_case(&files[&j.path].cases[j.index], opts.budget, &rt));
        }
    } else {
        std::thread::scope(|s| {
            for _ in 0..opts.jobs.max(1) {
                s.spawn(|| drive(jobs, opts, &next, &record));
            }
        });
    }
    results.into_inner().expect("results lock").into_iter().map(|r| r.unwrap_or_else(|| crash("not run".into()))).collect()
}

fn crash(reason: String) -> CaseResult {
    CaseResult { status: Status::Crash, reason, message_matched: None, error: None, millis: 0 }
}

/// One thread of the pool: feeds one worker at a time, replacing it when it hangs or dies.
fn drive(jobs: &[Job], opts: &PoolOptions, next: &AtomicUsize, record: &(dyn Fn(usize, CaseResult) + Sync)) {
    let mut worker: Option<Worker> = None;
    loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(job) = jobs.get(i) else { break };
        if worker.is_none() {
            match Worker::start(opts.budget, opts.verbose) {
                Ok(w) => worker = Some(w),
                Err(e) => {
                    record(i, crash(format!("cannot start a worker: {e}")));
                    continue;
                }
            }
        }
        let w = worker.as_mut().expect("started");
        if writeln!(w.stdin, "{}\t{}", job.path.display(), job.index).and_then(|_| w.stdin.flush()).is_err() {
            let status = w.child.wait().map(|s| s.to_string()).unwrap_or_default();
            worker.take().expect("started").stop();
            record(i, crash(format!("the worker died ({status})")));
            continue;
        }
        match w.results.recv_timeout(opts.budget + GRACE) {
            Ok(r) => record(i, r),
            Err(RecvTimeoutError::Timeout) => {
                worker.take().expect("started").stop();
                let reason = format!("timeout: no result after {} s; worker killed", (opts.budget + GRACE).as_secs());
                record(
                    i,
                    CaseResult {
                        status: Status::Timeout,
                        reason,
                        message_matched: None,
                        error: None,
                        millis: (opts.budget + GRACE).as_millis() as u64,
                    },
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let mut w = worker.take().expect("started");
                let status = w.child.wait().map(|s| s.to_string()).unwrap_or_default();
                record(i, crash(format!("crash: the worker died ({status})")));
            }
        }
    }
    if let Some(w) = worker {
        // Closing stdin ends the worker's loop; kill in case it is stuck.
        drop(w.stdin);
        let mut child = w.child;
        for _ in 0..50 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
