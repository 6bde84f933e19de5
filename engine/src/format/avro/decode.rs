//! Reading Avro binary data into [`ColumnBuilder`]s: a writer schema is compiled once against the
//! target columns into a [`Plan`] (which writer field feeds which column, with ksqlDB's
//! coercions), then every record is read straight into the builders, field by field.
//!
//! Coercions, as ksqlDB's `ConnectDataTranslator` applies them: record fields match columns by
//! name ignoring case (a missing field reads as null, a field no column wants is skipped);
//! int → INT/BIGINT/DOUBLE/DECIMAL/STRING, long → BIGINT/INT (when it fits)/DOUBLE/STRING,
//! float/double → DOUBLE/STRING, string/enum → STRING, bytes/fixed → BYTES, decimal → DECIMAL
//! (rescaled) or STRING, date/time/timestamp logical types → DATE/TIME/TIMESTAMP (micros cut to
//! millis); any primitive → STRING as its text.

use apache_avro::schema::Schema as Avro;
use datafusion::arrow::datatypes::{DataType, Field, Fields};

use super::schema::{branch_name, deref, Names};
use crate::format::builder::{ColumnBuilder, Kind, Problem};
use crate::format::text::{write_decimal, write_f64, write_int};
use crate::format::types::{map_fields, type_name};

/// How to read one writer value into one target builder.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    /// The writer type is `null`.
    Null,
    Bool,
    /// An int; `date`/`time-millis` are plain ints here.
    Int,
    /// A long divided by `div` (1, or 1000 for micros → millis).
    Long { div: i64 },
    Float,
    Double,
    Str,
    Enum(Vec<String>),
    Bytes,
    Fixed(usize),
    /// A decimal in bytes (`None`) or fixed(n), with the writer's scale.
    Decimal { fixed: Option<usize>, scale: i8 },
    Array(Box<Plan>),
    Map(Box<Plan>),
    /// A record: per writer field, the target child it feeds (or a skip); then the target
    /// children no writer field feeds (read as null).
    Record { fields: Vec<(Option<usize>, Plan)>, missing: Vec<usize> },
    /// A union whose branches all feed the same target.
    Union(Vec<Plan>),
    /// A union read into a STRUCT with one child per non-null branch; `None`: the null branch.
    UnionStruct(Vec<Option<(usize, Plan)>>),
    /// A writer value no column wants.
    Skip(Box<Avro>),
}

/// Compiles `writer` against a target of type `target`.
pub(crate) fn compile(writer: &Avro, target: &Field, names: &Names) -> Result<Plan, String> {
    compile_type(writer, target.data_type(), names, 0)
}

fn mismatch(w: &Avro, t: &DataType) -> String {
    let k: apache_avro::schema::SchemaKind = w.into();
    format!("cannot read Avro {} as {}", format!("{k:?}").to_lowercase(), type_name(t))
}

