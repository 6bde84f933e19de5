//! One input of a binary join: a source read with its columns renamed `<alias>_<column>`, or
//! the result of the joins so far; and the projection that puts a side's join keys first,
//! repartitioning it by them through an internal topic when it is not partitioned by them.

use std::collections::HashMap;

use datafusion::arrow::datatypes::{Field, SchemaRef};
use datafusion::common::DFSchema;
use engine::format::FormatSpec;
use engine::spec::{OpSpec, SourceKind};
use engine::types::OpId;

use super::super::context::{column_ref, PlanContext, Projection};
use super::super::pipeline::{batch_schema, user_fields, Pipeline};
use super::super::repartition::{topic_specs, TopicFormat};
use super::super::source::plan_source;
use crate::ast::SourceType;
use crate::binder::{Binder, Scope, ScopeColumn, Typed};
use crate::catalog::SourceDef;
use crate::error::Result;

/// One input of the join chain as it stands.
pub struct Side {
    /// Columns in scope (qualified by source alias) and their fields in `schema`.
    pub scope: Scope,
    /// Batch schema of the side's last node (user columns, `_ts`, `_op`).
    pub schema: SchemaRef,
    /// Last node of the side in the current sub-topology.
    pub tail: OpId,
    /// Stream or table.
    pub kind: SourceType,
    /// Partitions of the topic the side is read from.
    pub partitions: u32,
    /// The expressions (normalised text) the side is partitioned by.
    pub partitioned_by: Vec<String>,
    /// Names of the sources in the side.
    pub names: Vec<String>,
    /// Primary key columns (normalised text) of a table side.
    pub primary_key: Vec<String>,
    /// The key format whose bytes decide the side's partitions (murmur2): a repartition of the
    /// other side must encode its keys the same way to land in the same partitions.
    pub key_format: FormatSpec,
    /// The names `key_format` writes the key columns under (a registered Avro record or
    /// Protobuf message finds its fields by name).
    pub key_names: Vec<String>,
}

/// How a side is to be keyed for its join.
pub struct Keying<'a> {
    /// Binds over the side as it was before keying.
    pub binder: &'a Binder<'a>,
    /// The join key expressions, cast to their common types.
    pub keys: &'a [Typed],
    /// Whether the side must be repartitioned by them.
    pub repartition: bool,
    /// Partitions of the repartition topic.
    pub partitions: u32,
    /// Key format of the repartition topic.
    pub key_format: FormatSpec,
    /// The names the other side's key format writes its key columns under: a repartition
    /// with a registered schema writes the join keys under them, as Kafka Streams serializes a
    /// foreign key with the other table's key serde, so that equal keys are equal bytes.
    pub key_names: &'a [String],
    /// The repartition topic is `_eddy_<topic_base>_repartition`.
    pub topic_base: String,
}

/// Reads a source into the current sub-topology, its columns named `<alias>_<column>`.
pub fn source_side(cx: &PlanContext<'_>, p: &mut Pipeline, def: &SourceDef, alias: &str) -> Result<Side> {
    let src = plan_source(def, alias, cx.offsets, cx.catalog, cx.functions)?;
    let source = p.push_node(OpSpec::Source(src.spec.clone()), src.schema.clone(), vec![]);
    // Rename to qualified fields and keep each row's own event time as <alias>_ROWTIME.
    let binder = cx.binder(&src.scope, &src.schema)?;
    let mut scope = Scope::default();
    let mut out = Projection::default();
    for c in &src.scope.columns {
        let field = format!("{alias}_{}", c.name);
        out.internal(Field::new(&field, c.data_type.clone(), true), &column_ref(&c.field, c.data_type.clone()), &binder.schema)?;
        scope.columns.push(ScopeColumn { qualifier: Some(alias.to_string()), name: c.name.clone(), field, data_type: c.data_type.clone() });
    }
    let (op, schema) = out.into_node();
    let tail = p.push_node(op, schema.clone(), vec![source]);
    let keys: Vec<String> = def.key_columns().map(|c| format!("{alias}_{}", c.name)).collect();
    Ok(Side {
        scope,
        schema,
        tail,
        kind: def.source_type,
        partitions: def.partitions,
        partitioned_by: keys.clone(),
        names: vec![def.name.clone()],
        primary_key: if def.source_type == SourceType::Table { keys } else { Vec::new() },
        key_format: def.key_format,
        key_names: def.key_columns().map(|c| c.name.clone()).collect(),
    })
}

