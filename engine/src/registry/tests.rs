use std::sync::Arc;

use storage::{FileLog, LogOptions, TopicLog};

use super::*;

fn open(dir: &std::path::Path) -> EmbeddedRegistry {
    let log: Arc<dyn TopicLog> = Arc::new(FileLog::open(&dir.join("topics"), LogOptions::default()).unwrap());
    EmbeddedRegistry::open(log).unwrap()
}

fn avro(text: &str) -> Schema {
    Schema::new(SchemaType::Avro, text)
}

const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
// Adds a field with a default: readable both ways.
const V2: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]}"#;
// Adds a field without a default: the new schema cannot read old data.
const V3: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"c","type":"long"}]}"#;

#[test]
fn registers_versions_and_reuses_ids() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path());
    let id1 = r.register("t-value", &avro(V1), None).unwrap();
    // The same schema with other spacing is the same schema: no new version.
    let spaced = V1.replace(',', " , ");
    assert_eq!(r.register("t-value", &avro(&spaced), None).unwrap(), id1);
    let id2 = r.register("t-value", &avro(V2), None).unwrap();
    assert_ne!(id1, id2);
    assert_eq!(r.versions("t-value").unwrap(), vec![1, 2]);
    // Another subject with the same schema shares its id.
    assert_eq!(r.register("u-value", &avro(V1), None).unwrap(), id1);
    assert_eq!(r.subjects().unwrap(), vec!["t-value".to_string(), "u-value".to_string()]);
    let latest = r.version("t-value", VersionRef::Latest).unwrap();
    assert_eq!((latest.version, latest.id), (2, id2));
    assert_eq!(r.lookup("t-value", &avro(V1)).unwrap().version, 1);
    assert_eq!(r.schema_by_id(id2).unwrap().schema, V2);
    assert!(matches!(r.schema_by_id(99), Err(RegistryError::SchemaNotFound { id: 99 })));
}

#[test]
fn refuses_incompatible_schemas_by_level() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path());
    r.register("s", &avro(V1), None).unwrap();
    let err = r.register("s", &avro(V3), None).unwrap_err();
    assert!(matches!(err, RegistryError::Incompatible { level: "BACKWARD", .. }), "{err}");
    assert!(!r.test_compatibility("s", &avro(V3), VersionRef::Latest).unwrap().is_empty());
    assert!(r.test_compatibility("s", &avro(V2), VersionRef::Latest).unwrap().is_empty());
    // FORWARD: the old schema must read new data; dropping a field without default breaks it.
    r.set_compatibility(Some("s"), Compatibility::Forward).unwrap();
    assert_eq!(r.compatibility(Some("s")).unwrap(), Compatibility::Forward);
    assert_eq!(r.compatibility(None).unwrap(), Compatibility::Backward);
    r.register("s", &avro(V3), None).unwrap();
    r.set_compatibility(None, Compatibility::None).unwrap();
    assert_eq!(r.compatibility(Some("other")).unwrap(), Compatibility::None);
}

#[test]
fn transitive_levels_check_every_version() {
    let level = Compatibility::BackwardTransitive;
    let none = r#"{"type":"record","name":"R","fields":[]}"#;
    let needs_a = V1;
    // Against only the latest (V1), a schema with "a" defaulted is fine; against the first
    // (no fields) a required field breaks backward compatibility.
    let required_a = avro(needs_a);
    assert!(check_compatibility(Compatibility::Backward, &required_a, &[avro(none), avro(V1)], &[]).unwrap().is_empty());
    assert!(!check_compatibility(level, &required_a, &[avro(none), avro(V1)], &[]).unwrap().is_empty());
}

#[test]
fn survives_reopen_and_soft_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let r = open(dir.path());
        r.set_compatibility(None, Compatibility::Full).unwrap();
        r.register("t-value", &avro(V1), None).unwrap()
    };
    let r = open(dir.path());
    assert_eq!(r.compatibility(None).unwrap(), Compatibility::Full);
    assert_eq!(r.version("t-value", VersionRef::Number(1)).unwrap().id, id);
    assert_eq!(r.delete_subject("t-value").unwrap(), vec![1]);
    assert!(matches!(r.versions("t-value"), Err(RegistryError::SubjectNotFound { .. })));
    // Ids outlive their subjects.
    assert_eq!(r.schema_by_id(id).unwrap().schema, V1);
    // Registering again starts a new version number.
    r.register("t-value", &avro(V1), None).unwrap();
    assert_eq!(r.versions("t-value").unwrap(), vec![2]);
}

#[test]
fn rejects_invalid_schemas_and_missing_references() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path());
    assert!(matches!(r.register("s", &avro("{\"type\":\"nope\"}"), None), Err(RegistryError::InvalidSchema { .. })));
    let mut p = Schema::new(SchemaType::Protobuf, "syntax = \"proto3\"; import \"other.proto\"; message M { int32 a = 1; }");
    p.references.push(SchemaReference { name: "other.proto".into(), subject: "other".into(), version: 1 });
    assert!(matches!(r.register("s", &p, None), Err(RegistryError::InvalidSchema { .. })));
    let bad = Schema::new(SchemaType::Protobuf, "syntax = \"proto3\"; message M { int32 a = ; }");
    assert!(matches!(r.register("p", &bad, None), Err(RegistryError::InvalidSchema { .. })));
}

#[test]
fn protobuf_fields_keep_their_types() {
    let v1 = Schema::new(SchemaType::Protobuf, "syntax = \"proto3\"; message M { int32 a = 1; string b = 2; }");
    let ok = Schema::new(SchemaType::Protobuf, "syntax = \"proto3\"; message M { int32 a = 1; string b = 2; bool c = 3; }");
    let bad = Schema::new(SchemaType::Protobuf, "syntax = \"proto3\"; message M { string a = 1; }");
    assert!(check_compatibility(Compatibility::Full, &ok, std::slice::from_ref(&v1), &[]).unwrap().is_empty());
    let why = check_compatibility(Compatibility::Backward, &bad, &[v1], &[]).unwrap();
    assert_eq!(why, vec!["field M#1 changed type from int32 to string".to_string()]);
}

#[test]
fn explicit_ids_are_taken_or_alias_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path());
    assert_eq!(r.register("a-key", &avro(r#""long""#), Some(101)).unwrap(), 101);
    // The same schema under another subject may ask for another id: both ids name it.
    assert_eq!(r.register("b-key", &avro(r#"{"type":"long"}"#), Some(201)).unwrap(), 201);
    assert_eq!(r.schema_by_id(201).unwrap().schema, r#"{"type":"long"}"#);
    // An id that holds another schema is refused; new ids continue after the largest one.
    assert!(matches!(r.register("c-value", &avro(V1), Some(101)), Err(RegistryError::IdTaken { id: 101 })));
    assert_eq!(r.register("c-value", &avro(V1), None).unwrap(), 202);
}
