//! `ExplodeOp`: table functions (ksqlDB's UDTFs): each input row becomes as many output rows as
//! its longest table-function result, the input columns repeated on each.
//!
//! - `EXPLODE(array)`: one row per element; a null or empty array gives none.
//! - `CUBE_EXPLODE(array)`: one row per combination of the elements (each kept or replaced by
//!   null, the first element varying slowest); combinations that would keep a null element are
//!   left out, being the same as those that drop it.
//!
//! With several table functions, the shorter results are padded with nulls. Stateless: `_ts` and
//! `_op` are repeated with their row; watermarks and barriers pass.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, UInt32Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::operator::{OpContext, Operator};
use crate::spec::{ExplodeSpec, TableFunction};

/// Applies table functions.
pub struct ExplodeOp {
    spec: ExplodeSpec,
    schema: SchemaRef,
}

impl ExplodeOp {
    /// An explode producing `schema`: the input's user columns, one column per table function,
    /// then `_ts` and `_op`.
    pub fn new(spec: ExplodeSpec, schema: SchemaRef) -> Self {
        ExplodeOp { spec, schema }
    }
}

impl Operator for ExplodeOp {
    fn name(&self) -> &'static str {
        "explode"
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, cx: &mut OpContext<'_>) -> Result<()> {
        if let Some(out) = explode(&self.spec, &self.schema, &batch)? {
            cx.emit(out);
        }
        Ok(())
    }
}

/// What one table function gives for one input row.
enum Rows {
    /// `EXPLODE`: elements `start..start + len` of the list's values.
    Elements { start: usize, len: usize },
    /// `CUBE_EXPLODE`: the masks of the combinations, over elements `start..start + n`.
    Combinations { start: usize, n: usize, masks: Vec<u64> },
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Elements { len, .. } => *len,
            Rows::Combinations { masks, .. } => masks.len(),
        }
    }
}

/// The rows `batch` explodes into (`None` when none).
pub fn explode(spec: &ExplodeSpec, schema: &SchemaRef, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
    let lists: Vec<&ListArray> = spec.functions.iter().map(|f| batch.column(f.arg).as_list::<i32>()).collect();
    let mut per_row: Vec<Vec<Rows>> = Vec::with_capacity(batch.num_rows());
    let mut repeat: Vec<u32> = Vec::new();
    for i in 0..batch.num_rows() {
        let rows: Vec<Rows> = spec.functions.iter().zip(&lists).map(|(f, l)| rows_of(f.function, l, i)).collect();
        let n = rows.iter().map(Rows::len).max().unwrap_or(0);
        repeat.extend(std::iter::repeat_n(i as u32, n));
        per_row.push(rows);
    }
    if repeat.is_empty() {
        return Ok(None);
    }
    let idx = UInt32Array::from(repeat);
    let user = batch.num_columns() - 2;
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for c in batch.columns()[..user].iter() {
        cols.push(take(c.as_ref(), &idx, None)?);
    }
    for (k, (list, f)) in lists.iter().zip(&spec.functions).enumerate() {
        let field = schema.field(user + k);
        cols.push(function_column(list, &per_row, k, f.function, field.data_type())?);
    }
    for c in &batch.columns()[user..] {
        cols.push(take(c.as_ref(), &idx, None)?);
    }
    let cols = crate::batch::cast_columns(cols, schema)?;
    Ok(Some(RecordBatch::try_new(schema.clone(), cols)?))
}

fn rows_of(function: TableFunction, list: &ListArray, i: usize) -> Rows {
    let (start, n) = if list.is_valid(i) {
        let o = list.value_offsets();
        (o[i] as usize, (o[i + 1] - o[i]) as usize)
    } else {
        return Rows::Elements { start: 0, len: 0 };
    };
    match function {
        TableFunction::Explode => Rows::Elements { start, len: n },
        TableFunction::CubeExplode => {
            let values = list.values();
            let n = n.min(63);
            let nulls: u64 = (0..n).filter(|&e| values.is_null(start + e)).fold(0, |m, e| m | 1 << (n - 1 - e));
            let masks = (0..1u64 << n).filter(|m| m & nulls == 0).collect();
            Rows::Combinations { start, n, masks }
        }
    }
}

