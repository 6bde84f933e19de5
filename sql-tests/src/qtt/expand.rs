//! Expanding a QTT test into its cases (`format` x `config`, substituting `{FORMAT}` and
//! `{CONFIG}`), and deciding which cases are "plain" as INDEX.txt defines it: only the JSON,
//! DELIMITED, KAFKA and NONE formats, no schema registry, no test-only UDFs.
//!
//! Also a small SQL token scanner used to read `WITH (...)` properties out of statement text
//! without depending on Eddy's parser (which is what is under test).

use super::json::Json;
use super::model::{Case, Suite};

/// Formats Eddy is meant to run: everything else needs a schema registry.
pub const PLAIN_FORMATS: [&str; 4] = ["JSON", "DELIMITED", "KAFKA", "NONE"];

/// Functions that exist only in ksqlDB's test UDF jar.
pub const TEST_ONLY_FUNCTIONS: [&str; 12] = [
    "BAD_UDF",
    "FIVE_ARG",
    "FOUR_ARG",
    "GENERIC_VAR_ARG",
    "MID_VAR_ARG",
    "MULTI_ARG",
    "OBJ_COL_ARG",
    "TEST_UDAF",
    "TEST_UDF",
    "TEST_UDTF",
    "THROWING_UDTF",
    "VAR_ARG",
];

/// The cases of one test, in ksqlDB's order (formats outer, configs inner), or why the test
/// cannot be read (with the test's name).
pub fn expand(file: &str, suite: Suite, test: &Json) -> Vec<Result<Case, (String, String)>> {
    let base = test.get("name").map(Json::to_text).unwrap_or_else(|| "<unnamed>".into());
    let list = |k: &str| -> Vec<Option<String>> {
        match test.get(k).and_then(Json::as_array) {
            Some(a) if !a.is_empty() => a.iter().map(|v| Some(v.to_text())).collect(),
            _ => vec![None],
        }
    };
    let mut out = Vec::new();
    for format in list("format") {
        for config in list("config") {
            let mut name = base.clone();
            let mut t = test.clone();
            if let Some(f) = &format {
                name = format!("{name} - {f}");
                t = t.substitute("{FORMAT}", f);
            }
            if let Some(c) = &config {
                name = format!("{name} - {c}");
                t = t.substitute("{CONFIG}", c);
            }
            out.push(match Case::from_json(file, name.clone(), suite, &t) {
                Ok(mut case) => {
                    case.not_plain = not_plain_reason(&case, &t);
                    case.plain = case.not_plain.is_none();
                    case.sr = !case.plain && is_sr(&case, &t);
                    Ok(case)
                }
                Err(e) => Err((name, e)),
            });
        }
    }
    out
}

/// Formats that need a schema registry (or, for PROTOBUF_NOSR, derive a schema).
pub const SR_FORMATS: [&str; 4] = ["AVRO", "PROTOBUF", "PROTOBUF_NOSR", "JSON_SR"];

/// Whether a case that is not plain is a schema-registry case: it uses a schema-registry format
/// or declares schemas, and no test-only function, and every format it names is one Eddy knows.
fn is_sr(case: &Case, t: &Json) -> bool {
    let reason = not_plain_reason(case, t);
    match reason.as_deref() {
        Some("schema registry") => true,
        Some(r) if r.starts_with("format ") => {
            let f = &r["format ".len()..];
            SR_FORMATS.contains(&f) && !uses_test_functions(case)
        }
        _ => false,
    }
}

fn uses_test_functions(case: &Case) -> bool {
    case.statements.iter().any(|s| function_calls(s).iter().any(|f| TEST_ONLY_FUNCTIONS.contains(&f.as_str())))
}

