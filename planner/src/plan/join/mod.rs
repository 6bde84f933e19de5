//! The JOIN stage: `FROM a [alias] JOIN b [WITHIN ...] ON a.x = b.y [AND ...] [JOIN c ...]`.
//!
//! Each binary join (the result so far on the left, the next source on the right) gets one
//! sub-topology: both sides are projected to `[join keys, their columns, ROWTIME]` and, when a
//! side is not partitioned by its join key, repartitioned through an internal topic first. The
//! join's output columns keep ksqlDB's names: `<alias>_<column>`; a last projection adds the
//! synthetic key `_rowkey` (the join key, the non-null one for outer joins). Which column
//! becomes the result's key is the projection's choice, from the [`JoinKeys`] this stage leaves.

mod condition;
mod side;

use datafusion::arrow::datatypes::{DataType, Field};
use engine::format::FormatSpec;
use engine::spec::{JoinKindSpec, JoinSpec, JoinType, MaterializeSpec, OpSpec};
use engine::types::{OpId, TableId};

use self::condition::{bind_condition, JoinKeyExprs};
use self::side::{keyed, source_side, Keying, Side};
use super::context::{column_ref, PlanContext, Projection, Relation};
use super::names::{alias, ROWKEY, ROWTIME};
use super::pipeline::{batch_schema, user_fields, Pipeline};
use crate::ast::{Join, JoinKind, SourceType};
use crate::binder::{ScopeColumn, Typed};
use crate::catalog::{SourceDef, WindowType};
use crate::error::{invalid, PlanError, Result};

/// What the projection needs to choose the key of a join's result (from the last join).
pub struct JoinKeys {
    /// Per equality of the join condition, the plain columns (`ALIAS_COL`) that may be the
    /// key, left side first; a foreign-key join's are the left table's primary key columns.
    pub candidates: Vec<Vec<String>>,
    /// A FULL OUTER join: the key is always the synthetic one.
    pub full_outer: bool,
    /// A foreign-key join: keyed by the left table's primary key.
    pub foreign_key: bool,
    /// The synthetic key's name: `ROWKEY`, or `ROWKEY_<n>` past the largest such name in use.
    pub rowkey_name: String,
    /// The synthetic key column.
    pub rowkey: Typed,
}

/// The checks that need no planning: no self joins, no KAFKA value format.
pub fn check(cx: &PlanContext<'_>) -> Result<()> {
    let q = cx.query;
    for j in &q.joins {
        if j.source.name == q.from.name || q.joins.iter().filter(|x| x.source.name == j.source.name).count() > 1 {
            return Err(invalid(format!(
                "Can not join '{}' to '{}': self joins are not yet supported.",
                j.source.name, j.source.name
            )));
        }
    }
    let kafka: Vec<String> = std::iter::once(&q.from.name)
        .chain(q.joins.iter().map(|j| &j.source.name))
        .filter_map(|n| cx.catalog.sources.get(n))
        .filter(|d| d.value_format.kind == engine::format::FormatKind::Kafka)
        .map(|d| d.name.clone())
        .collect();
    if !kafka.is_empty() {
        return Err(invalid(format!(
            "Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.",
            kafka.join(", ")
        )));
    }
    Ok(())
}

