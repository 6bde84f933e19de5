//! The Eddy runtime: continuous operator DAGs over Arrow record batches.
//!
//! The planner hands over a [`spec::QuerySpec`] (plain data, expressions as DataFusion
//! `PhysicalExpr`s); the [`runtime::Engine`] runs each sub-topology as one task per input
//! partition, on its own thread. Sources decode topic records into batches, operators transform
//! them, sinks encode and append. Watermarks (stream time) and checkpoint barriers flow through the
//! tasks; a checkpoint commits operator state, source offsets and sink positions together.

pub mod batch;
pub mod error;
pub mod expr;
pub mod format;
pub mod key_filter;
pub mod materialized;
pub mod nexmark;
pub mod operator;
pub mod plan_data;
pub mod ops;
pub mod processing_log;
pub mod registry;
pub mod runtime;
pub mod spec;
pub mod state_cache;
pub mod testing;
pub mod types;
pub mod write_buffer;

pub use error::{error_chain, EngineError, Result};
pub use runtime::{CheckpointHealth, CleanerStats, CleanupStatus, Engine, EngineConfig, OffsetReset, QueryInfo, QueryState, StartOptions};
