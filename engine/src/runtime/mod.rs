//! The runtime: tasks on threads, the checkpoint coordinator, the background cleaner
//! (retention and compaction), and the [`Engine`] that owns them.

mod checkpoint;
pub mod commit;
mod engine;
mod health;
mod pausing_log;
mod plans;
pub mod keys;
mod query;
mod retention;
mod signal;
mod source;
mod start;
mod task;
mod task_thread;

pub use commit::{CommitError, Ownership, ProcessingGuarantee, QueryMembership, RestoreProgress, RestoreReport, TaskCommitter, TaskCommitters};
pub use engine::{Engine, EngineConfig, OffsetReset, StartOptions};
pub use health::CheckpointHealth;
pub use query::{NodeStats, QueryInfo, QueryState, TaskStatus};
pub use retention::{CleanerStats, CleanupStatus};
pub use source::headers_type;
