//! The basic aggregates: COUNT, SUM, AVG, MIN, MAX. States serialise as little-endian bytes.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int32Type, Int64Type};
use datafusion::common::ScalarValue;

use super::function::{wrong_types, AggError, AggFunction, AggFunctionRef, AggState};

/// Names of the aggregate functions.
pub const NAMES: &[&str] = &["COUNT", "SUM", "SUM_LIST", "AVG", "MIN", "MAX"];

pub(super) fn create(name: &str, args: &[DataType], _params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    let one = |what: &str| -> Result<&DataType, AggError> {
        match args {
            [t] => Ok(t),
            _ => Err(AggError::Arguments(format!("{name} takes one argument ({what}), got {}", args.len()))),
        }
    };
    let numeric = |t: &DataType| matches!(t, DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal128(_, _));
    match name {
        "COUNT" => {
            if args.len() > 1 {
                return Err(AggError::Arguments(format!("COUNT takes one argument or *, got {}", args.len())));
            }
            Ok(Arc::new(Count { star: args.is_empty() }))
        }
        "SUM" => {
            let t = one("a number")?;
            if !numeric(t) {
                return Err(wrong_types("SUM", args, "a number"));
            }
            Ok(Arc::new(Sum { t: t.clone(), list: false }))
        }
        // SUM_LIST(ARRAY<number>): the sum of every element of every row's array.
        "SUM_LIST" => {
            let t = one("an ARRAY of numbers")?;
            match t {
                DataType::List(f) if numeric(f.data_type()) => Ok(Arc::new(Sum { t: f.data_type().clone(), list: true })),
                _ => Err(wrong_types("SUM_LIST", args, "an ARRAY of numbers")),
            }
        }
        "AVG" => {
            let t = one("a number")?;
            if !numeric(t) {
                return Err(wrong_types("AVG", args, "a number"));
            }
            Ok(Arc::new(Avg { t: t.clone() }))
        }
        "MIN" | "MAX" => {
            let t = one("a comparable value")?;
            let ok = numeric(t)
                || matches!(t, DataType::Utf8 | DataType::Date32 | DataType::Time32(_) | DataType::Timestamp(_, _) | DataType::Binary | DataType::Boolean);
            if !ok {
                return Err(wrong_types(name, args, "a number, STRING, BYTES, BOOLEAN, DATE, TIME or TIMESTAMP"));
            }
            Ok(Arc::new(MinMax { t: t.clone(), max: name == "MAX" }))
        }
        other => Err(AggError::Unknown(other.to_string())),
    }
}

fn read_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn read_i128(b: &[u8], at: usize) -> Option<i128> {
    Some(i128::from_le_bytes(b.get(at..at + 16)?.try_into().ok()?))
}

// ---- COUNT ----

#[derive(Debug)]
struct Count {
    star: bool,
}

#[derive(Debug)]
struct CountState {
    star: bool,
    n: i64,
}

impl AggFunction for Count {
    fn name(&self) -> &'static str {
        "COUNT"
    }
    fn return_type(&self) -> DataType {
        DataType::Int64
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::new(CountState { star: self.star, n: 0 })
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        Ok(Box::new(CountState { star: self.star, n: read_i64(b, 0).ok_or(AggError::Corrupt("COUNT"))? }))
    }
    fn supports_retract(&self) -> bool {
        true
    }
    fn merges_exactly(&self) -> bool {
        true
    }
}

impl AggState for CountState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        if self.star || args[0].is_valid(row) {
            self.n += 1;
        }
    }
    fn retract(&mut self, args: &[ArrayRef], row: usize) {
        if self.star || args[0].is_valid(row) {
            self.n -= 1;
        }
    }
    fn merge(&mut self, other: &dyn AggState) {
        if let Some(o) = other.as_any().downcast_ref::<CountState>() {
            self.n += o.n;
        }
    }
    fn evaluate(&self) -> ScalarValue {
        ScalarValue::Int64(Some(self.n))
    }
    fn save(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.n.to_le_bytes());
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

