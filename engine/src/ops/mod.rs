//! Built-in operators, one per file.

pub mod collect;
pub mod filter;
pub mod project;
pub mod sink;

pub use collect::CollectOp;
pub use filter::FilterOp;
pub use project::ProjectOp;
pub use sink::SinkOp;
