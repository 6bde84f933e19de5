//! Text forms of values as ksqlDB (that is, Java) reads and writes them: `Integer.parseInt`,
//! `Long.parseLong`, `Double.parseDouble`, `new BigDecimal(String)` with ksqlDB's
//! `DecimalUtil.ensureFit` (no rounding: a value needing it is an error), `Double.toString`,
//! `BigDecimal.toPlainString` and `java.util.Base64`.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// `java.util.Base64`'s basic encoder and decoder: standard alphabet, padding written,
/// padding optional when read.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Appends the base64 form of `bytes`.
pub(crate) fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    let len = base64::encoded_len(bytes.len(), true).expect("encoded length of an in-memory value fits usize");
    out.resize(start + len, 0);
    let written = BASE64.encode_slice(bytes, &mut out[start..]).expect("buffer sized by encoded_len");
    out.truncate(start + written);
}

/// Appends the bytes `text` (base64) stands for; `false`, with `out` unchanged, if it is not
/// base64.
pub(crate) fn read_base64(out: &mut Vec<u8>, text: &[u8]) -> bool {
    let start = out.len();
    if BASE64.decode_vec(text, out).is_err() {
        out.truncate(start);
        return false;
    }
    true
}

/// `Integer.parseInt`: an optional sign and ASCII digits, in range.
pub(crate) fn parse_i32(s: &[u8]) -> Option<i32> {
    parse_i64(s).and_then(|v| i32::try_from(v).ok())
}

/// `Long.parseLong`: an optional sign and ASCII digits, in range.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i128 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i128::from(c - b'0');
        if v > 1 << 63 {
            return None;
        }
    }
    i64::try_from(if neg { -v } else { v }).ok()
}

/// `Double.parseDouble`: surrounding whitespace (and control characters) is ignored; takes an
/// optional sign, then `NaN`, `Infinity`, or a decimal number with optional exponent and an
/// optional `d`/`f` suffix. Hexadecimal floats are not supported.
pub(crate) fn parse_f64(s: &[u8]) -> Option<f64> {
    let start = s.iter().position(|&c| c > b' ')?;
    let end = s.iter().rposition(|&c| c > b' ')? + 1;
    let mut t = &s[start..end];
    let (neg, body) = match t.first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let sign = if neg { -1.0 } else { 1.0 };
    match body {
        b"NaN" => return Some(f64::NAN),
        b"Infinity" => return Some(sign * f64::INFINITY),
        _ => {}
    }
    if let Some(b'd' | b'D' | b'f' | b'F') = t.last() {
        t = &t[..t.len() - 1];
    }
    parse_decimal_text(t)?;
    std::str::from_utf8(t).ok()?.parse().ok()
}

/// A decimal number in text, as `new BigDecimal(String)` reads it: value is
/// `int frac` (digits) × 10^(`exp` − `frac.len()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecimalText<'a> {
    pub neg: bool,
    pub int: &'a [u8],
    pub frac: &'a [u8],
    pub exp: i64,
}

/// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (at least one digit before the exponent;
/// `.5` and `5.` are fine). JSON numbers are a subset.
pub(crate) fn parse_decimal_text(s: &[u8]) -> Option<DecimalText<'_>> {
    let (neg, mut i) = match s.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    let digits = |from: usize| from + s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int_end = digits(i);
    let int = &s[i..int_end];
    i = int_end;
    let mut frac: &[u8] = &[];
    if s.get(i) == Some(&b'.') {
        let frac_end = digits(i + 1);
        frac = &s[i + 1..frac_end];
        i = frac_end;
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if let Some(b'e' | b'E') = s.get(i) {
        i += 1;
        let eneg = match s.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let exp_end = digits(i);
        if exp_end == i {
            return None;
        }
        for &c in &s[i..exp_end] {
            // Saturate: anything past 10^12 overflows or vanishes all the same.
            exp = (exp * 10 + i64::from(c - b'0')).min(1_000_000_000_000);
        }
        if eneg {
            exp = -exp;
        }
        i = exp_end;
    }
    (i == s.len()).then_some(DecimalText { neg, int, frac, exp })
}

/// Why a number does not fit a DECIMAL(p, s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalFit {
    /// It has more integer digits than `p - s`.
    Overflow,
    /// It has non-zero digits past the scale.
    Rounding,
}

