//! Repartitioning through an internal topic, as ksqlDB does before a GROUP BY or a join whose
//! input is not partitioned by its key: a sink writes the rows keyed by their first columns to
//! `_eddy_<query>_..._repartition`, and the next sub-topology reads them back from it.

use datafusion::arrow::datatypes::{Field, Fields};
use engine::format::FormatSpec;
use engine::spec::{SinkKind, SinkSpec, SourceColumn, SourceKind, SourceSpec};

/// The formats and kind of an internal topic.
#[derive(Debug, Clone, Copy)]
pub struct TopicFormat {
    /// Format of the key columns.
    pub key: FormatSpec,
    /// Format of the value columns.
    pub value: FormatSpec,
    /// How the next sub-topology reads it.
    pub kind: SourceKind,
}

/// The sink writing and the source reading `topic`, whose records carry `fields`: the first
/// `keys` in the key, the others in the value.
pub fn topic_specs(topic: &str, fields: &[Field], keys: usize, format: TopicFormat) -> (SinkSpec, SourceSpec) {
    let key_fields: Fields = fields[..keys].iter().cloned().collect();
    let value_fields: Fields = fields[keys..].iter().cloned().collect();
    let values = fields.len() - keys;
    let sink = SinkSpec {
        topic: topic.to_string(),
        kind: SinkKind::Stream,
        key_format: format.key,
        value_format: format.value,
        key_columns: (0..keys).collect(),
        value_columns: (keys..keys + values).collect(),
        key_fields: key_fields.clone(),
        value_fields: value_fields.clone(),
        window: None,
        append: true,
        materialize: None,
        internal: true,
    };
    let source = SourceSpec {
        topic: topic.to_string(),
        kind: format.kind,
        key_format: format.key,
        value_format: format.value,
        key_fields,
        value_fields,
        columns: (0..keys).map(SourceColumn::Key).chain((0..values).map(SourceColumn::Value)).collect(),
        timestamp: None,
        window: None,
        internal: true,
        error_topic: None,
        late_topic: None,
    };
    (sink, source)
}
