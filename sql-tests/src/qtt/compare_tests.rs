//! Tests of the comparison rules.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use engine::format::FormatSpec;
use planner::catalog::WindowType;

use super::*;
use crate::qtt::inputs::windowed_key;
use crate::qtt::json::parse;

fn j(s: &str) -> Json {
    parse(s).unwrap()
}

fn fields(f: &[(&str, DataType)]) -> Fields {
    f.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect()
}

fn serde(key: FormatSpec, kf: Fields, value: FormatSpec, vf: Fields, window: Option<WindowType>) -> Serde {
    Serde { key_format: key, value_format: value, key_fields: kf, value_fields: vf, window, topic: "t".into(), registry: None }
}

fn rec(key: Option<&str>, value: &str) -> Record {
    Record { topic: "T".into(), key: key.map(j), value: j(value), timestamp: None, window: None, headers: None }
}

fn actual(key: Option<&[u8]>, value: Option<&[u8]>, ts: i64) -> Actual {
    Actual { partition: 0, timestamp: ts, key: key.map(<[u8]>::to_vec), value: value.map(<[u8]>::to_vec), headers: vec![] }
}

#[test]
fn decimals_compare_value_and_scale() {
    let d = DataType::Decimal128(4, 2);
    assert!(values_match(&j("1.10"), &j("1.10"), Some(&d)));
    assert!(!values_match(&j("1.10"), &j("1.1"), Some(&d)));
    assert!(values_match(&j("\"1.10\""), &j("1.10"), Some(&d)));
    assert!(!values_match(&j("\"1.10\""), &j("1.1"), Some(&d)));
    assert!(values_match(&j("-0.00"), &j("0.00"), Some(&d)));
    assert!(values_match(&j("1E+1"), &j("1E+1"), Some(&d)));
    assert!(!values_match(&j("1E+1"), &j("10"), Some(&d)));
    assert!(decimal_eq("0010.50", "10.50"));
}

#[test]
fn doubles_are_close_enough() {
    let d = DataType::Float64;
    assert!(values_match(&j("1.1"), &j("1.10000000001"), Some(&d)));
    assert!(values_match(&j("1.10"), &j("1.1"), Some(&d)));
    assert!(values_match(&j("100"), &j("100.0"), Some(&d)));
    assert!(!values_match(&j("1.1"), &j("1.1001"), Some(&d)));
    assert!(values_match(&j("1.0E300"), &j("1.0000000000000001E300"), Some(&d)));
}

#[test]
fn integers_are_exact() {
    assert!(values_match(&j("12345678901234567"), &j("12345678901234567"), Some(&DataType::Int64)));
    assert!(!values_match(&j("12345678901234567"), &j("12345678901234568"), Some(&DataType::Int64)));
    assert!(!values_match(&j("1"), &j("1.0"), Some(&DataType::Int32)));
    assert!(!values_match(&j("1"), &j("\"1\""), Some(&DataType::Int32)));
}

