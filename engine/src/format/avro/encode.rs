//! Writing Arrow rows as Avro binary data for a writer schema: the schema (Eddy's own, or one
//! registered by someone else and named by `VALUE_SCHEMA_ID`) is compiled once against the
//! columns into a [`WPlan`]; record fields find their columns by name ignoring case, and a null
//! where the schema has no null branch writes the field's default (an error without one).

use apache_avro::schema::Schema as Avro;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array, ListArray,
    MapArray, StringArray, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, Fields, Time32MillisecondType, TimestampMillisecondType};
use serde_json::Value;

use super::schema::{deref, Names};
use crate::format::types::type_name;

/// How to write one value of a writer schema.
#[derive(Debug, Clone)]
pub(crate) enum WPlan {
    Null,
    Bool,
    Int,
    /// A long; `mul` scales millis to micros/nanos.
    Long { mul: i64 },
    Float,
    Double,
    Str,
    Enum(Vec<String>),
    Bytes,
    Fixed(usize),
    Decimal { fixed: Option<usize> },
    Array(Box<WPlan>),
    Map(Box<WPlan>),
    /// Per writer field: the source column/child (or none), its plan and its default.
    Record(Vec<(Option<usize>, WPlan, Option<Value>)>),
    /// Branches; which one a null takes; which one other values take.
    Union { branches: Vec<WPlan>, null: Option<usize>, value: usize },
    /// A field of the schema that no column feeds and that has neither a default nor a null
    /// branch: every row fails, naming it.
    Missing(String),
}

/// Compiles writer schema `w` for values of type `t`.
pub(crate) fn compile(w: &Avro, t: &DataType, names: &Names) -> Result<WPlan, String> {
    compile_type(w, t, names, 0)
}

fn compile_type(w: &Avro, t: &DataType, names: &Names, depth: usize) -> Result<WPlan, String> {
    if depth > 64 {
        return Err("schema nests deeper than 64 levels".into());
    }
    let w = deref(w, names);
    let bad = || {
        let k: apache_avro::schema::SchemaKind = w.into();
        format!("cannot write {} as Avro {}", type_name(t), format!("{k:?}").to_lowercase())
    };
    Ok(match (w, t) {
        (Avro::Union(u), _) => {
            let branches: Vec<&Avro> = u.variants().iter().collect();
            let null = branches.iter().position(|b| matches!(b, Avro::Null));
            let mut plans = Vec::new();
            let mut value = None;
            for b in &branches {
                match compile_type(b, t, names, depth + 1) {
                    Ok(p) => {
                        if value.is_none() && !matches!(b, Avro::Null) {
                            value = Some(plans.len());
                        }
                        plans.push(p);
                    }
                    Err(_) => plans.push(WPlan::Null),
                }
            }
            let value = value.ok_or_else(|| format!("no branch of the union can hold {}", type_name(t)))?;
            WPlan::Union { branches: plans, null, value }
        }
        (Avro::Null, _) => WPlan::Null,
        (Avro::Boolean, DataType::Boolean) => WPlan::Bool,
        (Avro::Int | Avro::Date | Avro::TimeMillis, DataType::Int32 | DataType::Date32 | DataType::Time32(_)) => WPlan::Int,
        (Avro::Long, DataType::Int32 | DataType::Int64 | DataType::Timestamp(..)) => WPlan::Long { mul: 1 },
        (Avro::TimestampMillis | Avro::LocalTimestampMillis, DataType::Int64 | DataType::Timestamp(..)) => WPlan::Long { mul: 1 },
        (Avro::TimestampMicros | Avro::LocalTimestampMicros, DataType::Timestamp(..)) => WPlan::Long { mul: 1000 },
        (Avro::TimeMicros, DataType::Time32(_)) => WPlan::Long { mul: 1000 },
        (Avro::Float, DataType::Float64 | DataType::Int32 | DataType::Int64) => WPlan::Float,
        (Avro::Double, DataType::Float64 | DataType::Int32 | DataType::Int64) => WPlan::Double,
        (Avro::String | Avro::Uuid, DataType::Utf8) => WPlan::Str,
        (Avro::Enum(e), DataType::Utf8) => WPlan::Enum(e.symbols.clone()),
        (Avro::Bytes, DataType::Binary) => WPlan::Bytes,
        (Avro::Fixed(f), DataType::Binary) => WPlan::Fixed(f.size),
        (Avro::Decimal(d), DataType::Decimal128(_, s)) => {
            if d.scale as i8 != *s {
                return Err(format!("DECIMAL scale {s} differs from the schema's scale {}", d.scale));
            }
            let fixed = match deref(&d.inner, names) {
                Avro::Fixed(f) => Some(f.size),
                _ => None,
            };
            WPlan::Decimal { fixed }
        }
        (Avro::Array(a), DataType::List(item)) => WPlan::Array(Box::new(compile_type(&a.items, item.data_type(), names, depth + 1)?)),
        (Avro::Map(m), DataType::Map(entries, _)) => {
            let DataType::Struct(kv) = entries.data_type() else { return Err(bad()) };
            if kv[0].data_type() != &DataType::Utf8 {
                return Err("Avro only supports MAPs with STRING keys".into());
            }
            WPlan::Map(Box::new(compile_type(&m.types, kv[1].data_type(), names, depth + 1)?))
        }
        (Avro::Record(r), DataType::Struct(fs)) => compile_record(r, fs, names, depth)?,
        _ => return Err(bad()),
    })
}

