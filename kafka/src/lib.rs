//! Eddy over Apache Kafka: topics in Kafka instead of the embedded log.
//!
//! - [`client`]: the Kafka operations Eddy uses, as traits ([`Cluster`], [`Producer`],
//!   [`PartitionReader`], [`GroupConsumer`]), so that tests can put an in-process fake with
//!   Kafka's semantics where the real client runs;
//! - [`rd`]: those traits over librdkafka;
//! - [`log`]: [`KafkaLog`], the engine's topic log over Kafka topics;
//! - [`commit`]: [`KafkaCommitters`], per-task epochs as Kafka transactions with changelog
//!   topics for the state, and [`txn_log`], the log a task's outputs go to.
//!
//! Only the `eddy` binary links this crate (and with it librdkafka); the engine knows Kafka only
//! through the traits it defines.

pub mod changelog;
pub mod client;
pub mod commit;
pub mod error;
pub mod fake;
pub mod log;
mod membership;
pub mod rd;
mod standby;
pub mod txn_log;

pub use client::{Cluster, Fetched, GroupConsumer, GroupEvent, GroupMeta, GroupOptions, PartitionReader, Polled, Producer, ProducerOptions, TopicMeta, Tp};
pub use error::{KafkaError, Result};
pub use commit::KafkaCommitters;
pub use log::{KafkaLog, Names};
pub use rd::RdCluster;