/// The output column of table function `k`, row after row, null where its result is shorter.
fn function_column(list: &ListArray, per_row: &[Vec<Rows>], k: usize, function: TableFunction, dt: &DataType) -> Result<ArrayRef> {
    let values = list.values();
    let longest = |rows: &Vec<Rows>| rows.iter().map(Rows::len).max().unwrap_or(0);
    match (function, dt) {
        (TableFunction::CubeExplode, DataType::List(field)) => {
            // CUBE_EXPLODE: a list per combination.
            let mut child: Vec<Option<u32>> = Vec::new();
            let mut offsets: Vec<i32> = vec![0];
            let mut valid: Vec<bool> = Vec::new();
            for rows in per_row {
                let n_out = longest(rows);
                let (start, n, masks) = match &rows[k] {
                    Rows::Combinations { start, n, masks } => (*start, *n, masks.as_slice()),
                    Rows::Elements { .. } => (0, 0, &[][..]),
                };
                for j in 0..n_out {
                    match masks.get(j) {
                        Some(m) => {
                            child.extend((0..n).map(|e| (m >> (n - 1 - e) & 1 == 1).then_some((start + e) as u32)));
                            valid.push(true);
                        }
                        None => valid.push(false),
                    }
                    offsets.push(child.len() as i32);
                }
            }
            let child = take(values.as_ref(), &UInt32Array::from(child), None)?;
            let nulls = datafusion::arrow::buffer::NullBuffer::from(valid);
            Ok(Arc::new(ListArray::try_new(field.clone(), OffsetBuffer::new(offsets.into()), child, Some(nulls))?))
        }
        _ => {
            let mut idx: Vec<Option<u32>> = Vec::new();
            for rows in per_row {
                let n_out = longest(rows);
                let (start, len) = match &rows[k] {
                    Rows::Elements { start, len } => (*start, *len),
                    Rows::Combinations { .. } => (0, 0),
                };
                idx.extend((0..n_out).map(|j| (j < len).then_some((start + j) as u32)));
            }
            Ok(take(values.as_ref(), &UInt32Array::from(idx), None)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::with_internal;
    use crate::spec::TableFunctionCall;
    use datafusion::arrow::array::{Int64Array, Int8Array, ListArray};
    use datafusion::arrow::datatypes::{Field, Int64Type};

    fn input() -> RecordBatch {
        let a = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
            Some(vec![Some(3), None]),
        ]);
        let b = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(10)]), Some(vec![Some(20)]), Some(vec![])]);
        let schema = with_internal([
            Field::new("A", a.data_type().clone(), true),
            Field::new("B", b.data_type().clone(), true),
        ]);
        RecordBatch::try_new(
            schema,
            vec![Arc::new(a), Arc::new(b), Arc::new(Int64Array::from(vec![1, 2, 3])), Arc::new(Int8Array::from(vec![0, 0, 0]))],
        )
        .unwrap()
    }

    #[test]
    fn explodes_and_pads_with_nulls() {
        let b = input();
        let spec = ExplodeSpec {
            functions: vec![
                TableFunctionCall { function: TableFunction::Explode, arg: 0 },
                TableFunctionCall { function: TableFunction::Explode, arg: 1 },
            ],
        };
        let list_t = b.schema().field(0).data_type().clone();
        let schema = with_internal([
            Field::new("A", list_t.clone(), true),
            Field::new("B", list_t, true),
            Field::new("X", DataType::Int64, true),
            Field::new("Y", DataType::Int64, true),
        ]);
        let out = explode(&spec, &schema, &b).unwrap().unwrap();
        let x: Vec<Option<i64>> = out.column(2).as_primitive::<Int64Type>().iter().collect();
        let y: Vec<Option<i64>> = out.column(3).as_primitive::<Int64Type>().iter().collect();
        let ts: Vec<Option<i64>> = out.column(4).as_primitive::<Int64Type>().iter().collect();
        assert_eq!(x, vec![Some(1), Some(2), None, Some(3), None]);
        assert_eq!(y, vec![Some(10), None, Some(20), None, None]);
        assert_eq!(ts, vec![Some(1), Some(1), Some(2), Some(3), Some(3)]);
    }

    #[test]
    fn cube_skips_combinations_keeping_nulls() {
        let b = input();
        let spec = ExplodeSpec { functions: vec![TableFunctionCall { function: TableFunction::CubeExplode, arg: 0 }] };
        let list_t = b.schema().field(0).data_type().clone();
        let schema = with_internal([
            Field::new("A", list_t.clone(), true),
            Field::new("B", list_t.clone(), true),
            Field::new("C", list_t, true),
        ]);
        let out = explode(&spec, &schema, &b).unwrap().unwrap();
        let c = out.column(2).as_list::<i32>();
        let rows: Vec<Vec<Option<i64>>> =
            (0..c.len()).map(|i| c.value(i).as_primitive::<Int64Type>().iter().collect()).collect();
        assert_eq!(
            rows,
            vec![
                vec![None, None],
                vec![None, Some(2)],
                vec![Some(1), None],
                vec![Some(1), Some(2)],
                vec![None, None],
                vec![Some(3), None],
            ]
        );
    }

    #[test]
    fn through_the_harness_each_row_becomes_its_elements_with_its_time_and_op() {
        let b = input();
        let spec = ExplodeSpec { functions: vec![TableFunctionCall { function: TableFunction::Explode, arg: 0 }] };
        let list_t = b.schema().field(0).data_type().clone();
        let schema = with_internal([
            Field::new("A", list_t.clone(), true),
            Field::new("B", list_t, true),
            Field::new("X", DataType::Int64, true),
        ]);
        let mut h = crate::testing::Harness::new(move || Box::new(ExplodeOp::new(spec.clone(), schema.clone())));
        h.batch(0, b);
        h.restart();
        // A null list gives no rows; the input columns are carried along.
        assert_eq!(h.output(), ["[1, 2] [10] 1 @1 +", "[1, 2] [10] 2 @1 +", "[3, ] [] 3 @3 +", "[3, ] [] null @3 +"]);
    }
}
