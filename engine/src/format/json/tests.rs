//! JSON format tests: types both ways, nulls, name matching, wrapping, keys, ksqlDB's
//! coercions, bad input.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Fields, Float64Type, Int32Type, Int64Type};

use crate::format::tests::{decode, decode_err, encode, fields, list, map, reencode, strukt, time, ts};
use crate::format::{FormatSpec, Role};

fn value(cols: &[(&str, DataType)], input: &str) -> String {
    reencode(FormatSpec::json(), Role::Value, &fields(cols), input).unwrap()
}

fn value_err(cols: &[(&str, DataType)], input: &str) -> String {
    decode_err(FormatSpec::json(), Role::Value, &fields(cols), input.as_bytes())
}

#[test]
fn flat_types_round_trip() {
    let cols = [
        ("B", DataType::Boolean),
        ("I", DataType::Int32),
        ("L", DataType::Int64),
        ("D", DataType::Float64),
        ("N", DataType::Decimal128(4, 2)),
        ("S", DataType::Utf8),
        ("Y", DataType::Binary),
        ("T", ts()),
        ("DT", DataType::Date32),
        ("TM", time()),
    ];
    let input = r#"{"B":true,"I":-7,"L":998877665544332211,"D":1234.589,"N":1.10,"S":"héllo \"x\"","Y":"dmFyaWF0aW9ucw==","T":1528224275715,"DT":-10,"TM":10}"#;
    assert_eq!(value(&cols, input), input);
    let nulls = r#"{"B":null,"I":null,"L":null,"D":null,"N":null,"S":null,"Y":null,"T":null,"DT":null,"TM":null}"#;
    assert_eq!(value(&cols, nulls), nulls);
    assert_eq!(value(&cols, "{}"), nulls);
}

