//! Moving values between Protobuf dynamic messages (`prost-reflect`) and Arrow: a decoded
//! message's fields are appended to the column builders (fields matched to columns by name,
//! ignoring case), and a row of columns is turned into a message to encode.
//!
//! Nulls, as ksqlDB treats them: a message or bytes field that is not set reads as null; a
//! scalar field without presence reads as its default (0, "", false), one with presence
//! (`optional`, proto2) as null; `google.protobuf.*Value` wrappers unwrap to their value or null. Writing, a null
//! leaves the field unset.

use std::collections::HashMap;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array, ListArray,
    MapArray, StringArray, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, Fields, Time32MillisecondType, TimestampMillisecondType};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

use super::schema::{special, Special};
use crate::format::builder::{ColumnBuilder, Kind as BKind, Problem};
use crate::format::text::{write_base64, write_decimal, write_f64, write_int};
use crate::format::types::type_name;

/// The message field feeding each column, by name ignoring case.
pub(crate) fn match_fields(m: &MessageDescriptor, fields: &Fields) -> Vec<Option<FieldDescriptor>> {
    fields
        .iter()
        .map(|c| m.get_field_by_name(c.name()).or_else(|| m.fields().find(|f| f.name().eq_ignore_ascii_case(c.name()))))
        .collect()
}

/// Appends a message's fields to the columns (`matched` from [`match_fields`]).
pub(crate) fn append_message(
    msg: &DynamicMessage,
    matched: &[Option<FieldDescriptor>],
    cols: &mut [ColumnBuilder],
) -> Result<(), (usize, Problem)> {
    for (i, (fd, col)) in matched.iter().zip(cols.iter_mut()).enumerate() {
        let res = match fd {
            None => col.append_null(),
            Some(fd) => append_field(msg, fd, col),
        };
        res.map_err(|e| (i, e))?;
    }
    Ok(())
}

fn append_field(msg: &DynamicMessage, fd: &FieldDescriptor, col: &mut ColumnBuilder) -> Result<(), Problem> {
    // Unset messages, fields with presence and (as ksqlDB reads them) unset bytes are null.
    let single = !fd.is_list() && !fd.is_map();
    let nullable = single && (matches!(fd.kind(), Kind::Message(_) | Kind::Bytes) || fd.supports_presence());
    if nullable && !msg.has_field(fd) {
        return col.append_null();
    }
    append_value(&msg.get_field(fd), &fd.kind(), fd.is_map(), col)
}

