//! The `JSON` format: records are JSON objects with one member per column, or the bare value
//! of a single column (always for keys; for values with `WRAP_SINGLE_VALUE=false`).

mod decode;
mod encode;
pub(crate) mod scan;

#[cfg(test)]
mod tests;

pub(crate) use decode::JsonDecoder;
pub(crate) use encode::JsonEncoder;