#[test]
fn objects_need_the_same_members_with_upper_case_fallback() {
    let t = DataType::Struct(fields(&[("NAME", DataType::Utf8), ("V", DataType::Float64)]));
    assert!(values_match(&j(r#"{"name": "a", "v": 1.0}"#), &j(r#"{"NAME": "a", "V": 1.0000001}"#), Some(&t)));
    assert!(!values_match(&j(r#"{"name": "a"}"#), &j(r#"{"NAME": "a", "V": 1}"#), Some(&t)));
    // Quoted lower-case names match exactly first.
    assert!(values_match(&j(r#"{"id!": 10}"#), &j(r#"{"id!": 10}"#), None));
    assert!(!values_match(&j(r#"{"Name": "a"}"#), &j(r#"{"name": "a"}"#), None));
    // A member that is not there reads as null (as Java's Map.get has it).
    assert!(values_match(&j(r#"{"A": null, "B": 1}"#), &j(r#"{"C": null, "B": 1}"#), None));
    assert!(!values_match(&j(r#"{"A": 2, "B": 1}"#), &j(r#"{"C": null, "B": 1}"#), None));
}

#[test]
fn nested_types_guide_number_rules() {
    let map = DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(fields(&[("key", DataType::Utf8), ("value", DataType::Decimal128(3, 1))])), false)),
        false,
    );
    assert!(values_match(&j(r#"{"a": 1.0}"#), &j(r#"{"a": 1.0}"#), Some(&map)));
    assert!(!values_match(&j(r#"{"a": 1.0}"#), &j(r#"{"a": 1.00}"#), Some(&map)));
    let list = DataType::List(Arc::new(Field::new("item", DataType::Float64, true)));
    assert!(values_match(&j("[1.0, null]"), &j("[1.0000001, null]"), Some(&list)));
    assert!(!values_match(&j("[1.0]"), &j("[1.0, 2.0]"), Some(&list)));
}

#[test]
fn null_only_matches_null() {
    assert!(values_match(&Json::Null, &Json::Null, None));
    assert!(!values_match(&Json::Null, &j("0"), None));
    assert!(!values_match(&j("0"), &Json::Null, None));
    assert!(!values_match(&j("\"\""), &Json::Null, None));
}

#[test]
fn tombstones_are_null_values() {
    let s = serde(FormatSpec::kafka(), fields(&[("K", DataType::Utf8)]), FormatSpec::json(), fields(&[("V", DataType::Int32)]), None);
    let a = decode(&actual(Some(b"k"), None, 5), &s, None);
    assert!(compare_record(&rec(Some("\"k\""), "null"), &a, &s, true).is_ok());
    assert!(compare_record(&rec(Some("\"k\""), r#"{"V": null}"#), &a, &s, true).is_err());
    let b = decode(&actual(Some(b"k"), Some(br#"{"V":null}"#), 5), &s, None);
    assert!(compare_record(&rec(Some("\"k\""), "null"), &b, &s, true).is_err());
}

#[test]
fn kafka_keys_and_delimited_values() {
    let s = serde(
        FormatSpec::kafka(),
        fields(&[("K", DataType::Int32)]),
        FormatSpec::delimited(b','),
        fields(&[("A", DataType::Utf8), ("B", DataType::Int32)]),
        None,
    );
    let a = decode(&actual(Some(&8i32.to_be_bytes()), Some(b"one,100"), 0), &s, None);
    assert_eq!(a.key, j("8"));
    assert!(compare_record(&rec(Some("8"), "\"one,100\""), &a, &s, true).is_ok());
    assert!(compare_record(&rec(Some("9"), "\"one,100\""), &a, &s, true).is_err());
    // A single DELIMITED column given as a number.
    let one = serde(FormatSpec::kafka(), Fields::empty(), FormatSpec::delimited(b','), fields(&[("C", DataType::Float64)]), None);
    let b = decode(&actual(None, Some(b"1.5"), 0), &one, None);
    assert!(compare_record(&rec(None, "1.50"), &b, &one, true).is_ok());
}

#[test]
fn windowed_keys_are_split() {
    let kf = fields(&[("K", DataType::Utf8)]);
    let time = serde(FormatSpec::kafka(), kf.clone(), FormatSpec::json(), Fields::empty(), Some(WindowType::Time { size_ms: 1000 }));
    let key = windowed_key(Some(b"k".to_vec()), 2000, 0, WindowKind::Time);
    let a = decode(&actual(Some(&key), Some(b"{}"), 0), &time, None);
    assert_eq!(a.key, j("\"k\""));
    assert_eq!(a.window, Some(Window { start: 2000, end: 3000, kind: WindowKind::Time }));
    let mut e = rec(Some("\"k\""), "{}");
    e.window = Some(Window { start: 2000, end: 3000, kind: WindowKind::Time });
    assert!(compare_record(&e, &a, &time, true).is_ok());
    e.window = Some(Window { start: 1000, end: 2000, kind: WindowKind::Time });
    assert!(compare_record(&e, &a, &time, true).unwrap_err().starts_with("window"));

    let session = serde(FormatSpec::kafka(), kf.clone(), FormatSpec::json(), Fields::empty(), Some(WindowType::Session));
    let key = windowed_key(Some(b"k".to_vec()), 10, 40, WindowKind::Session);
    let a = decode(&actual(Some(&key), Some(b"{}"), 0), &session, None);
    assert_eq!(a.window, Some(Window { start: 10, end: 40, kind: WindowKind::Session }));

    // The catalog does not know the window: the expected record's kind decides, the end is unchecked.
    let plain = serde(FormatSpec::kafka(), kf, FormatSpec::json(), Fields::empty(), None);
    let key = windowed_key(Some(b"k".to_vec()), 2000, 0, WindowKind::Time);
    let a = decode(&actual(Some(&key), Some(b"{}"), 0), &plain, Some(WindowKind::Time));
    e.window = Some(Window { start: 2000, end: 3000, kind: WindowKind::Time });
    assert!(compare_record(&e, &a, &plain, true).is_ok());
    let unwindowed = decode(&actual(Some(b"k"), Some(b"{}"), 0), &plain, None);
    assert!(compare_record(&e, &unwindowed, &plain, true).is_err());
}

#[test]
fn timestamps_only_when_given() {
    let s = serde(FormatSpec::kafka(), Fields::empty(), FormatSpec::json(), Fields::empty(), None);
    let a = decode(&actual(None, Some(b"{}"), 42), &s, None);
    let mut e = rec(None, "{}");
    assert!(compare_record(&e, &a, &s, true).is_ok());
    e.timestamp = Some(41);
    assert!(compare_record(&e, &a, &s, true).is_err());
    e.timestamp = Some(0);
    assert!(compare_record(&e, &a, &s, true).is_err());
    assert!(compare_record(&e, &a, &s, false).is_ok());
}

#[test]
fn topic_comparison_counts_and_orders() {
    let s = serde(FormatSpec::kafka(), fields(&[("K", DataType::Utf8)]), FormatSpec::json(), fields(&[("V", DataType::Int32)]), None);
    let e1 = rec(Some("\"a\""), r#"{"V": 1}"#);
    let e2 = rec(Some("\"b\""), r#"{"V": 2}"#);
    let a1 = actual(Some(b"a"), Some(br#"{"V":1}"#), 0);
    let a2 = actual(Some(b"b"), Some(br#"{"V":2}"#), 0);
    assert!(compare_topic("T", &[&e1, &e2], &[a1.clone(), a2.clone()], 1, &s, true).is_ok());
    let swapped = compare_topic("T", &[&e1, &e2], &[a2.clone(), a1.clone()], 1, &s, true).unwrap_err();
    assert!(swapped.starts_with("T: record 1 of 2: key"), "{swapped}");
    let short = compare_topic("T", &[&e1, &e2], std::slice::from_ref(&a1), 1, &s, true).unwrap_err();
    assert!(short.starts_with("T: expected 2 records, got 1"), "{short}");
    // With partitions, only the order within a partition counts.
    let p = |mut a: Actual| {
        a.partition = partition_for_key(a.key.as_deref().unwrap(), 4);
        a
    };
    let (pa, pb) = (p(a1), p(a2));
    if pa.partition != pb.partition {
        assert!(compare_topic("T", &[&e1, &e2], &[pb, pa], 4, &s, true).is_ok());
    }
}

#[test]
fn a_single_struct_column_written_bare_keeps_its_types() {
    let inner = DataType::Struct(fields(&[("D", DataType::Decimal128(3, 2))]));
    let f = fields(&[("KSQL_COL_0", inner.clone())]);
    assert_eq!(hint(&j(r#"{"D": 1.00}"#), &f), Some(inner));
    assert_eq!(hint(&j(r#"{"ksql_col_0": {"D": 1.00}}"#), &f), Some(DataType::Struct(f.clone())));
    assert_eq!(hint(&j("1"), &fields(&[("K", DataType::Int32)])), Some(DataType::Int32));
}
