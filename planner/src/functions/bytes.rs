//! ksqlDB's BYTES and encoding functions: TO_BYTES, FROM_BYTES, ENCODE, MD5, INT_FROM_BYTES,
//! BIGINT_FROM_BYTES and DOUBLE_FROM_BYTES.
//!
//! Encodings are `hex`, `utf8`, `ascii` and `base64` (any case). Hex input may carry a `0x`
//! prefix or be written `X'..'`; a bare hex string of odd length gets a leading zero. Text that
//! does not decode, an unknown encoding or a number of the wrong width gives NULL.

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use base64::Engine;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Float64Array, Int32Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use md5::{Digest, Md5};

use super::udf::{arity, call, expect, no_match};
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;

/// Registers the BYTES functions.
pub fn register(r: &mut FunctionRegistry) {
    r.register("TO_BYTES", to_bytes);
    r.register("FROM_BYTES", from_bytes);
    r.register("ENCODE", encode);
    r.register("MD5", md5);
    r.register("INT_FROM_BYTES", number_from_bytes);
    r.register("BIGINT_FROM_BYTES", number_from_bytes);
    r.register("DOUBLE_FROM_BYTES", number_from_bytes);
}

/// A text encoding ksqlDB knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Hexadecimal digits.
    Hex,
    /// UTF-8.
    Utf8,
    /// US-ASCII.
    Ascii,
    /// Base64 (standard alphabet, padded).
    Base64,
}

impl Encoding {
    /// The encoding named `s` (any case).
    pub fn parse(s: &str) -> Option<Encoding> {
        match s.to_ascii_lowercase().as_str() {
            "hex" => Some(Encoding::Hex),
            "utf8" | "utf-8" => Some(Encoding::Utf8),
            "ascii" | "us-ascii" => Some(Encoding::Ascii),
            "base64" => Some(Encoding::Base64),
            _ => None,
        }
    }

    /// The bytes `s` stands for in this encoding.
    pub fn decode(self, s: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Hex => decode_hex(s),
            Encoding::Utf8 => Some(s.as_bytes().to_vec()),
            Encoding::Ascii => Some(s.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }).collect()),
            Encoding::Base64 => STANDARD_PAD_INDIFFERENT.decode(s.as_bytes()).ok(),
        }
    }

    /// `b` written in this encoding (hex digits in `upper` case or not).
    pub fn encode(self, b: &[u8], upper: bool) -> String {
        match self {
            Encoding::Hex if upper => b.iter().map(|x| format!("{x:02X}")).collect(),
            Encoding::Hex => b.iter().map(|x| format!("{x:02x}")).collect(),
            Encoding::Utf8 => String::from_utf8_lossy(b).into_owned(),
            Encoding::Ascii => b.iter().map(|&x| if x < 128 { x as char } else { '\u{fffd}' }).collect(),
            Encoding::Base64 => STANDARD.encode(b),
        }
    }
}

