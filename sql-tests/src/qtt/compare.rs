//! Comparing what the sinks wrote with the expected records, by the rules of ksqlDB's
//! `ExpectedRecordComparator` and `TestExecutor`: per topic the exact record count and order;
//! keys, values, windows, timestamps (when given) and headers (when given); objects with the same
//! number of members, a member found by its name or its upper-case name; integers exact, doubles
//! within 1e-6, DECIMALs equal in value and scale; null only equals null.
//!
//! Actual records are decoded from their bytes by the sink's formats, not through Eddy's own
//! decoders, so that the comparison sees exactly what a Kafka consumer would. Column types (from
//! the catalog) only choose the number rules.

use datafusion::arrow::datatypes::{DataType, Fields};
use engine::format::FormatKind;
use planner::catalog::WindowType;
use storage::{partition_for_key, Header, TopicLog};

use super::inputs::Serde;
use super::json::{self, base64_encode, Json};
use super::model::{Record, RecordHeader, Window, WindowKind};

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Actual {
    /// Partition.
    pub partition: u32,
    /// Timestamp.
    pub timestamp: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<Header>,
}

/// Every record of `topic`, partition by partition, in offset order; nothing when it is missing.
pub fn read_topic(log: &dyn TopicLog, topic: &str) -> Vec<Actual> {
    let Ok(info) = log.describe_topic(topic) else { return Vec::new() };
    let mut out = Vec::new();
    for p in 0..info.config.partitions {
        let mut from = 0;
        while let Ok(batch) = log.read(topic, p, from, 1 << 20) {
            if batch.is_empty() {
                break;
            }
            for r in batch.iter() {
                out.push(Actual {
                    partition: p,
                    timestamp: r.timestamp,
                    key: r.key.map(<[u8]>::to_vec),
                    value: r.value.map(<[u8]>::to_vec),
                    headers: r.headers(),
                });
            }
            from = batch.next_offset;
        }
    }
    out
}

/// A record decoded into the JSON shape of expected records.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The un-windowed key.
    pub key: Json,
    /// The window, for windowed keys.
    pub window: Option<Window>,
    /// The value (`Json::Null` for a tombstone).
    pub value: Json,
    /// Timestamp.
    pub timestamp: i64,
    /// Headers.
    pub headers: Vec<RecordHeader>,
}

/// Decodes a record with its topic's serde. `expect_window` says which window the expected
/// record has, used when the catalog does not say the key is windowed.
pub fn decode(a: &Actual, serde: &Serde, expect_window: Option<WindowKind>) -> Decoded {
    let kind = match serde.window {
        Some(WindowType::Session) => Some(WindowKind::Session),
        Some(WindowType::Time { .. }) => Some(WindowKind::Time),
        None => expect_window,
    };
    let (key_bytes, window) = match (&a.key, kind) {
        (Some(k), Some(kind)) => split_window(k, kind, serde.window),
        (k, _) => (k.clone(), None),
    };
    Decoded {
        key: serde.decode_part(key_bytes.as_deref(), true),
        window,
        value: serde.decode_part(a.value.as_deref(), false),
        timestamp: a.timestamp,
        headers: a.headers.iter().map(|h| (h.key.clone(), h.value.clone())).collect(),
    }
}

/// Splits Kafka Streams' windowed key layout into key bytes and window. A time window's end is
/// start + size when the size is known, else unknown (`i64::MIN`).
pub fn split_window(k: &[u8], kind: WindowKind, window: Option<WindowType>) -> (Option<Vec<u8>>, Option<Window>) {
    let be = |b: &[u8]| i64::from_be_bytes(b.try_into().expect("8 bytes"));
    match kind {
        WindowKind::Time if k.len() >= 8 => {
            let start = be(&k[k.len() - 8..]);
            let end = match window {
                Some(WindowType::Time { size_ms }) => start + size_ms as i64,
                _ => i64::MIN,
            };
            (Some(k[..k.len() - 8].to_vec()), Some(Window { start, end, kind }))
        }
        WindowKind::Session if k.len() >= 16 => {
            let end = be(&k[k.len() - 16..k.len() - 8]);
            let start = be(&k[k.len() - 8..]);
            (Some(k[..k.len() - 16].to_vec()), Some(Window { start, end, kind }))
        }
        _ => (Some(k.to_vec()), None),
    }
}

