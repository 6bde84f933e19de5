//! ksqlDB's mapping between Avro schemas and SQL (Arrow) types, both ways.
//!
//! Avro → SQL (schema inference): boolean → BOOLEAN, int → INT, long → BIGINT, float and double
//! → DOUBLE, string, enum and uuid → STRING, bytes and fixed → BYTES, decimal → DECIMAL, date →
//! DATE, time-millis/micros → TIME, timestamp-millis/micros (local too) → TIMESTAMP, array →
//! ARRAY, map → MAP<STRING, _>, record → STRUCT (field names upper-cased, as ksqlDB does), a
//! union of null and one type → that type, other unions → a STRUCT with one field per branch.
//!
//! SQL → Avro (the schemas Eddy registers): ksqlDB's `KsqlDataSourceSchema` records in namespace
//! `io.confluent.ksql.avro_schemas`, every field an optional union `["null", T]` with default
//! null, nested records named `<parent>_<FIELD>`, Connect's logical-type annotations on
//! DECIMAL, DATE, TIME and TIMESTAMP so that ksqlDB and Connect consumers read them back.

use std::collections::HashMap;

use apache_avro::schema::{Name, RecordSchema, Schema as Avro};
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use serde_json::{json, Map, Value};

use crate::format::types::{map_fields, type_name};

/// ksqlDB's namespace for the schemas it generates.
pub const KSQL_NAMESPACE: &str = "io.confluent.ksql.avro_schemas";
/// ksqlDB's record name for generated value schemas.
pub const KSQL_RECORD: &str = "KsqlDataSourceSchema";

/// Named types of a schema, to resolve `Ref`s.
pub(crate) type Names = HashMap<Name, Avro>;

/// Every named type defined in `schema`.
pub(crate) fn names_of(schema: &Avro) -> Names {
    fn walk(s: &Avro, out: &mut Names) {
        match s {
            Avro::Record(r) => {
                out.insert(r.name.clone(), s.clone());
                r.fields.iter().for_each(|f| walk(&f.schema, out));
            }
            Avro::Enum(e) => {
                out.insert(e.name.clone(), s.clone());
            }
            Avro::Fixed(f) => {
                out.insert(f.name.clone(), s.clone());
            }
            Avro::Array(a) => walk(&a.items, out),
            Avro::Map(m) => walk(&m.types, out),
            Avro::Union(u) => u.variants().iter().for_each(|v| walk(v, out)),
            Avro::Decimal(d) => walk(&d.inner, out),
            _ => {}
        }
    }
    let mut out = Names::new();
    walk(schema, &mut out);
    out
}

/// Follows a `Ref` to its definition.
pub(crate) fn deref<'a>(s: &'a Avro, names: &'a Names) -> &'a Avro {
    match s {
        Avro::Ref { name } => names.get(name).unwrap_or(s),
        _ => s,
    }
}

/// The non-null branches of a union, or the schema itself.
pub(crate) fn non_null<'a>(s: &'a Avro, names: &'a Names) -> Vec<&'a Avro> {
    match deref(s, names) {
        Avro::Union(u) => u.variants().iter().filter(|v| !matches!(v, Avro::Null)).map(|v| deref(v, names)).collect(),
        other => vec![other],
    }
}