/// Why a case is not plain, or `None` when it is.
fn not_plain_reason(case: &Case, t: &Json) -> Option<String> {
    let mut formats: Vec<String> = Vec::new();
    for s in &case.statements {
        for (k, v) in with_properties(s) {
            if matches!(k.as_str(), "FORMAT" | "VALUE_FORMAT" | "KEY_FORMAT") {
                formats.push(v.to_uppercase());
            }
        }
    }
    for (k, v) in &case.properties {
        if k.contains("format") {
            formats.push(v.to_uppercase());
        }
    }
    for tp in &case.topics {
        formats.extend(tp.key_format.iter().chain(tp.value_format.iter()).cloned());
    }
    if let Some(f) = formats.iter().find(|f| !PLAIN_FORMATS.contains(&f.as_str())) {
        return Some(format!("format {f}"));
    }
    let topics = t.get("topics").and_then(Json::as_array).unwrap_or(&[]);
    let sr_keys = ["valueSchema", "keySchema", "valueSchemaId", "keySchemaId", "schema"];
    if topics.iter().any(|tp| sr_keys.iter().any(|k| tp.get(k).is_some())) {
        return Some("schema registry".into());
    }
    for s in &case.statements {
        if let Some(f) = function_calls(s).into_iter().find(|f| TEST_ONLY_FUNCTIONS.contains(&f.as_str())) {
            return Some(format!("test-only function {f}"));
        }
    }
    None
}

/// A token of SQL text.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A bare word, upper-cased.
    Word(String),
    /// A quoted identifier (backticks or double quotes), as written.
    Quoted(String),
    /// A string literal's content.
    Str(String),
    /// A number's text.
    Num(String),
    /// Any other character.
    Sym(char),
}

/// Splits SQL text into tokens; comments are dropped.
pub fn sql_tokens(sql: &str) -> Vec<Token> {
    let c: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '-' && c.get(i + 1) == Some(&'-') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if ch == '\'' || ch == '`' || ch == '"' {
            // Quotes are escaped by doubling them.
            let mut s = String::new();
            i += 1;
            while i < c.len() {
                if c[i] == ch {
                    if c.get(i + 1) == Some(&ch) {
                        s.push(ch);
                        i += 2;
                        continue;
                    }
                    break;
                }
                s.push(c[i]);
                i += 1;
            }
            i += 1;
            out.push(if ch == '\'' { Token::Str(s) } else { Token::Quoted(s) });
        } else if ch.is_ascii_digit() {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
            out.push(Token::Num(c[start..i].iter().collect()));
        } else if ch.is_alphanumeric() || ch == '_' || ch == '@' || ch == '$' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '@' || c[i] == '$') {
                i += 1;
            }
            out.push(Token::Word(c[start..i].iter().collect::<String>().to_uppercase()));
        } else {
            out.push(Token::Sym(ch));
            i += 1;
        }
    }
    out
}

/// Every `NAME = 'text'` or `NAME = number` pair of a statement (names upper-cased), which
/// covers the properties of `WITH (...)` clauses.
pub fn with_properties(sql: &str) -> Vec<(String, String)> {
    let t = sql_tokens(sql);
    let mut out = Vec::new();
    for w in t.windows(3) {
        if let [Token::Word(k), Token::Sym('='), Token::Str(s) | Token::Num(s)] = w {
            out.push((k.clone(), s.clone()));
        }
    }
    out
}