/// Appends one value of protobuf kind `kind` (a list or map when the field is repeated).
fn append_value(v: &Value, kind: &Kind, is_map: bool, col: &mut ColumnBuilder) -> Result<(), Problem> {
    let ty = col.data_type.clone();
    match (v, &mut col.kind) {
        (Value::List(items), BKind::List { child, .. }) => {
            for (n, item) in items.iter().enumerate() {
                append_value(item, kind, false, child).map_err(|e| e.within(format!("[{}]", n + 1)))?;
            }
        }
        (Value::Map(entries), BKind::Map { keys, values, .. }) if is_map => {
            let Kind::Message(entry) = kind else { unreachable!("map fields are entry messages") };
            let vkind = entry.map_entry_value_field().kind();
            let mut sorted: Vec<(&MapKey, &Value)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in sorted {
                let MapKey::String(k) = k else { return Err(Problem::new("PROTOBUF format only supports MAP types with STRING keys")) };
                let BKind::Bytes { data, .. } = &mut keys.kind else { unreachable!("map keys are STRING") };
                data.extend_from_slice(k.as_bytes());
                keys.end_value()?;
                append_value(v, &vkind, false, values).map_err(|e| e.within(format!("[\"{k}\"]")))?;
            }
        }
        (Value::Message(m), _) => {
            let Kind::Message(desc) = kind else { unreachable!("message values have message kinds") };
            match special(desc) {
                Some(Special::Wrapper) => {
                    let inner = desc.get_field(1).expect("wrappers have field 1");
                    return append_value(&m.get_field(&inner), &inner.kind(), false, col);
                }
                Some(s) => return append_special(s, m, col),
                None => {}
            }
            let BKind::Struct { fields, children } = &mut col.kind else { return Err(mismatch("a message", &ty)) };
            let matched = match_fields(desc, fields);
            let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
            append_message(m, &matched, children).map_err(|(i, e)| e.within(format!(".{}", names[i])))?;
        }
        (Value::Bool(b), BKind::Boolean(out)) => out.append(*b),
        (Value::Bool(b), BKind::Bytes { data, utf8: true, .. }) => data.extend_from_slice(if *b { b"true" } else { b"false" }),
        (Value::I32(x), k) => int(i64::from(*x), &ty, k)?,
        (Value::I64(x), k) => int(*x, &ty, k)?,
        (Value::U32(x), k) => int(i64::from(*x), &ty, k)?,
        (Value::U64(x), k) => int(i64::try_from(*x).map_err(|_| Problem::new(format!("{x} is out of range for {}", type_name(&ty))))?, &ty, k)?,
        (Value::F32(x), BKind::F64(out)) => out.push(f64::from(*x)),
        (Value::F64(x), BKind::F64(out)) => out.push(*x),
        (Value::F32(x), BKind::Bytes { data, utf8: true, .. }) => data.extend_from_slice(ryu::Buffer::new().format(*x).as_bytes()),
        (Value::F64(x), BKind::Bytes { data, utf8: true, .. }) => write_f64(data, *x),
        (Value::String(s), BKind::Bytes { data, utf8: true, .. }) => data.extend_from_slice(s.as_bytes()),
        (Value::Bytes(b), BKind::Bytes { data, utf8: false, .. }) => data.extend_from_slice(b),
        (Value::Bytes(b), BKind::Bytes { data, utf8: true, .. }) => write_base64(data, b),
        (Value::EnumNumber(n), BKind::Bytes { data, utf8: true, .. }) => {
            let Kind::Enum(e) = kind else { unreachable!("enum values have enum kinds") };
            let name = e.get_value(*n).map_or_else(|| n.to_string(), |v| v.name().to_string());
            data.extend_from_slice(name.as_bytes());
        }
        (v, _) => return Err(mismatch(&format!("{v:?}"), &ty)),
    }
    col.end_value()
}

fn mismatch(what: &str, ty: &DataType) -> Problem {
    let what: String = what.chars().take(40).collect();
    Problem::new(format!("cannot read Protobuf {what} as {}", type_name(ty)))
}

fn int(x: i64, ty: &DataType, k: &mut BKind) -> Result<(), Problem> {
    match k {
        BKind::I32(v) => v.push(i32::try_from(x).map_err(|_| Problem::new(format!("{x} is out of range for {}", type_name(ty))))?),
        BKind::I64(v) => v.push(x),
        BKind::F64(v) => v.push(x as f64),
        BKind::Decimal(v, p, s) => {
            let m = 10i128.pow(*s as u32);
            let d = i128::from(x) * m;
            if d.abs() >= 10i128.pow(u32::from(*p)) {
                return Err(Problem::new(format!("{x} overflows {}", type_name(ty))));
            }
            v.push(d);
        }
        BKind::Bytes { data, utf8: true, .. } => write_int(data, x),
        _ => return Err(mismatch("an integer", ty)),
    }
    Ok(())
}

fn field_i64(m: &DynamicMessage, name: &str) -> i64 {
    match m.get_field_by_name(name).as_deref() {
        Some(Value::I32(x)) => i64::from(*x),
        Some(Value::I64(x)) => *x,
        Some(Value::U32(x)) => i64::from(*x),
        Some(Value::U64(x)) => *x as i64,
        _ => 0,
    }
}

