//! Why the server refused to start or a request failed.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors of the server: at start-up (addresses, credentials) and per request.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// An address given on the command line does not parse or resolve.
    #[error("invalid listen address \"{addr}\"")]
    Address {
        /// The address as given.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A non-loopback listen address without credentials.
    #[error(
        "refusing to listen on {addr} (not a loopback address) without authentication: \
         pass --credentials FILE (lines user:password) or set EDDY_USER and EDDY_PASSWORD"
    )]
    Unauthenticated {
        /// The address.
        addr: SocketAddr,
    },
    /// The credentials file cannot be read or has no valid line.
    #[error("invalid credentials file {}: {reason}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The request is malformed (bad JSON, missing field, wrong statement kind).
    #[error("{0}")]
    BadRequest(String),
    /// The request body or a statement is over its size limit.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What ("request body", "statement").
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A statement failed.
    #[error("{message}")]
    Statement {
        /// The statement.
        statement: String,
        /// The error chain.
        message: String,
    },
    /// The server is stopping, or a worker failed.
    #[error("{0}")]
    Unavailable(String),
}

impl ServerError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            ServerError::BadRequest(_) | ServerError::Statement { .. } => 400,
            ServerError::TooLarge { .. } => 413,
            ServerError::Unavailable(_) => 503,
            _ => 500,
        }
    }

    /// ksqlDB's error code for this error (HTTP status * 100 + detail).
    pub fn code(&self) -> u32 {
        match self {
            ServerError::Statement { .. } => 40001,
            other => other.status() as u32 * 100,
        }
    }

    /// A statement's failure, with its error chain.
    pub fn statement(statement: &str, e: &planner::PlanError) -> ServerError {
        ServerError::Statement { statement: statement.to_string(), message: engine::error_chain(e) }
    }
}
