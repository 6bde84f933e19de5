//! ksqlDB's SQL types: their syntax, their Arrow representation and how they print.
//!
//! | SQL | Arrow |
//! |---|---|
//! | BOOLEAN | Boolean |
//! | INT, INTEGER | Int32 |
//! | BIGINT | Int64 |
//! | DOUBLE | Float64 |
//! | DECIMAL(p, s) | Decimal128(p, s) |
//! | STRING, VARCHAR | Utf8 |
//! | BYTES | Binary |
//! | TIMESTAMP | Timestamp(ms) |
//! | DATE | Date32 |
//! | TIME | Time32(ms) |
//! | ARRAY<T> | List |
//! | MAP<K, V> | Map |
//! | STRUCT<a T, ...> | Struct |

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use crate::error::{invalid, PlanError, Result};

/// A type as written in a statement (custom type names not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SqlType {
    /// BOOLEAN
    Boolean,
    /// INT / INTEGER
    Int,
    /// BIGINT
    Bigint,
    /// DOUBLE
    Double,
    /// DECIMAL(precision, scale)
    Decimal(u8, i8),
    /// STRING / VARCHAR
    String,
    /// BYTES
    Bytes,
    /// TIMESTAMP
    Timestamp,
    /// DATE
    Date,
    /// TIME
    Time,
    /// ARRAY<T>
    Array(Box<SqlType>),
    /// MAP<K, V>
    Map(Box<SqlType>, Box<SqlType>),
    /// STRUCT<name T, ...>
    Struct(Vec<(String, SqlType)>),
    /// A name registered with CREATE TYPE.
    Custom(String),
}

impl SqlType {
    /// The Arrow type, resolving custom type names through `types`.
    pub fn to_arrow(&self, types: &BTreeMap<String, SqlType>) -> Result<DataType> {
        Ok(match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::Int => DataType::Int32,
            SqlType::Bigint => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal(p, s) => {
                if *p == 0 || *p > 38 {
                    return Err(invalid(format!("DECIMAL precision must be between 1 and 38, got {p}")));
                }
                if *s < 0 || *s as u8 > *p {
                    return Err(invalid(format!(
                        "DECIMAL scale must be between 0 and the precision ({p}), got {s}"
                    )));
                }
                DataType::Decimal128(*p, *s)
            }
            SqlType::String => DataType::Utf8,
            SqlType::Bytes => DataType::Binary,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            SqlType::Date => DataType::Date32,
            SqlType::Time => DataType::Time32(TimeUnit::Millisecond),
            SqlType::Array(t) => list_of(t.to_arrow(types)?),
            SqlType::Map(k, v) => map_of(k.to_arrow(types)?, v.to_arrow(types)?),
            SqlType::Struct(fields) => {
                let mut fs = Vec::with_capacity(fields.len());
                for (n, t) in fields {
                    if fs.iter().any(|f: &Field| f.name() == n) {
                        return Err(invalid(format!("duplicate field \"{n}\" in STRUCT")));
                    }
                    fs.push(Field::new(n, t.to_arrow(types)?, true));
                }
                DataType::Struct(Fields::from(fs))
            }
            SqlType::Custom(name) => match types.get(name) {
                Some(t) => t.to_arrow(types)?,
                None => return Err(PlanError::UnknownObject { kind: "type", name: name.clone() }),
            },
        })
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => write!(f, "BOOLEAN"),
            SqlType::Int => write!(f, "INTEGER"),
            SqlType::Bigint => write!(f, "BIGINT"),
            SqlType::Double => write!(f, "DOUBLE"),
            SqlType::Decimal(p, s) => write!(f, "DECIMAL({p}, {s})"),
            SqlType::String => write!(f, "STRING"),
            SqlType::Bytes => write!(f, "BYTES"),
            SqlType::Timestamp => write!(f, "TIMESTAMP"),
            SqlType::Date => write!(f, "DATE"),
            SqlType::Time => write!(f, "TIME"),
            SqlType::Array(t) => write!(f, "ARRAY<{t}>"),
            SqlType::Map(k, v) => write!(f, "MAP<{k}, {v}>"),
            SqlType::Struct(fs) => {
                write!(f, "STRUCT<")?;
                for (i, (n, t)) in fs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "`{n}` {t}")?;
                }
                write!(f, ">")
            }
            SqlType::Custom(n) => write!(f, "{n}"),
        }
    }
}