/// The SQL type ksqlDB infers for an Avro schema; `None` for what it cannot represent (null,
/// recursion past 32 levels, durations).
pub(crate) fn to_arrow(s: &Avro, names: &Names, depth: usize, upper: bool) -> Result<DataType, String> {
    if depth > 32 {
        return Err("schema nests deeper than 32 levels (recursive types are not supported)".into());
    }
    let item = |s: &Avro| -> Result<Field, String> { Ok(Field::new("item", to_arrow(s, names, depth + 1, upper)?, true)) };
    Ok(match deref(s, names) {
        Avro::Boolean => DataType::Boolean,
        Avro::Int => DataType::Int32,
        Avro::Long => DataType::Int64,
        Avro::Float | Avro::Double => DataType::Float64,
        Avro::String | Avro::Enum(_) | Avro::Uuid => DataType::Utf8,
        Avro::Bytes | Avro::Fixed(_) => DataType::Binary,
        Avro::Decimal(d) => decimal_type(d.precision, d.scale)?,
        Avro::BigDecimal => return Err("big-decimal has no SQL type".into()),
        Avro::Date => DataType::Date32,
        Avro::TimeMillis | Avro::TimeMicros => DataType::Time32(TimeUnit::Millisecond),
        Avro::TimestampMillis
        | Avro::TimestampMicros
        | Avro::TimestampNanos
        | Avro::LocalTimestampMillis
        | Avro::LocalTimestampMicros
        | Avro::LocalTimestampNanos => DataType::Timestamp(TimeUnit::Millisecond, None),
        Avro::Array(a) => DataType::List(item(&a.items)?.into()),
        Avro::Map(m) => map_type(Field::new("value", to_arrow(&m.types, names, depth + 1, upper)?, true)),
        Avro::Record(r) => DataType::Struct(record_fields(r, names, depth + 1, upper)?),
        Avro::Union(_) => {
            let branches = non_null(s, names);
            match branches.as_slice() {
                [] => return Err("a union of only null has no SQL type".into()),
                [one] => to_arrow(one, names, depth + 1, upper)?,
                many => DataType::Struct(
                    many.iter()
                        .map(|b| Ok(Field::new(branch_name(b), to_arrow(b, names, depth + 1, upper)?, true)))
                        .collect::<Result<Fields, String>>()?,
                ),
            }
        }
        Avro::Null => return Err("null has no SQL type".into()),
        Avro::Duration => return Err("duration has no SQL type".into()),
        Avro::Ref { name } => return Err(format!("unknown named type {name}")),
    })
}

/// The columns of a record's fields, names upper-cased when `upper`.
pub(crate) fn record_fields(r: &RecordSchema, names: &Names, depth: usize, upper: bool) -> Result<Fields, String> {
    r.fields
        .iter()
        .map(|f| {
            let name = if upper { f.name.to_uppercase() } else { f.name.clone() };
            Ok(Field::new(name, to_arrow(&f.schema, names, depth, upper).map_err(|e| format!("field {}: {e}", f.name))?, true))
        })
        .collect()
}

/// The field name of a union branch in its STRUCT: the type name, upper-cased.
pub(crate) fn branch_name(b: &Avro) -> String {
    match b {
        Avro::Record(r) => r.name.name.to_uppercase(),
        Avro::Enum(e) => e.name.name.to_uppercase(),
        Avro::Fixed(f) => f.name.name.to_uppercase(),
        Avro::Ref { name } => name.name.to_uppercase(),
        other => {
            let k: apache_avro::schema::SchemaKind = other.into();
            format!("{k:?}").to_uppercase()
        }
    }
}

fn decimal_type(precision: usize, scale: usize) -> Result<DataType, String> {
    if !(1..=38).contains(&precision) || scale > precision {
        return Err(format!("decimal({precision}, {scale}) has no SQL type (precision 1 to 38, scale at most the precision)"));
    }
    Ok(DataType::Decimal128(precision as u8, scale as i8))
}

/// A MAP<STRING, value>.
pub fn map_type(value: Field) -> DataType {
    let entries = Field::new("entries", DataType::Struct(vec![Field::new("key", DataType::Utf8, false), value].into()), false);
    DataType::Map(entries.into(), false)
}

