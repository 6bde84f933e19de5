//! Moments: STDDEV_SAMP, STDDEV_SAMPLE, STDDEV_POP, VARIANCE, VAR_SAMP, VAR_POP (x) and
//! CORRELATION(x, y), all → DOUBLE over INT, BIGINT, DOUBLE or DECIMAL arguments.
//!
//! - STDDEV_SAMP and STDDEV_SAMPLE: the sample standard deviation, √(Σ(x-x̄)²/(n-1)); 0.0 for
//!   fewer than two values, as ksqlDB. (ksqlDB's STDDEV_SAMP returns the sample *variance*
//!   (standarddeviation.json expects 2.0 for 10 and 12); Eddy returns the standard deviation
//!   under both names and offers VARIANCE for the variance.)
//! - STDDEV_POP: √(Σ(x-x̄)²/n); VARIANCE = VAR_SAMP: Σ(x-x̄)²/(n-1); VAR_POP: Σ(x-x̄)²/n; 0.0 while
//!   there are too few values (Eddy extensions: ksqlDB has none of these three).
//! - CORRELATION: Pearson's r, Σ(x-x̄)(y-ȳ)/√(Σ(x-x̄)²Σ(y-ȳ)²); NaN for fewer than two points or
//!   a constant coordinate (correlation-udaf.json). Rows where x or y is null are skipped.
//!
//! Nulls are skipped. States use Youngs and Cramer's updates (stable, exact for integers, and
//! ksqlDB's: results agree to the last digit), run backwards for table retractions, and Chan's
//! formulas to merge sessions. State bytes: n (varint), Σx and M2 = Σ(x-x̄)² (8 bytes each;
//! CORRELATION: both of those for x and for y, then the co-moment C = Σ(x-x̄)(y-ȳ)).

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::super::function::{wrong_types, AggError, AggFunction, AggFunctionRef, AggState};
use super::{at_most, columns, get_f64, get_varint, is_numeric, number_at, put_varint};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    SampStd,
    PopStd,
    SampVar,
    PopVar,
}

pub(super) fn create(name: &str, args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    let [t] = columns(name, args, 1)? else { unreachable!("one column") };
    at_most(name, params, 0)?;
    if !is_numeric(t) {
        return Err(wrong_types(name, args, "a number"));
    }
    let (name, kind) = match name {
        "STDDEV_SAMP" => ("STDDEV_SAMP", Kind::SampStd),
        "STDDEV_SAMPLE" => ("STDDEV_SAMPLE", Kind::SampStd),
        "STDDEV_POP" => ("STDDEV_POP", Kind::PopStd),
        "VARIANCE" => ("VARIANCE", Kind::SampVar),
        "VAR_SAMP" => ("VAR_SAMP", Kind::SampVar),
        _ => ("VAR_POP", Kind::PopVar),
    };
    Ok(Arc::new(Spread { name, kind }))
}

pub(super) fn create_correlation(args: &[DataType], params: &[ScalarValue]) -> Result<AggFunctionRef, AggError> {
    let [x, y] = columns("CORRELATION", args, 2)? else { unreachable!("two columns") };
    at_most("CORRELATION", params, 0)?;
    if !is_numeric(x) || !is_numeric(y) {
        return Err(wrong_types("CORRELATION", args, "two numbers"));
    }
    Ok(Arc::new(Correlation))
}

/// Count, sum and sum of squared deviations of one variable, updated as Youngs and Cramer do
/// (and ksqlDB: its results agree to the last digit, exact for integer inputs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moments {
    n: u64,
    sum: f64,
    m2: f64,
}

impl Moments {
    /// Adds `x`; returns n·x − Σx after the addition (for co-moments).
    fn add(&mut self, x: f64) -> f64 {
        self.n += 1;
        self.sum += x;
        let n = self.n as f64;
        let d = n * x - self.sum;
        if self.n > 1 {
            self.m2 += d * d / (n * (n - 1.0));
        }
        d
    }

    /// Removes `x` (added before); returns n·x − Σx before the removal.
    fn remove(&mut self, x: f64) -> f64 {
        if self.n <= 1 {
            *self = Moments::default();
            return 0.0;
        }
        let n = self.n as f64;
        let d = n * x - self.sum;
        self.m2 = (self.m2 - d * d / (n * (n - 1.0))).max(0.0);
        self.sum -= x;
        self.n -= 1;
        d
    }