impl DecimalText<'_> {
    /// The unscaled value at `scale`, as ksqlDB's `DecimalUtil.ensureFit`: the integer digits
    /// must fit `precision - scale` and dropping digits past the scale must not round.
    pub fn fit(&self, precision: u8, scale: i8) -> Result<i128, DecimalFit> {
        let digits = || self.int.iter().chain(self.frac.iter()).copied();
        let total = self.int.len() + self.frac.len();
        let lead = digits().take_while(|&c| c == b'0').count();
        if lead == total {
            return Ok(0);
        }
        // Unscaled = D × 10^shift, D being the digits without leading zeros.
        let shift = self.exp - self.frac.len() as i64 + i64::from(scale);
        let sig = (total - lead) as i64;
        let (keep, zeros) = if shift >= 0 {
            (sig, shift)
        } else {
            let dropped = (-shift).min(sig);
            if digits().skip(total - dropped as usize).any(|c| c != b'0') || -shift > sig {
                return Err(DecimalFit::Rounding);
            }
            (sig - dropped, 0)
        };
        if keep + zeros > i64::from(precision) {
            return Err(DecimalFit::Overflow);
        }
        let mut v: i128 = 0;
        for c in digits().skip(lead).take(keep as usize) {
            v = v * 10 + i128::from(c - b'0');
        }
        for _ in 0..zeros {
            v *= 10;
        }
        Ok(if self.neg { -v } else { v })
    }

    /// The value truncated toward zero, as Jackson's `longValue()` of a decimal; `None` when it
    /// is out of `i64` range.
    pub fn trunc_i64(&self) -> Option<i64> {
        let digits = || self.int.iter().chain(self.frac.iter()).copied();
        let lead = digits().take_while(|&c| c == b'0').count();
        // Integer digits after the leading zeros; each one multiplies by ten, so more than
        // 19 overflow (and the loop below stays short however large the exponent).
        let point = self.int.len() as i64 + self.exp - lead as i64;
        if point <= 0 || lead == self.int.len() + self.frac.len() {
            return Some(0);
        }
        if point > 19 {
            return None;
        }
        let mut v: i128 = 0;
        for c in digits().skip(lead).chain(std::iter::repeat(b'0')).take(point as usize) {
            v = v * 10 + i128::from(c - b'0');
        }
        i64::try_from(if self.neg { -v } else { v }).ok()
    }
}

/// Appends `v` as Java's `Double.toString` writes it: `1.0`, `0.001`, `1234567.0`, `1.0E7`,
/// `1.0E-4`, `NaN`, `Infinity`, `-0.0` (with the shortest digits that round-trip).
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(match () {
            _ if v.is_nan() => b"NaN".as_slice(),
            _ if v > 0.0 => b"Infinity",
            _ => b"-Infinity",
        });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0.0" } else { b"0.0" });
        return;
    }
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v).as_bytes();
    let (neg, s) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    let (mant, exp) = match s.iter().position(|&c| c == b'e') {
        Some(e) => (&s[..e], parse_i64(&s[e + 1..]).unwrap_or(0)),
        None => (s, 0),
    };
    // Digits without the point, and where the point goes: value = 0.D × 10^point.
    let mut digits = [0u8; 32];
    let mut n = 0;
    let mut point = exp;
    let mut seen_point = false;
    for &c in mant {
        if c == b'.' {
            seen_point = true;
            continue;
        }
        if !seen_point {
            point += 1;
        }
        if n == 0 && c == b'0' {
            point -= 1;
            continue;
        }
        if n < digits.len() {
            digits[n] = c;
            n += 1;
        }
    }
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    // Java writes at least two digits, and when the shortest has one it takes the two-digit
    // decimal nearest the exact value: `d.0` but for subnormals (`4.9E-324`, not `5.0E-324`).
    if n == 1 && v.abs() < f64::MIN_POSITIVE {
        let two = format!("{:.1e}", v.abs());
        if two.parse::<f64>() == Ok(v.abs()) {
            let b = two.as_bytes();
            digits[0] = b[0];
            digits[1] = b[2];
            n = if b[2] == b'0' { 1 } else { 2 };
            point = parse_i64(&b[4..]).unwrap_or(0) + 1;
        }
    }
    let d = &digits[..n];
    if neg {
        out.push(b'-');
    }
    if (-2..=7).contains(&point) {
        if point <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-point) as usize));
            out.extend_from_slice(d);
        } else if (point as usize) < n {
            out.extend_from_slice(&d[..point as usize]);
            out.push(b'.');
            out.extend_from_slice(&d[point as usize..]);
        } else {
            out.extend_from_slice(d);
            out.extend(std::iter::repeat_n(b'0', point as usize - n));
            out.extend_from_slice(b".0");
        }
    } else {
        out.push(d[0]);
        out.push(b'.');
        if n > 1 {
            out.extend_from_slice(&d[1..]);
        } else {
            out.push(b'0');
        }
        out.push(b'E');
        out.extend_from_slice(itoa::Buffer::new().format(point - 1).as_bytes());
    }
}

/// Appends the decimal with unscaled value `v` at `scale` as `BigDecimal.toPlainString`
/// writes it, keeping the scale: `1.10`, `-0.05`, `12`.
pub(crate) fn write_decimal(out: &mut Vec<u8>, v: i128, scale: i8) {
    if v < 0 {
        out.push(b'-');
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v.unsigned_abs()).as_bytes();
    if scale <= 0 {
        out.extend_from_slice(digits);
        if v != 0 {
            out.extend(std::iter::repeat_n(b'0', scale.unsigned_abs() as usize));
        }
        return;
    }
    let scale = scale as usize;
    if digits.len() <= scale {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits);
    } else {
        let split = digits.len() - scale;
        out.extend_from_slice(&digits[..split]);
        out.push(b'.');
        out.extend_from_slice(&digits[split..]);
    }
}

