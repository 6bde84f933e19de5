//! ksqlDB's masking functions: MASK, MASK_LEFT, MASK_RIGHT, MASK_KEEP_LEFT, MASK_KEEP_RIGHT.
//!
//! Upper-case letters become `X`, lower-case `x`, digits `n` and anything else `-`, unless the
//! optional replacement arguments (upper, lower, digit, other) say otherwise; a NULL
//! replacement leaves that kind of character as it is. The `_LEFT`/`_RIGHT` variants mask (or
//! keep) the first or last n characters only; a negative n is an error (NULL for the row).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};

use super::udf::{arity, call, exec_err, expect};
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;

/// Registers the masking functions.
pub fn register(r: &mut FunctionRegistry) {
    for n in ["MASK", "MASK_LEFT", "MASK_RIGHT", "MASK_KEEP_LEFT", "MASK_KEEP_RIGHT"] {
        r.register(n, mask);
    }
}

/// The replacement for each kind of character (None: keep it).
#[derive(Debug, Clone, Copy)]
pub struct Masks {
    upper: Option<char>,
    lower: Option<char>,
    digit: Option<char>,
    other: Option<char>,
}

impl Default for Masks {
    fn default() -> Self {
        Masks { upper: Some('X'), lower: Some('x'), digit: Some('n'), other: Some('-') }
    }
}

impl Masks {
    fn apply(&self, c: char) -> char {
        let m = if c.is_uppercase() {
            self.upper
        } else if c.is_lowercase() {
            self.lower
        } else if c.is_numeric() {
            self.digit
        } else {
            self.other
        };
        m.unwrap_or(c)
    }

    /// Masks the characters of `s` whose position is in `[from, to)`.
    pub fn mask(&self, s: &str, from: usize, to: usize) -> String {
        s.chars().enumerate().map(|(i, c)| if i >= from && i < to { self.apply(c) } else { c }).collect()
    }
}

fn mask(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let counted = name != "MASK";
    let first_mask = if counted { 2 } else { 1 };
    let v = arity(name, args, first_mask, first_mask + 4)?;
    if v.len() != first_mask && v.len() != first_mask + 4 {
        return Err(super::udf::no_match(name, &v));
    }
    let mut cast = vec![expect(name, &v, 0, &DataType::Utf8)?];
    if counted {
        cast.push(expect(name, &v, 1, &DataType::Int32)?);
    }
    for i in first_mask..v.len() {
        cast.push(expect(name, &v, i, &DataType::Utf8)?);
    }
    let kind = name.to_string();
    Ok(call(&name.to_lowercase(), DataType::Utf8, cast, move |a, n| {
        let s = a[0].as_string::<i32>();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if s.is_null(i) {
                out.push(None);
                continue;
            }
            let replacement = |k: usize| -> Option<char> {
                let x = a.get(first_mask + k)?.as_string::<i32>();
                if x.is_null(i) {
                    None
                } else {
                    x.value(i).chars().next()
                }
            };
            let m = if a.len() > first_mask {
                Masks { upper: replacement(0), lower: replacement(1), digit: replacement(2), other: replacement(3) }
            } else {
                Masks::default()
            };
            let text = s.value(i);
            let len = text.chars().count();
            let count = if counted {
                let c = a[1].as_primitive::<Int32Type>();
                if c.is_null(i) {
                    out.push(None);
                    continue;
                }
                let c = c.value(i);
                if c < 0 {
                    return Err(exec_err(format!("{}: the number of characters must be >= 0, got {c}", kind.to_lowercase())));
                }
                (c as usize).min(len)
            } else {
                len
            };
            let (from, to) = match kind.as_str() {
                "MASK_LEFT" => (0, count),
                "MASK_RIGHT" => (len - count, len),
                "MASK_KEEP_LEFT" => (count, len),
                "MASK_KEEP_RIGHT" => (0, len - count),
                _ => (0, len),
            };
            out.push(Some(m.mask(text, from, to)));
        }
        Ok(Arc::new(StringArray::from(out)) as ArrayRef)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_by_kind() {
        let m = Masks::default();
        assert_eq!(m.mask("AbCd#$123", 0, 9), "XxXx--nnn");
        assert_eq!(m.mask("AbCd#$123", 0, 2), "XxCd#$123");
        let keep_digits = Masks { digit: None, ..Masks::default() };
        assert_eq!(keep_digits.mask("Ab1", 0, 3), "Xx1");
    }
}
