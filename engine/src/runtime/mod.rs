//! The runtime: tasks on threads, the checkpoint coordinator, and the [`Engine`] that owns them.

mod checkpoint;
mod engine;
mod pausing_log;
pub mod keys;
mod query;
mod signal;
mod source;
mod task;

pub use engine::{Engine, EngineConfig, OffsetReset, StartOptions};
pub use query::{QueryInfo, QueryState};
pub use source::headers_type;
