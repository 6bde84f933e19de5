//! The scalar function registry: ksqlDB's names and semantics first, DataFusion's library as the
//! fallback for every other name.
//!
//! A function is a plain `fn` that gets the bound arguments (lambdas unbound, so that a function
//! like TRANSFORM can bind them with its own parameters) and returns a typed expression.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{lit, Cast, Expr, ScalarUDF};
use datafusion::sql::sqlparser::ast::LambdaFunction;

use super::{call_df, Binder, Typed};
use crate::error::{invalid, PlanError, Result};
use crate::types::type_name;

/// An argument of a function call.
#[derive(Debug, Clone)]
pub enum Arg {
    /// An expression.
    Value(Typed),
    /// A lambda, e.g. `x => x + 1`.
    Lambda(LambdaFunction),
    /// `*` as in COUNT(*).
    Star,
    /// `name := value` (STRUCT).
    Named(String, Typed),
    /// `key := value` with an expression key (MAP).
    KeyValue(Typed, Typed),
    /// A bare word (upper-cased) as the first argument of a function registered with
    /// [`FunctionRegistry::register_keyword_first`], e.g. the unit in `DATEADD(DAYS, 1, d)`.
    Keyword(String),
}

/// A scalar function implementation.
pub type ScalarFn = fn(&Binder<'_>, &str, Vec<Arg>) -> Result<Typed>;

/// All scalar functions by upper-case name.
pub struct FunctionRegistry {
    scalars: HashMap<String, ScalarFn>,
    datafusion: HashMap<String, Arc<ScalarUDF>>,
    keyword_first: std::collections::HashSet<String>,
}

impl Default for FunctionRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl FunctionRegistry {
    /// The built-in functions.
    pub fn new() -> Self {
        let mut datafusion = HashMap::new();
        let all = datafusion::functions::all_default_functions()
            .into_iter()
            .chain(datafusion::functions_nested::all_default_nested_functions());
        for udf in all {
            for n in std::iter::once(udf.name().to_string()).chain(udf.aliases().iter().cloned()) {
                datafusion.insert(n.to_uppercase(), udf.clone());
            }
        }
        let mut r = FunctionRegistry { scalars: HashMap::new(), datafusion, keyword_first: Default::default() };
        r.register_builtins();
        crate::functions::register_all(&mut r);
        r
    }

    /// Adds a function; fails when a function of that name (in any case) is registered already.
    pub fn try_register(&mut self, name: &str, f: ScalarFn) -> Result<()> {
        match self.scalars.entry(name.to_uppercase()) {
            std::collections::hash_map::Entry::Occupied(e) => {
                Err(PlanError::AlreadyExists { kind: "function", name: e.key().clone() })
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(f);
                Ok(())
            }
        }
    }

    /// Adds a built-in function.
    ///
    /// # Panics
    /// When the name is taken: a second built-in of one name would silently replace the first.
    pub fn register(&mut self, name: &str, f: ScalarFn) {
        if let Err(e) = self.try_register(name, f) {
            panic!("built-in {e}: each name is registered once");
        }
    }

    /// Marks `name` as taking a keyword (a bare word such as `DAYS`) as its first argument.
    pub fn register_keyword_first(&mut self, name: &str) {
        self.keyword_first.insert(name.to_uppercase());
    }

    /// True if the first argument of `name` is a keyword when written as a bare word.
    pub fn keyword_first(&self, name: &str) -> bool {
        self.keyword_first.contains(&name.to_uppercase())
    }

    /// A DataFusion function by (case-insensitive) name.
    pub fn datafusion(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.datafusion.get(&name.to_uppercase()).cloned()
    }

    /// True if a scalar function of this name exists.
    pub fn exists(&self, name: &str) -> bool {
        let n = name.to_uppercase();
        self.scalars.contains_key(&n) || self.datafusion.contains_key(&n)
    }

    /// Names of Eddy's own scalar functions (ksqlDB's library, not DataFusion's fallback), sorted.
    pub fn own_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.scalars.keys().filter(|n| !n.starts_with("__")).cloned().collect();
        v.sort();
        v
    }

    /// True if Eddy's own library has a scalar function of this name.
    pub fn is_own(&self, name: &str) -> bool {
        let n = name.to_uppercase();
        !n.starts_with("__") && self.scalars.contains_key(&n)
    }

    /// Names of all functions (for SHOW FUNCTIONS), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .scalars
            .keys()
            .filter(|n| !n.starts_with("__"))
            .chain(self.datafusion.keys())
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Binds a call of `name` with `args`.
    pub fn call(&self, b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
        let upper = name.to_uppercase();
        if let Some(f) = self.scalars.get(&upper) {
            return f(b, &upper, args);
        }
        if let Some(udf) = self.datafusion.get(&upper) {
            return call_df(b, udf.clone(), values(&upper, args)?);
        }
        Err(PlanError::UnknownObject { kind: "function", name: upper })
    }

    fn register_builtins(&mut self) {
        // Internal helpers the binder calls, and the STRUCT constructor (named arguments); every
        // other ksqlDB function is in `crate::functions`.
        self.register("__SUBSCRIPT", subscript);
        self.register("__CAST", cast);
        self.register("STRUCT", make_struct);
    }
}