/// A record written from columns `fs`.
pub(crate) fn compile_record(r: &apache_avro::schema::RecordSchema, fs: &Fields, names: &Names, depth: usize) -> Result<WPlan, String> {
    let mut out = Vec::with_capacity(r.fields.len());
    for f in &r.fields {
        let pos = fs.iter().position(|c| c.name() == &f.name).or_else(|| fs.iter().position(|c| c.name().eq_ignore_ascii_case(&f.name)));
        match pos {
            Some(i) => {
                let p = compile_type(&f.schema, fs[i].data_type(), names, depth + 1).map_err(|e| format!("field {}: {e}", f.name))?;
                out.push((Some(i), p, f.default.clone()));
            }
            None => {
                // No column: the field's default, or null when it can be; else rows fail.
                if f.default.is_none() && !nullable(&f.schema, names) {
                    out.push((None, WPlan::Missing(f.name.clone()), None));
                } else {
                    out.push((None, default_plan(&f.schema, names, depth + 1)?, f.default.clone()));
                }
            }
        }
    }
    Ok(WPlan::Record(out))
}

/// The plan of a schema written from its default value only (no column).
fn default_plan(s: &Avro, names: &Names, depth: usize) -> Result<WPlan, String> {
    if depth > 64 {
        return Err("schema nests deeper than 64 levels".into());
    }
    let s = deref(s, names);
    Ok(match s {
        Avro::Null => WPlan::Null,
        Avro::Boolean => WPlan::Bool,
        Avro::Int | Avro::Date | Avro::TimeMillis => WPlan::Int,
        Avro::Long | Avro::TimeMicros | Avro::TimestampMillis | Avro::TimestampMicros | Avro::TimestampNanos | Avro::LocalTimestampMillis
        | Avro::LocalTimestampMicros | Avro::LocalTimestampNanos => WPlan::Long { mul: 1 },
        Avro::Float => WPlan::Float,
        Avro::Double => WPlan::Double,
        Avro::String | Avro::Uuid => WPlan::Str,
        Avro::Enum(e) => WPlan::Enum(e.symbols.clone()),
        Avro::Bytes | Avro::BigDecimal => WPlan::Bytes,
        Avro::Fixed(f) => WPlan::Fixed(f.size),
        Avro::Decimal(d) => WPlan::Decimal {
            fixed: match deref(&d.inner, names) {
                Avro::Fixed(f) => Some(f.size),
                _ => None,
            },
        },
        Avro::Array(a) => WPlan::Array(Box::new(default_plan(&a.items, names, depth + 1)?)),
        Avro::Map(m) => WPlan::Map(Box::new(default_plan(&m.types, names, depth + 1)?)),
        Avro::Record(r) => WPlan::Record(
            r.fields.iter().map(|f| Ok((None, default_plan(&f.schema, names, depth + 1)?, f.default.clone()))).collect::<Result<_, String>>()?,
        ),
        Avro::Union(u) => {
            let branches: Vec<WPlan> = u.variants().iter().map(|b| default_plan(b, names, depth + 1)).collect::<Result<_, _>>()?;
            let null = u.variants().iter().position(|b| matches!(b, Avro::Null));
            WPlan::Union { branches, null, value: 0 }
        }
        Avro::Duration => return Err("duration fields cannot be written".into()),
        Avro::Ref { name } => return Err(format!("unknown named type {name}")),
    })
}