/// Plans the FROM source and its joins, in order; the relation's scope has every source's
/// columns (qualified by alias), the synthetic key and the joined row's ROWTIME.
pub fn plan_joins(cx: &PlanContext<'_>) -> Result<(Relation, JoinKeys)> {
    let q = cx.query;
    let mut aliases = vec![alias(&q.from)];
    let mut p = Pipeline::new(SourceType::Stream, vec![cx.from.name.clone()]);
    let mut counter = 0usize;
    let mut left = source_side(cx, &mut p, cx.from, &aliases[0])?;
    let mut last: Option<KeyInfo> = None;
    for (n, j) in q.joins.iter().enumerate() {
        let def = cx.source(&j.source.name)?;
        let a = alias(&j.source);
        if aliases.contains(&a) {
            return Err(invalid(format!("Each side of the join must have a distinct name or alias: {a} is used twice")));
        }
        aliases.push(a.clone());
        p.sources.push(def.name.clone());
        let right = source_side(cx, &mut p, def, &a)?;
        let (joined, mut keys) = join_one(cx, &mut p, Binary { left, right, join: j, def, n }, &mut counter)?;
        // A join on a column the previous join's result is keyed by keeps that key: every
        // column equal to it (the previous joins' key columns too) may be the result's key.
        if let (Some(prev), false) = (&last, keys.2) {
            for c in keys.0.iter_mut() {
                if let Some(group) = prev.0.iter().find(|g| c.iter().any(|x| g.contains(x))) {
                    let mut merged = group.clone();
                    merged.extend(c.iter().filter(|x| !group.contains(x)).cloned());
                    *c = merged;
                }
            }
        }
        left = joined;
        last = Some(keys);
        p.output_type = left.kind;
    }
    let (candidates, full_outer, foreign_key, rowkey_fields) = last.ok_or_else(|| invalid("a join needs an ON condition"))?;
    with_rowkey(cx, p, left, candidates, full_outer, foreign_key, rowkey_fields)
}

/// One binary join being planned.
struct Binary<'a> {
    left: Side,
    right: Side,
    join: &'a Join,
    /// The right side's source.
    def: &'a SourceDef,
    /// Which join of the chain (0 for the first).
    n: usize,
}

/// What one join leaves for choosing the key: candidates, full outer, foreign key, and the
/// key fields of each side (for the synthetic key).
type KeyInfo = (Vec<Vec<String>>, bool, bool, (Vec<String>, Vec<String>));

/// Plans one binary join; returns the joined side.
fn join_one(cx: &PlanContext<'_>, p: &mut Pipeline, mut b: Binary<'_>, counter: &mut usize) -> Result<(Side, KeyInfo)> {
    let (join_type, kind) = join_kind(&b)?;
    let keys = bind_condition(cx, &b.join.on, &b.left, &b.right)?;
    let kind = check_keys(p, &mut b, kind, join_type, &keys)?;
    check_windows(cx, &b, &keys)?;
    let (left, right, n) = (&mut b.left, &mut b.right, b.n);
    let (lk, rk, partitions, single) = co_partition(cx, p, left, right, &keys, n, counter)?;
    let (lw, rw) = (left.schema.fields().len() - 2, right.schema.fields().len() - 2);
    let mut fields = user_fields(&left.schema);
    fields.extend(user_fields(&right.schema));
    let schema = batch_schema(fields);
    let left_primary_key: Vec<usize> = if kind == JoinKindSpec::ForeignKey {
        left.primary_key.iter().filter_map(|f| left.schema.index_of(f).ok()).collect()
    } else {
        Vec::new()
    };
    let spec = JoinSpec {
        kind,
        join_type,
        left_keys: lk.clone(),
        right_keys: rk.clone(),
        left_width: lw,
        right_width: rw,
        left_primary_key,
        table: TableId(10 + n as u32),
    };
    let node = p.push_node(OpSpec::Join(spec), schema.clone(), vec![left.tail, right.tail]);
    let mut scope = left.scope.clone();
    scope.columns.extend(right.scope.columns.clone());
    let rowkey_fields = (
        lk.iter().map(|&i| left.schema.field(i).name().clone()).collect(),
        rk.iter().map(|&i| right.schema.field(i).name().clone()).collect(),
    );
    let candidates = if kind == JoinKindSpec::ForeignKey {
        // A foreign-key join's result is keyed by the left table's primary key.
        left.primary_key.iter().map(|k| vec![k.clone()]).collect()
    } else {
        keys.plain.iter().map(|(l, r)| l.iter().chain(r.iter()).cloned().collect()).collect()
    };
    let both_tables = left.kind == SourceType::Table && right.kind == SourceType::Table;
    let right_join = join_type == JoinType::Right;
    let mut names = left.names.clone();
    names.extend(right.names.clone());
    let joined = Side {
        scope,
        schema,
        tail: node,
        kind: if both_tables { SourceType::Table } else { SourceType::Stream },
        partitions,
        partitioned_by: match (single, right_join) {
            (true, _) => Vec::new(),
            (false, true) => keys.right_texts,
            (false, false) => keys.left_texts,
        },
        names,
        primary_key: left.primary_key.clone(),
        key_format: if right_join { right.key_format } else { left.key_format },
        key_names: if right_join { right.key_names.clone() } else { left.key_names.clone() },
    };
    Ok((joined, (candidates, join_type == JoinType::Full, kind == JoinKindSpec::ForeignKey, rowkey_fields)))
}

