//! Newtypes for ids and times, and the internal columns every batch carries.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventTime(pub i64);

/// A checkpoint number; grows by one per checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch(pub u64);

/// Index of an operator node inside a [`crate::spec::DagSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub u32);

/// A state table of an operator, assigned by the planner; unique within a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableId(pub u32);

/// Stream time: the largest event time seen. Monotone per edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Watermark(pub EventTime);

/// Name of the trailing internal column holding each row's event time (Int64 ms).
pub const TS_COLUMN: &str = "_ts";
/// Name of the trailing internal column holding each row's change kind (Int8, see [`RowOp`]).
pub const OP_COLUMN: &str = "_op";
/// Name of an optional internal column (before `_ts`) holding each row's record headers, as
/// `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`: a source adds it to forward its records' headers,
/// and a sink writes it as the headers of the records it appends (as Kafka Streams forwards
/// the input record's headers).
pub const HEADERS_COLUMN: &str = "_headers";
/// Field metadata key holding the name a user knows an internal column by (the GROUP BY or
/// aggregate-argument expression behind `_g0`, `_a0`, ...), used where rows leave the engine as
/// they are, as on a late-data topic.
pub const DISPLAY_NAME_KEY: &str = "eddy.display_name";

/// What a row of a batch means. Streams carry `Insert` (and `Delete` for a record whose value is
/// null); table changelogs carry all four, as in Flink's RowKind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum RowOp {
    /// A new event, or an upsert of a table row.
    Insert = 0,
    /// The old value of a table row that is being updated (for retractions).
    UpdateBefore = 1,
    /// The new value of a table row that is being updated.
    UpdateAfter = 2,
    /// A table row deleted (a tombstone), or a stream record with a null value.
    Delete = 3,
}

impl RowOp {
    /// The op for a code in the `_op` column.
    pub fn from_code(code: i8) -> RowOp {
        match code {
            1 => RowOp::UpdateBefore,
            2 => RowOp::UpdateAfter,
            3 => RowOp::Delete,
            _ => RowOp::Insert,
        }
    }

    /// True for the ops that add a row (`Insert`, `UpdateAfter`).
    pub fn is_add(self) -> bool {
        matches!(self, RowOp::Insert | RowOp::UpdateAfter)
    }
}
