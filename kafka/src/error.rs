//! Errors of the Kafka backend, classified the way the runtime must react to them.

use std::time::Duration;

/// What went wrong talking to Kafka.
///
/// The runtime's reaction depends on the class: [`KafkaError::Retriable`] is tried again,
/// [`KafkaError::Abortable`] aborts the open transaction and reloads the task,
/// [`KafkaError::Fenced`] drops the task without writing anything more (another instance owns it
/// now), and the rest are reported to the user.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// No broker answered.
    #[error("cannot reach the Kafka brokers at {bootstrap}: {message}")]
    Unreachable {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// The client's message.
        message: String,
    },
    /// A topic the operation needs does not exist.
    #[error("unknown Kafka topic \"{0}\"")]
    UnknownTopic(String),
    /// A topic to create exists already.
    #[error("Kafka topic \"{0}\" exists already")]
    TopicExists(String),
    /// The broker refused to create a topic or change its configuration.
    #[error("cannot create Kafka topic \"{topic}\": {message}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's reason.
        message: String,
    },
    /// The broker does not serve transactions (exactly-once needs them).
    #[error("the Kafka broker at {bootstrap} refuses transactions ({message}); use processing.guarantee 'at_least_once' or a broker with transactions")]
    TransactionsUnsupported {
        /// The bootstrap servers.
        bootstrap: String,
        /// The broker's answer.
        message: String,
    },
    /// Another producer with the same transactional id (or a newer consumer group generation)
    /// has taken over: this one must stop writing.
    #[error("producer \"{transactional_id}\" was fenced: another instance owns its task now")]
    Fenced {
        /// The transactional id.
        transactional_id: String,
    },
    /// The open transaction cannot commit and must be aborted; the task then starts over from its
    /// last committed epoch.
    #[error("transaction of \"{transactional_id}\" must be aborted: {message}")]
    Abortable {
        /// The transactional id.
        transactional_id: String,
        /// Why.
        message: String,
    },
    /// A temporary failure: the same call may succeed later.
    #[error("{operation} failed for now: {message}")]
    Retriable {
        /// What was being done.
        operation: String,
        /// The client's message.
        message: String,
    },
    /// A record is larger than the broker accepts.
    #[error("a record of {bytes} bytes for Kafka topic \"{topic}\" is larger than the broker accepts")]
    RecordTooLarge {
        /// The topic.
        topic: String,
        /// The record's size.
        bytes: usize,
    },
    /// An operation did not finish in time.
    #[error("{operation} timed out after {:?}", timeout)]
    Timeout {
        /// What was being done.
        operation: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// Any other failure of the client or the broker.
    #[error("{operation} failed: {message}")]
    Other {
        /// What was being done.
        operation: String,
        /// The client's message.
        message: String,
    },
}

impl KafkaError {
    /// An [`KafkaError::Other`] for `operation`.
    pub fn other(operation: impl Into<String>, message: impl ToString) -> Self {
        KafkaError::Other { operation: operation.into(), message: message.to_string() }
    }

    /// True when retrying the same call may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, KafkaError::Retriable { .. } | KafkaError::Timeout { .. } | KafkaError::Unreachable { .. })
    }

    /// True when the producer lost its task to another instance.
    pub fn is_fenced(&self) -> bool {
        matches!(self, KafkaError::Fenced { .. })
    }
}

impl From<KafkaError> for storage::StorageError {
    fn from(e: KafkaError) -> Self {
        match e {
            KafkaError::UnknownTopic(t) => storage::StorageError::UnknownTopic { topic: t },
            KafkaError::TopicExists(t) => storage::StorageError::TopicExists { topic: t },
            e => storage::StorageError::Backend { source: Box::new(e) },
        }
    }
}

/// Results of this crate.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;
