//! The engine's error type.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Errors of the runtime: operators, sources, sinks, checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// An operator failed; the source says why.
    #[error("operator {op} failed")]
    Operator {
        /// Operator name.
        op: &'static str,
        /// The cause.
        #[source]
        source: Box<EngineError>,
    },
    /// The topic log or the state store failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// An Arrow kernel failed.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// Evaluating an expression failed.
    #[error("expression evaluation failed")]
    Expr(#[source] DataFusionError),
    /// A record format could not be set up for a schema.
    #[error("cannot use format for topic \"{topic}\"")]
    Format {
        /// Topic whose format failed.
        topic: String,
        /// The cause.
        #[source]
        source: crate::format::FormatError,
    },
    /// Encoding output records failed.
    #[error("cannot encode records for topic \"{topic}\"")]
    Encode {
        /// Topic written to.
        topic: String,
        /// The cause.
        #[source]
        source: crate::format::EncodeError,
    },
    /// A query with this id is not running.
    #[error("unknown query \"{0}\"")]
    UnknownQuery(String),
    /// A query with this id is already running.
    #[error("query \"{0}\" is already running")]
    QueryExists(String),
    /// Sources of one sub-topology have different partition counts.
    #[error("topics {topics} must have the same number of partitions to be read together")]
    PartitionMismatch {
        /// The topics and their partition counts.
        topics: String,
    },
    /// Waiting for queries to catch up took too long.
    #[error("timed out after {ms} ms waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        ms: u64,
    },
    /// The state store holds data this version cannot read.
    #[error("corrupt state for {what}")]
    CorruptState {
        /// Which state.
        what: String,
    },
    /// The schema registry could not be opened.
    #[error("cannot open the schema registry: {0}")]
    Registry(String),
    /// A query's stored plan is in a format this release cannot read.
    #[error(
        "the plan of query \"{query}\" was stored in plan format {version}, which this release cannot read (it reads up to {}): \
         run it with the release that wrote it, or TERMINATE it and create it again",
        crate::plan_data::PLAN_FORMAT_VERSION
    )]
    PlanVersion {
        /// The query.
        query: String,
        /// The stored format.
        version: u32,
    },
    /// The plan a query is started with does not fit the state it left.
    #[error(
        "query \"{query}\" cannot resume its state: this release plans it differently ({why}); \
         run it with the release that wrote it, or TERMINATE it and create it again"
    )]
    PlanChanged {
        /// The query.
        query: String,
        /// What differs.
        why: String,
    },
    /// A query's stored plan cannot be parsed.
    #[error("the stored plan of query \"{query}\" cannot be read: {reason}")]
    PlanUnreadable {
        /// The query.
        query: String,
        /// The parse error.
        reason: String,
    },
    /// The cleaner cannot tell which input a query that does not run still needs.
    #[error(
        "no topic is cleaned: query \"{query}\" does not run and has checkpointed offsets, but {why}; \
         start it or TERMINATE it"
    )]
    CleanerBlocked {
        /// The query.
        query: String,
        /// Why its input is unknown.
        why: String,
    },
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
}

impl From<DataFusionError> for EngineError {
    fn from(e: DataFusionError) -> Self {
        EngineError::Expr(e)
    }
}

/// Result with [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The message of an error and its causes, joined with ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
