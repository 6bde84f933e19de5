//! Per-task commits for logs that cannot be cut back (Kafka): the runtime seam between the engine
//! and a backend that makes each task's checkpoint one atomic unit of its own.
//!
//! On the embedded log, exactly-once comes from one global checkpoint (state, source offsets and
//! sink positions in one RocksDB write) and recovery cutting sink output written after it. Kafka
//! cannot cut a partition's tail, so there each task commits for itself: its outputs, its state
//! changes (as changelog records) and its input offsets go into one Kafka transaction per epoch,
//! and only after that transaction committed is the same state batch written to the local
//! RocksDB, so that local state is never ahead of Kafka. A backend provides this through
//! [`TaskCommitters`]; the engine calls it at these points of a task's life:
//!
//! 1. before the task's start offsets are read: [`TaskCommitter::restore`] brings the local state
//!    up to what the backend committed (a changelog replay), and fences earlier owners;
//! 2. while it runs: its sinks, dead-letter and late-data records go to [`TaskCommitter::output`];
//! 3. at each checkpoint barrier: [`TaskCommitter::commit`] with the epoch's state batch and the
//!    next offset of each input partition;
//! 4. when it stops without a checkpoint: [`TaskCommitter::abort`].
//!
//! The global checkpoint still paces the epochs (every task commits when the coordinator asks),
//! so pull queries and `Engine::checkpoint` mean the same as on the embedded log.

use std::sync::Arc;
use std::time::Duration;

use storage::{KvStore, Offset, StateBatch, TopicLog};

use crate::error::Result;
use crate::operator::TaskInfo;
use crate::spec::QuerySpec;
use crate::types::Epoch;

/// What a query asks of its commits (`processing.guarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessingGuarantee {
    /// Exactly-once where the backend can (transactions), else at-least-once.
    #[default]
    Default,
    /// Exactly-once; refused where the backend cannot.
    ExactlyOnce,
    /// At-least-once: the same epochs without transactions (a crash may repeat output).
    AtLeastOnce,
}

impl ProcessingGuarantee {
    /// Parses ksqlDB's values (`exactly_once`, `exactly_once_v2`, `at_least_once`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "exactly_once" | "exactly_once_v2" | "exactly_once_beta" => Some(ProcessingGuarantee::ExactlyOnce),
            "at_least_once" => Some(ProcessingGuarantee::AtLeastOnce),
            _ => None,
        }
    }
}

/// Why a task's commit failed, by what the task must do next.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another instance owns the task now: stop without writing anything more.
    #[error("task {task} was fenced: another instance owns it now")]
    Fenced {
        /// `query/subtopology/partition`.
        task: String,
    },
    /// The epoch cannot commit: abort it and start the task over from its last commit.
    #[error("the epoch of task {task} must be aborted")]
    Abortable {
        /// `query/subtopology/partition`.
        task: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Anything else (the query fails with it).
    #[error(transparent)]
    Other(#[from] crate::error::EngineError),
}

/// What [`TaskCommitter::restore`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Changelog records applied to the local state.
    pub records: u64,
    /// Milliseconds it took.
    pub millis: u64,
}

/// How far a task's restore from its changelog has come, shared with whoever shows it (SHOW
/// QUERIES): changelog offsets from `start` to `end`, now at `at` (offsets, not records: a
/// changelog's offsets have gaps).
#[derive(Debug, Default)]
pub struct RestoreProgress {
    /// Where the restore began.
    pub start: std::sync::atomic::AtomicI64,
    /// Where it is.
    pub at: std::sync::atomic::AtomicI64,
    /// Where it ends (the changelog's end when it began).
    pub end: std::sync::atomic::AtomicI64,
}

/// One task's side of per-task commits.
pub trait TaskCommitter: Send {
    /// The log the task's sinks and fault topics write to: appends land in the open epoch.
    fn output(&self) -> Arc<dyn TopicLog>;

    /// Brings the task's local state up to what the backend has committed and fences earlier
    /// owners of the task. Called once, before the task reads its start offsets from `state`.
    fn restore(&mut self, state: &dyn KvStore) -> Result<RestoreReport>;

    /// Where [`Self::restore`] reports its progress while it runs, if it does.
    fn restore_progress(&self) -> Option<Arc<RestoreProgress>> {
        None
    }

    /// Commits the epoch: the task's outputs since the last commit, `batch` (its state writes and
    /// next input offsets), and `inputs` (the next offset of each input partition) become
    /// durable together, then `batch` is written to `state`. After an error nothing of the
    /// epoch is visible.
    fn commit(&mut self, epoch: Epoch, batch: &StateBatch, inputs: &[(String, u32, Offset)], state: &dyn KvStore) -> Result<(), CommitError>;

    /// Drops the open epoch (its outputs never become visible to `read_committed` readers).
    fn abort(&mut self);
}

/// A change of which input partitions of a query this instance owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// These (topic, partition)s are now this instance's.
    Assigned(Vec<(String, u32)>),
    /// These are not any more: the tasks reading them must stop without committing.
    Revoked(Vec<(String, u32)>),
}

/// This instance's place in the group of instances that share a query's tasks (a Kafka consumer
/// group): which input partitions are its own.
pub trait QueryMembership: Send {
    /// Serves the group protocol for up to `timeout` and returns the ownership changes, in order.
    fn poll(&mut self, timeout: Duration) -> Result<Vec<Ownership>>;
    /// One step of waiting until this instance's copies of the tasks running elsewhere reflect
    /// every record their inputs held when the wait began (`begin`: a new wait starts now): applies
    /// what their changelogs have and says whether they are there. Called repeatedly, briefly each
    /// time, so that the group keeps being served between steps. Default: nothing to wait for.
    fn catch_up_step(&mut self, _begin: bool) -> Result<bool> {
        Ok(true)
    }
    /// The tasks this instance owns now (their input partitions are all assigned here).
    fn local_tasks(&self) -> Vec<(usize, u32)> {
        Vec::new()
    }
    /// Leaves the group.
    fn leave(&mut self);
}

/// Makes the committers of a backend with per-task commits.
pub trait TaskCommitters: Send + Sync {
    /// Gets a persistent query's backend resources ready (changelog topics) before its tasks
    /// start; `partitions[s]` is the number of tasks of sub-topology `s`.
    fn prepare(&self, spec: &QuerySpec, partitions: &[u32], guarantee: ProcessingGuarantee) -> Result<()>;

    /// The committer of one task, whose sources read `sources` (in the order of the task's
    /// source nodes) at the task's partition.
    fn task(&self, info: &TaskInfo, sources: &[String], guarantee: ProcessingGuarantee) -> Result<Box<dyn TaskCommitter>>;

    /// Deletes what [`TaskCommitters::prepare`] made, when the query is dropped with its state.
    fn forget(&self, query_id: &str);

    /// The guarantee a query gets when it asks for `asked` (`Default` resolved), or an error when
    /// the backend cannot give it.
    fn resolve(&self, asked: ProcessingGuarantee) -> Result<ProcessingGuarantee>;

    /// Joins the group of instances that share a persistent query's tasks; `layout[s]` is
    /// sub-topology s's source topics and partition count; `state` is this instance's store (for
    /// copies of the tasks that run elsewhere). `None`: this instance runs every task.
    fn join(
        &self,
        spec: &QuerySpec,
        layout: &[(Vec<String>, u32)],
        guarantee: ProcessingGuarantee,
        state: Arc<dyn KvStore>,
    ) -> Result<Option<Box<dyn QueryMembership>>>;
}