/// Appends the decimal form of an integer.
#[inline]
pub(crate) fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// `Boolean.parseBoolean`: `true` in any case is true, anything else false.
pub(crate) fn parse_java_bool(s: &[u8]) -> bool {
    s.eq_ignore_ascii_case(b"true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f64_text(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_as_java_prints_them() {
        for (v, s) in [
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (100.0, "100.0"),
            (0.001, "0.001"),
            (0.000_999, "9.99E-4"),
            (9_999_999.0, "9999999.0"),
            (10_000_000.0, "1.0E7"),
            (1.5e10, "1.5E10"),
            (123_456.789, "123456.789"),
            (1e21, "1.0E21"),
            (1e-7, "1.0E-7"),
            (f64::MAX, "1.7976931348623157E308"),
            (f64::MIN_POSITIVE, "2.2250738585072014E-308"),
            (5e-324, "4.9E-324"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(f64_text(v), s, "{v:e}");
        }
    }

    #[test]
    fn doubles_round_trip_through_their_text() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                let s = f64_text(v);
                assert_eq!(parse_f64(s.as_bytes()), Some(v), "{s}");
            }
        }
    }

    #[test]
    fn decimals_print_plain_with_their_scale() {
        let text = |v: i128, s: i8| {
            let mut out = Vec::new();
            write_decimal(&mut out, v, s);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(110, 2), "1.10");
        assert_eq!(text(-5, 2), "-0.05");
        assert_eq!(text(0, 3), "0.000");
        assert_eq!(text(12, 0), "12");
        assert_eq!(text(12, -2), "1200");
        assert_eq!(text(i128::MIN, 38), "-1.70141183460469231731687303715884105728");
    }

    #[test]
    fn decimal_text_and_fitting() {
        let fit = |s: &str, p, sc| parse_decimal_text(s.as_bytes()).unwrap().fit(p, sc);
        assert_eq!(fit("1.5", 4, 2), Ok(150));
        assert_eq!(fit("-.5", 4, 2), Ok(-50));
        assert_eq!(fit("5.", 4, 2), Ok(500));
        assert_eq!(fit("+1.2300", 4, 2), Ok(123));
        assert_eq!(fit("1.235", 4, 2), Err(DecimalFit::Rounding));
        assert_eq!(fit("100", 4, 2), Err(DecimalFit::Overflow));
        assert_eq!(fit("99.99", 4, 2), Ok(9999));
        assert_eq!(fit("0.000", 1, 0), Ok(0));
        assert_eq!(fit("1e-999999999999999", 4, 2), Err(DecimalFit::Rounding));
        assert_eq!(fit("1e999999999999999", 38, 0), Err(DecimalFit::Overflow));
        assert_eq!(fit("0e999999999999999", 4, 2), Ok(0));
        assert_eq!(fit("99999999999999999999999999999999999999", 38, 0), Ok(10i128.pow(38) - 1));
        assert_eq!(fit("12E-1", 2, 1), Ok(12));
        for bad in ["", "-", ".", "1e", "1e+", "1.2.3", "1 ", " 1", "0x10", "1_0", "∞"] {
            assert_eq!(parse_decimal_text(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn integers_as_java_parses_them() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"+0012"), Some(12));
        assert_eq!(parse_i32(b"-2147483648"), Some(i32::MIN));
        assert_eq!(parse_i32(b"2147483648"), None);
        for bad in ["", "-", "+", "1.0", " 1", "1 ", "--1", "1e3", "٣"] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
        }
        let trunc = |s: &str| parse_decimal_text(s.as_bytes()).unwrap().trunc_i64();
        assert_eq!(trunc("-1.7"), Some(-1));
        assert_eq!(trunc("0.9"), Some(0));
        assert_eq!(trunc("12.5e1"), Some(125));
        assert_eq!(trunc("-9223372036854775808.5"), Some(i64::MIN));
        assert_eq!(trunc("9223372036854775808"), None);
        assert_eq!(trunc("0.0000000000000000000000001e30"), Some(100_000));
    }

    #[test]
    fn base64_as_java() {
        let mut out = Vec::new();
        write_base64(&mut out, b"variations");
        assert_eq!(out, b"dmFyaWF0aW9ucw==");
        let mut back = vec![1];
        assert!(read_base64(&mut back, b"dmFyaWF0aW9ucw"));
        assert_eq!(&back[1..], b"variations");
        assert!(!read_base64(&mut back, b"dmF*"));
        assert_eq!(&back[1..], b"variations");
    }
}