fn append_special(s: Special, m: &DynamicMessage, col: &mut ColumnBuilder) -> Result<(), Problem> {
    let ty = col.data_type.clone();
    match (s, &mut col.kind) {
        (Special::Timestamp, BKind::I64(v)) => v.push(field_i64(m, "seconds") * 1000 + field_i64(m, "nanos") / 1_000_000),
        (Special::Date, BKind::I32(v)) => {
            let (y, mo, d) = (field_i64(m, "year"), field_i64(m, "month"), field_i64(m, "day"));
            let date = chrono::NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32).ok_or_else(|| Problem::new(format!("invalid date {y}-{mo}-{d}")))?;
            v.push((date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32);
        }
        (Special::Time, BKind::I32(v)) => {
            let ms = ((field_i64(m, "hours") * 60 + field_i64(m, "minutes")) * 60 + field_i64(m, "seconds")) * 1000 + field_i64(m, "nanos") / 1_000_000;
            v.push(i32::try_from(ms).map_err(|_| Problem::new("time of day out of range"))?);
        }
        (Special::Decimal, k) => {
            let raw = match m.get_field_by_name("value").as_deref() {
                Some(Value::Bytes(b)) => b.clone(),
                _ => Default::default(),
            };
            if raw.len() > 16 {
                return Err(Problem::new("Protobuf decimal is wider than 16 bytes"));
            }
            let mut v: i128 = if raw.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
            for b in raw.iter() {
                v = (v << 8) | i128::from(*b);
            }
            let scale = field_i64(m, "scale") as i8;
            match k {
                BKind::Decimal(out, p, s) => {
                    let x = if *s >= scale { v * 10i128.pow((*s - scale) as u32) } else { v / 10i128.pow((scale - *s) as u32) };
                    if x.abs() >= 10i128.pow(u32::from(*p)) {
                        return Err(Problem::new(format!("decimal does not fit {}", type_name(&ty))));
                    }
                    out.push(x);
                }
                BKind::Bytes { data, utf8: true, .. } => write_decimal(data, v, scale),
                _ => return Err(mismatch("a decimal", &ty)),
            }
        }
        (s, _) => return Err(mismatch(&format!("{s:?}"), &ty)),
    }
    col.end_value()
}

/// The message for row `row` of `cols` (matched to message fields by name ignoring case).
pub(crate) fn message_of(desc: &MessageDescriptor, fields: &Fields, cols: &[ArrayRef], row: usize) -> Result<DynamicMessage, String> {
    let mut msg = DynamicMessage::new(desc.clone());
    for (fd, (f, col)) in match_fields(desc, fields).into_iter().zip(fields.iter().zip(cols)) {
        let Some(fd) = fd else { continue };
        if col.is_null(row) {
            continue;
        }
        let v = value_of(col, row, &fd.kind(), fd.is_list(), fd.is_map()).map_err(|e| format!("field {}: {e}", f.name()))?;
        msg.try_set_field(&fd, v).map_err(|e| format!("field {}: {e}", f.name()))?;
    }
    Ok(msg)
}

/// The value of a non-null cell for a field of `kind`.
fn value_of(col: &ArrayRef, row: usize, kind: &Kind, list: bool, map: bool) -> Result<Value, String> {
    if list {
        let l = col.as_any().downcast_ref::<ListArray>().ok_or("expected an ARRAY")?;
        let items = l.value(row);
        return (0..items.len())
            .map(|i| if items.is_null(i) { Ok(Value::default_value(kind)) } else { value_of(&items, i, kind, false, false) })
            .collect::<Result<_, _>>()
            .map(Value::List);
    }
    if map {
        let m = col.as_any().downcast_ref::<MapArray>().ok_or("expected a MAP")?;
        let Kind::Message(entry) = kind else { unreachable!("map fields are entry messages") };
        let vkind = entry.map_entry_value_field().kind();
        let (s, e) = (m.value_offsets()[row] as usize, m.value_offsets()[row + 1] as usize);
        let keys = m.keys().as_any().downcast_ref::<StringArray>().ok_or("PROTOBUF format only supports MAP types with STRING keys")?;
        let values = m.values();
        let mut out = HashMap::new();
        for i in s..e {
            let v = if values.is_null(i) { Value::default_value(&vkind) } else { value_of(values, i, &vkind, false, false)? };
            out.insert(MapKey::String(keys.value(i).to_string()), v);
        }
        return Ok(Value::Map(out));
    }
    let int = |v: i64| -> Result<Value, String> {
        Ok(match kind {
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(i32::try_from(v).map_err(|_| format!("{v} does not fit int32"))?),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(v),
            Kind::Uint32 | Kind::Fixed32 => Value::U32(u32::try_from(v).map_err(|_| format!("{v} does not fit uint32"))?),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::try_from(v).map_err(|_| format!("{v} does not fit uint64"))?),
            Kind::Float => Value::F32(v as f32),
            Kind::Double => Value::F64(v as f64),
            Kind::String => Value::String(v.to_string()),
            _ => return Err(format!("cannot write an integer as {kind:?}")),
        })
    };
    if let Kind::Message(desc) = kind {
        if let Some(s) = special(desc) {
            return special_of(s, desc, col, row, kind);
        }
    }
    match col.data_type() {
        DataType::Boolean => Ok(Value::Bool(col.as_any().downcast_ref::<BooleanArray>().expect("bool").value(row))),
        DataType::Int32 => int(i64::from(col.as_any().downcast_ref::<Int32Array>().expect("int32").value(row))),
        DataType::Int64 => int(col.as_any().downcast_ref::<Int64Array>().expect("int64").value(row)),
        DataType::Float64 => {
            let x = col.as_any().downcast_ref::<Float64Array>().expect("f64").value(row);
            Ok(match kind {
                Kind::Float => Value::F32(x as f32),
                _ => Value::F64(x),
            })
        }
        DataType::Utf8 => {
            let s = col.as_any().downcast_ref::<StringArray>().expect("utf8").value(row);
            match kind {
                Kind::Enum(e) => e.get_value_by_name(s).map(|v| Value::EnumNumber(v.number())).ok_or_else(|| format!("\"{s}\" is not a value of enum {}", e.name())),
                _ => Ok(Value::String(s.to_string())),
            }
        }
        DataType::Binary => Ok(Value::Bytes(col.as_any().downcast_ref::<BinaryArray>().expect("binary").value(row).to_vec().into())),
        DataType::Struct(fs) => {
            let Kind::Message(desc) = kind else { return Err("expected a message field for a STRUCT".into()) };
            let st = col.as_any().downcast_ref::<StructArray>().expect("struct");
            Ok(Value::Message(message_of(desc, fs, st.columns(), row)?))
        }
        other => Err(format!("cannot write {} as {kind:?}", type_name(other))),
    }
}

