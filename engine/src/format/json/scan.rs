//! A validating JSON scanner over bytes: finds where values end without building them, so the
//! decoder can note each member's span and convert only the ones it needs, straight into the
//! column builders. Nesting is tracked on an explicit stack (at most [`MAX_DEPTH`] deep, as
//! Jackson's default), so no input can overflow the call stack.
//!
//! Input is assumed to be valid UTF-8 already (the decoder checks each record once), so any
//! slice between ASCII delimiters is valid UTF-8 too.

use crate::format::DecodeError;

/// Deepest nesting of arrays and objects accepted.
pub(crate) const MAX_DEPTH: usize = 1000;

/// A scan result; errors carry the byte offset.
pub(crate) type Scan<T> = Result<T, DecodeError>;

/// An invalid-JSON error at `offset`.
#[cold]
pub(crate) fn err<T>(offset: usize, reason: &'static str) -> Scan<T> {
    Err(DecodeError::Json { offset, reason })
}

/// The index of the first non-whitespace byte at or after `i`.
#[inline]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// Scans the string whose opening quote is at `i`; returns the index after the closing quote
/// and whether the string has escapes.
#[inline]
pub(crate) fn scan_string(b: &[u8], i: usize) -> Scan<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        while let Some(&c) = b.get(j) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                break;
            }
            j += 1;
        }
        match b.get(j) {
            Some(b'"') => return Ok((j + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                j = skip_escape(b, j)?;
            }
            Some(_) => return err(j, "control character in string"),
            None => return err(j, "unterminated string"),
        }
    }
}

fn skip_escape(b: &[u8], j: usize) -> Scan<usize> {
    match b.get(j + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(j + 2),
        Some(b'u') => match b.get(j + 2..j + 6) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(j + 6),
            _ => err(j, "invalid unicode escape"),
        },
        _ => err(j, "invalid escape"),
    }
}

/// Scans the number starting at `i`; returns its end and whether it is an integer (no
/// fraction, no exponent).
#[inline]
pub(crate) fn scan_number(b: &[u8], i: usize) -> Scan<(usize, bool)> {
    let digits = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    match b.get(j) {
        Some(b'0') => j += 1,
        Some(b'1'..=b'9') => j = digits(j + 1),
        _ => return err(j, "invalid number"),
    }
    let mut integer = true;
    if b.get(j) == Some(&b'.') {
        let end = digits(j + 1);
        if end == j + 1 {
            return err(end, "expected a digit after the decimal point");
        }
        j = end;
        integer = false;
    }
    if let Some(b'e' | b'E') = b.get(j) {
        j += 1;
        if let Some(b'+' | b'-') = b.get(j) {
            j += 1;
        }
        let end = digits(j);
        if end == j {
            return err(end, "expected a digit in the exponent");
        }
        j = end;
        integer = false;
    }
    Ok((j, integer))
}

fn scan_literal(b: &[u8], i: usize, lit: &'static [u8]) -> Scan<usize> {
    if b.get(i..i + lit.len()) == Some(lit) {
        Ok(i + lit.len())
    } else {
        err(i, "invalid literal")
    }
}

/// Skips the value starting at `i` (no leading whitespace); returns its end and, for a
/// string, whether it has escapes. `stack` is scratch space for nesting.
#[inline]
pub(crate) fn skip_value(b: &[u8], i: usize, stack: &mut Vec<u8>) -> Scan<(usize, bool)> {
    match b.get(i) {
        Some(b'"') => scan_string(b, i),
        Some(b'{' | b'[') => Ok((skip_container(b, i, stack)?, false)),
        Some(_) => Ok((skip_scalar(b, i)?, false)),
        None => err(i, "unexpected end of input"),
    }
}

fn skip_scalar(b: &[u8], i: usize) -> Scan<usize> {
    match b.get(i) {
        Some(b'"') => Ok(scan_string(b, i)?.0),
        Some(b'-' | b'0'..=b'9') => Ok(scan_number(b, i)?.0),
        Some(b't') => scan_literal(b, i, b"true"),
        Some(b'f') => scan_literal(b, i, b"false"),
        Some(b'n') => scan_literal(b, i, b"null"),
        Some(_) => err(i, "expected a value"),
        None => err(i, "unexpected end of input"),
    }
}