/// The values of the arguments; lambdas and `*` are refused.
pub fn values(name: &str, args: Vec<Arg>) -> Result<Vec<Typed>> {
    args.into_iter()
        .map(|a| match a {
            Arg::Value(t) => Ok(t),
            Arg::Lambda(_) => Err(invalid(format!("function {name} does not take a lambda"))),
            Arg::Star => Err(invalid(format!("function {name} does not take *"))),
            Arg::Named(n, _) => Err(invalid(format!("function {name} does not take named arguments ({n} := ...)"))),
            Arg::KeyValue(_, _) => Err(invalid(format!("function {name} does not take key := value arguments"))),
            Arg::Keyword(k) => Err(PlanError::UnknownObject { kind: "column", name: k }),
        })
        .collect()
}

/// Calls the DataFusion function `name` with the argument values.
pub fn df(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let udf = b.functions.datafusion(name).unwrap_or_else(|| panic!("DataFusion has no function {name}"));
    call_df(b, udf, values(name, args)?)
}

fn subscript(b: &Binder<'_>, _name: &str, args: Vec<Arg>) -> Result<Typed> {
    let mut v = values("subscript", args)?;
    let idx = v.pop().expect("index");
    let base = v.pop().expect("base");
    match &base.dt {
        DataType::List(f) => {
            if !matches!(idx.dt, DataType::Int32 | DataType::Int64) {
                return Err(invalid(format!("array index must be INT or BIGINT, got {}", type_name(&idx.dt))));
            }
            let item = f.data_type().clone();
            let udf = b.functions.datafusion("array_element").expect("array_element");
            Ok(Typed::new(super::call_udf(udf, vec![base.expr, idx.cast_to(&DataType::Int64).expr]), item))
        }
        DataType::Map(f, _) => {
            let DataType::Struct(kv) = f.data_type() else { unreachable!("map entries are structs") };
            let (kt, vt) = (kv[0].data_type().clone(), kv[1].data_type().clone());
            let key = idx.cast_to(&kt);
            let extract = b.functions.datafusion("map_extract").expect("map_extract");
            let element = b.functions.datafusion("array_element").expect("array_element");
            let found = super::call_udf(extract, vec![base.expr, key.expr]);
            Ok(Typed::new(super::call_udf(element, vec![found, lit(1i64)]), vt))
        }
        other => Err(invalid(format!("cannot index into {}: [] works on ARRAY and MAP values", type_name(other)))),
    }
}

fn cast(_b: &Binder<'_>, _name: &str, args: Vec<Arg>) -> Result<Typed> {
    let mut v = values("cast", args)?;
    let to = v.pop().expect("target").dt;
    let x = v.pop().expect("value");
    if x.dt == DataType::Utf8 && matches!(to, DataType::Timestamp(_, _)) {
        // ksqlDB reads timestamps from text with its partial parser ('2019-07-09T01:00').
        let f = crate::functions::udf::udf("__string_to_timestamp", to.clone(), string_to_timestamp);
        return Ok(Typed::new(super::call_udf(f, vec![x.expr]), to));
    }
    if crate::functions::cast::needs_ksql_cast(&x.dt, &to) {
        let target = to.clone();
        let f = crate::functions::udf::udf("__ksql_cast", to.clone(), move |args, _| crate::functions::cast::ksql_cast(&args[0], &target));
        return Ok(Typed::new(super::call_udf(f, vec![x.expr]), to));
    }
    Ok(Typed::new(Expr::Cast(Cast::new(Box::new(x.expr), to.clone())), to))
}