// ---- SUM ----

#[derive(Debug)]
struct Sum {
    /// The type summed (the element type for SUM_LIST).
    t: DataType,
    /// SUM_LIST: each argument is an array whose elements are summed.
    list: bool,
}

/// Integers and decimals sum exactly in i128; doubles in f64.
#[derive(Debug)]
struct SumState {
    t: DataType,
    list: bool,
    int: i128,
    float: f64,
}

impl SumState {
    fn add(&mut self, a: &ArrayRef, row: usize, sign: i128) {
        if !self.list {
            return add_value(&self.t, a, row, sign, &mut self.int, &mut self.float);
        }
        if a.is_null(row) {
            return;
        }
        let items = a.as_list::<i32>().value(row);
        for i in 0..items.len() {
            add_value(&self.t, &items, i, sign, &mut self.int, &mut self.float);
        }
    }
}

fn add_value(t: &DataType, a: &ArrayRef, row: usize, sign: i128, int: &mut i128, float: &mut f64) {
    if a.is_null(row) {
        return;
    }
    match t {
        DataType::Int32 => *int += sign * a.as_primitive::<Int32Type>().value(row) as i128,
        DataType::Int64 => *int += sign * a.as_primitive::<Int64Type>().value(row) as i128,
        DataType::Decimal128(_, _) => *int += sign * a.as_primitive::<Decimal128Type>().value(row),
        _ => *float += sign as f64 * a.as_primitive::<Float64Type>().value(row),
    }
}

impl AggFunction for Sum {
    fn name(&self) -> &'static str {
        if self.list {
            "SUM_LIST"
        } else {
            "SUM"
        }
    }
    fn return_type(&self) -> DataType {
        self.t.clone()
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::new(SumState { t: self.t.clone(), list: self.list, int: 0, float: 0.0 })
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let int = read_i128(b, 0).ok_or(AggError::Corrupt("SUM"))?;
        let float = f64::from_bits(read_i64(b, 16).ok_or(AggError::Corrupt("SUM"))? as u64);
        Ok(Box::new(SumState { t: self.t.clone(), list: self.list, int, float }))
    }
    fn supports_retract(&self) -> bool {
        true
    }
    fn merges_exactly(&self) -> bool {
        !matches!(self.t, DataType::Float64)
    }
}

impl AggState for SumState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        self.add(&args[0], row, 1);
    }
    fn retract(&mut self, args: &[ArrayRef], row: usize) {
        self.add(&args[0], row, -1);
    }
    fn merge(&mut self, other: &dyn AggState) {
        if let Some(o) = other.as_any().downcast_ref::<SumState>() {
            self.int += o.int;
            self.float += o.float;
        }
    }
    fn evaluate(&self) -> ScalarValue {
        match &self.t {
            // Java integer arithmetic wraps; so does ksqlDB's SUM.
            DataType::Int32 => ScalarValue::Int32(Some(self.int as i32)),
            DataType::Int64 => ScalarValue::Int64(Some(self.int as i64)),
            DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(self.int), *p, *s),
            _ => ScalarValue::Float64(Some(self.float)),
        }
    }
    fn save(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.int.to_le_bytes());
        out.extend_from_slice(&self.float.to_bits().to_le_bytes());
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

// ---- AVG ----

#[derive(Debug)]
struct Avg {
    t: DataType,
}

#[derive(Debug)]
struct AvgState {
    t: DataType,
    int: i128,
    float: f64,
    n: i64,
}