/// Checks that these columns can be written as Avro: map keys are strings, names are Avro names.
pub(crate) fn check_avro_columns(fields: &Fields) -> Result<(), (String, String)> {
    fn check(name: &str, ty: &DataType) -> Result<(), (String, String)> {
        if !valid_name(name) {
            return Err((name.to_string(), format!("Schema is not compatible with Avro: Illegal initial character: {name}")));
        }
        match ty {
            DataType::Map(entries, _) => {
                let (k, v) = map_fields(entries).expect("map entries");
                if k.data_type() != &DataType::Utf8 {
                    return Err((name.to_string(), format!("Avro only supports MAPs with STRING keys, got {}", type_name(ty))));
                }
                check_type(v.data_type())
            }
            other => check_type(other),
        }
    }
    fn check_type(ty: &DataType) -> Result<(), (String, String)> {
        match ty {
            DataType::List(item) => check_type(item.data_type()),
            DataType::Map(..) => check("value", ty),
            DataType::Struct(fs) => fs.iter().try_for_each(|f| check(f.name(), f.data_type())),
            _ => Ok(()),
        }
    }
    fields.iter().try_for_each(|f| check(f.name(), f.data_type()))
}

/// Whether `name` is a valid Avro name: `[A-Za-z_][A-Za-z0-9_]*`.
fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_') && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// The Avro schema ksqlDB generates for these columns, as JSON. `unwrapped`: the single column's
/// own schema (keys, `WRAP_SINGLE_VALUE=false`); else a record named `full_name` (default
/// `io.confluent.ksql.avro_schemas.KsqlDataSourceSchema`).
pub fn generate(fields: &Fields, unwrapped: bool, full_name: Option<&str>) -> Value {
    let full = full_name.map_or_else(|| format!("{KSQL_NAMESPACE}.{KSQL_RECORD}"), str::to_string);
    if unwrapped && fields.len() == 1 {
        let f = &fields[0];
        return type_schema(f.data_type(), &full);
    }
    record(fields, &full)
}

fn record(fields: &Fields, full: &str) -> Value {
    let (namespace, name) = match full.rsplit_once('.') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, full),
    };
    let members: Vec<Value> = fields
        .iter()
        .map(|f| {
            let t = type_schema(f.data_type(), &format!("{full}_{}", f.name()));
            json!({ "name": f.name(), "type": ["null", t], "default": null })
        })
        .collect();
    let mut r = Map::new();
    r.insert("type".into(), json!("record"));
    r.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        r.insert("namespace".into(), json!(ns));
    }
    r.insert("fields".into(), Value::Array(members));
    r.insert("connect.name".into(), json!(full));
    Value::Object(r)
}

/// The schema of one SQL type; `full` names a record it needs.
fn type_schema(ty: &DataType, full: &str) -> Value {
    let connect = |base: &str, name: &str, logical: &str| {
        json!({ "type": base, "connect.version": 1, "connect.name": format!("org.apache.kafka.connect.data.{name}"), "logicalType": logical })
    };
    match ty {
        DataType::Boolean => json!("boolean"),
        DataType::Int32 => json!("int"),
        DataType::Int64 => json!("long"),
        DataType::Float64 => json!("double"),
        DataType::Utf8 => json!("string"),
        DataType::Binary => json!("bytes"),
        DataType::Decimal128(p, s) => json!({
            "type": "bytes", "scale": s, "precision": p, "connect.version": 1,
            "connect.parameters": { "scale": s.to_string(), "connect.decimal.precision": p.to_string() },
            "connect.name": "org.apache.kafka.connect.data.Decimal", "logicalType": "decimal"
        }),
        DataType::Date32 => connect("int", "Date", "date"),
        DataType::Time32(_) => connect("int", "Time", "time-millis"),
        DataType::Timestamp(..) => connect("long", "Timestamp", "timestamp-millis"),
        DataType::List(item) => json!({ "type": "array", "items": ["null", type_schema(item.data_type(), full)] }),
        DataType::Map(entries, _) => {
            let (_, v) = map_fields(entries).expect("map entries");
            json!({ "type": "map", "values": ["null", type_schema(v.data_type(), &format!("{full}_MapValue"))] })
        }
        DataType::Struct(fs) => record(fs, full),
        other => panic!("type {other} passed check_columns but has no Avro schema"),
    }
}
