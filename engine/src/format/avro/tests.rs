use std::sync::Arc;

use apache_avro::types::Value as AV;
use datafusion::arrow::array::{
    Array, AsArray, BinaryArray, Decimal128Array, Float64Array, Int32Array, Int64Array, ListArray, MapArray, StringArray,
    StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int32Type, TimeUnit};
use storage::{FileLog, LogOptions, TopicLog};

use super::*;
use crate::format::{new_decoder_with, new_encoder_with, FormatKind, FormatSpec, Role};
use crate::registry::{EmbeddedRegistry, Schema as RegSchema};

fn registry(dir: &std::path::Path) -> Registry {
    let log: Arc<dyn TopicLog> = Arc::new(FileLog::open(&dir.join("topics"), LogOptions::default()).unwrap());
    Registry(Arc::new(EmbeddedRegistry::open(log).unwrap()))
}

fn register(r: &Registry, subject: &str, text: &str) -> u32 {
    r.register(subject, &RegSchema::new(SchemaType::Avro, text), None).unwrap()
}

/// Frames a datum written by apache-avro (an encoder independent of ours).
fn framed(id: u32, schema: &str, v: AV) -> Vec<u8> {
    let s = apache_avro::Schema::parse_str(schema).unwrap();
    let mut out = Vec::new();
    frame(id, &mut out);
    out.extend(apache_avro::to_avro_datum(&s, v).unwrap());
    out
}

fn fields(f: &[(&str, DataType)]) -> Fields {
    f.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect()
}

fn spec(id: Option<u32>) -> FormatSpec {
    FormatSpec { schema_id: id, ..FormatSpec::new(FormatKind::Avro) }
}

const WRITER: &str = r#"{"type":"record","name":"blah","fields":[
    {"name":"c1","type":"boolean"},{"name":"c2","type":"int"},{"name":"c3","type":"long"},
    {"name":"c4","type":"float"},{"name":"c5","type":["null","string"]},
    {"name":"skipped","type":{"type":"array","items":"string"}},
    {"name":"e","type":{"type":"enum","name":"Suit","symbols":["SPADES","HEARTS"]}},
    {"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}}]}"#;

fn writer_value(c5: Option<&str>) -> AV {
    AV::Record(vec![
        ("c1".into(), AV::Boolean(true)),
        ("c2".into(), AV::Int(7)),
        ("c3".into(), AV::Long(400_000_000_000)),
        ("c4".into(), AV::Float(1.5)),
        ("c5".into(), AV::Union(u32::from(c5.is_some()), Box::new(c5.map_or(AV::Null, |s| AV::String(s.into()))))),
        ("skipped".into(), AV::Array(vec![AV::String("x".into())])),
        ("e".into(), AV::Enum(1, "HEARTS".into())),
        ("ts".into(), AV::TimestampMicros(1_500_000)),
    ])
}

#[test]
fn decodes_with_coercions_skips_and_missing_fields() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let id = register(&r, "t-value", WRITER);
    // Columns in another order and case; C2 read as STRING, C4 as DOUBLE, a column the
    // writer lacks (MISSING) reads as null.
    let cols = fields(&[
        ("C5", DataType::Utf8),
        ("C2", DataType::Utf8),
        ("C3", DataType::Int64),
        ("C4", DataType::Float64),
        ("C1", DataType::Boolean),
        ("E", DataType::Utf8),
        ("TS", DataType::Timestamp(TimeUnit::Millisecond, None)),
        ("MISSING", DataType::Int32),
    ]);
    let mut d = new_decoder_with(&spec(None), Role::Value, &cols, Some(&r)).unwrap();
    d.append(Some(&framed(id, WRITER, writer_value(Some("hello"))))).unwrap();
    d.append(Some(&framed(id, WRITER, writer_value(None)))).unwrap();
    d.append(None).unwrap();
    assert!(d.last_was_null());
    let out = d.finish();
    let s = |i: usize| out[i].as_any().downcast_ref::<StringArray>().unwrap().clone();
    assert_eq!(s(0).value(0), "hello");
    assert!(s(0).is_null(1));
    assert_eq!(s(1).value(0), "7");
    assert_eq!(out[2].as_any().downcast_ref::<Int64Array>().unwrap().value(0), 400_000_000_000);
    assert_eq!(out[3].as_any().downcast_ref::<Float64Array>().unwrap().value(0), 1.5);
    assert!(out[4].as_boolean().value(0));
    assert_eq!(s(5).value(1), "HEARTS");
    assert_eq!(out[6].as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>().value(0), 1500);
    assert!(out[7].is_null(0) && out[7].is_null(1));
    assert_eq!(out[0].len(), 3);
    assert!(out.iter().all(|c| c.is_null(2)));
}