/// Key or value bytes as JSON: parsed for JSON, the text for DELIMITED, the primitive for KAFKA
/// (BYTES as base64), null for NONE and null bytes.
pub fn decode_bytes(b: Option<&[u8]>, kind: FormatKind, fields: &Fields) -> Json {
    let Some(b) = b else { return Json::Null };
    let text = || String::from_utf8_lossy(b).into_owned();
    match kind {
        FormatKind::Json => json::parse(&text()).unwrap_or_else(|_| Json::Str(text())),
        FormatKind::Delimited => Json::Str(text()),
        FormatKind::None => Json::Null,
        FormatKind::Avro | FormatKind::Protobuf | FormatKind::ProtobufNoSr | FormatKind::JsonSr => Json::Str(base64_encode(b)),
        FormatKind::Kafka => match (fields.first().map(|f| f.data_type()), b.len()) {
            (Some(DataType::Int32), 4) => Json::Num(i32::from_be_bytes(b.try_into().expect("4")).to_string()),
            (Some(DataType::Int64), 8) => Json::Num(i64::from_be_bytes(b.try_into().expect("8")).to_string()),
            (Some(DataType::Float64), 8) => Json::Num(format!("{:?}", f64::from_bits(u64::from_be_bytes(b.try_into().expect("8"))))),
            (Some(DataType::Binary), _) => Json::Str(base64_encode(b)),
            _ => Json::Str(text()),
        },
    }
}

/// The type that chooses number rules for a key or value: the columns as a struct when the
/// expected value is an object of columns, the single column's type otherwise (also when that
/// column is itself a STRUCT or MAP written bare).
pub fn hint(expected: &Json, fields: &Fields) -> Option<DataType> {
    match (expected, fields.len()) {
        (_, 0) => None,
        (Json::Obj(m), 1) if !m.iter().any(|(k, _)| k.eq_ignore_ascii_case(fields[0].name())) => Some(fields[0].data_type().clone()),
        (Json::Obj(_), _) => Some(DataType::Struct(fields.clone())),
        (_, 1) => Some(fields[0].data_type().clone()),
        _ => None,
    }
}

/// Whether `actual` matches `expected` under the comparator's rules; `ty` picks number rules.
pub fn values_match(expected: &Json, actual: &Json, ty: Option<&DataType>) -> bool {
    diff(expected, actual, ty, "").is_none()
}

/// Where `actual` first differs from `expected`: `"PATH: expected X, got Y"` (the path is
/// `at` followed by `.member` and `[index]` steps), or `None` when they match.
pub fn diff(expected: &Json, actual: &Json, ty: Option<&DataType>, at: &str) -> Option<String> {
    let differ = || Some(format!("{at}: expected {}, got {}", short(expected), short(actual)));
    match (expected, actual) {
        (Json::Null, a) if a.is_null() => None,
        (Json::Bool(e), Json::Bool(a)) if e == a => None,
        (Json::Str(e), Json::Str(a)) if e == a => None,
        (Json::Str(e), Json::Num(a)) if matches!(ty, Some(DataType::Decimal128(..))) && decimal_eq(e, a) => None,
        (Json::Num(e), Json::Num(a)) if numbers_match(e, a, ty) => None,
        (Json::Arr(e), Json::Arr(a)) if e.len() == a.len() => {
            let item = match ty {
                Some(DataType::List(f)) => Some(f.data_type()),
                _ => None,
            };
            e.iter().zip(a).enumerate().find_map(|(i, (e, a))| diff(e, a, item, &format!("{at}[{i}]")))
        }
        (Json::Obj(e), Json::Obj(a)) if e.len() == a.len() => e.iter().find_map(|(k, ev)| {
            let upper = k.to_uppercase();
            let av = a.iter().rev().find(|(n, _)| n == k).or_else(|| a.iter().rev().find(|(n, _)| *n == upper));
            match av {
                Some((_, av)) => diff(ev, av, member_type(ty, k).as_ref(), &format!("{at}.{k}")),
                // ksqlDB's comparator reads a member that is not there as null.
                None if matches!(ev, Json::Null) => None,
                None => Some(format!("{at}: no member {k} in {}", short(actual))),
            }
        }),
        (Json::Obj(e), Json::Obj(a)) => {
            let names = |m: &[(String, Json)]| m.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(",");
            Some(format!("{at}: expected members [{}], got [{}]", names(e), names(a)))
        }
        _ => differ(),
    }
}

