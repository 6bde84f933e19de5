//! DELIMITED format tests: splitting and quoting both ways, every type, ksqlDB's outputs from
//! its query-validation tests, bad input.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};

use crate::format::tests::{decode, decode_err, encode, fields, time, ts};
use crate::format::{FormatSpec, Role};

fn csv(cols: &[(&str, DataType)], input: &str) -> String {
    crate::format::tests::reencode(FormatSpec::delimited(b','), Role::Value, &fields(cols), input).unwrap()
}

fn csv_err(cols: &[(&str, DataType)], input: &str) -> String {
    decode_err(FormatSpec::delimited(b','), Role::Value, &fields(cols), input.as_bytes())
}

fn strings(values: &[Option<&str>]) -> Vec<Option<String>> {
    let cols: Vec<(String, DataType)> = (0..values.len()).map(|i| (format!("C{i}"), DataType::Utf8)).collect();
    let cols: Vec<(&str, DataType)> = cols.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let arrays: Vec<ArrayRef> = values.iter().map(|v| Arc::new(StringArray::from(vec![*v])) as ArrayRef).collect();
    encode(FormatSpec::delimited(b','), Role::Value, &fields(&cols), &arrays)
}

#[test]
fn every_type_round_trips() {
    let cols = [
        ("B", DataType::Boolean),
        ("I", DataType::Int32),
        ("L", DataType::Int64),
        ("D", DataType::Float64),
        ("N", DataType::Decimal128(6, 4)),
        ("S", DataType::Utf8),
        ("Y", DataType::Binary),
        ("T", ts()),
        ("DT", DataType::Date32),
        ("TM", time()),
    ];
    let line = "true,1,4294967296,10.1,12.3650,zero,dmFyaWF0aW9ucw==,10,-10,10";
    assert_eq!(csv(&cols, line), line);
    assert_eq!(csv(&cols, ",,,,,,,,,"), ",,,,,,,,,");
}

#[test]
fn ksqldb_outputs() {
    let three = [("ID", DataType::Int64), ("NAME", DataType::Utf8), ("VALUE", DataType::Int32)];
    assert_eq!(csv(&three, "0,zero,0"), "0,zero,0");
    let nulls_first = [("C1", DataType::Int64), ("C2", DataType::Int32), ("C3", DataType::Utf8)];
    assert_eq!(csv(&nulls_first, ",456,foo"), ",456,foo");
    // A negative number first on the line is quoted; elsewhere it is not.
    assert_eq!(csv(&[("DATE", DataType::Date32)], "-10"), "\"-10\"");
    assert_eq!(csv(&three, "5,-1,-2"), "5,-1,-2");
    assert_eq!(csv(&three, "-5,x,1"), "\"-5\",x,1");
    let dec = [("V", DataType::Decimal128(33, 16))];
    for (input, out) in [
        ("12345678987654321.2345678987654321", "12345678987654321.2345678987654321"),
        (".12", "0.1200000000000000"),
        ("-12345.12", "\"-12345.1200000000000000\""),
        ("\"-12345.12\"", "\"-12345.1200000000000000\""),
        ("0", "0.0000000000000000"),
    ] {
        assert_eq!(csv(&dec, input), out, "{input}");
    }
    assert_eq!(csv(&[("K", DataType::Decimal128(6, 4))], "\"12.0\""), "12.0000");
    let bytes_strings = [("A", DataType::Utf8), ("B", DataType::Binary), ("C", DataType::Utf8)];
    assert_eq!(csv(&bytes_strings, "!,IQ==,!"), "\"!\",IQ==,\"!\"");
    assert_eq!(csv(&bytes_strings, "#,Iw==,#"), "\"#\",Iw==,\"#\"");
    assert_eq!(csv(&bytes_strings, "1aB2,GrI=,1AB2"), "1aB2,GrI=,1AB2");
    assert_eq!(
        strings(&[Some(" \t with white space \t"), Some(" \t WITH WHITE SPACE \t"), Some("with white space"), Some("\t wit")]),
        vec![Some("\" \t with white space \t\",\" \t WITH WHITE SPACE \t\",with white space,\"\t wit\"".into())]
    );
    assert_eq!(strings(&[Some("s"), Some("S"), Some("s"), Some("")]), vec![Some("s,S,s,".into())]);
    assert_eq!(strings(&[None, None, Some("100")]), vec![Some(",,100".into())]);
    let quirky = "\"\"\" + new java.util.function.Supplier<String>(){public String get() {return \"\"boom\"\";}}.get() + \"\"\"";
    assert_eq!(csv(&[("S", DataType::Utf8)], quirky), quirky);
}

