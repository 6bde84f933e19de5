//! The Eddy planner: parses ksqlDB's SQL, keeps the catalog (a command log), plans queries into
//! engine DAGs, and offers the [`Session`] API that every client uses.

pub mod ast;
pub mod binder;
pub mod catalog;
pub mod error;
pub mod functions;
pub mod parser;
pub mod plan;
pub mod session;
pub mod types;

pub use error::{PlanError, Result};
pub use session::{Eddy, OpenOptions, Output, PushQuery, RowSet, Session};
