//! ksqlDB's date and time functions: UNIX_TIMESTAMP, UNIX_DATE, TIMESTAMPTOSTRING,
//! STRINGTOTIMESTAMP, FORMAT_TIMESTAMP, PARSE_TIMESTAMP, DATETOSTRING, STRINGTODATE,
//! FORMAT_DATE, PARSE_DATE, FORMAT_TIME, PARSE_TIME, CONVERT_TZ, FROM_UNIXTIME, FROM_DAYS and
//! the interval arithmetic DATEADD, DATESUB, TIMEADD, TIMESUB, TIMESTAMPADD, TIMESTAMPSUB.
//!
//! Formats are Java `DateTimeFormatter` patterns ([`pattern`]); zones are Java zone ids
//! ([`zone`], IANA regions through chrono-tz). Text that does not parse, an invalid pattern or
//! an unknown zone gives NULL for the row, as a failing ksqlDB UDF does. Timestamps parse like
//! `DateTimeFormatter` (the whole text), dates and times like `SimpleDateFormat` (a prefix,
//! leniently), as in ksqlDB. STRINGTOTIMESTAMP is also what the planner calls for
//! `WITH (TIMESTAMP_FORMAT=...)`.

pub mod pattern;
pub mod zone;

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array, StringArray, Time32MillisecondArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Int32Type, Int64Type, Time32MillisecondType, TimeUnit, TimestampMillisecondType,
};

use self::pattern::{FmtZone, Pattern};
use self::zone::Zone;
use super::udf::{arity, call, call_volatile, expect, no_match, plain_args};
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;

const DAY_MS: i64 = 86_400_000;

/// Registers the date and time functions.
pub fn register(r: &mut FunctionRegistry) {
    r.register("UNIX_TIMESTAMP", unix_timestamp);
    r.register("UNIX_DATE", unix_date);
    for n in ["TIMESTAMPTOSTRING", "FORMAT_TIMESTAMP", "DATETOSTRING", "FORMAT_DATE", "FORMAT_TIME"] {
        r.register(n, format);
    }
    for n in ["STRINGTOTIMESTAMP", "PARSE_TIMESTAMP", "STRINGTODATE", "PARSE_DATE", "PARSE_TIME"] {
        r.register(n, parse);
    }
    r.register("CONVERT_TZ", convert_tz);
    r.register("FROM_UNIXTIME", from_unixtime);
    r.register("FROM_DAYS", from_days);
    for n in ["DATEADD", "DATESUB", "TIMEADD", "TIMESUB", "TIMESTAMPADD", "TIMESTAMPSUB"] {
        r.register(n, interval);
        r.register_keyword_first(n);
    }
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

fn time_type() -> DataType {
    DataType::Time32(TimeUnit::Millisecond)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn unix_timestamp(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 0, 1)?;
    if v.is_empty() {
        return Ok(call_volatile("unix_timestamp", DataType::Int64, vec![], |_a, n| {
            Ok(Arc::new(Int64Array::from(vec![now_ms(); n])) as ArrayRef)
        }));
    }
    Ok(expect(name, &v, 0, &timestamp_type())?.cast_to(&DataType::Int64))
}

fn unix_date(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 0, 1)?;
    if v.is_empty() {
        return Ok(call_volatile("unix_date", DataType::Int32, vec![], |_a, n| {
            Ok(Arc::new(Int32Array::from(vec![now_ms().div_euclid(DAY_MS) as i32; n])) as ArrayRef)
        }));
    }
    Ok(expect(name, &v, 0, &DataType::Date32)?.cast_to(&DataType::Int32))
}

/// Compiles patterns, remembering the last one (patterns are usually literals).
#[derive(Default)]
struct PatternCache {
    last: Option<(String, Option<Pattern>)>,
}

impl PatternCache {
    fn get(&mut self, p: &str) -> Option<&Pattern> {
        if self.last.as_ref().is_none_or(|(s, _)| s != p) {
            self.last = Some((p.to_string(), Pattern::compile(p).ok()));
        }
        self.last.as_ref().and_then(|(_, x)| x.as_ref())
    }
}

/// The string in row `i` of an optional argument: Some(None) when the argument is absent.
fn opt_str(a: Option<&ArrayRef>, i: usize) -> Option<Option<&str>> {
    match a {
        None => Some(None),
        Some(x) => {
            let s = x.as_string::<i32>();
            s.is_valid(i).then(|| Some(s.value(i)))
        }
    }
}

fn zone_of(z: Option<&str>) -> Option<Zone> {
    match z {
        None => Some(Zone::utc()),
        Some(z) => Zone::of(z),
    }
}

/// Formats the UTC instant `ms` in `zone`.
pub fn format_instant(ms: i64, p: &Pattern, zone: &Zone) -> Option<String> {
    let (local, fz) = zone.at_utc(ms)?;
    p.format(&local, &fz).ok()
}