fn nullable(s: &Avro, names: &Names) -> bool {
    match deref(s, names) {
        Avro::Null => true,
        Avro::Union(u) => u.variants().iter().any(|v| matches!(v, Avro::Null)),
        _ => false,
    }
}

/// Writes an Avro long (zig-zag varint).
pub(crate) fn long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Writes row `row` of `col` with plan `p`.
pub(crate) fn write(p: &WPlan, col: &ArrayRef, row: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if let WPlan::Union { branches, null, value } = p {
        if col.is_null(row) {
            let n = null.ok_or("null value for a field without a null branch")?;
            long(out, n as i64);
            return Ok(());
        }
        long(out, *value as i64);
        return write(&branches[*value], col, row, out);
    }
    if col.is_null(row) {
        return match p {
            WPlan::Null => Ok(()),
            _ => Err("null value for a non-nullable field".into()),
        };
    }
    match p {
        WPlan::Null => {}
        WPlan::Bool => out.push(u8::from(col.as_any().downcast_ref::<BooleanArray>().expect("bool").value(row))),
        WPlan::Int => long(out, i64::from(int32(col, row))),
        WPlan::Long { mul } => long(out, int64(col, row)? * mul),
        WPlan::Float => out.extend_from_slice(&(float64(col, row) as f32).to_le_bytes()),
        WPlan::Double => out.extend_from_slice(&float64(col, row).to_le_bytes()),
        WPlan::Str => bytes(out, col.as_any().downcast_ref::<StringArray>().expect("utf8").value(row).as_bytes()),
        WPlan::Enum(symbols) => {
            let s = col.as_any().downcast_ref::<StringArray>().expect("utf8").value(row);
            let i = symbols.iter().position(|x| x == s).ok_or_else(|| format!("\"{s}\" is not a symbol of the enum"))?;
            long(out, i as i64);
        }
        WPlan::Bytes => bytes(out, col.as_any().downcast_ref::<BinaryArray>().expect("binary").value(row)),
        WPlan::Fixed(n) => {
            let b = col.as_any().downcast_ref::<BinaryArray>().expect("binary").value(row);
            if b.len() != *n {
                return Err(format!("BYTES of length {} for a fixed({n})", b.len()));
            }
            out.extend_from_slice(b);
        }
        WPlan::Decimal { fixed, .. } => {
            let v = col.as_any().downcast_ref::<Decimal128Array>().expect("decimal").value(row);
            let be = v.to_be_bytes();
            match fixed {
                Some(n) => {
                    let n = (*n).min(16);
                    out.extend_from_slice(&be[16 - n..]);
                }
                None => {
                    // The shortest two's complement form.
                    let mut start = 0;
                    while start < 15 && ((be[start] == 0 && be[start + 1] & 0x80 == 0) || (be[start] == 0xff && be[start + 1] & 0x80 != 0)) {
                        start += 1;
                    }
                    bytes(out, &be[start..]);
                }
            }
        }
        WPlan::Array(item) => {
            let l = col.as_any().downcast_ref::<ListArray>().expect("list");
            let (s, e) = (l.value_offsets()[row] as usize, l.value_offsets()[row + 1] as usize);
            if e > s {
                long(out, (e - s) as i64);
                let values = l.values();
                for i in s..e {
                    write(item, values, i, out)?;
                }
            }
            long(out, 0);
        }
        WPlan::Map(value) => {
            let m = col.as_any().downcast_ref::<MapArray>().expect("map");
            let (s, e) = (m.value_offsets()[row] as usize, m.value_offsets()[row + 1] as usize);
            if e > s {
                long(out, (e - s) as i64);
                let keys = m.keys().as_any().downcast_ref::<StringArray>().expect("utf8 keys");
                let values = m.values();
                for i in s..e {
                    bytes(out, keys.value(i).as_bytes());
                    write(value, values, i, out)?;
                }
            }
            long(out, 0);
        }
        WPlan::Record(fields) => {
            let st = col.as_any().downcast_ref::<StructArray>().expect("struct");
            write_record(fields, st.columns(), row, out)?;
        }
        WPlan::Union { .. } => unreachable!("handled above"),
        WPlan::Missing(name) => return Err(format!("the schema's field {name} has no column and no default")),
    }
    Ok(())
}

