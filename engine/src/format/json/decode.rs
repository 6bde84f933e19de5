//! `JsonDecoder`: JSON record bytes to Arrow columns, with ksqlDB's `KsqlJsonDeserializer`
//! semantics.
//!
//! Per record: one UTF-8 check, then one validating pass over the object noting each column's
//! value span (object keys matched exactly first, else by their upper-case form, as ksqlDB
//! does; the last duplicate wins), then each column converts its span straight into its
//! builder. No `serde_json::Value` is built; nested values (ARRAY, MAP, STRUCT) recurse over
//! their spans. Coercions follow ksqlDB: numbers and numeric strings convert between the
//! numeric types (a fraction truncates toward zero when read as an integer), anything can be
//! read as STRING (objects as their JSON text), DECIMAL never rounds.

use std::collections::HashMap;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Fields};

use super::scan::{describe, err, scan_string, skip_value, skip_ws, unescape_into, write_string, Scan};
use crate::format::builder::{ColumnBuilder, Kind, Problem};
use crate::format::text::{parse_decimal_text, parse_f64, parse_i64, read_base64};
use crate::format::types::type_name;
use crate::format::{DecodeError, RecordDecoder};

/// Where a column's value is in the record: `b[start..end]`.
#[derive(Clone, Copy, Default)]
struct Slot {
    start: usize,
    end: usize,
    escaped: bool,
    /// 0: not found, 1: matched by upper-casing the key, 2: matched exactly.
    quality: u8,
}

/// Decodes JSON objects (or bare values, for one unwrapped column) into columns.
pub(crate) struct JsonDecoder {
    names: Vec<Box<[u8]>>,
    /// No name has a lower-case ASCII letter (the usual unquoted columns): a key matching
    /// `names[hint]` upper-cased then cannot match another name exactly.
    upper_names: bool,
    cols: Vec<ColumnBuilder>,
    unwrapped: bool,
    slots: Vec<Slot>,
    stack: Vec<u8>,
    key: Vec<u8>,
    rows: usize,
    last_null: bool,
}

impl JsonDecoder {
    pub fn new(fields: &Fields, unwrapped: bool) -> Self {
        JsonDecoder {
            names: fields.iter().map(|f| f.name().as_bytes().into()).collect(),
            upper_names: fields.iter().all(|f| !f.name().bytes().any(|c| c.is_ascii_lowercase())),
            cols: fields.iter().map(|f| ColumnBuilder::new(f)).collect(),
            unwrapped,
            slots: vec![Slot::default(); fields.len()],
            stack: Vec::new(),
            key: Vec::new(),
            rows: 0,
            last_null: false,
        }
    }

    fn decode(&mut self, b: &[u8]) -> Result<(), DecodeError> {
        if let Err(e) = std::str::from_utf8(b) {
            return Err(DecodeError::Utf8 { offset: e.valid_up_to() });
        }
        let i = skip_ws(b, 0);
        let (end, escaped) = if self.unwrapped || b.get(i) != Some(&b'{') {
            skip_value(b, i, &mut self.stack)?
        } else {
            (self.scan_object(b, i)?, false)
        };
        let rest = skip_ws(b, end);
        if rest != b.len() {
            return err(rest, "unexpected data after the JSON value");
        }
        if b[i] == b'n' {
            self.last_null = true;
            self.cols.iter_mut().for_each(ColumnBuilder::append_masked_null);
            return Ok(());
        }
        if self.unwrapped {
            let slot = Slot { start: i, end, escaped, quality: 2 };
            return append_value(&mut self.cols[0], b, slot, &mut self.stack)
                .map_err(|p| field_error(&self.names[0], p));
        }
        if b[i] != b'{' {
            return Err(DecodeError::NotObject { got: describe(b, i, end) });
        }
        for (j, col) in self.cols.iter_mut().enumerate() {
            let slot = self.slots[j];
            let res = if slot.quality == 0 { col.append_null() } else { append_value(col, b, slot, &mut self.stack) };
            res.map_err(|p| field_error(&self.names[j], p))?;
        }
        Ok(())
    }

