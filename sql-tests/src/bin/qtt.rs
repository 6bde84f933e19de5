//! `qtt`: runs ksqlDB's query-validation tests against Eddy.
//!
//! ```text
//! qtt PATH... [--json FILE] [--markdown FILE] [--known-failures FILE [--check] [--update]] [--filter SUBSTR]...
//!     [--tier T0,T1,...] [--suite qtt|rest] [--plain-only] [--timeout SECS] [--jobs N]
//!     [--in-process] [--top N] [-v]
//! ```
//! PATHs are QTT files or directories of them (e.g. ../shared/ksqldb-qtt). Prints a line per
//! failing case, summaries per file, category, tier and corpus, the most common failure reasons
//! and a closing line `N passed, N failed`. With `--known-failures FILE --check` the exit status
//! says whether the results agree with the list (no new failures, no listed case passing);
//! `--update` rewrites the list. See docs/conformance.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use eddy_sql_tests::qtt::loader::{find_files, load_file, Meta};
use eddy_sql_tests::qtt::model::Suite;
use eddy_sql_tests::qtt::report::{self, Row};
use eddy_sql_tests::qtt::worker::{run_jobs, worker_main, Job, PoolOptions};
use eddy_sql_tests::qtt::{CaseResult, Status};

const USAGE: &str = "usage: qtt PATH... [--json FILE] [--markdown FILE] [--known-failures FILE [--check] [--update]]
           [--filter SUBSTR]... [--tier T0,T1,...] [--suite qtt|rest] [--plain-only]
           [--timeout SECS] [--jobs N] [--in-process] [--top N] [-v]

  PATH                   QTT files or directories (e.g. ../shared/ksqldb-qtt)
  --json FILE            write every result as JSON
  --markdown FILE        write the pass-rate tables and top failure reasons as Markdown
  --known-failures FILE  the list of failing plain cases (file::case<TAB>reason)
  --check                exit 1 on a failing case not in the list or a listed case that passes
  --update               rewrite the list from this run
  --filter SUBSTR        only cases whose file::case contains SUBSTR (repeatable)
  --tier T0,T1           only cases of these tiers (tiers/*.txt; '-' for unlisted)
  --suite qtt|rest       only one corpus
  --plain-only           only plain cases (JSON/DELIMITED/KAFKA/NONE, no schema registry)
  --sr-only              only schema-registry cases (AVRO, PROTOBUF, PROTOBUF_NOSR, JSON_SR,
                         declared schemas; no test-only functions): they count in place of
                         the plain ones (rates, --known-failures)
  --timeout SECS         time budget per case (default 10)
  --jobs N               worker processes (default: two per CPU, at most 8)
  --in-process           run cases in this process (no protection against hangs)
  --top N                failure reasons to list (default 15)
  -v                     print every result and show Eddy's stderr";

/// Command-line options.
struct Args {
    paths: Vec<PathBuf>,
    json: Option<PathBuf>,
    markdown: Option<PathBuf>,
    known: Option<PathBuf>,
    check: bool,
    update: bool,
    filters: Vec<String>,
    tiers: Vec<String>,
    suite: Option<Suite>,
    plain_only: bool,
    sr_only: bool,
    timeout: f64,
    jobs: usize,
    in_process: bool,
    top: usize,
    verbose: bool,
    worker: bool,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        paths: Vec::new(),
        json: None,
        markdown: None,
        known: None,
        check: false,
        update: false,
        filters: Vec::new(),
        tiers: Vec::new(),
        suite: None,
        plain_only: false,
        sr_only: false,
        timeout: 10.0,
        // Cases mostly wait (fsync, polling), so two workers per core keep the cores busy.
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()).saturating_mul(2).min(8),
        in_process: false,
        top: 15,
        verbose: false,
        worker: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--json" => a.json = Some(value("--json")?.into()),
            "--markdown" => a.markdown = Some(value("--markdown")?.into()),
            "--known-failures" => a.known = Some(value("--known-failures")?.into()),
            "--check" => a.check = true,
            "--update" => a.update = true,
            "--filter" => a.filters.push(value("--filter")?),
            "--tier" => a.tiers.extend(value("--tier")?.split(',').map(|t| t.trim().to_string())),
            "--suite" => {
                a.suite = Some(match value("--suite")?.as_str() {
                    "qtt" => Suite::Qtt,
                    "rest" => Suite::Rest,
                    other => bail!("--suite is qtt or rest, not {other}"),
                })
            }
            "--plain-only" => a.plain_only = true,
            "--sr-only" => a.sr_only = true,
            "--timeout" => a.timeout = value("--timeout")?.parse().context("--timeout takes seconds")?,
            "--jobs" | "-j" => a.jobs = value("--jobs")?.parse().context("--jobs takes a number")?,
            "--in-process" => a.in_process = true,
            "--top" => a.top = value("--top")?.parse().context("--top takes a number")?,
            "-v" | "--verbose" => a.verbose = true,
            "--worker" => a.worker = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            s if s.starts_with('-') => bail!("unknown option {s} (see --help)"),
            s => a.paths.push(s.into()),
        }
    }
    if a.paths.is_empty() && !a.worker {
        bail!("give QTT files or directories (see --help)");
    }
    if (a.check || a.update) && a.known.is_none() {
        bail!("--check and --update need --known-failures FILE");
    }
    Ok(a)
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qtt: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let args = parse_args()?;
    let budget = Duration::from_secs_f64(args.timeout);
    if args.worker {
        worker_main(budget)?;
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let meta = Meta::discover(&args.paths);
    let mut jobs = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let (mut disabled, mut broken) = (0, 0);
    for path in find_files(&args.paths)? {
        let file = match load_file(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipping {}: {e:#}", path.display());
                broken += 1;
                continue;
            }
        };
        for (name, why) in &file.broken {
            eprintln!("skipping {}::{name}: {why}", file.name);
            broken += 1;
        }
        for (index, case) in file.cases.iter().enumerate() {
            let id = case.id();
            let tier = meta.tier(&id);
            if !case.enabled {
                disabled += 1;
                continue;
            }
            let wanted = (args.filters.is_empty() || args.filters.iter().any(|f| id.contains(f.as_str())))
                && (args.tiers.is_empty() || args.tiers.contains(&tier))
                && args.suite.is_none_or(|s| s == case.suite)
                && (!args.plain_only || case.plain)
                && (!args.sr_only || case.sr);
            if !wanted {
                continue;
            }
            jobs.push(Job { path: path.clone(), index });
            rows.push(Row {
                id,
                file: file.name.clone(),
                suite: case.suite,
                // The cases this run counts: schema-registry ones with --sr-only.
                plain: if args.sr_only { case.sr } else { case.plain },
                error_case: case.is_error_case(),
                tier,
                category: meta.category(&file.name),
                result: CaseResult { status: Status::Crash, reason: String::new(), message_matched: None, error: None, millis: 0 },
            });
        }
    }
    eprintln!("running {} cases ({} disabled, {} unreadable) with {} worker(s)", jobs.len(), disabled, broken, args.jobs);
    let opts = PoolOptions { budget, jobs: args.jobs, in_process: args.in_process, verbose: args.verbose };
    let results = run(&jobs, &rows, &opts, args.verbose);
    for (row, r) in rows.iter_mut().zip(results) {
        row.result = r;
    }

    for r in rows.iter().filter(|r| !r.passed()) {
        let plain = if r.plain { "" } else { " (not plain)" };
        println!("{:<7} {}{plain}: {}", r.result.status.name().to_uppercase(), r.id, r.result.reason);
    }
    let label = if args.sr_only { "schema-registry" } else { "plain" };
    print!("{}", report::summary(&rows, args.top, label));
    if let Some(p) = &args.json {
        report::write_json(p, &rows)?;
    }
    if let Some(p) = &args.markdown {
        std::fs::write(p, report::markdown(&rows, args.top, label)).with_context(|| format!("cannot write {}", p.display()))?;
    }
    let mut ok = rows.iter().all(Row::passed);
    if let Some(path) = &args.known {
        ok = known_failures(path, &args, &jobs, &mut rows, &opts)?;
    }
    let passed = rows.iter().filter(|r| r.passed()).count();
    println!("\nelapsed {:.0} s", started.elapsed().as_secs_f64());
    println!("{passed} passed, {} failed", rows.len() - passed);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs the jobs, printing progress to stderr.
fn run(jobs: &[Job], rows: &[Row], opts: &PoolOptions, verbose: bool) -> Vec<CaseResult> {
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = jobs.len();
    run_jobs(jobs, opts, &|i, r| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if verbose {
            eprintln!("[{n}/{total}] {:<7} {} ({} ms) {}", r.status.name(), rows[i].id, r.millis, r.reason);
        } else if n.is_multiple_of(100) || n == total {
            eprintln!("[{n}/{total}]");
        }
    })
}

/// The ratchet: compares with the list, re-runs disagreeing cases twice to tell flaky ones
/// apart, and rewrites the list with `--update`. Returns whether the results agree.
fn known_failures(path: &std::path::Path, args: &Args, jobs: &[Job], rows: &mut [Row], opts: &PoolOptions) -> Result<bool> {
    let known = report::read_known_failures(path)?;
    let first = report::ratchet(rows, &known);
    // Flaky case -> the reason of a failing run.
    let mut flaky: BTreeMap<String, String> = BTreeMap::new();
    let suspects: Vec<usize> =
        rows.iter().enumerate().filter(|(_, r)| first.regressions.contains(&r.id) || first.fixed.contains(&r.id)).map(|(i, _)| i).collect();
    // Rewriting the list takes this run as it is; checking re-runs what disagrees.
    if !suspects.is_empty() && args.check && !args.update {
        eprintln!("re-running {} cases that disagree with {} to rule out flakiness", suspects.len(), path.display());
        let again: Vec<Job> = suspects.iter().map(|&i| jobs[i].clone()).collect();
        let sub: Vec<Row> = suspects.iter().map(|&i| rows[i].clone()).collect();
        for _ in 0..2 {
            for (k, r) in run(&again, &sub, opts, false).into_iter().enumerate() {
                let row = &mut rows[suspects[k]];
                // A case that both passed and failed is flaky: it keeps the list's verdict.
                if !flaky.contains_key(&row.id) && r.passed() != row.passed() {
                    let failing = if r.passed() { &row.result.reason } else { &r.reason };
                    flaky.insert(row.id.clone(), failing.clone());
                    row.result = r;
                }
            }
        }
    }
    for (id, reason) in &flaky {
        println!("FLAKY   {id}: passed and failed in different runs (the list keeps it as it is); failing run: {reason}");
    }
    let result = report::ratchet(rows, &known);
    if args.update {
        let ran: BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let keep = known.iter().filter(|(id, _)| !ran.contains(id.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        std::fs::write(path, report::known_failures_text(rows, &keep)).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}: {} added, {} removed", path.display(), result.regressions.len(), result.fixed.len());
        return Ok(true);
    }
    for id in &result.regressions {
        let reason = rows.iter().find(|r| &r.id == id).map(|r| r.result.reason.clone()).unwrap_or_default();
        println!("REGRESSION {id}: {reason}");
    }
    for id in &result.fixed {
        println!("NOW PASSING {id}: remove it from {} (or run with --update)", path.display());
    }
    let agree = result.regressions.is_empty() && result.fixed.is_empty();
    println!(
        "known failures: {} listed, {} new failures, {} now passing: {}",
        known.len(),
        result.regressions.len(),
        result.fixed.len(),
        if agree { "OK" } else { "FAILED" }
    );
    Ok(agree || !args.check)
}

trait Passed {
    fn passed(&self) -> bool;
}

impl Passed for CaseResult {
    fn passed(&self) -> bool {
        self.status == Status::Pass
    }
}