#[test]
fn quoting_on_write() {
    assert_eq!(strings(&[Some("")]), vec![Some("\"\"".into())]);
    assert_eq!(strings(&[None]), vec![Some("".into())]);
    assert_eq!(strings(&[Some("a"), Some("")]), vec![Some("a,".into())]);
    assert_eq!(strings(&[Some("a,b"), Some("say \"hi\"")]), vec![Some("\"a,b\",\"say \"\"hi\"\"\"".into())]);
    assert_eq!(strings(&[Some("x"), Some("line\nbreak"), Some("trail ")]), vec![Some("x,\"line\nbreak\",\"trail \"".into())]);
    assert_eq!(strings(&[Some("é"), Some("é")]), vec![Some("\"é\",é".into())]);
    assert_eq!(strings(&[Some("a"), Some("$x"), Some("#x")]), vec![Some("a,$x,\"#x\"".into())]);
    let d: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), Some(1.5e10), Some(-0.5), Some(f64::NAN), None]));
    let out = encode(FormatSpec::delimited(b','), Role::Value, &fields(&[("D", DataType::Float64)]), &[d]);
    let out: Vec<_> = out.into_iter().map(Option::unwrap).collect();
    assert_eq!(out, vec!["1.0", "1.5E10", "\"-0.5\"", "NaN", ""]);
    let b: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
    let i: ArrayRef = Arc::new(Int32Array::from(vec![-1, 2]));
    let f = fields(&[("B", DataType::Boolean), ("I", DataType::Int32)]);
    // With '-' as the delimiter, a negative number holds the delimiter and is quoted.
    let out = encode(FormatSpec::delimited(b'-'), Role::Value, &f, &[b, i]);
    assert_eq!(out, vec![Some("true-\"-1\"".into()), Some("false-2".into())]);
}

#[test]
fn quoting_on_read() {
    let two = [("A", DataType::Utf8), ("B", DataType::Utf8)];
    assert_eq!(csv(&two, "\"foo\",\"bar\""), "foo,bar");
    assert_eq!(csv(&two, "\"a,b\",\"c\"\"d\""), "\"a,b\",\"c\"\"d\"");
    assert_eq!(csv(&two, "a\"b,c"), "\"a\"\"b\",c");
    assert_eq!(csv(&two, "\"x\" \t,y"), "x,y");
    assert_eq!(csv(&two, "\"multi\nline\",y"), "\"multi\nline\",y");
    assert_eq!(csv(&two, "\"\",\"\""), ",");
    assert_eq!(csv(&two, " a , b "), "\" a \",\" b \"");
    assert_eq!(csv_err(&two, "\"x\"y,z"), "invalid DELIMITED record at byte 3: unexpected character after a quoted field");
    assert_eq!(csv_err(&two, "\"x,y"), "invalid DELIMITED record at byte 4: unterminated quoted field");
    let b = [("K", DataType::Boolean)];
    assert_eq!(csv(&b, "\"true\""), "true");
}

#[test]
fn records_and_field_counts() {
    let two = [("A", DataType::Int32), ("B", DataType::Int32)];
    assert_eq!(csv(&two, "1,2\n3,4"), "1,2");
    assert_eq!(csv(&two, "\r\n\n1,2\r\n"), "1,2");
    assert_eq!(csv(&two, "0,"), "0,");
    assert_eq!(csv(&two, ","), ",");
    assert_eq!(csv_err(&two, "1"), "expected 2 fields, got 1");
    assert_eq!(csv_err(&two, "1,2,3"), "expected 2 fields, got 3");
    assert_eq!(csv_err(&two, ""), "expected 2 fields, got 1");
    let one = [("S", DataType::Utf8)];
    let (cols, res) = decode(FormatSpec::delimited(b','), Role::Value, &fields(&one), &[Some(b""), None, Some(b"\n")]);
    assert!(res.iter().all(Result::is_ok));
    assert_eq!(cols[0].null_count(), 3);
    assert_eq!(csv_err(&one, "a,b"), "expected 1 fields, got 2");
    let f = fields(&one);
    assert_eq!(decode_err(FormatSpec::delimited(b','), Role::Value, &f, b"a\xffb"), "invalid UTF-8 at byte 1");
}