fn compile_type(w: &Avro, t: &DataType, names: &Names, depth: usize) -> Result<Plan, String> {
    if depth > 64 {
        return Err("schema nests deeper than 64 levels".into());
    }
    let w = deref(w, names);
    if let Avro::Union(u) = w {
        let branches = u.variants();
        let non_null: Vec<&Avro> = branches.iter().filter(|b| !matches!(b, Avro::Null)).collect();
        if non_null.len() > 1 {
            if let DataType::Struct(fs) = t {
                // A STRUCT whose children are named after the branches.
                let mut out = Vec::new();
                for b in branches {
                    if matches!(b, Avro::Null) {
                        out.push(None);
                        continue;
                    }
                    let b = deref(b, names);
                    let name = branch_name(b);
                    let Some(i) = fs.iter().position(|f| f.name().eq_ignore_ascii_case(&name)) else {
                        return Err(format!("union branch {name} has no field in {}", type_name(t)));
                    };
                    out.push(Some((i, compile_type(b, fs[i].data_type(), names, depth + 1)?)));
                }
                return Ok(Plan::UnionStruct(out));
            }
        }
        let plans = branches.iter().map(|b| compile_type(b, t, names, depth + 1)).collect::<Result<_, _>>()?;
        return Ok(Plan::Union(plans));
    }
    let text = matches!(t, DataType::Utf8);
    Ok(match (w, t) {
        (Avro::Null, _) => Plan::Null,
        (Avro::Boolean, DataType::Boolean) => Plan::Bool,
        (Avro::Boolean, _) if text => Plan::Bool,
        (Avro::Int, DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal128(..) | DataType::Utf8) => Plan::Int,
        (Avro::Date, DataType::Date32 | DataType::Int32 | DataType::Int64 | DataType::Utf8) => Plan::Int,
        (Avro::TimeMillis, DataType::Time32(_) | DataType::Int32 | DataType::Int64 | DataType::Utf8) => Plan::Int,
        (Avro::Long, DataType::Int64 | DataType::Int32 | DataType::Float64 | DataType::Decimal128(..) | DataType::Utf8) => Plan::Long { div: 1 },
        (Avro::Long, DataType::Timestamp(..)) => Plan::Long { div: 1 },
        (Avro::TimestampMillis | Avro::LocalTimestampMillis, DataType::Timestamp(..) | DataType::Int64 | DataType::Utf8) => Plan::Long { div: 1 },
        (Avro::TimestampMicros | Avro::LocalTimestampMicros, DataType::Timestamp(..) | DataType::Int64) => Plan::Long { div: 1000 },
        (Avro::TimestampNanos | Avro::LocalTimestampNanos, DataType::Timestamp(..) | DataType::Int64) => Plan::Long { div: 1_000_000 },
        (Avro::TimeMicros, DataType::Time32(_)) => Plan::Long { div: 1000 },
        (Avro::Float, DataType::Float64 | DataType::Utf8) => Plan::Float,
        (Avro::Double, DataType::Float64 | DataType::Utf8) => Plan::Double,
        (Avro::String | Avro::Uuid, DataType::Utf8) => Plan::Str,
        (Avro::Enum(e), DataType::Utf8) => Plan::Enum(e.symbols.clone()),
        (Avro::Bytes, DataType::Binary | DataType::Utf8) => Plan::Bytes,
        (Avro::Fixed(f), DataType::Binary) => Plan::Fixed(f.size),
        (Avro::Decimal(d), DataType::Decimal128(..) | DataType::Utf8 | DataType::Float64) => {
            let fixed = match deref(&d.inner, names) {
                Avro::Fixed(f) => Some(f.size),
                _ => None,
            };
            Plan::Decimal { fixed, scale: d.scale as i8 }
        }
        (Avro::Array(a), DataType::List(item)) => Plan::Array(Box::new(compile_type(&a.items, item.data_type(), names, depth + 1)?)),
        (Avro::Map(m), DataType::Map(entries, _)) => {
            let (k, v) = map_fields(entries).expect("map entries");
            if k.data_type() != &DataType::Utf8 {
                return Err(format!("cannot read an Avro map into {} (Avro map keys are strings)", type_name(t)));
            }
            Plan::Map(Box::new(compile_type(&m.types, v.data_type(), names, depth + 1)?))
        }
        (Avro::Record(r), DataType::Struct(fs)) => compile_record(r, fs, names, depth)?,
        (w, t) => return Err(mismatch(w, t)),
    })
}