    /// Merges `o` (Chan et al.); returns na·Σb − nb·Σa and the divisor na·nb·n of cross terms.
    fn merge(&mut self, o: &Moments) -> (f64, f64) {
        if o.n == 0 {
            return (0.0, 1.0);
        }
        if self.n == 0 {
            *self = *o;
            return (0.0, 1.0);
        }
        let (na, nb) = (self.n as f64, o.n as f64);
        let d = na * o.sum - nb * self.sum;
        let div = na * nb * (na + nb);
        self.m2 += o.m2 + d * d / div;
        self.sum += o.sum;
        self.n += o.n;
        (d, div)
    }

    fn save(&self, out: &mut Vec<u8>) {
        put_varint(self.n, out);
        out.extend_from_slice(&self.sum.to_bits().to_le_bytes());
        out.extend_from_slice(&self.m2.to_bits().to_le_bytes());
    }

    fn load(b: &[u8], at: &mut usize) -> Option<Moments> {
        Some(Moments { n: get_varint(b, at)?, sum: get_f64(b, at)?, m2: get_f64(b, at)? })
    }
}

// ---- STDDEV / VARIANCE ----

#[derive(Debug)]
struct Spread {
    name: &'static str,
    kind: Kind,
}

#[derive(Debug)]
struct SpreadState {
    kind: Kind,
    w: Moments,
}

impl AggFunction for Spread {
    fn name(&self) -> &'static str {
        self.name
    }
    fn return_type(&self) -> DataType {
        DataType::Float64
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::new(SpreadState { kind: self.kind, w: Moments::default() })
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let mut at = 0;
        match Moments::load(b, &mut at) {
            Some(w) if at == b.len() => Ok(Box::new(SpreadState { kind: self.kind, w })),
            _ => Err(AggError::Corrupt(self.name)),
        }
    }
    fn supports_retract(&self) -> bool {
        true
    }
}

impl AggState for SpreadState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        if let Some(x) = number_at(&args[0], row) {
            self.w.add(x);
        }
    }
    fn retract(&mut self, args: &[ArrayRef], row: usize) {
        if let Some(x) = number_at(&args[0], row) {
            self.w.remove(x);
        }
    }
    fn merge(&mut self, other: &dyn AggState) {
        if let Some(o) = other.as_any().downcast_ref::<SpreadState>() {
            self.w.merge(&o.w);
        }
    }
    fn evaluate(&self) -> ScalarValue {
        let n = self.w.n as f64;
        let v = match self.kind {
            Kind::SampStd | Kind::SampVar if self.w.n < 2 => 0.0,
            Kind::PopStd | Kind::PopVar if self.w.n < 1 => 0.0,
            Kind::SampStd => (self.w.m2 / (n - 1.0)).sqrt(),
            Kind::SampVar => self.w.m2 / (n - 1.0),
            Kind::PopStd => (self.w.m2 / n).sqrt(),
            Kind::PopVar => self.w.m2 / n,
        };
        ScalarValue::Float64(Some(v))
    }
    fn save(&self, out: &mut Vec<u8>) {
        self.w.save(out);
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

// ---- CORRELATION ----

#[derive(Debug)]
struct Correlation;

#[derive(Debug, Default)]
struct CorrelationState {
    x: Moments,
    y: Moments,
    /// Σ(x-x̄)(y-ȳ).
    c: f64,
}

impl AggFunction for Correlation {
    fn name(&self) -> &'static str {
        "CORRELATION"
    }
    fn return_type(&self) -> DataType {
        DataType::Float64
    }
    fn new_state(&self) -> Box<dyn AggState> {
        Box::<CorrelationState>::default()
    }
    fn load(&self, b: &[u8]) -> Result<Box<dyn AggState>, AggError> {
        let mut at = 0;
        let st = (|| {
            let x = Moments::load(b, &mut at)?;
            let y = Moments::load(b, &mut at)?;
            let c = get_f64(b, &mut at)?;
            (x.n == y.n && at == b.len()).then_some(CorrelationState { x, y, c })
        })();
        st.map(|s| Box::new(s) as Box<dyn AggState>).ok_or(AggError::Corrupt("CORRELATION"))
    }
    fn supports_retract(&self) -> bool {
        true
    }
}