fn special_of(s: Special, desc: &MessageDescriptor, col: &ArrayRef, row: usize, _kind: &Kind) -> Result<Value, String> {
    let mut m = DynamicMessage::new(desc.clone());
    let set = |m: &mut DynamicMessage, name: &str, v: Value| m.set_field_by_name(name, v);
    match (s, col.data_type()) {
        (Special::Wrapper, _) => {
            let inner = desc.get_field(1).expect("wrappers have field 1");
            let v = value_of(col, row, &inner.kind(), false, false)?;
            m.set_field(&inner, v);
        }
        (Special::Timestamp, DataType::Timestamp(..)) => {
            let ms = col.as_primitive::<TimestampMillisecondType>().value(row);
            set(&mut m, "seconds", Value::I64(ms.div_euclid(1000)));
            set(&mut m, "nanos", Value::I32((ms.rem_euclid(1000) * 1_000_000) as i32));
        }
        (Special::Date, DataType::Date32) => {
            let days = col.as_primitive::<Date32Type>().value(row);
            let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(i64::from(days));
            use chrono::Datelike;
            set(&mut m, "year", Value::I32(d.year()));
            set(&mut m, "month", Value::I32(d.month() as i32));
            set(&mut m, "day", Value::I32(d.day() as i32));
        }
        (Special::Time, DataType::Time32(_)) => {
            let ms = col.as_primitive::<Time32MillisecondType>().value(row);
            set(&mut m, "hours", Value::I32(ms / 3_600_000));
            set(&mut m, "minutes", Value::I32(ms / 60_000 % 60));
            set(&mut m, "seconds", Value::I32(ms / 1000 % 60));
            set(&mut m, "nanos", Value::I32(ms % 1000 * 1_000_000));
        }
        (Special::Decimal, DataType::Decimal128(p, sc)) => {
            let v = col.as_any().downcast_ref::<Decimal128Array>().expect("decimal").value(row);
            let be = v.to_be_bytes();
            let mut start = 0;
            while start < 15 && ((be[start] == 0 && be[start + 1] & 0x80 == 0) || (be[start] == 0xff && be[start + 1] & 0x80 != 0)) {
                start += 1;
            }
            set(&mut m, "value", Value::Bytes(be[start..].to_vec().into()));
            set(&mut m, "precision", Value::U32(u32::from(*p)));
            set(&mut m, "scale", Value::I32(i32::from(*sc)));
        }
        (s, t) => return Err(format!("cannot write {} as {s:?}", type_name(t))),
    }
    Ok(Value::Message(m))
}