    /// Validates the object at `i`, noting each column's value in `slots`; returns its end.
    fn scan_object(&mut self, b: &[u8], i: usize) -> Scan<usize> {
        self.slots.fill(Slot::default());
        let mut j = skip_ws(b, i + 1);
        if b.get(j) == Some(&b'}') {
            return Ok(j + 1);
        }
        let mut hint = 0;
        loop {
            if b.get(j) != Some(&b'"') {
                return err(j, "expected a string key");
            }
            let (kend, kesc) = scan_string(b, j)?;
            let found = if kesc {
                self.key.clear();
                unescape_into(&mut self.key, &b[j + 1..kend - 1]);
                lookup(&self.names, &self.key, hint, self.upper_names)
            } else {
                lookup(&self.names, &b[j + 1..kend - 1], hint, self.upper_names)
            };
            j = skip_ws(b, kend);
            if b.get(j) != Some(&b':') {
                return err(j, "expected ':'");
            }
            j = skip_ws(b, j + 1);
            let (vend, escaped) = skip_value(b, j, &mut self.stack)?;
            if let Some((col, quality)) = found {
                if quality >= self.slots[col].quality {
                    self.slots[col] = Slot { start: j, end: vend, escaped, quality };
                }
                hint = col + 1;
            }
            j = skip_ws(b, vend);
            match b.get(j) {
                Some(b',') => j = skip_ws(b, j + 1),
                Some(b'}') => return Ok(j + 1),
                Some(_) => return err(j, "expected ',' or '}'"),
                None => return err(j, "unexpected end of input"),
            }
        }
    }
}

impl RecordDecoder for JsonDecoder {
    fn append(&mut self, bytes: Option<&[u8]>) -> Result<(), DecodeError> {
        self.last_null = false;
        let res = match bytes {
            Some(b) => self.decode(b),
            None => {
                self.last_null = true;
                self.cols.iter_mut().for_each(ColumnBuilder::append_masked_null);
                Ok(())
            }
        };
        if res.is_err() {
            self.last_null = false;
            for c in &mut self.cols {
                c.truncate(self.rows);
                c.append_masked_null();
            }
        }
        self.rows += 1;
        res
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        self.cols.iter_mut().map(ColumnBuilder::finish).collect()
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn last_was_null(&self) -> bool {
        self.last_null
    }
}

fn field_error(name: &[u8], p: Problem) -> DecodeError {
    DecodeError::Field { field: p.field(&String::from_utf8_lossy(name)), reason: p.reason }
}

/// The column a key names, and how: 2 for an exact match, 1 when the key upper-cased is the
/// name (ksqlDB's fallback, which lets `{"name": ..}` fill column `NAME` but not a quoted
/// lower-case column from `{"NAME": ..}`). `hint` is tried first: keys usually come in order.
/// `upper_names`: no name has a lower-case letter, so a key that is `names[hint]` upper-cased
/// matches no other name exactly (lower-case JSON keys, as most producers write, take this path).
#[inline]
fn lookup(names: &[Box<[u8]>], key: &[u8], hint: usize, upper_names: bool) -> Option<(usize, u8)> {
    let upper_eq = |n: &[u8]| n.len() == key.len() && n.iter().zip(key).all(|(n, k)| k.to_ascii_uppercase() == *n);
    if let Some(n) = names.get(hint) {
        if **n == *key {
            return Some((hint, 2));
        }
        if upper_names && key.is_ascii() && upper_eq(n) {
            return Some((hint, 1));
        }
    }
    // A key with a lower-case letter cannot equal a name without one.
    if !(upper_names && key.iter().any(u8::is_ascii_lowercase)) {
        if let Some(j) = names.iter().position(|n| **n == *key) {
            return Some((j, 2));
        }
    }
    if key.is_ascii() {
        names.iter().position(|n| upper_eq(n)).map(|j| (j, 1))
    } else {
        let upper = String::from_utf8_lossy(key).to_uppercase();
        names.iter().position(|n| **n == *upper.as_bytes()).map(|j| (j, 1))
    }
}

fn expected(ty: &DataType, b: &[u8], slot: Slot) -> Problem {
    Problem::new(format!("expected {}, got {}", type_name(ty), describe(b, slot.start, slot.end)))
}

/// The content of the string in `slot`, unescaped into `tmp` when needed.
fn string_content<'a>(b: &'a [u8], slot: Slot, tmp: &'a mut Vec<u8>) -> &'a [u8] {
    let s = &b[slot.start + 1..slot.end - 1];
    if !slot.escaped {
        return s;
    }
    tmp.clear();
    unescape_into(tmp, s);
    tmp
}

/// An integer from a JSON number (a fraction truncates) or a numeric string (strict, as
/// `Long.parseLong`), for INT, BIGINT, TIMESTAMP, DATE and TIME.
fn integer(ty: &DataType, b: &[u8], slot: Slot) -> Result<i64, Problem> {
    let s = &b[slot.start..slot.end];
    let out_of_range = || Problem::new(format!("number {} is out of range for {}", describe_text(s), type_name(ty)));
    match s[0] {
        b'-' | b'0'..=b'9' => {
            let digits = if s[0] == b'-' { &s[1..] } else { s };
            if digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
                let v = digits.iter().fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
                return Ok(if s[0] == b'-' { -v } else { v });
            }
            parse_decimal_text(s).ok_or_else(|| expected(ty, b, slot))?.trunc_i64().ok_or_else(out_of_range)
        }
        b'"' => {
            let mut tmp = Vec::new();
            parse_i64(string_content(b, slot, &mut tmp)).ok_or_else(|| expected(ty, b, slot))
        }
        _ => Err(expected(ty, b, slot)),
    }
}