#[test]
fn nested_types_round_trip() {
    let cols = [
        ("A", list(DataType::Float64)),
        ("M", map(DataType::Utf8, DataType::Int32)),
        ("S", strukt(&[("F0", DataType::Int32), ("F1", list(strukt(&[("X", DataType::Utf8)])))])),
        ("AM", list(map(DataType::Utf8, DataType::Decimal128(3, 1)))),
    ];
    let input = r#"{"A":[10.1,null,2.0],"M":{"b":2,"a":1,"c":null},"S":{"F0":1,"F1":[{"X":"y"},null]},"AM":[{"k":1.5},{}]}"#;
    assert_eq!(value(&cols, input), input);
    assert_eq!(
        value(&cols, r#"{"a":[],"m":{},"s":{"f1":null},"am":null}"#),
        r#"{"A":[],"M":{},"S":{"F0":null,"F1":null},"AM":null}"#
    );
}

#[test]
fn nulls_missing_fields_and_null_records() {
    let f = fields(&[("A", DataType::Int32), ("B", DataType::Utf8)]);
    let (cols, res) = decode(FormatSpec::json(), Role::Value, &f, &[None, Some(b" null "), Some(br#"{"B":"x"}"#)]);
    assert!(res.iter().all(Result::is_ok));
    assert_eq!(cols[0].null_count(), 3);
    assert_eq!(cols[1].null_count(), 2);
    let mut dec = crate::format::new_decoder(&FormatSpec::json(), Role::Value, &f).unwrap();
    dec.append(Some(b"null")).unwrap();
    assert!(dec.last_was_null());
    dec.append(Some(b"{}")).unwrap();
    assert!(!dec.last_was_null());
    dec.append(None).unwrap();
    assert!(dec.last_was_null());
    // An all-null row is still a value.
    let a: ArrayRef = Arc::new(Int32Array::from(vec![None::<i32>]));
    let b: ArrayRef = Arc::new(StringArray::from(vec![None::<&str>]));
    assert_eq!(encode(FormatSpec::json(), Role::Value, &f, &[a, b]), vec![Some(r#"{"A":null,"B":null}"#.into())]);
}

#[test]
fn names_match_exactly_first_then_upper_cased() {
    let cols = [("NAME", DataType::Utf8), ("@TIMESTAMP", DataType::Int64), ("FROM", DataType::Int64)];
    assert_eq!(
        value(&cols, r#"{"@timestamp": 4, "from": 5, "name": "a"}"#),
        r#"{"NAME":"a","@TIMESTAMP":4,"FROM":5}"#
    );
    // Exact beats upper-cased, whatever the order; among upper-cased, the last wins.
    assert_eq!(value(&cols, r#"{"NAME":"exact","name":"lower"}"#), r#"{"NAME":"exact","@TIMESTAMP":null,"FROM":null}"#);
    assert_eq!(value(&cols, r#"{"name":"lower","NAME":"exact"}"#), r#"{"NAME":"exact","@TIMESTAMP":null,"FROM":null}"#);
    assert_eq!(value(&cols, r#"{"name":"a","Name":"b"}"#), r#"{"NAME":"b","@TIMESTAMP":null,"FROM":null}"#);
    // Duplicates: the last wins.
    assert_eq!(value(&cols, r#"{"NAME":"a","NAME":"b"}"#), r#"{"NAME":"b","@TIMESTAMP":null,"FROM":null}"#);
    // A quoted lower-case column only matches exactly: ksqlDB upper-cases the key, not the name.
    let quoted = [("name", DataType::Utf8), ("Mixed", DataType::Int32)];
    assert_eq!(value(&quoted, r#"{"NAME":"x","mixed":1}"#), r#"{"name":null,"Mixed":null}"#);
    assert_eq!(value(&quoted, r#"{"name":"x","Mixed":1}"#), r#"{"name":"x","Mixed":1}"#);
    // Escaped and non-ASCII keys.
    assert_eq!(value(&cols, r#"{"N\u0041ME":"e"}"#), r#"{"NAME":"e","@TIMESTAMP":null,"FROM":null}"#);
    assert_eq!(value(&[("ÉTÉ", DataType::Int32)], r#"{"été":1}"#), r#"{"ÉTÉ":1}"#);
    // Struct fields too.
    assert_eq!(value(&[("S", strukt(&[("A", DataType::Float64)]))], r#"{"s":{"a":45.67}}"#), r#"{"S":{"A":45.67}}"#);
}

#[test]
fn unwrapped_single_values() {
    let spec = FormatSpec::json().with_wrap_single_value(false);
    for (ty, input) in [
        (DataType::Boolean, "true"),
        (DataType::Int32, "10"),
        (DataType::Int64, "10827272222"),
        (DataType::Float64, "1234.589"),
        (DataType::Decimal128(4, 2), "10.10"),
        (DataType::Utf8, "\"hello\""),
        (list(DataType::Utf8), r#"["a","b",null]"#),
        (map(DataType::Utf8, DataType::Int32), r#"{"a":1,"b":2,"c":null}"#),
        (strukt(&[("F1", DataType::Utf8)]), r#"{"F1":"bar"}"#),
    ] {
        let f = fields(&[("V", ty)]);
        assert_eq!(reencode(spec, Role::Value, &f, input).unwrap(), input);
        // Wrapped output of the same column.
        let (cols, _) = decode(spec, Role::Value, &f, &[Some(input.as_bytes())]);
        assert_eq!(encode(FormatSpec::json(), Role::Value, &f, &cols)[0].as_deref(), Some(&*format!("{{\"V\":{input}}}")));
        // A null value is a null record, not the text null.
        let (cols, res) = decode(spec, Role::Value, &f, &[Some(b"null")]);
        assert!(res[0].is_ok());
        assert_eq!(encode(spec, Role::Value, &f, &cols), vec![None]);
    }
    // Wrapped, a bare value is not an object.
    let f = fields(&[("FOO", DataType::Utf8)]);
    assert_eq!(decode_err(FormatSpec::json(), Role::Value, &f, b"\"bar\""), "expected a JSON object, got string \"bar\"");
    assert_eq!(reencode(spec, Role::Value, &f, "\"bar\""), Some("\"bar\"".into()));
}

#[test]
fn keys_are_bare_when_single_and_objects_when_several() {
    let one = fields(&[("K", DataType::Float64)]);
    assert_eq!(reencode(FormatSpec::json(), Role::Key, &one, "654.321").unwrap(), "654.321");
    let st = fields(&[("K", strukt(&[("F", DataType::Float64)]))]);
    assert_eq!(reencode(FormatSpec::json(), Role::Key, &st, r#"{"f":45.67}"#).unwrap(), r#"{"F":45.67}"#);
    let arr = fields(&[("K", list(DataType::Float64))]);
    assert_eq!(reencode(FormatSpec::json(), Role::Key, &arr, "[10.10]").unwrap(), "[10.1]");
    let two = fields(&[("K1", DataType::Utf8), ("K2", DataType::Int32)]);
    assert_eq!(reencode(FormatSpec::json(), Role::Key, &two, r#"{"k1":"foo","K2":2}"#).unwrap(), r#"{"K1":"foo","K2":2}"#);
    let (cols, _) = decode(FormatSpec::json(), Role::Key, &one, &[None]);
    assert_eq!(encode(FormatSpec::json(), Role::Key, &one, &cols), vec![None]);
}

#[test]
fn numbers_coerce_as_ksqldb_does() {
    let i = [("V", DataType::Int32)];
    assert_eq!(value(&i, r#"{"V":"12"}"#), r#"{"V":12}"#);
    assert_eq!(value(&i, r#"{"V":-1.7}"#), r#"{"V":-1}"#);
    assert_eq!(value(&i, r#"{"V":2.0}"#), r#"{"V":2}"#);
    assert_eq!(value(&i, r#"{"V":1e2}"#), r#"{"V":100}"#);
    assert_eq!(value(&i, r#"{"V":1e-9999999999}"#), r#"{"V":0}"#);
    assert_eq!(value(&i, r#"{"V":0e9999999999}"#), r#"{"V":0}"#);
    assert_eq!(value_err(&i, r#"{"v":"x"}"#), r#"field "V": expected INTEGER, got string "x""#);
    assert_eq!(value_err(&i, r#"{"V":"1.5"}"#), r#"field "V": expected INTEGER, got string "1.5""#);
    assert_eq!(value_err(&i, r#"{"V":3000000000}"#), r#"field "V": 3000000000 is out of range for INTEGER"#);
    assert_eq!(value_err(&i, r#"{"V":true}"#), r#"field "V": expected INTEGER, got boolean true"#);
    assert_eq!(value_err(&i, r#"{"V":[1]}"#), r#"field "V": expected INTEGER, got an array"#);
    let l = [("V", DataType::Int64)];
    assert_eq!(value(&l, r#"{"V":"-9223372036854775808"}"#), r#"{"V":-9223372036854775808}"#);
    assert_eq!(value(&l, r#"{"V":9223372036854775807.9}"#), r#"{"V":9223372036854775807}"#);
    assert!(value_err(&l, r#"{"V":9223372036854775808}"#).contains("out of range for BIGINT"));
    assert!(value_err(&l, r#"{"V":1e300}"#).contains("out of range for BIGINT"));
    let d = [("V", DataType::Float64)];
    assert_eq!(value(&d, r#"{"V":3}"#), r#"{"V":3.0}"#);
    assert_eq!(value(&d, r#"{"V":" 1.5e1 "}"#), r#"{"V":15.0}"#);
    assert_eq!(value(&d, r#"{"V":"NaN"}"#), r#"{"V":"NaN"}"#);
    assert_eq!(value(&d, r#"{"V":"-Infinity"}"#), r#"{"V":"-Infinity"}"#);
    assert_eq!(value(&d, r#"{"V":1e999}"#), r#"{"V":"Infinity"}"#);
    assert_eq!(value_err(&d, r#"{"V":"inf"}"#), r#"field "V": expected DOUBLE, got string "inf""#);
    let b = [("V", DataType::Boolean)];
    assert_eq!(value_err(&b, r#"{"V":"true"}"#), r#"field "V": expected BOOLEAN, got string "true""#);
    assert_eq!(value_err(&b, r#"{"V":1}"#), r#"field "V": expected BOOLEAN, got number 1"#);
    let t = [("T", ts()), ("D", DataType::Date32), ("TM", time())];
    assert_eq!(value(&t, r#"{"T":"10","D":"-3","TM":86399999}"#), r#"{"T":10,"D":-3,"TM":86399999}"#);
    assert_eq!(value_err(&t, r#"{"TM":86400000}"#), r#"field "TM": 86400000 is out of range for TIME"#);
    assert_eq!(value_err(&t, r#"{"TM":-1}"#), r#"field "TM": -1 is out of range for TIME"#);
    assert_eq!(value_err(&t, r#"{"D":2147483648}"#), r#"field "D": 2147483648 is out of range for DATE"#);
}

#[test]
fn anything_reads_as_string() {
    let s = [("S", DataType::Utf8)];
    assert_eq!(value(&s, r#"{"S":12}"#), r#"{"S":"12"}"#);
    assert_eq!(value(&s, r#"{"S":-1.50e3}"#), r#"{"S":"-1.50e3"}"#);
    assert_eq!(value(&s, r#"{"S":false}"#), r#"{"S":"false"}"#);
    assert_eq!(
        value(&s, r#"{"S": {"ITEMID": 6, "CATEGORY": {"ID": 2, "NAME": "F\u006fod"}, "L": [1, "a\"b"]}}"#),
        r#"{"S":"{\"ITEMID\":6,\"CATEGORY\":{\"ID\":2,\"NAME\":\"Food\"},\"L\":[1,\"a\\\"b\"]}"}"#
    );
    assert_eq!(value(&s, r#"{"S":["a", 1, null, {"x": 2}, [true]]}"#), r#"{"S":"[a, 1, null, {\"x\":2}, [true]]"}"#);
    let a = [("A", list(DataType::Utf8))];
    assert_eq!(value(&a, r#"{"A":[1, 2, 3]}"#), r#"{"A":["1","2","3"]}"#);
    let m = [("THING", map(DataType::Utf8, DataType::Utf8))];
    assert_eq!(value(&m, r#"{"thing":{"other":11,"status":false}}"#), r#"{"THING":{"other":"11","status":"false"}}"#);
}

#[test]
fn decimals_keep_their_scale_and_never_round() {
    let d = [("DEC", DataType::Decimal128(6, 4))];
    for (input, out) in [
        ("10", "10.0000"),
        ("1", "1.0000"),
        ("0.1", "0.1000"),
        ("0.0001", "0.0001"),
        ("10.0", "10.0000"),
        ("\"3.4\"", "3.4000"),
        ("-0.5", "-0.5000"),
        ("1.000000", "1.0000"),
        ("12e-1", "1.2000"),
        ("0", "0.0000"),
        ("0.00000", "0.0000"),
    ] {
        assert_eq!(value(&d, &format!("{{\"DEC\":{input}}}")), format!("{{\"DEC\":{out}}}"), "{input}");
    }
    assert_eq!(value_err(&d, r#"{"DEC":1.23456}"#), r#"field "DEC": cannot fit 1.23456 into DECIMAL(6, 4) without rounding"#);
    assert_eq!(value_err(&d, r#"{"DEC":100}"#), r#"field "DEC": 100 overflows DECIMAL(6, 4)"#);
    assert_eq!(value_err(&d, r#"{"DEC":-1e2}"#), r#"field "DEC": -1e2 overflows DECIMAL(6, 4)"#);
    assert_eq!(value_err(&d, r#"{"DEC":"x"}"#), r#"field "DEC": expected DECIMAL(6, 4), got string "x""#);
    let big = [("V", DataType::Decimal128(38, 16))];
    let v = "1234567890123456789012.1234567890123456";
    assert_eq!(value(&big, &format!("{{\"V\":{v}}}")), format!("{{\"V\":{v}}}"));
    let whole = [("V", DataType::Decimal128(5, 0))];
    assert_eq!(value(&whole, r#"{"V":-12345}"#), r#"{"V":-12345}"#);
}

#[test]
fn doubles_print_as_java_does() {
    let d = [("V", DataType::Float64)];
    for (input, out) in [
        ("1", "1.0"),
        ("1.5e10", "1.5E10"),
        ("0.00001", "1.0E-5"),
        ("0.001", "0.001"),
        ("1234567", "1234567.0"),
        ("12345678", "1.2345678E7"),
        ("-0.0", "-0.0"),
        ("9876.54321", "9876.54321"),
        ("1e-320", "1.0E-320"),
        ("1.7976931348623157e308", "1.7976931348623157E308"),
    ] {
        assert_eq!(value(&d, &format!("{{\"V\":{input}}}")), format!("{{\"V\":{out}}}"), "{input}");
    }
    let a: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN, f64::INFINITY, 0.1 + 0.2]));
    let f = fields(&d);
    let out = encode(FormatSpec::json(), Role::Value, &f, &[a]);
    assert_eq!(out, vec![Some(r#"{"V":"NaN"}"#.into()), Some(r#"{"V":"Infinity"}"#.into()), Some(r#"{"V":0.30000000000000004}"#.into())]);
}

#[test]
fn strings_escape_and_unescape() {
    let s = [("S", DataType::Utf8)];
    assert_eq!(value(&s, r#"{"S":"\u00e9\ud83d\ude00\/\b\f\n\r\t\\"}"#), "{\"S\":\"é😀/\\b\\f\\n\\r\\t\\\\\"}");
    assert_eq!(value(&s, r#"{"S":"\u0001 \u001F"}"#), r#"{"S":"\u0001 \u001F"}"#);
    // A lone surrogate becomes U+FFFD, as Java would print it.
    assert_eq!(value(&s, r#"{"S":"a\ud83db"}"#), "{\"S\":\"a\u{FFFD}b\"}");
    assert_eq!(value_err(&s, "{\"S\":\"a\u{1}\"}"), "invalid JSON at byte 7: control character in string");
    assert_eq!(value_err(&s, r#"{"S":"\x"}"#), "invalid JSON at byte 6: invalid escape");
    assert_eq!(value_err(&s, "{\"S\":\"\u{e9}\u{0}\"}"), "invalid JSON at byte 8: control character in string");
    let f = fields(&s);
    assert_eq!(decode_err(FormatSpec::json(), Role::Value, &f, b"{\"S\":\"a\xffb\"}"), "invalid UTF-8 at byte 7");
}

#[test]
fn bytes_are_base64() {
    let y = [("Y", DataType::Binary)];
    assert_eq!(value(&y, r#"{"Y":"ew=="}"#), r#"{"Y":"ew=="}"#);
    assert_eq!(value(&y, r#"{"Y":"ew"}"#), r#"{"Y":"ew=="}"#);
    assert_eq!(value(&y, r#"{"Y":""}"#), r#"{"Y":""}"#);
    assert_eq!(value_err(&y, r#"{"Y":"e!=="}"#), r#"field "Y": expected base64 BYTES, got string "e!==""#);
    assert_eq!(value_err(&y, r#"{"Y":12}"#), r#"field "Y": expected base64 BYTES, got number 12"#);
}

#[test]
fn maps_and_structs_in_detail() {
    let m = [("M", map(DataType::Utf8, DataType::Int32))];
    // Duplicate keys: the last value, in the first one's place.
    assert_eq!(value(&m, r#"{"M":{"a":1,"b":2,"a":3}}"#), r#"{"M":{"a":3,"b":2}}"#);
    assert_eq!(value(&m, r#"{"M":{"\u0041":1}}"#), r#"{"M":{"A":1}}"#);
    assert_eq!(value_err(&m, r#"{"M":{"a":"x"}}"#), r#"field "M["a"]": expected INTEGER, got string "x""#);
    assert_eq!(value_err(&m, r#"{"M":[1]}"#), r#"field "M": expected MAP<STRING, INTEGER>, got an array"#);
    let s = [("S", strukt(&[("A", DataType::Int32), ("B", list(DataType::Int32))]))];
    assert_eq!(value(&s, r#"{"S":{"b":[1],"x":2}}"#), r#"{"S":{"A":null,"B":[1]}}"#);
    assert_eq!(value_err(&s, r#"{"S":{"B":[1,"y"]}}"#), r#"field "S.B[2]": expected INTEGER, got string "y""#);
    assert_eq!(value_err(&s, r#"{"S":"x"}"#), r#"field "S": expected STRUCT<A INTEGER, B ARRAY<INTEGER>>, got string "x""#);
}

#[test]
fn failed_records_leave_aligned_null_rows() {
    let f = fields(&[
        ("A", DataType::Int32),
        ("S", strukt(&[("X", DataType::Utf8), ("Y", DataType::Int32)])),
        ("L", list(DataType::Utf8)),
        ("M", map(DataType::Utf8, DataType::Int64)),
    ]);
    let inputs: Vec<Option<&[u8]>> = vec![
        Some(br#"{"A":1,"S":{"X":"a","Y":1},"L":["p"],"M":{"k":1}}"#),
        Some(br#"{"A":2,"S":{"X":"bbbb","Y":"bad"},"L":["q"],"M":{"k":2}}"#),
        Some(br#"{"A":3,"L":["r","s","t"],"M":{"k":3,"j":"bad"}}"#),
        Some(br#"{"A":4,"S":{"X":"c","Y":4},"L":["u"],"M":{"k":4}}"#),
        Some(br#"{"A":5,"S":{"X":"d"#),
    ];
    let (cols, res) = decode(FormatSpec::json(), Role::Value, &f, &inputs);
    assert_eq!(res.iter().map(Result::is_ok).collect::<Vec<_>>(), vec![true, false, false, true, false]);
    assert_eq!(res[4].clone().unwrap_err().to_string(), "invalid JSON at byte 18: unterminated string");
    let again = encode(FormatSpec::json(), Role::Value, &f, &cols);
    assert_eq!(again[0].as_deref(), Some(r#"{"A":1,"S":{"X":"a","Y":1},"L":["p"],"M":{"k":1}}"#));
    assert_eq!(again[1].as_deref(), Some(r#"{"A":null,"S":null,"L":null,"M":null}"#));
    assert_eq!(again[3].as_deref(), Some(r#"{"A":4,"S":{"X":"c","Y":4},"L":["u"],"M":{"k":4}}"#));
    assert_eq!(cols[0].as_primitive::<Int32Type>().values().to_vec(), vec![1, 0, 0, 4, 0]);
    assert_eq!(cols[2].as_list::<i32>().values().len(), 2);
}

#[test]
fn malformed_json_is_an_error() {
    let c = [("A", DataType::Int32)];
    for (input, msg) in [
        ("", "invalid JSON at byte 0: unexpected end of input"),
        ("  ", "invalid JSON at byte 2: unexpected end of input"),
        (r#"{"A":1"#, "invalid JSON at byte 6: unexpected end of input"),
        (r#"{"A":}"#, "invalid JSON at byte 5: expected a value"),
        (r#"{"A":1,}"#, "invalid JSON at byte 7: expected a string key"),
        (r#"{"A" 1}"#, "invalid JSON at byte 5: expected ':'"),
        (r#"{"A":1} x"#, "invalid JSON at byte 8: unexpected data after the JSON value"),
        (r#"{"A":01}"#, "invalid JSON at byte 6: expected ',' or '}'"),
        (r#"{"A":1.}"#, "invalid JSON at byte 7: expected a digit after the decimal point"),
        (r#"{"A":tru}"#, "invalid JSON at byte 5: invalid literal"),
        (r#"{"A":NaN}"#, "invalid JSON at byte 5: expected a value"),
        (r#"{"B":[1,]}"#, "invalid JSON at byte 8: expected a value"),
        (r#"{"B":{"x":1]}"#, "invalid JSON at byte 11: expected ',' or '}'"),
        (r#"{A:1}"#, "invalid JSON at byte 1: expected a string key"),
        ("[1]", "expected a JSON object, got an array"),
    ] {
        assert_eq!(value_err(&c, input), msg, "{input}");
    }
}

#[test]
fn non_nullable_fields_refuse_nulls() {
    let f = Fields::from(vec![datafusion::arrow::datatypes::Field::new("A", DataType::Int64, false)]);
    let e = decode_err(FormatSpec::json(), Role::Value, &f, b"{}");
    assert_eq!(e, "field \"A\": null value for a non-nullable field");
    let (cols, res) = decode(FormatSpec::json(), Role::Value, &f, &[Some(br#"{"a":5}"#)]);
    assert!(res[0].is_ok());
    assert_eq!(cols[0].as_primitive::<Int64Type>().value(0), 5);
    let (cols, _) = decode(FormatSpec::json(), Role::Value, &fields(&[("D", DataType::Float64)]), &[Some(br#"{"D":2}"#)]);
    assert_eq!(cols[0].as_primitive::<Float64Type>().value(0), 2.0);
}
