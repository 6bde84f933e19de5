//! `$n` parameters of the PostgreSQL extended protocol. A statement with parameters is kept as
//! text at Parse; at Bind each value is decoded by its type (the type the client declared, else
//! the one inferred from the statement) and written into the text as a SQL literal, and the
//! statement then runs like any other. A value that is not of its type is refused with SQLSTATE
//! 22P02 and the parameter's number; nothing runs.
//!
//! Types are inferred where a parameter meets a column: `col = $1` (any comparison), `col IN
//! ($1, ...)`, `col BETWEEN $1 AND $2`, and the values of `INSERT INTO s (cols) VALUES (...)`.
//! Other parameters are `text`, which drivers may send as anything.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::ops::Range;

use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast::{visit_expressions, BinaryOperator, Expr as AstExpr};
use pgwire::api::Type;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use planner::ast::Statement;
use planner::catalog::Catalog;

use super::pgtypes::pg_type;

/// Milliseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_MS: i64 = 946_684_800_000;

/// Where the `$n` placeholders of a statement are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders {
    /// Byte ranges of each `$n` and its number n (from 1).
    pub spots: Vec<(Range<usize>, usize)>,
    /// The highest n.
    pub count: usize,
}

/// Finds `$n` outside string literals, quoted identifiers and comments.
pub fn scan(sql: &str) -> Placeholders {
    let b = sql.as_bytes();
    let mut spots = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) && (i == 0 || !is_word(b[i - 1])) => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if let Ok(n) = sql[start + 1..i].parse::<usize>() {
                    if n > 0 {
                        spots.push((start..i, n));
                    }
                }
            }
            _ => i += 1,
        }
    }
    let count = spots.iter().map(|(_, n)| *n).max().unwrap_or(0);
    Placeholders { spots, count }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `sql` with each `$n` replaced by `values[n - 1]`.
pub fn substitute(sql: &str, p: &Placeholders, values: &[String]) -> String {
    let mut out = String::with_capacity(sql.len() + values.iter().map(String::len).sum::<usize>());
    let mut at = 0;
    for (r, n) in &p.spots {
        out.push_str(&sql[at..r.start]);
        out.push_str(values.get(n - 1).map(String::as_str).unwrap_or("NULL"));
        at = r.end;
    }
    out.push_str(&sql[at..]);
    out
}

/// The marker a parameter stands as while its type is inferred.
fn marker(n: usize) -> String {
    format!("EDDY_PARAM_{n}")
}

fn marker_number(e: &AstExpr) -> Option<usize> {
    let AstExpr::Identifier(id) = e else { return None };
    id.value.to_uppercase().strip_prefix("EDDY_PARAM_")?.parse().ok()
}

