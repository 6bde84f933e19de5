use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Float64Array, Int32Array, Int64Array, StringArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int32Type, Int64Type};
use prost::Message;
use prost_reflect::{DynamicMessage, Value};
use storage::{FileLog, LogOptions, TopicLog};

use super::*;
use crate::format::{new_decoder_with, new_encoder_with, FormatKind, Role};
use crate::registry::{EmbeddedRegistry, Schema};

fn registry(dir: &std::path::Path) -> Registry {
    let log: Arc<dyn TopicLog> = Arc::new(FileLog::open(&dir.join("topics"), LogOptions::default()).unwrap());
    Registry(Arc::new(EmbeddedRegistry::open(log).unwrap()))
}

fn fields(f: &[(&str, DataType)]) -> Fields {
    f.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect()
}

const TWO: &str = "syntax = \"proto3\"; message First { int32 a = 1; } message Second { string name = 1; uint32 n = 2; optional int64 o = 3; Inner inner = 4; message Inner { int32 x = 1; } }";

#[test]
fn decodes_the_message_the_indexes_name_with_proto3_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let id = r.register("t-value", &Schema::new(SchemaType::Protobuf, TWO), None).unwrap();
    let (_, file) = schema::compile(TWO, &[]).unwrap();
    let second = schema::message(&file, Some("Second")).unwrap();
    assert_eq!(schema::indexes(&second), vec![1]);
    let mut m = DynamicMessage::new(second.clone());
    m.set_field_by_name("name", Value::String("x".into()));
    let mut bytes = Vec::new();
    frame(id, &mut bytes);
    write_indexes(&[1], &mut bytes);
    m.encode(&mut bytes).unwrap();
    let cols = fields(&[("NAME", DataType::Utf8), ("N", DataType::Int64), ("O", DataType::Int64), ("INNER", DataType::Struct(fields(&[("X", DataType::Int32)])))]);
    let spec = FormatSpec::new(FormatKind::Protobuf);
    let mut d = new_decoder_with(&spec, Role::Value, &cols, Some(&r)).unwrap();
    d.append(Some(&bytes)).unwrap();
    let out = d.finish();
    assert_eq!(out[0].as_any().downcast_ref::<StringArray>().unwrap().value(0), "x");
    // No presence: the default. Presence (optional) or a message: null.
    assert_eq!(out[1].as_primitive::<Int64Type>().value(0), 0);
    assert!(out[2].is_null(0));
    assert!(out[3].is_null(0));
    // Bad message indexes name the schema id.
    let mut bad = Vec::new();
    frame(id, &mut bad);
    write_indexes(&[7], &mut bad);
    let e = d.append(Some(&bad)).unwrap_err();
    assert_eq!(e.to_string(), format!("schema id {id}: no message at indexes [7]"));
}

#[test]
fn round_trips_generated_schemas_framed_and_bare() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let inner = fields(&[("FOO", DataType::Int32)]);
    let cols = fields(&[
        ("I", DataType::Int32),
        ("S", DataType::Utf8),
        ("D", DataType::Float64),
        ("ST", DataType::Struct(inner.clone())),
        ("ARR", DataType::List(Field::new("item", DataType::Int64, true).into())),
    ]);
    let text = generate(&cols, None, Nullable::Default);
    assert!(text.contains("message ConnectDefault1 {"), "{text}");
    assert!(text.contains("ConnectDefault2 ST = 4;"), "{text}");
    let id = r.register("o-value", &Schema::new(SchemaType::Protobuf, text), None).unwrap();
    let i: ArrayRef = Arc::new(Int32Array::from(vec![Some(5), None]));
    let s: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
    let d: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.5), None]));
    let st: ArrayRef = Arc::new(StructArray::new(inner, vec![Arc::new(Int32Array::from(vec![Some(3), None])) as ArrayRef], Some(vec![true, false].into())));
    let arr: ArrayRef = Arc::new(datafusion::arrow::array::ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(1), Some(2)]), None]));
    let columns = vec![i, s, d, st, arr];
    for (kind, id) in [(FormatKind::Protobuf, Some(id)), (FormatKind::ProtobufNoSr, None)] {
        let spec = FormatSpec { schema_id: id, ..FormatSpec::new(kind) };
        let mut e = new_encoder_with(&spec, Role::Value, &cols, Some(&r)).unwrap();
        let mut batch = EncodedBatch::new();
        e.encode(&columns, &mut batch).unwrap();
        let mut dec = new_decoder_with(&spec, Role::Value, &cols, Some(&r)).unwrap();
        for entry in batch.iter() {
            dec.append(entry).unwrap();
        }
        let out = dec.finish();
        assert_eq!(out[0].as_primitive::<Int32Type>().values(), &[5, 0], "{kind:?}");
        assert_eq!(out[1].as_any().downcast_ref::<StringArray>().unwrap().value(1), "", "{kind:?}");
        let st = out[3].as_any().downcast_ref::<StructArray>().unwrap();
        assert_eq!(st.column(0).as_primitive::<Int32Type>().value(0), 3);
        assert!(st.is_null(1), "{kind:?}: a null message stays null");
        assert_eq!(out[4].as_list::<i32>().value(0).len(), 2);
    }
}

#[test]
fn infers_columns_and_refuses_non_string_map_keys() {
    let f = infer_fields("syntax = \"proto3\"; message C { float c1 = 1; uint32 c2 = 2; sint32 c4 = 4; }", &[], None, true).unwrap();
    let got: Vec<(String, DataType)> = f.iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
    assert_eq!(got, vec![("C1".into(), DataType::Float64), ("C2".into(), DataType::Int64), ("C4".into(), DataType::Int32)]);
    let wrapped = infer_fields("syntax = \"proto3\"; import \"google/protobuf/wrappers.proto\"; message W { google.protobuf.Int32Value v = 1; }", &[], None, false).unwrap();
    assert_eq!(wrapped[0].name(), "v");
    assert_eq!(wrapped[0].data_type(), &DataType::Int32);
    let m = DataType::Map(Field::new("entries", DataType::Struct(vec![Field::new("key", DataType::Int32, false), Field::new("value", DataType::Int32, true)].into()), false).into(), false);
    let e = crate::format::check_columns(&FormatSpec::new(FormatKind::Protobuf), Role::Value, &fields(&[("M", m)])).unwrap_err();
    assert_eq!(e.to_string(), "PROTOBUF format only supports MAP types with STRING keys");
    let _ = Int64Array::from(vec![1]);
}