#[test]
fn bad_records_name_the_schema_id_and_keep_rows_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let id = register(&r, "t-value", WRITER);
    let cols = fields(&[("C2", DataType::Int32)]);
    let mut d = new_decoder_with(&spec(None), Role::Value, &cols, Some(&r)).unwrap();
    let good = framed(id, WRITER, writer_value(None));
    let e = d.append(Some(&good[..good.len() - 3])).unwrap_err();
    assert!(e.to_string().starts_with(&format!("schema id {id}: ")), "{e}");
    let e = d.append(Some(&framed(id + 40, WRITER, writer_value(None)))).unwrap_err();
    assert_eq!(e.to_string(), format!("schema id {}: schema id {} not found", id + 40, id + 40));
    let e = d.append(Some(b"{\"a\":1}")).unwrap_err();
    assert!(e.to_string().starts_with("expected the schema registry wire format"), "{e}");
    d.append(Some(&good)).unwrap();
    let out = d.finish();
    let c = out[0].as_primitive::<Int32Type>();
    assert_eq!(c.len(), 4);
    assert!(c.is_null(0) && c.is_null(1) && c.is_null(2));
    assert_eq!(c.value(3), 7);
}

#[test]
fn incompatible_writer_types_are_refused_per_schema() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let id = register(&r, "t-value", WRITER);
    // c5 is a string: it cannot fill an INT.
    let mut d = new_decoder_with(&spec(None), Role::Value, &fields(&[("C5", DataType::Int32)]), Some(&r)).unwrap();
    let e = d.append(Some(&framed(id, WRITER, writer_value(Some("x"))))).unwrap_err();
    assert_eq!(e.to_string(), format!("schema id {id}: field c5: cannot read Avro string as INTEGER"));
}

fn all_types() -> Fields {
    let item = Field::new("item", DataType::Utf8, true);
    let map = map_type(Field::new("value", DataType::Int64, true));
    fields(&[
        ("B", DataType::Boolean),
        ("I", DataType::Int32),
        ("L", DataType::Int64),
        ("D", DataType::Float64),
        ("DEC", DataType::Decimal128(5, 2)),
        ("S", DataType::Utf8),
        ("BY", DataType::Binary),
        ("TS", DataType::Timestamp(TimeUnit::Millisecond, None)),
        ("DT", DataType::Date32),
        ("TM", DataType::Time32(TimeUnit::Millisecond)),
        ("ARR", DataType::List(item.into())),
        ("M", map),
        ("ST", DataType::Struct(fields(&[("X", DataType::Int32), ("Y", DataType::Utf8)]))),
    ])
}

use super::schema::map_type;

#[test]
fn round_trips_every_type_through_the_generated_schema() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let cols = all_types();
    let schema = generate(&cols, false, None);
    assert_eq!(schema["name"], "KsqlDataSourceSchema");
    assert_eq!(schema["namespace"], "io.confluent.ksql.avro_schemas");
    assert_eq!(schema["fields"][12]["type"][1]["name"], "KsqlDataSourceSchema_ST");
    let id = register(&r, "o-value", &schema.to_string());
    // Rows written by apache-avro with our schema, read by our decoder, written by our
    // encoder, read again by apache-avro: the values survive.
    let s = apache_avro::Schema::parse_str(&schema.to_string()).unwrap();
    let opt = |v: AV| AV::Union(1, Box::new(v));
    let row = AV::Record(vec![
        ("B".into(), opt(AV::Boolean(true))),
        ("I".into(), opt(AV::Int(-3))),
        ("L".into(), opt(AV::Long(1 << 40))),
        ("D".into(), opt(AV::Double(2.25))),
        ("DEC".into(), opt(AV::Decimal(apache_avro::Decimal::from(12345i64.to_be_bytes().to_vec())))),
        ("S".into(), opt(AV::String("é".into()))),
        ("BY".into(), opt(AV::Bytes(vec![0, 255]))),
        ("TS".into(), opt(AV::TimestampMillis(1_700_000_000_000))),
        ("DT".into(), opt(AV::Date(19000))),
        ("TM".into(), opt(AV::TimeMillis(3_600_000))),
        ("ARR".into(), opt(AV::Array(vec![AV::Union(1, Box::new(AV::String("a".into()))), AV::Union(0, Box::new(AV::Null))]))),
        ("M".into(), opt(AV::Map([("k".to_string(), AV::Union(1, Box::new(AV::Long(9))))].into()))),
        (
            "ST".into(),
            opt(AV::Record(vec![("X".into(), AV::Union(1, Box::new(AV::Int(1)))), ("Y".into(), AV::Union(0, Box::new(AV::Null)))])),
        ),
    ]);
    let nulls = AV::Record(
        ["B", "I", "L", "D", "DEC", "S", "BY", "TS", "DT", "TM", "ARR", "M", "ST"].iter().map(|n| (n.to_string(), AV::Union(0, Box::new(AV::Null)))).collect(),
    );
    let mut d = new_decoder_with(&spec(None), Role::Value, &cols, Some(&r)).unwrap();
    for v in [row.clone(), nulls.clone()] {
        let mut b = Vec::new();
        frame(id, &mut b);
        b.extend(apache_avro::to_avro_datum(&s, v).unwrap());
        d.append(Some(&b)).unwrap();
    }
    let out = d.finish();
    assert_eq!(out[4].as_any().downcast_ref::<Decimal128Array>().unwrap().value(0), 12345);
    assert_eq!(out[6].as_any().downcast_ref::<BinaryArray>().unwrap().value(0), &[0, 255]);
    assert_eq!(out[10].as_any().downcast_ref::<ListArray>().unwrap().value(0).len(), 2);
    assert_eq!(out[11].as_any().downcast_ref::<MapArray>().unwrap().value(0).len(), 1);
    assert_eq!(out[12].as_any().downcast_ref::<StructArray>().unwrap().column(0).as_primitive::<Int32Type>().value(0), 1);
    let mut e = new_encoder_with(&spec(Some(id)), Role::Value, &cols, Some(&r)).unwrap();
    let mut batch = EncodedBatch::new();
    e.encode(&out, &mut batch).unwrap();
    for (i, expected) in [row, nulls].into_iter().enumerate() {
        let bytes = batch.get(i).unwrap();
        assert_eq!(unframe(bytes).unwrap().0, id);
        let back = apache_avro::from_avro_datum(&s, &mut &bytes[5..], None).unwrap();
        assert_eq!(back, expected, "row {i}");
    }
}