fn describe_text(s: &[u8]) -> String {
    String::from_utf8_lossy(&s[..s.len().min(40)]).into_owned()
}

/// Converts the JSON value in `slot` to `col`'s type and appends it.
fn append_value(col: &mut ColumnBuilder, b: &[u8], slot: Slot, stack: &mut Vec<u8>) -> Result<(), Problem> {
    let first = b[slot.start];
    if first == b'n' {
        return col.append_null();
    }
    let ty = &col.data_type;
    match &mut col.kind {
        Kind::Boolean(v) => match first {
            b't' => v.append(true),
            b'f' => v.append(false),
            _ => return Err(expected(ty, b, slot)),
        },
        Kind::I32(v) => {
            let x = integer(ty, b, slot)?;
            let ok = match ty {
                DataType::Time32(_) => (0..86_400_000).contains(&x),
                _ => i32::try_from(x).is_ok(),
            };
            if !ok {
                return Err(Problem::new(format!("{x} is out of range for {}", type_name(ty))));
            }
            v.push(x as i32);
        }
        Kind::I64(v) => v.push(integer(ty, b, slot)?),
        Kind::F64(v) => {
            let s = &b[slot.start..slot.end];
            let x = match first {
                b'"' => parse_f64(string_content(b, slot, &mut Vec::new())),
                b'-' | b'0'..=b'9' => std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()),
                _ => None,
            };
            v.push(x.ok_or_else(|| expected(ty, b, slot))?);
        }
        Kind::Decimal(v, p, s) => {
            let mut tmp = Vec::new();
            let text = match first {
                b'"' => string_content(b, slot, &mut tmp),
                b'-' | b'0'..=b'9' => &b[slot.start..slot.end],
                _ => return Err(expected(ty, b, slot)),
            };
            let d = parse_decimal_text(text).ok_or_else(|| expected(ty, b, slot))?;
            v.push(d.fit(*p, *s).map_err(|fit| Problem::decimal(fit, text, ty))?);
        }
        Kind::Bytes { data, utf8: true, .. } => match first {
            b'"' if slot.escaped => unescape_into(data, &b[slot.start + 1..slot.end - 1]),
            b'"' => data.extend_from_slice(&b[slot.start + 1..slot.end - 1]),
            b'{' => write_compact(data, b, slot)?,
            b'[' => write_java_list(data, b, slot, stack)?,
            _ => data.extend_from_slice(&b[slot.start..slot.end]),
        },
        Kind::Bytes { data, utf8: false, .. } => {
            if first != b'"' || !read_base64(data, string_content(b, slot, &mut Vec::new())) {
                return Err(Problem::new(format!("expected base64 BYTES, got {}", describe(b, slot.start, slot.end))));
            }
        }
        Kind::List { child, .. } => {
            if first != b'[' {
                return Err(expected(ty, b, slot));
            }
            let mut n = 0;
            for_each_element(b, slot, stack, |b, elem, stack| {
                n += 1;
                append_value(child, b, elem, stack).map_err(|p| p.within(format!("[{n}]")))
            })?;
        }
        Kind::Map { keys, values, .. } => {
            if first != b'{' {
                return Err(expected(ty, b, slot));
            }
            // Duplicate keys: the last value wins, in the first one's place (as Jackson's
            // ObjectNode keeps them).
            let mut members: Vec<(Vec<u8>, Slot)> = Vec::new();
            let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
            for_each_member(b, slot, stack, |key, value| {
                match index.get(&key) {
                    Some(&m) => members[m].1 = value,
                    None => {
                        index.insert(key.clone(), members.len());
                        members.push((key, value));
                    }
                }
                Ok(())
            })?;
            for (key, value) in members {
                let Kind::Bytes { data, .. } = &mut keys.kind else {
                    unreachable!("JSON map keys are STRING (checked by check_columns)");
                };
                data.extend_from_slice(&key);
                keys.end_value()?;
                append_value(values, b, value, stack)
                    .map_err(|p| p.within(format!("[\"{}\"]", String::from_utf8_lossy(&key))))?;
            }
        }
        Kind::Struct { fields, children } => {
            if first != b'{' {
                return Err(expected(ty, b, slot));
            }
            let names: Vec<Box<[u8]>> = fields.iter().map(|f| f.name().as_bytes().into()).collect();
            let mut slots = vec![Slot::default(); names.len()];
            for_each_member(b, slot, stack, |key, value| {
                if let Some((j, quality)) = lookup(&names, &key, 0, false) {
                    if quality >= slots[j].quality {
                        slots[j] = Slot { quality, ..value };
                    }
                }
                Ok(())
            })?;
            for (j, child) in children.iter_mut().enumerate() {
                let res = if slots[j].quality == 0 { child.append_null() } else { append_value(child, b, slots[j], stack) };
                res.map_err(|p| p.within(format!(".{}", fields[j].name())))?;
            }
        }
    }
    col.end_value()
}