/// The type of member `k` of a struct (by name, then ignoring case) or a map's value type.
fn member_type(ty: Option<&DataType>, k: &str) -> Option<DataType> {
    match ty? {
        DataType::Struct(fs) => fs
            .iter()
            .find(|f| f.name() == k)
            .or_else(|| fs.iter().find(|f| f.name().eq_ignore_ascii_case(k)))
            .map(|f| f.data_type().clone()),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => Some(kv[1].data_type().clone()),
            _ => None,
        },
        _ => None,
    }
}

fn numbers_match(e: &str, a: &str, ty: Option<&DataType>) -> bool {
    match ty {
        Some(DataType::Decimal128(..)) => decimal_eq(e, a),
        Some(DataType::Float64 | DataType::Float32) => doubles_match(e, a),
        Some(DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) => match (e.parse::<i128>(), a.parse::<i128>()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        },
        _ => match (e.parse::<i128>(), a.parse::<i128>()) {
            (Ok(x), Ok(y)) => x == y,
            _ => doubles_match(e, a),
        },
    }
}

/// Doubles agree within 1e-6 (or, for magnitudes where that is below their precision, to
/// 1e-12 relative).
pub fn doubles_match(e: &str, a: &str) -> bool {
    match (e.parse::<f64>(), a.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y || (x - y).abs() < 1e-6 || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        _ => false,
    }
}

/// Java's `BigDecimal.equals`: the same unscaled value and the same scale (`1.10` != `1.1`).
pub fn decimal_eq(e: &str, a: &str) -> bool {
    matches!((decimal_parts(e), decimal_parts(a)), (Some(x), Some(y)) if x == y)
}

/// (negative, unscaled digits without leading zeros, scale) of a decimal's text.
fn decimal_parts(t: &str) -> Option<(bool, String, i64)> {
    let t = t.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i64>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}").trim_start_matches('0').to_string();
    let neg = neg && !digits.is_empty();
    Some((neg, if digits.is_empty() { "0".into() } else { digits }, frac.len() as i64 - exp))
}

/// For DELIMITED and other raw text: when the expected value is not a string, reads the text as
/// a JSON scalar (`8` for "8") so that numbers compare as numbers.
pub fn coerce_text(expected: &Json, actual: Json) -> Json {
    match (&actual, expected) {
        (Json::Str(_), Json::Str(_) | Json::Null) => actual,
        (Json::Str(s), _) => match json::parse(s) {
            Ok(v @ (Json::Num(_) | Json::Bool(_) | Json::Null)) => v,
            _ => actual,
        },
        _ => actual,
    }
}

/// Compares one expected record with one actual record. `check_zero_ts` is false for
/// INSERT-VALUES-only cases, whose expected timestamp 0 stands for "any".
pub fn compare_record(e: &Record, a: &Decoded, serde: &Serde, check_zero_ts: bool) -> Result<(), String> {
    let ek = e.key.clone().unwrap_or(Json::Null);
    let ak = if serde.key_format.kind == FormatKind::Delimited { coerce_text(&ek, a.key.clone()) } else { a.key.clone() };
    if let Some(d) = diff(&ek, &ak, hint(&ek, &serde.key_fields).as_ref(), "key") {
        return Err(d);
    }
    let av = if serde.value_format.kind == FormatKind::Delimited { coerce_text(&e.value, a.value.clone()) } else { a.value.clone() };
    if let Some(d) = diff(&e.value, &av, hint(&e.value, &serde.value_fields).as_ref(), "value") {
        return Err(d);
    }
    match (&e.window, &a.window) {
        (None, None) => {}
        (Some(_), None) => return Err("expected a windowed key, got an unwindowed one".into()),
        (None, Some(w)) => return Err(format!("expected an unwindowed key, got window {}", window_text(w))),
        (Some(ew), Some(aw)) => {
            let end_ok = aw.end == i64::MIN || aw.end == ew.end;
            if ew.start != aw.start || ew.kind != aw.kind || !end_ok {
                return Err(format!("window: expected {}, got {}", window_text(ew), window_text(aw)));
            }
        }
    }
    if let Some(ts) = e.timestamp {
        if ts != a.timestamp && (ts != 0 || check_zero_ts) {
            return Err(format!("timestamp: expected {ts}, got {}", a.timestamp));
        }
    }
    if let Some(h) = &e.headers {
        if h != &a.headers {
            return Err(format!("headers: expected {}, got {}", headers_text(h), headers_text(&a.headers)));
        }
    }
    Ok(())
}

