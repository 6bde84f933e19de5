//! ksqlDB's string functions: CONCAT, CONCAT_WS, SUBSTRING, LEN, LCASE, UCASE, TRIM, LTRIM,
//! RTRIM, LPAD, RPAD, REPLACE, INSTR, INITCAP, CHR, ELT, FIELD, UUID, SPLIT and SPLIT_TO_MAP.
//!
//! Positions are 1-based and count characters; a negative position counts from the end. NULL in
//! gives NULL out unless ksqlDB says otherwise (CONCAT skips NULLs, FIELD returns 0).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, Int32Array, ListBuilder, MapBuilder, MapFieldNames,
    StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::DataType;

use super::udf::{arity, call, exec_err, expect, is_null, no_match, plain_args};
use crate::binder::functions::{df, Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;
use crate::types::list_of;

/// Registers the string functions.
pub fn register(r: &mut FunctionRegistry) {
    r.register("CONCAT", concat);
    r.register("CONCAT_WS", concat_ws);
    r.register("SUBSTRING", substring);
    r.register("SUBSTR", substring);
    r.register("LEN", len);
    r.register("LENGTH", len);
    r.register("LCASE", case);
    r.register("UCASE", case);
    r.register("TRIM", trim);
    r.register("LTRIM", trim);
    r.register("RTRIM", trim);
    r.register("LPAD", pad);
    r.register("RPAD", pad);
    r.register("REPLACE", replace);
    r.register("INSTR", instr);
    r.register("INITCAP", initcap);
    r.register("CHR", chr);
    r.register("ELT", elt);
    r.register("FIELD", field);
    r.register("UUID", uuid);
    r.register("SPLIT", split);
    r.register("SPLIT_TO_MAP", split_to_map);
}

/// STRING or BYTES: the type shared by all non-NULL arguments, if they all have one of these.
fn text_type(args: &[Typed]) -> Option<DataType> {
    let mut t = None;
    for a in args.iter().filter(|a| !is_null(a)) {
        match (&t, &a.dt) {
            (None, DataType::Utf8 | DataType::Binary) => t = Some(a.dt.clone()),
            (Some(x), y) if x == y => {}
            _ => return None,
        }
    }
    Some(t.unwrap_or(DataType::Utf8))
}

/// The bytes of row `i` of a STRING or BYTES array.
fn bytes_at(a: &ArrayRef, i: usize) -> &[u8] {
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).as_bytes(),
        _ => a.as_binary::<i32>().value(i),
    }
}

/// A STRING or BYTES array (`dt`) from per-row bytes (valid UTF-8 when `dt` is STRING).
fn text_array(dt: &DataType, rows: impl Iterator<Item = Option<Vec<u8>>>) -> ArrayRef {
    match dt {
        DataType::Utf8 => Arc::new(
            rows.map(|r| r.map(|b| String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())))
                .collect::<StringArray>(),
        ),
        _ => Arc::new(rows.collect::<BinaryArray>()),
    }
}

fn concat(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = plain_args(name, args)?;
    let dt = text_type(&v).filter(|_| !v.is_empty()).ok_or_else(|| no_match(name, &v))?;
    let v: Vec<Typed> = v.into_iter().map(|a| a.cast_to(&dt)).collect();
    let out = dt.clone();
    Ok(call("concat", dt, v, move |a, n| {
        Ok(text_array(
            &out,
            (0..n).map(|i| {
                let mut s = Vec::new();
                for c in a.iter().filter(|c| c.is_valid(i)) {
                    s.extend_from_slice(bytes_at(c, i));
                }
                Some(s)
            }),
        ))
    }))
}

fn concat_ws(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = plain_args(name, args)?;
    let dt = text_type(&v).filter(|_| v.len() >= 2).ok_or_else(|| no_match(name, &v))?;
    let v: Vec<Typed> = v.into_iter().map(|a| a.cast_to(&dt)).collect();
    let out = dt.clone();
    Ok(call("concat_ws", dt, v, move |a, n| {
        Ok(text_array(
            &out,
            (0..n).map(|i| {
                if a[0].is_null(i) {
                    return None;
                }
                let sep = bytes_at(&a[0], i);
                let mut s = Vec::new();
                for (k, c) in a[1..].iter().filter(|c| c.is_valid(i)).enumerate() {
                    if k > 0 {
                        s.extend_from_slice(sep);
                    }
                    s.extend_from_slice(bytes_at(c, i));
                }
                Some(s)
            }),
        ))
    }))
}