/// The type of each parameter, from the columns it meets; `text` where none.
pub fn infer(sql: &str, p: &Placeholders, catalog: &Catalog) -> Vec<Type> {
    let mut types = vec![Type::TEXT; p.count];
    let markers: Vec<String> = (1..=p.count).map(marker).collect();
    let Ok(statements) = planner::parser::parse(&substitute(sql, p, &markers)) else { return types };
    let Some(st) = statements.first() else { return types };
    let mut found: HashMap<usize, DataType> = HashMap::new();
    match &st.statement {
        Statement::Query(q) => {
            let mut columns: HashMap<String, DataType> = HashMap::new();
            for name in std::iter::once(&q.from.name).chain(q.joins.iter().map(|j| &j.source.name)) {
                if let Some(def) = catalog.sources.get(name) {
                    for c in &def.columns {
                        columns.entry(c.name.clone()).or_insert_with(|| c.data_type.clone());
                    }
                }
            }
            for pseudo in ["ROWTIME", "WINDOWSTART", "WINDOWEND"] {
                columns.entry(pseudo.to_string()).or_insert(DataType::Int64);
            }
            let column_type = |e: &AstExpr| column_type_of(e, &columns);
            let exprs = q.selection.iter().chain(q.having.iter());
            for e in exprs {
                let _ = visit_expressions(e, |x| {
                    match x {
                        AstExpr::BinaryOp { left, op, right } if is_comparison(op) => {
                            if let (Some(n), Some(t)) = (marker_number(right), column_type(left)) {
                                found.entry(n).or_insert(t);
                            } else if let (Some(n), Some(t)) = (marker_number(left), column_type(right)) {
                                found.entry(n).or_insert(t);
                            }
                        }
                        AstExpr::InList { expr, list, .. } => {
                            if let Some(t) = column_type(expr) {
                                for n in list.iter().filter_map(marker_number) {
                                    found.entry(n).or_insert(t.clone());
                                }
                            }
                        }
                        AstExpr::Between { expr, low, high, .. } => {
                            if let Some(t) = column_type(expr) {
                                for n in [low, high].into_iter().filter_map(|e| marker_number(e)) {
                                    found.entry(n).or_insert(t.clone());
                                }
                            }
                        }
                        _ => {}
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
        }
        Statement::InsertValues(ins) => {
            if let Some(def) = catalog.sources.get(&ins.target) {
                let names: Vec<String> = if ins.columns.is_empty() {
                    def.key_columns().chain(def.value_columns()).map(|c| c.name.clone()).collect()
                } else {
                    ins.columns.clone()
                };
                for (name, v) in names.iter().zip(&ins.values) {
                    let Some(n) = marker_number(v) else { continue };
                    let t = if name == "ROWTIME" {
                        Some(DataType::Int64)
                    } else {
                        def.columns.iter().find(|c| &c.name == name).map(|c| c.data_type.clone())
                    };
                    if let Some(t) = t {
                        found.entry(n).or_insert(t);
                    }
                }
            }
        }
        _ => {}
    }
    for (n, t) in found {
        if let Some(slot) = types.get_mut(n - 1) {
            *slot = pg_type(&t);
        }
    }
    types
}

fn column_type_of(e: &AstExpr, columns: &HashMap<String, DataType>) -> Option<DataType> {
    match e {
        AstExpr::Identifier(id) => columns.get(&planner::parser::norm_ident(id)).cloned(),
        AstExpr::CompoundIdentifier(parts) => columns.get(&parts.last().map(planner::parser::norm_ident)?).cloned(),
        AstExpr::Nested(inner) => column_type_of(inner, columns),
        _ => None,
    }
}

fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq | BinaryOperator::NotEq | BinaryOperator::Lt | BinaryOperator::LtEq | BinaryOperator::Gt | BinaryOperator::GtEq
    )
}

fn bad_value(n: usize, ty: &Type, raw: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "22P02".into(),
        format!("invalid input syntax for type {}: \"{raw}\" (parameter ${n})", type_label(ty)),
    )))
}

fn bad_binary(n: usize, ty: &Type, len: usize) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "22P03".into(),
        format!("incorrect binary data format in parameter ${n}: {len} bytes are not a value of type {}", type_label(ty)),
    )))
}

