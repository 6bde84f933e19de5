//! The `DELIMITED` format: one line of fields in column order, as ksqlDB reads and writes it
//! with Apache Commons CSV (`CSVFormat.DEFAULT` with the chosen delimiter).
//!
//! Reading: RFC 4180 quoting (`"a,b"`, `""` for a quote inside), quotes in the middle of an
//! unquoted field are plain characters, whitespace is kept, an empty field (quoted or not) is
//! null, leading empty lines are skipped and only the first record counts. Writing: quotes
//! only when Commons CSV's minimal quoting does (see [`needs_quotes`]).

mod decode;
mod encode;

#[cfg(test)]
mod tests;

pub(crate) use decode::DelimitedDecoder;
pub(crate) use encode::DelimitedEncoder;

use super::DecodeError;

/// One field of a record: a range of the record, or of the unquoting scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Record(usize, usize),
    Scratch(usize, usize),
}

/// Splits the first record of `b` into `fields` (cleared first); quoted fields with doubled
/// quotes are unquoted into `scratch`. An empty record (no bytes, or only line breaks) is one
/// empty field.
pub(crate) fn split_record(b: &[u8], delim: u8, fields: &mut Vec<Field>, scratch: &mut Vec<u8>) -> Result<(), DecodeError> {
    fields.clear();
    scratch.clear();
    let bad = |offset, reason| Err(DecodeError::Delimited { offset, reason });
    let mut i = b.iter().position(|&c| c != b'\n' && c != b'\r').unwrap_or(b.len());
    loop {
        // At the start of a field.
        let Some(&c) = b.get(i) else {
            fields.push(Field::Record(i, i));
            return Ok(());
        };
        if c == b'"' {
            let (field, end) = quoted(b, i, scratch)?;
            fields.push(field);
            // Only whitespace may follow the closing quote, up to the delimiter or line end.
            let mut j = end;
            loop {
                match b.get(j) {
                    None | Some(b'\n' | b'\r') => return Ok(()),
                    Some(&c) if c == delim => break,
                    Some(&c) if is_java_whitespace(c) => j += 1,
                    Some(_) => return bad(j, "unexpected character after a quoted field"),
                }
            }
            i = j + 1;
        } else {
            let end = memchr::memchr3(delim, b'\n', b'\r', &b[i..]).map_or(b.len(), |k| i + k);
            fields.push(Field::Record(i, end));
            if end == b.len() || b[end] != delim {
                return Ok(());
            }
            i = end + 1;
        }
    }
}

/// Reads the quoted field opening at `i`; returns it and the index after its closing quote.
fn quoted(b: &[u8], i: usize, scratch: &mut Vec<u8>) -> Result<(Field, usize), DecodeError> {
    let start = i + 1;
    let mut j = start;
    let mut copied: Option<usize> = None;
    loop {
        let Some(q) = memchr::memchr(b'"', &b[j..]).map(|k| j + k) else {
            return Err(DecodeError::Delimited { offset: b.len(), reason: "unterminated quoted field" });
        };
        if b.get(q + 1) == Some(&b'"') {
            // A doubled quote: copy the text up to and including one of them.
            copied.get_or_insert(scratch.len());
            scratch.extend_from_slice(&b[j..=q]);
            j = q + 2;
            continue;
        }
        return Ok(match copied {
            None => (Field::Record(start, q), q + 1),
            Some(s) => {
                scratch.extend_from_slice(&b[j..q]);
                (Field::Scratch(s, scratch.len()), q + 1)
            }
        });
    }
}

/// Java's `Character.isWhitespace` for single bytes (line breaks are handled before).
fn is_java_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | 0x0b | 0x0c | 0x1c..=0x1f)
}

/// Whether Commons CSV's minimal quoting (the version ksqlDB ships) quotes this value: an
/// empty first field; a first field not starting with an ASCII letter or digit (so `-5` and
/// `!` are quoted when first); a value starting with a byte up to `#` (space, `!`, `"`, `#`,
/// control characters); one holding CR, LF, `"` or the delimiter; one ending in a byte up to
/// space. A null is never quoted (it is written as nothing).
pub(crate) fn needs_quotes(s: &[u8], first: bool, delim: u8) -> bool {
    let Some(&c) = s.first() else {
        return first;
    };
    if first && !c.is_ascii_alphanumeric() {
        return true;
    }
    if c <= b'#' {
        return true;
    }
    if s.iter().any(|&c| c == b'\n' || c == b'\r' || c == b'"' || c == delim) {
        return true;
    }
    s[s.len() - 1] <= b' '
}