/// Compares the records of one topic, in order. With several partitions, order is only
/// checked within a partition (expected records are placed by their key, as a producer would).
pub fn compare_topic(
    topic: &str,
    expected: &[&Record],
    actual: &[Actual],
    partitions: u32,
    serde: &Serde,
    check_zero_ts: bool,
) -> Result<(), String> {
    if partitions <= 1 {
        return compare_seq(topic, expected, &actual.iter().collect::<Vec<_>>(), serde, check_zero_ts);
    }
    let part = |r: &Record| r.key.as_ref().and_then(|k| serde.key_bytes(k)).map(|b| partition_for_key(&b, partitions));
    let mut groups: Vec<Option<u32>> = (0..partitions).map(Some).collect();
    groups.push(None);
    for g in groups {
        let exp: Vec<&Record> = expected.iter().copied().filter(|r| part(r) == g).collect();
        let act: Vec<&Actual> =
            actual.iter().filter(|a| if g.is_none() { a.key.is_none() } else { a.key.is_some() && Some(a.partition) == g }).collect();
        let label = match g {
            Some(p) => format!("{topic} (partition {p})"),
            None => format!("{topic} (null keys)"),
        };
        compare_seq(&label, &exp, &act, serde, check_zero_ts)?;
    }
    Ok(())
}

fn compare_seq(topic: &str, expected: &[&Record], actual: &[&Actual], serde: &Serde, check_zero_ts: bool) -> Result<(), String> {
    let decoded: Vec<Decoded> =
        actual.iter().enumerate().map(|(i, a)| decode(a, serde, expected.get(i).and_then(|e| e.window).map(|w| w.kind))).collect();
    let first_diff = expected.iter().zip(&decoded).position(|(e, a)| compare_record(e, a, serde, check_zero_ts).is_err());
    if expected.len() != decoded.len() {
        let mut msg = format!("{topic}: expected {} records, got {}", expected.len(), decoded.len());
        if let Some(i) = first_diff {
            let why = compare_record(expected[i], &decoded[i], serde, check_zero_ts).err().unwrap_or_default();
            msg.push_str(&format!("; first difference at record {}: {why}", i + 1));
        } else if decoded.len() > expected.len() {
            let extra = &decoded[expected.len()];
            msg.push_str(&format!("; first extra: key {} value {}", short(&extra.key), short(&extra.value)));
        }
        return Err(msg);
    }
    if let Some(i) = first_diff {
        let why = compare_record(expected[i], &decoded[i], serde, check_zero_ts).err().unwrap_or_default();
        return Err(format!("{topic}: record {} of {}: {why}", i + 1, expected.len()));
    }
    Ok(())
}

/// JSON text cut to a readable length.
pub fn short(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(117).collect::<String>())
    } else {
        s
    }
}

fn window_text(w: &Window) -> String {
    let kind = if w.kind == WindowKind::Session { "session" } else { "time" };
    let end = if w.end == i64::MIN { "?".to_string() } else { w.end.to_string() };
    format!("{kind} [{}, {end}]", w.start)
}

fn headers_text(h: &[RecordHeader]) -> String {
    let items: Vec<String> = h.iter().map(|(k, v)| format!("{k}={}", v.as_deref().map_or("null".into(), base64_encode))).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
