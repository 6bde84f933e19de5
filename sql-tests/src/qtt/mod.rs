//! The ksqlDB conformance runner: runs ksqlDB's query-validation tests (QTT) and REST
//! query-validation tests against Eddy and reports what passes (`cargo run -p eddy-sql-tests
//! --bin qtt -- PATH...`; see docs/conformance.md).
//!
//! The flow: [`loader`] finds and reads the files (lenient JSON via [`json`]), [`expand`] turns
//! each test into cases (`format` x `config`) and marks the plain ones, [`worker`] runs each case
//! in a worker process through [`run`] (fresh engine per case; inputs from [`inputs`]; results
//! checked by [`compare`], [`rest`] and [`schema`]), and [`report`] prints summaries, writes the
//! JSON results and keeps the known-failures ratchet.

pub mod compare;
pub mod expand;
pub mod inputs;
pub mod json;
pub mod loader;
pub mod model;
pub mod report;
pub mod rest;
pub mod run;
pub mod schema;
pub mod sr;
pub mod worker;

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Everything matched (an error case: the error came at the right statement).
    Pass,
    /// Something differed.
    Fail,
    /// The case ran out of time.
    Timeout,
    /// The worker process died.
    Crash,
}

impl Status {
    /// `pass`, `fail`, `timeout` or `crash`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Timeout => "timeout",
            Status::Crash => "crash",
        }
    }

    /// The status with this name (unknown names are crashes).
    pub fn from_name(s: &str) -> Status {
        match s {
            "pass" => Status::Pass,
            "fail" => Status::Fail,
            "timeout" => Status::Timeout,
            _ => Status::Crash,
        }
    }
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// How it ended.
    pub status: Status,
    /// Why it did not pass (one line; empty when it passed).
    pub reason: String,
    /// For error cases that raised an error: whether the expected message was a substring.
    pub message_matched: Option<bool>,
    /// For error cases: the error Eddy raised.
    pub error: Option<String>,
    /// Wall time.
    pub millis: u64,
}

/// Why a case did not pass, on its way out of the runner.
pub struct Failure {
    /// `Fail` or `Timeout`.
    pub status: Status,
    /// Why.
    pub reason: String,
}

impl Failure {
    /// A plain failure.
    pub fn fail(reason: impl Into<String>) -> Failure {
        Failure { status: Status::Fail, reason: reason.into() }
    }
}