/// ksqlDB's 0-based start index for a 1-based (or negative, from the end) position.
fn start_index(len: i64, pos: i64) -> usize {
    if pos < 0 {
        (len + pos).max(0) as usize
    } else {
        (pos - 1).min(len).max(0) as usize
    }
}

fn substring(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 3)?;
    let dt = match text_type(&v[..1]) {
        Some(t) => t,
        None => return Err(no_match(name, &v)),
    };
    let mut cast = vec![v[0].clone().cast_to(&dt)];
    for i in 1..v.len() {
        cast.push(expect(name, &v, i, &DataType::Int32)?);
    }
    let out = dt.clone();
    Ok(call("substring", dt, cast, move |a, n| {
        let pos = a[1].as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        let len = a.get(2).map(|l| l.as_primitive::<datafusion::arrow::datatypes::Int32Type>());
        Ok(text_array(
            &out,
            (0..n).map(|i| {
                if a[0].is_null(i) || pos.is_null(i) || len.is_some_and(|l| l.is_null(i)) {
                    return None;
                }
                let p = pos.value(i) as i64;
                if out == DataType::Utf8 {
                    let s = a[0].as_string::<i32>().value(i);
                    let chars: Vec<char> = s.chars().collect();
                    let total = chars.len() as i64;
                    let start = start_index(total, p);
                    let end = match len {
                        Some(l) => ((start as i64 + l.value(i) as i64).min(total)).max(start as i64) as usize,
                        None => total as usize,
                    };
                    Some(chars[start..end].iter().collect::<String>().into_bytes())
                } else {
                    let s = a[0].as_binary::<i32>().value(i);
                    let total = s.len() as i64;
                    let start = start_index(total, p);
                    let end = match len {
                        Some(l) => ((start as i64 + l.value(i) as i64).min(total)).max(start as i64) as usize,
                        None => total as usize,
                    };
                    Some(s[start..end].to_vec())
                }
            }),
        ))
    }))
}

fn len(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let dt = text_type(&v).ok_or_else(|| no_match(name, &v))?;
    let x = v[0].clone().cast_to(&dt);
    Ok(call("len", DataType::Int32, vec![x], |a, n| {
        let out: Int32Array = (0..n)
            .map(|i| {
                a[0].is_valid(i).then(|| match a[0].data_type() {
                    DataType::Utf8 => a[0].as_string::<i32>().value(i).chars().count() as i32,
                    _ => a[0].as_binary::<i32>().value(i).len() as i32,
                })
            })
            .collect();
        Ok(Arc::new(out))
    }))
}

