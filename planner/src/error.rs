//! The planner's error type: what a user sees when a statement is refused.

use datafusion::error::DataFusionError;

/// Why a statement could not be parsed, planned or executed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The SQL text does not parse.
    #[error("{0}")]
    Parse(String),
    /// A stream, table, topic, column, function, query or type does not exist.
    #[error("unknown {kind} \"{name}\"")]
    UnknownObject {
        /// What kind of object, e.g. "stream".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A name is taken already.
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists {
        /// What kind of object.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The statement is valid SQL but not meaningful here (types, clauses, options).
    #[error("{0}")]
    Invalid(String),
    /// A feature that is not supported (yet).
    #[error("{feature} is not supported")]
    Unsupported {
        /// The feature.
        feature: String,
    },
    /// DataFusion refused an expression.
    #[error("{0}")]
    DataFusion(#[source] DataFusionError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The log or state store failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// A record of the command log cannot be read or replayed: the start stops rather than lose
    /// what it defined.
    #[error(
        "record {offset} of the command log (topic \"_eddy_commands\") {reason}: {record}; \
         start with --skip-damaged-commands to start without it (what it defined is then missing)"
    )]
    DamagedCommand {
        /// Offset of the record in the command topic.
        offset: i64,
        /// What is wrong with it.
        reason: String,
        /// The record (or its statement), shortened.
        record: String,
    },
    /// A persistent query of the catalog cannot start again after a restart.
    #[error(
        "persistent query \"{query}\" cannot be started; start with --skip-damaged-commands to start \
         without it (its state is kept)"
    )]
    QueryStart {
        /// The query.
        query: String,
        /// Why.
        #[source]
        source: Box<PlanError>,
    },
    /// The state store cannot be opened (damaged or not a database): says which persistent
    /// queries keep state there and how to rebuild it from the topics.
    #[error(
        "the state store at {} is damaged or unreadable; it holds the state and checkpoints of {}. \
         To rebuild that state from the topics: stop eddy, move {} aside (keep it for inspection), start eddy again, \
         then for each of these queries drop its output and create it again from the beginning \
         (DROP STREAM|TABLE <name> DELETE TOPIC; SET 'auto.offset.reset'='earliest'; CREATE ... AS SELECT ...), \
         so that it reprocesses its input topics",
        path.display(),
        if queries.is_empty() { "no persistent query".to_string() } else { format!("the persistent queries {}", queries.join(", ")) },
        path.display()
    )]
    StateDamaged {
        /// The state directory.
        path: std::path::PathBuf,
        /// Ids of the persistent queries defined in the command log.
        queries: Vec<String>,
        /// What RocksDB said.
        #[source]
        source: storage::StorageError,
    },
}

impl From<DataFusionError> for PlanError {
    fn from(e: DataFusionError) -> Self {
        PlanError::DataFusion(e)
    }
}

impl From<datafusion::sql::sqlparser::parser::ParserError> for PlanError {
    fn from(e: datafusion::sql::sqlparser::parser::ParserError) -> Self {
        let m = e.to_string();
        let m = m.strip_prefix("sql parser error: ").unwrap_or(&m).to_string();
        PlanError::Parse(m)
    }
}

impl From<datafusion::arrow::error::ArrowError> for PlanError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        PlanError::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}

/// Shorthand for an [`PlanError::Invalid`] error.
pub fn invalid(msg: impl Into<String>) -> PlanError {
    PlanError::Invalid(msg.into())
}

/// Result with [`PlanError`].
pub type Result<T, E = PlanError> = std::result::Result<T, E>;
