//! The fixed mapping between ksqlDB SQL types and Arrow types, SQL names for messages, and
//! [`check_columns`]: which format can carry which columns in which role.

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use super::{FormatError, FormatKind, FormatSpec, Role};

/// The SQL name of an Arrow type of the fixed mapping (`INTEGER`, `DECIMAL(4, 2)`,
/// `ARRAY<STRING>`, `MAP<STRING, BIGINT>`, `STRUCT<A DOUBLE>`), or `None` when the type is not
/// part of the mapping.
pub fn sql_type_name(ty: &DataType) -> Option<String> {
    Some(match ty {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) if (1..=38).contains(p) && *s >= 0 && *s as u8 <= *p => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 => "STRING".into(),
        DataType::Binary => "BYTES".into(),
        DataType::Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time32(TimeUnit::Millisecond) => "TIME".into(),
        DataType::List(item) => format!("ARRAY<{}>", sql_type_name(item.data_type())?),
        DataType::Map(entries, _) => {
            let (k, v) = map_fields(entries)?;
            format!("MAP<{}, {}>", sql_type_name(k.data_type())?, sql_type_name(v.data_type())?)
        }
        DataType::Struct(fields) if !fields.is_empty() => {
            let mut s = String::from("STRUCT<");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(f.name());
                s.push(' ');
                s.push_str(&sql_type_name(f.data_type())?);
            }
            s.push('>');
            s
        }
        // STRUCT(): a struct without fields.
        DataType::Struct(_) => "STRUCT<>".into(),
        _ => return None,
    })
}

/// The SQL name of a type, or its Arrow name when it is outside the mapping.
pub(crate) fn type_name(ty: &DataType) -> String {
    sql_type_name(ty).unwrap_or_else(|| ty.to_string())
}

/// The key and value fields of a map's entries field.
pub(crate) fn map_fields(entries: &Field) -> Option<(&Field, &Field)> {
    match entries.data_type() {
        DataType::Struct(kv) if kv.len() == 2 => Some((&kv[0], &kv[1])),
        _ => None,
    }
}

/// See [`super::check_columns`].
pub(crate) fn check_columns(spec: &FormatSpec, role: Role, fields: &Fields) -> Result<(), FormatError> {
    let format = spec.kind.name();
    for f in fields.iter() {
        let Some(ty) = sql_type_name(f.data_type()) else {
            return Err(unsupported(format, f));
        };
        if role == Role::Key && contains_map(f.data_type()) {
            return Err(FormatError::MapInKey { column: f.name().clone(), ty });
        }
    }
    match spec.kind {
        FormatKind::None => {
            if !fields.is_empty() {
                return Err(FormatError::NoneWithColumns { columns: list(fields) });
            }
        }
        FormatKind::Kafka => {
            if fields.len() > 1 {
                return Err(FormatError::TooManyColumns { format, count: fields.len(), columns: list(fields) });
            }
            for f in fields.iter() {
                let ok = matches!(f.data_type(), DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Utf8 | DataType::Binary);
                if !ok {
                    return Err(unsupported(format, f));
                }
            }
        }
        FormatKind::Delimited => {
            if !spec.delimiter.is_ascii() || matches!(spec.delimiter, b'"' | b'\r' | b'\n') {
                return Err(FormatError::InvalidDelimiter { delimiter: char::from(spec.delimiter) });
            }
            for f in fields.iter() {
                if f.data_type().is_nested() {
                    return Err(unsupported(format, f));
                }
            }
        }
        FormatKind::Json | FormatKind::JsonSr => {
            for f in fields.iter() {
                if !json_map_keys_ok(f.data_type()) {
                    return Err(FormatError::JsonMapKey { column: f.name().clone(), ty: type_name(f.data_type()) });
                }
            }
        }
        FormatKind::Avro => super::avro::check_columns(fields)?,
        FormatKind::Protobuf | FormatKind::ProtobufNoSr => super::protobuf::check_columns(fields)?,
    }
    Ok(())
}

fn unsupported(format: &'static str, f: &Field) -> FormatError {
    FormatError::UnsupportedType { format, ty: type_name(f.data_type()), column: f.name().clone() }
}

/// `"A" INTEGER, "B" STRING`.
fn list(fields: &Fields) -> String {
    let cols: Vec<String> = fields.iter().map(|f| format!("\"{}\" {}", f.name(), type_name(f.data_type()))).collect();
    cols.join(", ")
}

fn contains_map(ty: &DataType) -> bool {
    match ty {
        DataType::Map(..) => true,
        DataType::List(item) => contains_map(item.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| contains_map(f.data_type())),
        _ => false,
    }
}

fn json_map_keys_ok(ty: &DataType) -> bool {
    match ty {
        DataType::Map(entries, _) => match map_fields(entries) {
            Some((k, v)) => k.data_type() == &DataType::Utf8 && json_map_keys_ok(v.data_type()),
            None => false,
        },
        DataType::List(item) => json_map_keys_ok(item.data_type()),
        DataType::Struct(fields) => fields.iter().all(|f| json_map_keys_ok(f.data_type())),
        _ => true,
    }
}
