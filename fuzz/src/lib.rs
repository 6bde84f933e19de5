//! The bodies of the fuzz targets, shared by `cargo fuzz` (fuzz_targets/) and anything that wants
//! to replay an input: each must return for every input, never panic or hang.

use std::sync::OnceLock;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use engine::format::{new_decoder, FormatKind, FormatSpec, Role};
use planner::Eddy;

include!("../../planner/tests/fuzz/harness.rs");

fn eddy() -> &'static Eddy {
    static EDDY: OnceLock<(tempfile::TempDir, Eddy)> = OnceLock::new();
    &EDDY
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let eddy = Eddy::open(dir.path(), engine::EngineConfig::default()).expect("open");
            eddy.session().execute_all(SETUP).expect("setup");
            (dir, eddy)
        })
        .1
}

/// Parses `data` as SQL and plans every statement with `EXPLAIN` (which plans without running).
pub fn sql(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    plan_all(eddy(), text);
}

/// Decodes `data` with a format and role chosen by its first byte, into a fixed set of columns.
pub fn decode(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let kind = match sel % 3 {
        0 => FormatKind::Json,
        1 => FormatKind::Delimited,
        _ => FormatKind::Kafka,
    };
    let role = if sel & 4 == 0 { Role::Value } else { Role::Key };
    let mut spec = FormatSpec::new(kind);
    spec.wrap_single_value = sel & 8 == 0;
    let many = Fields::from(vec![
        Field::new("I", DataType::Int32, true),
        Field::new("B", DataType::Int64, true),
        Field::new("D", DataType::Float64, true),
        Field::new("S", DataType::Utf8, true),
        Field::new("Z", DataType::Boolean, true),
    ]);
    let one = Fields::from(vec![Field::new("S", DataType::Utf8, true)]);
    let fields = if kind == FormatKind::Kafka || sel & 16 != 0 { one } else { many };
    let Ok(mut dec) = new_decoder(&spec, role, &fields) else { return };
    // Several records per input, split at 0xFF bytes, so that state carried across records is fuzzed too.
    for rec in rest.split(|b| *b == 0xFF) {
        let _ = dec.append(if rec == b"\0" { None } else { Some(rec) });
    }
    let _ = dec.finish();
}