#[test]
fn other_delimiters() {
    let cols = fields(&[("ID", DataType::Int64), ("NAME", DataType::Utf8), ("VALUE", DataType::Int32)]);
    for (delim, line) in [(b'|', "0|zero|0"), (b'\t', "0\tzero\t0"), (b' ', "0 zero 0"), (b'$', "0$zero$0")] {
        let spec = FormatSpec::delimited(delim);
        assert_eq!(crate::format::tests::reencode(spec, Role::Value, &cols, line).unwrap(), line);
    }
    // A key delimiter different from the value one.
    let keys = fields(&[("K1", DataType::Utf8), ("K2", DataType::Utf8)]);
    let (k, _) = decode(FormatSpec::delimited(b';'), Role::Key, &keys, &[Some(b"foo,bar;baz")]);
    assert_eq!(k[0].as_string::<i32>().value(0), "foo,bar");
    let v = fields(&[("V", DataType::Int32), ("V2", DataType::Int32)]);
    assert_eq!(crate::format::tests::reencode(FormatSpec::delimited(b'-'), Role::Value, &v, "0-1").unwrap(), "0-1");
}

#[test]
fn text_parsing_follows_java() {
    let b = [("B", DataType::Boolean)];
    assert_eq!(csv(&b, "TRUE"), "true");
    // Boolean.parseBoolean: anything but "true" is false.
    assert_eq!(csv(&b, "yes"), "false");
    let i = [("I", DataType::Int32)];
    assert_eq!(csv(&i, "+7"), "7");
    assert_eq!(csv(&i, "007"), "7");
    assert_eq!(csv_err(&i, " 7"), "field \"I\": expected INTEGER, got \" 7\"");
    assert_eq!(csv_err(&i, "2147483648"), "field \"I\": expected INTEGER, got \"2147483648\"");
    assert_eq!(csv_err(&i, "1.0"), "field \"I\": expected INTEGER, got \"1.0\"");
    let d = [("D", DataType::Float64)];
    let parse = |s: &str| {
        let (cols, res) = decode(FormatSpec::delimited(b','), Role::Value, &fields(&d), &[Some(s.as_bytes())]);
        res[0].clone().map(|()| cols[0].as_primitive::<Float64Type>().value(0))
    };
    assert_eq!(parse(" 2.5 "), Ok(2.5));
    assert_eq!(parse("1.5e3"), Ok(1500.0));
    assert_eq!(parse("1.5d"), Ok(1.5));
    assert_eq!(parse(".5"), Ok(0.5));
    assert_eq!(parse("-Infinity"), Ok(f64::NEG_INFINITY));
    assert!(parse("NaN").unwrap().is_nan());
    assert!(parse("nan").is_err() && parse("0x1p3").is_err() && parse("1e").is_err());
    let n = [("N", DataType::Decimal128(4, 2))];
    assert_eq!(csv(&n, "1.5"), "1.50");
    assert_eq!(csv(&n, "1E1"), "10.00");
    assert_eq!(csv_err(&n, "1.555"), "field \"N\": cannot fit 1.555 into DECIMAL(4, 2) without rounding");
    assert_eq!(csv_err(&n, "123"), "field \"N\": 123 overflows DECIMAL(4, 2)");
    assert_eq!(csv_err(&n, "1,5"), "expected 1 fields, got 2");
    let t = [("T", ts()), ("D", DataType::Date32), ("TM", time())];
    assert_eq!(csv(&t, "1528224275715,19000,1000"), "1528224275715,19000,1000");
    assert_eq!(csv_err(&t, "1,1,86400000"), "field \"TM\": expected TIME, got \"86400000\"");
    assert_eq!(csv_err(&t, "x,1,1"), "field \"T\": expected TIMESTAMP, got \"x\"");
    let y = [("Y", DataType::Binary)];
    assert_eq!(csv(&y, "ew"), "ew==");
    assert_eq!(csv_err(&y, "e!"), "field \"Y\": expected base64 BYTES, got \"e!\"");
}