/// Parses `s` into a UTC instant, in `zone` unless the text names its own.
pub fn parse_instant(s: &str, p: &Pattern, zone: &Zone) -> Option<i64> {
    let parsed = p.parse(s).ok()?;
    let dt = parsed.datetime()?;
    parsed.zone.as_ref().unwrap_or(zone).local_to_utc(&dt)
}

fn date_of_days(days: i64) -> Option<NaiveDateTime> {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(days + 719_163).ok()?).map(|d| d.and_time(NaiveTime::MIN))
}

fn format(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let (value_type, zoned) = match name {
        "TIMESTAMPTOSTRING" => (DataType::Int64, true),
        "FORMAT_TIMESTAMP" => (timestamp_type(), true),
        "DATETOSTRING" => (DataType::Int32, false),
        "FORMAT_DATE" => (DataType::Date32, false),
        _ => (time_type(), false),
    };
    let v = arity(name, args, 2, if zoned { 3 } else { 2 })?;
    let mut cast = vec![expect(name, &v, 0, &value_type)?];
    for i in 1..v.len() {
        cast.push(expect(name, &v, i, &DataType::Utf8)?);
    }
    let kind = name.to_string();
    Ok(call(&name.to_lowercase(), DataType::Utf8, cast, move |a, n| {
        let mut cache = PatternCache::default();
        let pats = a[1].as_string::<i32>();
        let value = |i: usize| -> Option<i64> {
            if a[0].is_null(i) {
                return None;
            }
            Some(match a[0].data_type() {
                DataType::Int64 => a[0].as_primitive::<Int64Type>().value(i),
                DataType::Int32 => a[0].as_primitive::<Int32Type>().value(i) as i64,
                DataType::Date32 => a[0].as_primitive::<Date32Type>().value(i) as i64,
                DataType::Time32(_) => a[0].as_primitive::<Time32MillisecondType>().value(i) as i64,
                _ => a[0].as_primitive::<TimestampMillisecondType>().value(i),
            })
        };
        let out: StringArray = (0..n)
            .map(|i| {
                let x = value(i)?;
                let p = cache.get(pats.is_valid(i).then(|| pats.value(i))?)?;
                match kind.as_str() {
                    "TIMESTAMPTOSTRING" | "FORMAT_TIMESTAMP" => format_instant(x, p, &zone_of(opt_str(a.get(2), i)?)?),
                    "DATETOSTRING" | "FORMAT_DATE" => {
                        if p.has_time() || p.has_zone() {
                            return None;
                        }
                        p.format(&date_of_days(x)?, &FmtZone::utc()).ok()
                    }
                    _ => {
                        if p.has_date() || p.has_zone() {
                            return None;
                        }
                        let t = NaiveTime::from_num_seconds_from_midnight_opt((x / 1000) as u32, (x % 1000) as u32 * 1_000_000)?;
                        p.format(&NaiveDate::default().and_time(t), &FmtZone::utc()).ok()
                    }
                }
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn parse(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let (ret, zoned) = match name {
        "STRINGTOTIMESTAMP" => (DataType::Int64, true),
        "PARSE_TIMESTAMP" => (timestamp_type(), true),
        "STRINGTODATE" => (DataType::Int32, false),
        "PARSE_DATE" => (DataType::Date32, false),
        _ => (time_type(), false),
    };
    let v = arity(name, args, 2, if zoned { 3 } else { 2 })?;
    let cast = (0..v.len()).map(|i| expect(name, &v, i, &DataType::Utf8)).collect::<Result<Vec<_>>>()?;
    let out_type = ret.clone();
    Ok(call(&name.to_lowercase(), ret, cast, move |a, n| {
        let mut cache = PatternCache::default();
        let (text, pats) = (a[0].as_string::<i32>(), a[1].as_string::<i32>());
        let values: Vec<Option<i64>> = (0..n)
            .map(|i| {
                if text.is_null(i) || pats.is_null(i) {
                    return None;
                }
                let p = cache.get(pats.value(i))?;
                match out_type {
                    DataType::Int64 | DataType::Timestamp(_, _) => parse_instant(text.value(i), p, &zone_of(opt_str(a.get(2), i)?)?),
                    DataType::Int32 | DataType::Date32 => {
                        let d = p.parse_lenient(text.value(i)).ok()?.date()?;
                        Some((d - NaiveDate::default()).num_days())
                    }
                    _ => {
                        let t = p.parse_lenient(text.value(i)).ok()?.time()?;
                        Some(t.num_seconds_from_midnight() as i64 * 1000 + (t.nanosecond() / 1_000_000) as i64)
                    }
                }
            })
            .collect();
        Ok(match out_type {
            DataType::Int64 => Arc::new(Int64Array::from(values)) as ArrayRef,
            DataType::Timestamp(_, _) => Arc::new(TimestampMillisecondArray::from(values)),
            DataType::Int32 => Arc::new(values.into_iter().map(|v| v.map(|v| v as i32)).collect::<Int32Array>()),
            DataType::Date32 => Arc::new(values.into_iter().map(|v| v.map(|v| v as i32)).collect::<Date32Array>()),
            _ => Arc::new(values.into_iter().map(|v| v.map(|v| v as i32)).collect::<Time32MillisecondArray>()),
        })
    }))
}

fn convert_tz(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 3, 3)?;
    let cast = vec![expect(name, &v, 0, &timestamp_type())?, expect(name, &v, 1, &DataType::Utf8)?, expect(name, &v, 2, &DataType::Utf8)?];
    Ok(call("convert_tz", timestamp_type(), cast, |a, n| {
        let ts = a[0].as_primitive::<TimestampMillisecondType>();
        let offset = |z: Option<&str>, ms: i64| -> Option<i64> { Some(Zone::of(z?)?.at_utc(ms)?.1.offset as i64 * 1000) };
        let out: TimestampMillisecondArray = (0..n)
            .map(|i| {
                let ms = ts.is_valid(i).then(|| ts.value(i))?;
                let (from, to) = (opt_str(a.get(1), i)?, opt_str(a.get(2), i)?);
                Some(ms + offset(to, ms)? - offset(from, ms)?)
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn from_unixtime(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    Ok(expect(name, &v, 0, &DataType::Int64)?.cast_to(&timestamp_type()))
}

fn from_days(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    Ok(expect(name, &v, 0, &DataType::Int32)?.cast_to(&DataType::Date32))
}

/// Milliseconds in one of ksqlDB's time units (singular or plural).
fn unit_ms(unit: &str) -> Option<f64> {
    let u = unit.to_ascii_uppercase();
    let u = u.strip_suffix('S').unwrap_or(&u);
    Some(match u {
        "NANOSECOND" => 1e-6,
        "MICROSECOND" => 1e-3,
        "MILLISECOND" => 1.0,
        "SECOND" => 1e3,
        "MINUTE" => 6e4,
        "HOUR" => 3.6e6,
        "DAY" => 8.64e7,
        _ => return None,
    })
}

fn interval(b: &Binder<'_>, name: &str, mut args: Vec<Arg>) -> Result<Typed> {
    let unit = match args.first() {
        Some(Arg::Keyword(k)) if unit_ms(k).is_some() => {
            let k = k.clone();
            args.remove(0);
            Some(k)
        }
        Some(Arg::Keyword(k)) => {
            // Not a unit: a column after all (for the error message).
            let col = b.bind(&datafusion::sql::sqlparser::ast::Expr::Identifier(datafusion::sql::sqlparser::ast::Ident::new(k.clone())))?;
            args[0] = Arg::Value(col);
            None
        }
        _ => None,
    };
    let v = plain_args(name, args)?;
    let target = match name {
        "DATEADD" | "DATESUB" => DataType::Date32,
        "TIMEADD" | "TIMESUB" => time_type(),
        _ => timestamp_type(),
    };
    let Some(unit) = unit else {
        return Err(no_match(name, &v));
    };
    if v.len() != 2 || !super::udf::accepts(&v[0], &DataType::Int64) || !super::udf::accepts(&v[1], &target) {
        return Err(no_match(name, &v));
    }
    let cast = vec![v[0].clone().cast_to(&DataType::Int64), v[1].clone().cast_to(&target)];
    let per = unit_ms(&unit).expect("checked unit");
    let sign = if name.ends_with("SUB") { -1.0 } else { 1.0 };
    let kind = target.clone();
    Ok(call(&name.to_lowercase(), target, cast, move |a, n| {
        let amount = a[0].as_primitive::<Int64Type>();
        let delta = |i: usize| amount.is_valid(i).then(|| (sign * amount.value(i) as f64 * per) as i64);
        Ok(match kind {
            DataType::Date32 => {
                let d = a[1].as_primitive::<Date32Type>();
                Arc::new(
                    (0..n)
                        .map(|i| Some((((d.is_valid(i).then(|| d.value(i))? as i64) * DAY_MS + delta(i)?).div_euclid(DAY_MS)) as i32))
                        .collect::<Date32Array>(),
                ) as ArrayRef
            }
            DataType::Time32(_) => {
                let t = a[1].as_primitive::<Time32MillisecondType>();
                Arc::new(
                    (0..n)
                        .map(|i| Some(((t.is_valid(i).then(|| t.value(i))? as i64 + delta(i)?).rem_euclid(DAY_MS)) as i32))
                        .collect::<Time32MillisecondArray>(),
                )
            }
            _ => {
                let t = a[1].as_primitive::<TimestampMillisecondType>();
                Arc::new((0..n).map(|i| Some(t.is_valid(i).then(|| t.value(i))? + delta(i)?)).collect::<TimestampMillisecondArray>())
            }
        })
    }))
}