/// The join's type and which join it is (by the kinds of its sides).
fn join_kind(b: &Binary<'_>) -> Result<(JoinType, JoinKindSpec)> {
    let join_type = match b.join.kind {
        JoinKind::Inner => JoinType::Inner,
        JoinKind::Left => JoinType::Left,
        JoinKind::Right => JoinType::Right,
        JoinKind::Full => JoinType::Full,
    };
    let no_within = || invalid("A join with a table does not support the WITHIN clause: WITHIN applies to stream-stream joins");
    let kind = match (b.left.kind, b.right.kind) {
        (SourceType::Stream, SourceType::Stream) => {
            let w = b.join.within.as_ref().ok_or_else(|| invalid("Stream-Stream joins must have a WITHIN clause specified. None was provided. To learn about how to specify a WITHIN clause with a stream-stream join, please visit: https://docs.confluent.io/current/ksql/docs/syntax-reference.html#create-stream-as-select"))?;
            JoinKindSpec::StreamStream {
                before_ms: w.before.as_millis() as i64,
                after_ms: w.after.as_millis() as i64,
                grace_ms: w.grace.map(|g| g.as_millis() as i64),
            }
        }
        (SourceType::Stream, SourceType::Table) => {
            if b.join.within.is_some() {
                return Err(no_within());
            }
            if matches!(join_type, JoinType::Right | JoinType::Full) {
                return Err(invalid(format!(
                    "{} joins between streams and tables are not supported: use INNER or LEFT",
                    if join_type == JoinType::Full { "Full outer" } else { "Right" }
                )));
            }
            JoinKindSpec::StreamTable
        }
        (SourceType::Table, SourceType::Table) => {
            if b.join.within.is_some() {
                return Err(no_within());
            }
            JoinKindSpec::TableTable
        }
        (SourceType::Table, SourceType::Stream) => {
            return Err(invalid(format!(
                "Invalid join order: table {} cannot be joined to stream {}: put the stream first (FROM stream JOIN table)",
                b.left.names.join(", "),
                b.def.name
            )))
        }
    };
    Ok((join_type, kind))
}

/// The window a side's records are keyed by: the FROM source's for the first join's left
/// side, the joined source's for a right side; a join's result is not windowed.
fn side_window<'a>(cx: &PlanContext<'a>, b: &Binary<'a>, right: bool) -> Option<(&'a SourceDef, WindowType)> {
    let def = if right { b.def } else if b.n == 0 { cx.from } else { return None };
    def.window.map(|w| (def, w))
}

/// How ksqlDB names a source's window type in its messages.
fn window_name(def: &SourceDef, w: WindowType) -> &'static str {
    match w {
        WindowType::Session => "SESSION",
        // The catalog keeps only the size: the statement says which kind of time window.
        WindowType::Time { .. } if def.sql.to_uppercase().contains("HOPPING") => "HOPPING",
        WindowType::Time { .. } => "TUMBLING",
    }
}

/// ksqlDB's rules for joining windowed sources: both sides windowed or neither, session
/// windows only with session windows, and no repartition (the join must be on both sides'
/// keys, with time windows of one size): a windowed key cannot be re-keyed.
fn check_windows(cx: &PlanContext<'_>, b: &Binary<'_>, keys: &JoinKeyExprs) -> Result<()> {
    let (l, r) = (side_window(cx, b, false), side_window(cx, b, true));
    let (ln, rn) = (b.left.names.join("_"), b.def.name.clone());
    match (l, r) {
        (None, None) => Ok(()),
        (Some((d, w)), None) | (None, Some((d, w))) => {
            let (windowed, plain) = if l.is_some() { (&ln, &rn) } else { (&rn, &ln) };
            Err(invalid(format!(
                "Can not join windowed source to non-windowed source.\n`{windowed}` is {} windowed\n`{plain}` is not windowed",
                window_name(d, w)
            )))
        }
        (Some((ld, lw)), Some((rd, rw))) => {
            let session = |w: WindowType| w == WindowType::Session;
            if session(lw) != session(rw) {
                return Err(invalid(format!(
                    "Incompatible windowed sources.\nLeft source: {}\nRight source: {}\nSession windowed sources can only be joined to other session windowed sources, and may still not result in expected behaviour as session bounds must be an exact match for the join to work\nHopping and tumbling windowed sources can only be joined to other hopping and tumbling windowed sources",
                    window_name(ld, lw),
                    window_name(rd, rw)
                )));
            }
            let on_keys = keys.left_texts == b.left.partitioned_by && keys.right_texts == b.right.partitioned_by;
            if lw != rw || !on_keys {
                return Err(invalid(
                    "Implicit repartitioning of windowed sources is not supported. See https://github.com/confluentinc/ksql/issues/4385.",
                ));
            }
            Ok(())
        }
    }
}