/// Calls `f` with the span of each element of the (valid) array in `slot`.
fn for_each_element(
    b: &[u8],
    slot: Slot,
    stack: &mut Vec<u8>,
    mut f: impl FnMut(&[u8], Slot, &mut Vec<u8>) -> Result<(), Problem>,
) -> Result<(), Problem> {
    let mut j = skip_ws(b, slot.start + 1);
    while j < slot.end && b[j] != b']' {
        let (end, escaped) = skip_value(b, j, stack).map_err(json_problem)?;
        f(b, Slot { start: j, end, escaped, quality: 2 }, stack)?;
        j = skip_ws(b, end);
        if b.get(j) == Some(&b',') {
            j = skip_ws(b, j + 1);
        }
    }
    Ok(())
}

/// Calls `f` with the unescaped key and the value span of each member of the (valid) object
/// in `slot`.
fn for_each_member(
    b: &[u8],
    slot: Slot,
    stack: &mut Vec<u8>,
    mut f: impl FnMut(Vec<u8>, Slot) -> Result<(), Problem>,
) -> Result<(), Problem> {
    let mut j = skip_ws(b, slot.start + 1);
    while j < slot.end && b[j] == b'"' {
        let (kend, kesc) = scan_string(b, j).map_err(json_problem)?;
        let mut key = Vec::with_capacity(kend - j);
        if kesc {
            unescape_into(&mut key, &b[j + 1..kend - 1]);
        } else {
            key.extend_from_slice(&b[j + 1..kend - 1]);
        }
        j = skip_ws(b, skip_ws(b, kend) + 1);
        let (end, escaped) = skip_value(b, j, stack).map_err(json_problem)?;
        f(key, Slot { start: j, end, escaped, quality: 2 })?;
        j = skip_ws(b, end);
        if b.get(j) == Some(&b',') {
            j = skip_ws(b, j + 1);
        }
    }
    Ok(())
}

fn json_problem(e: DecodeError) -> Problem {
    Problem::new(e.to_string())
}

/// Appends the compact JSON text of the (valid) value in `slot`, as ksqlDB writes an object
/// read into a STRING column: no whitespace, strings re-escaped.
fn write_compact(out: &mut Vec<u8>, b: &[u8], slot: Slot) -> Result<(), Problem> {
    let mut j = slot.start;
    let mut tmp = Vec::new();
    while j < slot.end {
        match b[j] {
            b' ' | b'\n' | b'\r' | b'\t' => j += 1,
            b'"' => {
                let (end, escaped) = scan_string(b, j).map_err(json_problem)?;
                if escaped {
                    tmp.clear();
                    unescape_into(&mut tmp, &b[j + 1..end - 1]);
                    write_string(out, &tmp);
                } else {
                    out.extend_from_slice(&b[j..end]);
                }
                j = end;
            }
            c => {
                out.push(c);
                j += 1;
            }
        }
    }
    Ok(())
}

/// Appends an array read into a STRING column as ksqlDB does: its elements as strings, joined
/// by `", "` in brackets (`[a, 1, null, [b]]`), objects as compact JSON. One pass, however deep.
fn write_java_list(out: &mut Vec<u8>, b: &[u8], slot: Slot, stack: &mut Vec<u8>) -> Result<(), Problem> {
    let mut j = slot.start;
    // Whether the next element is the first of its array (no separator before it).
    let mut first = true;
    while j < slot.end {
        let c = b[j];
        if matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b',') {
            j += 1;
            continue;
        }
        if c == b']' {
            out.push(b']');
            first = false;
            j += 1;
            continue;
        }
        if !first {
            out.extend_from_slice(b", ");
        }
        if c == b'[' {
            out.push(b'[');
            first = true;
            j += 1;
            continue;
        }
        first = false;
        let (end, escaped) = skip_value(b, j, stack).map_err(json_problem)?;
        match c {
            b'"' if escaped => unescape_into(out, &b[j + 1..end - 1]),
            b'"' => out.extend_from_slice(&b[j + 1..end - 1]),
            b'{' => write_compact(out, b, Slot { start: j, end, escaped, quality: 2 })?,
            _ => out.extend_from_slice(&b[j..end]),
        }
        j = end;
    }
    Ok(())
}
