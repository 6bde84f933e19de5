//! Planning joins: `FROM a [alias] JOIN b [WITHIN ...] ON a.x = b.y [AND ...] [JOIN c ...]`.
//!
//! Each binary join (the result so far on the left, the next source on the right) gets one
//! sub-topology: both sides are projected to `[join keys, their columns, ROWTIME]` and, when a
//! side is not partitioned by its join key, repartitioned through an internal topic first. The
//! join's output columns keep ksqlDB's names: `<alias>_<column>`. The result key follows ksqlDB:
//! the join column of the first side whose join expression is a plain column, else the synthetic
//! `ROWKEY` (FULL OUTER joins always use `ROWKEY`).

use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as AstExpr, SelectItem, SelectItemQualifiedWildcardKind};
use engine::format::FormatSpec;
use engine::spec::{
    FilterMode, FilterSpec, JoinKindSpec, JoinSpec, JoinType, NodeSpec, OpSpec, ProjectSpec, SinkKind, SinkSpec,
    SourceColumn, SourceKind, SourceSpec,
};
use engine::types::{OpId, TableId};

use super::select::QueryKind;
use super::source::{batch_schema, plan_source, ROWTIME};
use super::Pipeline;
use crate::ast::{ColumnKind, JoinKind, Query, SourceType};
use crate::binder::coerce::common_type;
use crate::binder::functions::FunctionRegistry;
use crate::binder::{physical_expr, Binder, Scope, ScopeColumn, Typed};
use crate::catalog::{Catalog, Column, SourceDef};
use crate::error::{invalid, PlanError, Result};
use crate::parser::norm_ident;

/// The name of the synthetic key column of joins on expressions.
pub const ROWKEY: &str = "ROWKEY";

/// One input of the join chain as it stands.
struct Side {
    /// Columns in scope (qualified by source alias) and their fields in `schema`.
    scope: Scope,
    /// Batch schema of the side's last node (user columns, `_ts`, `_op`).
    schema: SchemaRef,
    /// Last node of the side in the current sub-topology.
    tail: OpId,
    /// Stream or table.
    kind: SourceType,
    /// Partitions of the topic the side is read from.
    partitions: u32,
    /// The expressions (normalised text) the side is partitioned by.
    partitioned_by: Vec<String>,
    /// Names of the sources in the side.
    names: Vec<String>,
    /// Primary key columns (normalised text) of a table side.
    primary_key: Vec<String>,
    /// The key format whose bytes decide the side's partitions (murmur2): a repartition of the
    /// other side must encode its keys the same way to land in the same partitions.
    key_format: FormatSpec,
}