/// Checks that a join with a table is on its primary key; a table-table join on another
/// column of the left table is a foreign-key join, whose left side is materialized first.
fn check_keys(p: &mut Pipeline, b: &mut Binary<'_>, kind: JoinKindSpec, join_type: JoinType, keys: &JoinKeyExprs) -> Result<JoinKindSpec> {
    let on_right_key = keys.right_texts == b.right.primary_key;
    let wrong_key = |what: &str| invalid(format!("Invalid join condition: {what}. Got {}.", keys.shown()));
    match kind {
        JoinKindSpec::StreamTable if !on_right_key => {
            Err(wrong_key("stream-table joins require to join on the table's primary key"))
        }
        JoinKindSpec::TableTable if keys.left_texts != b.left.primary_key => {
            if !on_right_key {
                return Err(wrong_key("table-table joins require to join on the primary key of the right input table"));
            }
            if !matches!(join_type, JoinType::Inner | JoinType::Left) {
                return Err(invalid("Invalid join type: full-outer join not supported for foreign-key table-table join. Got LEFT [FULL] OUTER JOIN RIGHT."));
            }
            if b.n > 0 {
                return Err(PlanError::Unsupported { feature: "a foreign-key join after another join".into() });
            }
            if b.def.window.is_some() {
                return Err(invalid("Foreign-key table-table joins are not supported on windowed tables."));
            }
            // The left table's changes must carry their old values (to leave the old key).
            let left = &mut b.left;
            let pk: Vec<usize> = left.primary_key.iter().filter_map(|f| left.schema.index_of(f).ok()).collect();
            let op = OpSpec::Materialize(MaterializeSpec { key_columns: pk, table: TableId(30 + b.n as u32) });
            left.tail = p.push_node(op, left.schema.clone(), vec![left.tail]);
            Ok(JoinKindSpec::ForeignKey)
        }
        JoinKindSpec::TableTable if !on_right_key => {
            Err(wrong_key("table-table joins require to join on the primary key of the right input table"))
        }
        other => Ok(other),
    }
}