/// Maps every non-null string of a one-argument string function.
fn map_strings(name: &str, x: Typed, f: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Typed {
    call(name, DataType::Utf8, vec![x], move |a, _n| {
        let s = a[0].as_string::<i32>();
        Ok(Arc::new(s.iter().map(|v| v.and_then(&f)).collect::<StringArray>()))
    })
}

fn one_string(name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    expect(name, &v, 0, &DataType::Utf8)
}

fn case(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let x = one_string(name, args)?;
    df(b, if name == "UCASE" { "upper" } else { "lower" }, vec![Arg::Value(x)])
}

/// Java's `String.trim()` whitespace: every char up to U+0020.
fn is_trim(c: char) -> bool {
    c <= ' '
}

fn trim(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let x = one_string(name, args)?;
    Ok(match name {
        "LTRIM" => map_strings("ltrim", x, |s| Some(s.trim_start_matches(is_trim).to_string())),
        "RTRIM" => map_strings("rtrim", x, |s| Some(s.trim_end_matches(is_trim).to_string())),
        _ => map_strings("trim", x, |s| Some(s.trim_matches(is_trim).to_string())),
    })
}

/// LPAD/RPAD on units (chars or bytes): NULL for a negative length or an empty padding.
fn pad_units<T: Clone>(input: &[T], target: i32, padding: &[T], left: bool) -> Option<Vec<T>> {
    if target < 0 || padding.is_empty() {
        return None;
    }
    let target = target as usize;
    let pad_len = target.saturating_sub(input.len());
    let pad: Vec<T> = padding.iter().cycle().take(pad_len).cloned().collect();
    let mut out = Vec::with_capacity(target);
    if left {
        out.extend(pad);
        out.extend_from_slice(input);
    } else {
        out.extend_from_slice(input);
        out.extend(pad);
    }
    out.truncate(target);
    Some(out)
}

fn pad(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 3, 3)?;
    let dt = text_type(&[v[0].clone(), v[2].clone()]).ok_or_else(|| no_match(name, &v))?;
    let args = vec![v[0].clone().cast_to(&dt), expect(name, &v, 1, &DataType::Int32)?, v[2].clone().cast_to(&dt)];
    let left = name == "LPAD";
    let out = dt.clone();
    Ok(call(&name.to_lowercase(), dt, args, move |a, n| {
        let len = a[1].as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        Ok(text_array(
            &out,
            (0..n).map(|i| {
                if a[0].is_null(i) || len.is_null(i) || a[2].is_null(i) {
                    return None;
                }
                if out == DataType::Utf8 {
                    let s: Vec<char> = a[0].as_string::<i32>().value(i).chars().collect();
                    let p: Vec<char> = a[2].as_string::<i32>().value(i).chars().collect();
                    pad_units(&s, len.value(i), &p, left).map(|c| c.into_iter().collect::<String>().into_bytes())
                } else {
                    pad_units(bytes_at(&a[0], i), len.value(i), bytes_at(&a[2], i), left)
                }
            }),
        ))
    }))
}

/// Checks that every argument is a STRING (or NULL) and casts them.
pub fn all_strings(name: &str, v: &[Typed]) -> Result<Vec<Typed>> {
    (0..v.len()).map(|i| expect(name, v, i, &DataType::Utf8)).collect()
}

fn replace(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 3, 3)?;
    let v = all_strings(name, &v)?;
    Ok(call("replace", DataType::Utf8, v, |a, n| {
        let (s, from, to) = (a[0].as_string::<i32>(), a[1].as_string::<i32>(), a[2].as_string::<i32>());
        let out: StringArray = (0..n)
            .map(|i| (s.is_valid(i) && from.is_valid(i) && to.is_valid(i)).then(|| s.value(i).replace(from.value(i), to.value(i))))
            .collect();
        Ok(Arc::new(out))
    }))
}

/// ksqlDB's INSTR: the 1-based position of the `occurrence`-th `sub`, searching forwards from
/// `pos` (1-based) or backwards from the end when `pos` is negative; 0 when not found.
pub fn instr_of(s: &str, sub: &str, pos: i64, occurrence: i64) -> i32 {
    let hay: Vec<char> = s.chars().collect();
    let needle: Vec<char> = sub.chars().collect();
    let len = hay.len() as i64;
    let matches_at = |i: i64| i >= 0 && i + needle.len() as i64 <= len && hay[i as usize..i as usize + needle.len()] == needle[..];
    if pos == 0 || occurrence <= 0 {
        return 0;
    }
    let mut found = -1i64;
    if pos > 0 {
        let mut from = pos - 1;
        for _ in 0..occurrence {
            found = (from..=len).find(|&i| matches_at(i)).unwrap_or(-1);
            if found < 0 {
                return 0;
            }
            from = found + 1;
        }
    } else {
        let mut from = len + pos;
        for _ in 0..occurrence {
            found = (0..=from.min(len)).rev().find(|&i| matches_at(i)).unwrap_or(-1);
            if found < 0 {
                return 0;
            }
            from = found - 1;
        }
    }
    (found + 1) as i32
}