/// A record read into columns `fs` (a STRUCT's children, or a row's columns).
pub(crate) fn compile_record(r: &apache_avro::schema::RecordSchema, fs: &Fields, names: &Names, depth: usize) -> Result<Plan, String> {
    let mut fed = vec![false; fs.len()];
    let mut fields = Vec::with_capacity(r.fields.len());
    for f in &r.fields {
        // An exact match first, then ignoring case.
        let pos = fs.iter().position(|c| c.name() == &f.name).or_else(|| fs.iter().position(|c| c.name().eq_ignore_ascii_case(&f.name)));
        match pos {
            Some(i) if !fed[i] => {
                fed[i] = true;
                let p = compile_type(&f.schema, fs[i].data_type(), names, depth + 1).map_err(|e| format!("field {}: {e}", f.name))?;
                fields.push((Some(i), p));
            }
            _ => fields.push((None, Plan::Skip(Box::new(f.schema.clone())))),
        }
    }
    let missing = fed.iter().enumerate().filter(|(_, f)| !**f).map(|(i, _)| i).collect();
    Ok(Plan::Record { fields, missing })
}

/// A cursor over one record's Avro bytes.
pub(crate) struct Reader<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    fn eof() -> Problem {
        Problem::new("unexpected end of Avro data")
    }

    pub fn long(&mut self) -> Result<i64, Problem> {
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = *self.b.get(self.pos).ok_or_else(Self::eof)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((v >> 1) as i64 ^ -((v & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return Err(Problem::new("invalid Avro varint (longer than 10 bytes)"));
            }
        }
    }

    fn int(&mut self) -> Result<i32, Problem> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| Problem::new(format!("Avro int {v} is out of range")))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.b.len()).ok_or_else(Self::eof)?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn len(&mut self) -> Result<usize, Problem> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| Problem::new(format!("negative Avro length {n}")))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Problem> {
        let n = self.len()?;
        self.take(n)
    }

    /// The item count of the next block of an array or map (0 at the end).
    fn block(&mut self) -> Result<usize, Problem> {
        let n = self.long()?;
        if n < 0 {
            self.long()?; // the block's size in bytes
            return usize::try_from(-n).map_err(|_| Problem::new("invalid Avro block count"));
        }
        Ok(n as usize)
    }
}