/// Keys both sides by the join keys, repartitioning those not partitioned by them (with one
/// partition on each side every row meets in the one task: no repartition). Returns the key
/// columns of each side, the join's partitions, and whether both sides have one partition.
fn co_partition(
    cx: &PlanContext<'_>,
    p: &mut Pipeline,
    left: &mut Side,
    right: &mut Side,
    keys: &JoinKeyExprs,
    n: usize,
    counter: &mut usize,
) -> Result<(Vec<usize>, Vec<usize>, u32, bool)> {
    let single = left.partitions == 1 && right.partitions == 1;
    let lre = !single && left.partitioned_by != keys.left_texts;
    let rre = !single && right.partitioned_by != keys.right_texts;
    let partitions = match (lre, rre) {
        (false, false) if left.partitions != right.partitions => {
            let (l, r) = (left.names.join("_"), right.names.join("_"));
            return Err(invalid(format!(
                "Can't join `{l}` with `{r}` since the number of partitions don't match. `{l}` partitions = {}; `{r}` partitions = {}. Please repartition either one so that the number of partitions match.",
                left.partitions, right.partitions
            )));
        }
        (true, false) => right.partitions,
        (false, _) => left.partitions,
        (true, true) => left.partitions.max(right.partitions),
    };
    let (lfmt, rfmt) = match (lre, rre) {
        (true, false) => (right.key_format, right.key_format),
        (false, true) => (left.key_format, left.key_format),
        _ => (FormatSpec::json(), FormatSpec::json()),
    };
    let (lnames, rnames) = match (lre, rre) {
        (true, false) => (right.key_names.clone(), Vec::new()),
        (false, true) => (Vec::new(), left.key_names.clone()),
        _ => (Vec::new(), Vec::new()),
    };
    let (lscope, lschema) = (left.scope.clone(), left.schema.clone());
    let (rscope, rschema) = (right.scope.clone(), right.schema.clone());
    let lbinder = cx.binder(&lscope, &lschema)?;
    let rbinder = cx.binder(&rscope, &rschema)?;
    let base = format!("{}_join{n}", cx.id);
    let how = Keying { binder: &lbinder, keys: &keys.left, repartition: lre, partitions, key_format: lfmt, key_names: &lnames, topic_base: format!("{base}_left") };
    let (lk, moved) = keyed(p, left, how, counter)?;
    if let Some(map) = moved {
        right.tail = OpId(map[&right.tail.0]);
    }
    let how = Keying { binder: &rbinder, keys: &keys.right, repartition: rre, partitions, key_format: rfmt, key_names: &rnames, topic_base: format!("{base}_right") };
    let (rk, moved) = keyed(p, right, how, counter)?;
    if let Some(map) = moved {
        left.tail = OpId(map[&left.tail.0]);
    }
    Ok((lk, rk, partitions, single))
}

/// Adds the synthetic key `_rowkey` after the joins: the left join key, else the right one.
fn with_rowkey(
    cx: &PlanContext<'_>,
    mut p: Pipeline,
    joined: Side,
    candidates: Vec<Vec<String>>,
    full_outer: bool,
    foreign_key: bool,
    (lf, rf): (Vec<String>, Vec<String>),
) -> Result<(Relation, JoinKeys)> {
    let schema = &joined.schema;
    let col = |f: &str| column_ref(f, schema.field_with_name(f).map(|x| x.data_type().clone()).unwrap_or(DataType::Utf8));
    let rowkey = match (lf.first(), rf.first()) {
        (Some(l), Some(r)) => {
            let (l, r) = (col(l), col(r));
            let dt = l.dt.clone();
            let case = datafusion::logical_expr::Case::new(
                None,
                vec![(Box::new(datafusion::logical_expr::Expr::IsNotNull(Box::new(l.expr.clone()))), Box::new(l.expr))],
                Some(Box::new(r.expr)),
            );
            Typed::new(datafusion::logical_expr::Expr::Case(case), dt)
        }
        _ => return Err(invalid("a join needs an ON condition")),
    };
    let taken: Vec<&str> = joined.scope.columns.iter().map(|c| c.name.as_str()).collect();
    let rowkey_name = if !taken.contains(&ROWKEY) {
        ROWKEY.to_string()
    } else {
        let max = taken.iter().filter_map(|n| n.strip_prefix("ROWKEY_")).filter_map(|n| n.parse::<u32>().ok()).max().unwrap_or(0);
        format!("ROWKEY_{}", max + 1)
    };
    let binder = cx.binder(&joined.scope, schema)?;
    let mut out = Projection::default();
    for f in user_fields(schema) {
        let t = col(f.name());
        out.internal(f, &t, &binder.schema)?;
    }
    out.internal(Field::new("_rowkey", rowkey.dt.clone(), true), &rowkey, &binder.schema)?;
    let new_schema = out.push(&mut p);
    let mut scope = joined.scope.clone();
    scope.columns.push(ScopeColumn { qualifier: None, name: rowkey_name.clone(), field: "_rowkey".into(), data_type: rowkey.dt.clone() });
    scope.columns.push(ScopeColumn { qualifier: None, name: ROWTIME.into(), field: engine::types::TS_COLUMN.into(), data_type: DataType::Int64 });
    let rowkey = column_ref("_rowkey", rowkey.dt);
    let keys = JoinKeys { candidates, full_outer, foreign_key, rowkey_name, rowkey };
    Ok((Relation { p, scope, schema: new_schema }, keys))
}
