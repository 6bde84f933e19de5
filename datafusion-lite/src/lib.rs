//! The parts of Apache DataFusion that Eddy uses, under the module names of the `datafusion`
//! crate (`datafusion::arrow`, `datafusion::logical_expr`, `datafusion::physical_expr`, ...), so
//! that code reads as if it used `datafusion` itself.
//!
//! Eddy binds expressions (`logical_expr`), simplifies them (`optimizer`), compiles them
//! (`physical_expr`) and calls DataFusion's scalar functions; it parses with `sqlparser`. The
//! `datafusion` crate would also build DataFusion's query engine (physical plans and their
//! optimizer, data sources, catalogs, the SQL planner), which Eddy never calls: leaving those
//! crates out shortens a cold build and the release binary (figures in docs/building.md).

pub use arrow;

/// `datafusion::common`: schemas, scalar values, errors, tree visitors.
pub mod common {
    pub use datafusion_common::*;
}

/// `datafusion::error`.
pub mod error {
    pub use datafusion_common::{DataFusionError, Result, SharedResult};
}

/// `datafusion::scalar`.
pub mod scalar {
    pub use datafusion_common::{ScalarType, ScalarValue};
}

/// `datafusion::logical_expr`: expressions before compilation.
pub mod logical_expr {
    pub use datafusion_expr::*;
}

/// `datafusion::optimizer`: the expression simplifier.
pub mod optimizer {
    pub use datafusion_optimizer::*;
}

/// `datafusion::physical_expr`: compiled expressions.
pub mod physical_expr {
    pub use datafusion_physical_expr::*;
}

/// `datafusion::functions`: the scalar function library.
pub mod functions {
    pub use datafusion_functions::*;
}

/// `datafusion::functions_nested`: array and map functions.
pub mod functions_nested {
    pub use datafusion_functions_nested::*;
}

/// `datafusion::sql`: the SQL parser.
pub mod sql {
    pub use sqlparser;
}
