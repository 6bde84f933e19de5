//! The parts of Apache DataFusion that Eddy uses, under the module names of the `datafusion`
//! crate (`datafusion::arrow`, `datafusion::logical_expr`, `datafusion::physical_expr`, ...), so
//! that code reads as if it used `datafusion` itself.
//!
//! Eddy binds expressions (`logical_expr`), simplifies them (`optimizer`), compiles them
//! (`physical_expr`) and calls DataFusion's scalar functions; it parses with `sqlparser`. The
//! streaming engine never calls DataFusion's query engine; pull queries with joins and
//! aggregates and the PostgreSQL system catalogs do (`prelude`, `execution`, `catalog`,
//! `datasource`, `physical_plan`, `sql::parser`).

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

/// `datafusion::sql`: the SQL parser, and DataFusion's statements over it.
pub mod sql {
    pub use datafusion_engine::sql::parser;
    pub use sqlparser;
}

/// `datafusion::prelude`: sessions of the query engine.
pub mod prelude {
    pub use datafusion_engine::prelude::*;
}

/// `datafusion::execution`: the query engine's sessions and runtime.
pub mod execution {
    pub use datafusion_engine::execution::*;
}

/// `datafusion::catalog`: schemas and the session API table providers see.
pub mod catalog {
    pub use datafusion_engine::catalog::*;
}

/// `datafusion::datasource`: table providers (in-memory tables, sources of plans).
pub mod datasource {
    pub use datafusion_engine::datasource::*;
}

/// `datafusion::physical_plan`: execution plans.
pub mod physical_plan {
    pub use datafusion_engine::physical_plan::*;
}