fn instr(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 4)?;
    let mut cast = vec![expect(name, &v, 0, &DataType::Utf8)?, expect(name, &v, 1, &DataType::Utf8)?];
    for i in 2..v.len() {
        cast.push(expect(name, &v, i, &DataType::Int32)?);
    }
    Ok(call("instr", DataType::Int32, cast, |a, n| {
        let (s, sub) = (a[0].as_string::<i32>(), a[1].as_string::<i32>());
        let int = |k: usize, i: usize, d: i64| -> Option<i64> {
            match a.get(k) {
                None => Some(d),
                Some(x) if x.is_null(i) => None,
                Some(x) => Some(x.as_primitive::<datafusion::arrow::datatypes::Int32Type>().value(i) as i64),
            }
        };
        let out: Int32Array = (0..n)
            .map(|i| {
                if s.is_null(i) || sub.is_null(i) {
                    return None;
                }
                Some(instr_of(s.value(i), sub.value(i), int(2, i, 1)?, int(3, i, 1)?))
            })
            .collect();
        Ok(Arc::new(out))
    }))
}

fn initcap(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let x = one_string(name, args)?;
    Ok(map_strings("initcap", x, |s| {
        let mut out = String::with_capacity(s.len());
        let mut start = true;
        for c in s.chars() {
            if c.is_whitespace() {
                start = true;
                out.push(c);
            } else if start {
                out.extend(c.to_uppercase());
                start = false;
            } else {
                out.extend(c.to_lowercase());
            }
        }
        Some(out)
    }))
}

/// Decodes `\uXXXX` escapes (UTF-16 units, surrogate pairs included); None for anything else.
fn unescape_utf16(s: &str) -> Option<String> {
    let mut units = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let hex = rest.strip_prefix("\\u")?;
        let digits = hex.get(..4)?;
        units.push(u16::from_str_radix(digits, 16).ok()?);
        rest = &hex[4..];
    }
    if units.is_empty() {
        return None;
    }
    String::from_utf16(&units).ok()
}

fn chr(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    if v[0].dt == DataType::Utf8 {
        return Ok(map_strings("chr", v[0].clone(), unescape_utf16));
    }
    let x = expect(name, &v, 0, &DataType::Int32)?;
    Ok(call("chr", DataType::Utf8, vec![x], |a, _n| {
        let c = a[0].as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        Ok(Arc::new(
            c.iter().map(|v| v.and_then(|v| u32::try_from(v).ok()).and_then(char::from_u32).map(String::from)).collect::<StringArray>(),
        ))
    }))
}

fn elt(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = plain_args(name, args)?;
    if v.is_empty() {
        return Err(no_match(name, &v));
    }
    let mut cast = vec![expect(name, &v, 0, &DataType::Int32)?];
    cast.extend(all_strings(name, &v[1..]).map_err(|_| no_match(name, &v))?);
    Ok(call("elt", DataType::Utf8, cast, |a, n| {
        let idx = a[0].as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        let out: StringArray = (0..n)
            .map(|i| {
                let k = idx.is_valid(i).then(|| idx.value(i))?;
                let col = a.get(usize::try_from(k).ok().filter(|k| *k >= 1)?)?;
                col.is_valid(i).then(|| col.as_string::<i32>().value(i).to_string())
            })
            .collect();
        Ok(Arc::new(out))
    }))
}

fn field(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = plain_args(name, args)?;
    if v.is_empty() {
        return Err(no_match(name, &v));
    }
    let cast = all_strings(name, &v)?;
    Ok(call("field", DataType::Int32, cast, |a, n| {
        let out: Int32Array = (0..n)
            .map(|i| {
                if a[0].is_null(i) {
                    return Some(0);
                }
                let s = a[0].as_string::<i32>().value(i);
                let pos = a[1..].iter().position(|c| c.is_valid(i) && c.as_string::<i32>().value(i) == s);
                Some(pos.map_or(0, |p| p as i32 + 1))
            })
            .collect();
        Ok(Arc::new(out))
    }))
}

fn uuid(b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    arity(name, args, 0, 0)?;
    df(b, "uuid", vec![])
}

