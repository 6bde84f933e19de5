//! ksqlDB's regular expression functions: REGEXP_EXTRACT, REGEXP_EXTRACT_ALL, REGEXP_REPLACE
//! and REGEXP_SPLIT_TO_ARRAY.
//!
//! Patterns are Java regular expressions as far as the `regex` crate understands them (no
//! look-around or back-references: such a pattern fails, giving NULL). REGEXP_EXTRACT takes the
//! pattern first, as in ksqlDB. Replacement strings use Java's `$1` / `\$` syntax. Compiled
//! patterns are cached per batch, so a literal pattern compiles once.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use regex::Regex;

use super::string::all_strings;
use super::udf::{arity, call, exec_err, expect, DfResult};
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;
use crate::types::list_of;

/// Registers the regular expression functions.
pub fn register(r: &mut FunctionRegistry) {
    r.register("REGEXP_EXTRACT", extract);
    r.register("REGEXP_EXTRACT_ALL", extract);
    r.register("REGEXP_REPLACE", replace);
    r.register("REGEXP_SPLIT_TO_ARRAY", split);
}

/// Compiles patterns, remembering the last one (patterns are usually literals).
#[derive(Default)]
struct PatternCache {
    last: Option<(String, Option<Regex>)>,
}

impl PatternCache {
    /// The compiled pattern, or None when it does not compile.
    fn get(&mut self, p: &str) -> Option<&Regex> {
        if self.last.as_ref().is_none_or(|(s, _)| s != p) {
            self.last = Some((p.to_string(), Regex::new(p).ok()));
        }
        self.last.as_ref().and_then(|(_, r)| r.as_ref())
    }
}

fn group_arg(a: &[ArrayRef], i: usize) -> Option<i64> {
    match a.get(2) {
        None => Some(0),
        Some(g) if g.is_null(i) => None,
        Some(g) => Some(g.as_primitive::<Int32Type>().value(i) as i64),
    }
}

fn extract(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 3)?;
    let mut cast = all_strings(name, &v[..2]).map_err(|_| super::udf::no_match(name, &v))?;
    if v.len() == 3 {
        cast.push(expect(name, &v, 2, &DataType::Int32)?);
    }
    if name == "REGEXP_EXTRACT" {
        return Ok(call("regexp_extract", DataType::Utf8, cast, |a, n| {
            let (pat, s) = (a[0].as_string::<i32>(), a[1].as_string::<i32>());
            let mut cache = PatternCache::default();
            let out: StringArray = (0..n)
                .map(|i| {
                    if pat.is_null(i) || s.is_null(i) {
                        return None;
                    }
                    let g = usize::try_from(group_arg(a, i)?).ok()?;
                    let caps = cache.get(pat.value(i))?.captures(s.value(i))?;
                    caps.get(g).map(|m| m.as_str().to_string())
                })
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        }));
    }
    Ok(call("regexp_extract_all", list_of(DataType::Utf8), cast, |a, n| {
        let (pat, s) = (a[0].as_string::<i32>(), a[1].as_string::<i32>());
        let mut cache = PatternCache::default();
        let mut out = ListBuilder::new(StringBuilder::new());
        for i in 0..n {
            let (Some(g), false, false) = (group_arg(a, i), pat.is_null(i), s.is_null(i)) else {
                out.append(false);
                continue;
            };
            let Some(re) = cache.get(pat.value(i)) else {
                out.append(false);
                continue;
            };
            let g = usize::try_from(g).map_err(|_| exec_err("negative regex group"))?;
            if g >= re.captures_len() {
                out.append(false);
                continue;
            }
            for caps in re.captures_iter(s.value(i)) {
                out.values().append_option(caps.get(g).map(|m| m.as_str()));
            }
            out.append(true);
        }
        Ok(Arc::new(out.finish()) as ArrayRef)
    }))
}

/// Java's replacement syntax (`$1`, `${name}`, `\x` for a literal x) in the `regex` crate's.
pub fn java_replacement(r: &str, groups: usize) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => {}
            },
            '$' => match chars.peek() {
                Some('{') => out.push('$'),
                Some(d) if d.is_ascii_digit() => {
                    let mut num = d.to_digit(10).unwrap_or(0) as usize;
                    chars.next();
                    while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                        if num * 10 + d as usize >= groups {
                            break;
                        }
                        num = num * 10 + d as usize;
                        chars.next();
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
                _ => out.push_str("$$"),
            },
            c => out.push(c),
        }
    }
    out
}

fn replace(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 3, 3)?;
    let v = all_strings(name, &v)?;
    Ok(call("regexp_replace", DataType::Utf8, v, |a, n| {
        let (s, pat, rep) = (a[0].as_string::<i32>(), a[1].as_string::<i32>(), a[2].as_string::<i32>());
        let mut cache = PatternCache::default();
        let out: StringArray = (0..n)
            .map(|i| {
                if s.is_null(i) || pat.is_null(i) || rep.is_null(i) {
                    return None;
                }
                let re = cache.get(pat.value(i))?;
                let r = java_replacement(rep.value(i), re.captures_len());
                Some(re.replace_all(s.value(i), r.as_str()).into_owned())
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn split(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let v = all_strings(name, &v)?;
    Ok(call("regexp_split_to_array", list_of(DataType::Utf8), v, |a, n| -> DfResult<ArrayRef> {
        let (s, pat) = (a[0].as_string::<i32>(), a[1].as_string::<i32>());
        let mut cache = PatternCache::default();
        let mut out = ListBuilder::new(StringBuilder::new());
        for i in 0..n {
            let re = if s.is_null(i) || pat.is_null(i) { None } else { cache.get(pat.value(i)) };
            match re {
                Some(re) => {
                    for p in re.split(s.value(i)) {
                        out.values().append_value(p);
                    }
                    out.append(true);
                }
                None => out.append(false),
            }
        }
        Ok(Arc::new(out.finish()))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_replacements() {
        assert_eq!(java_replacement("cat", 2), "cat");
        assert_eq!(java_replacement("$1x", 2), "${1}x");
        assert_eq!(java_replacement("$12", 2), "${1}2");
        assert_eq!(java_replacement("\\$1", 2), "$$1");
        let re = Regex::new("(ab)+").unwrap();
        assert_eq!(re.replace_all("baababaa", java_replacement("cat", 2).as_str()), "bacataa");
        assert_eq!(re.replace_all("xab", java_replacement("[$1]", 2).as_str()), "x[ab]");
    }
}
