use super::*;
use crate::types::SqlType;

fn one(sql: &str) -> Statement {
    let mut v = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(v.len(), 1);
    v.remove(0).statement
}

#[test]
fn create_stream_with_keys_and_props() {
    let s = one("CREATE STREAM pageviews (id INT KEY, `name` VARCHAR, tags ARRAY<STRING>) WITH (kafka_topic='pv', value_format='JSON', partitions=2);");
    let Statement::CreateSource(c) = s else { panic!("{s:?}") };
    assert_eq!(c.name, "PAGEVIEWS");
    assert_eq!(c.columns[0].name, "ID");
    assert_eq!(c.columns[0].kind, ColumnKind::Key);
    assert_eq!(c.columns[1].name, "name");
    assert_eq!(c.columns[2].data_type, SqlType::Array(Box::new(SqlType::String)));
    assert_eq!(c.props[0], ("KAFKA_TOPIC".to_string(), PropValue::String("pv".into())));
    assert_eq!(c.props[2], ("PARTITIONS".to_string(), PropValue::Number("2".into())));
}

#[test]
fn key_kinds_must_match_source_type() {
    assert!(parse("CREATE STREAM s (id INT PRIMARY KEY) WITH (kafka_topic='t');").is_err());
    assert!(parse("CREATE TABLE t (id INT KEY) WITH (kafka_topic='t');").is_err());
}

#[test]
fn csas_with_window_group_emit_limit() {
    let s = one("CREATE TABLE c WITH (kafka_topic='c') AS SELECT k, COUNT(*) AS n FROM s WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS) WHERE x > 1 GROUP BY k HAVING COUNT(*) > 2 EMIT FINAL;");
    let Statement::CreateAsSelect(c) = s else { panic!() };
    let q = c.query;
    assert_eq!(q.from.name, "S");
    assert!(q.from.alias.is_none());
    assert_eq!(
        q.window,
        Some(WindowSpec {
            kind: WindowKind::Tumbling { size: std::time::Duration::from_secs(60) },
            retention: None,
            grace: Some(std::time::Duration::from_secs(10))
        })
    );
    assert_eq!(q.group_by.len(), 1);
    assert!(q.having.is_some());
    assert_eq!(q.emit, Some(Emit::Final));
}

#[test]
fn joins_with_within_and_aliases() {
    let s = one("SELECT * FROM a x LEFT OUTER JOIN b AS y WITHIN (1 SECOND, 2 SECONDS) GRACE PERIOD 3 SECONDS ON x.id = y.id JOIN c ON c.k = x.id EMIT CHANGES LIMIT 5;");
    let Statement::Query(q) = s else { panic!() };
    assert_eq!(q.from.alias.as_deref(), Some("X"));
    assert_eq!(q.joins.len(), 2);
    assert_eq!(q.joins[0].kind, JoinKind::Left);
    assert_eq!(q.joins[0].source.alias.as_deref(), Some("Y"));
    let w = q.joins[0].within.clone().unwrap();
    assert_eq!(w.after, std::time::Duration::from_secs(2));
    assert_eq!(w.grace, Some(std::time::Duration::from_secs(3)));
    assert_eq!(q.limit, Some(5));
}

#[test]
fn ksql_expressions_parse() {
    let s = one("SELECT s->a->b, arr[1], m['k'], TRANSFORM(arr, x => x + 1), REDUCE(arr, 0, (acc, x) => acc + x), CAST(x AS ARRAY<STRUCT<A INT>>), STRUCT(A := 1), MAP('a' := 1) FROM t;");
    let Statement::Query(q) = s else { panic!() };
    assert_eq!(q.select.len(), 8);
    let text = q.select[0].to_string();
    assert!(text.contains("->"), "{text}");
}

#[test]
fn splitting_respects_strings_and_comments() {
    let v = split_statements("SELECT 'a;b' FROM s; -- c;\nSHOW STREAMS;").unwrap();
    assert_eq!(v, vec!["SELECT 'a;b' FROM s".to_string(), "SHOW STREAMS".to_string()]);
    assert!(is_complete("SHOW STREAMS;"));
    assert!(!is_complete("SELECT 'a;"));
    assert!(!is_complete("SHOW STREAMS"));
}

#[test]
fn other_statements() {
    assert!(matches!(one("DROP TABLE IF EXISTS t DELETE TOPIC;"), Statement::Drop { if_exists: true, delete_topic: true, .. }));
    assert!(matches!(one("SHOW QUERIES;"), Statement::Show { what: ShowWhat::Queries, .. }));
    assert!(matches!(one("LIST TOPICS;"), Statement::Show { what: ShowWhat::Topics, .. }));
    assert!(matches!(one("DESCRIBE EXTENDED s;"), Statement::Describe { extended: true, .. }));
    assert!(matches!(one("PRINT 'topic' FROM BEGINNING LIMIT 3;"), Statement::Print { from_beginning: true, limit: Some(3), .. }));
    assert!(matches!(one("SET 'auto.offset.reset' = 'earliest';"), Statement::Set { .. }));
    assert!(matches!(one("TERMINATE CSAS_X_1;"), Statement::Terminate(Some(_))));
    assert!(matches!(one("EXPLAIN SELECT * FROM s EMIT CHANGES;"), Statement::Explain(_)));
    assert!(matches!(one("INSERT INTO s (a, b) VALUES (1, 'x');"), Statement::InsertValues(_)));
    assert!(matches!(one("INSERT INTO s SELECT * FROM t;"), Statement::InsertSelect { .. }));
    let e = parse("CREAT STREAM s;").unwrap_err().to_string();
    assert!(e.contains("expected a statement"), "{e}");
}
