//! Built-in operators, one per file.

pub mod aggregate;
pub mod collect;
pub mod explode;
pub mod filter;
pub mod join;
pub mod materialize;
pub mod project;
pub mod sink;

pub use collect::CollectOp;
pub use explode::ExplodeOp;
pub use aggregate::AggregateOp;
pub use filter::FilterOp;
pub use join::{ForeignKeyJoinOp, StreamStreamJoinOp, StreamTableJoinOp, TableTableJoinOp};
pub use materialize::MaterializeOp;
pub use project::ProjectOp;
pub use sink::SinkOp;