/// Reads one value of plan `p` into `col`.
pub(crate) fn read(p: &Plan, r: &mut Reader<'_>, col: &mut ColumnBuilder, names: &Names) -> Result<(), Problem> {
    match p {
        Plan::Null => return col.append_null(),
        Plan::Skip(s) => return skip(s, r, names),
        Plan::Union(branches) => {
            let i = r.long()?;
            let b = usize::try_from(i).ok().and_then(|i| branches.get(i)).ok_or_else(|| Problem::new(format!("invalid Avro union index {i}")))?;
            return read(b, r, col, names);
        }
        Plan::UnionStruct(branches) => {
            let i = r.long()?;
            let b = usize::try_from(i).ok().and_then(|i| branches.get(i)).ok_or_else(|| Problem::new(format!("invalid Avro union index {i}")))?;
            let Some((child, plan)) = b else { return col.append_null() };
            let Kind::Struct { children, .. } = &mut col.kind else { unreachable!("compiled against a STRUCT") };
            for (j, c) in children.iter_mut().enumerate() {
                if j == *child {
                    read(plan, r, c, names)?;
                } else {
                    c.append_null()?;
                }
            }
            return col.end_value();
        }
        _ => {}
    }
    let ty = &col.data_type;
    match (p, &mut col.kind) {
        (Plan::Bool, Kind::Boolean(v)) => v.append(r.take(1)?[0] != 0),
        (Plan::Bool, Kind::Bytes { data, .. }) => data.extend_from_slice(if r.take(1)?[0] != 0 { b"true" } else { b"false" }),
        (Plan::Int, k) => {
            let x = r.int()?;
            integer(i64::from(x), ty, k)?;
        }
        (Plan::Long { div }, k) => {
            let x = r.long()?;
            let x = if *div == 1 { x } else { x.div_euclid(*div) };
            integer(x, ty, k)?;
        }
        (Plan::Float, k) => {
            let b = r.take(4)?;
            float(f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))), k, true);
        }
        (Plan::Double, k) => {
            let b = r.take(8)?;
            float(f64::from_le_bytes(b.try_into().expect("8 bytes")), k, false);
        }
        (Plan::Str, Kind::Bytes { data, .. }) => {
            let s = r.bytes()?;
            if std::str::from_utf8(s).is_err() {
                return Err(Problem::new("Avro string is not valid UTF-8"));
            }
            data.extend_from_slice(s);
        }
        (Plan::Enum(symbols), Kind::Bytes { data, .. }) => {
            let i = r.int()?;
            let s = usize::try_from(i).ok().and_then(|i| symbols.get(i)).ok_or_else(|| Problem::new(format!("invalid Avro enum index {i}")))?;
            data.extend_from_slice(s.as_bytes());
        }
        (Plan::Bytes, Kind::Bytes { data, utf8, .. }) => {
            let s = r.bytes()?;
            if *utf8 {
                crate::format::text::write_base64(data, s);
            } else {
                data.extend_from_slice(s);
            }
        }
        (Plan::Fixed(n), Kind::Bytes { data, .. }) => data.extend_from_slice(r.take(*n)?),
        (Plan::Decimal { fixed, scale }, k) => {
            let raw = match fixed {
                Some(n) => r.take(*n)?,
                None => r.bytes()?,
            };
            if raw.len() > 16 {
                return Err(Problem::new("Avro decimal is wider than 16 bytes"));
            }
            let mut v: i128 = if raw.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
            for b in raw {
                v = (v << 8) | i128::from(*b);
            }
            match k {
                Kind::Decimal(out, p, s) => out.push(rescale(v, *scale, *p, *s)?),
                Kind::Bytes { data, .. } => write_decimal(data, v, *scale),
                Kind::F64(out) => out.push(v as f64 / 10f64.powi(i32::from(*scale))),
                _ => unreachable!("compiled against DECIMAL, STRING or DOUBLE"),
            }
        }
        (Plan::Array(item), Kind::List { child, .. }) => {
            let mut n = 0usize;
            loop {
                let count = r.block()?;
                if count == 0 {
                    break;
                }
                for _ in 0..count {
                    n += 1;
                    read(item, r, child, names).map_err(|e| e.within(format!("[{n}]")))?;
                }
            }
        }
        (Plan::Map(value), Kind::Map { keys, values, .. }) => loop {
            let count = r.block()?;
            if count == 0 {
                break;
            }
            for _ in 0..count {
                let k = r.bytes()?;
                let key = std::str::from_utf8(k).map_err(|_| Problem::new("Avro map key is not valid UTF-8"))?;
                let Kind::Bytes { data, .. } = &mut keys.kind else { unreachable!("map keys are STRING") };
                data.extend_from_slice(k);
                keys.end_value()?;
                read(value, r, values, names).map_err(|e| e.within(format!("[\"{key}\"]")))?;
            }
        },
        (Plan::Record { fields, missing }, Kind::Struct { fields: fs, children }) => {
            read_fields(fields, missing, r, children, names).map_err(|(i, e)| e.within(format!(".{}", fs[i].name())))?;
        }
        (p, _) => unreachable!("plan {p:?} compiled against {ty}"),
    }
    col.end_value()
}

/// Reads a record's fields into `cols`; on error, the index of the column that failed.
pub(crate) fn read_fields(
    fields: &[(Option<usize>, Plan)],
    missing: &[usize],
    r: &mut Reader<'_>,
    cols: &mut [ColumnBuilder],
    names: &Names,
) -> Result<(), (usize, Problem)> {
    for (i, p) in fields {
        match i {
            Some(i) => read(p, r, &mut cols[*i], names).map_err(|e| (*i, e))?,
            None => {
                let Plan::Skip(s) = p else { unreachable!("unfed fields are skipped") };
                skip(s, r, names).map_err(|e| (0, e))?;
            }
        }
    }
    for i in missing {
        cols[*i].append_null().map_err(|e| (*i, e))?;
    }
    Ok(())
}

