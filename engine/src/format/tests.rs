//! Tests across formats: `check_columns`, encoder argument checks, and random bytes fed to
//! every decoder (no panic, rows stay aligned), plus helpers for the per-format tests.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use super::*;

// ---- helpers shared by the format tests ----

pub(super) fn fields(cols: &[(&str, DataType)]) -> Fields {
    Fields::from(cols.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>())
}

pub(super) fn list(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

pub(super) fn map(k: DataType, v: DataType) -> DataType {
    let entries = Fields::from(vec![Field::new("key", k, false), Field::new("value", v, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

pub(super) fn strukt(cols: &[(&str, DataType)]) -> DataType {
    DataType::Struct(fields(cols))
}

pub(super) fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

pub(super) fn time() -> DataType {
    DataType::Time32(TimeUnit::Millisecond)
}

/// Decodes `inputs` (one record each); returns the columns and each record's outcome.
pub(super) fn decode(
    spec: FormatSpec,
    role: Role,
    f: &Fields,
    inputs: &[Option<&[u8]>],
) -> (Vec<ArrayRef>, Vec<Result<(), DecodeError>>) {
    let mut dec = new_decoder(&spec, role, f).unwrap();
    let results: Vec<_> = inputs.iter().map(|i| dec.append(*i)).collect();
    assert_eq!(dec.rows(), inputs.len());
    let cols = dec.finish();
    assert_eq!(dec.rows(), 0);
    for c in &cols {
        assert_eq!(c.len(), inputs.len());
    }
    (cols, results)
}

/// Encodes `cols`; entries as lossy strings.
pub(super) fn encode(spec: FormatSpec, role: Role, f: &Fields, cols: &[ArrayRef]) -> Vec<Option<String>> {
    let mut enc = new_encoder(&spec, role, f).unwrap();
    let mut out = EncodedBatch::new();
    enc.encode(cols, &mut out).unwrap();
    out.iter().map(|e| e.map(|b| String::from_utf8(b.to_vec()).unwrap())).collect()
}

/// Decodes `input` (which must decode) and encodes it again with the same spec.
pub(super) fn reencode(spec: FormatSpec, role: Role, f: &Fields, input: &str) -> Option<String> {
    let (cols, res) = decode(spec, role, f, &[Some(input.as_bytes())]);
    if let Err(e) = &res[0] {
        panic!("{input:?} failed: {e}");
    }
    encode(spec, role, f, &cols).remove(0)
}

/// The error decoding `input` gives.
pub(super) fn decode_err(spec: FormatSpec, role: Role, f: &Fields, input: &[u8]) -> String {
    let (cols, res) = decode(spec, role, f, &[Some(input)]);
    for c in &cols {
        assert!(c.is_null(0), "a failed record must leave a null row");
    }
    res[0].clone().unwrap_err().to_string()
}

// ---- check_columns ----

fn check(spec: FormatSpec, role: Role, cols: &[(&str, DataType)]) -> Result<(), String> {
    check_columns(&spec, role, &fields(cols)).map_err(|e| e.to_string())
}

#[test]
fn kafka_takes_one_primitive_column() {
    for ty in [DataType::Int32, DataType::Int64, DataType::Float64, DataType::Utf8, DataType::Binary] {
        check(FormatSpec::kafka(), Role::Value, &[("V", ty.clone())]).unwrap();
        check(FormatSpec::kafka(), Role::Key, &[("K", ty)]).unwrap();
    }
    assert_eq!(
        check(FormatSpec::kafka(), Role::Value, &[("X", list(DataType::Int32))]).unwrap_err(),
        "format KAFKA does not support type ARRAY<INTEGER> for column \"X\""
    );
    assert_eq!(
        check(FormatSpec::kafka(), Role::Value, &[("V0", DataType::Boolean)]).unwrap_err(),
        "format KAFKA does not support type BOOLEAN for column \"V0\""
    );
    assert_eq!(
        check(FormatSpec::kafka(), Role::Value, &[("V0", DataType::Int32), ("V1", DataType::Utf8)]).unwrap_err(),
        "format KAFKA supports a single column, got 2: \"V0\" INTEGER, \"V1\" STRING"
    );
    for ty in [DataType::Decimal128(4, 2), ts(), DataType::Date32, time(), strukt(&[("F", DataType::Float64)])] {
        check(FormatSpec::kafka(), Role::Value, &[("V", ty)]).unwrap_err();
    }
}

#[test]
fn delimited_takes_primitives_only() {
    let prims = [
        DataType::Boolean,
        DataType::Int32,
        DataType::Int64,
        DataType::Float64,
        DataType::Decimal128(10, 2),
        DataType::Utf8,
        DataType::Binary,
        ts(),
        DataType::Date32,
        time(),
    ];
    for ty in prims {
        check(FormatSpec::delimited(b','), Role::Value, &[("V", ty)]).unwrap();
    }
    assert_eq!(
        check(FormatSpec::delimited(b','), Role::Key, &[("K", strukt(&[("F", DataType::Float64)]))]).unwrap_err(),
        "format DELIMITED does not support type STRUCT<F DOUBLE> for column \"K\""
    );
    check(FormatSpec::delimited(b','), Role::Value, &[("V", list(DataType::Int32))]).unwrap_err();
    for bad in [b'"', b'\n', b'\r', 0xa7] {
        let e = check(FormatSpec::delimited(bad), Role::Value, &[("V", DataType::Int32)]).unwrap_err();
        assert!(e.starts_with("invalid delimiter"), "{e}");
    }
    check(FormatSpec::delimited(b'\t'), Role::Value, &[("V", DataType::Int32)]).unwrap();
}

#[test]
fn none_takes_no_columns_and_any_format_takes_zero() {
    assert_eq!(
        check(FormatSpec::none(), Role::Key, &[("K", DataType::Utf8)]).unwrap_err(),
        "format NONE can only be used when no columns are defined, got \"K\" STRING"
    );
    for spec in [FormatSpec::none(), FormatSpec::json(), FormatSpec::kafka(), FormatSpec::delimited(b',')] {
        for role in [Role::Key, Role::Value] {
            check(spec, role, &[]).unwrap();
            let (cols, res) = decode(spec, role, &Fields::empty(), &[Some(b"anything"), None, Some(b"\xff")]);
            assert!(cols.is_empty() && res.iter().all(Result::is_ok));
            let mut enc = new_encoder(&spec, role, &Fields::empty()).unwrap();
            let mut out = EncodedBatch::new();
            enc.encode_rows(&[], 3, &mut out).unwrap();
            assert_eq!(out.len(), 3);
            assert!(out.iter().all(|e| e.is_none()));
            // Without a row count, nothing is encoded, and every entry reads as null.
            enc.encode(&[], &mut out).unwrap();
            assert_eq!(out.get(7), None);
        }
    }
}

#[test]
fn maps_are_refused_in_keys_and_need_string_keys_in_json() {
    assert_eq!(
        check(FormatSpec::json(), Role::Key, &[("K", map(DataType::Utf8, DataType::Float64))]).unwrap_err(),
        "map types are not supported in keys: column \"K\" has type MAP<STRING, DOUBLE>"
    );
    check(FormatSpec::json(), Role::Key, &[("K", list(map(DataType::Utf8, DataType::Int32)))]).unwrap_err();
    assert_eq!(
        check(FormatSpec::json(), Role::Value, &[("FOO", map(DataType::Int32, DataType::Float64))]).unwrap_err(),
        "format JSON only supports MAP types with STRING keys: column \"FOO\" has type MAP<INTEGER, DOUBLE>"
    );
    check(FormatSpec::json(), Role::Value, &[("FOO", map(DataType::Utf8, list(DataType::Int32)))]).unwrap();
    check(FormatSpec::json(), Role::Key, &[("K", strukt(&[("F", list(DataType::Float64))]))]).unwrap();
}

#[test]
fn types_outside_the_mapping_are_refused() {
    for ty in [DataType::Int8, DataType::LargeUtf8, DataType::Timestamp(TimeUnit::Microsecond, None), DataType::Decimal128(39, 0)]
    {
        let e = check(FormatSpec::json(), Role::Value, &[("V", ty)]).unwrap_err();
        assert!(e.starts_with("format JSON does not support type"), "{e}");
    }
    // STRUCT() (no fields) is a type of its own.
    check(FormatSpec::json(), Role::Value, &[("V", DataType::Struct(Fields::empty()))]).unwrap();
}

#[test]
fn encoders_check_their_input() {
    let f = fields(&[("A", DataType::Int32), ("B", DataType::Utf8)]);
    let mut enc = new_encoder(&FormatSpec::json(), Role::Value, &f).unwrap();
    let mut out = EncodedBatch::new();
    let a: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
    let b: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
    assert_eq!(enc.encode(std::slice::from_ref(&a), &mut out).unwrap_err().to_string(), "expected 2 columns, got 1");
    assert_eq!(
        enc.encode(&[a.clone(), a.clone()], &mut out).unwrap_err().to_string(),
        "column \"B\" has type INTEGER, expected STRING"
    );
    assert_eq!(
        enc.encode(&[a.clone(), b.clone()], &mut out).unwrap_err().to_string(),
        "column \"B\" has 1 rows, expected at least 2"
    );
    enc.encode_rows(&[a, b], 1, &mut out).unwrap();
    assert_eq!(out.get(0), Some(&br#"{"A":1,"B":"x"}"#[..]));
}

#[test]
fn encoded_batch_entries() {
    let mut b = EncodedBatch::new();
    b.push(Some(b"ab"));
    b.push(None);
    b.buffer().extend_from_slice(b"xyz");
    b.push_null();
    b.buffer().extend_from_slice(b"c");
    b.end_entry();
    b.push(Some(b""));
    assert_eq!(b.len(), 5);
    assert_eq!(b.iter().collect::<Vec<_>>(), vec![Some(&b"ab"[..]), None, None, Some(b"c"), Some(b"")]);
    assert_eq!(b.data(), b"abc");
    assert!(b.is_null(2) && !b.is_null(4) && b.is_null(5));
    b.clear();
    assert!(b.is_empty());
    assert_eq!(b.get(0), None);
}

// ---- random bytes ----

/// Tiny deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that are often nearly valid: seeds mutated, spliced and truncated, or pure noise.
fn fuzz_input(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    const ALPHABET: &[u8] = b"{}[]\",:\\ \t\n\r0123456789-+.eEtrufalsn\x00\x1f\xff\xc3\xa9\xed\xa0\x80uABCDE/";
    let mut v = seeds[rng.below(seeds.len())].to_vec();
    match rng.below(4) {
        0 => {
            v.clear();
            for _ in 0..rng.below(48) {
                v.push(ALPHABET[rng.below(ALPHABET.len())]);
            }
        }
        1 => v.truncate(rng.below(v.len() + 1)),
        _ => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(v.len() + 1);
                let byte = if rng.below(2) == 0 { ALPHABET[rng.below(ALPHABET.len())] } else { rng.next() as u8 };
                match rng.below(3) {
                    0 if at < v.len() => v[at] = byte,
                    1 if at < v.len() => {
                        v.remove(at);
                    }
                    _ => v.insert(at, byte),
                }
            }
        }
    }
    v
}

fn all_types() -> Vec<(&'static str, DataType)> {
    vec![
        ("B", DataType::Boolean),
        ("I", DataType::Int32),
        ("L", DataType::Int64),
        ("D", DataType::Float64),
        ("N", DataType::Decimal128(6, 2)),
        ("S", DataType::Utf8),
        ("Y", DataType::Binary),
        ("T", ts()),
        ("DT", DataType::Date32),
        ("TM", time()),
    ]
}

fn fuzz(spec: FormatSpec, role: Role, f: &Fields, seeds: &[&[u8]], seed: u64) {
    let mut rng = Rng(seed);
    let mut dec = new_decoder(&spec, role, f).unwrap();
    let mut enc = new_encoder(&spec, role, f).unwrap();
    let (mut ok, mut failed) = (0, 0);
    for round in 0..40 {
        for _ in 0..100 {
            let input = fuzz_input(&mut rng, seeds);
            match dec.append(Some(&input)) {
                Ok(()) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        assert_eq!(dec.rows(), 100);
        let cols = dec.finish();
        assert!(cols.iter().all(|c| c.len() == 100), "round {round}");
        // Whatever decoded must encode.
        let mut out = EncodedBatch::new();
        enc.encode_rows(&cols, 100, &mut out).unwrap();
        assert_eq!(out.len(), 100);
    }
    // The inputs must exercise both outcomes to mean anything.
    assert!(ok > 0 && (failed > 0 || matches!(spec.kind, FormatKind::Kafka | FormatKind::None)), "{spec:?} {f:?}: {ok} ok, {failed} failed");
}

#[test]
fn random_bytes_never_panic_json() {
    let flat = fields(&all_types());
    let seeds: &[&[u8]] = &[
        br#"{"B":true,"I":1,"L":-2,"D":1.5e3,"N":"12.50","S":"a\"b\u00e9","Y":"AQI=","T":5,"DT":-1,"TM":"1000"}"#,
        br#"{"b":false,"i":"7","l":1.9,"d":"NaN","n":0.1,"s":{"x":[1,{"y":null}]},"y":null}"#,
        br#"[1,2,{"a":"\ud83d\ude00"}]"#,
        b"null",
        b"",
    ];
    fuzz(FormatSpec::json(), Role::Value, &flat, seeds, 0x9E37_79B9_7F4A_7C15);
    let nested = fields(&[
        ("A", list(strukt(&[("X", DataType::Int32), ("Y", list(DataType::Utf8))]))),
        ("M", map(DataType::Utf8, map(DataType::Utf8, DataType::Decimal128(4, 1)))),
        ("S", strukt(&[("Z", DataType::Binary), ("W", DataType::Float64)])),
    ]);
    let seeds: &[&[u8]] = &[
        br#"{"A":[{"X":1,"Y":["a",null]},null,{"x":"2"}],"M":{"k":{"j":1.5},"n":null},"S":{"z":"AA==","W":2}}"#,
        br#"{"a":[],"m":{},"s":null}"#,
        br#"{"A":[[[[[[[[[[]]]]]]]]]],"M":{"k":[1,2]}}"#,
    ];
    fuzz(FormatSpec::json(), Role::Value, &nested, seeds, 42);
    for (name, ty) in all_types() {
        let one = fields(&[(name, ty)]);
        let seeds: &[&[u8]] = &[b"12", b"\"x\"", b"-1.5e2", b"true", b"null", b"[1]", b"{\"a\":1}"];
        fuzz(FormatSpec::json(), Role::Key, &one, seeds, 7);
        fuzz(FormatSpec::json().with_wrap_single_value(false), Role::Value, &one, seeds, 8);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let f = fields(&[("A", DataType::Utf8)]);
    let deep = format!("{{\"A\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let e = decode_err(FormatSpec::json(), Role::Value, &f, deep.as_bytes());
    assert!(e.contains("nesting too deep"), "{e}");
    let ok = format!("{{\"A\":{}{}}}", "[".repeat(500), "]".repeat(500));
    let out = reencode(FormatSpec::json(), Role::Value, &f, &ok).unwrap();
    assert!(out.starts_with(r#"{"A":"[[[["#), "{out}");
}

#[test]
fn random_bytes_never_panic_delimited_and_kafka() {
    let flat = fields(&all_types());
    let seeds = [
        &b"true,1,-2,1.5E3,12.50,\"a,\"\"b\",AQI=,5,-1,1000"[..],
        b",,,,,,,,,",
        b"\"x\" ,2\n3,4",
        b"",
    ];
    for delim in [b',', b'\t', b' ', b'|'] {
        let seeds: Vec<Vec<u8>> =
            seeds.iter().map(|s| s.iter().map(|&c| if c == b',' { delim } else { c }).collect()).collect();
        let seeds: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
        fuzz(FormatSpec::delimited(delim), Role::Value, &flat, &seeds, u64::from(delim) + 1);
    }
    for (name, ty) in all_types() {
        let one = fields(&[(name, ty)]);
        fuzz(FormatSpec::delimited(b','), Role::Key, &one, &[b"1", b"\"-1.5\"", b"", b"x,y"], 3);
    }
    for ty in [DataType::Int32, DataType::Int64, DataType::Float64, DataType::Utf8, DataType::Binary] {
        let one = fields(&[("V", ty)]);
        fuzz(FormatSpec::kafka(), Role::Value, &one, &[b"\0\0\0\x01", b"abcdefgh", b""], 5);
    }
    fuzz(FormatSpec::none(), Role::Key, &Fields::empty(), &[b"x"], 6);
}
