//! Criterion benches of the record formats (`engine::format`): decoding and encoding batches
//! of 10,000 rows of five flat columns (INT, BIGINT, STRING, DOUBLE, STRING) as JSON (~100-byte
//! objects) and DELIMITED, and of ten columns as AVRO (Confluent-framed, the schema in an
//! embedded registry) beside JSON with the same ten columns, reported in rows/s.
//!
//! Before criterion's own runs, each case is timed over a few batches and its best rate is
//! printed as `formats/<case>: N rows/s`, the figure to quote.

// criterion_group! defines a pub fn that cannot carry a doc comment.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::arrow::array::BooleanArray;
use engine::format::{new_decoder_with, new_encoder_with, EncodedBatch, FormatKind, FormatSpec, Role};
use engine::registry::{EmbeddedRegistry, Registry, Schema, SchemaType};

const ROWS: usize = 10_000;

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("ID", DataType::Int32, true),
        Field::new("TS", DataType::Int64, true),
        Field::new("NAME", DataType::Utf8, true),
        Field::new("PRICE", DataType::Float64, true),
        Field::new("NOTE", DataType::Utf8, true),
    ])
}

fn columns() -> Vec<ArrayRef> {
    let ids: Vec<i32> = (0..ROWS as i32).map(|i| i * 7919 % 100_000).collect();
    let ts: Vec<i64> = (0..ROWS as i64).map(|i| 1_700_000_000_000 + i * 37).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("user_{i}")).collect();
    let prices: Vec<f64> = ids.iter().map(|&i| f64::from(i) / 100.0 + 0.25).collect();
    let notes: Vec<String> = ids.iter().map(|i| format!("a short note about order {i} here")).collect();
    vec![
        Arc::new(Int32Array::from(ids)),
        Arc::new(Int64Array::from(ts)),
        Arc::new(StringArray::from(names)),
        Arc::new(Float64Array::from(prices)),
        Arc::new(StringArray::from(notes)),
    ]
}

/// Rows per second of `f` (which handles one batch), best of a few runs.
fn rate(mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::MAX;
    for _ in 0..30 {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    ROWS as f64 / best
}

/// Ten columns: the five above and BOOLEAN, INT, BIGINT, DOUBLE, STRING.
fn fields10() -> Fields {
    let mut f: Vec<Field> = fields().iter().map(|f| f.as_ref().clone()).collect();
    f.extend([
        Field::new("ACTIVE", DataType::Boolean, true),
        Field::new("QTY", DataType::Int32, true),
        Field::new("SEQ", DataType::Int64, true),
        Field::new("RATE", DataType::Float64, true),
        Field::new("CITY", DataType::Utf8, true),
    ]);
    Fields::from(f)
}

fn columns10() -> Vec<ArrayRef> {
    let mut c = columns();
    let n = ROWS as i64;
    c.push(Arc::new(BooleanArray::from((0..n).map(|i| i % 3 == 0).collect::<Vec<_>>())));
    c.push(Arc::new(Int32Array::from((0..n as i32).map(|i| i % 17).collect::<Vec<_>>())));
    c.push(Arc::new(Int64Array::from((0..n).map(|i| i * 1_000_003).collect::<Vec<_>>())));
    c.push(Arc::new(Float64Array::from((0..n).map(|i| i as f64 * 0.37).collect::<Vec<_>>())));
    let cities = ["Lisbon", "Osaka", "Quito", "Tromsø"];
    c.push(Arc::new(StringArray::from((0..ROWS).map(|i| cities[i % 4]).collect::<Vec<_>>())));
    c
}

/// An embedded registry in a temporary directory, with the AVRO schema of `fields` registered.
fn registry(dir: &std::path::Path, fields: &Fields) -> (Registry, u32) {
    let log = storage::FileLog::open(&dir.join("topics"), storage::LogOptions::default()).expect("log");
    let r = Registry(Arc::new(EmbeddedRegistry::open(Arc::new(log)).expect("registry")));
    let schema = engine::format::avro::generate(fields, false, None).to_string();
    let id = r.register("bench-value", &Schema::new(SchemaType::Avro, schema), None).expect("register");
    (r, id)
}

fn bench_format(c: &mut Criterion, name: &str, spec: FormatSpec) {
    bench_with(c, name, spec, &fields(), &columns(), None);
}

fn bench_with(c: &mut Criterion, name: &str, spec: FormatSpec, fields: &Fields, cols: &[ArrayRef], registry: Option<&Registry>) {
    let fields = fields.clone();
    let cols = cols.to_vec();
    let mut enc = new_encoder_with(&spec, Role::Value, &fields, registry).expect("encoder");
    let mut records = EncodedBatch::new();
    enc.encode(&cols, &mut records).expect("encode");
    let bytes = records.data().len() / ROWS;
    let mut dec = new_decoder_with(&spec, Role::Value, &fields, registry).expect("decoder");
    let mut decode = || {
        for r in records.iter() {
            dec.append(black_box(r)).expect("decode");
        }
        black_box(dec.finish());
    };
    println!("formats/{name}_decode: {:.0} rows/s ({bytes} bytes/row)", rate(&mut decode));
    let mut out = EncodedBatch::new();
    let mut encode = || {
        out.clear();
        enc.encode(black_box(&cols), &mut out).expect("encode");
    };
    println!("formats/{name}_encode: {:.0} rows/s", rate(&mut encode));

    let mut g = c.benchmark_group("formats");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function(format!("{name}_decode_10k"), |b| b.iter(&mut decode));
    g.bench_function(format!("{name}_encode_10k"), |b| b.iter(&mut encode));
    g.finish();
}

fn bench_formats(c: &mut Criterion) {
    bench_format(c, "json", FormatSpec::json());
    bench_format(c, "delimited", FormatSpec::delimited(b','));
    // Ten columns: AVRO against JSON in the same run.
    let dir = tempfile::tempdir().expect("temp dir");
    let (f10, c10) = (fields10(), columns10());
    let (r, id) = registry(dir.path(), &f10);
    bench_with(c, "json10", FormatSpec::json(), &f10, &c10, None);
    let avro = FormatSpec { schema_id: Some(id), ..FormatSpec::new(FormatKind::Avro) };
    bench_with(c, "avro10", avro, &f10, &c10, Some(&r));
}

criterion_group!(benches, bench_formats);
criterion_main!(benches);