/// Hex digits, optionally `0x...` or `X'...'`, to bytes. An odd number of digits is read
/// with a leading zero after `0x` (as Java's BigInteger-style parsing has it) and is invalid
/// otherwise.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let digits = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if r.len() % 2 == 1 {
            format!("0{r}")
        } else {
            r.to_string()
        }
    } else if let Some(r) = s.strip_prefix("X'").or_else(|| s.strip_prefix("x'")) {
        r.strip_suffix('\'')?.to_string()
    } else {
        s.to_string()
    };
    if digits.len() % 2 == 1 {
        return None;
    }
    let d = digits.as_bytes();
    (0..d.len())
        .step_by(2)
        .map(|i| std::str::from_utf8(&d[i..i + 2]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

fn encoding_at(a: &ArrayRef, i: usize) -> Option<Encoding> {
    let s = a.as_string::<i32>();
    s.is_valid(i).then(|| Encoding::parse(s.value(i))).flatten()
}

fn to_bytes(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let cast = vec![expect(name, &v, 0, &DataType::Utf8)?, expect(name, &v, 1, &DataType::Utf8)?];
    Ok(call("to_bytes", DataType::Binary, cast, |a, n| {
        let s = a[0].as_string::<i32>();
        let out: BinaryArray = (0..n).map(|i| s.is_valid(i).then(|| encoding_at(&a[1], i)?.decode(s.value(i))).flatten()).collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn from_bytes(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let cast = vec![expect(name, &v, 0, &DataType::Binary)?, expect(name, &v, 1, &DataType::Utf8)?];
    Ok(call("from_bytes", DataType::Utf8, cast, |a, n| {
        let b = a[0].as_binary::<i32>();
        let out: StringArray = (0..n).map(|i| b.is_valid(i).then(|| Some(encoding_at(&a[1], i)?.encode(b.value(i), true))).flatten()).collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn encode(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 3, 3)?;
    let cast = super::string::all_strings(name, &v)?;
    Ok(call("encode", DataType::Utf8, cast, |a, n| {
        let s = a[0].as_string::<i32>();
        let out: StringArray = (0..n)
            .map(|i| {
                if s.is_null(i) {
                    return None;
                }
                let (from, to) = (encoding_at(&a[1], i)?, encoding_at(&a[2], i)?);
                Some(to.encode(&from.decode(s.value(i))?, false))
            })
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

fn md5(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let x = expect(name, &v, 0, &DataType::Utf8)?;
    Ok(call("md5", DataType::Utf8, vec![x], |a, _n| {
        let out: StringArray = a[0]
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(|s| Md5::digest(s.as_bytes()).iter().map(|x| format!("{x:02x}")).collect::<String>()))
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

/// The `width` bytes of a number in the given byte order ('BIG_ENDIAN' unless 'LITTLE_ENDIAN').
fn number_bytes<const W: usize>(b: &[u8], order: Option<&str>) -> Option<[u8; W]> {
    let mut x: [u8; W] = b.try_into().ok()?;
    match order.map(|o| o.to_ascii_uppercase()) {
        None => {}
        Some(o) if o == "BIG_ENDIAN" => {}
        Some(o) if o == "LITTLE_ENDIAN" => x.reverse(),
        Some(_) => return None,
    }
    Some(x)
}

fn number_from_bytes(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 2)?;
    let mut cast = vec![expect(name, &v, 0, &DataType::Binary)?];
    if v.len() == 2 {
        cast.push(expect(name, &v, 1, &DataType::Utf8)?);
    }
    let ret = match name {
        "INT_FROM_BYTES" => DataType::Int32,
        "BIGINT_FROM_BYTES" => DataType::Int64,
        "DOUBLE_FROM_BYTES" => DataType::Float64,
        _ => return Err(no_match(name, &v)),
    };
    let out_type = ret.clone();
    Ok(call(&name.to_lowercase(), ret, cast, move |a, n| {
        let b = a[0].as_binary::<i32>();
        let order = |i: usize| a.get(1).map(|o| o.as_string::<i32>()).filter(|o| o.is_valid(i)).map(|o| o.value(i));
        let null_order = |i: usize| a.get(1).is_some_and(|o| o.is_null(i));
        let valid = |i: usize| b.is_valid(i) && !null_order(i);
        Ok(match out_type {
            DataType::Int32 => Arc::new(
                (0..n).map(|i| valid(i).then(|| number_bytes::<4>(b.value(i), order(i)).map(i32::from_be_bytes)).flatten()).collect::<Int32Array>(),
            ) as ArrayRef,
            DataType::Int64 => Arc::new(
                (0..n).map(|i| valid(i).then(|| number_bytes::<8>(b.value(i), order(i)).map(i64::from_be_bytes)).flatten()).collect::<Int64Array>(),
            ),
            _ => Arc::new(
                (0..n).map(|i| valid(i).then(|| number_bytes::<8>(b.value(i), order(i)).map(f64::from_be_bytes)).flatten()).collect::<Float64Array>(),
            ),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(decode_hex("4578").unwrap(), vec![0x45, 0x78]);
        assert_eq!(decode_hex("0x4578").unwrap(), vec![0x45, 0x78]);
        assert_eq!(decode_hex("X'4578'").unwrap(), vec![0x45, 0x78]);
        assert_eq!(decode_hex("578"), None);
        assert_eq!(decode_hex("0x578").unwrap(), vec![0x05, 0x78]);
        assert_eq!(decode_hex("X'578'"), None);
        assert_eq!(decode_hex("x'4578"), None);
        assert_eq!(decode_hex("0x0x"), None);
        assert_eq!(decode_hex("0x").unwrap(), Vec::<u8>::new());
        assert_eq!(Encoding::Ascii.encode(&[0xc3, 0x9c, b'b'], false), "\u{fffd}\u{fffd}b");
        assert_eq!(Encoding::Ascii.decode("Ελ").unwrap(), b"??");
    }
}
