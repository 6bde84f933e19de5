//! Evaluating DataFusion physical expressions on batches, ksqlDB style: an expression that fails
//! on some rows yields null for those rows (and a processing-log entry) instead of failing the
//! query. The whole batch is evaluated with the columnar kernel first; only when that fails are
//! rows evaluated one at a time to isolate the bad ones.

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::error::Result;
use crate::processing_log::{ErrorKind, ProcessingError};

/// Evaluates `expr` over every row of `batch`.
pub fn eval(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> datafusion::error::Result<ArrayRef> {
    expr.evaluate(batch)?.into_array(batch.num_rows())
}

/// Evaluates `expr`; rows on which it fails become null and are reported in `errors`.
pub fn eval_lenient(
    expr: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
    errors: &mut Vec<ProcessingError>,
) -> Result<ArrayRef> {
    match eval(expr, batch) {
        Ok(a) => Ok(a),
        Err(first) => {
            let dt: DataType = expr.data_type(batch.schema().as_ref())?;
            if batch.num_rows() <= 1 {
                errors.push(ProcessingError::new(ErrorKind::ExpressionError, format!("{expr}: {first}")));
                return Ok(new_null_array(&dt, batch.num_rows()));
            }
            let mut parts: Vec<ArrayRef> = Vec::with_capacity(batch.num_rows());
            for i in 0..batch.num_rows() {
                let row = batch.slice(i, 1);
                match eval(expr, &row) {
                    Ok(a) => parts.push(a),
                    Err(e) => {
                        errors.push(ProcessingError::new(ErrorKind::ExpressionError, format!("{expr}: {e}")));
                        parts.push(new_null_array(&dt, 1));
                    }
                }
            }
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            Ok(concat(&refs)?)
        }
    }
}