/// Splits `s` on `sep` keeping empty parts; an empty separator splits into single units.
fn split_units<'a, T: PartialEq>(s: &'a [T], sep: &[T]) -> Vec<&'a [T]> {
    if sep.is_empty() {
        if s.is_empty() {
            return vec![s];
        }
        return s.chunks(1).collect();
    }
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + sep.len() <= s.len() {
        if &s[i..i + sep.len()] == sep {
            parts.push(&s[start..i]);
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

fn split(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let dt = text_type(&v).ok_or_else(|| no_match(name, &v))?;
    let cast: Vec<Typed> = v.into_iter().map(|a| a.cast_to(&dt)).collect();
    let is_str = dt == DataType::Utf8;
    Ok(call("split", list_of(dt), cast, move |a, n| {
        if is_str {
            let mut out = ListBuilder::new(StringBuilder::new());
            for i in 0..n {
                if a[0].is_null(i) || a[1].is_null(i) {
                    out.append(false);
                    continue;
                }
                let (s, sep) = (a[0].as_string::<i32>().value(i), a[1].as_string::<i32>().value(i));
                if sep.is_empty() {
                    if s.is_empty() {
                        out.values().append_value("");
                    }
                    for c in s.chars() {
                        out.values().append_value(c.to_string());
                    }
                } else {
                    for p in s.split(sep) {
                        out.values().append_value(p);
                    }
                }
                out.append(true);
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        } else {
            let mut out = ListBuilder::new(BinaryBuilder::new());
            for i in 0..n {
                if a[0].is_null(i) || a[1].is_null(i) {
                    out.append(false);
                    continue;
                }
                for p in split_units(bytes_at(&a[0], i), bytes_at(&a[1], i)) {
                    out.values().append_value(p);
                }
                out.append(true);
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        }
    }))
}

fn split_to_map(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 3, 3)?;
    let v = all_strings(name, &v)?;
    let ret = crate::types::map_of(DataType::Utf8, DataType::Utf8);
    Ok(call("split_to_map", ret, v, |a, n| {
        let names = MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() };
        let mut out = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
        let (s, entry_sep, kv_sep) = (a[0].as_string::<i32>(), a[1].as_string::<i32>(), a[2].as_string::<i32>());
        for i in 0..n {
            if s.is_null(i) || entry_sep.is_null(i) || kv_sep.is_null(i) || entry_sep.value(i).is_empty() || kv_sep.value(i).is_empty() {
                out.append(false).map_err(|e| exec_err(e.to_string()))?;
                continue;
            }
            let mut entries: Vec<(&str, &str)> = Vec::new();
            for entry in s.value(i).split(entry_sep.value(i)).filter(|e| !e.is_empty()) {
                let mut kv = entry.split(kv_sep.value(i));
                let (Some(k), Some(v)) = (kv.next(), kv.next()) else { continue };
                match entries.iter_mut().find(|(ek, _)| *ek == k) {
                    Some(e) => e.1 = v,
                    None => entries.push((k, v)),
                }
            }
            for (k, v) in entries {
                out.keys().append_value(k);
                out.values().append_value(v);
            }
            out.append(true).map_err(|e| exec_err(e.to_string()))?;
        }
        Ok(Arc::new(out.finish()) as ArrayRef)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instr_follows_ksqldb() {
        assert_eq!(instr_of("corporate floor", "or", 1, 1), 2);
        assert_eq!(instr_of("corporate floor", "or", 4, 1), 5);
        assert_eq!(instr_of("corporate floor", "or", 4, 2), 14);
        assert_eq!(instr_of("corporate floor", "or", -4, 1), 5);
        assert_eq!(instr_of("corporate floor", "or", -4, 2), 2);
        assert_eq!(instr_of("short", "or", 4, 1), 0);
        assert_eq!(instr_of("short", "or", -4, 2), 0);
    }

    #[test]
    fn padding_and_positions() {
        assert_eq!(pad_units(&['f', 'o', 'o'], 7, &['B', 'a', 'r'], true).unwrap().iter().collect::<String>(), "BarBfoo");
        assert_eq!(pad_units(&['f', 'o', 'o'], 2, &['B'], false).unwrap().iter().collect::<String>(), "fo");
        assert_eq!(pad_units::<char>(&[], 3, &[], true), None);
        assert_eq!(start_index(5, 2), 1);
        assert_eq!(start_index(5, 0), 0);
        assert_eq!(start_index(5, -2), 3);
        assert_eq!(start_index(5, 9), 5);
        assert_eq!(unescape_utf16("\\ud820\\udeb8").unwrap(), "\u{182b8}");
        assert_eq!(unescape_utf16("004b"), None);
    }
}