impl AggState for CorrelationState {
    fn update(&mut self, args: &[ArrayRef], row: usize) {
        if let (Some(x), Some(y)) = (number_at(&args[0], row), number_at(&args[1], row)) {
            let dx = self.x.add(x);
            let dy = self.y.add(y);
            if self.x.n > 1 {
                let n = self.x.n as f64;
                self.c += dx * dy / (n * (n - 1.0));
            }
        }
    }
    fn retract(&mut self, args: &[ArrayRef], row: usize) {
        if let (Some(x), Some(y)) = (number_at(&args[0], row), number_at(&args[1], row)) {
            if self.x.n <= 1 {
                *self = CorrelationState::default();
                return;
            }
            let n = self.x.n as f64;
            let dx = self.x.remove(x);
            let dy = self.y.remove(y);
            self.c -= dx * dy / (n * (n - 1.0));
        }
    }
    fn merge(&mut self, other: &dyn AggState) {
        if let Some(o) = other.as_any().downcast_ref::<CorrelationState>() {
            let (dx, div) = self.x.merge(&o.x);
            let (dy, _) = self.y.merge(&o.y);
            // An empty side has a zero co-moment and contributes no cross term (dx = 0).
            self.c += o.c + dx * dy / div;
        }
    }
    fn evaluate(&self) -> ScalarValue {
        ScalarValue::Float64(Some(self.c / (self.x.m2 * self.y.m2).sqrt()))
    }
    fn save(&self, out: &mut Vec<u8>) {
        self.x.save(out);
        self.y.save(out);
        out.extend_from_slice(&self.c.to_bits().to_le_bytes());
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn f64s(v: &[ScalarValue]) -> Vec<f64> {
        v.iter().map(|s| if let ScalarValue::Float64(Some(x)) = s { *x } else { panic!("{s:?}") }).collect()
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-9 * w.abs().max(1.0), "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn standard_deviations() {
        // standarddeviation.json "stddev_sample double map".
        let col = doubles(&[Some(10.0), Some(12.0), Some(13.0), Some(14.0), None, Some(16.0)]);
        let want =
            [0.0, std::f64::consts::SQRT_2, 1.5275252316519465, 1.707825127659933, 1.707825127659933, 2.23606797749979];
        for name in ["STDDEV_SAMPLE", "STDDEV_SAMP"] {
            let f = bind(name, &[DataType::Float64], &[]);
            let mut st = f.new_state();
            close(&f64s(&feed(&mut st, std::slice::from_ref(&col))), &want);
            reload(&f, st.as_ref());
        }
        // ksqlDB's STDDEV_SAMP numbers are these variances.
        let f = bind("VARIANCE", &[DataType::Float64], &[]);
        let mut st = f.new_state();
        close(
            &f64s(&feed(&mut st, std::slice::from_ref(&col))),
            &[0.0, 2.0, 2.333333333333333, 2.9166666666666665, 2.9166666666666665, 5.0],
        );
        let f = bind("VAR_POP", &[DataType::Float64], &[]);
        let mut st = f.new_state();
        close(&f64s(&feed(&mut st, std::slice::from_ref(&col))), &[0.0, 1.0, 14.0 / 9.0, 2.1875, 2.1875, 4.0]);
        let f = bind("STDDEV_POP", &[DataType::Int64], &[]);
        let mut st = f.new_state();
        close(
            &f64s(
                &feed(&mut st, &[ints(&[Some(2), Some(4), Some(4), Some(4), Some(5), Some(5), Some(7), Some(9)])])[7..],
            ),
            &[2.0],
        );
        // stddev_sample long, key 0: 2147483648, 100, -2.
        let f = bind("STDDEV_SAMPLE", &[DataType::Int64], &[]);
        let mut st = f.new_state();
        close(
            &f64s(&feed(&mut st, &[ints(&[Some(2147483648), Some(100), Some(-2)])])),
            &[0.0, 1518500179.2773468, 1239850233.9629574],
        );
    }

    #[test]
    fn retract_and_merge_moments() {
        let f = bind("STDDEV_SAMP", &[DataType::Float64], &[]);
        let all = doubles(&[Some(1.0), Some(5.0), Some(2.5), Some(-3.0), Some(8.0)]);
        let mut st = f.new_state();
        feed(&mut st, std::slice::from_ref(&all));
        unfeed(&mut st, &[doubles(&[Some(5.0), Some(-3.0)])]);
        let mut direct = f.new_state();
        feed(&mut direct, &[doubles(&[Some(1.0), Some(2.5), Some(8.0)])]);
        close(&f64s(&[st.evaluate()]), &f64s(&[direct.evaluate()]));
        unfeed(&mut st, &[doubles(&[Some(1.0), Some(2.5), Some(8.0)])]);
        assert_eq!(st.evaluate(), ScalarValue::Float64(Some(0.0)));
        let (mut a, mut b) = (f.new_state(), f.new_state());
        feed(&mut a, &[doubles(&[Some(1.0), Some(5.0)])]);
        feed(&mut b, &[doubles(&[Some(2.5), Some(-3.0), Some(8.0)])]);
        a.merge(b.as_ref());
        let mut whole = f.new_state();
        feed(&mut whole, &[all]);
        close(&f64s(&[a.evaluate()]), &f64s(&[whole.evaluate()]));
        reload(&f, a.as_ref());
    }

    #[test]
    fn correlation_matches_ksqldb() {
        // correlation-udaf.json "correlation double", alice and bob interleaved per key.
        let f = bind("CORRELATION", &[DataType::Float64, DataType::Float64], &[]);
        let mut alice = f.new_state();
        let xs = doubles(&[Some(1.5), Some(-1.0), Some(-4.5), None]);
        let ys = doubles(&[Some(8.0), Some(-2.0), Some(-1.0), Some(-6.0)]);
        close(&f64s(&feed(&mut alice, &[xs, ys])), &[f64::NAN, 1.0, 0.7580764521133173, 0.7580764521133173]);
        reload(&f, alice.as_ref());
        let f = bind("CORRELATION", &[DataType::Int32, DataType::Int64], &[]);
        let mut st = f.new_state();
        let xs = col(vec![ScalarValue::Int32(Some(1)), ScalarValue::Int32(Some(-1)), ScalarValue::Int32(Some(-4))]);
        let ys = ints(&[Some(8), Some(-2), Some(-1)]);
        close(&f64s(&feed(&mut st, &[xs, ys])), &[f64::NAN, 1.0, 0.7455284088780169]);
    }

    #[test]
    fn correlation_over_a_table() {
        // correlation-udaf.json "correlation udaf with table": alice's row changes.
        let f = bind("CORRELATION", &[DataType::Float64, DataType::Float64], &[]);
        let mut st = f.new_state();
        let mut got = feed(&mut st, &[doubles(&[Some(1.5), Some(-3.5)]), doubles(&[Some(8.0), Some(-2.0)])]);
        unfeed(&mut st, &[doubles(&[Some(1.5)]), doubles(&[Some(8.0)])]);
        got.extend(feed(&mut st, &[doubles(&[Some(-1.0), Some(-4.5)]), doubles(&[Some(-2.0), Some(-1.0)])]));
        close(&f64s(&got), &[f64::NAN, 1.0, f64::NAN, -0.7205766921228921]);
        let st = reload(&f, st.as_ref());
        // Merging halves gives the whole.
        let (mut a, mut b) = (f.new_state(), f.new_state());
        feed(&mut a, &[doubles(&[Some(-3.5)]), doubles(&[Some(-2.0)])]);
        feed(&mut b, &[doubles(&[Some(-1.0), Some(-4.5)]), doubles(&[Some(-2.0), Some(-1.0)])]);
        a.merge(b.as_ref());
        close(&f64s(&[a.evaluate()]), &f64s(&[st.evaluate()]));
        let mut empty = f.new_state();
        empty.merge(st.as_ref());
        close(&f64s(&[empty.evaluate()]), &f64s(&[st.evaluate()]));
    }

    #[test]
    fn argument_checks() {
        use super::super::super::function::create_aggregate;
        assert!(create_aggregate("STDDEV_SAMP", &[DataType::Utf8], &[]).is_err());
        assert!(create_aggregate("CORRELATION", &[DataType::Float64], &[]).is_err());
        assert!(create_aggregate("CORRELATION", &[DataType::Float64, DataType::Utf8], &[]).is_err());
    }
}