/// PostgreSQL's name of a type in messages.
fn type_label(ty: &Type) -> &str {
    match *ty {
        Type::INT2 => "smallint",
        Type::INT4 => "integer",
        Type::INT8 => "bigint",
        Type::FLOAT4 => "real",
        Type::FLOAT8 => "double precision",
        Type::BOOL => "boolean",
        _ => ty.name(),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Parameter `n` (from 1) of type `ty` as a SQL literal; `raw` is `None` for NULL.
pub fn literal(n: usize, ty: &Type, binary: bool, raw: Option<&[u8]>) -> PgWireResult<String> {
    let Some(raw) = raw else { return Ok("NULL".into()) };
    if binary {
        return binary_literal(n, ty, raw);
    }
    let text = std::str::from_utf8(raw).map_err(|_| bad_value(n, ty, &String::from_utf8_lossy(raw)))?;
    let t = text.trim();
    Ok(match *ty {
        Type::BOOL => match t.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "y" | "on" | "1" => "TRUE".into(),
            "f" | "false" | "no" | "n" | "off" | "0" => "FALSE".into(),
            _ => return Err(bad_value(n, ty, text)),
        },
        Type::INT2 => t.parse::<i16>().map_err(|_| bad_value(n, ty, text))?.to_string(),
        Type::INT4 => t.parse::<i32>().map_err(|_| bad_value(n, ty, text))?.to_string(),
        Type::INT8 | Type::OID => t.parse::<i64>().map_err(|_| bad_value(n, ty, text))?.to_string(),
        Type::FLOAT4 | Type::FLOAT8 => {
            let v = t.parse::<f64>().map_err(|_| bad_value(n, ty, text))?;
            if !v.is_finite() {
                return Err(bad_value(n, ty, text));
            }
            format!("CAST({v:?} AS DOUBLE)")
        }
        Type::NUMERIC => {
            let digits = t.strip_prefix('-').unwrap_or(t);
            let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
            let ok = !(int.is_empty() && frac.is_empty())
                && int.bytes().all(|c| c.is_ascii_digit())
                && frac.bytes().all(|c| c.is_ascii_digit());
            if !ok {
                return Err(bad_value(n, ty, text));
            }
            t.to_string()
        }
        Type::BYTEA => match t.strip_prefix("\\x") {
            Some(hex) if hex.len() % 2 == 0 && hex.bytes().all(|c| c.is_ascii_hexdigit()) => format!("TO_BYTES({}, 'hex')", quote(hex)),
            _ => return Err(bad_value(n, ty, text)),
        },
        _ => quote(text),
    })
}

fn binary_literal(n: usize, ty: &Type, raw: &[u8]) -> PgWireResult<String> {
    let fixed = |len: usize| -> PgWireResult<&[u8]> {
        if raw.len() == len {
            Ok(raw)
        } else {
            Err(bad_binary(n, ty, raw.len()))
        }
    };
    let ms_text = |ms: i64, fmt: &str| {
        chrono::DateTime::from_timestamp_millis(ms).map(|t| t.naive_utc().format(fmt).to_string()).unwrap_or_default()
    };
    Ok(match *ty {
        Type::BOOL => if fixed(1)?[0] != 0 { "TRUE" } else { "FALSE" }.into(),
        Type::INT2 => i16::from_be_bytes(fixed(2)?.try_into().expect("2 bytes")).to_string(),
        Type::INT4 | Type::OID => i32::from_be_bytes(fixed(4)?.try_into().expect("4 bytes")).to_string(),
        Type::INT8 => i64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes")).to_string(),
        Type::FLOAT4 => format!("CAST({:?} AS DOUBLE)", f32::from_be_bytes(fixed(4)?.try_into().expect("4 bytes")) as f64),
        Type::FLOAT8 => format!("CAST({:?} AS DOUBLE)", f64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes"))),
        Type::NUMERIC => numeric_text(raw).ok_or_else(|| bad_binary(n, ty, raw.len()))?,
        Type::BYTEA => {
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            format!("TO_BYTES('{hex}', 'hex')")
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let us = i64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes"));
            quote(&ms_text(us.div_euclid(1000) + PG_EPOCH_MS, "%Y-%m-%dT%H:%M:%S%.3f"))
        }
        Type::DATE => {
            let d = i32::from_be_bytes(fixed(4)?.try_into().expect("4 bytes")) as i64;
            quote(&ms_text((d + 10_957) * 86_400_000, "%Y-%m-%d"))
        }
        Type::TIME => {
            let us = i64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes"));
            quote(&ms_text(us / 1000, "%H:%M:%S%.3f"))
        }
        _ => quote(std::str::from_utf8(raw).map_err(|_| bad_binary(n, ty, raw.len()))?),
    })
}

/// PostgreSQL's binary numeric as decimal text.
fn numeric_text(raw: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> { Some(i16::from_be_bytes(raw.get(i..i + 2)?.try_into().ok()?)) };
    let (ndigits, weight, sign, dscale) = (word(0)? as usize, word(2)? as i32, word(4)? as u16, word(6)? as usize);
    if sign == 0xC000 {
        return None; // NaN
    }
    let digits: Vec<i16> = (0..ndigits).map(|i| word(8 + 2 * i)).collect::<Option<_>>()?;
    let mut int = String::new();
    for w in 0..=weight.max(-1) {
        let d = digits.get(w as usize).copied().unwrap_or(0);
        if int.is_empty() {
            if d != 0 {
                int = d.to_string();
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut i = weight + 1;
    while frac.len() < dscale {
        let d = if i >= 0 { digits.get(i as usize).copied().unwrap_or(0) } else { 0 };
        frac.push_str(&format!("{d:04}"));
        i += 1;
    }
    frac.truncate(dscale);
    let mut s = if sign == 0x4000 { format!("-{int}") } else { int };
    if dscale > 0 {
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders_outside_literals_and_comments() {
        let sql = "SELECT '$1', \"$2\" FROM t WHERE a = $1 AND b IN ($2,$10) -- $3\n/* $4 */ AND c = x$5";
        let p = scan(sql);
        let ns: Vec<usize> = p.spots.iter().map(|(_, n)| *n).collect();
        assert_eq!(ns, vec![1, 2, 10]);
        assert_eq!(p.count, 10);
        let s = substitute("a = $1 AND b = $2 OR c = $1", &scan("a = $1 AND b = $2 OR c = $1"), &["7".into(), "'x'".into()]);
        assert_eq!(s, "a = 7 AND b = 'x' OR c = 7");
    }

    #[test]
    fn text_values_become_literals_of_their_type() {
        assert_eq!(literal(1, &Type::INT4, false, Some(b"42")).unwrap(), "42");
        assert_eq!(literal(1, &Type::TEXT, false, Some(b"it's")).unwrap(), "'it''s'");
        assert_eq!(literal(1, &Type::BOOL, false, Some(b"t")).unwrap(), "TRUE");
        assert_eq!(literal(1, &Type::NUMERIC, false, Some(b"-1.50")).unwrap(), "-1.50");
        assert_eq!(literal(1, &Type::FLOAT8, false, Some(b"2.5")).unwrap(), "CAST(2.5 AS DOUBLE)");
        assert_eq!(literal(1, &Type::INT8, false, None).unwrap(), "NULL");
        let e = literal(2, &Type::INT4, false, Some(b"abc")).unwrap_err();
        let info: ErrorInfo = e.into();
        assert_eq!(info.code, "22P02");
        assert_eq!(info.message, "invalid input syntax for type integer: \"abc\" (parameter $2)");
        assert!(literal(1, &Type::NUMERIC, false, Some(b"1; DROP")).is_err());
    }

    #[test]
    fn binary_values_decode() {
        assert_eq!(literal(1, &Type::INT4, true, Some(&7i32.to_be_bytes())).unwrap(), "7");
        assert_eq!(literal(1, &Type::INT8, true, Some(&(-3i64).to_be_bytes())).unwrap(), "-3");
        assert!(literal(1, &Type::INT4, true, Some(&7i64.to_be_bytes())).is_err());
        assert_eq!(literal(1, &Type::TEXT, true, Some(b"a'b")).unwrap(), "'a''b'");
        // 2000-01-02 00:00:00.001
        let us = (86_400_000i64 + 1) * 1000;
        assert_eq!(literal(1, &Type::TIMESTAMP, true, Some(&us.to_be_bytes())).unwrap(), "'2000-01-02T00:00:00.001'");
        // 12345.678 (the encoding pgtypes writes)
        let n = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c];
        assert_eq!(literal(1, &Type::NUMERIC, true, Some(&n)).unwrap(), "12345.678");
        let n = [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4];
        assert_eq!(literal(1, &Type::NUMERIC, true, Some(&n)).unwrap(), "-0.05");
    }
}