fn closer(open: u8) -> u8 {
    if open == b'{' {
        b'}'
    } else {
        b']'
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Right after `{` or `[`: a member, or the closing bracket.
    First,
    /// After a comma: a member.
    Next,
    /// After a member: a comma or the closing bracket.
    After,
}

/// Skips the object or array opening at `i`; returns the index after its closing bracket.
fn skip_container(b: &[u8], i: usize, stack: &mut Vec<u8>) -> Scan<usize> {
    stack.clear();
    stack.push(b[i]);
    let mut j = i + 1;
    let mut state = State::First;
    loop {
        j = skip_ws(b, j);
        let Some(&c) = b.get(j) else {
            return err(j, "unexpected end of input");
        };
        let top = stack[stack.len() - 1];
        if state == State::After {
            if c == b',' {
                j += 1;
                state = State::Next;
            } else if c == closer(top) {
                stack.pop();
                j += 1;
                if stack.is_empty() {
                    return Ok(j);
                }
            } else {
                return err(j, if top == b'{' { "expected ',' or '}'" } else { "expected ',' or ']'" });
            }
            continue;
        }
        if state == State::First && c == closer(top) {
            stack.pop();
            j += 1;
            if stack.is_empty() {
                return Ok(j);
            }
            state = State::After;
            continue;
        }
        let mut c = c;
        if top == b'{' {
            if c != b'"' {
                return err(j, "expected a string key");
            }
            j = skip_ws(b, scan_string(b, j)?.0);
            if b.get(j) != Some(&b':') {
                return err(j, "expected ':'");
            }
            j = skip_ws(b, j + 1);
            match b.get(j) {
                Some(&next) => c = next,
                None => return err(j, "unexpected end of input"),
            }
        }
        if c == b'{' || c == b'[' {
            if stack.len() >= MAX_DEPTH {
                return err(j, "nesting too deep");
            }
            stack.push(c);
            j += 1;
            state = State::First;
        } else {
            j = skip_scalar(b, j)?;
            state = State::After;
        }
    }
}

/// Appends the unescaped content of a string (`s` is between the quotes, with valid escapes).
/// Lone surrogates become U+FFFD, as Java would print them.
pub(crate) fn unescape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut i = 0;
    while i < s.len() {
        let Some(k) = memchr::memchr(b'\\', &s[i..]) else {
            out.extend_from_slice(&s[i..]);
            return;
        };
        out.extend_from_slice(&s[i..i + k]);
        i += k;
        let Some(&e) = s.get(i + 1) else { return };
        let simple = match e {
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            other => Some(other),
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        let unit = |at: usize| s.get(at..at + 4).and_then(|h| u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        let Some(hi) = unit(i + 2) else { return };
        i += 6;
        let ch = if (0xD800..0xDC00).contains(&hi) {
            match (s.get(i..i + 2), unit(i + 2)) {
                (Some(b"\\u"), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                    i += 6;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                }
                _ => None,
            }
        } else {
            char::from_u32(hi)
        };
        let ch = ch.unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
}

/// Appends `s` as a JSON string, escaped as Jackson does: `"` and `\`, and control characters
/// (`\n`, `\t`, ... or `\u00XX`); everything else, non-ASCII included, as is.
#[inline]
pub(crate) fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    if !s.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\') {
        out.extend_from_slice(s);
    } else {
        for &c in s {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                c if c < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(c >> 4)]);
                    out.push(HEX[usize::from(c & 15)]);
                }
                c => out.push(c),
            }
        }
    }
    out.push(b'"');
}

/// A short description of the (valid) value at `b[start..end]` for messages: `string "x"`,
/// `number 1.5`, `boolean true`, `null`, `an object`, `an array`.
pub(crate) fn describe(b: &[u8], start: usize, end: usize) -> String {
    const MAX: usize = 40;
    let text = |s: &[u8]| {
        let s = String::from_utf8_lossy(s);
        if s.chars().count() > MAX {
            format!("{}...", s.chars().take(MAX).collect::<String>())
        } else {
            s.into_owned()
        }
    };
    match b.get(start) {
        Some(b'"') => format!("string \"{}\"", text(&b[start + 1..end.saturating_sub(1).max(start + 1)])),
        Some(b'{') => "an object".into(),
        Some(b'[') => "an array".into(),
        Some(b't' | b'f') => format!("boolean {}", text(&b[start..end])),
        Some(b'n') => "null".into(),
        Some(_) => format!("number {}", text(&b[start..end])),
        None => "nothing".into(),
    }
}
