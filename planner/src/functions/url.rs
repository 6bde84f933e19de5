//! ksqlDB's URL functions: URL_EXTRACT_PROTOCOL, URL_EXTRACT_HOST, URL_EXTRACT_PORT,
//! URL_EXTRACT_PATH, URL_EXTRACT_QUERY, URL_EXTRACT_FRAGMENT, URL_EXTRACT_PARAMETER,
//! URL_ENCODE_PARAM and URL_DECODE_PARAM.
//!
//! URLs are split as Java's `java.net.URI` does (RFC 3986 components, no normalisation): a URL
//! without a scheme has no protocol, a missing port is NULL, path, query and fragment are
//! percent-decoded, and URL_EXTRACT_PARAMETER returns the raw (still encoded) value. Text that
//! is not a valid URI gives NULL. Parameters are encoded like `URLEncoder` (space as `+`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::DataType;

use super::string::all_strings;
use super::udf::{arity, call};
use crate::binder::functions::{Arg, FunctionRegistry};
use crate::binder::{Binder, Typed};
use crate::error::Result;

/// Registers the URL functions.
pub fn register(r: &mut FunctionRegistry) {
    for n in ["URL_EXTRACT_PROTOCOL", "URL_EXTRACT_HOST", "URL_EXTRACT_PATH", "URL_EXTRACT_QUERY", "URL_EXTRACT_FRAGMENT", "URL_ENCODE_PARAM", "URL_DECODE_PARAM"] {
        r.register(n, one_string);
    }
    r.register("URL_EXTRACT_PORT", port);
    r.register("URL_EXTRACT_PARAMETER", parameter);
}

/// The components of a URI, raw (still percent-encoded).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Uri<'a> {
    /// `http`
    pub scheme: Option<&'a str>,
    /// `www.test.com` (without user info and port)
    pub host: Option<&'a str>,
    /// The port, if written.
    pub port: Option<i32>,
    /// `/path` (None for an opaque URI such as `mailto:x`)
    pub path: Option<&'a str>,
    /// After `?`
    pub query: Option<&'a str>,
    /// After `#`
    pub fragment: Option<&'a str>,
}

fn valid_scheme(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic()) && c.all(|x| x.is_ascii_alphanumeric() || matches!(x, '+' | '-' | '.'))
}

/// Splits `s` like `java.net.URI`; None where Java would refuse it.
pub fn parse_uri(s: &str) -> Option<Uri<'_>> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')) {
        return None;
    }
    let mut u = Uri::default();
    let (rest, fragment) = match s.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (s, None),
    };
    u.fragment = fragment;
    let mut rest = rest;
    if let Some(colon) = rest.find(':') {
        let before = &rest[..colon];
        if !before.contains(['/', '?']) {
            if !valid_scheme(before) {
                return None;
            }
            u.scheme = Some(before);
            rest = &rest[colon + 1..];
            if !rest.starts_with('/') {
                // Opaque: no authority, path or query.
                return (!rest.is_empty()).then_some(u);
            }
        }
    }
    let (hier, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    u.query = query;
    if let Some(after) = hier.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        let authority = &after[..end];
        u.path = Some(&after[end..]);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || host_port.starts_with('[') => (h, Some(p)),
            _ => (host_port, None),
        };
        if let Some(p) = port.filter(|p| !p.is_empty()) {
            u.port = Some(p.parse().ok()?);
        }
        u.host = (!host.is_empty()).then_some(host);
    } else {
        u.path = Some(hier);
    }
    Some(u)
}

/// Decodes `%XX` escapes (as UTF-8); `plus_is_space` also turns `+` into a space (URLDecoder).
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// `URLEncoder.encode(s, UTF-8)`: letters, digits and `.-*_` stay, space becomes `+`, the rest `%XX`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn one_string(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let v = all_strings(name, &v)?;
    let f: fn(&str) -> Option<String> = match name {
        "URL_EXTRACT_PROTOCOL" => |s| parse_uri(s)?.scheme.map(str::to_string),
        "URL_EXTRACT_HOST" => |s| parse_uri(s)?.host.map(str::to_string),
        "URL_EXTRACT_PATH" => |s| percent_decode(parse_uri(s)?.path?, false),
        "URL_EXTRACT_QUERY" => |s| percent_decode(parse_uri(s)?.query?, false),
        "URL_EXTRACT_FRAGMENT" => |s| percent_decode(parse_uri(s)?.fragment?, false),
        "URL_ENCODE_PARAM" => |s| Some(url_encode(s)),
        _ => |s| percent_decode(s, true),
    };
    Ok(call(&name.to_lowercase(), DataType::Utf8, v, move |a, _n| {
        Ok(Arc::new(a[0].as_string::<i32>().iter().map(|s| s.and_then(f)).collect::<StringArray>()) as ArrayRef)
    }))
}

fn port(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 1, 1)?;
    let v = all_strings(name, &v)?;
    Ok(call("url_extract_port", DataType::Int32, v, |a, _n| {
        Ok(Arc::new(a[0].as_string::<i32>().iter().map(|s| s.and_then(|s| parse_uri(s)?.port)).collect::<Int32Array>()) as ArrayRef)
    }))
}

/// The raw value of query parameter `name` ("" when it has no `=`), as ksqlDB splits queries.
pub fn query_parameter<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    for param in parse_uri(url)?.query?.split('&') {
        match param.split_once('=') {
            None if param == name => return Some(""),
            Some((k, v)) if k == name => return Some(v),
            _ => {}
        }
    }
    None
}

fn parameter(_b: &Binder<'_>, name: &str, args: Vec<Arg>) -> Result<Typed> {
    let v = arity(name, args, 2, 2)?;
    let v = all_strings(name, &v)?;
    Ok(call("url_extract_parameter", DataType::Utf8, v, |a, n| {
        let (url, param) = (a[0].as_string::<i32>(), a[1].as_string::<i32>());
        let out: StringArray = (0..n)
            .map(|i| (url.is_valid(i) && param.is_valid(i)).then(|| query_parameter(url.value(i), param.value(i)).map(str::to_string)).flatten())
            .collect();
        Ok(Arc::new(out) as ArrayRef)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_java_uri() {
        let u = parse_uri("http://test@confluent.io:8080/nested/path?query&jobs#frag").unwrap();
        assert_eq!(u.scheme, Some("http"));
        assert_eq!(u.host, Some("confluent.io"));
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.path, Some("/nested/path"));
        assert_eq!(u.query, Some("query&jobs"));
        assert_eq!(u.fragment, Some("frag"));
        let u = parse_uri("http://www.test.com?query#fragment").unwrap();
        assert_eq!((u.path, u.port), (Some(""), None));
        assert_eq!(parse_uri("www.confluent.io").unwrap().scheme, None);
        assert_eq!(parse_uri("http://bad host"), None);
        assert_eq!(query_parameter("http://www.test.com/?one=a&two=b&three", "two"), Some("b"));
        assert_eq!(query_parameter("http://www.test.com/?one=a&two=b&three", "three"), Some(""));
        assert_eq!(query_parameter("http://www.test.com/?one=a", "four"), None);
    }

    #[test]
    fn encodes_like_url_encoder() {
        assert_eq!(url_encode("?foo $bar"), "%3Ffoo+%24bar");
        assert_eq!(url_encode("hello&world"), "hello%26world");
        assert_eq!(percent_decode("%3Ffoo+%24bar", true).unwrap(), "?foo $bar");
        assert_eq!(percent_decode("url%20encoded", true).unwrap(), "url encoded");
        assert_eq!(percent_decode("%zz", true), None);
    }
}
