//! What `SHOW FUNCTIONS` and `DESCRIBE FUNCTION` say about each function: its kind (scalar,
//! aggregate, table), ksqlDB's category, a description and its signatures. The text lives in
//! `docs.txt` beside this file, one function per line:
//! `NAME|KIND|CATEGORY|description|signature; signature; ...`.

use std::collections::HashMap;
use std::sync::OnceLock;

/// One function's documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDoc {
    /// Upper-case name.
    pub name: String,
    /// SCALAR, AGGREGATE or TABLE.
    pub kind: String,
    /// ksqlDB's category (STRING, MATHEMATICAL, DATE / TIME, ...).
    pub category: String,
    /// What it computes.
    pub description: String,
    /// Its signatures, e.g. `LPAD(input STRING, length INT, padding STRING) -> STRING`.
    pub signatures: Vec<String>,
}

const TEXT: &str = include_str!("docs.txt");

fn all() -> &'static HashMap<String, FunctionDoc> {
    static DOCS: OnceLock<HashMap<String, FunctionDoc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        TEXT.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let mut parts = l.splitn(5, '|');
                let name = parts.next()?.trim().to_uppercase();
                let kind = parts.next()?.trim().to_string();
                let category = parts.next()?.trim().to_string();
                let description = parts.next()?.trim().to_string();
                let signatures = parts.next().unwrap_or("").split(';').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                Some((name.clone(), FunctionDoc { name, kind, category, description, signatures }))
            })
            .collect()
    })
}

/// The documentation of `name`, if it has any.
pub fn doc(name: &str) -> Option<&'static FunctionDoc> {
    all().get(&name.to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_parses_and_names_are_unique() {
        let lines = TEXT.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
        assert_eq!(all().len(), lines, "a line does not parse or a name repeats");
        for d in all().values() {
            assert!(["SCALAR", "AGGREGATE", "TABLE"].contains(&d.kind.as_str()), "{}: kind {}", d.name, d.kind);
            assert!(!d.description.is_empty() && !d.signatures.is_empty(), "{}", d.name);
        }
        assert_eq!(doc("latest_by_offset").map(|d| d.kind.as_str()), Some("AGGREGATE"));
    }

    #[test]
    fn every_function_has_its_documentation() {
        let scalars = crate::binder::functions::FunctionRegistry::new().own_names();
        let aggregates = engine::ops::aggregate::function::names().iter().map(|n| n.to_string());
        let missing: Vec<String> = scalars.into_iter().chain(aggregates).filter(|n| doc(n).is_none()).collect();
        assert!(missing.is_empty(), "no documentation in docs.txt for {missing:?}");
    }
}