/// Names (upper-cased) of the functions a statement calls: words followed by `(`.
pub fn function_calls(sql: &str) -> Vec<String> {
    let t = sql_tokens(sql);
    t.windows(2)
        .filter_map(|w| match w {
            [Token::Word(f), Token::Sym('(')] => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// For `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE ... WITH (...)` without `AS SELECT`: the
/// topic it reads (`KAFKA_TOPIC`) and its `PARTITIONS` if given.
pub fn declared_topic(sql: &str) -> Option<(String, Option<u32>)> {
    let t = sql_tokens(sql);
    if t.first() != Some(&Token::Word("CREATE".into())) || t.contains(&Token::Word("SELECT".into())) {
        return None;
    }
    let is_source = t.iter().take(6).any(|x| matches!(x, Token::Word(w) if w == "STREAM" || w == "TABLE"));
    if !is_source {
        return None;
    }
    let props = with_properties(sql);
    let topic = props.iter().find(|(k, _)| k == "KAFKA_TOPIC")?.1.clone();
    let partitions = props.iter().find(|(k, _)| k == "PARTITIONS").and_then(|(_, v)| v.parse().ok());
    Some((topic, partitions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qtt::json::parse;

    fn cases(src: &str) -> Vec<Case> {
        expand("f.json", Suite::Qtt, &parse(src).unwrap()).into_iter().map(|c| c.unwrap()).collect()
    }

    #[test]
    fn expands_format_times_config_in_order() {
        let c = cases(
            r#"{"name": "t", "format": ["AVRO", "JSON"], "config": ["true", "false"],
                "properties": {"p": "{CONFIG}"},
                "statements": ["CREATE STREAM S (A INT) WITH (kafka_topic='s', value_format='{FORMAT}');"]}"#,
        );
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["t - AVRO - true", "t - AVRO - false", "t - JSON - true", "t - JSON - false"]);
        assert_eq!(c[2].statements[0], "CREATE STREAM S (A INT) WITH (kafka_topic='s', value_format='JSON');");
        assert_eq!(c[3].properties, [("p".to_string(), "false".to_string())]);
        assert!(!c[0].plain && c[2].plain);
        assert_eq!(c[0].not_plain.as_deref(), Some("format AVRO"));
    }

    #[test]
    fn no_lists_mean_one_case_with_the_plain_name() {
        let c = cases(r#"{"name": "t", "statements": ["CREATE STREAM S (A INT) WITH (kafka_topic='s', format='KAFKA');"]}"#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].name, "t");
        assert!(c[0].plain);
    }

    #[test]
    fn format_label_alone_does_not_decide_plainness() {
        // replace.json lists PROTOBUF but its statements use JSON: INDEX.txt counts it as plain.
        let c = cases(
            r#"{"name": "t", "format": ["PROTOBUF"], "statements": ["CREATE STREAM S (A INT) WITH (kafka_topic='s', value_format='JSON');"]}"#,
        );
        assert!(c[0].plain);
    }

    #[test]
    fn schema_registry_defaults_and_test_udfs_are_not_plain() {
        let sr = cases(r#"{"name": "t", "statements": [], "topics": [{"name": "x", "valueSchema": {}}]}"#);
        assert_eq!(sr[0].not_plain.as_deref(), Some("schema registry"));
        let dflt = cases(r#"{"name": "t", "statements": [], "properties": {"ksql.persistence.default.format.value": "AVRO"}}"#);
        assert!(!dflt[0].plain);
        let udf = cases(r#"{"name": "t", "statements": ["CREATE STREAM O AS SELECT test_udf(a, 'TIMESTAMP_FORMAT(') FROM S;"]}"#);
        assert_eq!(udf[0].not_plain.as_deref(), Some("test-only function TEST_UDF"));
        let str_only = cases(r#"{"name": "t", "statements": ["CREATE STREAM O AS SELECT 'test_udf(' FROM S;"]}"#);
        assert!(str_only[0].plain);
    }

    #[test]
    fn timestamp_format_is_not_a_format() {
        let c = cases(
            r#"{"name": "t", "statements": ["CREATE STREAM S (A STRING) WITH (kafka_topic='s', value_format='JSON', timestamp='a', timestamp_format='yyyy');"]}"#,
        );
        assert!(c[0].plain);
    }

    #[test]
    fn finds_declared_topics() {
        assert_eq!(
            declared_topic("CREATE TABLE T (ID INT PRIMARY KEY) WITH (KAFKA_TOPIC='t1', PARTITIONS=4, format='JSON');"),
            Some(("t1".into(), Some(4)))
        );
        assert_eq!(declared_topic("create source stream s (a int) with (kafka_topic = 'x');"), Some(("x".into(), None)));
        assert_eq!(declared_topic("CREATE STREAM S WITH (KAFKA_TOPIC='o') AS SELECT * FROM T;"), None);
        assert_eq!(declared_topic("INSERT INTO S VALUES (1);"), None);
    }

    #[test]
    fn disabled_and_error_cases_are_read() {
        let c = cases(
            r#"{"name": "t", "enabled": false, "statements": ["x"],
                "expectedException": {"type": "io.confluent.ksql.util.KsqlException", "message": "boom"}}"#,
        );
        assert!(!c[0].enabled);
        assert_eq!(c[0].expected_error.as_ref().and_then(|e| e.message.as_deref()), Some("boom"));
    }
}
