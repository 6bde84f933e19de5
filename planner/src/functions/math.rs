//! ksqlDB's math functions: ABS, SIGN, ROUND, TRUNC, FLOOR, CEIL, the DOUBLE functions (SQRT,
//! CBRT, EXP, LN, LOG (natural, or LOG(base, x)), POWER, trigonometry, DEGREES, RADIANS), RANDOM, PI and GEO_DISTANCE.
//!
//! Integers keep their type through ABS, ROUND, TRUNC, FLOOR and CEIL; DECIMALs keep theirs
//! except ROUND(d) and TRUNC(d), which give DECIMAL(p - s, 0) as in ksqlDB. ROUND rounds half
//! up towards positive infinity (Java's `Math.round`: ROUND(-1.5) is -1), on the decimal digits
//! Java prints for a DOUBLE. The DOUBLE functions follow Java: LN(0) is -Infinity, SQRT(-1) NaN.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int32Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int32Type, Int64Type};

use super::udf::{arity, call, exec_err, expect, no_match, DfResult};
use crate::binder::coerce::is_numeric;
use crate::binder::functions::{df, Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;

/// Registers the math functions.
pub fn register(r: &mut FunctionRegistry) {
    r.register("ABS", abs);
    r.register("SIGN", sign);
    for n in ["ROUND", "TRUNC", "FLOOR", "CEIL", "CEILING"] {
        r.register(n, rounding);
    }
    for n in [
        "SQRT", "CBRT", "EXP", "LN", "ACOS", "ASIN", "ATAN", "COS", "COSH", "COT", "SIN", "SINH", "TAN", "TANH", "DEGREES",
        "RADIANS",
    ] {
        r.register(n, unary_double);
    }
    r.register("LOG", log);
    r.register("POWER", binary_double);
    r.register("POW", binary_double);
    r.register("ATAN2", binary_double);
    r.register("RANDOM", random);
    r.register("PI", pi);
    r.register("GEO_DISTANCE", geo_distance);
}

fn numeric_arg(name: &str, v: &[Typed]) -> Result<Typed> {
    let t = &v[0];
    match &t.dt {
        DataType::Null => Ok(t.clone().cast_to(&DataType::Int32)),
        dt if is_numeric(dt) => Ok(t.clone()),
        _ => Err(no_match(name, v)),
    }
}

fn abs(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let x = numeric_arg(name, &v)?;
    let dt = x.dt.clone();
    df(b, "abs", vec![Arg::Value(x)]).map(|t| t.cast_to(&dt))
}

fn sign(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let x = numeric_arg(name, &v)?.cast_to(&DataType::Float64);
    Ok(call("sign", DataType::Int32, vec![x], |a, _n| {
        let out: Int32Array = a[0]
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map(|v| if v > 0.0 { 1 } else if v < 0.0 { -1 } else { 0 }))
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

/// How ROUND, TRUNC, FLOOR and CEIL drop digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Half up towards positive infinity.
    Round,
    /// Towards zero.
    Trunc,
    /// Towards negative infinity.
    Floor,
    /// Towards positive infinity.
    Ceil,
}

/// `v` (an unscaled decimal of scale `scale`) with its digits past `places` dropped by `mode`,
/// still at scale `scale`; None on overflow.
fn drop_digits(v: i128, scale: i32, places: i32, mode: Mode) -> Option<i128> {
    if places >= scale {
        return Some(v);
    }
    let n = (scale - places) as u32;
    if n > 38 {
        return Some(match mode {
            Mode::Floor if v < 0 => return None,
            Mode::Ceil if v > 0 => return None,
            _ => 0,
        });
    }
    let d = 10i128.pow(n);
    let q = match mode {
        Mode::Trunc => v / d,
        Mode::Floor => v.div_euclid(d),
        Mode::Ceil => -((-v).div_euclid(d)),
        Mode::Round => {
            let (q, r) = (v.div_euclid(d), v.rem_euclid(d));
            if 2 * r >= d {
                q + 1
            } else {
                q
            }
        }
    };
    q.checked_mul(d)
}

/// `x` with its decimal digits (as Java prints them) past `places` dropped by `mode`.
fn drop_double_digits(x: f64, places: i32, mode: Mode) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent");
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let Ok(unscaled) = digits.parse::<i128>() else { return x };
    let unscaled = if neg { -unscaled } else { unscaled };
    let scale = digits.len() as i32 - 1 - exp;
    match drop_digits(unscaled, scale, places, mode) {
        Some(v) => format!("{v}e{}", -scale).parse().unwrap_or(x),
        None => x,
    }
}

fn rounding(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let (min_args, max_args) = if matches!(name, "ROUND" | "TRUNC") { (1, 2) } else { (1, 1) };
    let v = arity(name, args, min_args, max_args)?;
    let mode = match name {
        "ROUND" => Mode::Round,
        "TRUNC" => Mode::Trunc,
        "FLOOR" => Mode::Floor,
        _ => Mode::Ceil,
    };
    let x = numeric_arg(name, &v)?;
    let places = if v.len() == 2 { Some(expect(name, &v, 1, &DataType::Int32)?) } else { None };
    let fname = name.to_lowercase();
    let with_places = places.is_some();
    let mut args = vec![x.clone()];
    args.extend(places);
    let place = |a: &[ArrayRef], i: usize| -> Option<i32> {
        match a.get(1) {
            None => Some(0),
            Some(p) if p.is_null(i) => None,
            Some(p) => Some(p.as_primitive::<Int32Type>().value(i)),
        }
    };
    Ok(match x.dt.clone() {
        DataType::Int32 | DataType::Int64 => {
            let dt = x.dt.clone();
            call(&fname, dt.clone(), args, move |a, n| {
                let val = |i: usize| -> Option<i128> {
                    if a[0].is_null(i) {
                        return None;
                    }
                    Some(match a[0].data_type() {
                        DataType::Int32 => a[0].as_primitive::<Int32Type>().value(i) as i128,
                        _ => a[0].as_primitive::<Int64Type>().value(i) as i128,
                    })
                };
                let r = |i: usize| drop_digits(val(i)?, 0, place(a, i)?, mode);
                Ok(if dt == DataType::Int32 {
                    Arc::new((0..n).map(|i| r(i).and_then(|v| i32::try_from(v).ok())).collect::<Int32Array>()) as ArrayRef
                } else {
                    Arc::new((0..n).map(|i| r(i).and_then(|v| i64::try_from(v).ok())).collect::<Int64Array>())
                })
            })
        }
        DataType::Float64 if !with_places && matches!(mode, Mode::Round | Mode::Trunc) => {
            call(&fname, DataType::Int64, args, move |a, _n| {
                let out: Int64Array = a[0]
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(|v| if mode == Mode::Round { java_round(v) } else { v.trunc() as i64 }))
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            })
        }
        DataType::Float64 => call(&fname, DataType::Float64, args, move |a, n| {
            let d = a[0].as_primitive::<Float64Type>();
            let out: Float64Array = (0..n)
                .map(|i| {
                    if d.is_null(i) {
                        return None;
                    }
                    let v = d.value(i);
                    Some(match (mode, with_places) {
                        (Mode::Floor, _) => v.floor(),
                        (Mode::Ceil, _) => v.ceil(),
                        _ => drop_double_digits(v, place(a, i)?, mode),
                    })
                })
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        }),
        DataType::Decimal128(p, s) => {
            let out_type = if with_places || matches!(mode, Mode::Floor | Mode::Ceil) {
                DataType::Decimal128(p, s)
            } else {
                DataType::Decimal128((p as i16 - s as i16).max(1) as u8, 0)
            };
            let ret = out_type.clone();
            call(&fname, out_type, args, move |a, n| -> DfResult<ArrayRef> {
                let d = a[0].as_primitive::<Decimal128Type>();
                let (p2, s2) = match ret {
                    DataType::Decimal128(p2, s2) => (p2, s2),
                    _ => unreachable!("decimal result"),
                };
                let out: Decimal128Array = (0..n)
                    .map(|i| {
                        if d.is_null(i) {
                            return None;
                        }
                        let v = drop_digits(d.value(i), s as i32, place(a, i)?, mode)?;
                        Some(if s2 == s { v } else { v / 10i128.pow((s - s2) as u32) })
                    })
                    .collect();
                Ok(Arc::new(out.with_precision_and_scale(p2, s2).map_err(|e| exec_err(e.to_string()))?))
            })
        }
        _ => return Err(no_match(name, &v)),
    })
}

/// Java's `Math.round(double)`: half up towards positive infinity, NaN as 0.
fn java_round(v: f64) -> i64 {
    if v.is_nan() {
        0
    } else {
        (v + 0.5).floor() as i64
    }
}

fn double_arg(name: &str, v: &[Typed], i: usize) -> Result<Typed> {
    expect(name, v, i, &DataType::Float64)
}

/// A DOUBLE function of one DOUBLE.
fn unary_fn(name: &str) -> fn(f64) -> f64 {
    match name {
        "SQRT" => f64::sqrt,
        "CBRT" => f64::cbrt,
        "EXP" => f64::exp,
        "LN" => f64::ln,
        "ACOS" => f64::acos,
        "ASIN" => f64::asin,
        "ATAN" => f64::atan,
        "COS" => f64::cos,
        "COSH" => f64::cosh,
        "COT" => |x| 1.0 / x.tan(),
        "SIN" => f64::sin,
        "SINH" => f64::sinh,
        "TAN" => f64::tan,
        "TANH" => f64::tanh,
        "DEGREES" => f64::to_degrees,
        "RADIANS" => f64::to_radians,
        other => panic!("no DOUBLE function {other}"),
    }
}

fn map_doubles(name: &str, args: Vec<Typed>, f: impl Fn(&[f64]) -> f64 + Send + Sync + 'static) -> Typed {
    call(name, DataType::Float64, args, move |a, n| {
        let cols: Vec<&Float64Array> = a.iter().map(|c| c.as_primitive::<Float64Type>()).collect();
        let mut vals = vec![0.0; cols.len()];
        let out: Float64Array = (0..n)
            .map(|i| {
                for (k, c) in cols.iter().enumerate() {
                    if c.is_null(i) {
                        return None;
                    }
                    vals[k] = c.value(i);
                }
                Some(f(&vals))
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    })
}

fn unary_double(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let x = double_arg(name, &v, 0)?;
    let f = unary_fn(name);
    Ok(map_doubles(&name.to_lowercase(), vec![x], move |x| f(x[0])))
}

fn binary_double(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let xs = vec![double_arg(name, &v, 0)?, double_arg(name, &v, 1)?];
    Ok(if name == "ATAN2" {
        map_doubles("atan2", xs, |x| x[0].atan2(x[1]))
    } else {
        map_doubles("power", xs, |x| x[0].powf(x[1]))
    })
}

fn log(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 2)?;
    if v.len() == 1 {
        // ksqlDB's one-argument LOG is the natural logarithm.
        return Ok(map_doubles("log", vec![double_arg(name, &v, 0)?], |x| x[0].ln()));
    }
    let xs = vec![double_arg(name, &v, 0)?, double_arg(name, &v, 1)?];
    Ok(map_doubles("log", xs, |x| {
        let (base, value) = (x[0], x[1]);
        if base <= 0.0 || base == 1.0 {
            f64::NAN
        } else {
            value.ln() / base.ln()
        }
    }))
}

fn random(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    arity(name, args, 0, 0)?;
    df(b, "random", vec![])
}

fn pi(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    arity(name, args, 0, 0)?;
    Ok(super::udf::literal(datafusion::common::ScalarValue::Float64(Some(std::f64::consts::PI)), DataType::Float64))
}

/// The great-circle distance between two points, with Earth's radius in the given unit.
pub fn haversine(lat1: f64, lon1: f64, lat2: f64, lon2: f64, radius: f64) -> f64 {
    let (dlat, dlon) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let a = (dlat / 2.0).sin().powi(2) + (dlon / 2.0).sin().powi(2) * lat1.to_radians().cos() * lat2.to_radians().cos();
    2.0 * a.sqrt().asin() * radius
}

fn geo_distance(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 4, 5)?;
    let mut xs = (0..4).map(|i| double_arg(name, &v, i)).collect::<Result<Vec<_>>>()?;
    if v.len() == 5 {
        xs.push(expect(name, &v, 4, &DataType::Utf8)?);
    }
    Ok(call("geo_distance", DataType::Float64, xs, |a, n| {
        let c: Vec<&Float64Array> = a[..4].iter().map(|c| c.as_primitive::<Float64Type>()).collect();
        let unit = a.get(4).map(|u| u.as_string::<i32>());
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if c.iter().any(|c| c.is_null(i)) {
                out.push(None);
                continue;
            }
            let radius = match unit.filter(|u| u.is_valid(i)).map(|u| u.value(i).trim().to_ascii_uppercase()) {
                None => 6371.0,
                Some(u) if u == "KM" || u == "KILOMETERS" || u == "KILOMETRES" => 6371.0,
                Some(u) if u == "MI" || u == "MILES" => 3959.0,
                Some(u) => return Err(exec_err(format!("geo_distance: unknown radius unit {u}"))),
            };
            let (lat1, lon1, lat2, lon2) = (c[0].value(i), c[1].value(i), c[2].value(i), c[3].value(i));
            if lat1.abs() > 90.0 || lat2.abs() > 90.0 || lon1.abs() > 180.0 || lon2.abs() > 180.0 {
                return Err(exec_err("geo_distance: latitudes must be within [-90, 90] and longitudes within [-180, 180]"));
            }
            out.push(Some(haversine(lat1, lon1, lat2, lon2, radius)));
        }
        Ok(Arc::new(Float64Array::from(out)) as ArrayRef)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_ksqldb() {
        assert_eq!(drop_digits(-15, 1, 0, Mode::Round), Some(-10));
        assert_eq!(drop_digits(15, 1, 0, Mode::Round), Some(20));
        assert_eq!(drop_digits(-17, 1, 0, Mode::Round), Some(-20));
        assert_eq!(drop_digits(-17, 1, 0, Mode::Trunc), Some(-10));
        assert_eq!(drop_digits(-11, 1, 0, Mode::Floor), Some(-20));
        assert_eq!(drop_digits(-11, 1, 0, Mode::Ceil), Some(-10));
        assert_eq!(drop_double_digits(12345.678, 2, Mode::Round), 12345.68);
        assert_eq!(drop_double_digits(-12345.678, -1, Mode::Round), -12350.0);
        assert_eq!(drop_double_digits(-12345.678, -2, Mode::Trunc), -12300.0);
        assert_eq!(drop_double_digits(1.234567, 10, Mode::Round), 1.234567);
        assert_eq!(drop_double_digits(1.005, 2, Mode::Round), 1.01);
        assert_eq!(java_round(-1.5), -1);
        assert_eq!(java_round(1.5), 2);
    }

    #[test]
    fn geo_distance_matches_ksqldb() {
        assert!((haversine(37.4439, -122.1663, 51.5257, -0.1122, 6371.0) - 8634.659796579544).abs() < 1e-9);
        assert!((haversine(51.5257, -0.1122, -33.9323, 18.4197, 3959.0) - 6011.1453892944355).abs() < 1e-9);
    }
}
