//! How `PRINT` shows a record, as ksqlDB does: `rowtime: 2019/07/09 01:00:00.000 Z`, keys and
//! values as text when they are text, KAFKA-format numbers as numbers, windowed keys as
//! `[key@start/end]`. When a stream or table is declared over the topic its formats decide;
//! otherwise the bytes are guessed at (text, else a 4-byte INT or an 8-byte BIGINT, else hex).

use datafusion::arrow::datatypes::DataType;
use engine::format::FormatKind;

use crate::catalog::{SourceDef, WindowType};

/// What PRINT knows of a topic's records from a source declared over it.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    key_kind: FormatKind,
    /// The type of the single key column (KAFKA keys).
    key_type: Option<DataType>,
    window: Option<WindowType>,
    value_kind: FormatKind,
    /// The type of the single value column (KAFKA values).
    value_type: Option<DataType>,
}

impl Shape {
    /// The shape of `def`'s records.
    pub(crate) fn of(def: &SourceDef) -> Shape {
        let keys = def.key_fields();
        let values = def.value_fields();
        Shape {
            key_kind: def.key_format.kind,
            key_type: (keys.len() == 1).then(|| keys[0].data_type().clone()),
            window: def.window,
            value_kind: def.value_format.kind,
            value_type: (values.len() == 1).then(|| values[0].data_type().clone()),
        }
    }
}

/// `2019/07/09 01:00:00.000 Z`.
pub(crate) fn rowtime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y/%m/%d %H:%M:%S%.3f Z").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A record key as PRINT shows it.
pub(crate) fn key_text(key: &[u8], shape: Option<&Shape>) -> String {
    let Some(shape) = shape else { return guess(key) };
    let (inner, window) = match shape.window {
        Some(WindowType::Time { size_ms }) if key.len() >= 8 => {
            let (k, w) = key.split_at(key.len() - 8);
            let start = i64::from_be_bytes(w.try_into().expect("8 bytes"));
            (k, Some((start, start.saturating_add(size_ms as i64))))
        }
        Some(WindowType::Session) if key.len() >= 16 => {
            let (k, w) = key.split_at(key.len() - 16);
            let end = i64::from_be_bytes(w[..8].try_into().expect("8 bytes"));
            let start = i64::from_be_bytes(w[8..].try_into().expect("8 bytes"));
            (k, Some((start, end)))
        }
        _ => (key, None),
    };
    let text = typed(inner, shape.key_kind, shape.key_type.as_ref());
    match window {
        Some((start, end)) => format!("[{text}@{start}/{end}]"),
        None => text,
    }
}

/// A record value as PRINT shows it.
pub(crate) fn value_text(value: &[u8], shape: Option<&Shape>) -> String {
    match shape {
        Some(s) => typed(value, s.value_kind, s.value_type.as_ref()),
        None => guess(value),
    }
}

/// Bytes of a known format: KAFKA numbers decoded, text as text.
fn typed(b: &[u8], kind: FormatKind, t: Option<&DataType>) -> String {
    if kind == FormatKind::Kafka {
        match (t, b.len()) {
            (Some(DataType::Int32), 4) => return i32::from_be_bytes(b.try_into().expect("4 bytes")).to_string(),
            (Some(DataType::Int64), 8) => return i64::from_be_bytes(b.try_into().expect("8 bytes")).to_string(),
            (Some(DataType::Float64), 8) => {
                return crate::session::render::java_double(f64::from_be_bytes(b.try_into().expect("8 bytes")))
            }
            _ => {}
        }
    }
    guess(b)
}

/// Bytes of an unknown format: printable text as is, else a big-endian INT or BIGINT, else hex.
fn guess(b: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(b) {
        if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
            return s.to_string();
        }
    }
    match b.len() {
        4 => i32::from_be_bytes(b.try_into().expect("4 bytes")).to_string(),
        8 => i64::from_be_bytes(b.try_into().expect("8 bytes")).to_string(),
        _ => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("0x{hex}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rowtime_as_ksqldb_prints_it() {
        assert_eq!(rowtime(1_562_634_000_000), "2019/07/09 01:00:00.000 Z");
    }

    #[test]
    fn unknown_bytes_are_guessed() {
        assert_eq!(guess(b"abc"), "abc");
        assert_eq!(guess(&7i32.to_be_bytes()), "7");
        assert_eq!(guess(&(1i64 << 40).to_be_bytes()), "1099511627776");
        assert_eq!(guess(&[0, 1, 2]), "0x000102");
    }

    #[test]
    fn windowed_kafka_int_keys() {
        let shape = Shape {
            key_kind: FormatKind::Kafka,
            key_type: Some(DataType::Int32),
            window: Some(WindowType::Time { size_ms: 1000 }),
            value_kind: FormatKind::Json,
            value_type: None,
        };
        let mut k = 5i32.to_be_bytes().to_vec();
        k.extend_from_slice(&3000i64.to_be_bytes());
        assert_eq!(key_text(&k, Some(&shape)), "[5@3000/4000]");
    }
}
