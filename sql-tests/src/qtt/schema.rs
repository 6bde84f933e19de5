//! Checking `post.sources` (name, type, schema, key and value formats) against Eddy's catalog,
//! and schema strings in general: both sides are normalised before comparing (backticks, case of
//! unquoted names, `INT` = `INTEGER`, `VARCHAR` = `STRING`, `PRIMARY KEY` = `KEY`, spacing).

use datafusion::arrow::datatypes::SchemaRef;
use planner::ast::{ColumnKind, SourceType};
use planner::catalog::{Catalog, SourceDef, WindowType};
use planner::types::type_name;

use super::expand::{sql_tokens, Token};
use super::json::Json;

/// A schema string in a canonical form, for comparison.
pub fn normalize_schema(s: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for t in sql_tokens(s) {
        let text = match t {
            Token::Word(w) => match w.as_str() {
                "INT" => "INTEGER".to_string(),
                "VARCHAR" => "STRING".to_string(),
                _ => w,
            },
            Token::Quoted(q) => q,
            Token::Str(s) => format!("'{s}'"),
            Token::Num(n) => n,
            Token::Sym(c) => c.to_string(),
        };
        if text == "KEY" && out.last().is_some_and(|l| l == "PRIMARY") {
            out.pop();
        }
        out.push(text);
    }
    out.join(" ")
}

/// A normalised schema string without `KEY`, `HEADERS` and `HEADER('k')` markers (for results,
/// which do not say which columns are keys or headers).
pub fn without_key_markers(normalized: &str) -> String {
    let t: Vec<&str> = normalized.split(' ').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        match t[i] {
            "KEY" | "HEADERS" => i += 1,
            "HEADER" if t.get(i + 1) == Some(&"(") => i += 4,
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out.join(" ")
}

/// A source's columns as ksqlDB writes a schema: `` `ID` INTEGER KEY, `V` STRING ``.
pub fn source_schema(def: &SourceDef) -> String {
    let cols: Vec<String> = def
        .columns
        .iter()
        .map(|c| {
            let suffix = match &c.kind {
                ColumnKind::Value => String::new(),
                ColumnKind::Key => " KEY".into(),
                ColumnKind::Headers => " HEADERS".into(),
                ColumnKind::Header(k) => format!(" HEADER('{k}')"),
            };
            format!("`{}` {}{suffix}", c.name, type_name(&c.data_type))
        })
        .collect();
    cols.join(", ")
}

/// A result's columns as a schema string (no key markers: results do not carry them).
pub fn result_schema(schema: &SchemaRef) -> String {
    let cols: Vec<String> = schema.fields().iter().map(|f| format!("`{}` {}", f.name(), type_name(f.data_type()))).collect();
    cols.join(", ")
}

/// Checks every expected source of `post.sources` against the catalog.
///
/// # Errors
/// The first difference, described.
pub fn check_post_sources(expected: &[Json], catalog: &Catalog) -> Result<(), String> {
    for e in expected {
        let name = e.get("name").map(Json::to_text).unwrap_or_default();
        let def = catalog
            .sources
            .get(&name)
            .or_else(|| catalog.sources.get(&name.to_uppercase()))
            .ok_or_else(|| format!("post: source {name} does not exist"))?;
        if let Some(t) = e.get("type").map(Json::to_text) {
            let actual = match def.source_type {
                SourceType::Stream => "stream",
                SourceType::Table => "table",
            };
            if !t.eq_ignore_ascii_case(actual) {
                return Err(format!("post: {name} should be a {}, is a {actual}", t.to_lowercase()));
            }
        }
        if let Some(s) = e.get("schema").map(Json::to_text) {
            let (want, got) = (normalize_schema(&s), normalize_schema(&source_schema(def)));
            if want != got {
                return Err(format!("post: schema of {name}: expected {want}, got {got}"));
            }
        }
        if let Some(kf) = e.get("keyFormat") {
            check_key_format(&name, kf, def)?;
        }
        if let Some(vf) = e.get("valueFormat") {
            let want = vf.get("format").unwrap_or(vf).to_text().to_uppercase();
            if want != def.value_format.kind.name() {
                return Err(format!("post: value format of {name}: expected {want}, got {}", def.value_format.kind.name()));
            }
        }
    }
    Ok(())
}

fn check_key_format(name: &str, kf: &Json, def: &SourceDef) -> Result<(), String> {
    if let Some(f) = kf.get("format").map(|f| f.to_text().to_uppercase()) {
        if f != def.key_format.kind.name() {
            return Err(format!("post: key format of {name}: expected {f}, got {}", def.key_format.kind.name()));
        }
    }
    let want_type = kf.get("windowType").filter(|w| !w.is_null()).map(|w| w.to_text().to_uppercase());
    let actual = match def.window {
        None => "none".to_string(),
        Some(WindowType::Session) => "SESSION".into(),
        Some(WindowType::Time { size_ms }) => format!("TUMBLING/HOPPING of {size_ms} ms"),
    };
    match (want_type.as_deref(), def.window) {
        (None, None) | (Some("SESSION"), Some(WindowType::Session)) => Ok(()),
        (Some("TUMBLING" | "HOPPING"), Some(WindowType::Time { size_ms })) => match kf.get("windowSize").and_then(Json::as_i64) {
            Some(size) if size != size_ms as i64 => Err(format!("post: window size of {name}: expected {size} ms, got {size_ms} ms")),
            _ => Ok(()),
        },
        (None, Some(_)) => Ok(()),
        (Some(w), _) => Err(format!("post: window of {name}: expected {w}, got {actual}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_schema_strings() {
        let a = normalize_schema("a INT, `b` VARCHAR, ID INT PRIMARY KEY, S STRUCT<f DECIMAL(4,1)>");
        let b = normalize_schema("`A` INTEGER,  `b` STRING, `ID` INTEGER KEY, `S` STRUCT<`F` DECIMAL(4, 1)>");
        assert_eq!(a, b);
        assert_ne!(normalize_schema("`c1` INT"), normalize_schema("c1 INT"));
        assert_eq!(without_key_markers(&normalize_schema("`ID` BIGINT KEY, V INT")), normalize_schema("ID BIGINT, V INT"));
        assert_eq!(
            without_key_markers(&normalize_schema("K INT, H BYTES HEADER('abc'), T STRING")),
            normalize_schema("K INT, H BYTES, T STRING")
        );
    }

    #[test]
    fn headers_columns_keep_their_markers() {
        assert_eq!(
            normalize_schema("H ARRAY<STRUCT<KEY STRING, VALUE BYTES>> HEADERS"),
            "H ARRAY < STRUCT < KEY STRING , VALUE BYTES > > HEADERS"
        );
        assert_eq!(normalize_schema("V BYTES HEADER('k')"), "V BYTES HEADER ( 'k' )");
    }
}