/// STRING to TIMESTAMP: `yyyy[-MM[-dd[THH[:mm[:ss[.SSS]]]]]]` with an optional zone; text that
/// is no timestamp is an error naming it.
fn string_to_timestamp(
    args: &[datafusion::arrow::array::ArrayRef],
    _rows: usize,
) -> crate::functions::udf::DfResult<datafusion::arrow::array::ArrayRef> {
    use datafusion::arrow::array::{Array, AsArray, TimestampMillisecondArray};
    let s = args[0].as_string::<i32>();
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) {
            out.push(None);
            continue;
        }
        let text = s.value(i);
        let parsed = super::literal::partial_timestamp(text)
            .or_else(|| text.trim().split_once(' ').and_then(|(d, t)| super::literal::partial_timestamp(&format!("{d}T{t}"))));
        match parsed {
            Some(ms) => out.push(Some(ms)),
            None => {
                return Err(datafusion::error::DataFusionError::Execution(format!(
                    "cannot parse '{text}' as a TIMESTAMP: expected yyyy-MM-ddTHH:mm:ss.SSS (later parts may be left out) with an optional zone"
                )))
            }
        }
    }
    Ok(std::sync::Arc::new(TimestampMillisecondArray::from(out)))
}

fn make_struct(b: &Binder<'_>, _name: &str, args: Vec<Arg>) -> Result<Typed> {
    let mut exprs = Vec::new();
    let mut fields = Vec::new();
    for a in args {
        let Arg::Named(n, v) = a else { return Err(invalid("STRUCT takes name := value arguments")) };
        let v = if v.dt == DataType::Null { v.cast_to(&DataType::Utf8) } else { v };
        exprs.push(lit(n.clone()));
        exprs.push(v.expr);
        fields.push(datafusion::arrow::datatypes::Field::new(n, v.dt, true));
    }
    if fields.is_empty() {
        // STRUCT(): a struct without fields (it coerces to any STRUCT, every field null).
        let v = datafusion::common::ScalarValue::Struct(Arc::new(datafusion::arrow::array::StructArray::new_empty_fields(1, None)));
        return Ok(Typed::new(Expr::Literal(v, None), DataType::Struct(Default::default())));
    }
    for (i, f) in fields.iter().enumerate() {
        if fields[..i].iter().any(|g| g.name() == f.name()) {
            return Err(invalid(format!("Duplicate field names found in STRUCT: '{}'", f.name())));
        }
    }
    let udf = b.functions.datafusion("named_struct").expect("named_struct");
    Ok(Typed::new(super::call_udf(udf, exprs), DataType::Struct(fields.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(_b: &Binder<'_>, _name: &str, _args: Vec<Arg>) -> Result<Typed> {
        Ok(Typed::new(lit(1i32), DataType::Int32))
    }

    #[test]
    fn registering_a_name_twice_is_an_error() {
        let mut r = FunctionRegistry::new();
        r.try_register("MY_FN", one).expect("a new name");
        let e = r.try_register("my_fn", one).unwrap_err();
        assert_eq!(e.to_string(), "function \"MY_FN\" already exists");
        let e = r.try_register("ucase", one).unwrap_err();
        assert_eq!(e.to_string(), "function \"UCASE\" already exists");
    }

    #[test]
    #[should_panic(expected = "built-in function \"CONCAT\" already exists")]
    fn a_second_built_in_of_one_name_panics() {
        FunctionRegistry::new().register("concat", one);
    }

    #[test]
    fn the_built_ins_register_each_name_once() {
        // `new` panics on a duplicate; these names come from `crate::functions`.
        let r = FunctionRegistry::new();
        for name in ["UCASE", "LCASE", "LEN", "CONCAT", "IFNULL", "COALESCE", "ARRAY", "MAP", "STRUCT", "__CAST"] {
            assert!(r.exists(name), "{name}");
        }
    }
}