#[test]
fn writes_with_a_registered_schema_using_defaults_for_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let text = r#"{"type":"record","name":"T","namespace":"com.acme","fields":[
        {"name":"eventID","type":"string"},{"name":"amount","type":"int","default":0},{"name":"note","type":["null","string"],"default":null}]}"#;
    let id = register(&r, "m-value", text);
    let cols = fields(&[("eventID", DataType::Utf8), ("AMOUNT", DataType::Int32)]);
    let mut e = new_encoder_with(&spec(Some(id)), Role::Value, &cols, Some(&r)).unwrap();
    let mut batch = EncodedBatch::new();
    let ids: Arc<dyn Array> = Arc::new(StringArray::from(vec![Some("1"), None]));
    let amounts: Arc<dyn Array> = Arc::new(Int32Array::from(vec![None, Some(5)]));
    let err = e.encode(&[ids.clone(), amounts.clone()], &mut batch).unwrap_err();
    assert_eq!(err.to_string(), format!("row 1: schema id {id}: null value for a non-nullable field"));
    let mut batch = EncodedBatch::new();
    e.encode(&[ids.slice(0, 1), amounts.slice(0, 1)], &mut batch).unwrap();
    let s = apache_avro::Schema::parse_str(text).unwrap();
    let back = apache_avro::from_avro_datum(&s, &mut &batch.get(0).unwrap()[5..], None).unwrap();
    assert_eq!(
        back,
        AV::Record(vec![("eventID".into(), AV::String("1".into())), ("amount".into(), AV::Int(0)), ("note".into(), AV::Union(0, Box::new(AV::Null)))])
    );
}

#[test]
fn unwrapped_values_keys_and_inference() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let id = register(&r, "k-key", r#"{"type":"int"}"#);
    let cols = fields(&[("K", DataType::Int64)]);
    let mut d = new_decoder_with(&spec(None), Role::Key, &cols, Some(&r)).unwrap();
    d.append(Some(&framed(id, r#""int""#, AV::Int(10)))).unwrap();
    assert_eq!(d.finish()[0].as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0), 10);
    assert_eq!(generate(&cols, true, None), serde_json::json!("long"));
    let inferred = infer_fields(WRITER, "ROWVAL", false, true).unwrap();
    let names: Vec<&str> = inferred.iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["C1", "C2", "C3", "C4", "C5", "SKIPPED", "E", "TS"]);
    assert_eq!(inferred[3].data_type(), &DataType::Float64);
    assert_eq!(infer_fields(WRITER, "ROWVAL", true, true).unwrap()[0].name(), "ROWVAL");
    let union = r#"{"type":"record","name":"u","fields":[{"name":"u","type":["null","int","string"]}]}"#;
    assert_eq!(
        infer_fields(union, "ROWVAL", false, true).unwrap()[0].data_type(),
        &DataType::Struct(fields(&[("INT", DataType::Int32), ("STRING", DataType::Utf8)]))
    );
}

#[test]
fn checks_avro_names_and_map_keys() {
    let bad = fields(&[("1Avro", DataType::Int32)]);
    let e = crate::format::check_columns(&spec(None), Role::Value, &bad).unwrap_err();
    assert_eq!(e.to_string(), "Schema is not compatible with Avro: Illegal initial character: 1Avro");
    let m = fields(&[("M", map_type_keyed(DataType::Int32))]);
    let e = crate::format::check_columns(&spec(None), Role::Value, &m).unwrap_err();
    assert!(e.to_string().starts_with("Avro only supports MAPs with STRING keys"), "{e}");
}

fn map_type_keyed(k: DataType) -> DataType {
    let entries = Field::new("entries", DataType::Struct(vec![Field::new("key", k, false), Field::new("value", DataType::Int32, true)].into()), false);
    DataType::Map(entries.into(), false)
}