/// Writes the fields of a record whose columns are `cols`.
pub(crate) fn write_record(fields: &[(Option<usize>, WPlan, Option<Value>)], cols: &[ArrayRef], row: usize, out: &mut Vec<u8>) -> Result<(), String> {
    for (i, p, default) in fields {
        let res = match i {
            Some(i) if !(cols[*i].is_null(row) && default.is_some() && !accepts_null(p)) => write(p, &cols[*i], row, out),
            _ => write_default(p, default.as_ref(), out),
        };
        res?;
    }
    Ok(())
}

fn accepts_null(p: &WPlan) -> bool {
    matches!(p, WPlan::Null | WPlan::Union { null: Some(_), .. })
}

/// Writes a field's default value (JSON, per Avro's rules: a union's default is of its first
/// branch), or null.
fn write_default(p: &WPlan, default: Option<&Value>, out: &mut Vec<u8>) -> Result<(), String> {
    let v = default.unwrap_or(&Value::Null);
    match (p, v) {
        (WPlan::Union { null, .. }, Value::Null) => {
            let n = null.ok_or("null default for a field without a null branch")?;
            long(out, n as i64);
        }
        (WPlan::Union { branches, .. }, v) => {
            long(out, 0);
            write_default(&branches[0], Some(v), out)?;
        }
        (WPlan::Null, _) => {}
        (WPlan::Missing(name), _) => return Err(format!("the schema's field {name} has no column and no default")),
        (WPlan::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
        (WPlan::Int | WPlan::Long { .. }, Value::Number(n)) => long(out, n.as_i64().ok_or("bad integer default")?),
        (WPlan::Float, Value::Number(n)) => out.extend_from_slice(&(n.as_f64().unwrap_or(0.0) as f32).to_le_bytes()),
        (WPlan::Double, Value::Number(n)) => out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes()),
        (WPlan::Str | WPlan::Bytes, Value::String(s)) => bytes(out, s.as_bytes()),
        (WPlan::Enum(symbols), Value::String(s)) => long(out, symbols.iter().position(|x| x == s).unwrap_or(0) as i64),
        (WPlan::Array(_) | WPlan::Map(_), _) => long(out, 0),
        // A record's default: each field's own default (defaults given inside the record's
        // default value are not looked at).
        (WPlan::Record(fields), Value::Object(_)) => {
            for (_, p, d) in fields {
                write_default(p, d.as_ref(), out)?;
            }
        }
        (_, v) => return Err(format!("cannot write default {v} for this field")),
    }
    Ok(())
}

fn int32(col: &ArrayRef, row: usize) -> i32 {
    match col.data_type() {
        DataType::Date32 => col.as_primitive::<Date32Type>().value(row),
        DataType::Time32(_) => col.as_primitive::<Time32MillisecondType>().value(row),
        _ => col.as_any().downcast_ref::<Int32Array>().expect("int32").value(row),
    }
}

fn int64(col: &ArrayRef, row: usize) -> Result<i64, String> {
    Ok(match col.data_type() {
        DataType::Int32 => i64::from(col.as_any().downcast_ref::<Int32Array>().expect("int32").value(row)),
        DataType::Timestamp(..) => col.as_primitive::<TimestampMillisecondType>().value(row),
        DataType::Time32(_) => i64::from(col.as_primitive::<Time32MillisecondType>().value(row)),
        _ => col.as_any().downcast_ref::<Int64Array>().expect("int64").value(row),
    })
}

fn float64(col: &ArrayRef, row: usize) -> f64 {
    match col.data_type() {
        DataType::Int32 => f64::from(col.as_any().downcast_ref::<Int32Array>().expect("int32").value(row)),
        DataType::Int64 => col.as_any().downcast_ref::<Int64Array>().expect("int64").value(row) as f64,
        _ => col.as_any().downcast_ref::<Float64Array>().expect("f64").value(row),
    }
}