/// The Arrow type of `ARRAY<item>`.
pub fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// The Arrow type of `MAP<key, value>`.
pub fn map_of(key: DataType, value: DataType) -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![Field::new("key", key, false), Field::new("value", value, true)])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// How ksqlDB prints an Arrow type (`INTEGER`, `ARRAY<STRING>`, `STRUCT<`A` INTEGER>`).
pub fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => "INTEGER".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "BIGINT".into(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "BYTES".into()
        }
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("ARRAY<{}>", type_name(f.data_type()))
        }
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("MAP<{}, {}>", type_name(kv[0].data_type()), type_name(kv[1].data_type()))
            }
            _ => "MAP".into(),
        },
        DataType::Struct(fs) => {
            let inner: Vec<String> = fs.iter().map(|f| format!("`{}` {}", f.name(), type_name(f.data_type()))).collect();
            format!("STRUCT<{}>", inner.join(", "))
        }
        DataType::Null => "NULL".into(),
        other => format!("{other}"),
    }
}

/// The `SqlType` of an Arrow type produced by this module (for CREATE ... AS SELECT schemas).
pub fn from_arrow(dt: &DataType) -> Option<SqlType> {
    Some(match dt {
        DataType::Boolean => SqlType::Boolean,
        DataType::Int32 => SqlType::Int,
        DataType::Int64 => SqlType::Bigint,
        DataType::Float64 => SqlType::Double,
        DataType::Decimal128(p, s) => SqlType::Decimal(*p, *s),
        DataType::Utf8 => SqlType::String,
        DataType::Binary => SqlType::Bytes,
        DataType::Timestamp(TimeUnit::Millisecond, None) => SqlType::Timestamp,
        DataType::Date32 => SqlType::Date,
        DataType::Time32(TimeUnit::Millisecond) => SqlType::Time,
        DataType::List(f) => SqlType::Array(Box::new(from_arrow(f.data_type())?)),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => SqlType::Map(
                Box::new(from_arrow(kv[0].data_type())?),
                Box::new(from_arrow(kv[1].data_type())?),
            ),
            _ => return None,
        },
        DataType::Struct(fs) => SqlType::Struct(
            fs.iter().map(|f| Some((f.name().clone(), from_arrow(f.data_type())?))).collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

/// True for the types this engine uses to represent SQL values (canonical Arrow types).
pub fn is_canonical(dt: &DataType) -> bool {
    from_arrow(dt).is_some()
}

/// The canonical type for an Arrow type that a DataFusion function may return (e.g. Float32 ->
/// DOUBLE, Utf8View -> STRING, Timestamp(ns) -> TIMESTAMP). `None` when there is none.
pub fn canonical(dt: &DataType) -> Option<DataType> {
    Some(match dt {
        DataType::Boolean | DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Utf8 | DataType::Binary => {
            dt.clone()
        }
        DataType::Null => DataType::Null,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 | DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 => DataType::Float64,
        DataType::Decimal128(p, s) => DataType::Decimal128(*p, (*s).max(0)),
        DataType::Decimal256(p, s) => DataType::Decimal128((*p).min(38), (*s).clamp(0, 38)),
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => DataType::Binary,
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Date32 | DataType::Date64 => DataType::Date32,
        DataType::Time32(_) | DataType::Time64(_) => DataType::Time32(TimeUnit::Millisecond),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => list_of(canonical(f.data_type())?),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => map_of(canonical(kv[0].data_type())?, canonical(kv[1].data_type())?),
            _ => return None,
        },
        DataType::Struct(fs) => DataType::Struct(
            fs.iter()
                .map(|f| Some(Field::new(f.name(), canonical(f.data_type())?, true)))
                .collect::<Option<Vec<_>>>()?
                .into(),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_types_print_like_ksqldb() {
        let t = SqlType::Map(
            Box::new(SqlType::String),
            Box::new(SqlType::Array(Box::new(SqlType::Struct(vec![("A".into(), SqlType::Int)])))),
        );
        let dt = t.to_arrow(&BTreeMap::new()).unwrap();
        assert_eq!(type_name(&dt), "MAP<STRING, ARRAY<STRUCT<`A` INTEGER>>>");
        assert_eq!(from_arrow(&dt), Some(t));
    }

    #[test]
    fn decimal_bounds_are_checked() {
        assert!(SqlType::Decimal(0, 0).to_arrow(&BTreeMap::new()).is_err());
        assert!(SqlType::Decimal(4, 5).to_arrow(&BTreeMap::new()).is_err());
        assert_eq!(SqlType::Decimal(4, 2).to_arrow(&BTreeMap::new()).unwrap(), DataType::Decimal128(4, 2));
    }
}