/// How a repartition renumbered the nodes that stayed in the current sub-topology: old -> new.
pub type Renumbering = HashMap<u32, u32>;

/// Adds the join key columns to a side (first), repartitioning it by them when needed; returns
/// the key column indices in the side's new schema and, after a repartition, how the nodes that
/// stayed in the current sub-topology were renumbered.
pub fn keyed(p: &mut Pipeline, side: &mut Side, how: Keying<'_>, counter: &mut usize) -> Result<(Vec<usize>, Option<Renumbering>)> {
    let mut out = Projection::default();
    let mut fields = Vec::new();
    for k in how.keys {
        *counter += 1;
        let f = Field::new(format!("_k{counter}"), k.dt.clone(), true);
        fields.push(f.clone());
        out.internal(f, k, &how.binder.schema)?;
    }
    for f in user_fields(&side.schema) {
        let t = column_ref(f.name(), f.data_type().clone());
        fields.push(f.clone());
        out.internal(f, &t, &how.binder.schema)?;
    }
    let k = how.keys.len();
    let (op, schema) = out.into_node();
    let tail = p.push_node(op, schema.clone(), vec![side.tail]);
    side.schema = schema.clone();
    side.tail = tail;
    if !how.repartition {
        return Ok(((0..k).collect(), None));
    }
    let topic = format!("_eddy_{}_repartition", how.topic_base);
    // Keys are encoded like the other side's, so equal keys land in equal partitions.
    let key_fields: datafusion::arrow::datatypes::Fields = fields[..k].iter().cloned().collect();
    let key_format = if engine::format::check_columns(&how.key_format, engine::format::Role::Key, &key_fields).is_ok() {
        how.key_format
    } else {
        FormatSpec::json()
    };
    let kind = if side.kind == SourceType::Table { SourceKind::Table } else { SourceKind::Stream };
    side.key_format = key_format;
    // With a registered schema the keys are written under the other side's key names; the
    // side reads them back under its own.
    let renamed = key_format.schema_id.is_some() && how.key_names.len() == k;
    let topic_fields: Vec<Field> = if renamed {
        let keys = fields[..k].iter().zip(how.key_names).map(|(f, n)| f.clone().with_name(n.as_str()));
        keys.chain(fields[k..].iter().cloned()).collect()
    } else {
        fields.clone()
    };
    side.key_names = topic_fields[..k].iter().map(|f| f.name().clone()).collect();
    let (sink, source) = topic_specs(&topic, &topic_fields, k, TopicFormat { key: key_format, value: FormatSpec::json(), kind });
    let map = p.cut(tail, OpSpec::Sink(sink));
    if renamed {
        let read = batch_schema(topic_fields.clone());
        let source = p.push_node(OpSpec::Source(source), read.clone(), vec![]);
        let input = DFSchema::try_from(read.as_ref().clone()).expect("a batch schema has unique names");
        let mut back = Projection::default();
        for (f, t) in fields.iter().zip(&topic_fields) {
            back.internal(f.clone(), &column_ref(t.name(), t.data_type().clone()), &input)?;
        }
        let (op, schema) = back.into_node();
        side.tail = p.push_node(op, schema, vec![source]);
    } else {
        side.tail = p.push_node(OpSpec::Source(source), schema, vec![]);
    }
    p.internal_topics.push((topic, how.partitions));
    side.partitions = how.partitions;
    Ok(((0..k).collect(), Some(map)))
}