fn integer(x: i64, ty: &DataType, k: &mut Kind) -> Result<(), Problem> {
    match k {
        Kind::I32(v) => {
            let ok = match ty {
                DataType::Time32(_) => (0..86_400_000).contains(&x),
                _ => i32::try_from(x).is_ok(),
            };
            if !ok {
                return Err(Problem::new(format!("{x} is out of range for {}", type_name(ty))));
            }
            v.push(x as i32);
        }
        Kind::I64(v) => v.push(x),
        Kind::F64(v) => v.push(x as f64),
        Kind::Decimal(v, p, s) => v.push(rescale(i128::from(x), 0, *p, *s)?),
        Kind::Bytes { data, .. } => write_int(data, x),
        _ => unreachable!("compiled against a numeric or STRING column"),
    }
    Ok(())
}

fn float(x: f64, k: &mut Kind, single: bool) {
    match k {
        Kind::F64(v) => v.push(x),
        Kind::Bytes { data, .. } if single => {
            // A float's own shortest text, not its widened double's.
            data.extend_from_slice(ryu::Buffer::new().format(x as f32).as_bytes());
        }
        Kind::Bytes { data, .. } => write_f64(data, x),
        _ => unreachable!("compiled against DOUBLE or STRING"),
    }
}

/// An unscaled value at scale `from` as a DECIMAL(p, s).
fn rescale(v: i128, from: i8, p: u8, s: i8) -> Result<i128, Problem> {
    let out = if s >= from {
        10i128.checked_pow((s - from) as u32).and_then(|m| v.checked_mul(m))
    } else {
        let d = 10i128.pow((from - s) as u32);
        (v % d == 0).then(|| v / d)
    };
    let limit = 10i128.pow(u32::from(p));
    match out {
        Some(x) if x.abs() < limit => Ok(x),
        _ => Err(Problem::new(format!("decimal {v} (scale {from}) does not fit DECIMAL({p}, {s})"))),
    }
}

/// Skips one value of schema `s`.
pub(crate) fn skip(s: &Avro, r: &mut Reader<'_>, names: &Names) -> Result<(), Problem> {
    match deref(s, names) {
        Avro::Null => {}
        Avro::Boolean => {
            r.take(1)?;
        }
        Avro::Int | Avro::Long | Avro::Date | Avro::TimeMillis | Avro::TimeMicros | Avro::TimestampMillis | Avro::TimestampMicros
        | Avro::TimestampNanos | Avro::LocalTimestampMillis | Avro::LocalTimestampMicros | Avro::LocalTimestampNanos | Avro::Enum(_) => {
            r.long()?;
        }
        Avro::Float => {
            r.take(4)?;
        }
        Avro::Double => {
            r.take(8)?;
        }
        Avro::Bytes | Avro::String | Avro::Uuid | Avro::BigDecimal => {
            r.bytes()?;
        }
        Avro::Fixed(f) => {
            r.take(f.size)?;
        }
        Avro::Duration => {
            r.take(12)?;
        }
        Avro::Decimal(d) => skip(&d.inner, r, names)?,
        Avro::Array(a) => loop {
            let n = r.block()?;
            if n == 0 {
                break;
            }
            for _ in 0..n {
                skip(&a.items, r, names)?;
            }
        },
        Avro::Map(m) => loop {
            let n = r.block()?;
            if n == 0 {
                break;
            }
            for _ in 0..n {
                r.bytes()?;
                skip(&m.types, r, names)?;
            }
        },
        Avro::Union(u) => {
            let i = r.long()?;
            let b = usize::try_from(i).ok().and_then(|i| u.variants().get(i)).ok_or_else(|| Problem::new(format!("invalid Avro union index {i}")))?;
            skip(b, r, names)?;
        }
        Avro::Record(rec) => {
            for f in &rec.fields {
                skip(&f.schema, r, names)?;
            }
        }
        Avro::Ref { name } => return Err(Problem::new(format!("unknown Avro named type {name}"))),
    }
    Ok(())
}