/// Plans a query with joins up to its projection.
pub fn plan_join(
    q: &Query,
    kind: QueryKind,
    sink_name: Option<&str>,
    id: &str,
    catalog: &Catalog,
    functions: &FunctionRegistry,
) -> Result<Pipeline> {
    if !q.group_by.is_empty() || q.window.is_some() || q.having.is_some() {
        return Err(PlanError::Unsupported { feature: "GROUP BY over a join".into() });
    }
    let resolve = |name: &str| {
        catalog.sources.get(name).ok_or_else(|| PlanError::UnknownObject { kind: "stream or table", name: name.to_string() })
    };
    let mut aliases: Vec<String> = Vec::new();
    let mut alias_of = |r: &crate::ast::SourceRef| -> Result<String> {
        let a = r.alias.clone().unwrap_or_else(|| r.name.clone());
        if aliases.contains(&a) {
            return Err(invalid(format!("Each side of the join must have a distinct name or alias: {a} is used twice")));
        }
        aliases.push(a.clone());
        Ok(a)
    };
    let first = resolve(&q.from.name)?;
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
        .filter_map(|n| catalog.sources.get(n))
        .filter(|d| d.value_format.kind == engine::format::FormatKind::Kafka)
        .map(|d| d.name.clone())
        .collect();
    if !kafka.is_empty() {
        return Err(invalid(format!(
            "Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.",
            kafka.join(", ")
        )));
    }
    let text = q.select.iter().map(|s| s.to_string()).chain(q.joins.iter().map(|j| j.on.to_string())).chain(q.selection.iter().map(|w| w.to_string())).collect::<Vec<_>>().join(" ").to_uppercase();
    let pseudo = text.contains("ROWPARTITION") || text.contains("ROWOFFSET");
    let first_alias = alias_of(&q.from)?;
    let mut p = Pipeline::new(SourceType::Stream, vec![first.name.clone()]);
    let mut counter = 0usize;
    let mut left = source_side(&mut p, first, &first_alias, pseudo, catalog, functions)?;
    let mut key_candidates: Vec<Vec<String>> = Vec::new();
    let mut rowkey_fields: (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    let mut full_outer = false;
    let mut fk_join = false;

    for (n, j) in q.joins.iter().enumerate() {
        let def = resolve(&j.source.name)?;
        let alias = alias_of(&j.source)?;
        p.sources.push(def.name.clone());
        let mut right = source_side(&mut p, def, &alias, pseudo, catalog, functions)?;
        let join_type = match j.kind {
            JoinKind::Inner => JoinType::Inner,
            JoinKind::Left => JoinType::Left,
            JoinKind::Right => JoinType::Right,
            JoinKind::Full => JoinType::Full,
        };
        let kind_spec = match (left.kind, right.kind) {
            (SourceType::Stream, SourceType::Stream) => {
                let w = j.within.as_ref().ok_or_else(|| invalid("Stream-Stream joins must have a WITHIN clause specified. None was provided. To learn about how to specify a WITHIN clause with a stream-stream join, please visit: https://docs.confluent.io/current/ksql/docs/syntax-reference.html#create-stream-as-select"))?;
                JoinKindSpec::StreamStream {
                    before_ms: w.before.as_millis() as i64,
                    after_ms: w.after.as_millis() as i64,
                    grace_ms: w.grace.map(|g| g.as_millis() as i64),
                }
            }
            (SourceType::Stream, SourceType::Table) => {
                if j.within.is_some() {
                    return Err(invalid("A join with a table does not support the WITHIN clause: WITHIN applies to stream-stream joins"));
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
                if j.within.is_some() {
                    return Err(invalid("A join with a table does not support the WITHIN clause: WITHIN applies to stream-stream joins"));
                }
                JoinKindSpec::TableTable
            }
            (SourceType::Table, SourceType::Stream) => {
                return Err(invalid(format!(
                    "Invalid join order: table {} cannot be joined to stream {}: put the stream first (FROM stream JOIN table)",
                    left.names.join(", "),
                    def.name
                )))
            }
        };

        // The join condition: equalities between one expression of each side.
        let pairs = equalities(&j.on)?;
        let (lscope, lschema) = (left.scope.clone(), left.schema.clone());
        let (rscope, rschema) = (right.scope.clone(), right.schema.clone());
        let lbinder = Binder::new(&lscope, &lschema, &catalog.types, functions)?;
        let rbinder = Binder::new(&rscope, &rschema, &catalog.types, functions)?;
        let mut lkeys: Vec<Typed> = Vec::new();
        let mut rkeys: Vec<Typed> = Vec::new();
        let mut ltexts = Vec::new();
        let mut rtexts = Vec::new();
        let mut plain: Vec<(Option<String>, Option<String>)> = Vec::new();
        for (a, b) in &pairs {
            let (l, r) = match (lbinder.bind(a), rbinder.bind(b)) {
                (Ok(l), Ok(r)) => ((l, a), (r, b)),
                _ => match (lbinder.bind(b), rbinder.bind(a)) {
                    (Ok(l), Ok(r)) => ((l, b), (r, a)),
                    (Err(e), _) | (_, Err(e)) => {
                        return Err(match e {
                            PlanError::UnknownObject { .. } | PlanError::Invalid(_) => invalid(format!(
                                "Invalid comparison expression '{b}' in join '({} = {})'. Each side of the join comparision must contain references from exactly one source.",
                                a, b
                            )),
                            other => other,
                        })
                    }
                },
            };
            let (lt, le) = l;
            let (rt, re) = r;
            for (t, e) in [(&lt, le), (&rt, re)] {
                if t.expr.column_refs().is_empty() {
                    return Err(invalid(format!(
                        "Invalid comparison expression '{e}' in join '({a} = {b})'. Each side of the join comparision must contain references from exactly one source."
                    )));
                }
            }
            let t = common_type(&lt.dt, &rt.dt).filter(|t| crate::binder::coerce::can_widen(&lt.dt, t) && crate::binder::coerce::can_widen(&rt.dt, t)).ok_or_else(|| {
                invalid(format!(
                    "Invalid join condition: types don't match. Got {le}{{{}}} = {re}{{{}}}.",
                    crate::types::type_name(&lt.dt),
                    crate::types::type_name(&rt.dt)
                ))
            })?;
            plain.push((column_text(le, &left.scope), column_text(re, &right.scope)));
            ltexts.push(expr_text(le, &left.scope));
            rtexts.push(expr_text(re, &right.scope));
            lkeys.push(lt.cast_to(&t));
            rkeys.push(rt.cast_to(&t));
        }
        let shown = |texts: &[String]| texts.iter().map(|t| t.replacen('_', ".", 1)).collect::<Vec<_>>();
        let cond = shown(&ltexts).iter().zip(shown(&rtexts)).map(|(a, b)| format!("{a} = {b}")).collect::<Vec<_>>().join(" AND ");
        if kind_spec == JoinKindSpec::StreamTable && rtexts != right.primary_key {
            return Err(invalid(format!(
                "Invalid join condition: stream-table joins require to join on the table's primary key. Got {cond}."
            )));
        }
        let kind_spec = if kind_spec == JoinKindSpec::TableTable && ltexts != left.primary_key {
            if rtexts != right.primary_key {
                return Err(invalid(format!(
                    "Invalid join condition: table-table joins require to join on the primary key of the right input table. Got {cond}."
                )));
            }
            if !matches!(join_type, JoinType::Inner | JoinType::Left) {
                return Err(invalid("Invalid join type: full-outer join not supported for foreign-key table-table join. Got LEFT [FULL] OUTER JOIN RIGHT."));
            }
            if n > 0 {
                return Err(PlanError::Unsupported { feature: "a foreign-key join after another join".into() });
            }
            // The left table's changes must carry their old values (to leave the old key).
            let pk: Vec<usize> = left.primary_key.iter().filter_map(|f| left.schema.index_of(f).ok()).collect();
            left.tail = push_node(
                &mut p,
                OpSpec::Materialize(engine::spec::MaterializeSpec { key_columns: pk, table: TableId(30 + n as u32) }),
                left.schema.clone(),
                vec![left.tail],
            );
            JoinKindSpec::ForeignKey
        } else if kind_spec == JoinKindSpec::TableTable && rtexts != right.primary_key {
            return Err(invalid(format!(
                "Invalid join condition: table-table joins require to join on the primary key of the right input table. Got {cond}."
            )));
        } else {
            kind_spec
        };

        // Repartition the sides that are not partitioned by their join key.
        // With one partition on each side every row meets in the one task: no repartition.
        let single = left.partitions == 1 && right.partitions == 1;
        let lre = !single && left.partitioned_by != ltexts;
        let rre = !single && right.partitioned_by != rtexts;
        let partitions = match (lre, rre) {
            (false, false) if left.partitions != right.partitions => {
                return Err(invalid(format!(
                    "Can't join `{}` with `{}` since the number of partitions don't match. `{}` partitions = {}; `{}` partitions = {}. Please repartition either one so that the number of partitions match.",
                    left.names.join("_"), right.names.join("_"), left.names.join("_"), left.partitions, right.names.join("_"), right.partitions
                )))
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
        let (lk, moved) = keyed(&mut p, &mut left, &lbinder, &lkeys, lre, partitions, lfmt, &format!("{id}_join{n}_left"), &mut counter)?;
        if let Some(map) = moved {
            right.tail = OpId(map[&right.tail.0]);
        }
        let (rk, moved) = keyed(&mut p, &mut right, &rbinder, &rkeys, rre, partitions, rfmt, &format!("{id}_join{n}_right"), &mut counter)?;
        if let Some(map) = moved {
            left.tail = OpId(map[&left.tail.0]);
        }

        // The join node.
        let lw = left.schema.fields().len() - 2;
        let rw = right.schema.fields().len() - 2;
        let mut fields: Vec<Field> = left.schema.fields()[..lw].iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(right.schema.fields()[..rw].iter().map(|f| f.as_ref().clone()));
        let schema = batch_schema(fields);
        let left_primary_key: Vec<usize> = if kind_spec == JoinKindSpec::ForeignKey {
            left.primary_key.iter().filter_map(|f| left.schema.index_of(f).ok()).collect()
        } else {
            Vec::new()
        };
        let spec = JoinSpec {
            kind: kind_spec,
            join_type,
            left_keys: lk.clone(),
            right_keys: rk.clone(),
            left_width: lw,
            right_width: rw,
            left_primary_key,
            table: TableId(10 + n as u32),
        };
        let id_node = push_node(&mut p, OpSpec::Join(spec), schema.clone(), vec![left.tail, right.tail]);
        let mut scope = left.scope.clone();
        scope.columns.extend(right.scope.columns.clone());
        rowkey_fields = (
            lk.iter().map(|&i| left.schema.field(i).name().clone()).collect(),
            rk.iter().map(|&i| right.schema.field(i).name().clone()).collect(),
        );
        full_outer = join_type == JoinType::Full;
        fk_join = kind_spec == JoinKindSpec::ForeignKey;
        key_candidates = if kind_spec == JoinKindSpec::ForeignKey {
            // A foreign-key join's result is keyed by the left table's primary key.
            left.primary_key.iter().map(|k| vec![k.clone()]).collect()
        } else {
            plain.iter().map(|(l, r)| l.iter().chain(r.iter()).cloned().collect()).collect()
        };
        let result_kind = if left.kind == SourceType::Table && right.kind == SourceType::Table { SourceType::Table } else { SourceType::Stream };
        let mut names = left.names.clone();
        names.extend(right.names.clone());
        left = Side {
            scope,
            schema,
            tail: id_node,
            kind: result_kind,
            partitions,
            partitioned_by: if single {
                Vec::new()
            } else if join_type == JoinType::Right {
                rtexts
            } else {
                ltexts
            },
            names,
            primary_key: left.primary_key.clone(),
            key_format: if join_type == JoinType::Right { right.key_format } else { left.key_format },
        };
        p.output_type = result_kind;
    }

    // ROWKEY: the join key (the non-null one for outer joins).
    let (lf, rf) = &rowkey_fields;
    let binder = Binder::new(&left.scope, &left.schema, &catalog.types, functions)?;
    let col = |f: &str, schema: &SchemaRef| {
        let dt = schema.field_with_name(f).map(|x| x.data_type().clone()).unwrap_or(DataType::Utf8);
        Typed::new(datafusion::logical_expr::col(datafusion::common::Column::new_unqualified(f)), dt)
    };
    let rowkey = match (lf.first(), rf.first()) {
        (Some(l), Some(r)) => {
            let (l, r) = (col(l, &left.schema), col(r, &left.schema));
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

    // WHERE.
    // The synthetic key's name: ROWKEY, or ROWKEY_<n> past the largest such name in use.
    let rowkey_name = {
        let taken: Vec<&str> = left.scope.columns.iter().map(|c| c.name.as_str()).collect();
        if !taken.contains(&ROWKEY) {
            ROWKEY.to_string()
        } else {
            let max = taken.iter().filter_map(|n| n.strip_prefix("ROWKEY_")).filter_map(|n| n.parse::<u32>().ok()).max().unwrap_or(0);
            format!("ROWKEY_{}", max + 1)
        }
    };
    let mut scope = left.scope.clone();
    scope.columns.push(ScopeColumn { qualifier: None, name: rowkey_name.clone(), field: "_rowkey".into(), data_type: rowkey.dt.clone() });
    scope.columns.push(ScopeColumn { qualifier: None, name: ROWTIME.into(), field: engine::types::TS_COLUMN.into(), data_type: DataType::Int64 });
    let lw = left.schema.fields().len() - 2;
    let mut fields: Vec<Field> = left.schema.fields()[..lw].iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("_rowkey", rowkey.dt.clone(), true));
    let mut exprs: Vec<_> = (0..lw).map(|i| col(left.schema.field(i).name(), &left.schema)).map(|t| binder.physical(&t)).collect::<Result<_>>()?;
    exprs.push(binder.physical(&rowkey)?);
    let schema = batch_schema(fields);
    p.push(OpSpec::Project(ProjectSpec { exprs, timestamp: None }), schema.clone());
    let binder = Binder::new(&scope, &schema, &catalog.types, functions)?;
    if let Some(w) = &q.selection {
        let t = binder.bind(w)?;
        if t.dt != DataType::Boolean && t.dt != DataType::Null {
            return Err(invalid(format!("WHERE must be a BOOLEAN expression, but {w} is {}", crate::types::type_name(&t.dt))));
        }
        let mode = if p.output_type == SourceType::Table { FilterMode::Table } else { FilterMode::Stream };
        p.push(OpSpec::Filter(FilterSpec { predicate: binder.physical(&t.cast_to(&DataType::Boolean))?, mode }), schema.clone());
    }

    // The projection, with ksqlDB's names and key.
    let mut items: Vec<(String, Typed, Option<String>)> = Vec::new();
    let mut generated = 0;
    for item in &q.select {
        match item {
            SelectItem::Wildcard(_) => {
                for c in scope.columns.iter().filter(|c| c.qualifier.is_some() && !super::source::RESERVED.contains(&c.name.as_str())) {
                    items.push(star_item(c));
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                let qn = n.0.last().and_then(|p| p.as_ident()).map(norm_ident).unwrap_or_default();
                let cols: Vec<&ScopeColumn> = scope
                    .columns
                    .iter()
                    .filter(|c| c.qualifier.as_deref() == Some(qn.as_str()) && !super::source::RESERVED.contains(&c.name.as_str()))
                    .collect();
                if cols.is_empty() {
                    return Err(invalid(format!("'{qn}' is not a valid stream/table name or alias")));
                }
                for c in cols {
                    items.push(star_item(c));
                }
            }
            SelectItem::UnnamedExpr(e) => {
                let t = binder.bind(e)?;
                let name = join_name(e, &scope).unwrap_or_else(|| {
                    generated += 1;
                    format!("KSQL_COL_{}", generated - 1)
                });
                let id = column_text(e, &scope).or_else(|| Some(crate::binder::aggregate::norm_text(e)));
                items.push((name, t, id));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let id = column_text(expr, &scope).or_else(|| Some(crate::binder::aggregate::norm_text(expr)));
                items.push((norm_ident(alias), binder.bind(expr)?, id));
            }
            other => return Err(PlanError::Unsupported { feature: format!("select item {other}") }),
        }
    }
    // Keys: the PARTITION BY expressions if any; else ROWKEY for FULL OUTER joins and joins on
    // expressions; else the first selected column among each key pair's plain columns.
    let mut key_index: Vec<usize> = Vec::new();
    if !q.partition_by.is_empty() {
        key_candidates.clear();
        for pe in &q.partition_by {
            if matches!(pe, AstExpr::Value(v) if v.value == datafusion::sql::sqlparser::ast::Value::Null) {
                continue;
            }
            let t = binder.bind(pe)?;
            let id = column_text(pe, &scope).unwrap_or_else(|| crate::binder::aggregate::norm_text(pe));
            match items.iter().position(|(_, _, c)| c.as_deref() == Some(id.as_str())) {
                Some(i) => key_index.push(i),
                None => {
                    let name = join_name(pe, &scope).unwrap_or_else(|| format!("KSQL_COL_{generated}"));
                    items.push((name, t, Some(id)));
                    key_index.push(items.len() - 1);
                }
            }
        }
    }
    // An unqualified `*` brings the synthetic key along; qualified stars do not.
    let has_star = q.select.iter().any(|i| matches!(i, SelectItem::Wildcard(_)));
    let rowkey_col = Typed::new(datafusion::logical_expr::col(datafusion::common::Column::new_unqualified("_rowkey")), rowkey.dt.clone());
    for cands in &key_candidates {
        let synthetic = full_outer || cands.is_empty();
        let wanted: Vec<String> = if synthetic { vec![rowkey_name.clone()] } else { cands.clone() };
        // The first candidate (left side first) that is selected.
        let found = wanted.iter().find_map(|w| items.iter().position(|(_, _, c)| c.as_deref() == Some(w.as_str())));
        match found {
            Some(i) if !key_index.contains(&i) => {
                // The key carries the join key, also where its own side is missing (a foreign-key
                // join's key is the left table's own key).
                if !fk_join {
                    items[i].1 = rowkey_col.clone();
                }
                key_index.push(i);
            }
            None if synthetic && has_star => {
                items.push((rowkey_name.clone(), rowkey_col.clone(), Some(rowkey_name.clone())));
                key_index.push(items.len() - 1);
            }
            _ if kind == QueryKind::Persistent => {
                let shown: Vec<String> = wanted.iter().map(|w| w.replacen('_', ".", 1)).collect();
                return Err(invalid(format!(
                    "The query used to build `{}` must include the join expressions {} in its projection (eg, SELECT {}...).",
                    sink_name.unwrap_or("OUTPUT"),
                    shown.join(" or "),
                    shown[0]
                )));
            }
            _ => {}
        }
    }
    if kind == QueryKind::Persistent {
        for (name, _, _) in &items {
            if super::source::RESERVED.contains(&name.as_str()) {
                return Err(invalid(format!("Reserved column name in select: `{name}`. Please remove or alias the column.")));
            }
        }
    }
    if kind == QueryKind::Persistent {
        for &k in &key_index {
            let id = items[k].2.clone();
            let same: Vec<&str> = items.iter().filter(|(_, _, c)| *c == id).map(|(n, _, _)| n.as_str()).collect();
            if same.len() > 1 {
                return Err(invalid(format!(
                    "The projection contains a key column (`{}`) more than once, aliased as: {}.",
                    id.unwrap_or_default(),
                    same.join(" and ")
                )));
            }
        }
    }
    let mut out_fields = Vec::new();
    let mut out_exprs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let order: Vec<usize> = key_index.iter().copied().chain((0..items.len()).filter(|i| !key_index.contains(i))).collect();
    for i in order {
        let (name, t, _) = &items[i];
        if !seen.insert(name.clone()) {
            return Err(invalid(format!("duplicate column name \"{name}\" in the projection: alias one of them")));
        }
        let dt = if t.dt == DataType::Null { DataType::Utf8 } else { t.dt.clone() };
        out_fields.push(Field::new(name, dt.clone(), true));
        out_exprs.push(physical_expr(&t.clone().cast_to(&dt), &binder.schema)?);
        p.columns.push(Column { name: name.clone(), data_type: dt, kind: if key_index.contains(&i) { ColumnKind::Key } else { ColumnKind::Value } });
    }
    p.push(OpSpec::Project(ProjectSpec { exprs: out_exprs, timestamp: None }), batch_schema(out_fields));
    Ok(p)
}

fn star_item(c: &ScopeColumn) -> (String, Typed, Option<String>) {
    let q = c.qualifier.clone().unwrap_or_default();
    let t = Typed::new(datafusion::logical_expr::col(datafusion::common::Column::new_unqualified(&c.field)), c.data_type.clone());
    (format!("{q}_{}", c.name), t, Some(format!("{q}_{}", c.name)))
}

/// The text identifying a column reference (`ALIAS_COL`), or `ROWKEY`.
fn column_text(e: &AstExpr, scope: &Scope) -> Option<String> {
    let (q, n) = match e {
        AstExpr::Identifier(id) => (None, norm_ident(id)),
        AstExpr::CompoundIdentifier(p) if p.len() == 2 => (Some(norm_ident(&p[0])), norm_ident(&p[1])),
        AstExpr::Nested(inner) => return column_text(inner, scope),
        _ => return None,
    };
    let c = scope.resolve(q.as_deref(), &n).ok()?;
    match &c.qualifier {
        // Unqualified columns of the join itself: ROWKEY, ROWTIME.
        None => Some(c.name.clone()),
        Some(q) => Some(format!("{q}_{}", c.name)),
    }
}

/// The text of a join expression: its column text, or its normalised expression text.
fn expr_text(e: &AstExpr, scope: &Scope) -> String {
    column_text(e, scope).unwrap_or_else(|| crate::binder::aggregate::norm_text(e))
}

/// ksqlDB's name of an unaliased select item in a join: a column's own name when no other
/// source has a column of that name, else `ALIAS_COL`.
fn join_name(e: &AstExpr, scope: &Scope) -> Option<String> {
    match e {
        AstExpr::BinaryOp { op: BinaryOperator::Arrow, right, .. } => match right.as_ref() {
            AstExpr::Identifier(id) => Some(norm_ident(id)),
            _ => None,
        },
        _ => {
            let full = column_text(e, scope)?;
            if !full.contains('_') || full.starts_with(ROWKEY) {
                return Some(full);
            }
            let name = match e {
                AstExpr::Identifier(id) => norm_ident(id),
                AstExpr::CompoundIdentifier(p) => p.last().map(norm_ident)?,
                AstExpr::Nested(inner) => return join_name(inner, scope),
                _ => return Some(full),
            };
            let sources: std::collections::HashSet<&str> = scope
                .columns
                .iter()
                .filter(|c| c.name == name && c.qualifier.is_some())
                .filter_map(|c| c.qualifier.as_deref())
                .collect();
            Some(if sources.len() > 1 { full } else { name })
        }
    }
}

/// Splits `a = b AND c = d` into pairs.
fn equalities(e: &AstExpr) -> Result<Vec<(AstExpr, AstExpr)>> {
    match e {
        AstExpr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut v = equalities(left)?;
            v.extend(equalities(right)?);
            Ok(v)
        }
        AstExpr::BinaryOp { left, op: BinaryOperator::Eq, right } => Ok(vec![((**left).clone(), (**right).clone())]),
        AstExpr::Nested(inner) => equalities(inner),
        other => Err(invalid(format!(
            "Unsupported join expression: {other}. Joins need equality conditions between the sides, joined with AND"
        ))),
    }
}

/// Reads a source into the current sub-topology, its columns named `<alias>_<column>`.
fn source_side(p: &mut Pipeline, def: &SourceDef, alias: &str, pseudo: bool, catalog: &Catalog, functions: &FunctionRegistry) -> Result<Side> {
    let src = plan_source(def, alias, pseudo, catalog, functions)?;
    let source = push_node(p, OpSpec::Source(src.spec.clone()), src.schema.clone(), vec![]);
    // Rename to qualified fields and keep each row's own event time as <alias>_ROWTIME.
    let binder = Binder::new(&src.scope, &src.schema, &catalog.types, functions)?;
    let mut scope = Scope::default();
    let mut fields = Vec::new();
    let mut exprs = Vec::new();
    for c in &src.scope.columns {
        let field = format!("{alias}_{}", c.name);
        let t = Typed::new(datafusion::logical_expr::col(datafusion::common::Column::new_unqualified(&c.field)), c.data_type.clone());
        exprs.push(binder.physical(&t)?);
        fields.push(Field::new(&field, c.data_type.clone(), true));
        scope.columns.push(ScopeColumn { qualifier: Some(alias.to_string()), name: c.name.clone(), field, data_type: c.data_type.clone() });
    }
    let schema = batch_schema(fields);
    let tail = push_node(p, OpSpec::Project(ProjectSpec { exprs, timestamp: None }), schema.clone(), vec![source]);
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
    })
}

/// Adds the join key columns to a side (first), repartitioning it by them when needed; returns
/// the key column indices in the side's new schema and, after a repartition, how the nodes that
/// stayed in the current sub-topology were renumbered.
#[allow(clippy::too_many_arguments)]
fn keyed(
    p: &mut Pipeline,
    side: &mut Side,
    binder: &Binder<'_>,
    keys: &[Typed],
    repartition: bool,
    partitions: u32,
    key_format: FormatSpec,
    topic_base: &str,
    counter: &mut usize,
) -> Result<(Vec<usize>, Option<std::collections::HashMap<u32, u32>>)> {
    let n = side.schema.fields().len() - 2;
    let mut fields = Vec::new();
    let mut exprs = Vec::new();
    for k in keys {
        *counter += 1;
        fields.push(Field::new(format!("_k{counter}"), k.dt.clone(), true));
        exprs.push(binder.physical(k)?);
    }
    for i in 0..n {
        let f = side.schema.field(i);
        let t = Typed::new(datafusion::logical_expr::col(datafusion::common::Column::new_unqualified(f.name())), f.data_type().clone());
        fields.push(f.clone());
        exprs.push(binder.physical(&t)?);
    }
    let k = keys.len();
    let schema = batch_schema(fields.clone());
    let tail = push_node(p, OpSpec::Project(ProjectSpec { exprs, timestamp: None }), schema.clone(), vec![side.tail]);
    side.schema = schema.clone();
    side.tail = tail;
    if repartition {
        let topic = format!("_eddy_{topic_base}_repartition");
        let key_fields: datafusion::arrow::datatypes::Fields = fields[..k].iter().cloned().collect();
        let value_fields: datafusion::arrow::datatypes::Fields = fields[k..].iter().cloned().collect();
        let m = fields.len() - k;
        // Keys are encoded like the other side's, so equal keys land in equal partitions.
        let key_format = if engine::format::check_columns(&key_format, engine::format::Role::Key, &fields[..k].iter().cloned().collect()).is_ok() {
            key_format
        } else {
            FormatSpec::json()
        };
        let sink = SinkSpec {
            topic: topic.clone(),
            kind: SinkKind::Stream,
            key_format,
            value_format: FormatSpec::json(),
            key_columns: (0..k).collect(),
            value_columns: (k..k + m).collect(),
            key_fields: key_fields.clone(),
            value_fields: value_fields.clone(),
            window: None,
            append: true,
            materialize: None,
            internal: true,
        };
        let kind = if side.kind == SourceType::Table { SourceKind::Table } else { SourceKind::Stream };
        side.key_format = key_format;
        let source = SourceSpec {
            topic: topic.clone(),
            kind,
            key_format,
            value_format: FormatSpec::json(),
            key_fields,
            value_fields,
            columns: (0..k).map(SourceColumn::Key).chain((0..m).map(SourceColumn::Value)).collect(),
            timestamp: None,
            window: None,
            internal: true,
            error_topic: None,
            late_topic: None,
        };
        let map = cut(p, tail, OpSpec::Sink(sink));
        side.tail = push_node(p, OpSpec::Source(source), schema, vec![]);
        p.internal_topics.push((topic, partitions));
        side.partitions = partitions;
        return Ok(((0..k).collect(), Some(map)));
    }
    Ok(((0..k).collect(), None))
}

/// Adds a node with explicit inputs to the current sub-topology.
fn push_node(p: &mut Pipeline, op: OpSpec, schema: SchemaRef, inputs: Vec<OpId>) -> OpId {
    let id = OpId(p.nodes.len() as u32);
    p.nodes.push(NodeSpec { id, inputs, op, schema });
    id
}

/// Moves the nodes feeding `tail` (and `tail`) into a finished sub-topology ending in `sink`;
/// the other nodes stay, renumbered: returns old id -> new id for them.
fn cut(p: &mut Pipeline, tail: OpId, sink: OpSpec) -> std::collections::HashMap<u32, u32> {
    // Collect the ancestors of `tail`.
    let mut keep = vec![false; p.nodes.len()];
    let mut stack = vec![tail.0 as usize];
    while let Some(i) = stack.pop() {
        if !keep[i] {
            keep[i] = true;
            stack.extend(p.nodes[i].inputs.iter().map(|x| x.0 as usize));
        }
    }
    let nodes = std::mem::take(&mut p.nodes);
    let (mut moved, mut staying) = (Vec::new(), Vec::new());
    for (i, n) in nodes.into_iter().enumerate() {
        if keep[i] {
            moved.push(n);
        } else {
            staying.push(n);
        }
    }
    let renumber = |nodes: &mut Vec<NodeSpec>| {
        let map: std::collections::HashMap<u32, u32> = nodes.iter().enumerate().map(|(i, n)| (n.id.0, i as u32)).collect();
        for (i, n) in nodes.iter_mut().enumerate() {
            n.id = OpId(i as u32);
            n.inputs = n.inputs.iter().map(|x| OpId(map[&x.0])).collect();
        }
        map
    };
    let map = renumber(&mut moved);
    let schema = moved[map[&tail.0] as usize].schema.clone();
    let sink_id = OpId(moved.len() as u32);
    moved.push(NodeSpec { id: sink_id, inputs: vec![OpId(map[&tail.0])], op: sink, schema });
    p.done.push(engine::spec::DagSpec { nodes: moved });
    let map = renumber(&mut staying);
    p.nodes = staying;
    map
}