impl AggFunction for Avg {
    fn name(&self) -> &'static str {
        "AVG"
    }
    fn return_type(&self) -> DataType {
        DataType::Float64
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::new(AvgState { t: self.t.clone(), int: 0, float: 0.0, n: 0 })
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let c = AggError::Corrupt("AVG");
        let int = read_i128(b, 0).ok_or(AggError::Corrupt("AVG"))?;
        let float = f64::from_bits(read_i64(b, 16).ok_or(AggError::Corrupt("AVG"))? as u64);
        let n = read_i64(b, 24).ok_or(c)?;
        Ok(Box::new(AvgState { t: self.t.clone(), int, float, n }))
    }
    fn supports_retract(&self) -> bool {
        true
    }
    fn merges_exactly(&self) -> bool {
        !matches!(self.t, DataType::Float64)
    }
}

impl AggState for AvgState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        if args[0].is_valid(row) {
            add_value(&self.t, &args[0], row, 1, &mut self.int, &mut self.float);
            self.n += 1;
        }
    }
    fn retract(&mut self, args: &[ArrayRef], row: usize) {
        if args[0].is_valid(row) {
            add_value(&self.t, &args[0], row, -1, &mut self.int, &mut self.float);
            self.n -= 1;
        }
    }
    fn merge(&mut self, other: &dyn AggState) {
        if let Some(o) = other.as_any().downcast_ref::<AvgState>() {
            self.int += o.int;
            self.float += o.float;
            self.n += o.n;
        }
    }
    fn evaluate(&self) -> ScalarValue {
        if self.n == 0 {
            return ScalarValue::Float64(Some(0.0));
        }
        let total = match &self.t {
            DataType::Decimal128(_, s) => self.int as f64 / 10f64.powi(*s as i32),
            DataType::Float64 => self.float,
            _ => self.int as f64,
        };
        ScalarValue::Float64(Some(total / self.n as f64))
    }
    fn save(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.int.to_le_bytes());
        out.extend_from_slice(&self.float.to_bits().to_le_bytes());
        out.extend_from_slice(&self.n.to_le_bytes());
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

// ---- MIN / MAX ----

#[derive(Debug)]
struct MinMax {
    t: DataType,
    max: bool,
}

#[derive(Debug)]
struct MinMaxState {
    max: bool,
    t: DataType,
    v: ScalarValue,
}

impl AggFunction for MinMax {
    fn name(&self) -> &'static str {
        if self.max {
            "MAX"
        } else {
            "MIN"
        }
    }
    fn return_type(&self) -> DataType {
        self.t.clone()
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::new(MinMaxState { max: self.max, t: self.t.clone(), v: ScalarValue::try_from(&self.t).unwrap_or(ScalarValue::Null) })
    }
    fn merges_exactly(&self) -> bool {
        !matches!(self.t, DataType::Float32 | DataType::Float64)
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let v = crate::ops::aggregate::scalar_codec::decode(&self.t, b).ok_or(AggError::Corrupt("MIN/MAX"))?;
        Ok(Box::new(MinMaxState { max: self.max, t: self.t.clone(), v }))
    }
}

impl AggState for MinMaxState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        if args[0].is_null(row) {
            return;
        }
        let Ok(v) = ScalarValue::try_from_array(&args[0], row) else { return };
        self.offer(v);
    }
    fn merge(&mut self, other: &dyn AggState) {
        if let Some(o) = other.as_any().downcast_ref::<MinMaxState>() {
            if !o.v.is_null() {
                self.offer(o.v.clone());
            }
        }
    }
    fn evaluate(&self) -> ScalarValue {
        self.v.clone()
    }
    fn save(&self, out: &mut Vec<u8>) {
        crate::ops::aggregate::scalar_codec::encode(&self.v, out);
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl MinMaxState {
    fn offer(&mut self, v: ScalarValue) {
        let replace = self.v.is_null()
            || match v.partial_cmp(&self.v) {
                Some(std::cmp::Ordering::Greater) => self.max,
                Some(std::cmp::Ordering::Less) => !self.max,
                _ => false,
            };
        if replace {
            self.v = v;
        }
        let _ = &self.t;
    }
}
