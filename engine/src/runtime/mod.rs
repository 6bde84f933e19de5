//! The runtime: tasks on threads, the checkpoint coordinator, the background cleaner
//! (retention and compaction), and the [`Engine`] that owns them.

mod checkpoint;
mod engine;
mod health;
mod pausing_log;
mod plans;
pub mod keys;
mod query;
mod retention;
mod signal;
mod source;
mod task;

pub use engine::{Engine, EngineConfig, OffsetReset, StartOptions};
pub use health::CheckpointHealth;
pub use query::{QueryInfo, QueryState};
pub use retention::{CleanerStats, CleanupStatus};
pub use source::headers_type;
