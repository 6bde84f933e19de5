//! PostgreSQL housekeeping statements that drivers and tools send on their own: transaction
//! brackets, session settings and version probes (psycopg's `BEGIN`, JDBC's
//! `SET extra_float_digits = 3`, a pool's `SELECT 1`). Eddy has no transactions (each statement
//! commits on its own) and no PostgreSQL settings, so they are answered here without the engine:
//! as no-ops with PostgreSQL's command tag, or with the fixed value a read-committed PostgreSQL
//! session would give. Anything else is a ksqlDB statement (ksqlDB's `SET 'name' = 'value'`
//! quotes its name, which tells the two SETs apart).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use planner::RowSet;

/// What a housekeeping statement gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compat {
    /// No rows; PostgreSQL's command tag.
    Command(&'static str),
    /// One row of one text column: its name and value.
    Value(&'static str, String),
}

impl Compat {
    /// The answer as a result set (for [`Compat::Value`]).
    pub fn rows(&self) -> Option<RowSet> {
        let Compat::Value(name, value) = self else { return None };
        let schema = Arc::new(Schema::new(vec![Field::new(*name, DataType::Utf8, true)]));
        let column: ArrayRef = Arc::new(StringArray::from(vec![value.as_str()]));
        let batch = RecordBatch::try_new(schema.clone(), vec![column]).ok()?;
        Some(RowSet { schema, batches: vec![batch] })
    }
}

/// The version `version()` and `SHOW server_version` report: the protocol's, then Eddy's.
fn version() -> String {
    format!("PostgreSQL 14.0 (Eddy {})", env!("CARGO_PKG_VERSION"))
}

/// The housekeeping statement `text` is (one statement, without its `;`), if it is one.
pub fn recognize(text: &str) -> Option<Compat> {
    let words: Vec<String> = text.trim().trim_end_matches(';').split_whitespace().map(|w| w.to_ascii_uppercase()).collect();
    let first = words.first()?.as_str();
    let rest: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    Some(match (first, rest.as_slice()) {
        ("BEGIN", [] | ["TRANSACTION" | "WORK", ..] | ["ISOLATION", ..] | ["READ", ..]) => Compat::Command("BEGIN"),
        ("START", ["TRANSACTION", ..]) => Compat::Command("BEGIN"),
        ("COMMIT" | "END", [] | ["TRANSACTION" | "WORK"]) => Compat::Command("COMMIT"),
        ("ROLLBACK" | "ABORT", [] | ["TRANSACTION" | "WORK"]) => Compat::Command("ROLLBACK"),
        ("DISCARD", [_]) => Compat::Command("DISCARD ALL"),
        ("RESET", ["ALL"]) => Compat::Command("RESET"),
        ("DEALLOCATE", [..]) => Compat::Command("DEALLOCATE"),
        // PostgreSQL's SET names its setting bare; ksqlDB's quotes it.
        ("SET", [name, ..]) if !name.starts_with('\'') => Compat::Command("SET"),
        ("SHOW", [..]) => return show(&rest.join(" ")),
        ("SELECT", [..]) => return select(&rest.join("")),
        _ => return None,
    })
}

/// PostgreSQL settings `SHOW` answers: the names it accepts (lower case), the column it names,
/// and the value.
const SETTINGS: &[(&[&str], &str, &str)] = &[
    (&["transaction isolation level", "transaction_isolation"], "transaction_isolation", "read committed"),
    (&["default_transaction_isolation"], "default_transaction_isolation", "read committed"),
    (&["server_version"], "server_version", "14.0"),
    (&["server_encoding"], "server_encoding", "UTF8"),
    (&["client_encoding"], "client_encoding", "UTF8"),
    (&["standard_conforming_strings"], "standard_conforming_strings", "on"),
    (&["integer_datetimes"], "integer_datetimes", "on"),
    (&["datestyle"], "DateStyle", "ISO, MDY"),
    (&["timezone"], "TimeZone", "UTC"),
    (&["search_path"], "search_path", "public"),
    (&["max_identifier_length"], "max_identifier_length", "63"),
];

/// The settings `SHOW` and `pg_settings` report: (name, value).
pub fn settings() -> impl Iterator<Item = (&'static str, &'static str)> {
    SETTINGS.iter().map(|(_, column, value)| (*column, *value))
}

/// `SHOW name` of a PostgreSQL setting.
fn show(name: &str) -> Option<Compat> {
    let name = name.to_ascii_lowercase();
    let (_, column, value) = SETTINGS.iter().find(|(names, _, _)| names.contains(&name.as_str()))?;
    Some(Compat::Value(column, value.to_string()))
}

/// A probe without FROM: `SELECT 1`, `SELECT version()`, ... (`rest` is what follows SELECT,
/// upper-cased, without spaces).
fn select(rest: &str) -> Option<Compat> {
    Some(match rest {
        "1" => Compat::Value("?column?", "1".into()),
        "VERSION()" | "PG_CATALOG.VERSION()" => Compat::Value("version", version()),
        "CURRENT_SCHEMA()" | "CURRENT_SCHEMA" => Compat::Value("current_schema", "public".into()),
        "CURRENT_DATABASE()" => Compat::Value("current_database", "eddy".into()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{recognize, Compat};

    #[test]
    fn housekeeping_statements_are_recognized_and_ksqldb_statements_are_not() {
        assert_eq!(recognize("BEGIN"), Some(Compat::Command("BEGIN")));
        assert_eq!(recognize("begin transaction isolation level read committed;"), Some(Compat::Command("BEGIN")));
        assert_eq!(recognize("START TRANSACTION READ ONLY"), Some(Compat::Command("BEGIN")));
        assert_eq!(recognize(" commit "), Some(Compat::Command("COMMIT")));
        assert_eq!(recognize("ROLLBACK"), Some(Compat::Command("ROLLBACK")));
        assert_eq!(recognize("SET extra_float_digits = 3"), Some(Compat::Command("SET")));
        assert_eq!(recognize("SET application_name TO 'x'"), Some(Compat::Command("SET")));
        assert_eq!(recognize("SHOW TRANSACTION ISOLATION LEVEL"), Some(Compat::Value("transaction_isolation", "read committed".into())));
        assert_eq!(recognize("select 1"), Some(Compat::Value("?column?", "1".into())));
        assert!(matches!(recognize("SELECT version()"), Some(Compat::Value("version", v)) if v.starts_with("PostgreSQL 14.0 (Eddy ")));
        // ksqlDB's own statements go to the engine.
        assert_eq!(recognize("SET 'auto.offset.reset' = 'earliest'"), None);
        assert_eq!(recognize("SHOW STREAMS"), None);
        assert_eq!(recognize("SELECT * FROM t WHERE id = 1"), None);
        assert_eq!(recognize("SELECT 1 FROM t"), None);
        assert_eq!(recognize("COMMIT something else"), None);
        assert_eq!(recognize(""), None);
    }
}
